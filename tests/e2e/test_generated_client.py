"""
A client generated at test time from the OpenAPI document a real `pushgw serve`
serves drives every JSON operation against that server and the loopback mocks.

The generator is openapi-python-client (the `test` extra), run on the downloaded
document with no post-hooks, in a subprocess whose proxies point at a closed
port: it has nothing to fetch, and would fail if it tried. The generated client
needs only httpx and attrs, which the test environment has.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Mocks, Server
from tests.e2e.test_json_e2e import wait_received

PACKAGE = "pushgw_generated_client"
# Any attempt to reach the network through a proxy lands on a closed port.
NO_NETWORK = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
}
CONFIG = "post_hooks: []\n"  # no ruff / black run on the generated code


def generate(server: Server, directory: Path) -> Path:
    """Generate the client package from the served document; return its parent."""
    document = httpx.get(server.url + "/v1/openapi.json", timeout=10.0)
    document.raise_for_status()
    spec = directory / "openapi.json"
    spec.write_text(json.dumps(document.json()))
    config = directory / "generator.yaml"
    config.write_text(CONFIG)
    parent = directory / "generated"
    parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(parent / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, **NO_NETWORK},
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    # The generator warns about what it could not model; there must be nothing.
    assert "Warning" not in result.stdout + result.stderr, result.stdout
    return parent


@pytest.fixture(name="client_package")
def _client_package(
    pushgw_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(generate(pushgw_server, tmp_path)))
    yield importlib.import_module(PACKAGE)
    for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[name]


class Generated:
    """The generated package's API functions and models, by short name."""

    def __init__(self, package: ModuleType, server: Server) -> None:
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.client = package.AuthenticatedClient(
            base_url=server.url, token=server.api_key, raise_on_unexpected_status=True
        )
        self.anonymous = package.Client(base_url=server.url)

    def call(self, tag: str, operation: str, status: int, *args: Any, **kw: Any) -> Any:
        """Run `operation` through the client; check the status, return the model."""
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")
        kw.setdefault("client", self.client)
        response = module.sync_detailed(*args, **kw)
        assert status == response.status_code, response.content
        return response.parsed

    def ledger_of(self, message_id: str, timeout: float = 15.0) -> Any:
        """GetMessage once the ledger's flush (about every second) has the
        message delivered; a 404 until then."""
        module = importlib.import_module(f"{PACKAGE}.api.admin.get_message")
        deadline = time.monotonic() + timeout
        while True:
            response = module.sync_detailed(message_id, client=self.client)
            if response.status_code == 200 and response.parsed.totals.delivered:
                return response.parsed
            assert time.monotonic() < deadline, response.content
            time.sleep(0.2)

    def model(self, model: str, /, **fields: Any) -> Any:
        return getattr(self.models, model)(**fields)

    def strings(self, values: dict[str, str]) -> Any:
        return self.models.StringMap.from_dict(values)


@pytest.mark.e2e
def test_generated_client_drives_every_operation(
    client_package: ModuleType, pushgw_server: Server, mocks: Mocks
) -> None:
    """All 27 operations (and the endpoint search and the five admin routes)
    work through the generated client, ARNs escaped by it."""
    api = Generated(client_package, pushgw_server)
    done: set[str] = set()

    def call(tag: str, operation: str, status: int, *args: Any, **kw: Any) -> Any:
        done.add(operation)
        return api.call(tag, operation, status, *args, **kw)

    def set_attributes(tag: str, operation: str, arn: str, **values: str) -> None:
        """A Set*Attributes call: `set_topic_attributes` → SetTopicAttributesRequest."""
        request = "".join(w.title() for w in operation.split("_")) + "Request"
        body = api.model(request, attributes=api.strings(values))
        call(tag, operation, 204, arn, body=body)

    apps, topics, subs = "platform_applications", "topics", "subscriptions"
    body = api.model(
        "CreatePlatformApplicationRequest",
        name="generated",
        platform="GCM",
        attributes=api.strings(mocks.credentials("GCM")),
    )
    app = call(apps, "create_platform_application", 201, body=body)
    app_arn = app.platform_application_arn
    set_attributes(
        apps,
        "set_platform_application_attributes",
        app_arn,
        SuccessFeedbackSampleRate="50",
    )
    got = call(apps, "get_platform_application_attributes", 200, app_arn)
    assert app_arn == got.platform_application_arn
    assert "50" == got.attributes["SuccessFeedbackSampleRate"]
    listed = call(apps, "list_platform_applications", 200)
    assert [app_arn] == [
        a.platform_application_arn for a in listed.platform_applications
    ]

    token = str(mocks.device("GCM")["token"])
    body = api.model("CreatePlatformEndpointRequest", token=token)
    endpoint_arn = call(apps, "create_platform_endpoint", 201, app_arn, body=body)
    endpoint_arn = endpoint_arn.endpoint_arn
    listed = call(apps, "list_endpoints_by_platform_application", 200, app_arn)
    assert [endpoint_arn] == [e.endpoint_arn for e in listed.endpoints]
    set_attributes(
        "endpoints", "set_endpoint_attributes", endpoint_arn, CustomUserData="user-7"
    )
    got = call("endpoints", "get_endpoint_attributes", 200, endpoint_arn)
    assert {"Enabled": "true", "Token": token, "CustomUserData": "user-7"} == (
        got.attributes.to_dict()
    )
    # pushgw's own endpoint search (the console's), in the same document.
    found = call(
        apps,
        "search_endpoints",
        200,
        app_arn,
        token_prefix=token[:8],
        custom_user_data="user-7",
        limit=10,
    )
    assert ([endpoint_arn], None) == (
        [e.endpoint_arn for e in found.endpoints],
        found.next_token,
    )

    topic = call(
        topics, "create_topic", 201, body=api.model("CreateTopicRequest", name="gen")
    )
    topic_arn = topic.topic_arn
    assert [topic_arn] == [t.topic_arn for t in call(topics, "list_topics", 200).topics]
    set_attributes(topics, "set_topic_attributes", topic_arn, DisplayName="Generated")
    got = call(topics, "get_topic_attributes", 200, topic_arn)
    assert "Generated" == got.attributes["DisplayName"]
    tags = api.strings({"team": "push", "env": "e2e"})
    call(
        topics,
        "tag_resource",
        204,
        topic_arn,
        body=api.model("TagResourceRequest", tags=tags),
    )
    call(topics, "untag_resource", 204, topic_arn, key=["env"])
    got = call(topics, "list_tags_for_resource", 200, topic_arn)
    assert {"team": "push"} == got.tags.to_dict()

    body = api.model("SubscribeRequest", endpoint_arn=endpoint_arn)
    sub_arn = call(topics, "subscribe", 201, topic_arn, body=body).subscription_arn
    by_topic = call(topics, "list_subscriptions_by_topic", 200, topic_arn)
    assert [(sub_arn, "application", endpoint_arn)] == [
        (s.subscription_arn, s.protocol, s.endpoint) for s in by_topic.subscriptions
    ]
    listed = call(subs, "list_subscriptions", 200)
    assert [sub_arn] == [s.subscription_arn for s in listed.subscriptions]
    policy = json.dumps({"kind": ["news"]})
    set_attributes(subs, "set_subscription_attributes", sub_arn, FilterPolicy=policy)
    got = call(subs, "get_subscription_attributes", 200, sub_arn)
    assert topic_arn == got.attributes["TopicArn"]

    news = api.models.MessageAttributeMap.from_dict(
        {"kind": {"dataType": "String", "stringValue": "news"}}
    )
    body = api.model("PublishRequest", target_arn=endpoint_arn, message="direct")
    direct = call("publish", "publish", 200, body=body).message_id
    assert 36 == len(direct)
    body = api.model(
        "PublishRequest", topic_arn=topic_arn, message="topic", message_attributes=news
    )
    call("publish", "publish", 200, body=body)
    entry = api.model(
        "PublishBatchRequestEntry", id="b-1", message="batch", message_attributes=news
    )
    body = api.model("PublishBatchRequest", topic_arn=topic_arn, entries=[entry])
    batch = call("publish_batch", "publish_batch", 200, body=body)
    assert (["b-1"], []) == ([s.id for s in batch.successful], batch.failed)
    received = wait_received(mocks, token, 3)
    texts = json.dumps([m["payload"] for m in received])
    assert 3 == len(received), received
    assert all(word in texts for word in ("direct", "topic", "batch"))

    # The admin routes (the ledger, the queue, replay), in the same document.
    ledger = api.ledger_of(direct)
    assert (direct, 1) == (ledger.message_id, ledger.totals.delivered)
    queue = call("admin", "get_queue", 200)
    assert 0 <= queue.totals.due
    failed = call("admin", "list_deliveries", 200, reason="DeliveryFailedPerm", limit=9)
    assert ([], None) == (failed.deliveries, failed.next_token)
    body = api.model("ReplayDeadLettersRequest", since="0", limit=10)
    replayed = call("admin", "replay_dead_letters", 200, body=body)
    assert (0, 0) == (replayed.replayed, replayed.remaining)
    stats = call("admin", "get_delivery_stats", 200, bucket_seconds=300)
    assert 3 <= sum(b.delivered for b in stats.buckets if b.platform == "GCM")
    done.add("get_message")

    # Errors parse into the Error model with SNS's codes.
    missing = topic_arn + "-missing"
    error = call(topics, "get_topic_attributes", 404, missing)
    assert ("NotFound", "Topic does not exist") == (
        error.error.code,
        error.error.message,
    )
    error = api.call(topics, "list_topics", 401, client=api.anonymous)
    assert "Unauthorized" == error.error.code

    # ConfirmSubscription of an http subscription's Token; a forged one is refused.
    body = api.model("ConfirmSubscriptionRequest", token="0" * 96)
    error = call(topics, "confirm_subscription", 400, topic_arn, body=body)
    assert ("InvalidParameter", "Invalid parameter: Token") == (
        error.error.code,
        error.error.message,
    )

    call(subs, "unsubscribe", 204, sub_arn)
    call(topics, "delete_topic", 204, topic_arn)
    call("endpoints", "delete_endpoint", 204, endpoint_arn)
    call(apps, "delete_platform_application", 204, app_arn)
    error = call(apps, "get_platform_application_attributes", 404, app_arn)
    assert "PlatformApplication does not exist" == error.error.message
    operations = {
        p.stem
        for p in (Path(client_package.__file__).parent / "api").glob("*/*.py")
        if p.stem != "__init__"
    }
    assert 27 + 1 + 5 == len(operations)
    assert operations == done
