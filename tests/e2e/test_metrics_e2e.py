"""
/metrics of a real `pushgw serve` after a scripted run against real `pushgw
mock-providers`: N deliveries to valid APNs and FCM devices, M to unregistered
ones, K answered 503 once and retried. The counters equal the mocks' own counts
exactly (and the delivery ledger's), the histograms have their observations, `promtool check metrics`
accepts the exposition, and every metric the Grafana dashboard queries is there.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from cryptography import x509

from tests.e2e.fleet import wait_until
from tests.e2e.harness import (
    Mocks,
    Server,
    register_devices,
    start_server,
)
from tests.e2e.prom import Scrape, dashboard_queries, metric_names, scrape
from tests.e2e.test_delivery_e2e import drop_schema, pg_schema
from tests.tools import required_tool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pushgw.json"
# The script: valid devices (N), unregistered ones (M), and valid devices whose
# first send is answered 503 (K, delivered on the retry). K stays under the
# circuit breaker's 5 failures in a row, so no app is paused: every reschedule
# is a retry the mock answered.
N = {"APNS": 7, "GCM": 6}
M = {"APNS": 3, "GCM": 2}
K = {"APNS": 2, "GCM": 3}
# What each mock counts, and the status the provider answers with.
MOCK_COUNT = {
    "APNS": {
        "delivered": "delivered",
        "invalid": "unregistered",
        "retry": "unavailable",
    },
    "GCM": {
        "delivered": "delivered",
        "invalid": "error_UNREGISTERED",
        "retry": "fault_unavailable",
    },
}
STATUS = {
    "APNS": {"delivered": "200", "invalid": "410", "retry": "503"},
    "GCM": {"delivered": "200", "invalid": "404", "retry": "503"},
}


@pytest.fixture(name="server")
def _server(tmp_path: Path, mocks: Mocks) -> Iterator[Server]:
    server = start_server(
        tmp_path,
        mocks,
        delivery={"retry_base_s": 0.2, "retry_max_s": 0.5},
        # App gauges re-read at every scrape here (30 s by default).
        extra={"metrics": {"apps_refresh_s": 0.1}},
    )
    yield server
    server.stop()


def create_app(server: Server, name: str, platform: str, attributes: Any) -> str:
    r = server.json(
        "POST",
        "/v1/platform-applications",
        {"name": name, "platform": platform, "attributes": attributes},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["platformApplicationArn"])


def disable_app(server: Server, app_arn: str) -> None:
    r = server.json(
        "PATCH",
        f"/v1/platform-applications/{app_arn}",
        {"attributes": {"Enabled": "false"}},
    )
    assert r.status_code < 300, r.text


def push(server: Server, app_arn: str, token: str) -> None:
    r = server.json(
        "POST", f"/v1/platform-applications/{app_arn}/endpoints", {"token": token}
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()["endpointArn"]
    r = server.json("POST", "/v1/publish", {"targetArn": endpoint, "message": "hi"})
    assert r.status_code == 200, r.text


def settled(server: Server, mocks: Mocks) -> Scrape | None:
    """The scrape once every push ended and the queue is empty."""
    stats = mocks.stats()
    for platform, counts in MOCK_COUNT.items():
        got = stats[platform]
        if got.get(counts["delivered"], 0) < N[platform] + K[platform]:
            return None
        if got.get(counts["invalid"], 0) < M[platform]:
            return None
    found = scrape(server)
    ended = sum(N.values()) + sum(K.values()) + sum(M.values())
    if found.value("pushgw_deliveries_total") < ended or found.value("pushgw_jobs"):
        return None
    return found


def test_metrics_after_a_scripted_run_equal_the_mocks_counts(
    server: Server, mocks: Mocks
) -> None:
    apns_credentials = mocks.credentials("APNS", auth="certificate")
    not_after = x509.load_pem_x509_certificate(
        apns_credentials["PlatformPrincipal"].encode()
    ).not_valid_after_utc
    apps = {
        "APNS": create_app(server, "e2e-apns", "APNS", apns_credentials),
        "GCM": create_app(server, "e2e-fcm", "GCM", mocks.credentials("GCM")),
    }
    disable_app(server, create_app(server, "e2e-off", "GCM", mocks.credentials("GCM")))
    for platform, app_arn in apps.items():
        valid = [d["token"] for d in register_devices(mocks, platform, N[platform])]
        retried = [d["token"] for d in register_devices(mocks, platform, K[platform])]
        gone = register_devices(mocks, platform, M[platform], state="unregistered")
        mocks.faults(
            platform,
            [{"kind": "unavailable", "token_prefix": t, "count": 1} for t in retried],
        )
        for token in [*valid, *retried, *(d["token"] for d in gone)]:
            push(server, app_arn, token)
    sns = boto3.session.Session().client(
        "sns",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
    assert 3 == len(sns.list_platform_applications()["PlatformApplications"])
    assert 401 == httpx.get(server.url + "/v1/topics").status_code

    found = wait_until(
        lambda: settled(server, mocks), timeout=60, what="every push to end"
    )
    stats = mocks.stats()

    attempts, deliveries = "pushgw_delivery_attempts_total", "pushgw_deliveries_total"
    for platform, counts in MOCK_COUNT.items():
        got, status = stats[platform], STATUS[platform]
        # Each send the mock answered is one attempt, by outcome and status.
        assert N[platform] + K[platform] == got[counts["delivered"]]
        assert got[counts["delivered"]] == found.value(
            attempts, platform=platform, outcome="delivered", status=status["delivered"]
        )
        assert M[platform] == got[counts["invalid"]]
        assert got[counts["invalid"]] == found.value(
            attempts,
            platform=platform,
            outcome="invalid_token",
            status=status["invalid"],
        )
        assert K[platform] == got[counts["retry"]]
        assert got[counts["retry"]] == found.value(
            attempts, platform=platform, outcome="retry", status=status["retry"]
        )
        total = N[platform] + M[platform] + 2 * K[platform]
        assert total == found.value(attempts, platform=platform)
        # Reschedules apart: one per retry the mock answered.
        assert K[platform] == found.value(
            "pushgw_delivery_reschedules_total", platform=platform
        )
        # Final outcomes, once per (message, endpoint).
        assert N[platform] + K[platform] == found.value(
            deliveries, platform=platform, status="delivered", failure_type=""
        )
        assert M[platform] == found.value(
            deliveries,
            platform=platform,
            status="failed",
            failure_type="InvalidPlatformToken",
        )
        assert N[platform] + K[platform] + M[platform] == found.value(
            deliveries, platform=platform
        )
        # Histograms: one observation per attempt, per delivered push.
        sends = "pushgw_provider_send_seconds"
        assert total == found.value(f"{sends}_count", platform=platform)
        assert 0 < found.value(f"{sends}_sum", platform=platform)
        assert total == found.value(f"{sends}_bucket", platform=platform, le="+Inf")
        delay = "pushgw_publish_to_delivery_seconds"
        assert N[platform] + K[platform] == found.value(
            f"{delay}_count", platform=platform
        )
        assert 0 < found.value(f"{delay}_sum", platform=platform)
    # A retried push waited at least its back-off: the slowest are not in the
    # first buckets.
    assert (
        found.value(
            "pushgw_publish_to_delivery_seconds_bucket", platform="APNS", le="0.1"
        )
        <= N["APNS"]
    )

    # The API, by API, action and status (bounded labels).
    api = "pushgw_api_requests_total"
    pushes = sum(N.values()) + sum(M.values()) + sum(K.values())
    assert 3 == found.value(
        api, api="json", action="CreatePlatformApplication", status="201"
    )
    assert pushes == found.value(
        api, api="json", action="CreatePlatformEndpoint", status="201"
    )
    assert pushes == found.value(api, api="json", action="Publish", status="200")
    assert 1 == found.value(api, api="json", action="SetPlatformApplicationAttributes")
    assert 1 == found.value(
        api, api="sns", action="ListPlatformApplications", status="200"
    )
    assert 1 == found.value(api, api="json", action="unknown", status="401")
    assert pushes == found.value(
        "pushgw_api_request_seconds_count", api="json", action="Publish"
    )

    # Gauges: the queue is empty in every state, apps and credentials.
    assert {"due", "leased", "scheduled", "waiting_for_app"} == {
        s["state"] for s in found.series("pushgw_jobs")
    }
    assert 0 == found.value("pushgw_jobs")
    assert 0 == found.value("pushgw_disabled_apps", platform="APNS")
    assert 1 == found.value("pushgw_disabled_apps", platform="GCM")
    expiry = found.value("pushgw_credential_expiry_seconds", platform="APNS")
    expected = (not_after - dt.datetime.now(dt.UTC)).total_seconds()
    assert abs(expected - expiry) < 120, (expected, expiry)
    assert not found.has("pushgw_credential_expiry_seconds", platform="GCM")
    assert 1 == found.value("pushgw_store_up")
    assert 0 == found.value("pushgw_sends_in_flight")
    assert 0 == found.value("pushgw_task_failing")
    assert found.has("pushgw_build_info")
    assert found.has("process_resident_memory_bytes")

    # The delivery ledger (flushed about every second) counts the same.
    from_metrics = {
        (s["platform"], s["status"]): int(found.value(deliveries, **s))
        for s in (
            {"platform": p, "status": status}
            for p in MOCK_COUNT
            for status in ("delivered", "failed", "expired")
        )
    }
    wait_until(
        lambda: ledger_counts(server) == from_metrics,
        timeout=10,
        what=f"the ledger to count {from_metrics}",
    )

    check_with_promtool(found.text)
    check_dashboard(found)


def ledger_counts(server: Server) -> dict[tuple[str, str], int]:
    """The ledger's per-minute rollup, summed by platform and status."""
    r = server.json("GET", "/v1/stats/deliveries?since=0&bucketSeconds=86400")
    assert r.status_code == 200, r.text
    counts = {(p, s): 0 for p in MOCK_COUNT for s in ("delivered", "failed", "expired")}
    for bucket in r.json()["buckets"]:
        for status in ("delivered", "failed", "expired"):
            key = (bucket["platform"], status)
            counts[key] = counts.get(key, 0) + bucket[status]
    return counts


def check_with_promtool(text: str) -> None:
    """`promtool check metrics` (Debian's prometheus package; .ci/run installs
    it): no error and no lint warning. CI must have it; a laptop may skip."""
    promtool = required_tool("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "" == (result.stdout + result.stderr).strip()


def check_dashboard(found: Scrape) -> None:
    """Every metric a query of deploy/grafana/pushgw.json names has samples."""
    exposed = {name for name, _, _ in found.samples}
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    named = {name for query in queries for name in metric_names(query)}

    assert len(queries) >= 20
    assert set() == named - exposed, named - exposed


# -- two nodes on one PostgreSQL: the cluster-wide gauges reported once -----------
REPORTER_LEASE_S = 2.0


def reporting(servers: list[Server]) -> list[Scrape] | None:
    """Both nodes' scrapes once exactly one of them reports the cluster gauges."""
    found = [scrape(s) for s in servers]
    flags = sorted(f.value("pushgw_cluster_reporter") for f in found)
    return found if flags == [0, 1] else None


@pytest.mark.postgres
def test_two_nodes_report_the_backlog_once_and_fail_over(
    tmp_path: Path, mocks: Mocks
) -> None:
    """Two daemons on one PostgreSQL schema, shipped [metrics] defaults but a
    short reporter lease, delivery disabled on both: one node reports the
    cluster-wide gauges (pushgw_cluster_reporter 1), so sum() over both nodes'
    pushgw_jobs is the real backlog; publishes stay queued and nothing is sent
    (a node with delivery off keeps none for itself). Killed with -9, the
    reporter is replaced by the other node within the lease."""
    dsn, schema, store_url = pg_schema()
    servers: list[Server] = []
    try:
        for name in ("node-a", "node-b"):
            server = start_server(
                tmp_path,
                mocks,
                store_url=store_url,
                name=name,
                delivery={"enabled": False},
                extra={"metrics": {"reporter_lease_s": REPORTER_LEASE_S}},
            )
            servers.append(server)
        a, b = servers
        gcm = create_app(a, "e2e-gcm", "GCM", mocks.credentials("GCM"))
        disable_app(b, create_app(b, "e2e-off", "GCM", mocks.credentials("GCM")))
        tokens = [d["token"] for d in register_devices(mocks, "GCM", 3)]
        for i, token in enumerate(tokens):
            push(servers[i % 2], gcm, token)  # endpoint jobs, one per push
        r = a.json("POST", "/v1/topics", {"name": "e2e-two-nodes"})
        assert r.status_code in (200, 201), r.text
        for server in servers:
            topic = {"topicArn": r.json()["topicArn"], "message": "m"}
            assert server.json("POST", "/v1/publish", topic).status_code == 200
        totals = a.json("GET", "/v1/queue").json()["totals"]
        assert 5 == sum(totals.values()) == totals["due"], totals

        both = wait_until(
            lambda: reporting(servers), timeout=10, what="one reporting node"
        )
        # The dashboard's sum over the nodes is the backlog, not twice it.
        assert 5 == sum(s.value("pushgw_jobs") for s in both)
        assert 5 == sum(s.value("pushgw_jobs", state="due") for s in both)
        assert 1 == sum(s.value("pushgw_disabled_apps", platform="GCM") for s in both)
        reporter = next(
            i for i, s in enumerate(both) if s.value("pushgw_cluster_reporter")
        )
        assert not both[1 - reporter].has("pushgw_jobs")
        # Repeated scrapes: the same node reports, no flapping.
        for _ in range(5):
            again = reporting(servers)
            assert again is not None
            assert 1 == again[reporter].value("pushgw_cluster_reporter")
            time.sleep(REPORTER_LEASE_S / 4)
        # Delivery is off on both: nothing reached a provider, all still queued.
        assert all(mocks.received(t) == [] for t in tokens)
        assert 0 == sum(s.value("pushgw_delivery_attempts_total") for s in both)

        survivor = servers[1 - reporter]
        killed = time.monotonic()
        servers[reporter].process.kill9()
        taken = wait_until(
            lambda: (
                (found := scrape(survivor)).value("pushgw_cluster_reporter") and found
            ),
            timeout=REPORTER_LEASE_S * 3,
            interval=0.05,
            what="the other node to take over",
        )
        took = time.monotonic() - killed
        # Within the lease plus one renewal interval (a third of it).
        assert took < REPORTER_LEASE_S * 4 / 3 + 1.0, took
        assert 5 == taken.value("pushgw_jobs")
        assert 1 == taken.value("pushgw_disabled_apps", platform="GCM")
        print(f"reporter killed; the other node reported {took:.2f} s later")
    finally:
        for server in servers:
            if server.process.proc.poll() is None:
                server.stop()
        drop_schema(dsn, schema)
