"""
The HTTP/HTTPS documents SNS POSTs to `http`/`https` subscribers, signed as SNS
signs them (HTTP_SUBSCRIPTIONS.md §2, §3). Pure: no I/O but reading PEM files in
`SigningKey.from_files` and writing them in `generate_dev_signing_pair`; no store.

The three documents, their fields in the order AWS's examples show them:

- `Notification`: Type, MessageId, TopicArn, Subject (only when published with
  one), Message, Timestamp, SignatureVersion, Signature, SigningCertURL,
  UnsubscribeURL, MessageAttributes (only when the message has some).
- `SubscriptionConfirmation` / `UnsubscribeConfirmation`: Type, MessageId, Token,
  TopicArn, Message, SubscribeURL, Timestamp, SignatureVersion, Signature,
  SigningCertURL.

The string to sign is `name\\nvalue\\n` for each signed field in byte order:
Message, MessageId, Subject (if present), Timestamp, TopicArn, Type for a
notification; Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type
for both confirmations. SignatureVersion `1` is SHA1withRSA, `2` SHA256withRSA
(PKCS#1 v1.5), base64 in `Signature`.

Signing once per message, not once per subscriber. RSA signing costs about a
millisecond, and nothing a notification's signature covers depends on the
subscriber (the subscription ARN appears only in UnsubscribeURL and a header).
So a fan-out signs in two steps:

    signed = sign_notification(key, public_url, message_id=..., topic_arn=...,
                               message=text, timestamp=published_at,
                               subject=..., attributes=..., signature_version=...)
    for sub in chunk:
        delivery = signed.for_subscription(sub.arn)      # no RSA, string joins

`SignedNotification` is immutable and holds the finished body up to
SigningCertURL and the part after UnsubscribeURL; `for_subscription` only
splices the subscriber's UnsubscribeURL in. A message whose text differs per
protocol (MessageStructure=json with distinct `http` and `https` keys) needs
one `SignedNotification` per distinct text: at most two per message. Since PKCS#1
v1.5 signatures are deterministic and Timestamp is the publish time, signing the
same message again (a retried chunk, another worker) yields byte-identical
documents, so nothing needs to be stored between attempts.

Raw delivery (`RawMessageDelivery=true`) is not signed: the body is the message
itself (`raw_notification`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from pushgw.model import MessageAttribute

NOTIFICATION: Final = "Notification"
SUBSCRIPTION_CONFIRMATION: Final = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION: Final = "UnsubscribeConfirmation"
MESSAGE_TYPES: Final = (
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    UNSUBSCRIBE_CONFIRMATION,
)

SIGNATURE_VERSIONS: Final = ("1", "2")
DEFAULT_CONTENT_TYPE: Final = "text/plain; charset=UTF-8"
USER_AGENT: Final = "Amazon Simple Notification Service Agent"

# Signed fields, in the (byte) order of the string to sign [doc].
NOTIFICATION_SIGNED: Final = (
    "Message",
    "MessageId",
    "Subject",
    "Timestamp",
    "TopicArn",
    "Type",
)
CONFIRMATION_SIGNED: Final = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
OPTIONAL_SIGNED: Final = frozenset({"Subject"})

_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}

# How AWS prints its documents: two-space indent and `"Name" : value`.
_INDENT: Final = "  "


# --------------------------------------------------------------------------- keys


class SigningKey:
    """The RSA key SNS documents are signed with, and the certificate subscribers
    fetch from SigningCertURL to check them.

    `cert_path` is where the HTTP server must serve `cert_pem` (GET, 200,
    `Content-Type: application/x-pem-file` or text/plain): a path named after the
    certificate's SHA-256, `/SimpleNotificationService-<32 hex>.pem`, in the
    shape of AWS's own (`SimpleNotificationService-<hash>.pem`). It changes when
    the certificate changes, so validators that cache certificates by URL (as
    sns-validator does) never pair a new signature with an old cached key; a
    server that keeps serving the previous certificate at its old path lets
    in-flight retries of old documents still verify.
    """

    __slots__ = ("_key", "cert_path", "cert_pem", "certificate")

    def __init__(
        self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate
    ) -> None:
        public = certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey) or (
            public.public_numbers() != private_key.public_key().public_numbers()
        ):
            raise ValueError(
                "the SNS signing certificate does not match the signing key"
            )
        self._key = private_key
        self.certificate = certificate
        self.cert_pem: bytes = certificate.public_bytes(serialization.Encoding.PEM)
        digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER))
        self.cert_path: str = (
            f"/SimpleNotificationService-{digest.hexdigest()[:32]}.pem"
        )

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes) -> SigningKey:
        """From an unencrypted PEM private key (PKCS#1 or PKCS#8) and a PEM
        certificate; ValueError when either is unreadable, not RSA, or they do
        not belong together."""
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"unreadable SNS signing key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the SNS signing key must be an RSA key")
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise ValueError(f"unreadable SNS signing certificate: {exc}") from None
        return cls(key, cert)

    @classmethod
    def from_files(
        cls, key_file: str | os.PathLike[str], cert_file: str | os.PathLike[str]
    ) -> SigningKey:
        return cls.from_pem(Path(key_file).read_bytes(), Path(cert_file).read_bytes())

    def cert_url(self, public_url: str) -> str:
        """SigningCertURL for documents sent under `public_url`."""
        return _base(public_url) + self.cert_path

    def sign(self, string_to_sign: str, version: str) -> str:
        """Base64 PKCS#1 v1.5 signature of the UTF-8 string: SHA1withRSA for
        SignatureVersion "1", SHA256withRSA for "2". About 1 ms (RSA-2048)."""
        algorithm = _hash_for(version)
        raw = self._key.sign(
            string_to_sign.encode("utf-8"), padding.PKCS1v15(), algorithm()
        )
        return base64.b64encode(raw).decode("ascii")


def _hash_for(version: str) -> type[hashes.HashAlgorithm]:
    try:
        return _HASHES[version]
    except KeyError:
        raise ValueError(f"SignatureVersion must be 1 or 2, not {version!r}") from None


# ------------------------------------------------------------------ small pieces


def sns_timestamp(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as SNS writes Timestamp
    (2026-12-03T11:52:00.123Z); milliseconds truncated, not rounded."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def subscribe_url(public_url: str, topic_arn: str, token: str) -> str:
    """The SubscribeURL of both confirmations (a GET of ConfirmSubscription).
    ARNs keep their colons, as in AWS's URLs; anything else unusual is quoted."""
    return (
        f"{_base(public_url)}/?Action=ConfirmSubscription"
        f"&TopicArn={quote(topic_arn, safe=':')}&Token={quote(token, safe='')}"
    )


def unsubscribe_url(public_url: str, subscription_arn: str) -> str:
    """A notification's UnsubscribeURL (a GET of Unsubscribe)."""
    return f"{_base(public_url)}/?Action=Unsubscribe&SubscriptionArn={quote(subscription_arn, safe=':')}"


def subscription_confirmation_text(topic_arn: str) -> str:
    return (
        f"You have chosen to subscribe to the topic {topic_arn}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )


def unsubscribe_confirmation_text(subscription_arn: str) -> str:
    return (
        f"You have chosen to deactivate subscription {subscription_arn}.\n"
        "To cancel this operation and restore the subscription, visit the "
        "SubscribeURL included in this message."
    )


def render_attributes(
    attributes: Mapping[str, MessageAttribute],
) -> dict[str, dict[str, str]]:
    """MessageAttributes as a notification carries them: `{"name": {"Type":
    DataType, "Value": text}}`. The DataType is kept whole (custom suffixes such
    as `Number.float` included); String, String.Array (its JSON array text) and
    Number values as published; Binary values base64."""
    out: dict[str, dict[str, str]] = {}
    for name, attribute in attributes.items():
        if attribute.binary_value is not None:
            value = base64.b64encode(attribute.binary_value).decode("ascii")
        else:
            value = attribute.string_value or ""
        out[name] = {"Type": attribute.data_type, "Value": value}
    return out


def string_to_sign(document: Mapping[str, Any]) -> str:
    """The canonical string SNS signs for `document` (by its Type); ValueError
    for an unknown Type or a missing or non-string signed field."""
    kind = document.get("Type")
    if kind == NOTIFICATION:
        names: Sequence[str] = NOTIFICATION_SIGNED
    elif kind in (SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION):
        names = CONFIRMATION_SIGNED
    else:
        raise ValueError(f"unknown SNS message Type {kind!r}")
    parts: list[str] = []
    for name in names:
        value = document.get(name)
        if value is None and name in OPTIONAL_SIGNED:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{kind} field {name} is missing or not a string")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts)


def _line(name: str, value: Any) -> str:
    return f"{_INDENT}{json.dumps(name)} : {json.dumps(value, ensure_ascii=False)}"


def _attributes_line(rendered: Mapping[str, Mapping[str, str]]) -> str:
    inner = ",\n".join(
        f"{_INDENT * 2}{json.dumps(name, ensure_ascii=False)} : "
        f"{json.dumps(value, ensure_ascii=False, separators=(',', ':'))}"
        for name, value in rendered.items()
    )
    return f'{_INDENT}"MessageAttributes" : {{\n{inner}\n{_INDENT}}}'


def _body(lines: Sequence[str]) -> str:
    return "{\n" + ",\n".join(lines) + "\n}"


# ---------------------------------------------------------------- the documents


@dataclass(frozen=True, slots=True)
class HttpDelivery:
    """One POST: `body` (to send UTF-8 encoded) and its headers, in order. The
    HTTP client adds Host, Content-Length and Connection itself."""

    body: str
    headers: Mapping[str, str]

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8")


def _headers(
    kind: str,
    message_id: str,
    topic_arn: str,
    subscription_arn: str | None,
    content_type: str | None,
    *,
    raw: bool = False,
) -> dict[str, str]:
    headers = {
        "x-amz-sns-message-type": kind,
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-topic-arn": topic_arn,
    }
    if subscription_arn is not None:
        headers["x-amz-sns-subscription-arn"] = subscription_arn
    if raw:
        headers["x-amz-sns-rawdelivery"] = "true"
    headers["Content-Type"] = content_type or DEFAULT_CONTENT_TYPE
    headers["User-Agent"] = USER_AGENT
    return headers


@dataclass(frozen=True, slots=True)
class SignedNotification:
    """A notification signed once, for every subscriber of one message text.
    Built by `sign_notification`; `for_subscription` is cheap."""

    message_id: str
    topic_arn: str
    public_url: str
    signature: str
    content_type: str | None
    head: str  # the body's lines up to SigningCertURL, joined
    tail: str  # the MessageAttributes line, or ""

    def for_subscription(
        self, subscription_arn: str, *, content_type: str | None = None
    ) -> HttpDelivery:
        """The POST for one subscriber; `content_type` overrides the one given
        to `sign_notification` (a subscription's own delivery policy)."""
        lines = [
            self.head,
            _line("UnsubscribeURL", unsubscribe_url(self.public_url, subscription_arn)),
        ]
        if self.tail:
            lines.append(self.tail)
        return HttpDelivery(
            body=_body(lines),
            headers=_headers(
                NOTIFICATION,
                self.message_id,
                self.topic_arn,
                subscription_arn,
                content_type or self.content_type,
            ),
        )


def sign_notification(
    key: SigningKey,
    public_url: str,
    *,
    message_id: str,
    topic_arn: str,
    message: str,
    timestamp: float,
    subject: str | None = None,
    attributes: Mapping[str, MessageAttribute] | None = None,
    signature_version: str = "1",
    content_type: str | None = None,
) -> SignedNotification:
    """Sign a topic message's notification once (one RSA operation).

    `timestamp` is the publish time (epoch seconds), the same for every
    subscriber and every retry. `message` is the text for http/https
    subscribers (after MessageStructure=json selection). `attributes` appear as
    MessageAttributes when non-empty.
    """
    fields: dict[str, str] = {
        "Type": NOTIFICATION,
        "MessageId": message_id,
        "TopicArn": topic_arn,
    }
    if subject is not None:
        fields["Subject"] = subject
    fields["Message"] = message
    fields["Timestamp"] = sns_timestamp(timestamp)
    fields["SignatureVersion"] = signature_version
    signature = key.sign(string_to_sign(fields), signature_version)
    fields["Signature"] = signature
    fields["SigningCertURL"] = key.cert_url(public_url)
    head = ",\n".join(_line(name, value) for name, value in fields.items())
    tail = _attributes_line(render_attributes(attributes)) if attributes else ""
    return SignedNotification(
        message_id=message_id,
        topic_arn=topic_arn,
        public_url=public_url,
        signature=signature,
        content_type=content_type,
        head=head,
        tail=tail,
    )


def raw_notification(
    *,
    message_id: str,
    topic_arn: str,
    subscription_arn: str,
    message: str,
    content_type: str | None = None,
) -> HttpDelivery:
    """RawMessageDelivery=true: the message itself, unsigned, with the usual
    headers plus `x-amz-sns-rawdelivery: true`; no attributes are sent [doc]."""
    return HttpDelivery(
        body=message,
        headers=_headers(
            NOTIFICATION,
            message_id,
            topic_arn,
            subscription_arn,
            content_type,
            raw=True,
        ),
    )


def _confirmation(
    kind: str,
    key: SigningKey,
    public_url: str,
    *,
    message_id: str,
    topic_arn: str,
    token: str,
    text: str,
    timestamp: float,
    signature_version: str,
    subscription_arn_header: str | None,
    content_type: str | None,
) -> HttpDelivery:
    fields: dict[str, str] = {
        "Type": kind,
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": text,
        "SubscribeURL": subscribe_url(public_url, topic_arn, token),
        "Timestamp": sns_timestamp(timestamp),
        "SignatureVersion": signature_version,
    }
    fields["Signature"] = key.sign(string_to_sign(fields), signature_version)
    fields["SigningCertURL"] = key.cert_url(public_url)
    return HttpDelivery(
        body=_body([_line(name, value) for name, value in fields.items()]),
        headers=_headers(
            kind, message_id, topic_arn, subscription_arn_header, content_type
        ),
    )


def subscription_confirmation(
    key: SigningKey,
    public_url: str,
    *,
    message_id: str,
    topic_arn: str,
    token: str,
    timestamp: float,
    signature_version: str = "1",
    subscription_arn: str | None = None,
    content_type: str | None = None,
) -> HttpDelivery:
    """The SubscriptionConfirmation POSTed after Subscribe. AWS's example sends
    no x-amz-sns-subscription-arn header with it; pass `subscription_arn` only
    to send one anyway."""
    return _confirmation(
        SUBSCRIPTION_CONFIRMATION,
        key,
        public_url,
        message_id=message_id,
        topic_arn=topic_arn,
        token=token,
        text=subscription_confirmation_text(topic_arn),
        timestamp=timestamp,
        signature_version=signature_version,
        subscription_arn_header=subscription_arn,
        content_type=content_type,
    )


def unsubscribe_confirmation(
    key: SigningKey,
    public_url: str,
    *,
    message_id: str,
    topic_arn: str,
    subscription_arn: str,
    token: str,
    timestamp: float,
    signature_version: str = "1",
    content_type: str | None = None,
) -> HttpDelivery:
    """The UnsubscribeConfirmation POSTed after Unsubscribe; its SubscribeURL
    (ConfirmSubscription with a new `token`) restores the subscription. Carries
    the x-amz-sns-subscription-arn header, as AWS's example does."""
    return _confirmation(
        UNSUBSCRIBE_CONFIRMATION,
        key,
        public_url,
        message_id=message_id,
        topic_arn=topic_arn,
        token=token,
        text=unsubscribe_confirmation_text(subscription_arn),
        timestamp=timestamp,
        signature_version=signature_version,
        subscription_arn_header=subscription_arn,
        content_type=content_type,
    )


# ---------------------------------------------------------------- verification


def verify(document: Mapping[str, Any], cert_pem: bytes) -> bool:
    """AWS's verification algorithm: rebuild the string to sign for the
    document's Type, then check Signature (base64) with the certificate's RSA
    public key, SHA1 for SignatureVersion "1" and SHA256 for "2". False for
    anything malformed; never raises for bad input.

    It checks the signature only. A receiver must also check, before fetching
    the certificate, that SigningCertURL is https on a host it trusts (for
    pushgw: the host of its public URL), and that TopicArn is one it expects.
    """
    version = document.get("SignatureVersion")
    signature = document.get("Signature")
    if version not in SIGNATURE_VERSIONS or not isinstance(signature, str):
        return False
    try:
        text = string_to_sign(document)
        raw = base64.b64decode(signature, validate=True)
        public = x509.load_pem_x509_certificate(cert_pem).public_key()
    except (ValueError, binascii.Error):
        return False
    if not isinstance(public, rsa.RSAPublicKey):
        return False
    try:
        public.verify(
            raw, text.encode("utf-8"), padding.PKCS1v15(), _hash_for(version)()
        )
    except InvalidSignature:
        return False
    return True


# -------------------------------------------------------- development key pair


def generate_dev_signing_pair(
    directory: str | os.PathLike[str],
    host: str = "127.0.0.1",
    *,
    extra_hosts: Sequence[str] = (),
    days: int = 36525,
    name: str = "dev-sns-signing",
) -> tuple[Path, Path]:
    """Write a self-signed RSA-2048 signing pair for development:
    `<directory>/<name>.key` (PKCS#8 PEM, mode 0600) and `<name>.pem`.

    CN is `host` (the host of `server.public_url`, e.g. 127.0.0.1 or
    localhost); `host` and `extra_hosts` go into subjectAltName as IP addresses
    or DNS names. Validity `days` (default a century). Subscribers never check
    this certificate's chain or names, only its key; the TLS certificate that
    serves SigningCertURL is a separate matter. Returns (key_path, cert_path).
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, host),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "pushgw development (not for production)"
            ),
        ]
    )
    names: list[x509.GeneralName] = []
    for item in (host, *extra_hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            names.append(x509.DNSName(item))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path = target / f"{name}.key"
    cert_path = target / f"{name}.pem"
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    os.chmod(key_path, 0o600)  # O_CREAT's mode does not apply to an existing file
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def host_of(public_url: str) -> str:
    """The host part of a public base URL (for `generate_dev_signing_pair`)."""
    host = urlsplit(public_url).hostname
    if not host:
        raise ValueError(f"no host in public URL {public_url!r}")
    return host
