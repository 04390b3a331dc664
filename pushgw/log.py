"""
structlog setup: JSON lines on stdout unless a terminal is attached.

Context (request id, delivery id) is bound with contextvars. Device tokens and
credentials never reach a log line: callers log `redact(token)`, and the
`scrub` processor drops keys that name secrets as a second line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {
        "token",
        "device_token",
        "credential",
        "principal",
        "secret",
        "secret_access_key",
        "authorization",
        "platformcredential",
        "platformprincipal",
        "password",
        "api_key",
    }
)


def scrub(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace values of secret-named keys; a last guard against careless calls."""
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure(*, level: str = "info", fmt: str = "auto") -> None:
    """
    Configure structlog once per process, and route the standard library's
    logging (aiohttp, asyncio, asyncpg …) through the same processors, so every
    line is one JSON object with `logger` and `level`, tracebacks included
    (as structured frames, `exception`).
    """
    as_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    exceptions: Any = (
        structlog.processors.dict_tracebacks
        if as_json
        else structlog.processors.format_exc_info
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        scrub,
    ]
    threshold = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                exceptions,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries log at their own levels; warnings and worse are worth a line.
    root.setLevel(max(threshold, logging.WARNING))


def get_logger(name: str) -> Any:
    """A logger whose every line names it (`"logger": "pushgw.delivery"`)."""
    return structlog.get_logger(name).bind(logger=name)
