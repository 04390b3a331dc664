"""
Helpers many tests share. External programs some tests drive (promtool,
chromium, node, systemd-analyze): `.ci/run` installs them, so under CI=true a
missing one fails the test; on a laptop it skips, saying what to install.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable

import pytest


def required_tool(name: str, package: str, *, found: str | None = None) -> str:
    """The path of `name` (or `found`, when the caller located it itself)."""
    path = found or shutil.which(name)
    if path is None:
        reason = (
            f"{name} is not on PATH; install it with `apt-get install -y"
            f" --no-install-recommends {package}` (.ci/run does)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


async def eventually(
    check: Callable[[], bool], limit_s: float = 2.0, step_s: float = 0.002
) -> None:
    """Wait, on the event loop, until `check()` holds; fail after `limit_s`."""
    for _ in range(max(1, int(limit_s / step_s))):
        if check():
            return
        await asyncio.sleep(step_s)
    raise AssertionError(f"not true within {limit_s} s")
