"""
The admin JSON API (/v1, bearer keys with `admin = true`): the queue, the
delivery ledger and dead-letter replay, for `pushgw` admin commands and the web
console (README.md, "Delivery ledger and replay"). These routes are not SNS
operations, so they are not in the operation table nor in /v1/openapi.json.

    GET  /v1/queue                 the backlog by state, kind and application
    GET  /v1/messages/{messageId}  a message's outcome and pending counts
    GET  /v1/deliveries            delivery records, newest first, keyset pages
    POST /v1/deliveries/replay     queue dead letters again (an audit line each)
    GET  /v1/stats/deliveries      the per-minute rollup, in buckets

A valid key without the admin scope gets 403 AccessDenied; no or an unknown key
401, as on every /v1 route. Errors have the JSON API's shape.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from pushgw.api import ACTION_KEY
from pushgw.api.json_api import authenticate, read_json_object
from pushgw.api.openapi import Schema, error_responses, json_content, ref
from pushgw.config import ApiKey
from pushgw.errors import ForbiddenError, InvalidParameterError, NotFoundApiError
from pushgw.log import get_logger
from pushgw.model import Message
from pushgw.service import Service
from pushgw.sns.events import iso
from pushgw.store.base import BacklogRow
from pushgw.store.ledger_model import (
    STATUSES,
    DeliveryFilter,
    DeliveryRecord,
    LedgerStatus,
    MessageLedger,
    PendingDeliveries,
    StatsRow,
)

log = get_logger("pushgw.api.admin")

# (method, path) of every admin route.
ADMIN_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/v1/queue"),
    ("GET", "/v1/messages/{messageId}"),
    ("GET", "/v1/deliveries"),
    ("POST", "/v1/deliveries/replay"),
    ("GET", "/v1/stats/deliveries"),
)
PAGE_DEFAULT, PAGE_MAX = 100, 1000
REPLAY_DEFAULT, REPLAY_MAX = 1000, 10_000
STATS_WINDOW_S = 3600.0  # /v1/stats/deliveries without `since`
# The jobs (and a fan-out chunk's subscriptions) a message's page reads at most,
# so it costs the same for a message with a million deliveries queued.
PENDING_READ = 10_000
PENDING = "pending"  # the status of queued deliveries in a message's counts
BACKLOG_STATES = ("due", "leased", "scheduled", "waiting_for_app")
TOKEN_KIND = "deliveries"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_LISTING_PARAMS = frozenset(
    {
        "status",
        "app",
        "endpoint",
        "message",
        "reason",
        "since",
        "deadLetter",
        "replayed",
        "limit",
        "nextToken",
    }
)
_REPLAY_MEMBERS = frozenset({"ids", "messageId", "app", "reason", "since", "limit"})


def _invalid(name: str, expected: str) -> InvalidParameterError:
    return InvalidParameterError(f"Invalid parameter: {name} ({expected})")


def parse_time(value: object, name: str = "since") -> float:
    """ISO-8601 (UTC unless it says otherwise) or epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            try:
                moment = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise _invalid(name, "ISO-8601 or epoch seconds") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            seconds = moment.timestamp()
    else:
        raise _invalid(name, "ISO-8601 or epoch seconds")
    if not math.isfinite(seconds):
        raise _invalid(name, "ISO-8601 or epoch seconds")
    return seconds


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, str):
        text = value.strip()
        number = int(text) if text.isdigit() else None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        number = None
    if number is None or not low <= number <= high:
        raise _invalid(name, f"an integer {low}..{high}")
    return number


def _status(value: str) -> LedgerStatus:
    for status in STATUSES:
        if value == status:
            return status
    raise _invalid("status", "delivered, failed or expired")


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(name, "a non-empty string")
    return value


def _iso(ts: float | None) -> str | None:
    return iso(ts) if ts is not None else None


def render_backlog(rows: Sequence[BacklogRow]) -> dict[str, Any]:
    totals = dict.fromkeys(BACKLOG_STATES, 0)
    for row in rows:
        totals[row.state] += row.jobs
    order = {state: i for i, state in enumerate(BACKLOG_STATES)}
    return {
        "backlog": [
            {
                "state": r.state,
                "kind": r.kind,
                "appArn": r.app_arn,
                "platform": r.platform,
                "jobs": r.jobs,
            }
            for r in sorted(
                rows,
                key=lambda r: (
                    order[r.state],
                    r.kind,
                    r.app_arn or "",
                    r.platform or "",
                ),
            )
        ],
        "totals": totals,
    }


def render_message(
    ledger: MessageLedger, pending: PendingDeliveries | None = None
) -> dict[str, Any]:
    """
    A message's counts: its outcomes, and its deliveries still queued by
    platform (status "pending"; platform null: not known, its endpoint gone or
    past the PENDING_READ jobs whose platform is read). A topic fan-out not
    done yet also has chunks not expanded (`pendingFanout`): the subscriptions
    they still cover, counted up to PENDING_READ a chunk (`more` past that),
    are deliveries to come at most and are not in the counts.
    """
    pending = pending or PendingDeliveries()
    counts = [
        {
            "platform": c.platform,
            "status": c.status,
            "failureType": c.failure_type,
            "count": c.count,
        }
        for c in ledger.counts
    ]
    counts += [
        {"platform": platform, "status": PENDING, "failureType": None, "count": n}
        for platform, n in _pending_by_platform(pending)
    ]
    totals = dict.fromkeys((*STATUSES, PENDING), 0)
    for c in ledger.counts:
        totals[c.status] += c.count
    totals[PENDING] = pending.deliveries
    return {
        "messageId": ledger.message_id,
        "topicArn": ledger.topic_arn,
        "targetArn": ledger.target_arn,
        "createdAt": iso(ledger.created_at),
        "firstAttemptAt": _iso(ledger.first_attempt_at),
        "lastAttemptAt": _iso(ledger.last_attempt_at),
        "pendingJobs": ledger.pending_jobs,
        "pendingFanout": {
            "chunks": pending.chunks,
            "subscriptions": pending.subscriptions,
            "more": pending.subscriptions_more,
        },
        "counts": counts,
        "totals": totals,
    }


def _pending_by_platform(pending: PendingDeliveries) -> list[tuple[str | None, int]]:
    """Platforms in name order; the ones not known (None) last, with the
    deliveries whose platform was not read."""
    known: list[tuple[str | None, int]] = sorted(
        (p, n) for p, n in pending.by_platform.items() if p is not None
    )
    unknown = pending.by_platform.get(None, 0) + pending.uncounted
    return [*known, (None, unknown)] if unknown else known


def render_delivery(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "messageId": d.message_id,
        "endpointArn": d.endpoint_arn,
        "appArn": d.app_arn,
        "platform": d.platform,
        "status": d.status,
        "failureType": d.failure_type,
        "reason": d.reason,
        "providerStatus": d.provider_status,
        "attempts": d.attempts,
        "at": iso(d.at),
        "deadLetter": d.dead_letter,
        "replayedAt": _iso(d.replayed_at),
    }


def render_stats(rows: Sequence[StatsRow]) -> dict[str, Any]:
    buckets: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        bucket = buckets.get((row.start, row.platform))
        if bucket is None:
            bucket = buckets[(row.start, row.platform)] = {
                "start": iso(row.start),
                "platform": row.platform,
                **dict.fromkeys(STATUSES, 0),
            }
        bucket[row.status] += row.count
    return {"buckets": [buckets[k] for k in sorted(buckets)]}


def listing_filter(query: Mapping[str, str]) -> DeliveryFilter:
    """The filter of `GET /v1/deliveries` (400 InvalidParameter if bad)."""
    unknown = sorted(set(query) - _LISTING_PARAMS)
    if unknown:
        raise InvalidParameterError(f"Invalid parameter: {unknown[0]} (unknown)")
    dead, replayed = _flag(query, "deadLetter"), _flag(query, "replayed")
    status = query.get("status")
    since = query.get("since")
    return DeliveryFilter(
        status=_status(status) if status is not None else None,
        app_arn=query.get("app") or None,
        endpoint_arn=query.get("endpoint") or None,
        message_id=query.get("message") or None,
        failure_type=query.get("reason") or None,
        since=parse_time(since) if since is not None else None,
        dead_letter=dead,
        replayed=replayed,
    )


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    value = query.get(name)
    if value is not None and value not in ("true", "false"):
        raise _invalid(name, "true or false")
    return None if value is None else value == "true"


def replay_request(body: Mapping[str, Any]) -> tuple[DeliveryFilter, int]:
    """The dead letters `POST /v1/deliveries/replay` names, and its limit."""
    unknown = sorted(set(body) - _REPLAY_MEMBERS)
    if unknown:
        raise InvalidParameterError(f"Invalid parameter: {unknown[0]} (unknown)")
    if not set(body) - {"limit"}:
        raise InvalidParameterError(
            "Invalid parameter: name the dead letters to replay: ids and/or"
            " messageId, app, reason, since (since=0 takes all of them)"
        )
    ids = body.get("ids")
    if ids is not None and (
        not isinstance(ids, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):
        raise _invalid("ids", "a list of integers")
    since = body.get("since")
    limit = body.get("limit", REPLAY_DEFAULT)
    where = DeliveryFilter(
        ids=ids,
        message_id=_text(body["messageId"], "messageId")
        if "messageId" in body
        else None,
        app_arn=_text(body["app"], "app") if "app" in body else None,
        failure_type=_text(body["reason"], "reason") if "reason" in body else None,
        since=parse_time(since) if since is not None else None,
    )
    return where, _int(limit, "limit", 1, REPLAY_MAX)


def add_admin_routes(
    app: web.Application,
    *,
    service: Service,
    keys: Sequence[ApiKey],
    on_replay: Callable[[Message], None] | None = None,
) -> None:
    """
    The admin routes on `app`. `keys` is read per request (a SIGHUP reload
    changes it in place); `on_replay` is told of each message that got jobs
    by a replay (the daemon's dispatcher; default the service's on_enqueue).
    """
    store = service.store
    replayed = on_replay or service.on_enqueue

    def admin(request: web.Request, action: str) -> ApiKey:
        key = authenticate(request, keys)
        request[ACTION_KEY] = action  # authenticated: the metrics label it
        if not key.admin:
            raise ForbiddenError(
                f"Key {key.name} has no admin scope", code="AccessDenied"
            )
        return key

    async def queue(request: web.Request) -> web.Response:
        admin(request, "GetQueue")
        rows = await store.backlog(now=service.clock())
        return web.json_response(render_backlog(rows))

    async def message(request: web.Request) -> web.Response:
        admin(request, "GetMessageLedger")
        message_id = request.match_info["messageId"]
        ledger = await store.get_message_ledger(message_id)
        if ledger is None:
            raise NotFoundApiError(f"Message {message_id} is not in the ledger")
        pending = None
        if ledger.pending_jobs:
            pending = await store.pending_deliveries(message_id, limit=PENDING_READ)
        return web.json_response(render_message(ledger, pending))

    async def deliveries(request: web.Request) -> web.Response:
        admin(request, "ListDeliveries")
        query = request.query
        where = listing_filter(query)
        limit = _int(query.get("limit", PAGE_DEFAULT), "limit", 1, PAGE_MAX)
        before = service.decode_token(query.get("nextToken"), TOKEN_KIND) or None
        page = await store.list_deliveries(where, before=before, limit=limit)
        return web.json_response(
            {
                "deliveries": [render_delivery(d) for d in page.items],
                "nextToken": service.next_token(TOKEN_KIND, page.next_after),
            }
        )

    async def replay(request: web.Request) -> web.Response:
        key = admin(request, "ReplayDeadLetters")
        where, limit = replay_request(await read_json_object(request))
        result = await store.replay_dead_letters(
            where, limit=limit, now=service.clock()
        )
        for replayed_message in result.messages:
            replayed(replayed_message)
        log.info(
            "dead_letters_replayed",
            key=key.name,
            ids=len(where.ids) if where.ids is not None else None,
            message_id=where.message_id,
            app=where.app_arn,
            reason=where.failure_type,
            since=_iso(where.since),
            limit=limit,
            replayed=result.replayed,
            remaining=result.remaining,
        )
        return web.json_response(
            {"replayed": result.replayed, "remaining": result.remaining}
        )

    async def stats(request: web.Request) -> web.Response:
        admin(request, "GetDeliveryStats")
        query = request.query
        unknown = sorted(set(query) - {"since", "bucketSeconds"})
        if unknown:
            raise InvalidParameterError(f"Invalid parameter: {unknown[0]} (unknown)")
        since = query.get("since")
        start = (
            parse_time(since) if since is not None else service.clock() - STATS_WINDOW_S
        )
        size = _int(query.get("bucketSeconds", 60), "bucketSeconds", 60, 86_400)
        if size % 60:
            raise _invalid("bucketSeconds", "a multiple of 60")
        rows = await store.delivery_stats(since=start, bucket_s=size)
        return web.json_response(render_stats(rows))

    handlers: dict[str, Handler] = {
        "/v1/queue": queue,
        "/v1/messages/{messageId}": message,
        "/v1/deliveries": deliveries,
        "/v1/deliveries/replay": replay,
        "/v1/stats/deliveries": stats,
    }
    for method, path in ADMIN_ROUTES:
        app.router.add_route(method, path, handlers[path])


# -- the OpenAPI document -------------------------------------------------------------

_INT: Schema = {"type": "integer"}
_TEXT: Schema = {"type": "string"}
_MAYBE_TEXT: Schema = {"type": "string", "nullable": True}
_TIME: Schema = {"type": "string", "format": "date-time"}
_MAYBE_TIME: Schema = {**_TIME, "nullable": True}
_SINCE: Schema = {
    "type": "string",
    "description": "ISO-8601 (UTC unless it says otherwise) or epoch seconds",
}
_FLAG: Schema = {"type": "string", "enum": ["true", "false"]}


def _obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    required = [name for name in properties if name not in optional]
    return {"type": "object", "properties": properties, "required": required}


def _counts(names: Sequence[str]) -> Schema:
    return _obj(dict.fromkeys(names, _INT))


def _array(name: str) -> Schema:
    return {"type": "array", "items": ref(name)}


ADMIN_SCHEMAS: dict[str, Schema] = {
    "BacklogEntry": _obj(
        {
            "state": {"type": "string", "enum": list(BACKLOG_STATES)},
            "kind": _TEXT,
            "appArn": _MAYBE_TEXT,
            "platform": _MAYBE_TEXT,
            "jobs": _INT,
        }
    ),
    "GetQueueResponse": _obj(
        {"backlog": _array("BacklogEntry"), "totals": _counts(BACKLOG_STATES)}
    ),
    "LedgerCount": _obj(
        {
            "platform": _MAYBE_TEXT,  # null: a pending one's platform not known
            "status": {"type": "string", "enum": [*STATUSES, PENDING]},
            "failureType": _MAYBE_TEXT,
            "count": _INT,
        }
    ),
    "GetMessageResponse": _obj(
        {
            "messageId": _TEXT,
            "topicArn": _MAYBE_TEXT,
            "targetArn": _MAYBE_TEXT,
            "createdAt": _TIME,
            "firstAttemptAt": _MAYBE_TIME,
            "lastAttemptAt": _MAYBE_TIME,
            "pendingJobs": _INT,
            "pendingFanout": _obj(
                {"chunks": _INT, "subscriptions": _INT, "more": {"type": "boolean"}}
            ),
            "counts": _array("LedgerCount"),
            "totals": _counts((*STATUSES, PENDING)),
        }
    ),
    "DeliveryRecord": _obj(
        {
            "id": _INT,
            "messageId": _TEXT,
            "endpointArn": _TEXT,
            "appArn": _MAYBE_TEXT,
            "platform": _TEXT,
            "status": {"type": "string", "enum": list(STATUSES)},
            "failureType": _MAYBE_TEXT,
            "reason": _MAYBE_TEXT,
            "providerStatus": {"type": "integer", "nullable": True},
            "attempts": _INT,
            "at": _TIME,
            "deadLetter": {"type": "boolean"},
            "replayedAt": _MAYBE_TIME,
        }
    ),
    "ListDeliveriesResponse": _obj(
        {"deliveries": _array("DeliveryRecord"), "nextToken": _MAYBE_TEXT}
    ),
    "ReplayDeadLettersRequest": _obj(
        {
            "ids": {"type": "array", "items": _INT},
            "messageId": _TEXT,
            "app": _TEXT,
            "reason": _TEXT,
            "since": {"oneOf": [_TEXT, {"type": "number"}], **_SINCE},
            "limit": {"type": "integer", "minimum": 1, "maximum": REPLAY_MAX},
        },
        optional=("ids", "messageId", "app", "reason", "since", "limit"),
    ),
    "ReplayDeadLettersResponse": _counts(("replayed", "remaining")),
    "DeliveryStatsBucket": _obj(
        {"start": _TIME, "platform": _TEXT} | {status: _INT for status in STATUSES}
    ),
    "GetDeliveryStatsResponse": _obj({"buckets": _array("DeliveryStatsBucket")}),
}


def _param(where: str, name: str, schema: Schema, text: str) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": text,
        "schema": schema,
    }


def _route(
    operation: str, summary: str, response: str, params: Sequence[Schema] = ()
) -> dict[str, Any]:
    route: dict[str, Any] = {
        "operationId": operation,
        "summary": f"{summary} (an admin key; others get 403 AccessDenied)",
        "tags": ["admin"],
        "responses": {
            "200": {"description": "Success", "content": json_content(ref(response))},
            **error_responses(),
        },
    }
    if params:
        route["parameters"] = list(params)
    return route


def add_admin_to_openapi(document: dict[str, Any]) -> None:
    """The admin routes and their schemas in the OpenAPI document."""
    document["components"]["schemas"].update(ADMIN_SCHEMAS)
    listing = [
        _param(
            "query", "status", {"type": "string", "enum": list(STATUSES)}, "Outcome"
        ),
        _param("query", "app", _TEXT, "Platform application ARN"),
        _param("query", "endpoint", _TEXT, "Endpoint ARN"),
        _param("query", "message", _TEXT, "Message id"),
        _param("query", "reason", _TEXT, "SNS failure type"),
        _param("query", "since", _SINCE, "At or after this time"),
        _param("query", "deadLetter", _FLAG, "Dead letters only, or none"),
        _param("query", "replayed", _FLAG, "Replayed ones only, or none"),
        _param(
            "query",
            "limit",
            {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
            f"Records per page (default {PAGE_DEFAULT})",
        ),
        _param("query", "nextToken", _TEXT, "From the previous page"),
    ]
    replay = _route(
        "ReplayDeadLetters",
        "Queue dead letters again through the durable queue; call until remaining is 0",
        "ReplayDeadLettersResponse",
    )
    replay["requestBody"] = {
        "required": True,
        "content": json_content(ref("ReplayDeadLettersRequest")),
    }
    document["paths"].update(
        {
            "/v1/queue": {
                "get": _route(
                    "GetQueue",
                    "The backlog by state, kind and application",
                    "GetQueueResponse",
                )
            },
            "/v1/messages/{messageId}": {
                "get": _route(
                    "GetMessage",
                    "A message's outcome counts by platform and its pending jobs",
                    "GetMessageResponse",
                    [_param("path", "messageId", _TEXT, "The MessageId of Publish")],
                )
            },
            "/v1/deliveries": {
                "get": _route(
                    "ListDeliveries",
                    "Delivery records (failures, sampled successes), newest first",
                    "ListDeliveriesResponse",
                    listing,
                )
            },
            "/v1/deliveries/replay": {"post": replay},
            "/v1/stats/deliveries": {
                "get": _route(
                    "GetDeliveryStats",
                    "Deliveries that ended, by platform and outcome, in buckets",
                    "GetDeliveryStatsResponse",
                    [
                        _param("query", "since", _SINCE, "From (default 1 h ago)"),
                        _param(
                            "query",
                            "bucketSeconds",
                            {"type": "integer", "minimum": 60, "maximum": 86_400},
                            "Bucket size, a multiple of 60 (default 60)",
                        ),
                    ],
                )
            },
        }
    )
