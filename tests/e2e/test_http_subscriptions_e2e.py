"""
HTTP/HTTPS subscriptions end to end: a real `pushgw serve` over HTTPS, the real
mocks, boto3, and a real HTTPS webhook receiver (test CA). Signatures are checked
by a third-party validator (npm sns-validator, which fetches SigningCertURL
from the daemon) and by pushgw's own verifier.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import trustme
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from pushgw.sns.http_messages import verify
from tests import sns_validator
from tests.e2e.harness import Mocks, Server, free_port, write_config
from tests.e2e.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Short retries so a down receiver recovers within the test (SNS's default is
# 3 retries 20 s apart).
FAST_RETRIES = json.dumps(
    {
        "healthyRetryPolicy": {
            "minDelayTarget": 1,
            "maxDelayTarget": 1,
            "numRetries": 40,
            "numMinDelayRetries": 0,
            "numMaxDelayRetries": 0,
            "numNoDelayRetries": 0,
            "backoffFunction": "linear",
        }
    }
)


class Rig:
    def __init__(self, tmp_path: Path, mocks: Mocks) -> None:
        self.tmp_path = tmp_path
        self.mocks = mocks
        ca = trustme.CA()
        self.ca_file = tmp_path / "test-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert = ca.issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "tls.pem"))
        cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
        for name in ("dev-sns-signing.key", "dev-sns-signing.pem"):
            shutil.copy(ROOT / "config" / name, tmp_path / name)
        self.cert_pem = (tmp_path / "dev-sns-signing.pem").read_bytes()
        receiver_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(receiver_tls)
        self.receiver = Receiver(receiver_tls, free_port())
        self.receiver.start()
        self.port = free_port()
        self.config = write_config(
            tmp_path,
            store_url=f"sqlite:///{tmp_path / 'pushgw.db'}",
            mock_ports=mocks.ports,
            port=self.port,
            server={
                "public_url": f"https://127.0.0.1:{self.port}",
                "tls_cert_file": "tls.pem",
                "tls_key_file": "tls.key",
            },
            extra={
                "http_subscriptions": {
                    "signing_key_file": "dev-sns-signing.key",
                    "signing_cert_file": "dev-sns-signing.pem",
                    "allow_private_urls": True,
                    "ca_file": "test-ca.pem",
                    "timeout_s": 3.0,
                }
            },
        )
        self.server = self.start()

    def start(self) -> Server:
        return Server(self.tmp_path, self.config, self.port, ca_file=str(self.ca_file))

    def sns(self) -> Any:
        return boto3.client(
            "sns",
            endpoint_url=self.server.url,
            region_name="us-east-1",
            aws_access_key_id=self.server.access_key,
            aws_secret_access_key=self.server.secret_key,
            verify=str(self.ca_file),
            config=BotoConfig(retries={"max_attempts": 2}),
        )

    def get(self, url: str) -> httpx.Response:
        return httpx.get(url, verify=self.server.verify, timeout=10)

    def validate(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sns_validator.validate(
            sns_validator.node(),
            documents,
            host_pattern=rf"^127\.0\.0\.1:{self.port}$",
            cert_pem=self.cert_pem,
            ca_file=self.ca_file,
        )

    def close(self) -> None:
        self.server.stop()
        self.receiver.close()


@pytest.fixture(name="rig")
def _rig(tmp_path: Path, mocks: Mocks) -> Iterator[Rig]:
    rig = Rig(tmp_path, mocks)
    yield rig
    rig.close()


def subscribe_and_confirm(
    rig: Rig, sns: Any, topic: str, path: str, how: str, **attributes: str
) -> str:
    """Subscribe the receiver's `path`; confirm with boto3 or the SubscribeURL."""
    answer = sns.subscribe(
        TopicArn=topic,
        Protocol="https",
        Endpoint=rig.receiver.url(path),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    arn = answer["SubscriptionArn"]
    confirmation = rig.receiver.wait_for(path, "SubscriptionConfirmation")[-1]
    doc = confirmation.document
    assert verify(doc, rig.cert_pem)
    if how == "boto3":
        confirmed = sns.confirm_subscription(TopicArn=topic, Token=doc["Token"])
        assert confirmed["SubscriptionArn"] == arn
    else:
        page = rig.get(doc["SubscribeURL"])
        assert page.status_code == 200, page.text
        assert arn in page.text and "ConfirmSubscriptionResult" in page.text
    return arn


def test_subscribe_confirm_notify_raw_filter_unsubscribe(rig: Rig) -> None:
    sns = rig.sns()
    topic = sns.create_topic(Name=f"hooks-{uuid.uuid4().hex[:8]}")["TopicArn"]

    # Pending until confirmed: the literal answer, the list's placeholder, counts.
    pending = sns.subscribe(
        TopicArn=topic, Protocol="https", Endpoint=rig.receiver.url("/a")
    )
    assert pending["SubscriptionArn"] == "pending confirmation"
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"]
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attrs["SubscriptionsPending"], attrs["SubscriptionsConfirmed"]) == (
        "1",
        "0",
    )
    first = rig.receiver.wait_for("/a", "SubscriptionConfirmation")[0]
    assert first.headers["user-agent"] == "Amazon Simple Notification Service Agent"
    assert first.headers["content-type"].startswith("text/plain")
    assert first.headers["x-amz-sns-topic-arn"] == topic
    confirmed = sns.confirm_subscription(TopicArn=topic, Token=first.document["Token"])[
        "SubscriptionArn"
    ]
    a = confirmed
    b = subscribe_and_confirm(rig, sns, topic, "/b", "url", RawMessageDelivery="true")
    c = subscribe_and_confirm(
        rig, sns, topic, "/c", "url", FilterPolicy=json.dumps({"kind": ["wanted"]})
    )
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"]) == (
        "3",
        "0",
    )
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]
    sub_attrs = sns.get_subscription_attributes(SubscriptionArn=a)["Attributes"]
    assert sub_attrs["PendingConfirmation"] == "false"
    assert sub_attrs["Endpoint"] == rig.receiver.url("/a")

    published = sns.publish(
        TopicArn=topic,
        Message="hello hooks",
        Subject="greeting",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "other"}},
    )["MessageId"]
    note = rig.receiver.wait_for("/a", "Notification")[0]
    doc = note.document
    assert (doc["Type"], doc["MessageId"], doc["Message"], doc["Subject"]) == (
        "Notification",
        published,
        "hello hooks",
        "greeting",
    )
    assert doc["MessageAttributes"] == {"kind": {"Type": "String", "Value": "other"}}
    assert note.headers["x-amz-sns-subscription-arn"] == a
    assert note.headers["x-amz-sns-message-id"] == published
    raw = rig.receiver.wait_for("/b", "Notification")[0]
    assert raw.body == "hello hooks"
    assert raw.headers["x-amz-sns-rawdelivery"] == "true"

    wanted = sns.publish(
        TopicArn=topic,
        Message="for c",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "wanted"}},
    )["MessageId"]
    got = rig.receiver.wait_for("/c", "Notification")
    assert [r.document["MessageId"] for r in got] == [wanted]  # not the first one

    # Signatures: a third-party validator fetches SigningCertURL from pushgw.
    tampered = {**doc, "Message": "hello hookz"}
    v2 = None
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2"
    )
    time.sleep(2.2)  # the HTTP sender's topic cache (TOPIC_CACHE_S)
    sns.publish(TopicArn=topic, Message="signed with SHA256")
    v2 = rig.receiver.wait_for(
        "/a", "Notification", where=lambda r: r.document["SignatureVersion"] == "2"
    )[0].document
    verdicts = rig.validate([first.document, doc, v2, tampered])
    assert [v["valid"] for v in verdicts] == [True, True, True, False], verdicts

    # The UnsubscribeURL works unsigned (no AuthenticateOnUnsubscribe) and
    # sends an UnsubscribeConfirmation, whose SubscribeURL restores it.
    left = rig.get(doc["UnsubscribeURL"])
    assert left.status_code == 200, left.text
    bye = rig.receiver.wait_for("/a", "UnsubscribeConfirmation")[0].document
    assert verify(bye, rig.cert_pem)
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsDeleted"]) == (
        "2",
        "1",
    )
    back = rig.get(bye["SubscribeURL"])
    assert back.status_code == 200 and a in back.text
    assert sns.get_subscription_attributes(SubscriptionArn=a)["Attributes"]
    sns.unsubscribe(SubscriptionArn=b)
    sns.unsubscribe(SubscriptionArn=c)
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == [a]


def test_authenticate_on_unsubscribe_needs_a_signature(rig: Rig) -> None:
    sns = rig.sns()
    topic = sns.create_topic(Name="guarded")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=rig.receiver.url("/g"))
    token = rig.receiver.wait_for("/g", "SubscriptionConfirmation")[0].document["Token"]
    arn = sns.confirm_subscription(
        TopicArn=topic, Token=token, AuthenticateOnUnsubscribe="true"
    )["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attrs["ConfirmationWasAuthenticated"] == "true"
    sns.publish(TopicArn=topic, Message="x")
    url = rig.receiver.wait_for("/g", "Notification")[0].document["UnsubscribeURL"]
    refused = rig.get(url)
    assert refused.status_code == 403 and "AuthorizationError" in refused.text
    assert sns.get_subscription_attributes(SubscriptionArn=arn)
    # A forged token is refused; the SNS error, not a 500.
    with pytest.raises(ClientError) as err:
        sns.confirm_subscription(TopicArn=topic, Token="0" * 96)
    assert err.value.response["Error"]["Code"] == "InvalidParameter"


def test_refuses_private_urls_unless_allowed(rig: Rig, tmp_path: Path) -> None:
    """The daemon of this rig allows loopback (tests); the metadata address and
    non-http schemes stay refused even so."""
    sns = rig.sns()
    topic = sns.create_topic(Name="ssrf")["TopicArn"]
    for endpoint in (
        "http://169.254.169.254/latest/meta-data/",
        "https://user:pw@127.0.0.1/",
        "http://[fd00:ec2::254]/",
    ):
        with pytest.raises(ClientError) as err:
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint)
        assert err.value.response["Error"]["Code"] == "InvalidParameter", endpoint
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=topic, Protocol="https", Endpoint="http://127.0.0.1:1/")
    assert "must match the specified protocol" in err.value.response["Error"]["Message"]


def test_down_receiver_recovers_across_kill9(rig: Rig) -> None:
    """A receiver answering 503, then down, gets every message once back; the
    daemon is killed with -9 meanwhile and restarted."""
    sns = rig.sns()
    topic = sns.create_topic(Name="outage")["TopicArn"]
    subscribe_and_confirm(
        rig, sns, topic, "/down", "boto3", DeliveryPolicy=FAST_RETRIES
    )
    rig.receiver.fail_status = 503
    ids = {sns.publish(TopicArn=topic, Message=f"m{i}")["MessageId"] for i in range(20)}
    rig.receiver.wait_for("/down", "Notification", 20)  # tried, refused
    rig.receiver.stop()  # now down altogether
    time.sleep(1.5)
    rig.server.process.kill9()
    rig.receiver.fail_status = None
    rig.receiver.start()
    rig.server = rig.start()
    deadline = time.monotonic() + 60
    delivered: set[str] = set()
    while time.monotonic() < deadline and delivered != ids:
        delivered = {
            r.document["MessageId"]
            for r in rig.receiver.at("/down", "Notification")
            if r.headers.get("x-amz-sns-message-id") in ids
        }
        time.sleep(0.2)
    # At least once: every message reached the receiver after its recovery.
    assert delivered == ids


def test_push_failure_events_reach_the_backend(rig: Rig) -> None:
    """An invalid APNs token: EventDeliveryFailure and EventEndpointUpdated
    arrive at the backend's HTTPS subscription as SNS's event JSON."""
    sns = rig.sns()
    events = sns.create_topic(Name="app-events")["TopicArn"]
    subscribe_and_confirm(rig, sns, events, "/events", "boto3")
    creds = rig.mocks.credentials("apns")
    app = sns.create_platform_application(
        Name="ios",
        Platform="APNS",
        Attributes={
            **creds,
            "EventDeliveryFailure": events,
            "EventEndpointUpdated": events,
        },
    )["PlatformApplicationArn"]
    device = rig.mocks.device("apns", state="unregistered")
    endpoint = sns.create_platform_endpoint(
        PlatformApplicationArn=app, Token=device["token"]
    )["EndpointArn"]
    sns.publish(TargetArn=endpoint, Message="to a gone device")
    got = rig.receiver.wait_for("/events", "Notification", 2, timeout=30)
    kinds = {json.loads(r.document["Message"])["EventType"] for r in got}
    assert kinds == {"DeliveryFailure", "EndpointUpdated"}
    failure = next(
        json.loads(r.document["Message"])
        for r in got
        if json.loads(r.document["Message"])["EventType"] == "DeliveryFailure"
    )
    assert failure["EndpointArn"] == endpoint
    assert failure["FailureType"] == "InvalidPlatformToken"


def readme_receiver() -> str:
    """The five-line receiver of README.md, as printed there."""
    readme = (ROOT / "README.md").read_text()
    after = readme.index("A receiver in five lines")
    start = readme.index("```js\n", after) + len("```js\n")
    return readme[start : readme.index("```", start)]


def test_the_readme_receiver_confirms_and_receives(rig: Rig, tmp_path: Path) -> None:
    """README's five-line webhook receiver, run as printed (only its host
    pattern and port changed) with the pinned sns-validator: it confirms its
    subscription by the SubscribeURL and prints a notification."""
    code = readme_receiver()
    assert 5 == len(code.splitlines()), code
    port = free_port()
    script = tmp_path / "receiver.js"
    script.write_text(
        code.replace(
            r"/^push\.example\.com(:443)?$/", rf"/^127\.0\.0\.1:{rig.port}$/"
        ).replace(".listen(8000)", f'.listen({port}, "127.0.0.1")')
    )
    node = sns_validator.node()
    env = {
        **os.environ,
        "NODE_PATH": str(sns_validator.JS_DIR / "node_modules"),
        "NODE_EXTRA_CA_CERTS": str(rig.ca_file),
    }
    out = tmp_path / "receiver.out"
    with out.open("w") as sink:
        receiver = subprocess.Popen(
            [node, str(script)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        sns = rig.sns()
        topic = sns.create_topic(Name="readme-receiver")["TopicArn"]
        arn = sns.subscribe(
            TopicArn=topic,
            Protocol="http",
            Endpoint=f"http://127.0.0.1:{port}/sns",
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]

        def confirmed() -> bool:
            attrs = sns.get_subscription_attributes(SubscriptionArn=arn)
            return attrs["Attributes"]["PendingConfirmation"] == "false"

        wait_until(confirmed, "the receiver confirmed", out)
        sns.publish(TopicArn=topic, Message="hello from pushgw")
        wait_until(
            lambda: "Notification hello from pushgw" in out.read_text(),
            "the receiver printed the notification",
            out,
        )
    finally:
        receiver.terminate()
        receiver.wait(10)


def wait_until(check: Any, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not in {timeout} s: " + (
            log.read_text()
        )
        time.sleep(0.2)
