"""
The admin commands of `pushgw`: apps, endpoints, topics, queue, messages,
failures and keys.

They talk to a running daemon only through its JSON API (`/v1`) with an
admin-scoped key, so they work the same against one node or many (every node
answers from the shared store). Nothing here opens the store.

Where the daemon is: `--url`, else $PUSHGW_URL, else the config file found as
`pushgw serve` finds it (`server.public_url`, else http(s)://host:port). Which
key: `--key` or `--key-file`, else $PUSHGW_API_KEY, else the first
`[[auth.api_keys]]` entry of that config with `admin = true`.

Output: aligned plain-text tables for people; `--json` for scripts (the API's
JSON as it is, a list as one array with every page followed unless `--limit`).
Progress of long operations goes to stderr, so stdout stays the result. A failed
call is one line on stderr with the API's error code and message, exit status 1;
usage errors (no URL, no key, bad arguments) exit 2.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import secrets
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import httpx

from pushgw.config import CONFIG_ENV, SYSTEM_CONFIG, Config, find_config, load_config
from pushgw.errors import ConfigError, PushGwError

URL_ENV = "PUSHGW_URL"
KEY_ENV = "PUSHGW_API_KEY"
PAGE = 1000  # deliveries per page when following pages (the API's maximum)
REPLAY_BATCH = 1000  # dead letters per replay call (the API's default)
REPLAY_BATCH_MAX = 10_000

EPILOG = f"""\
Daemon: --url, else ${URL_ENV}, else the config file (--config FILE, else
${CONFIG_ENV}, else {SYSTEM_CONFIG}): server.public_url, else http://host:port.
Key: --key or --key-file, else ${KEY_ENV}, else the first [[auth.api_keys]]
entry of that config with admin = true (key, or key_file read as serve reads it).
--json prints the API's JSON (a list as one array, every page followed unless
--limit). Errors: one line on stderr, exit 1; usage errors exit 2.
"""


class UsageError(PushGwError):
    """Bad arguments or no way to reach the daemon: exit 2."""


class AdminError(PushGwError):
    """A call that failed (the API's error, no connection): exit 1."""


# -- where the daemon is, and which key ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    url_origin: str  # said in connection errors: "$PUSHGW_URL", "server.port of …"
    key: str
    key_origin: str  # said in 401/403 errors
    verify: ssl.SSLContext | bool = True


def config_url(config: Config) -> tuple[str, str]:
    """The daemon's base URL as its config says, and from which key."""
    where = config.source or "the config"
    if config.server.public_url:
        return config.server.public_url.rstrip("/"), f"server.public_url of {where}"
    host = config.server.host
    # A wildcard bind is reached on loopback from the daemon's own host.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.server.tls_cert_file else "http"
    url = f"{scheme}://{host}:{config.server.port}"
    return url, f"server.host/port of {where}"


def config_admin_key(config: Config) -> tuple[str, str]:
    """The first `admin = true` API key of the config, its file read as `serve`
    reads it (relative to $CREDENTIALS_DIRECTORY when set, else the config)."""
    where = config.source or "the config"
    for i, entry in enumerate(config.auth.api_keys):
        if not entry.admin:
            continue
        origin = f"auth.api_keys {entry.name!r} of {where}"
        if entry.key:
            return entry.key, origin
        path = config.secret_path(entry.key_file)
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise UsageError(
                f"auth.api_keys[{i}].key_file: cannot read {path}:"
                f" {exc.strerror or exc} (or give --key-file or ${KEY_ENV})"
            ) from None
        if not key:
            raise UsageError(f"auth.api_keys[{i}].key_file: {path} is empty")
        return key, origin
    raise UsageError(
        f"no admin key: give --key or --key-file, set ${KEY_ENV}, or set"
        f" admin = true on an [[auth.api_keys]] entry of {where}"
    )


def resolve_target(
    args: argparse.Namespace, env: Mapping[str, str] = os.environ
) -> Target:
    """The daemon's URL and the key, by the order the module doc gives; the
    config file is read only when one of the two is not given otherwise."""
    url, url_origin = args.url or "", "--url"
    if not url and env.get(URL_ENV):
        url, url_origin = env[URL_ENV], f"${URL_ENV}"
    key, key_origin = args.key or "", "--key"
    if not key and args.key_file:
        key, key_origin = _read_key_file(args.key_file), f"--key-file {args.key_file}"
    if not key and env.get(KEY_ENV):
        key, key_origin = env[KEY_ENV].strip(), f"${KEY_ENV}"
    if not url or not key:
        config = _config(args.config, env)
        if not url:
            url, url_origin = config_url(config)
        if not key:
            key, key_origin = config_admin_key(config)
    if not re.match(r"https?://[^/]", url):
        raise UsageError(f"{url_origin}: expected an http(s):// URL, got {url!r}")
    verify: ssl.SSLContext | bool = True
    if args.ca_file:
        try:
            verify = ssl.create_default_context(cafile=args.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--ca-file {args.ca_file}: {exc}") from None
    return Target(url.rstrip("/"), url_origin, key, key_origin, verify)


def _read_key_file(path: str) -> str:
    try:
        key = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(
            f"--key-file: cannot read {path}: {exc.strerror or exc}"
        ) from None
    if not key:
        raise UsageError(f"--key-file: {path} is empty")
    return key


def _config(given: str | None, env: Mapping[str, str]) -> Config:
    path, origin = find_config(given, env)
    try:
        # Only the URL and the admin key are needed: other files (CA files,
        # the encryption key) may be unreadable to the operator, and need not
        # be readable here.
        return load_config(path, env=env, check_files=False)
    except ConfigError as exc:
        hint = ""
        if origin == "default":
            hint = (
                f" (give --url and --key, set ${URL_ENV} and ${KEY_ENV},"
                f" or give --config)"
            )
        raise UsageError(f"config error: {exc}{hint}") from None


# -- the JSON API client ---------------------------------------------------------


def arn_path(template: str, arn: str) -> str:
    """`template` with the ARN percent-encoded into `{}` (the API takes both)."""
    if not arn.startswith("arn:"):
        raise UsageError(f"expected an ARN (arn:aws:sns:…), got {arn!r}")
    return template.format(quote(arn, safe=""))


class Client:
    """A sync httpx client on the daemon's JSON API, bearer key attached; every
    failure becomes one AdminError line."""

    def __init__(self, target: Target, *, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=target.url,
            headers={
                "Authorization": f"Bearer {target.key}",
                "User-Agent": "pushgw-cli",
            },
            timeout=timeout,
            verify=target.verify,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=_query(params or {}))

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._call("POST", path, json=dict(body))

    def pages(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged listing, one page fetched at a time."""
        query = dict(params or {})
        while True:
            answer = self.get(path, query)
            yield from answer.get(key) or []
            token = answer.get("nextToken")
            if not token:
                return
            query["nextToken"] = token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        target = self.target
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise AdminError(
                f"cannot connect to {target.url} (from {target.url_origin}):"
                f" {_reason(exc)}"
            ) from None
        except httpx.TimeoutException:
            raise AdminError(
                f"{target.url}: no answer within {self.timeout:g} s"
                f" ({method} {path.split('?')[0]}; --timeout)"
            ) from None
        except httpx.HTTPError as exc:
            raise AdminError(f"{target.url}: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise AdminError(self._error(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AdminError(
                f"{target.url}: {method} {response.url.path} answered"
                f" HTTP {response.status_code} without JSON"
            ) from None

    def _error(self, response: httpx.Response) -> str:
        """`NotFound: No such endpoint (HTTP 404)`, the key's origin on 401/403."""
        code, message = "", ""
        try:
            error = response.json().get("error") or {}
            code, message = str(error.get("code", "")), str(error.get("message", ""))
        except (ValueError, AttributeError):
            pass
        status = response.status_code
        if not code:
            text = response.reason_phrase or "error"
            return f"{self.target.url}{response.url.path}: HTTP {status} {text}"
        line = f"{code}: {_clean(message)} (HTTP {status})"
        if status == 404 and message.startswith("No route for"):
            line += f"; {self.target.url} does not serve it (an older pushgw?)"
        elif status == 401:
            line += f"; key from {self.target.key_origin}"
        elif status == 403:
            line += (
                f"; key from {self.target.key_origin}"
                " (the admin commands need a key with admin = true)"
            )
        return line


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _reason(exc: BaseException) -> str:
    """`[Errno 111] Connection refused` → `connection refused`."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text[:1].lower() + text[1:]


# -- output -------------------------------------------------------------------------


def _clean(value: str) -> str:
    """One line with no terminal control characters: values come from API
    clients (CustomUserData, tokens) and must not move the cursor."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in value
    )


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _clean(str(value))


def shorten(value: str | None, width: int) -> str | None:
    if value is None or len(value) <= width:
        return value
    return value[: width - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Aligned columns, two spaces apart; integer columns right-aligned."""
    raw = [list(row) for row in rows]
    cells = [[cell(v) for v in row] for row in raw]
    numeric = [
        bool(raw)
        and all(isinstance(row[i], int) and not isinstance(row[i], bool) for row in raw)
        for i in range(len(headers))
    ]
    widths = [
        max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """`name  value` lines, the values aligned."""
    shown = [(name, cell(value)) for name, value in pairs]
    width = max((len(name) for name, _ in shown), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in shown)


def emit_json(value: Any, out: TextIO | None = None) -> None:
    json.dump(value, out or sys.stdout, indent=2, ensure_ascii=False)
    (out or sys.stdout).write("\n")


def _resource(arn: str) -> str:
    """`arn:aws:sns:r:a:app/GCM/myapp` → `app/GCM/myapp`; a topic's name."""
    return arn.split(":", 5)[5] if arn.count(":") >= 5 else arn


# -- commands -----------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Client], int]


def _listing(
    client: Client,
    path: str,
    key: str,
    limit: int | None,
    params: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    items = client.pages(path, key, params)
    return list(islice(items, limit) if limit else items)


def cmd_apps_list(args: argparse.Namespace, client: Client) -> int:
    apps = _listing(
        client, "/v1/platform-applications", "platformApplications", args.limit
    )
    if args.json:
        emit_json(apps)
        return 0
    if not apps:
        print("no platform applications")
        return 0
    rows = []
    for app in apps:
        arn = app.get("platformApplicationArn", "")
        _, platform, name = [*_resource(arn).split("/", 2), "", ""][:3]
        attributes = app.get("attributes") or {}
        rows.append(
            (
                name,
                platform,
                attributes.get("Enabled"),
                attributes.get("AppleCertificateExpiryDate"),
                arn,
            )
        )
    print(table(("NAME", "PLATFORM", "ENABLED", "CERT EXPIRES", "ARN"), rows))
    return 0


def _show(path: str, arn_key: str, args: argparse.Namespace, client: Client) -> int:
    answer = client.get(arn_path(path, args.arn))
    if args.json:
        emit_json(answer)
        return 0
    attributes = answer.get("attributes") or {}
    pairs = [(arn_key, answer.get(arn_key, args.arn))]
    pairs += sorted((k, v) for k, v in attributes.items() if k != arn_key)
    print(fields(pairs))
    return 0


def cmd_apps_show(args: argparse.Namespace, client: Client) -> int:
    return _show("/v1/platform-applications/{}", "PlatformApplicationArn", args, client)


def cmd_endpoints_list(args: argparse.Namespace, client: Client) -> int:
    # A token prefix or CustomUserData is the endpoint search (one index range
    # a page, as the console's), else SNS's listing in creation order.
    search = {"tokenPrefix": args.token_prefix, "customUserData": args.custom_user_data}
    searching = any(v is not None for v in search.values())
    endpoints = _listing(
        client,
        arn_path(
            "/v1/platform-applications/{}/endpoints" + ("/search" if searching else ""),
            args.app_arn,
        ),
        "endpoints",
        args.limit,
        search if searching else None,
    )
    if args.json:
        emit_json(endpoints)
        return 0
    if not endpoints:
        print(f"no endpoints in {args.app_arn}")
        return 0
    rows = []
    for endpoint in endpoints:
        attributes = endpoint.get("attributes") or {}
        rows.append(
            (
                attributes.get("Enabled"),
                shorten(attributes.get("Token"), 40),
                shorten(attributes.get("CustomUserData"), 30),
                endpoint.get("endpointArn"),
            )
        )
    print(table(("ENABLED", "TOKEN", "CUSTOM USER DATA", "ARN"), rows))
    return 0


def cmd_endpoints_show(args: argparse.Namespace, client: Client) -> int:
    return _show("/v1/endpoints/{}", "EndpointArn", args, client)


def cmd_topics_list(args: argparse.Namespace, client: Client) -> int:
    topics = _listing(client, "/v1/topics", "topics", args.limit)
    if args.json:
        emit_json(topics)
        return 0
    if not topics:
        print("no topics")
        return 0
    rows = [(_resource(t.get("topicArn", "")), t.get("topicArn")) for t in topics]
    print(table(("NAME", "ARN"), rows))
    return 0


def cmd_topics_show(args: argparse.Namespace, client: Client) -> int:
    return _show("/v1/topics/{}", "TopicArn", args, client)


STATES = ("due", "leased", "scheduled", "waiting_for_app")
STATUSES = ("delivered", "failed", "expired")  # the ledger's outcomes


def cmd_queue(args: argparse.Namespace, client: Client) -> int:
    answer = client.get("/v1/queue")
    if args.json:
        emit_json(answer)
        return 0
    totals = answer.get("totals") or {}
    counts = ", ".join(f"{s} {int(totals.get(s, 0))}" for s in STATES)
    print(f"backlog: {sum(int(totals.get(s, 0)) for s in STATES)} jobs ({counts})")
    backlog = answer.get("backlog") or []
    if not backlog:
        return 0
    order = {s: i for i, s in enumerate(STATES)}
    backlog = sorted(
        backlog,
        key=lambda b: (
            order.get(b.get("state"), len(order)),
            b.get("appArn") is None,  # topic fan-outs (no app yet) last
            b.get("appArn") or "",
            b.get("kind") or "",
        ),
    )
    rows = [
        (
            b.get("state"),
            b.get("kind"),
            b.get("platform"),
            b.get("appArn"),
            b.get("jobs"),
        )
        for b in backlog
    ]
    print()
    print(table(("STATE", "KIND", "PLATFORM", "APP", "JOBS"), rows))
    return 0


def cmd_stats(args: argparse.Namespace, client: Client) -> int:
    """Deliveries that ended, by platform and outcome, since `--since`."""
    params = {"since": since_value(args.since), "bucketSeconds": args.bucket}
    answer = client.get("/v1/stats/deliveries", params)
    if args.json:
        emit_json(answer)
        return 0
    buckets = answer.get("buckets") or []
    if not buckets:
        print(f"no deliveries ended since {params['since']}")
        return 0
    totals: dict[str, list[int]] = {}
    for b in buckets:
        sums = totals.setdefault(b.get("platform", ""), [0, 0, 0])
        for i, status in enumerate(STATUSES):
            sums[i] += int(b.get(status, 0))
    rows = [
        (platform, *sums, f"{100 * sums[0] / max(1, sum(sums)):.1f} %")
        for platform, sums in sorted(totals.items())
    ]
    print(f"since {params['since']}")
    print(table(("PLATFORM", *(s.upper() for s in STATUSES), "DELIVERED"), rows))
    if args.buckets:
        print()
        print(
            table(
                ("START", "PLATFORM", *(s.upper() for s in STATUSES)),
                (
                    (b.get("start"), b.get("platform"), *(b.get(s) for s in STATUSES))
                    for b in buckets
                ),
            )
        )
    return 0


def cmd_messages_show(args: argparse.Namespace, client: Client) -> int:
    answer = client.get(f"/v1/messages/{quote(args.message_id, safe='')}")
    if args.json:
        emit_json(answer)
        return 0
    totals = answer.get("totals") or {}
    print(
        fields(
            [
                ("Message ID", answer.get("messageId")),
                ("Topic", answer.get("topicArn")),
                ("Target", answer.get("targetArn")),
                ("Created", answer.get("createdAt")),
                ("First attempt", answer.get("firstAttemptAt")),
                ("Last attempt", answer.get("lastAttemptAt")),
                ("Pending jobs", answer.get("pendingJobs")),
                ("Delivered", totals.get("delivered", 0)),
                ("Failed", totals.get("failed", 0)),
                ("Expired", totals.get("expired", 0)),
                ("Pending", totals.get("pending", 0)),
                ("Fan-out to go", fanout_text(answer.get("pendingFanout") or {})),
            ]
        )
    )
    counts = answer.get("counts") or []
    if counts:
        rows = [
            (c.get("platform"), c.get("status"), c.get("failureType"), c.get("count"))
            for c in counts
        ]
        print()
        print(table(("PLATFORM", "STATUS", "FAILURE", "COUNT"), rows))
    return 0


def fanout_text(fanout: dict[str, Any]) -> str:
    """A topic fan-out not expanded yet: its chunks and the subscriptions they
    still cover ("+": more than the daemon counted)."""
    chunks = int(fanout.get("chunks") or 0)
    if not chunks:
        return "-"
    more = "+" if fanout.get("more") else ""
    subscriptions = int(fanout.get("subscriptions") or 0)
    return f"{subscriptions}{more} subscriptions in {chunks} chunk(s)"


_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_value(text: str, now: datetime | None = None) -> str:
    """`--since`: `30m`, `2h`, `7d` (ago) as ISO-8601 UTC; anything else (an
    ISO-8601 time, epoch seconds) as given, for the API to judge."""
    match = _RELATIVE.fullmatch(text.strip())
    if not match:
        return text
    delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
    at = (now or datetime.now(UTC)) - delta
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "app": args.app,
        "reason": args.reason,
        "since": since_value(args.since) if args.since else None,
    }


FAILED_STATUSES = ("failed", "expired")


def deliveries(
    client: Client,
    params: Mapping[str, Any],
    statuses: Sequence[str],
    limit: int | None,
) -> Iterator[dict[str, Any]]:
    """Delivery records of the given statuses, newest first, at most `limit`.
    The API takes one status per query: several are merged page by page."""
    page = min(limit or PAGE, PAGE)
    streams = [
        client.pages(
            "/v1/deliveries", "deliveries", {**params, "status": s, "limit": page}
        )
        for s in statuses
    ]
    if len(streams) == 1:
        merged: Iterator[dict[str, Any]] = streams[0]
    else:
        merged = heapq.merge(
            *streams,
            key=lambda d: (str(d.get("at", "")), int(d.get("id", 0))),
            reverse=True,
        )
    return islice(merged, limit) if limit else merged


def _dead_letter(record: Mapping[str, Any]) -> str:
    if not record.get("deadLetter"):
        return "no"
    return "replayed" if record.get("replayedAt") else "yes"


def cmd_failures_list(args: argparse.Namespace, client: Client) -> int:
    params = {
        **_filters(args),
        "message": args.message,
        "endpoint": args.endpoint,
        "deadLetter": True if args.dead_letters else None,
    }
    statuses = [args.status] if args.status else list(FAILED_STATUSES)
    records = deliveries(client, params, statuses, args.limit)
    if args.json:
        emit_json(list(records))
        return 0
    rows = [
        (
            r.get("id"),
            r.get("at"),
            r.get("status"),
            r.get("failureType"),
            r.get("providerStatus"),
            r.get("attempts"),
            _dead_letter(r),
            r.get("messageId"),
            r.get("endpointArn"),
            shorten(r.get("reason"), 60),
        )
        for r in records
    ]
    if not rows:
        print("no failures")
        return 0
    headers = (
        "ID",
        "AT",
        "STATUS",
        "FAILURE",
        "HTTP",
        "ATTEMPTS",
        "DEAD LETTER",
        "MESSAGE",
        "ENDPOINT",
        "REASON",
    )
    print(table(headers, rows))
    return 0


class Progress:
    """`replayed N of M` on stderr: rewritten in place on a terminal, else a
    line at most every `interval` seconds (the first and the last always)."""

    def __init__(self, out: TextIO, *, interval: float = 1.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.interval = interval
        self._last = float("-inf")
        self._shown: tuple[int, int] | None = None

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._shown is None or now - self._last >= self.interval:
            self._last = now
            self._show(done, total)

    def finish(self, done: int, total: int) -> None:
        if self._shown != (done, total):
            self._show(done, total)
        if self.tty and self._shown is not None:
            self.out.write("\n")
            self.out.flush()

    def _show(self, done: int, total: int) -> None:
        self._shown = (done, total)
        percent = f" ({100 * done // total}%)" if total else ""
        text = f"replayed {done:,} of {total:,}{percent}"
        self.out.write("\r\033[K" + text if self.tty else text + "\n")
        self.out.flush()


def _replay_selection(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """The request bodies (one per batch of --id) and a description."""
    filters = {
        "messageId": args.message,
        **_filters(args),
    }
    filters = {k: v for k, v in filters.items() if v is not None}
    if args.all and (filters or args.ids):
        raise UsageError("failures replay: --all takes no other selection")
    if not (args.all or filters or args.ids):
        raise UsageError(
            "failures replay: say which dead letters: --id N ..., --message ID,"
            " --app ARN, --reason R, --since T, or --all"
        )
    described = [f"{k}={v}" for k, v in filters.items()]
    if args.ids:
        ids = sorted(set(args.ids))
        described.insert(0, f"{len(ids)} id(s)")
        bodies = [
            {**filters, "ids": ids[i : i + args.batch]}
            for i in range(0, len(ids), args.batch)
        ]
        return bodies, ", ".join(described)
    if args.all:
        # The API refuses a replay that names nothing; since=0 is every one.
        return [{"since": 0}], "all"
    return [filters], ", ".join(described)


def _confirm(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_failures_replay(args: argparse.Namespace, client: Client) -> int:
    bodies, described = _replay_selection(args)
    if not args.yes and sys.stdin.isatty():
        what = (
            "every dead letter" if described == "all" else f"dead letters ({described})"
        )
        if not _confirm(f"Replay {what} through {client.target.url}?"):
            print("pushgw: nothing replayed", file=sys.stderr)
            return 1
    progress = Progress(sys.stderr)
    done = remaining = 0
    total = 0  # what the first answer of each selection said was there
    try:
        for body in bodies:
            # Dead letters that appear while this runs (a replayed one failing
            # again) are left for the next run: stop at what was there at first.
            ceiling: int | None = None
            replayed_here = 0
            while True:
                limit = args.batch
                if ceiling is not None:
                    limit = min(limit, ceiling - replayed_here)
                answer = client.post("/v1/deliveries/replay", {**body, "limit": limit})
                replayed = int(answer.get("replayed", 0))
                remaining = int(answer.get("remaining", 0))
                if ceiling is None:
                    ceiling = replayed + remaining
                    total += ceiling
                done += replayed
                replayed_here += replayed
                progress.update(done, total)
                if remaining == 0 or replayed_here >= ceiling:
                    break
                if replayed == 0:
                    raise AdminError(
                        f"the daemon replayed nothing with {remaining} remaining"
                    )
    except KeyboardInterrupt:
        progress.finish(done, total)
        print(
            f"pushgw: interrupted after replaying {done}; the rest stay dead letters",
            file=sys.stderr,
        )
        return 130
    except AdminError as exc:
        if total:
            progress.finish(done, total)
        raise AdminError(f"{exc} (replayed {done} before that)") from None
    progress.finish(done, total)
    if args.json:
        emit_json({"replayed": done, "remaining": remaining})
    else:
        print(f"replayed {done} dead letter{'s' if done != 1 else ''}")
        if remaining:
            print(
                f"{remaining} more appeared meanwhile (replayed ones that failed"
                " again, or new failures); run again to replay them"
            )
    return 0


# -- keys (no daemon) ----------------------------------------------------------------


def generate_key(kind: str) -> str:
    if kind == "encryption":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode("ascii")
    return secrets.token_urlsafe(32)  # 256 bits


def write_secret(path: Path, text: str) -> None:
    """A new file, mode 0600 whatever the umask; never over an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AdminError(f"{path} exists; not overwritten") from None
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)
        out.write(text + "\n")


def cmd_keys_generate(args: argparse.Namespace) -> int:
    key = generate_key(args.kind)
    if args.out:
        write_secret(Path(args.out), key)
        use = (
            "store.encryption_key_file"
            if args.kind == "encryption"
            else "key_file of an [[auth.api_keys]] entry"
        )
        print(f"wrote {args.out} (mode 0600); name it in {use}", file=sys.stderr)
    else:
        print(key)
    return 0


# -- the parsers ----------------------------------------------------------------------


def _run(
    func: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except UsageError as exc:
            print(f"pushgw: {exc}", file=sys.stderr)
            return 2
        except AdminError as exc:
            print(f"pushgw: {exc}", file=sys.stderr)
            return 1

    return run


def _with_client(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        target = resolve_target(args)
        with Client(target, timeout=args.timeout) as client:
            return command(args, client)

    return _run(run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected >= 1, got {value}")
    return value


def _batch(text: str) -> int:
    value = _positive(text)
    if value > REPLAY_BATCH_MAX:
        raise argparse.ArgumentTypeError(f"expected <= {REPLAY_BATCH_MAX}, got {value}")
    return value


def _daemon_options(
    parser: argparse.ArgumentParser, *, json_output: bool = True
) -> None:
    group = parser.add_argument_group("daemon and key")
    group.add_argument(
        "--url",
        metavar="URL",
        help=f"the daemon's base URL (default: ${URL_ENV}, else from the config)",
    )
    keys = group.add_mutually_exclusive_group()
    keys.add_argument(
        "--key",
        metavar="KEY",
        help=f"an admin API key (visible to ps: prefer --key-file or ${KEY_ENV})",
    )
    keys.add_argument(
        "--key-file", metavar="FILE", help="a file holding an admin API key"
    )
    group.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help=f"the config the URL and the admin key come from when not given"
        f" (default: ${CONFIG_ENV}, else {SYSTEM_CONFIG})",
    )
    group.add_argument(
        "--ca-file",
        metavar="FILE",
        help="CA bundle to verify an https daemon's certificate with",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per request (default: 30)",
    )
    if json_output:
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the API's JSON (a list as one array)",
        )


def _limit_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--limit",
        type=_positive,
        metavar="N",
        help=f"at most N {what} (default: every page)",
    )


def add_commands(sub: Any) -> None:
    """The admin commands, on `pushgw`'s subparsers action."""

    def command(parent: Any, name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}.",
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    def client_command(
        parent: Any, name: str, text: str, run: Callable[..., Any]
    ) -> argparse.ArgumentParser:
        """A command that talks to the daemon: the daemon and key options,
        and `run` called with a client."""
        parser = command(parent, name, text)
        _daemon_options(parser)
        parser.set_defaults(func=_with_client(run))
        return parser

    def group(name: str, text: str) -> Any:
        parser = command(sub, name, text)
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    apps = group("apps", "platform applications (through the JSON API)")
    p = client_command(apps, "list", "list platform applications", cmd_apps_list)
    _limit_option(p, "applications")
    p = client_command(
        apps, "show", "show a platform application's attributes", cmd_apps_show
    )
    p.add_argument("arn", metavar="ARN", help="the platform application's ARN")

    endpoints = group("endpoints", "platform endpoints (through the JSON API)")
    p = client_command(
        endpoints, "list", "list an application's endpoints", cmd_endpoints_list
    )
    p.add_argument("app_arn", metavar="APP_ARN", help="the platform application's ARN")
    p.add_argument(
        "--token-prefix",
        metavar="T",
        help="only tokens that start with T (in token order)",
    )
    p.add_argument(
        "--custom-user-data",
        metavar="D",
        help="only endpoints whose CustomUserData is D",
    )
    _limit_option(p, "endpoints")
    p = client_command(
        endpoints, "show", "show an endpoint's attributes", cmd_endpoints_show
    )
    p.add_argument("arn", metavar="ARN", help="the endpoint's ARN")

    topics = group("topics", "topics (through the JSON API)")
    p = client_command(topics, "list", "list topics", cmd_topics_list)
    _limit_option(p, "topics")
    p = client_command(topics, "show", "show a topic's attributes", cmd_topics_show)
    p.add_argument("arn", metavar="ARN", help="the topic's ARN")

    client_command(
        sub, "queue", "show the delivery backlog by state and application", cmd_queue
    )

    p = client_command(
        sub,
        "stats",
        "deliveries that ended, by platform and outcome (the ledger's rollup)",
        cmd_stats,
    )
    p.add_argument(
        "--since",
        metavar="T",
        default="1h",
        help="from T: ISO-8601, epoch seconds, or 30m / 2h / 7d ago (default 1h)",
    )
    p.add_argument(
        "--bucket",
        metavar="S",
        type=_positive,
        default=300,
        help="bucket size in seconds, a multiple of 60 (default 300)",
    )
    p.add_argument("--buckets", action="store_true", help="also list every bucket")

    messages = group("messages", "what became of a published message (the ledger)")
    p = client_command(
        messages,
        "show",
        "a message's delivery counts by platform and outcome",
        cmd_messages_show,
    )
    p.add_argument("message_id", metavar="ID", help="the MessageId Publish returned")

    failures = group("failures", "failed deliveries and dead letters (the ledger)")
    p = client_command(
        failures,
        "list",
        "list failed and expired deliveries, newest first",
        cmd_failures_list,
    )
    p.add_argument("--app", metavar="ARN", help="of this platform application")
    p.add_argument("--endpoint", metavar="ARN", help="to this endpoint")
    p.add_argument("--message", metavar="ID", help="of this message")
    p.add_argument(
        "--reason", metavar="R", help="with this failure type (InvalidPlatformToken …)"
    )
    p.add_argument(
        "--since",
        metavar="T",
        help="at or after T: ISO-8601, epoch seconds, or 30m / 2h / 7d ago",
    )
    p.add_argument(
        "--status",
        choices=FAILED_STATUSES,
        help="only failed or only expired (default: both)",
    )
    p.add_argument(
        "--dead-letters", action="store_true", help="only dead letters (replayable)"
    )
    _limit_option(p, "records")

    p = client_command(
        failures,
        "replay",
        "re-queue dead letters through the durable engine (in batches, with progress)",
        cmd_failures_replay,
    )
    p.add_argument(
        "--id",
        dest="ids",
        type=int,
        nargs="+",
        action="extend",
        metavar="N",
        help="these delivery records (ids from `failures list`)",
    )
    p.add_argument("--message", metavar="ID", help="of this message")
    p.add_argument("--app", metavar="ARN", help="of this platform application")
    p.add_argument("--reason", metavar="R", help="with this failure type")
    p.add_argument(
        "--since",
        metavar="T",
        help="failed at or after T: ISO-8601, epoch seconds, or 30m / 2h / 7d ago",
    )
    p.add_argument("--all", action="store_true", help="every dead letter")
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask (never asked when stdin is not a terminal)",
    )
    p.add_argument(
        "--batch",
        type=_batch,
        default=REPLAY_BATCH,
        metavar="N",
        help=f"dead letters per request (default: {REPLAY_BATCH},"
        f" at most {REPLAY_BATCH_MAX})",
    )

    keys = group("keys", "generate keys (no daemon needed)")
    p = command(
        keys,
        "generate",
        "print a new key: encryption (a Fernet key for store.encryption_key_file)"
        " or api (a random API key)",
    )
    p.add_argument("kind", choices=("encryption", "api"), help="which key")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write it to FILE (new, mode 0600) instead of stdout",
    )
    p.set_defaults(func=_run(cmd_keys_generate))
