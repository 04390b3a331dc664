"""
`pushgw bench` runs end to end (real daemon, mock process, h2load when
installed) and reports every target; not a timed test: no figure is asserted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.e2e.harness import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pushgw", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_scenario_list_gives_fanout_ceilings_publish_and_targets_in_one_run() -> None:
    if os.environ.get("CI") and not shutil.which("h2load"):
        pytest.fail("CI installs nghttp2-client for h2load (.ci/run)")
    out = bench(
        "--scenario",
        "fanout-apns,ceiling,h2load,publish-api,console",
        "--endpoints",
        "300",
        "--rate",
        "40",
        "--duration",
        "2",
    )
    assert "delivered          300/300" in out
    assert re.search(r"outcomes\s+\{'delivered': 300\}", out)
    assert "publish-api (one APNs endpoint" in out
    assert re.search(r"gateway CPU [\d,]+ µs/publish", out)
    # The console's calls on the app, each answered 200 (else the run fails).
    assert re.search(r"endpoints: a page 3/4 in\s+p50 [\d.]+ ms", out)
    assert re.search(r"topic: attributes \(counts\)\s+p50 [\d.]+ ms", out)
    if shutil.which("h2load"):
        assert re.search(r"requests/s\s+[\d,]+", out)
        assert re.search(r"delivered\s+300/300\n\s+requests/s", out)
    else:
        assert "h2load is not installed" in out
    targets = out.split("=== targets ===")[1]
    for target in (
        "fan-out gateway CPU <= 80 µs",
        "fan-out / bare client >= 0.9",
        "publish-api gateway CPU <= 500 µs",
        "publish-api p99 <= 50 ms at 1,000/s",
        "1,000,000-subscriber fan-out <= 300 MB RSS",
        "console endpoint pages <= 50 ms",
    ):
        assert target in targets, targets


def test_an_unknown_scenario_is_refused_with_the_list() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pushgw", "bench", "--scenario", "fanout-apns,nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown scenario 'nope'" in done.stderr
    assert "fanout-apns, ceiling, h2load" in done.stderr
