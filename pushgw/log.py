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
    """Configure structlog once per process."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelName(level.upper())
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
