"""SigV4 verification against requests signed by botocore itself."""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pushgw.api.sigv4 import sign_post, signing_key, verify_sigv4
from pushgw.api.sns_parse import decode_form
from pushgw.config import AccessKey
from pushgw.errors import SIGNATURE_MISMATCH, SigV4Error

KEY = AccessKey(
    access_key_id="AKIAIOSFODNN7EXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
)
KEYS = {KEY.access_key_id: KEY}
URL = "http://127.0.0.1:8080/"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
BODY = b"Action=Publish&Version=2010-03-31&TargetArn=arn&Message=hello+world"


@dataclass(frozen=True)
class Signed:
    """A signed request, in the shape the verifier takes."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    now: float

    def verify(self, **overrides: Any) -> AccessKey:
        args: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "keys": KEYS,
            "region": "us-east-1",
            "now": self.now,
        }
        args.update(overrides)
        return verify_sigv4(**args)


def _creds(
    secret: str = KEY.secret_access_key, key_id: str = KEY.access_key_id
) -> Credentials:
    return Credentials(key_id, secret)


def _prepared(request: AWSRequest, *, at: float | None = None) -> Signed:
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = {
        k: v.decode() if isinstance(v, bytes) else v
        for k, v in prepared.headers.items()
    }
    headers["Host"] = url.netloc
    query = decode_form(url.query.encode())
    amz_date = headers.get("X-Amz-Date") or dict(query)["X-Amz-Date"]
    signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    body = prepared.body or b""
    return Signed(
        method=prepared.method,
        path=url.path,
        query=query,
        headers=headers,
        body=body if isinstance(body, bytes) else body.encode(),
        now=signed_at if at is None else signed_at + at,
    )


def sign_header(
    body: bytes = BODY,
    *,
    region: str = "us-east-1",
    service: str = "sns",
    creds: Credentials | None = None,
    headers: dict[str, str] | None = None,
    url: str = URL,
) -> Signed:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": FORM, **(headers or {})},
    )
    SigV4Auth(creds or _creds(), service, region).add_auth(request)
    return _prepared(request)


def sign_query(
    params: dict[str, str], *, method: str = "GET", expires: int = 60
) -> Signed:
    request = AWSRequest(method=method, url=URL, data=params)
    SigV4QueryAuth(_creds(), "sns", "us-east-1", expires=expires).add_auth(request)
    return _prepared(request)


def _error(signed: Signed, **overrides: Any) -> SigV4Error:
    with pytest.raises(SigV4Error) as info:
        signed.verify(**overrides)
    return info.value


def test_header_signed_post_is_accepted() -> None:
    """A POST signed by botocore's SigV4Auth returns the key that signed it."""
    signed = sign_header()

    assert KEY == signed.verify()


def test_aws_test_suite_get_vanilla() -> None:
    """The AWS SigV4 test-suite vector `get-vanilla` verifies (independent of botocore)."""
    key = AccessKey(
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    headers = {
        "Host": "example.amazonaws.com",
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256"
        " Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
        " SignedHeaders=host;x-amz-date,"
        " Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    }
    now = calendar.timegm(time.strptime("20150830T123600Z", "%Y%m%dT%H%M%SZ"))

    got = verify_sigv4(
        method="GET",
        path="/",
        query=[],
        headers=headers,
        body=b"",
        keys={key.access_key_id: key},
        region="us-east-1",
        service="service",
        now=now,
    )

    assert key == got


def test_signing_key_matches_aws_documentation_example() -> None:
    """The derived signing key equals the one in AWS's documentation example."""
    key = signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
    )

    assert (
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d" == key.hex()
    )


def test_header_names_are_case_insensitive() -> None:
    """Header names in any case verify the same signature."""
    signed = sign_header()
    shouted = {k.upper(): v for k, v in signed.headers.items()}

    assert KEY == signed.verify(headers=shouted)


def test_presigned_get_is_accepted() -> None:
    """A GET presigned by SigV4QueryAuth (params in the URL) verifies."""
    signed = sign_query({"Action": "ListTopics", "Version": "2010-03-31"})

    assert KEY == signed.verify()


def test_presigned_query_with_reserved_characters_is_accepted() -> None:
    """Spaces, slashes, tildes, plus signs and non-ASCII survive canonicalisation."""
    signed = sign_query({"Action": "Publish", "Message": "a b+c/d~e é €", "X": ""})

    assert KEY == signed.verify()


def test_presigned_post_moves_form_into_query_and_verifies() -> None:
    """botocore moves a presigned POST's form into the URL; that request verifies."""
    signed = sign_query({"Action": "ListTopics"}, method="POST")

    assert b"" == signed.body
    assert KEY == signed.verify()


def test_tampered_body_is_rejected() -> None:
    """Changing one byte of the body gives SignatureDoesNotMatch."""
    signed = sign_header()

    err = _error(signed, body=BODY.replace(b"hello", b"jello"))

    assert ("SignatureDoesNotMatch", 403) == (err.code, err.status)
    assert SIGNATURE_MISMATCH == err.message


def test_tampered_signed_header_is_rejected() -> None:
    """Changing a signed header (Content-Type) gives SignatureDoesNotMatch."""
    signed = sign_header()
    headers = {**signed.headers, "Content-Type": "text/plain"}

    assert "SignatureDoesNotMatch" == _error(signed, headers=headers).code


def test_unsigned_header_may_change() -> None:
    """A header outside SignedHeaders (User-Agent) does not affect the signature."""
    signed = sign_header()
    headers = {**signed.headers, "User-Agent": "something else"}

    assert KEY == signed.verify(headers=headers)


def test_tampered_query_is_rejected() -> None:
    """Adding a parameter to a presigned URL gives SignatureDoesNotMatch."""
    signed = sign_query({"Action": "ListTopics"})

    err = _error(signed, query=[*signed.query, ("NextToken", "x")])

    assert "SignatureDoesNotMatch" == err.code


def test_wrong_secret_is_rejected() -> None:
    """A signature made with another secret gives SignatureDoesNotMatch."""
    signed = sign_header(creds=_creds(secret="not-the-secret"))

    assert "SignatureDoesNotMatch" == _error(signed).code


def test_unknown_key_is_rejected() -> None:
    """An access key id we do not know gives InvalidClientTokenId (403)."""
    signed = sign_header(creds=_creds(key_id="AKIAUNKNOWN000000000"))

    err = _error(signed)

    assert ("InvalidClientTokenId", 403) == (err.code, err.status)
    assert "The security token included in the request is invalid." == err.message


def test_wrong_region_is_rejected() -> None:
    """A credential scoped to another region gives SignatureDoesNotMatch."""
    signed = sign_header(region="eu-west-1")

    err = _error(signed)

    assert "SignatureDoesNotMatch" == err.code
    assert (
        "Credential should be scoped to a valid region, not 'eu-west-1'." == err.message
    )


def test_wrong_service_is_rejected() -> None:
    """A credential scoped to another service gives SignatureDoesNotMatch."""
    signed = sign_header(service="sqs")

    err = _error(signed)

    assert "SignatureDoesNotMatch" == err.code
    assert "Credential should be scoped to correct service: 'sns'." == err.message


def test_stale_header_date_is_rejected() -> None:
    """A header-signed request older than the skew gives AWS's 'Signature expired'."""
    fresh = sign_header()
    signed = replace(fresh, now=fresh.now + 301)

    err = _error(signed)

    assert ("SignatureDoesNotMatch", 403) == (err.code, err.status)
    assert err.message.startswith(f"Signature expired: {signed.headers['X-Amz-Date']}")
    assert err.message.endswith(" - 5 min.)")


def test_future_header_date_is_rejected() -> None:
    """A request dated beyond the skew in the future is not yet current."""
    signed = sign_header()

    err = _error(signed, now=signed.now - 301)

    assert "SignatureDoesNotMatch" == err.code
    assert err.message.startswith("Signature not yet current:")


def test_date_within_skew_is_accepted() -> None:
    """A request 299 seconds old still verifies."""
    signed = sign_header()

    assert KEY == signed.verify(now=signed.now + 299)


def test_expired_presigned_url_is_rejected() -> None:
    """A presigned URL used after X-Amz-Expires gives RequestExpired (400)."""
    signed = sign_query({"Action": "ListTopics"}, expires=60)

    err = _error(signed, now=signed.now + 61)

    assert ("RequestExpired", 400, "Request has expired.") == (
        err.code,
        err.status,
        err.message,
    )


def test_presigned_url_within_expiry_is_accepted() -> None:
    """A presigned URL may be used until X-Amz-Expires, even beyond the skew."""
    signed = sign_query({"Action": "ListTopics"}, expires=3600)

    assert KEY == signed.verify(now=signed.now + 3599)


def test_missing_authentication() -> None:
    """A request without any signature gives MissingAuthenticationToken (403)."""
    err = _error(sign_header(), headers={"Host": "127.0.0.1:8080"})

    assert ("MissingAuthenticationToken", 403) == (err.code, err.status)
    assert "Request is missing Authentication Token" == err.message


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sns/aws4_request",
        "Bearer abc",
        "AWS AKIAIOSFODNN7EXAMPLE:sig",
        "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00",
    ],
)
def test_malformed_authorization_header(authorization: str) -> None:
    """A malformed Authorization header gives IncompleteSignature (400)."""
    signed = sign_header()

    err = _error(signed, headers={**signed.headers, "Authorization": authorization})

    assert ("IncompleteSignature", 400) == (err.code, err.status)


def test_bad_amz_date_is_rejected() -> None:
    """An X-Amz-Date not in ISO-8601 basic format gives IncompleteSignature."""
    signed = sign_header()

    err = _error(signed, headers={**signed.headers, "X-Amz-Date": "yesterday"})

    assert "IncompleteSignature" == err.code


def test_scope_date_must_match_amz_date() -> None:
    """A credential scope date that differs from X-Amz-Date is refused."""
    signed = sign_header()
    headers = {**signed.headers, "X-Amz-Date": "20200101T000000Z"}

    err = _error(signed, headers=headers, now=1577836800.0)

    assert "SignatureDoesNotMatch" == err.code
    assert err.message.startswith("Date in Credential scope does not match")


def test_both_auth_forms_are_rejected() -> None:
    """Authorization header and presigned query together give IncompleteSignature."""
    signed = sign_query({"Action": "ListTopics"})
    header = sign_header().headers["Authorization"]

    err = _error(signed, headers={**signed.headers, "Authorization": header})

    assert "IncompleteSignature" == err.code


def test_incomplete_presigned_query_is_rejected() -> None:
    """A presigned URL without X-Amz-Credential gives IncompleteSignature."""
    signed = sign_query({"Action": "ListTopics"})
    query = [(k, v) for k, v in signed.query if k != "X-Amz-Credential"]

    assert "IncompleteSignature" == _error(signed, query=query).code


@pytest.mark.parametrize("expires", ["soon", "-1", "604801", "99999999999"])
def test_bad_expires_is_rejected(expires: str) -> None:
    """An X-Amz-Expires that is not 0..604800 gives IncompleteSignature."""
    signed = sign_query({"Action": "ListTopics"})
    query = [(k, expires if k == "X-Amz-Expires" else v) for k, v in signed.query]

    assert "IncompleteSignature" == _error(signed, query=query).code


def test_declared_payload_hash_must_match_body() -> None:
    """A signed x-amz-content-sha256 that is not the body's hash is refused."""
    fake = "0" * 64
    signed = sign_header(headers={"X-Amz-Content-SHA256": fake})

    assert "SignatureDoesNotMatch" == _error(signed).code


def test_declared_payload_hash_matching_body_is_accepted() -> None:
    """A signed x-amz-content-sha256 equal to the body's hash verifies."""
    signed = sign_header(
        headers={"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()}
    )

    assert KEY == signed.verify()


def test_unsigned_payload_with_a_body_is_rejected() -> None:
    """UNSIGNED-PAYLOAD cannot be used to leave a header-signed body unprotected."""
    signed = sign_header(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})

    assert "SignatureDoesNotMatch" == _error(signed).code


def test_host_must_be_signed() -> None:
    """A signature whose SignedHeaders lacks `host` is refused."""
    signed = sign_header()
    auth = signed.headers["Authorization"].replace("host;", "")

    err = _error(signed, headers={**signed.headers, "Authorization": auth})

    assert "SignatureDoesNotMatch" == err.code
    assert "'Host' or ':authority' must be a 'SignedHeader'" in err.message


def test_changed_host_is_rejected() -> None:
    """The same request sent to another Host does not verify."""
    signed = sign_header()

    err = _error(signed, headers={**signed.headers, "Host": "evil.example:8080"})

    assert "SignatureDoesNotMatch" == err.code


def test_path_is_part_of_the_signature() -> None:
    """A request signed for another path does not verify on `/`."""
    signed = sign_header(url="http://127.0.0.1:8080/other")

    assert KEY == signed.verify()
    assert "SignatureDoesNotMatch" == _error(signed, path="/").code


def test_sign_post_matches_botocore_and_verifies() -> None:
    """The bench's signer makes botocore's exact Authorization at the same instant."""
    botocore_signed = sign_header()
    ours = sign_post(
        host="127.0.0.1:8080",
        path="/",
        body=BODY,
        content_type=FORM,
        access_key_id=KEY.access_key_id,
        secret=KEY.secret_access_key,
        region="us-east-1",
        now=botocore_signed.now,
    )
    assert ours["Authorization"] == botocore_signed.headers["Authorization"]
    signed = Signed("POST", "/", [], ours, BODY, botocore_signed.now)
    assert signed.verify() == KEY
    assert _error(signed, body=BODY + b"x").code == "SignatureDoesNotMatch"
