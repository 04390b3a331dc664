"""
`pushgw serve --workers N`: N processes on one port sharing PostgreSQL (real
processes), and SQLite refusing more than one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.fleet import build_fleet, received_counts, wait_until
from tests.e2e.harness import ROOT, Mocks, start_server, write_config
from tests.e2e.prom import Scrape, scrape
from tests.e2e.test_delivery_e2e import drop_schema, pg_schema, publish
from tests.e2e.test_metrics_e2e import check_with_promtool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_IN_FLIGHT = 8  # sends in flight per worker
SLOW = 40  # publishes while the provider holds every answer


def children(pid: int) -> list[int]:
    """Live child processes of `pid` that are pushgw workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"--worker-index" in cmdline:
            found.append(int(entry.name))
    return found


def test_sqlite_refuses_more_than_one_worker(tmp_path: Path, mocks: Mocks) -> None:
    config = write_config(
        tmp_path, store_url=f"sqlite:///{tmp_path / 'x.db'}", mock_ports=mocks.ports
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pushgw",
            "serve",
            "--config",
            str(config),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert "needs a PostgreSQL store" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def per_worker(found: Scrape, name: str) -> list[str]:
    """The `worker` labels of a per-process series: one per live worker."""
    return sorted(s["worker"] for s in found.series(name))


def test_workers_share_one_port_and_postgres(tmp_path: Path, mocks: Mocks) -> None:
    """Two workers on one port: requests are served, a fan-out is delivered
    once to every device, every scrape shows the node's figures (both
    workers' counters, sends in flight and process figures), a worker killed
    with -9 is started again, and SIGTERM stops both."""
    dsn, schema, store_url = pg_schema()
    server = start_server(
        tmp_path,
        mocks,
        store_url=store_url,
        args=["--workers", "2"],
        delivery={"lease_s": 3.0, "max_in_flight": MAX_IN_FLIGHT},
    )
    try:
        parent = server.process.proc.pid
        wait_until(lambda: len(children(parent)) == 1, timeout=30, what="worker 1")
        (first,) = children(parent)
        for _ in range(40):  # new connections each: the kernel spreads them
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
        fleet = build_fleet(server, mocks, valid=300)
        publish(server, fleet, "two workers")
        wait_until(
            lambda: sum(received_counts(mocks, fleet.tokens).values()) >= 300,
            timeout=60,
            what="300 deliveries",
        )
        counts = received_counts(mocks, fleet.tokens)
        assert set(counts.values()) == {1}, counts
        # Every scrape (a new connection each: either worker answers) reports
        # both workers' deliveries, not the answering worker's share.
        wait_until(
            lambda: (
                scrape(server).value("pushgw_deliveries_total", status="delivered")
                == 300
            ),
            timeout=30,
            what="300 delivered in /metrics",
        )
        scrapes = [scrape(server) for _ in range(20)]
        delivered = {
            s.value("pushgw_deliveries_total", status="delivered") for s in scrapes
        }
        assert delivered == {300.0}
        attempts = {s.value("pushgw_delivery_attempts_total") for s in scrapes}
        assert attempts == {300.0}
        assert all(s.has("pushgw_jobs") for s in scrapes)  # cluster gauges: any worker
        # Per-process figures: every worker's, labelled, whichever answers.
        for found in scrapes:
            assert ["0", "1"] == per_worker(found, "process_resident_memory_bytes")
            assert ["0", "1"] == per_worker(found, "process_cpu_seconds_total")
            assert [{}] == found.series("pushgw_sends_in_flight")
            assert found.has("pushgw_task_failing", task="dispatcher")
        check_with_promtool(scrapes[0].text)

        # Sends held by the provider: each worker has MAX_IN_FLIGHT in flight
        # at most, so more than that in one scrape is the two workers' sum.
        mocks.faults("APNS", [{"kind": "latency", "latency_s": 3.0}])
        for endpoint in list(fleet.endpoints.values())[:SLOW]:
            r = httpx.post(  # new connections each: both workers take some
                server.url + "/v1/publish",
                json={"targetArn": endpoint, "message": "slow"},
                headers={"Authorization": f"Bearer {server.api_key}"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
        wait_until(
            lambda: scrape(server).value("pushgw_sends_in_flight") > MAX_IN_FLIGHT,
            timeout=10,
            interval=0.05,
            what=f"more than {MAX_IN_FLIGHT} sends in flight on the node",
        )
        mocks.faults("APNS", [])
        total = 300 + SLOW
        wait_until(
            lambda: (
                scrape(server).value("pushgw_deliveries_total", status="delivered")
                == total
                and scrape(server).value("pushgw_sends_in_flight") == 0
            ),
            timeout=60,
            what=f"{total} delivered and none in flight",
        )
        before = scrape(server)
        started = before.value("process_start_time_seconds", worker="1")

        os.kill(first, 9)
        wait_until(
            lambda: (found := children(parent)) and found[0] != first,
            timeout=30,
            what="worker 1 started again",
        )
        assert "worker_exited" in server.process.logs()
        # The killed worker's counts stay in the sums (its files remain), its
        # live gauges do not: the new worker 1 reports its own.
        after = wait_until(
            lambda: (
                (found := scrape(server)).value(
                    "process_start_time_seconds", worker="1"
                )
                > started
                and found
            ),
            timeout=10,
            what="the new worker 1's figures",
        )
        assert after.value("pushgw_deliveries_total", status="delivered") == total
        assert ["0", "1"] == per_worker(after, "process_resident_memory_bytes")
        cpu = "process_cpu_seconds_total"
        assert after.value(cpu, worker="1") >= before.value(cpu, worker="1")
    finally:
        code = server.stop()
        drop_schema(dsn, schema)
    assert code == 0
    time.sleep(0.5)
    assert children(parent) == []
