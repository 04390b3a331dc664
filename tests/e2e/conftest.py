"""Fixtures that start real `pushgw mock-providers` and `pushgw serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Mocks,
    Server,
    mock_ports,
    start_server,
    write_config,
)


@pytest.fixture(name="mocks")
def _mocks(tmp_path: Path) -> Iterator[Mocks]:
    mocks = start_mocks(tmp_path)
    yield mocks
    mocks.stop()


def start_mocks(directory: Path, tries: int = 3) -> Mocks:
    """The mocks on free ports; new ports if one was taken meanwhile (the ports
    are picked free, then bound by another process: a race with other tests)."""
    for attempt in range(tries):
        ports = mock_ports()
        config = write_config(
            directory, store_url="memory:", mock_ports=ports, name="mocks.toml"
        )
        try:
            return Mocks(directory, ports, config)
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(name="pushgw_server")
def _pushgw_server(tmp_path: Path, mocks: Mocks) -> Iterator[Server]:
    """`pushgw serve` on SQLite, every provider pointed at the mocks."""
    server = start_server(tmp_path, mocks)
    yield server
    server.stop()
