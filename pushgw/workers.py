"""
`pushgw serve --workers N`: N daemon processes on one port, sharing one
PostgreSQL store, so every core runs an event loop.

The process systemd started is worker 0: a whole daemon, and the parent of
workers 1..N-1 (`python -m pushgw serve --worker-index I`). Every worker binds
the port with SO_REUSEPORT, so the kernel spreads connections across them;
each delivers under its own node id (`<node>-w<I>`), so leases, takeover and
LISTEN work across them as across machines, while `<node>` stays the node's
identity in the election of the cluster metrics reporter (all workers of the
elected node report). Only worker 0 talks to systemd (READY=1,
WATCHDOG). The workers' metrics are shared through files (pushgw/metrics.py,
`use_shared_counters`), so any worker's /metrics shows the node's figures; an
exited worker's live gauges are dropped from them (`worker_exited`). A worker
that exits is started again (back-off capped at 5 s); SIGHUP is passed on;
SIGTERM stops them all.

SQLite has one writer per file: `--workers` above 1 needs PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from pushgw.config import Config
from pushgw.log import get_logger
from pushgw.metrics import worker_exited
from pushgw.supervisor import Pulse

log = get_logger("pushgw.workers")

WORKER_ENV = "PUSHGW_WORKER_INDEX"
RESTART_MAX_S = 5.0


def check_workers(config: Config, workers: int) -> str | None:
    """Why `workers` processes cannot share this config's store, or None."""
    if workers > 1 and not config.store.url.startswith(("postgresql:", "postgres:")):
        return (
            f"--workers {workers} needs a PostgreSQL store: SQLite has one writer"
            f" per file (store.url is {config.store.url.split('?')[0]})"
        )
    return None


def worker_node_id(node: str, index: int) -> str:
    """The id worker `index` of `node` delivers under (job leases, takeover):
    its own, so the workers hand jobs over as machines do. The node's id
    itself is what they share (the cluster metrics reporter's lease: a scrape
    reaches whichever worker the kernel picks, so all of the elected node's
    workers report)."""
    return node if index == 0 else f"{node}-w{index}"


class Workers:
    """Workers 1..N-1 as child processes of worker 0."""

    def __init__(self, config_path: str, count: int) -> None:
        self.config_path = config_path
        self.count = count
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env.pop("WATCHDOG_USEC", None)
        env[WORKER_ENV] = str(index)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # not the current directory first: a ./pushgw folder is not us
            "-m",
            "pushgw",
            "serve",
            "--config",
            self.config_path,
            "--worker-index",
            str(index),
            env=env,
        )
        log.info("worker_started", worker=index, pid=proc.pid)
        return proc

    async def run(self, pulse: Pulse) -> None:
        """Start the workers and keep them running (a supervised task)."""
        delays = dict.fromkeys(range(1, self.count), 0.5)
        for index in range(1, self.count):
            if index not in self.procs or self.procs[index].returncode is not None:
                self.procs[index] = await self._spawn(index)
        while not self._stopping:
            pulse.beat()
            for index, proc in list(self.procs.items()):
                if proc.returncode is None or self._stopping:
                    continue
                log.error("worker_exited", worker=index, code=proc.returncode)
                worker_exited(proc.pid)
                await asyncio.sleep(delays[index])
                delays[index] = min(delays[index] * 2, RESTART_MAX_S)
                if not self._stopping:
                    self.procs[index] = await self._spawn(index)
            await asyncio.sleep(0.5)

    def signal_all(self, sig: signal.Signals) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM every worker; each drains as worker 0 does; kill stragglers."""
        self._stopping = True
        self.signal_all(signal.SIGTERM)
        waits = [p.wait() for p in self.procs.values() if p.returncode is None]
        if waits:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(w) for w in waits], timeout=timeout_s
            )
            if pending:
                self.signal_all(signal.SIGKILL)
