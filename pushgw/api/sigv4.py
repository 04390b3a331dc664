"""
AWS Signature Version 4 verification for the SNS Query API (pure: no HTTP server).

Both forms are accepted: the `Authorization: AWS4-HMAC-SHA256 ...` header that
boto3 and the AWS CLI send, and the presigned query string (`X-Amz-Algorithm`,
`X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
`X-Amz-Signature`). The canonical request is built exactly as AWS specifies it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html) and
as botocore computes it (`botocore/auth.py` `SigV4Auth`).

Errors carry AWS's codes and texts: MissingAuthenticationToken, InvalidClientTokenId
and SignatureDoesNotMatch (403); IncompleteSignature and RequestExpired (400, as in
AWS's "Common Errors" table).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from pushgw.config import AccessKey
from pushgw.errors import (
    IncompleteSignatureError,
    InvalidClientTokenIdError,
    MissingAuthenticationTokenError,
    RequestExpiredError,
    SignatureDoesNotMatchError,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_EXPIRES_S = 604_800  # 7 days, the SigV4 maximum for presigned requests

_QUERY_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
)


@dataclass(frozen=True, slots=True)
class _Auth:
    """The signature parameters, from either form."""

    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    scope_terminator: str
    amz_date: str
    signed_at: float  # amz_date as epoch seconds
    signed_headers: str
    signature: str
    expires_s: int | None  # presigned form only
    is_query: bool


def verify_sigv4(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, AccessKey],
    region: str,
    service: str = "sns",
    now: float | None = None,
    max_skew_s: float = 300.0,
) -> AccessKey:
    """
    Check a SigV4-signed request and return the access key that signed it.

    Args:
        method: HTTP method.
        path: the request path as sent on the wire (percent-encoded, no query).
        query: the query string as decoded (name, value) pairs, in order.
        headers: request headers; names are matched case-insensitively.
        body: the raw request body.
        keys: known access keys by access key id.
        region: the only region credentials may be scoped to.
        service: the only service credentials may be scoped to.
        now: the current time (epoch seconds); defaults to `time.time()`.
        max_skew_s: allowed distance between the request date and `now`.

    Returns:
        The AccessKey whose secret produced the signature.

    Raises:
        SigV4Error: a subclass carrying AWS's code and message.
    """
    now = time.time() if now is None else now
    hdrs = _lower_headers(headers)
    auth = _extract(query, hdrs)
    _check_scope(auth, region=region, service=service)
    key = keys.get(auth.access_key_id)
    if key is None:
        raise InvalidClientTokenIdError()
    _check_time(auth, now=now, max_skew_s=max_skew_s)
    hashes = _payload_hashes(auth, hdrs, body)
    canonical_query = _canonical_query(query, drop_signature=auth.is_query)
    canonical_path = _canonical_path(path)
    for payload_hash in hashes:
        creq = _canonical_request(
            method=method,
            path=canonical_path,
            query=canonical_query,
            headers=hdrs,
            signed_headers=auth.signed_headers,
            payload_hash=payload_hash,
        )
        expected = _signature(
            key.secret_access_key,
            amz_date=auth.amz_date,
            day=auth.scope_date,
            region=auth.scope_region,
            service=auth.scope_service,
            canonical_request=creq,
        )
        if hmac.compare_digest(expected, auth.signature.encode("ascii", "replace")):
            return key
    raise SignatureDoesNotMatchError()


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """
    Derive the SigV4 signing key (kSigning) for one day, region and service.

    Cached: a key signs every request of its day with the same derived key, so
    four HMACs become one dictionary look-up. The secret is part of the cache
    key, so a secret changed by a reload is never verified with the old one;
    entries are bounded (a few per access key and day).
    """
    k = _hmac(f"AWS4{secret}".encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, TERMINATOR)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.digest(key, msg.encode("utf-8"), "sha256")


def _signature(
    secret: str,
    *,
    amz_date: str,
    day: str,
    region: str,
    service: str,
    canonical_request: str,
) -> bytes:
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            amz_date,
            f"{day}/{region}/{service}/{TERMINATOR}",
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        )
    )
    k = signing_key(secret, day, region, service)
    return hmac.digest(k, string_to_sign.encode("utf-8"), "sha256").hex().encode()


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers (multidicts) are joined with commas."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        out[lname] = f"{out[lname]},{value}" if lname in out else value
    return out


def _extract(query: Sequence[tuple[str, str]], hdrs: Mapping[str, str]) -> _Auth:
    qnames = {k for k, _ in query}
    has_query = bool(qnames & {"X-Amz-Algorithm", "X-Amz-Signature"})
    header = hdrs.get("authorization")
    if header is not None and has_query:
        raise IncompleteSignatureError(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query"
            " parameter, Signature query string parameter or the Authorization"
            " header should be specified"
        )
    if header is not None:
        return _from_header(header, hdrs)
    if has_query:
        return _from_query(query)
    raise MissingAuthenticationTokenError()


def _from_header(header: str, hdrs: Mapping[str, str]) -> _Auth:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureError(
            f"Unsupported AWS 'algorithm': '{algorithm[:64]}'"
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts[name] = value
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not parts.get(name)
    ]
    amz_date = hdrs.get("x-amz-date", "").strip()
    if not amz_date:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or"
            " a 'Date' header."
        )
    if missing:
        raise IncompleteSignatureError(" ".join(missing))
    return _build(
        credential=parts["Credential"],
        amz_date=amz_date,
        signed_headers=parts["SignedHeaders"],
        signature=parts["Signature"],
        expires=None,
        is_query=False,
    )


def _from_query(query: Sequence[tuple[str, str]]) -> _Auth:
    params = dict(query)
    if any(not params.get(name) for name in _QUERY_REQUIRED):
        raise IncompleteSignatureError(
            "AWS query-string parameters must include 'X-Amz-Algorithm',"
            " 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date',"
            " 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignatureError(
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'
        )
    expires = params.get("X-Amz-Expires")
    return _build(
        credential=params["X-Amz-Credential"],
        amz_date=params["X-Amz-Date"],
        signed_headers=params["X-Amz-SignedHeaders"],
        signature=params["X-Amz-Signature"],
        expires=_parse_expires(expires) if expires is not None else None,
        is_query=True,
    )


def _parse_expires(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 7):
        raise IncompleteSignatureError("X-Amz-Expires should be a number")
    seconds = int(value)
    if seconds > MAX_EXPIRES_S:
        raise IncompleteSignatureError(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    return seconds


def _build(
    *,
    credential: str,
    amz_date: str,
    signed_headers: str,
    signature: str,
    expires: int | None,
    is_query: bool,
) -> _Auth:
    scope = credential.split("/")
    if len(scope) != 5 or not all(scope):
        raise IncompleteSignatureError(
            "Credential should be a string of the form"
            " '<access key>/<date>/<region>/<service>/aws4_request'."
        )
    signed_at = _parse_amz_date(amz_date)
    return _Auth(
        access_key_id=scope[0],
        scope_date=scope[1],
        scope_region=scope[2],
        scope_service=scope[3],
        scope_terminator=scope[4],
        amz_date=amz_date,
        signed_at=signed_at,
        signed_headers=signed_headers,
        signature=signature,
        expires_s=expires,
        is_query=is_query,
    )


def _parse_amz_date(value: str) -> float:
    """`YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC) as epoch seconds, by
    slicing: `time.strptime` cost half of a whole verification."""
    try:
        if not (
            len(value) == 16
            and value[8] == "T"
            and value[15] == "Z"
            and value.isascii()
            and (value[:8] + value[9:15]).isdigit()
        ):
            raise ValueError(value)
        return datetime.datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=datetime.UTC,
        ).timestamp()
    except ValueError:
        raise IncompleteSignatureError(
            f"Date must be in ISO-8601 'basic format'. Got '{value[:32]}'."
            " See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _check_scope(auth: _Auth, *, region: str, service: str) -> None:
    if auth.scope_terminator != TERMINATOR:
        raise SignatureDoesNotMatchError(
            "Credential should be scoped with a valid terminator: 'aws4_request',"
            f" not '{auth.scope_terminator[:64]}'."
        )
    if auth.scope_service != service:
        raise SignatureDoesNotMatchError(
            f"Credential should be scoped to correct service: '{service}'."
        )
    if auth.scope_region != region:
        raise SignatureDoesNotMatchError(
            "Credential should be scoped to a valid region,"
            f" not '{auth.scope_region[:64]}'."
        )
    if auth.scope_date != auth.amz_date[:8]:
        raise SignatureDoesNotMatchError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601"
            f" version of date from HTTP: '{auth.scope_date[:16]}' !="
            f" '{auth.amz_date[:8]}', from '{auth.amz_date}'."
        )


def _check_time(auth: _Auth, *, now: float, max_skew_s: float) -> None:
    signed_at = auth.signed_at
    minutes = f"{max_skew_s / 60:g} min."
    if signed_at > now + max_skew_s:
        raise SignatureDoesNotMatchError(
            f"Signature not yet current: {auth.amz_date} is still later than"
            f" {_fmt(now + max_skew_s)} ({_fmt(now)} + {minutes})"
        )
    if auth.is_query:
        lifetime = auth.expires_s if auth.expires_s is not None else max_skew_s
        if now > signed_at + lifetime:
            raise RequestExpiredError()
    elif signed_at < now - max_skew_s:
        raise SignatureDoesNotMatchError(
            f"Signature expired: {auth.amz_date} is now earlier than"
            f" {_fmt(now - max_skew_s)} ({_fmt(now)} - {minutes})"
        )


def _fmt(epoch: float) -> str:
    return time.strftime(AMZ_DATE_FORMAT, time.gmtime(epoch))


def _payload_hashes(auth: _Auth, hdrs: Mapping[str, str], body: bytes) -> list[str]:
    """
    The payload hashes the signature may have been computed over.

    A declared `x-amz-content-sha256` must match the body. `UNSIGNED-PAYLOAD` is
    only honoured for presigned requests without a body, so a signed Publish can
    never have its message swapped.
    """
    actual = hashlib.sha256(body).hexdigest()
    declared = hdrs.get("x-amz-content-sha256")
    if declared is None:
        if auth.is_query and not body:
            return [actual, UNSIGNED_PAYLOAD]
        return [actual]
    declared = declared.strip()
    if declared == UNSIGNED_PAYLOAD and auth.is_query and not body:
        return [declared]
    if declared.lower() != actual:
        raise SignatureDoesNotMatchError(
            "The provided 'x-amz-content-sha256' header does not match what was"
            " computed."
        )
    return [declared]


def _canonical_path(path: str) -> str:
    """Normalise the path (dot segments, double slashes) and URI-encode it."""
    if not path:
        return "/"
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
        else:
            out.append(seg)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return quote(first + "/".join(out) + last, safe="/~")


def _canonical_query(query: Sequence[tuple[str, str]], *, drop_signature: bool) -> str:
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in query
        if not (drop_signature and k == "X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def _canonical_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: str,
    payload_hash: str,
) -> str:
    names = [n.strip().lower() for n in signed_headers.split(";")]
    if "host" not in names:
        raise SignatureDoesNotMatchError(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    lines: list[str] = []
    for name in names:
        value = headers.get(name)
        if value is None:
            raise SignatureDoesNotMatchError()
        lines.append(f"{name}:{' '.join(value.split())}")
    return "\n".join(
        (
            method.upper(),
            path,
            query,
            "\n".join(lines) + "\n",
            ";".join(names),
            payload_hash,
        )
    )


def sign_post(
    *,
    host: str,
    path: str,
    body: bytes,
    content_type: str,
    access_key_id: str,
    secret: str,
    region: str,
    service: str = "sns",
    now: float | None = None,
) -> dict[str, str]:
    """
    The headers that sign a POST as botocore's `SigV4Auth` does (header form,
    `content-type;host;x-amz-date` signed), built from the same canonical
    request and cached day key the verifier uses. For load clients (`pushgw
    bench`): 31 µs a request, botocore's signer 182-195 µs.
    """
    amz_date = _fmt(time.time() if now is None else now)
    day = amz_date[:8]
    headers = {"content-type": content_type, "host": host, "x-amz-date": amz_date}
    signed_headers = "content-type;host;x-amz-date"
    creq = _canonical_request(
        method="POST",
        path=_canonical_path(path),
        query="",
        headers=headers,
        signed_headers=signed_headers,
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    signature = _signature(
        secret,
        amz_date=amz_date,
        day=day,
        region=region,
        service=service,
        canonical_request=creq,
    ).decode()
    return {
        "Content-Type": content_type,
        "Host": host,
        "X-Amz-Date": amz_date,
        "Authorization": (
            f"{ALGORITHM} Credential={access_key_id}/{day}/{region}/{service}/"
            f"{TERMINATOR}, SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }
