"""
A loopback APNs provider API: HTTP/2 over TLS on `jh2`, faithful enough to test
the adapter's wire behaviour (PROVIDERS.md §1.7).

* TLS from a mock CA (`tls.py`) made at construction (`ca_pem`, `write_ca`). ALPN h2,
  and the h2 preface without ALPN is accepted too (aioapns sets no ALPN).
  Client certificates are requested (CERT_OPTIONAL); a request is authorised by
  a valid provider JWT or by a client certificate signed by the CA.
* Initial SETTINGS MAX_CONCURRENT_STREAMS = `max_concurrent_streams`; with
  `token_strict` a connection starts at 1 and is raised after its first valid
  JWT. Exceeding the limit gets GOAWAY(PROTOCOL_ERROR).
* Validation in pushy's order (MockApnsServerHandler, ValidatingPushNotification-
  Handler): apns-id, method, topic, collapse id, priority, push type, path and
  device token, provider auth, body.
* Answers: 200 is HEADERS + END_STREAM; errors are HEADERS + ONE DATA frame
  `{"reason": ...}` (+ `timestamp` in ms for 410).
* Faults from `self.faults` (see `FAULTS`) and `error_without_body` (test knob).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import re
import secrets
import ssl
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, cast

import jh2.config
import jh2.connection
import jh2.errors
import jh2.events
import jh2.exceptions
import jh2.hyperframe.frame
import jh2.settings
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jh2.hpack import NeverIndexedHeaderTuple

from pushgw.providers.h2client import FastH2Connection
from pushgw.providers.mocks.base import FaultRule, MockPlatform
from pushgw.providers.mocks.h2server import H2ServerConnection
from pushgw.providers.mocks.tls import MockCA

DEFAULT_BUNDLE: Final = "com.example.app"
JWT_MAX_AGE_S: Final = 3600.0  # "more than one hour old" -> ExpiredProviderToken
JWT_MIN_UPDATE_S: Final = 20 * 60.0  # token changes more often -> 429
PAYLOAD_LIMIT: Final = 4096
VOIP_PAYLOAD_LIMIT: Final = 5120
MAX_COLLAPSE_ID: Final = 64
REQUEST_LOG_MAX: Final = 1000

PUSH_TYPES: Final = frozenset(
    {
        b"alert",
        b"background",
        b"location",
        b"voip",
        b"complication",
        b"fileprovider",
        b"mdm",
        b"liveactivity",
        b"pushtotalk",
    }
)
TOPIC_SUFFIXES: Final = (
    ".voip-ptt",
    ".voip",
    ".complication",
    ".pushkit.fileprovider",
    ".location-query",
    ".push-type.liveactivity",
)
_HEX_TOKEN = re.compile(rb"[0-9a-fA-F]{64}")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Fault kind -> (status, reason). latency/drop/hang/goaway are handled apart.
FAULTS: Final[dict[str, tuple[int, str]]] = {
    "throttle": (429, "TooManyRequests"),
    "unavailable": (503, "ServiceUnavailable"),
    "server_error": (500, "InternalServerError"),
    "expire_auth": (403, "ExpiredProviderToken"),
    "bad_credentials": (403, "InvalidProviderToken"),
    "invalid_token": (410, "Unregistered"),
}

Answer = tuple[int, str | None]

# Lean on purpose (50k-message runs): no h2 header validation either way.
_CONFIG = jh2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
)  # status, reason (None = success)


@dataclass(frozen=True, slots=True)
class _Key:
    team_id: str
    public_key: ec.EllipticCurvePublicKey


class _Request:
    __slots__ = ("body", "headers", "raw_headers")

    def __init__(self, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.raw_headers = raw_headers
        self.headers = dict(raw_headers)
        self.body = b""


class _ServerConnection(H2ServerConnection):
    """One client connection to the mock."""

    def __init__(self, mock: ApnsMock) -> None:
        self.mock = mock
        self._loop = asyncio.get_running_loop()
        self.conn = FastH2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, _Request] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.reset_by_client: set[int] = set()
        self.cert_topic: str | None = None
        self.team_id: str | None = None
        self.jwt: bytes | None = None  # last verified token on this connection
        self.jwt_iat = 0.0
        self.jwt_changed_at: float | None = None
        self.jwt_expired = False
        self.strict_pending = mock.token_strict
        self.goaway_sent = False
        self.held = False
        self.streams_seen = 0

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.cert_topic = _cert_uid(transport.get_extra_info("peercert"))
        limit = 1 if self.mock.token_strict else self.mock.max_concurrent_streams
        self.conn.local_settings = jh2.settings.Settings(
            client=False,
            initial_values={jh2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limit},
        )
        self.conn.initiate_connection()
        self.mock.connections.add(self)
        self.mock.stats["connections"] += 1
        if self.mock.settings_delay_s > 0:
            # Hold every frame (SETTINGS first) back for a while, so a client
            # that bursts before SETTINGS meets the initial limit on the wire.
            self.held = True
            self._loop.call_later(self.mock.settings_delay_s, self._release)
        self.flush()

    def _release(self) -> None:
        self.held = False
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.requests.clear()
        self.mock.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except jh2.exceptions.ProtocolError as exc:
            if not self.goaway_sent:
                self.mock.stats["protocol_error"] += 1
                self._goaway(jh2.errors.ErrorCodes.PROTOCOL_ERROR, str(exc))
                self.close()
            return
        for event in events:
            kind = type(event)
            if kind is jh2.events.RequestReceived:
                sid = event.stream_id
                self.requests[sid] = _Request(event.headers)
                self.streams_seen += 1
            elif kind is jh2.events.DataReceived:
                self._on_data(event)
            elif kind is jh2.events.StreamEnded:
                sid = event.stream_id
                request = self.requests.pop(sid, None)
                if request is not None and not self.goaway_sent:
                    self.mock._handle(self, sid, request)
            elif kind is jh2.events.StreamReset:
                self._on_reset(event.stream_id)
        self.flush()

    # -- helpers -----------------------------------------------------------

    def _on_reset(self, sid: int) -> None:
        self.mock.stats["client_reset"] += 1
        self.requests.pop(sid, None)
        if self.mock.late_answers and sid in self.timers:
            self.reset_by_client.add(sid)
            return
        timer = self.timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def _respond_raw(self, sid: int, headers: list[tuple[bytes, bytes]]) -> None:
        """HEADERS+END_STREAM on a stream h2 considers closed (late answer)."""
        self.flush()
        frame = jh2.hyperframe.frame.HeadersFrame(sid)
        # jh2's compiled encoder takes (name, value, never_indexed) triples.
        frame.data = self.conn.encoder.encode([(k, v, False) for k, v in headers])
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        if self.transport is not None:
            self.transport.write(frame.serialize())
        self.mock.stats["late_answer"] += 1

    def _on_data(self, event: jh2.events.DataReceived) -> None:
        sid = event.stream_id
        assert sid is not None
        self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
        request = self.requests.get(sid)
        if request is not None and event.data:
            request.body += event.data

    def respond(
        self,
        sid: int,
        apns_id: bytes,
        status: int,
        reason: str | None,
        *,
        extra: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer a stream: 200 headers-only, or headers + one JSON DATA frame."""
        conn = self.conn
        late = sid in self.reset_by_client
        self.reset_by_client.discard(sid)
        try:
            if reason is None:
                headers = [
                    (b":status", str(status).encode()),
                    NeverIndexedHeaderTuple(b"apns-id", apns_id),
                ]
                if late:
                    self._respond_raw(sid, headers)
                    return
                conn.send_headers(sid, headers, end_stream=True)
                return
            headers = [
                (b":status", str(status).encode()),
                (b"content-type", b"application/json"),
                NeverIndexedHeaderTuple(b"apns-id", apns_id),
            ]
            if retry_after is not None:
                headers.append((b"retry-after", f"{retry_after:g}".encode()))
            if self.mock.error_without_body:
                conn.send_headers(sid, headers, end_stream=True)
                return
            conn.send_headers(sid, headers)
            body = {"reason": reason, **(extra or {})}
            conn.send_data(sid, json.dumps(body).encode(), end_stream=True)
        except jh2.exceptions.H2Error:
            pass  # the client reset the stream or the connection is closing

    def raise_stream_limit(self) -> None:
        self.strict_pending = False
        self.conn.update_settings(
            {
                jh2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: (
                    self.mock.max_concurrent_streams
                )
            }
        )

    def later(self, sid: int, delay: float, callback: Callable[[], None]) -> None:
        def fire() -> None:
            self.timers.pop(sid, None)
            if self.transport is not None:
                callback()
                self.flush()

        self.timers[sid] = self._loop.call_later(delay, fire)

    def goaway_stream(self, sid: int) -> None:
        """GOAWAY naming the stream before `sid` as the last one processed."""
        self._goaway(jh2.errors.ErrorCodes.NO_ERROR, "Shutdown", last=max(0, sid - 2))

    def _goaway(self, code: int, reason: str, *, last: int | None = None) -> None:
        self.goaway_sent = True
        data = json.dumps({"reason": reason}).encode()
        try:
            self.conn.close_connection(
                error_code=code, additional_data=data, last_stream_id=last
            )
        except jh2.exceptions.H2Error:
            pass
        self.flush()

    def flush(self) -> None:
        if not self.held:  # a "hold" fault keeps the bytes back
            super().flush()


class ApnsMock(MockPlatform):
    """
    Loopback APNs. `issue_credentials` makes a token key or a client
    certificate, `register_device` a device token; `self.faults` injects faults.
    """

    platform: ClassVar[str] = "APNS"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        max_concurrent_streams: int = 1000,
        token_strict: bool = False,
    ) -> None:
        super().__init__(clock=clock)
        self.max_concurrent_streams = max_concurrent_streams
        self.token_strict = token_strict
        self.ca = MockCA()
        self.ca_pem: bytes = self.ca.cert_pem.bytes()
        self._server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.keys: dict[str, _Key] = {}
        self.device_bundles: dict[str, str] = {}
        self.unregistered_at: dict[str, int] = {}  # token -> ms timestamp
        self.default_bundle = DEFAULT_BUNDLE
        # Test knobs: answer errors with HEADERS only (no JSON body); answer a
        # stream the client reset anyway, once its latency has passed (frames
        # written raw, as if they had crossed the client's RST_STREAM).
        self.error_without_body = False
        self.late_answers = False
        # Test knob: delay the server's first SETTINGS (and all its frames).
        self.settings_delay_s = 0.0
        self.scripted: collections.deque[tuple[int, str]] = collections.deque()
        self.connections: set[_ServerConnection] = set()
        self.requests: collections.deque[dict[str, Any]] = collections.deque(  # type: ignore[assignment]
            maxlen=REQUEST_LOG_MAX
        )
        self._server: asyncio.Server | None = None

    # -- lifecycle ---------------------------------------------------------

    def write_ca(self, path: str | Path) -> None:
        """Write the CA certificate (PEM) for the client's `ca_file`."""
        Path(path).write_bytes(self.ca_pem)

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(ctx)
        self.ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["h2"])
        return ctx

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ServerConnection(self), host, port, ssl=self._ssl_context()
        )
        bound = self._server.sockets[0].getsockname()
        self.base_url = f"https://{bound[0]}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.abort()
        await self._server.wait_closed()
        self._server = None

    def drop_connections(self) -> None:
        """Abort every open client connection (streams in flight are lost)."""
        for conn in list(self.connections):
            conn.abort()

    # -- steps 1 and 2 -----------------------------------------------------

    def issue_credentials(
        self, *, auth: str = "token", bundle_id: str = DEFAULT_BUNDLE, **_: Any
    ) -> dict[str, str]:
        """SNS attributes for CreatePlatformApplication (token or certificate)."""
        self.default_bundle = bundle_id
        if auth == "token":
            return self._issue_token_key(bundle_id)
        if auth == "certificate":
            return self._issue_certificate(bundle_id)
        raise ValueError(f"unknown APNs auth {auth!r}")

    def _issue_token_key(self, bundle_id: str) -> dict[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        key_id, team_id = _ident(), _ident()
        self.keys[key_id] = _Key(team_id, key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "PlatformPrincipal": key_id,
            "PlatformCredential": pem,
            "ApplePlatformTeamID": team_id,
            "ApplePlatformBundleID": bundle_id,
        }

    def _issue_certificate(self, bundle_id: str) -> dict[str, str]:
        ca_key = serialization.load_pem_private_key(
            self.ca.private_key_pem.bytes(), password=None
        )
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.ca_pem)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.USER_ID, bundle_id),
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"Apple Push Services: {bundle_id}"
                ),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return {
            "PlatformPrincipal": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "PlatformCredential": key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        }

    def register_device(
        self, *, state: str = "valid", bundle_id: str | None = None
    ) -> str:
        """A new 64-hex device token for `bundle_id` (default: the last issued)."""
        token = secrets.token_hex(32)
        self.device_bundles[token] = bundle_id or self.default_bundle
        self.set_device_state(token, state)
        return token

    def set_device_state(self, token: str, state: str) -> None:
        super().set_device_state(token, state)
        if state == "unregistered":
            self.unregistered_at[token] = int(self.clock() * 1000)

    def reset(self) -> None:
        """Forget messages, stats, faults, scripted answers and test knobs."""
        super().reset()
        self.scripted.clear()
        self.error_without_body = self.late_answers = False
        self.settings_delay_s = 0.0

    def script(self, status: int, reason: str, *, count: int = 1) -> None:
        """Answer the next `count` requests (any token) with `status`/`reason`."""
        self.scripted.extend([(status, reason)] * count)

    # -- request handling --------------------------------------------------

    def _handle(self, conn: _ServerConnection, sid: int, request: _Request) -> None:
        headers = request.headers
        apns_id = headers.get(b"apns-id") or str(uuid.uuid4()).encode()
        path = headers.get(b":path", b"")
        token = path[10:].decode("latin-1") if path.startswith(b"/3/device/") else ""
        self.requests.append({"token": token, "stream_id": sid, "headers": headers})
        if self.scripted:
            status, scripted = self.scripted.popleft()
            self._answer_error(conn, sid, apns_id, status, scripted, token)
            return
        status, reason = self._validate(conn, request, token)
        if reason is not None:
            self._answer_error(conn, sid, apns_id, status, reason, token)
            return
        rule = self.faults.take(token) if self.faults.rules else None
        if rule is not None:
            self._apply_fault(conn, sid, apns_id, rule, request, token)
            return
        self._deliver(conn, sid, apns_id, request, token)

    def _deliver(
        self,
        conn: _ServerConnection,
        sid: int,
        apns_id: bytes,
        request: _Request,
        token: str,
    ) -> None:
        try:
            payload = json.loads(request.body)
        except ValueError:
            self._answer_error(conn, sid, apns_id, 400, "PayloadEmpty", token)
            return
        headers = {
            k.decode(): v.decode() for k, v in request.raw_headers if k[:1] != b":"
        }
        self.record(token, payload, headers)
        conn.respond(sid, apns_id, 200, None)

    def _answer_error(
        self,
        conn: _ServerConnection,
        sid: int,
        apns_id: bytes,
        status: int,
        reason: str,
        token: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.stats[reason] += 1
        extra: dict[str, Any] | None = None
        if status == 410:
            self.stats["unregistered"] += 1
            stamp = self.unregistered_at.get(token, int(self.clock() * 1000))
            extra = {"timestamp": stamp}
        if reason == "ExpiredProviderToken":
            conn.jwt_expired = True
        conn.respond(sid, apns_id, status, reason, extra=extra, retry_after=retry_after)

    def _apply_fault(
        self,
        conn: _ServerConnection,
        sid: int,
        apns_id: bytes,
        rule: FaultRule,
        request: _Request,
        token: str,
    ) -> None:
        kind = rule.kind
        self.stats[kind] += 1
        if kind in FAULTS:
            status, reason = FAULTS[kind]
            self._answer_error(
                conn, sid, apns_id, status, reason, token, retry_after=rule.retry_after
            )
        elif kind == "latency":
            conn.later(
                sid,
                rule.latency_s,
                lambda: self._deliver(conn, sid, apns_id, request, token),
            )
        elif kind == "drop":
            conn.abort()
        elif kind == "goaway":
            conn.goaway_stream(sid)
        elif kind == "hang":
            pass  # never answer; the client must time out
        else:
            self._deliver(conn, sid, apns_id, request, token)

    def _validate(
        self, conn: _ServerConnection, request: _Request, token: str
    ) -> Answer:
        """Pushy's order: headers, path and token, auth, body."""
        headers = request.headers
        if len(headers) != len(request.raw_headers):
            return 400, "DuplicateHeaders"
        apns_id = headers.get(b"apns-id")
        if apns_id is not None and not _UUID.fullmatch(apns_id):
            return 400, "BadMessageId"
        if headers.get(b":method") != b"POST":
            return 405, "MethodNotAllowed"
        topic = headers.get(b"apns-topic")
        if not topic:
            return 400, "MissingTopic"
        collapse = headers.get(b"apns-collapse-id")
        if collapse is not None and len(collapse) > MAX_COLLAPSE_ID:
            return 400, "BadCollapseId"
        if headers.get(b"apns-priority", b"10") not in (b"1", b"5", b"10"):
            return 400, "BadPriority"
        push_type = headers.get(b"apns-push-type")
        if push_type is not None and push_type not in PUSH_TYPES:
            return 400, "InvalidPushType"
        answer = self._check_device(headers.get(b":path", b""), token, topic.decode())
        if answer[1] is None:
            answer = self._check_auth(conn, headers, topic.decode())
        if answer[1] is not None:
            return answer
        if not request.body:
            return 400, "PayloadEmpty"
        limit = VOIP_PAYLOAD_LIMIT if push_type == b"voip" else PAYLOAD_LIMIT
        if len(request.body) > limit:
            return 413, "PayloadTooLarge"
        return 200, None

    def _check_device(self, path: bytes, token: str, topic: str) -> Answer:
        if path == b"/3/device/":
            return 400, "MissingDeviceToken"
        if not path.startswith(b"/3/device/"):
            return 404, "BadPath"
        if not _HEX_TOKEN.fullmatch(path, 10):
            return 400, "BadDeviceToken"
        state = self.devices.get(token)
        if state == "unregistered":
            return 410, "Unregistered"
        if state == "invalid":
            return 400, "BadDeviceToken"
        if state is None or self.device_bundles.get(token) != _bundle_of(topic):
            return 400, "DeviceTokenNotForTopic"
        return 200, None

    def _check_auth(
        self, conn: _ServerConnection, headers: dict[bytes, bytes], topic: str
    ) -> Answer:
        auth = headers.get(b"authorization")
        if auth is None and conn.cert_topic is not None:
            if _bundle_of(topic) != conn.cert_topic:
                return 400, "TopicDisallowed"
            return 200, None
        if auth is None or not auth.startswith(b"bearer "):
            return 403, "MissingProviderToken"
        token = auth[7:]
        now = self.clock()
        if token != conn.jwt:
            answer = self._verify_jwt(conn, token, now)
            if answer[1] is not None:
                return answer
        if now - conn.jwt_iat > JWT_MAX_AGE_S:
            return 403, "ExpiredProviderToken"
        if conn.strict_pending:
            conn.raise_stream_limit()
        return 200, None

    def _verify_jwt(self, conn: _ServerConnection, token: bytes, now: float) -> Answer:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.get(str(kid))
            if key is None:
                return 403, "InvalidProviderToken"
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256"],
                options={"verify_iat": False, "verify_exp": False},
            )
            iat = float(claims["iat"])
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            return 403, "InvalidProviderToken"
        if claims.get("iss") != key.team_id:
            return 403, "InvalidProviderToken"
        if conn.team_id is not None and conn.team_id != key.team_id:
            return 403, "InvalidProviderToken"
        if (
            conn.jwt_changed_at is not None
            and not conn.jwt_expired
            and now - conn.jwt_changed_at < JWT_MIN_UPDATE_S
        ):
            return 429, "TooManyProviderTokenUpdates"
        conn.team_id = key.team_id
        conn.jwt, conn.jwt_iat, conn.jwt_changed_at = token, iat, now
        conn.jwt_expired = False
        self.stats["jwt_verified"] += 1
        return 200, None


def _bundle_of(topic: str) -> str:
    for suffix in TOPIC_SUFFIXES:
        if topic.endswith(suffix):
            return topic[: -len(suffix)]
    return topic


def _cert_uid(peercert: Any) -> str | None:
    """The subject UID (0.9.2342.19200300.100.1.1) of a verified client cert."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            if name in ("userId", "UID"):
                return str(value)
    return None


def _ident() -> str:
    """A 10-character Apple-style key or team id."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))
