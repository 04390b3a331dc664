"""The `pushgw` command: serve | demo | mock-providers | bench | check-config | migrate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pushgw import __version__
from pushgw.config import Config, load_config
from pushgw.errors import ConfigError, PushGwError

DEFAULT_CONFIG = "config/dev.toml"


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"pushgw: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from pushgw import log
    from pushgw.daemon import serve

    config = _load(args.config)
    log.configure(level=config.logging.level, fmt=config.logging.format)
    asyncio.run(serve(config, config_path=args.config))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    try:
        config.sns_access_keys()
        config.api_keys()
    except ConfigError as exc:
        print(f"pushgw: config error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pushgw.daemon import store_url
    from pushgw.store.factory import open_store

    config = _load(args.config)

    async def run() -> None:
        store = open_store(store_url(config))
        await store.open()  # applies pending migrations
        await store.close()

    asyncio.run(run())
    print("migrations applied")
    return 0


def cmd_mock_providers(args: argparse.Namespace) -> int:
    from providers.mocks.runner import run_mocks
    from pushgw import log

    config = _load(args.config)
    log.configure(level=config.logging.level, fmt=config.logging.format)
    asyncio.run(run_mocks(config))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pushgw.demo import run_demo

    code: int = asyncio.run(run_demo(args.config))
    return code


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.run import main as bench_main

    code: int = bench_main(args.rest)
    return code


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pushgw", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config", nargs="?", default=DEFAULT_CONFIG)
    check.add_argument("-c", "--config", dest="config")
    check.set_defaults(func=cmd_check_config)

    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    migrate.set_defaults(func=cmd_migrate)

    mocks = sub.add_parser("mock-providers", help="run the six loopback mock platforms")
    mocks.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    mocks.set_defaults(func=cmd_mock_providers)

    demo = sub.add_parser("demo", help="the five-step flow against the mocks")
    demo.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser(
        "bench",
        help="load scenarios against the mocks (pushgw bench --help)",
        add_help=False,
    )
    bench.set_defaults(func=cmd_bench)

    args, rest = parser.parse_known_args(argv)
    if args.command != "bench" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        code = args.func(args)
    except PushGwError as exc:
        print(f"pushgw: {exc}", file=sys.stderr)
        code = 1
    raise SystemExit(code)
