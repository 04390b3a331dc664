"""The aiohttp application: SNS Query API on `/`, JSON API on `/v1`, health."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from pushgw.api import ACTION_KEY
from pushgw.api.admin_api import add_admin_routes, add_admin_to_openapi
from pushgw.api.console import add_console_routes
from pushgw.api.json_api import add_json_routes, error_response
from pushgw.api.openapi import openapi_document
from pushgw.api.request_id import REQUEST_ID, request_id_of
from pushgw.api.sns_query import make_sns_handler
from pushgw.config import AccessKey, ApiKey, Config
from pushgw.errors import ApiError, ServiceUnavailableError, StoreUnavailableError
from pushgw.log import get_logger
from pushgw.model import Message
from pushgw.service import Service

log = get_logger("pushgw.api")

# Why the daemon is not ready (empty when it is).
Readiness = Callable[[], Awaitable[list[str]]]
# The Prometheus exposition, text format.
Metrics = Callable[[], Awaitable[bytes]]
# Told of every answered request: (api, action, status, seconds).
RequestObserver = Callable[[str, str, int, float], None]
UNKNOWN_ACTION = "unknown"


def api_of(path: str) -> str:
    """Which API a path belongs to: a bounded label."""
    if path == "/":
        return "sns"
    if path == "/v1" or path.startswith("/v1/"):
        return "json"
    return "other"


def request_metrics(observe: RequestObserver) -> Middleware:
    """Middleware (outermost): time every request and report its API, action
    (`request[ACTION_KEY]`, set by the bindings once a request is parsed and
    authenticated; "unknown" otherwise) and final status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status: int | None = None  # None: cancelled (the client went away)
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a redirect request_context re-raised
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            if status is not None:
                observe(
                    api_of(request.path),
                    request.get(ACTION_KEY, UNKNOWN_ACTION),
                    status,
                    time.perf_counter() - started,
                )

    return middleware


@web.middleware
async def request_context(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Bind a request id, and turn every failure outside `/` into a JSON error."""
    request_id = request_id_of(request.headers)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
        response.headers.setdefault("x-request-id", request_id)
        return response
    except ApiError as exc:
        log.info("request_failed", path=request.path, code=exc.code)
        return error_response(exc.status, exc.code, exc.message, request_id)
    except StoreUnavailableError as exc:
        # A state, not a bug: a 503 clients retry, and no traceback in the log.
        log.warning("request_store_unavailable", path=request.path, error=str(exc))
        unavailable = ServiceUnavailableError()
        return error_response(
            unavailable.status, unavailable.code, unavailable.message, request_id
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {
            404: "NotFound",
            405: "MethodNotAllowed",
            413: "RequestTooLarge",
        }.get(exc.status, "BadRequest")
        message = exc.reason if exc.status != 404 else f"No route for {request.path}"
        # A 405 must say which methods the path takes (RFC 9110 §15.5.6).
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, code, message, request_id, allow)
    except Exception:
        log.exception("request_crashed", path=request.path)
        return error_response(500, "InternalError", "Internal error", request_id)


@web.middleware
async def access_log(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """`logging.access_log`: one line per request, after its answer (a
    redirect the handlers raise, e.g. /console to /console/, too)."""
    started = time.perf_counter()

    def line(status: int) -> None:
        log.info(
            "http_request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            remote=request.remote,
        )

    try:
        response = await handler(request)
    except web.HTTPException as exc:
        line(exc.status)
        raise
    line(response.status)
    return response


def make_app(
    *,
    config: Config,
    service: Service,
    ready: Readiness | None = None,
    metrics: Metrics | None = None,
    observe_request: RequestObserver | None = None,
    sns_keys: dict[str, AccessKey] | None = None,
    api_keys: list[ApiKey] | None = None,
    signing_cert: tuple[str, bytes] | None = None,
    on_replay: Callable[[Message], None] | None = None,
) -> web.Application:
    """
    Build the application. `sns_keys` and `api_keys` are read on every request,
    so a caller that keeps them can change them in place (SIGHUP reload).
    `signing_cert` (path, PEM) is the certificate HTTP subscribers fetch from
    SigningCertURL to verify what they receive; it is public, like AWS's.
    `on_replay` is told of each message a dead-letter replay queued again (the
    daemon's dispatcher; default `service.on_enqueue`).
    """
    # The metrics and the access log wrap the rest, so they see every answer.
    middlewares: list[Middleware] = [
        *([request_metrics(observe_request)] if observe_request else []),
        *([access_log] if config.logging.access_log else []),
        request_context,
    ]
    app = web.Application(
        middlewares=middlewares, client_max_size=config.server.max_body_bytes
    )
    sns = make_sns_handler(
        service=service,
        keys=config.sns_access_keys() if sns_keys is None else sns_keys,
        region=config.sns.region,
        max_body_bytes=config.server.max_body_bytes,
    )
    app.router.add_route("POST", "/", sns)
    app.router.add_route("GET", "/", sns)
    keys = config.api_keys() if api_keys is None else api_keys
    add_json_routes(app, service=service, keys=keys)
    add_admin_routes(app, service=service, keys=keys, on_replay=on_replay)
    document = openapi_document()
    add_admin_to_openapi(document)
    add_console_routes(app, service=service, keys=keys, document=document)

    async def openapi(request: web.Request) -> web.Response:
        request[ACTION_KEY] = "openapi"
        return web.json_response(document)

    async def healthz(request: web.Request) -> web.Response:
        request[ACTION_KEY] = "healthz"
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        request[ACTION_KEY] = "readyz"
        reasons = await ready() if ready else []
        if reasons:
            return web.json_response(
                {"status": "not ready", "reasons": reasons}, status=503
            )
        return web.json_response({"status": "ready"})

    async def prometheus(request: web.Request) -> web.Response:
        request[ACTION_KEY] = "metrics"
        body = await metrics() if metrics else b""
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    if signing_cert is not None:
        cert_path, cert_pem = signing_cert

        async def certificate(request: web.Request) -> web.Response:
            request[ACTION_KEY] = "signing_cert"
            return web.Response(body=cert_pem, content_type="application/x-pem-file")

        app.router.add_get(cert_path, certificate)
    return app
