"""
A small tmpfs for one test, to run a store on a disk that can be filled.

    with mounted_tmpfs(tmp_path / "disk", size_mb=32) as disk:
        ...  # put the SQLite file under disk.path
        disk.fill()   # write a filler file until ENOSPC: the fs is left full
        disk.free()   # delete the filler

`mounted_tmpfs` calls `pytest.skip` (with the reason) when the mount is refused
(not root, no CAP_SYS_ADMIN, no `mount` binary). Unmounting at exit is lazy
(`umount -l`), so a process still holding a file there cannot block teardown.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"


class TmpfsDisk:
    """A mounted tmpfs at `path` with a filler file to make it full."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.filler = path / FILLER

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def total_bytes(self) -> int:
        return shutil.disk_usage(self.path).total

    def fill(self) -> int:
        """Write the filler until ENOSPC, down to single bytes, so that no
        block is left; returns the bytes written this call."""
        written = 0
        with self.filler.open("ab", buffering=0) as f:
            block = 1 << 20
            while block >= 1:
                try:
                    while True:
                        written += f.write(b"\0" * block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    block //= 2
            with contextlib.suppress(OSError):
                os.fsync(f.fileno())
        return written

    def free(self) -> None:
        """Delete the filler (space is back at once on tmpfs)."""
        self.filler.unlink(missing_ok=True)

    @property
    def full(self) -> bool:
        return self.free_bytes() < 4096


@contextlib.contextmanager
def mounted_tmpfs(path: Path, *, size_mb: int = 32) -> Iterator[TmpfsDisk]:
    """Mount a `size_mb` tmpfs at `path` for the `with` body; skip if refused."""
    path.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no `mount` binary: cannot make a small disk to fill")
    result = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip() or f"rc {result.returncode}"
        pytest.skip(f"cannot mount a tmpfs at {path} ({reason}); needs root")
    try:
        yield TmpfsDisk(path, size_mb)
    finally:
        subprocess.run(
            ["umount", "-l", str(path)], capture_output=True, check=False, timeout=30
        )
