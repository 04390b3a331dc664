"""A third-party validator accepts pushgw's signed documents: the npm package
sns-validator (AWS's Node.js validator, pinned in tests/js/package-lock.json)
fetches our development signing certificate over HTTPS from 127.0.0.1, as a
subscriber would from `server.public_url`, and checks SignatureVersion 1 and 2.

Setup: `npm ci` in tests/js when node_modules is missing (about a second with
the registry reachable). Without node or npm this fails under CI=true and
skips elsewhere, like test_deploy.py with systemd-analyze.

sns-validator 0.3.5 builds the string to sign of an UnsubscribeConfirmation
with its notification key list, which lacks Token, whereas AWS's documentation
(and AWS's PHP validator, which signs every present key of the list Message,
MessageId, Subject, SubscribeURL, Timestamp, Token, TopicArn, Type) include
Token. pushgw signs as AWS documents, so sns-validator rejects our
UnsubscribeConfirmation exactly as it would AWS's; the test pins that, and Node's
own crypto (validate.js `awsAlgorithm`) confirms the signature over AWS's string.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from pushgw.model import MessageAttribute
from pushgw.sns import http_messages as hm
from pushgw.sns.http_messages import SigningKey
from tests import sns_validator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "arn:aws:sns:us-east-1:123456789012:MyTopic"
SUB = f"{TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
TOKEN = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92"
WHEN = 1796298720.123  # 2026-12-03T11:52:00.123Z
# sns-validator 0.3.5's signed keys for every Type but SubscriptionConfirmation.
SNS_VALIDATOR_UNSUBSCRIBE_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "TopicArn",
    "Type",
)
INVALID_SIGNATURE = "The message signature is invalid."
INVALID_DOMAIN = "The certificate is located on an invalid domain."


@pytest.fixture(scope="module")
def node() -> str:
    return sns_validator.node()


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.from_files(
        ROOT / "config" / "dev-sns-signing.key", ROOT / "config" / "dev-sns-signing.pem"
    )


@pytest.fixture(scope="module")
def cert_server(
    key: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path, list[str]]]:
    """HTTPS on 127.0.0.1 serving the signing certificate at its path; yields
    (port, the test CA's PEM file, the paths requested)."""
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            if self.path != key.cert_path:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-pem-file")
            self.send_header("Content-Length", str(len(key.cert_pem)))
            self.end_headers()
            self.wfile.write(key.cert_pem)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ca_file, requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def documents(key: SigningKey, public_url: str) -> dict[str, dict[str, Any]]:
    """Every case by name; each a parsed JSON body as a subscriber receives it."""
    out: dict[str, dict[str, Any]] = {}
    attrs = {
        "s": MessageAttribute("String", "ü"),
        "b": MessageAttribute("Binary", binary_value=b"\x00\x01"),
        "n": MessageAttribute("Number", "3"),
    }
    for version in ("1", "2"):
        common: dict[str, Any] = {
            "message_id": f"00000000-0000-4000-8000-00000000000{version}",
            "topic_arn": TOPIC,
            "timestamp": WHEN,
            "signature_version": version,
        }
        signed = hm.sign_notification(
            key,
            public_url,
            message="Hello world!",
            subject="My First Message",
            **common,
        )
        out[f"notification-v{version}"] = json.loads(signed.for_subscription(SUB).body)
        unicode = hm.sign_notification(
            key,
            public_url,
            message='{"default": "multi\\nline"}\nÅ ünïcødé ✓ 𝄞',
            attributes=attrs,
            **common,
        )
        out[f"notification-no-subject-v{version}"] = json.loads(
            unicode.for_subscription(SUB).body
        )
        out[f"subscription-confirmation-v{version}"] = json.loads(
            hm.subscription_confirmation(key, public_url, token=TOKEN, **common).body
        )
        out[f"unsubscribe-confirmation-v{version}"] = json.loads(
            hm.unsubscribe_confirmation(
                key, public_url, subscription_arn=SUB, token=TOKEN, **common
            ).body
        )
        # Re-signed over sns-validator's string (no Token): what it accepts.
        theirs = dict(out[f"unsubscribe-confirmation-v{version}"])
        theirs["Signature"] = key.sign(
            "".join(
                f"{name}\n{theirs[name]}\n" for name in SNS_VALIDATOR_UNSUBSCRIBE_KEYS
            ),
            version,
        )
        out[f"unsubscribe-confirmation-without-token-v{version}"] = theirs
        tampered = dict(out[f"notification-v{version}"])
        tampered["Message"] = "Hello world?"
        out[f"tampered-notification-v{version}"] = tampered
        tampered = dict(out[f"subscription-confirmation-v{version}"])
        tampered["Message"] += " "
        out[f"tampered-subscription-confirmation-v{version}"] = tampered
    return out


@pytest.fixture(scope="module")
def verdicts(
    node: str, key: SigningKey, cert_server: tuple[int, Path, list[str]]
) -> dict[str, dict[str, Any]]:
    port, ca_file, requested = cert_server
    cases = documents(key, f"https://127.0.0.1:{port}")
    # The certificate's URL on a host outside the pattern (no fetch happens).
    cases["foreign-host"] = documents(key, f"https://localhost:{port}")[
        "notification-v2"
    ]
    # sns-validator tests the pattern against host:port (Node's url.parse `host`).
    started = time.perf_counter()
    answers = sns_validator.validate(
        node,
        list(cases.values()),
        host_pattern=rf"^127\.0\.0\.1:{port}$",
        cert_pem=key.cert_pem,
        ca_file=ca_file,
    )
    elapsed = time.perf_counter() - started
    # sns-validator caches certificates by URL: one fetch, at our path.
    assert requested == [key.cert_path], requested
    assert elapsed < 60
    return dict(zip(cases, answers, strict=True))


ACCEPTED = [
    f"{name}-v{version}"
    for version in ("1", "2")
    for name in ("notification", "notification-no-subject", "subscription-confirmation")
]


@pytest.mark.parametrize("case", ACCEPTED)
def test_sns_validator_accepts(verdicts, case):
    assert verdicts[case] == {"valid": True, "error": None, "awsAlgorithm": True}


@pytest.mark.parametrize("version", ["1", "2"])
def test_unsubscribe_confirmation_signed_as_aws_documents(verdicts, version):
    """sns-validator 0.3.5 leaves Token out of an UnsubscribeConfirmation's string
    to sign (module docstring), so it rejects AWS-conformant ones; Node's crypto
    over AWS's string accepts ours. The same document signed over
    sns-validator's string passes it and fails AWS's: Token is the only
    difference."""
    assert verdicts[f"unsubscribe-confirmation-v{version}"] == {
        "valid": False,
        "error": INVALID_SIGNATURE,
        "awsAlgorithm": True,
    }
    assert verdicts[f"unsubscribe-confirmation-without-token-v{version}"] == {
        "valid": True,
        "error": None,
        "awsAlgorithm": False,
    }


@pytest.mark.parametrize(
    "case",
    [
        f"tampered-{name}-v{version}"
        for version in ("1", "2")
        for name in ("notification", "subscription-confirmation")
    ],
)
def test_sns_validator_rejects_tampered(verdicts, case):
    assert verdicts[case] == {
        "valid": False,
        "error": INVALID_SIGNATURE,
        "awsAlgorithm": False,
    }


def test_sns_validator_checks_the_certificate_host(verdicts):
    assert verdicts["foreign-host"]["valid"] is False
    assert verdicts["foreign-host"]["error"] == INVALID_DOMAIN
