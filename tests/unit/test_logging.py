"""Log lines an operator can live with: names, JSON tracebacks, summaries, ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pushgw.api.request_id import request_id_of
from pushgw.logsummary import RepeatedLog

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))


def test_repeated_failures_are_summarised() -> None:
    now = [0.0]
    recorder = Recorder()
    summary = RepeatedLog(recorder, interval_s=10, clock=lambda: now[0])
    for i in range(500):
        now[0] = i * 0.01
        summary.note("delivery_failed", key="app-1", reason="503", endpoint=f"e{i}")
    summary.note("delivery_failed", key="app-2", reason="503", endpoint="x")
    assert [line[1] for line in recorder.lines] == ["delivery_failed"] * 2
    summary.flush()  # inside the interval: nothing yet
    assert len(recorder.lines) == 2
    now[0] = 11.0
    summary.flush()
    assert recorder.lines[2][1] == "delivery_failed_repeated"
    assert recorder.lines[2][2]["repeats"] == 499
    assert recorder.lines[2][2]["endpoint"] == "e0"  # the example: the first one
    assert len(recorder.lines) == 3  # app-2 had no repeats: no summary line
    summary.note("delivery_failed", key="app-1", reason="503")
    assert len(recorder.lines) == 4  # a new window starts with a line at once


def test_failures_beyond_the_key_limit_are_counted_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pushgw.logsummary.MAX_KEYS", 3)
    recorder = Recorder()
    summary = RepeatedLog(recorder, interval_s=10, clock=lambda: 0.0)
    for n in range(8):
        summary.note("delivery_failed", key=f"app-{n}", reason="503")

    summary.flush()
    summary.flush()

    assert [line[1] for line in recorder.lines] == ["delivery_failed"] * 3 + [
        "log_summary_full"
    ]
    assert {"unlogged": 5, "max_keys": 3} == recorder.lines[-1][2]


SCRIPT = """
import logging
from pushgw import log as log_setup
early = log_setup.get_logger("pushgw.test")  # as modules do, at import
log_setup.configure(level="info", fmt="json")
early.warning("something", n=1)
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("aiohttp.server").exception("Error handling request")
logging.getLogger("asyncio").info("below warning: dropped")
"""


def test_lines_name_their_logger_and_tracebacks_are_json() -> None:
    """In a process of its own: configure() rebinds stdout and loggers cache it."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("pushgw.test", "warning"),
        ("aiohttp.server", "error"),
    ]
    frames = lines[1]["exception"]
    assert frames[0]["exc_type"] == "ValueError"
    assert frames[0]["exc_value"] == "boom"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("3f2c9a1e-7b1d-4c55-9a57-2b1f0f3a9c11", True),
        ("req-42.a:b/c", True),
        ("", False),
        ("has spaces", False),
        ("x" * 129, False),
        ("bad\x07bell", False),
    ],
)
def test_request_id_is_honoured_when_usable(given: str, kept: bool) -> None:
    got = request_id_of({"x-request-id": given} if given else {})
    assert (got == given) is kept
    assert got
