"""
The `pushgw` command: serve | demo | mock-providers | bench | check-config |
migrate | init, and the admin commands (apps, endpoints, topics, queue,
messages, failures, keys: `pushgw.admin_cli`), which talk to a running daemon
through its JSON API.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pushgw import __version__, admin_cli
from pushgw.config import CONFIG_ENV, SYSTEM_CONFIG, Config, find_config, load_config
from pushgw.errors import ConfigError, PushGwError

T = TypeVar("T")

SEARCH_ORDER = f"--config FILE, else ${CONFIG_ENV}, else {SYSTEM_CONFIG}"
EPILOG = f"""\
Config file: {SEARCH_ORDER}
(no development fallback: the Makefile passes --config config/dev.toml; demo
and mock-providers take --config only).
Relative paths in it resolve against its directory, except a relative SQLite
path (against $STATE_DIRECTORY when set) and the secret *_file keys (against
$CREDENTIALS_DIRECTORY when set); systemd sets both for deploy/pushgw.service.
Config errors exit 2.
"""


def _load(given: str | None, *, check_files: bool = True) -> tuple[Config, str]:
    """The config by the search order, or exit 2 with one line on stderr."""
    path, origin = find_config(given)
    try:
        config = load_config(path, check_files=check_files)
        _check_actions(config)
        return config, path
    except ConfigError as exc:
        hint = ""
        if origin == "default":
            hint = f" (no --config given and ${CONFIG_ENV} is not set)"
        print(f"pushgw: config error: {exc}{hint}", file=sys.stderr)
        raise SystemExit(2) from None


def _check_actions(config: Config) -> None:
    """Every `actions` entry of a key names an operation (the API's table): a
    typo would otherwise grant nothing, silently."""
    from pushgw.api.operations import OPERATIONS

    keys = [("auth.sns_keys", k.access_key_id, k.actions) for k in config.auth.sns_keys]
    keys += [("auth.api_keys", k.name, k.actions) for k in config.auth.api_keys]
    for table, name, actions in keys:
        unknown = sorted(set(actions) - set(OPERATIONS))
        if unknown:
            raise ConfigError(
                f"{table} {name!r}: unknown action {unknown[0]!r}"
                f" (actions are SNS action names, e.g. Publish)"
            )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected >= 1, got {value}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from pushgw import log
    from pushgw.daemon import serve
    from pushgw.workers import Workers, check_workers

    config, path = _load(args.config)
    log.configure(level=config.logging.level, fmt=config.logging.format)
    problem = check_workers(config, args.workers)
    if problem is not None:
        print(f"pushgw: {problem}", file=sys.stderr)
        return 2
    if args.worker_index:  # one of workers 1..N-1, started by worker 0
        run_on_loop(
            config.server.event_loop,
            serve(config, config_path=path, worker_index=args.worker_index),
        )
        return 0
    if args.workers == 1:
        run_on_loop(config.server.event_loop, serve(config, config_path=path))
        return 0
    from pushgw.metrics import use_shared_counters

    # The workers' counters, summed by whichever worker answers a scrape; the
    # children inherit the directory through the environment.
    shared = tempfile.mkdtemp(
        prefix="pushgw-metrics-", dir=os.environ.get("RUNTIME_DIRECTORY")
    )
    try:
        use_shared_counters(shared)
        workers = Workers(path, args.workers)
        run_on_loop(
            config.server.event_loop, serve(config, config_path=path, workers=workers)
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    return 0


def run_on_loop(event_loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop's loop or asyncio's (`server.event_loop`; the
    bench's `--loop`)."""
    if event_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def cmd_init(args: argparse.Namespace) -> int:
    """A starter config from the packaged example, with its own encryption key,
    so `pushgw serve --config DIR/pushgw.toml` runs from a plain install."""
    from cryptography.fernet import Fernet

    target = Path(args.directory)
    if target.exists() and any(target.iterdir()):
        print(f"pushgw: {target} is not empty", file=sys.stderr)
        return 2
    target.mkdir(parents=True, exist_ok=True)
    example = resources.files("pushgw").joinpath("defaults", "pushgw.example.toml")
    (target / "pushgw.toml").write_text(example.read_text())
    key = target / "encryption.key"
    key.touch(mode=0o600)
    key.write_bytes(Fernet.generate_key() + b"\n")
    print(f"wrote {target / 'pushgw.toml'} and {key}")
    print(f"run: pushgw serve --config {target / 'pushgw.toml'}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    # The same loader as `serve`, key, secret and CA files included.
    _config, path = _load(args.config)
    print(f"{path}: OK")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pushgw.daemon import store_url
    from pushgw.store.factory import open_store

    # Only the store is opened: no key or secret file is read, and migrations are
    # often run from a shell, outside the unit's $CREDENTIALS_DIRECTORY.
    config, _path = _load(args.config, check_files=False)
    url = store_url(config)

    async def run() -> None:
        store = open_store(url)
        await store.open()  # applies pending migrations
        await store.close()

    asyncio.run(run())
    # Name the store: a relative SQLite path depends on $STATE_DIRECTORY.
    print(f"migrations applied: {url.split('@')[-1]}")
    return 0


def cmd_mock_providers(args: argparse.Namespace) -> int:
    from pushgw import log
    from pushgw.providers.mocks.runner import run_mocks

    # The mocks write the CA file that the config's providers.apns.ca_file names.
    config, _path = _load(args.config, check_files=False)
    log.configure(level=config.logging.level, fmt=config.logging.format)
    asyncio.run(run_mocks(config))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pushgw.demo import run_demo

    code: int = asyncio.run(run_demo(args.config))
    return code


def cmd_bench(args: argparse.Namespace) -> int:
    from pushgw.bench.run import main as bench_main

    code: int = bench_main(args.rest)
    return code


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help=f"the TOML config file (default: ${CONFIG_ENV}, else {SYSTEM_CONFIG})",
    )


def _dev_config_option(parser: argparse.ArgumentParser, *, builtin: bool) -> None:
    # No search order here: on a production host the default would be the
    # production config, and the demo would create apps and topics in its store.
    # The demo's default is the development config built into the package,
    # copied to a new temporary directory: it never touches anything else.
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        required=not builtin,
        help="the development config with the mock ports (config/dev.toml)"
        + (
            "; default: the built-in one, in a new temporary directory"
            if builtin
            else ""
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    """The `pushgw` argument parser; every subcommand and option has help."""
    parser = argparse.ArgumentParser(
        prog="pushgw",
        description="Self-hosted, Amazon-SNS-compatible mobile-push gateway.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=__version__, help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, text: str, *, add_help: bool = True
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}.",
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=add_help,
        )

    serve = command("serve", "run the daemon (Type=notify under systemd)")
    _config_option(serve)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes on one port (SO_REUSEPORT) sharing the PostgreSQL store;"
        " SQLite allows 1 (default 1)",
    )
    serve.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    check = command(
        "check-config",
        "validate a config file with the loader `serve` uses; exit 2 on an error",
    )
    check.add_argument(
        "file", nargs="?", metavar="FILE", help="the config file (same as --config)"
    )
    _config_option(check)
    check.set_defaults(func=cmd_check_config)

    migrate = command("migrate", "apply pending schema migrations to the store")
    _config_option(migrate)
    migrate.set_defaults(func=cmd_migrate)

    mocks = command("mock-providers", "run the six loopback mock platforms")
    _dev_config_option(mocks, builtin=False)
    mocks.set_defaults(func=cmd_mock_providers)

    demo = command("demo", "run the five-step flow against the mocks")
    _dev_config_option(demo, builtin=True)
    demo.set_defaults(func=cmd_demo)

    init = command(
        "init",
        "write a starter config (SQLite, an encryption key) into a new directory",
    )
    init.add_argument(
        "directory", metavar="DIR", help="created if absent; must be empty"
    )
    init.set_defaults(func=cmd_init)

    bench = command(
        "bench",
        "run load scenarios against the mocks (pushgw bench --help)",
        add_help=False,  # its own parser (bench/run.py) answers --help
    )
    bench.set_defaults(func=cmd_bench)
    admin_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "bench" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "check-config":
        if args.file and args.config and args.file != args.config:
            parser.error("check-config: give the file once (FILE or --config)")
        args.config = args.config or args.file
    args.rest = rest
    try:
        code = args.func(args)
    except PushGwError as exc:
        print(f"pushgw: {exc}", file=sys.stderr)
        code = 1
    raise SystemExit(code)
