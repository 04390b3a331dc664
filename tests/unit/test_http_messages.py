"""pushgw/sns/http_messages.py: the three SNS HTTP documents, their headers, the
string to sign, and signatures checked with our verifier (AWS's algorithm)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import stat
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from pushgw.model import MessageAttribute
from pushgw.sns import http_messages as hm
from pushgw.sns.http_messages import SigningKey

ROOT = Path(__file__).resolve().parents[2]
DEV_KEY = ROOT / "config" / "dev-sns-signing.key"
DEV_CERT = ROOT / "config" / "dev-sns-signing.pem"
PUBLIC_URL = "https://sns.example.test:8443"
TOPIC = "arn:aws:sns:us-east-1:123456789012:MyTopic"
SUB = f"{TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
MESSAGE_ID = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
TOKEN = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92"
# 2026-12-03T11:52:00.123Z
WHEN = dt.datetime(2026, 12, 3, 11, 52, 0, 123000, tzinfo=dt.UTC).timestamp()
STAMP = "2026-12-03T11:52:00.123Z"


def notification_document(
    key: SigningKey, public_url: str, *, subscription_arn: str, **fields: Any
) -> hm.HttpDelivery:
    """One subscriber's notification, signed for it alone."""
    return hm.sign_notification(key, public_url, **fields).for_subscription(
        subscription_arn
    )


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.from_files(DEV_KEY, DEV_CERT)


def doc(delivery: hm.HttpDelivery) -> dict[str, Any]:
    parsed = json.loads(delivery.body)
    assert isinstance(parsed, dict)
    return parsed


def notification(key: SigningKey, version: str = "1", **kw: Any) -> hm.HttpDelivery:
    args: dict[str, Any] = {
        "subscription_arn": SUB,
        "message_id": MESSAGE_ID,
        "topic_arn": TOPIC,
        "message": "Hello world!",
        "timestamp": WHEN,
        "subject": "My First Message",
        "signature_version": version,
    }
    args.update(kw)
    return notification_document(key, PUBLIC_URL, **args)


def sub_confirmation(key: SigningKey, version: str = "1", **kw: Any) -> hm.HttpDelivery:
    return hm.subscription_confirmation(
        key,
        PUBLIC_URL,
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        token=TOKEN,
        timestamp=WHEN,
        signature_version=version,
        **kw,
    )


def unsub_confirmation(
    key: SigningKey, version: str = "1", **kw: Any
) -> hm.HttpDelivery:
    return hm.unsubscribe_confirmation(
        key,
        PUBLIC_URL,
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        subscription_arn=SUB,
        token=TOKEN,
        timestamp=WHEN,
        signature_version=version,
        **kw,
    )


BUILDERS = {
    "Notification": notification,
    "SubscriptionConfirmation": sub_confirmation,
    "UnsubscribeConfirmation": unsub_confirmation,
}


# ------------------------------------------------------------- string to sign


def test_string_to_sign_of_aws_documented_notification_example():
    """The example of 'Verifying the signatures of Amazon SNS messages'."""
    document = {
        "Type": "Notification",
        "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
        "TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
        "Subject": "My subject",
        "Message": "My Test Message",
        "Timestamp": "2012-06-05T04:37:04.321Z",
        "SignatureVersion": "1",
        "Signature": "x",
        "SigningCertURL": "https://sns.us-east-2.amazonaws.com/x.pem",
        "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
    }
    assert hm.string_to_sign(document) == (
        "Message\nMy Test Message\n"
        "MessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\n"
        "Subject\nMy subject\n"
        "Timestamp\n2012-06-05T04:37:04.321Z\n"
        "TopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\n"
        "Type\nNotification\n"
    )


def test_string_to_sign_notification_without_subject(key):
    document = doc(notification(key, subject=None, message="line1\nline2 ünï"))
    assert "Subject" not in document
    assert hm.string_to_sign(document) == (
        "Message\nline1\nline2 ünï\n"
        f"MessageId\n{MESSAGE_ID}\n"
        f"Timestamp\n{STAMP}\n"
        f"TopicArn\n{TOPIC}\n"
        "Type\nNotification\n"
    )


def test_string_to_sign_notification_with_subject(key):
    assert hm.string_to_sign(doc(notification(key))) == (
        "Message\nHello world!\n"
        f"MessageId\n{MESSAGE_ID}\n"
        "Subject\nMy First Message\n"
        f"Timestamp\n{STAMP}\n"
        f"TopicArn\n{TOPIC}\n"
        "Type\nNotification\n"
    )


@pytest.mark.parametrize(
    ("build", "kind", "text"),
    [
        (
            sub_confirmation,
            "SubscriptionConfirmation",
            f"You have chosen to subscribe to the topic {TOPIC}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
        ),
        (
            unsub_confirmation,
            "UnsubscribeConfirmation",
            f"You have chosen to deactivate subscription {SUB}.\n"
            "To cancel this operation and restore the subscription, visit the "
            "SubscribeURL included in this message.",
        ),
    ],
)
def test_string_to_sign_confirmations_include_token_and_subscribe_url(
    key, build, kind, text
):
    document = doc(build(key))
    url = f"{PUBLIC_URL}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={TOKEN}"
    assert document["Message"] == text
    assert document["SubscribeURL"] == url
    assert hm.string_to_sign(document) == (
        f"Message\n{text}\n"
        f"MessageId\n{MESSAGE_ID}\n"
        f"SubscribeURL\n{url}\n"
        f"Timestamp\n{STAMP}\n"
        f"Token\n{TOKEN}\n"
        f"TopicArn\n{TOPIC}\n"
        f"Type\n{kind}\n"
    )


def test_string_to_sign_refuses_unknown_type_and_missing_fields(key):
    with pytest.raises(ValueError, match="unknown SNS message Type"):
        hm.string_to_sign({"Type": "Other"})
    document = doc(sub_confirmation(key))
    del document["Token"]
    with pytest.raises(ValueError, match="Token"):
        hm.string_to_sign(document)


# ------------------------------------------------------------------ signatures


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_signature_verifies(key, kind, version):
    document = doc(BUILDERS[kind](key, version))
    assert document["Type"] == kind
    assert document["SignatureVersion"] == version
    assert hm.verify(document, DEV_CERT.read_bytes())


@pytest.mark.parametrize("version", ["1", "2"])
def test_signature_algorithm_matches_version(key, version):
    """v1 is SHA1withRSA, v2 SHA256withRSA, PKCS#1 v1.5, checked with the
    primitive directly rather than through our verifier."""
    document = doc(notification(key, version))
    public = x509.load_pem_x509_certificate(DEV_CERT.read_bytes()).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    public.verify(
        base64.b64decode(document["Signature"]),
        hm.string_to_sign(document).encode(),
        padding.PKCS1v15(),
        algorithm,
    )
    # The same signature under the other version's label does not verify.
    document["SignatureVersion"] = "2" if version == "1" else "1"
    assert not hm.verify(document, DEV_CERT.read_bytes())


SIGNED_FIELDS = {
    "Notification": [
        "Message",
        "MessageId",
        "Subject",
        "Timestamp",
        "TopicArn",
        "Type",
    ],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field) for kind, fields in SIGNED_FIELDS.items() for field in fields],
)
def test_tampered_signed_field_fails(key, kind, field, version):
    document = doc(BUILDERS[kind](key, version))
    if field == "Type":  # another valid type: the string to sign changes shape
        document["Type"] = (
            "UnsubscribeConfirmation"
            if kind != "UnsubscribeConfirmation"
            else "SubscriptionConfirmation"
        )
        document.setdefault("Token", TOKEN)
        document.setdefault("SubscribeURL", "https://x/")
    else:
        document[field] = document[field] + "x"
    assert not hm.verify(document, DEV_CERT.read_bytes())


def test_removed_subject_fails(key):
    document = doc(notification(key))
    del document["Subject"]
    assert not hm.verify(document, DEV_CERT.read_bytes())


def test_unsigned_fields_are_not_covered(key):
    """What the signature covers, and so what a receiver may not rely on."""
    document = doc(notification(key))
    document["UnsubscribeURL"] = "https://elsewhere.example/"
    document["SigningCertURL"] = "https://elsewhere.example/c.pem"
    assert hm.verify(document, DEV_CERT.read_bytes())


def test_verify_rejects_garbage_without_raising(key):
    good = doc(notification(key))
    cert = DEV_CERT.read_bytes()
    for change in (
        {"Signature": "not base64!"},
        {"Signature": base64.b64encode(b"short").decode()},
        {"Signature": None},
        {"SignatureVersion": "3"},
        {"SignatureVersion": 1},
        {"Type": "Other"},
        {"Message": None},
    ):
        assert not hm.verify({**good, **change}, cert), change
    assert not hm.verify(good, b"not a certificate")
    # Another key's certificate.
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not hm.verify(good, self_signed(other_key))
    # A certificate whose key is not RSA.
    assert not hm.verify(good, self_signed(ec.generate_private_key(ec.SECP256R1())))


def self_signed(private_key: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_sign_rejects_unknown_version(key):
    with pytest.raises(ValueError, match="SignatureVersion must be 1 or 2"):
        key.sign("x", "3")
    with pytest.raises(ValueError, match="SignatureVersion"):
        notification(key, "0")


def test_documents_are_deterministic(key):
    """PKCS#1 v1.5 is deterministic and Timestamp is an input: a retry (or another
    worker) rebuilding a document sends the same bytes."""
    assert notification(key) == notification(key)
    assert sub_confirmation(key, "2") == sub_confirmation(key, "2")


def test_fan_out_signs_once(key, monkeypatch):
    calls = []
    real = SigningKey.sign

    def counting(self: SigningKey, text: str, version: str) -> str:
        calls.append(text)
        return real(self, text, version)

    monkeypatch.setattr(SigningKey, "sign", counting)
    signed = hm.sign_notification(
        key,
        PUBLIC_URL,
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        message="fan out",
        timestamp=WHEN,
        signature_version="2",
    )
    deliveries = [signed.for_subscription(f"{TOPIC}:{n:04d}") for n in range(100)]
    assert len(calls) == 1
    cert = DEV_CERT.read_bytes()
    for n, delivery in enumerate(deliveries):
        document = doc(delivery)
        assert hm.verify(document, cert)
        assert document["UnsubscribeURL"].endswith(f"SubscriptionArn={TOPIC}:{n:04d}")
        assert delivery.headers["x-amz-sns-subscription-arn"] == f"{TOPIC}:{n:04d}"
        assert document["Signature"] == signed.signature
    # Signed afresh for one subscriber: exactly what the shared signature gave.
    one = notification_document(
        key,
        PUBLIC_URL,
        subscription_arn=f"{TOPIC}:0007",
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        message="fan out",
        timestamp=WHEN,
        signature_version="2",
    )
    assert one == deliveries[7]


# ------------------------------------------------------------ shape and headers


def test_json_key_order_matches_aws_examples(key):
    attrs = {"a": MessageAttribute("String", "v")}
    assert list(doc(notification(key, attributes=attrs))) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
        "MessageAttributes",
    ]
    assert list(doc(notification(key, subject=None))) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
    ]
    confirmation_order = [
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Message",
        "SubscribeURL",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ]
    assert list(doc(sub_confirmation(key))) == confirmation_order
    assert list(doc(unsub_confirmation(key))) == confirmation_order


def test_body_is_printed_as_aws_prints_it(key):
    body = notification(
        key, message='ünï "q"\n', attributes={"k": MessageAttribute("Number", "1.5")}
    ).body
    lines = body.split("\n")
    assert lines[0] == "{"
    assert lines[1] == '  "Type" : "Notification",'
    assert '  "Message" : "ünï \\"q\\"\\n",' in lines  # UTF-8, JSON escapes only
    assert lines[-4:] == [
        '  "MessageAttributes" : {',
        '    "k" : {"Type":"Number","Value":"1.5"}',
        "  }",
        "}",
    ]


def test_urls(key):
    document = doc(notification(key))
    assert document["SigningCertURL"] == PUBLIC_URL + key.cert_path
    assert re.fullmatch(r"/SimpleNotificationService-[0-9a-f]{32}\.pem", key.cert_path)
    assert (
        document["UnsubscribeURL"]
        == f"{PUBLIC_URL}/?Action=Unsubscribe&SubscriptionArn={SUB}"
    )
    # A trailing slash or a path prefix on the public URL.
    assert hm.unsubscribe_url("https://h.example/sns/", SUB) == (
        f"https://h.example/sns/?Action=Unsubscribe&SubscriptionArn={SUB}"
    )
    assert key.cert_url("https://h.example/") == "https://h.example" + key.cert_path
    # Characters outside an ARN's alphabet are percent-encoded.
    assert hm.subscribe_url("https://h", "arn:a b&c", "t/k+n") == (
        "https://h/?Action=ConfirmSubscription&TopicArn=arn:a%20b%26c&Token=t%2Fk%2Bn"
    )


def test_notification_headers(key):
    assert dict(notification(key).headers) == {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": MESSAGE_ID,
        "x-amz-sns-topic-arn": TOPIC,
        "x-amz-sns-subscription-arn": SUB,
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    assert (
        notification(key, content_type="application/json").headers["Content-Type"]
        == "application/json"
    )
    signed = hm.sign_notification(
        key,
        PUBLIC_URL,
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        message="m",
        timestamp=WHEN,
        content_type="application/json",
    )
    assert signed.for_subscription(SUB).headers["Content-Type"] == "application/json"
    assert (
        signed.for_subscription(SUB, content_type="text/xml").headers["Content-Type"]
        == "text/xml"
    )


def test_confirmation_headers(key):
    """As AWS's examples: no subscription ARN header on SubscriptionConfirmation,
    one on UnsubscribeConfirmation."""
    headers = dict(sub_confirmation(key).headers)
    assert headers == {
        "x-amz-sns-message-type": "SubscriptionConfirmation",
        "x-amz-sns-message-id": MESSAGE_ID,
        "x-amz-sns-topic-arn": TOPIC,
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    assert (
        sub_confirmation(key, subscription_arn=SUB).headers[
            "x-amz-sns-subscription-arn"
        ]
        == SUB
    )
    headers = dict(unsub_confirmation(key, content_type="application/json").headers)
    assert headers["x-amz-sns-message-type"] == "UnsubscribeConfirmation"
    assert headers["x-amz-sns-subscription-arn"] == SUB
    assert headers["Content-Type"] == "application/json"


def test_raw_delivery():
    delivery = hm.raw_notification(
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        subscription_arn=SUB,
        message='{"exactly": "as published"} ü',
    )
    assert delivery.body == '{"exactly": "as published"} ü'
    assert delivery.body_bytes == '{"exactly": "as published"} ü'.encode()
    assert dict(delivery.headers) == {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": MESSAGE_ID,
        "x-amz-sns-topic-arn": TOPIC,
        "x-amz-sns-subscription-arn": SUB,
        "x-amz-sns-rawdelivery": "true",
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    custom = hm.raw_notification(
        message_id=MESSAGE_ID,
        topic_arn=TOPIC,
        subscription_arn=SUB,
        message="m",
        content_type="application/json",
    )
    assert custom.headers["Content-Type"] == "application/json"


def test_timestamp_format(key):
    assert hm.sns_timestamp(WHEN) == STAMP
    assert hm.sns_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert hm.sns_timestamp(WHEN + 0.8769) == "2026-12-03T11:52:00.999Z"  # truncated
    for document in (doc(notification(key)), doc(sub_confirmation(key))):
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["Timestamp"]
        )
        assert document["Timestamp"] == STAMP


def test_attributes_rendering(key):
    attrs = {
        "s": MessageAttribute("String", "text ü"),
        "n": MessageAttribute("Number", "-12.5e3"),
        "f": MessageAttribute("Number.float", "1"),
        "arr": MessageAttribute("String.Array", '["a", 1, null]'),
        "bin": MessageAttribute("Binary", binary_value=b"\x00\xffbytes"),
        "empty": MessageAttribute("String", ""),
    }
    expected = {
        "s": {"Type": "String", "Value": "text ü"},
        "n": {"Type": "Number", "Value": "-12.5e3"},
        "f": {"Type": "Number.float", "Value": "1"},
        "arr": {"Type": "String.Array", "Value": '["a", 1, null]'},
        "bin": {"Type": "Binary", "Value": base64.b64encode(b"\x00\xffbytes").decode()},
        "empty": {"Type": "String", "Value": ""},
    }
    assert hm.render_attributes(attrs) == expected
    document = doc(notification(key, attributes=attrs))
    assert document["MessageAttributes"] == expected
    assert list(document["MessageAttributes"]) == list(attrs)  # order kept
    assert hm.verify(document, DEV_CERT.read_bytes())  # attributes are not signed
    assert "MessageAttributes" not in doc(notification(key, attributes={}))


# ------------------------------------------------------------------------ keys


def test_key_and_certificate_must_match(tmp_path):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key_pem = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 loads too
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="does not match"):
        SigningKey.from_pem(other_key_pem, DEV_CERT.read_bytes())
    SigningKey.from_pem(other_key_pem, self_signed(other_key))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="must be an RSA key"):
        SigningKey.from_pem(ec_pem, self_signed(ec_key))
    with pytest.raises(ValueError, match="unreadable SNS signing key"):
        SigningKey.from_pem(b"nope", DEV_CERT.read_bytes())
    with pytest.raises(ValueError, match="unreadable SNS signing certificate"):
        SigningKey.from_pem(DEV_KEY.read_bytes(), b"nope")


def test_generate_dev_signing_pair(tmp_path):
    key_path, cert_path = hm.generate_dev_signing_pair(
        tmp_path / "new",
        hm.host_of("http://localhost:8080/"),
        extra_hosts=("127.0.0.1",),
        days=30,
    )
    assert (key_path.name, cert_path.name) == (
        "dev-sns-signing.key",
        "dev-sns-signing.pem",
    )
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    signing = SigningKey.from_files(key_path, cert_path)
    cert = signing.certificate
    assert (
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert 29 <= (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days <= 30
    document = doc(
        notification_document(
            signing,
            "http://localhost:8080",
            subscription_arn=SUB,
            message_id=MESSAGE_ID,
            topic_arn=TOPIC,
            message="m",
            timestamp=WHEN,
        )
    )
    assert hm.verify(document, cert_path.read_bytes())
    with pytest.raises(ValueError, match="no host"):
        hm.host_of("not a url")


def test_committed_dev_pair_is_packaged_and_long_lived():
    for name in ("dev-sns-signing.key", "dev-sns-signing.pem"):
        packaged = resources.files("pushgw").joinpath("defaults", name).read_bytes()
        assert packaged == (ROOT / "config" / name).read_bytes()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"defaults/dev-sns-signing.key"' in pyproject
    assert '"defaults/dev-sns-signing.pem"' in pyproject
    signing = SigningKey.from_files(DEV_KEY, DEV_CERT)
    public = signing.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert signing.certificate.not_valid_after_utc.year >= 2100
    san = signing.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
