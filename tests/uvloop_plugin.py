"""
Run the async tests on uvloop's event loop instead of asyncio's:

    pytest -p tests.uvloop_plugin tests/providers

(pytest-asyncio's `pytest_asyncio_loop_factories` hook: each async test runs
once, on uvloop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}
