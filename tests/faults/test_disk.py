"""The fillable tmpfs (fast: 4 MB; skips when mounting is not allowed)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.faults.disk import mounted_tmpfs


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def test_fill_leaves_the_disk_full_and_free_gives_it_back(tmp_path: Path) -> None:
    where = tmp_path / "disk"
    with mounted_tmpfs(where, size_mb=4) as disk:
        assert is_mounted(where)
        assert disk.total_bytes() <= 4 * 1024 * 1024
        (disk.path / "data").write_bytes(b"x" * 100_000)
        written = disk.fill()
        assert written > 3_000_000
        assert disk.full
        with (
            pytest.raises(OSError) as info,
            (disk.path / "more").open("wb", buffering=0) as f,
        ):
            f.write(b"y" * 8192)
        assert info.value.errno == errno.ENOSPC
        disk.free()
        assert not disk.full
        (disk.path / "more").write_bytes(b"y" * 1_000_000)
        assert (disk.path / "data").read_bytes() == b"x" * 100_000
    assert not is_mounted(where)
