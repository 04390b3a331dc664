"""Log lines an operator can live with: names, JSON tracebacks, summaries, ids."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pushgw import log as log_setup
from pushgw.api.request_id import request_id_of
from pushgw.logsummary import RepeatedLog


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


def test_lines_name_their_logger_and_tracebacks_are_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_setup.configure(level="info", fmt="json")
    try:
        log_setup.get_logger("pushgw.test").warning("something", n=1)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
        logging.getLogger("asyncio").info("below warning: dropped")
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
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
