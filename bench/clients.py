"""
Client CPU per send of one provider adapter, variants side by side.

    python bench/clients.py --platform apns|fcm [--n 4000] [--rounds 5]
        --variant NAME=TREE[:uvloop] [--variant ...]

Each variant is a source tree (a checkout of this repository, `.` for the
working tree or an unpacked older commit: `git archive C | tar -x -C DIR`) and
an event loop: asyncio's, or uvloop's with `:uvloop`. One mock process
(bench/mockproc.py, this tree's) serves every run; each run is a fresh child
`python bench/clients.py --child ...` with PYTHONPATH=TREE, so the adapter
code is the tree's own. Runs are interleaved (the order rotates every round)
and the figures are the medians over rounds of the child's CPU time
(`time.process_time`, which the mock's process does not share) per send,
measured after `--warmup` sends on the same connections.

The script file is run, not imported, so it works with trees that do not
have it; it imports only pushgw modules that every tree has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MESSAGE = "hello from pushgw bench"


# -- child: one run in one tree ----------------------------------------------


def _provider(spec: dict[str, Any]) -> Any:
    from pushgw.model import Platform, PlatformApplication
    from pushgw.providers.base import ProviderSettings

    creds = dict(spec["credentials"])
    platform = Platform.APNS if spec["platform"] == "apns" else Platform.GCM
    app = PlatformApplication(
        arn=f"arn:aws:sns:us-east-1:123456789012:app/{platform.value}/bench",
        name="bench",
        platform=platform,
        principal=creds.pop("PlatformPrincipal"),
        credential=creds.pop("PlatformCredential"),
        attributes=creds,
    )
    settings = ProviderSettings(
        base_url=spec["url"], ca_file=spec["ca_file"], timeout_s=60.0
    )
    if platform is Platform.APNS:
        from pushgw.providers.apns import ApnsProvider

        return ApnsProvider(app=app, settings=settings)
    from pushgw.providers.fcm import FcmProvider

    return FcmProvider(app=app, settings=settings)


async def _sends(
    provider: Any, tokens: list[str], concurrency: int, outcomes: dict[str, int]
) -> None:
    from pushgw.model import Endpoint
    from pushgw.providers.base import RenderedMessage

    message = RenderedMessage(message_id="bench", body=MESSAGE, native=False)
    sem = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(token: str) -> None:
        try:
            result = await provider.send(
                Endpoint(arn="e", app_arn=provider.app.arn, token=token), message
            )
            key = result.outcome.value
        finally:
            sem.release()
        outcomes[key] = outcomes.get(key, 0) + 1

    for token in tokens:
        await sem.acquire()
        task = asyncio.create_task(one(token))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def _child_main(spec: dict[str, Any], profile: str | None) -> dict[str, Any]:
    import gc

    provider = _provider(spec)
    tokens: list[str] = spec["tokens"]
    warm, measured = tokens[: spec["warmup"]], tokens[spec["warmup"] :]
    outcomes: dict[str, int] = {}
    await _sends(provider, warm, spec["concurrency"], outcomes)
    gc.collect()
    outcomes.clear()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await _sends(provider, measured, spec["concurrency"], outcomes)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    await provider.aclose()
    return {"cpu_s": cpu, "wall_s": wall, "n": len(measured), "outcomes": outcomes}


def child(spec_path: str, loop: str, profile: str | None) -> None:
    spec = json.loads(Path(spec_path).read_text())
    coro = _child_main(spec, profile)
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            out = runner.run(coro)
    else:
        out = asyncio.run(coro)
    print(json.dumps(out))


# -- parent: the mocks, the rounds, the medians ------------------------------


def _variant(text: str) -> tuple[str, Path, str]:
    name, _, rest = text.partition("=")
    tree, _, loop = rest.partition(":")
    if not name or not tree or loop not in ("", "asyncio", "uvloop"):
        raise argparse.ArgumentTypeError(f"NAME=TREE[:uvloop], got {text!r}")
    return name, Path(tree).resolve(), loop or "asyncio"


def parent(args: argparse.Namespace) -> int:
    here = Path(__file__).resolve()
    sys.path.insert(0, str(here.parent.parent))  # this tree's mocks
    from pushgw.bench.mockproc import MockProcess

    mock_name = "APNS" if args.platform == "apns" else "GCM"
    with tempfile.TemporaryDirectory(prefix="pushgw-clients-") as tmp:
        ca_file = Path(tmp) / "ca.pem"
        mocks = MockProcess(ca_file)
        try:
            credentials = mocks.call("credentials", mock_name)
            devices = mocks.call("devices", mock_name, args.warmup + args.n)
            spec = {
                "platform": args.platform,
                "url": mocks.urls[mock_name],
                "ca_file": str(ca_file),
                "credentials": credentials,
                "tokens": [token for token, _ in devices],
                "warmup": args.warmup,
                "concurrency": args.concurrency,
            }
            spec_path = Path(tmp) / "spec.json"
            spec_path.write_text(json.dumps(spec))
            per_send: dict[str, list[float]] = {name: [] for name, _, _ in args.variant}
            print(
                f"{args.platform}: {args.n} sends (after {args.warmup} warm-up), "
                f"concurrency {args.concurrency}, {args.rounds} rounds",
                flush=True,
            )
            for rnd in range(args.rounds):
                shift = rnd % len(args.variant)
                order = args.variant[shift:] + args.variant[:shift]
                for name, tree, loop in order:
                    mocks.call("reset")
                    cmd = [sys.executable, str(here), "--child", str(spec_path)]
                    cmd += ["--loop", loop]
                    if args.profile:
                        cmd += [
                            "--profile",
                            f"{Path(args.profile).resolve()}.{name}.{rnd}",
                        ]
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    done = subprocess.run(
                        cmd, cwd=tree, env=env, capture_output=True, text=True
                    )
                    if done.returncode != 0:
                        print(done.stderr, file=sys.stderr)
                        return 1
                    out = json.loads(done.stdout.strip().splitlines()[-1])
                    us = out["cpu_s"] / out["n"] * 1e6
                    per_send[name].append(us)
                    print(
                        f"  round {rnd + 1} {name:<14} {us:7.1f} µs CPU/send  "
                        f"{out['n'] / out['wall_s']:7,.0f} sends/s wall  "
                        f"{out['outcomes']}",
                        flush=True,
                    )
        finally:
            mocks.stop()
    print(
        f"\n{'variant':<14} {'median µs CPU/send':>19} {'min':>7} {'max':>7}"
        f" {'sends per CPU-s':>16}"
    )
    for name, values in per_send.items():
        med = statistics.median(values)
        print(
            f"{name:<14} {med:19.1f} {min(values):7.1f} {max(values):7.1f}"
            f" {1e6 / med:16,.0f}"
        )
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=["apns", "fcm"], default="apns")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variant", type=_variant, action="append", default=[])
    parser.add_argument("--profile", help="cProfile each run to PREFIX.NAME.ROUND")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.loop, args.profile)
        return 0
    if not args.variant:
        args.variant = [_variant("this=.")]
    return parent(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
