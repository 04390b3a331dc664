"""
Outbound-request guard for URLs that users give us (SSRF).

pushgw POSTs to URLs it did not choose: SNS HTTP/HTTPS subscription endpoints,
and WNS/MPNS channel URIs (`providers.channel_guard` restricts those to the
provider domains). A URL check alone is not enough: a host name is only a
promise, and its DNS answer may be 127.0.0.1, 10.0.0.7 or 169.254.169.254 (the
cloud metadata service), or change between the check and the send (DNS
rebinding). So the guard has two halves, one set of rules:

1. `check_subscriber_url`: the pure check at Subscribe time (no DNS, no I/O).
   `split_url` is its syntactic half, shared with `channel_guard`.
2. `guarded_connector` / `guarded_session`: an aiohttp connector that applies
   the same address rules (`address_refusal`) at connect time, twice:
   - its resolver (`GuardedResolver`) drops every refused address from each DNS
     answer and refuses a name with none left. aiohttp connects to exactly the
     addresses its resolver returned (its DNS cache holds only those), so a
     rebinding answer never reaches a socket;
   - its socket factory checks the address each socket is about to connect to.
     This is the check that covers IP-literal hosts: aiohttp never calls the
     resolver for them (`TCPConnector._resolve_host`, aiohttp/connector.py
     "if is_ip_address(host)"), and it is the last word for any other path.
   A refusal is an `AddressRefused` (an `aiohttp.ClientOSError`, so an
   `aiohttp.ClientConnectionError`); aiohttp hands it on wrapped in a
   `ClientConnectorError` whose text ends with the reason, and `refusal_reason`
   digs the reason out of either.

Address rules (`classify_address`): refused are loopback, private (RFC 1918,
fc00::/7), link-local (169.254/16, fe80::/10), multicast, unspecified (0.0.0.0,
::), broadcast, carrier-grade NAT (100.64/10), every other not globally
routable range (documentation, benchmarking, 0/8, 240/4, site-local fec0::/10,
Teredo...), and the cloud metadata addresses (`METADATA_ADDRESSES`). IPv6 forms
that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible,
NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address. A policy
(`NetPolicy`) may allow loopback and private addresses, for development and the
loopback mocks; metadata, link-local and the rest stay refused whatever the
policy, since nothing legitimate that a user names lives there.

What the callers must do themselves:
- never follow redirects (`allow_redirects=False`): a redirect target would
  still pass the connect-time check, but skip the URL check and take the
  request's headers along;
- never give a guarded session a proxy: the proxy would resolve and connect,
  past the guard (`guarded_session` sets `trust_env=False` for that reason);
- read answers with a cap (`read_capped`).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "MAX_URL_LENGTH",
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "AddressKind",
    "AddressRefused",
    "GuardedResolver",
    "NetPolicy",
    "UrlParts",
    "address_refusal",
    "check_subscriber_url",
    "classify_address",
    "classify_host",
    "guarded_connector",
    "guarded_session",
    "http_session",
    "read_capped",
    "refusal_reason",
    "split_url",
    "subscriber_policy",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# AWS documents no maximum length for an HTTP/S subscription endpoint; 2048 is
# the practical URL limit of browsers and proxies, and WNS channel URIs (~250
# characters) fit it with room to spare.
MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")


class AddressKind(enum.Enum):
    """Why an address is not a public one; the value reads in a reason."""

    METADATA = "a cloud metadata address"
    UNSPECIFIED = "an unspecified address"
    LOOPBACK = "a loopback address"
    PRIVATE = "a private address"
    LINK_LOCAL = "a link-local address"
    MULTICAST = "a multicast address"
    SHARED = "a carrier-grade NAT (shared) address"
    BROADCAST = "the broadcast address"
    RESERVED = "a reserved (not globally routable) address"


# Instance metadata and credential services. Most are refused by their range
# already; they are named so that the reason says so, and so that no policy
# admits fd00:ec2::254, which is in fc00::/7 (private) by its address.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public-range address)
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
# Names of metadata services, refused before any lookup (their addresses are
# refused at connect time anyway; this gives the clearer reason up front).
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local use
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291)


@dataclass(frozen=True, slots=True)
class NetPolicy:
    """
    Which non-public address kinds a guarded client may reach.

    Everything public is allowed; of the rest only what the flags name. No
    flag admits metadata, link-local, multicast, unspecified, broadcast,
    carrier-grade NAT or reserved addresses.
    """

    allow_loopback: bool = False  # 127.0.0.0/8, ::1, localhost
    allow_private: bool = False  # RFC 1918 and fc00::/7

    def allows(self, kind: AddressKind | None) -> bool:
        if kind is None:
            return True
        if kind is AddressKind.LOOPBACK:
            return self.allow_loopback
        if kind is AddressKind.PRIVATE:
            return self.allow_private
        return False


def subscriber_policy(*, allow_private: bool) -> NetPolicy:
    """The policy for subscription endpoints: `allow_private` admits loopback too."""
    return NetPolicy(allow_loopback=allow_private, allow_private=allow_private)


# --- addresses ---------------------------------------------------------------


def classify_address(ip: IPAddress) -> AddressKind | None:
    """What kind of non-public address `ip` is, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(int(ip))  # without a %zone
        if ip.is_unspecified:
            return AddressKind.UNSPECIFIED
        if ip.is_loopback:
            return AddressKind.LOOPBACK
        if ip in METADATA_ADDRESSES:
            return AddressKind.METADATA
        if ip in _NAT64_LOCAL:
            return AddressKind.RESERVED
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return classify_address(embedded)
        if ip.is_site_local:  # fec0::/10, deprecated; Python calls it global
            return AddressKind.RESERVED
    if ip in METADATA_ADDRESSES:
        return AddressKind.METADATA
    if ip.is_unspecified:
        return AddressKind.UNSPECIFIED
    if ip.is_loopback:
        return AddressKind.LOOPBACK
    if ip.is_link_local:
        return AddressKind.LINK_LOCAL
    if ip.is_multicast:
        return AddressKind.MULTICAST
    if any(ip in net for net in _PRIVATE_NETWORKS):
        return AddressKind.PRIVATE
    if ip in _SHARED_NETWORK:
        return AddressKind.SHARED
    if ip == _BROADCAST:
        return AddressKind.BROADCAST
    if not ip.is_global:
        return AddressKind.RESERVED
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64, 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_refusal(address: str | IPAddress, policy: NetPolicy) -> str | None:
    """
    Why `policy` refuses a connection to `address`, or None when it allows it.

    `address` is a resolver answer or a socket address: a numeric IPv4 or IPv6
    address, possibly with a %zone. Anything else is refused.
    """
    if isinstance(address, str):
        try:
            ip: IPAddress = ipaddress.ip_address(address)
        except ValueError:
            return f"{address!r} is not a numeric address"
    else:
        ip = address
    kind = classify_address(ip)
    if policy.allows(kind):
        return None
    assert kind is not None  # policies allow every public address
    return f"{ip} is {kind.value}"


# --- URLs --------------------------------------------------------------------

# What a DNS host name may contain once lower-cased; anything else (percent
# escapes, backslashes, IDNA, brackets, underscores) is refused, not normalised.
_HOST_RE = re.compile(
    r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)
_BAD_CHARS_RE = re.compile(r"[\x00-\x20\x7f\\]")
# A last label that URL parsers and inet_aton read as a number (2130706433,
# 0x7f.1, 127.1, 0177.0.0.1): the host is an IPv4 address in some spelling.
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True, slots=True)
class UrlParts:
    """A URL that passed `split_url`."""

    scheme: str  # "http" or "https"
    host: str  # lower-case; an IPv6 literal without its brackets
    port: int | None  # as written, None when absent
    address: IPAddress | None  # the host as an IP literal, None for a name


def split_url(url: str, *, what: str = "URL") -> UrlParts | str:
    """
    `url` taken apart, or why its form is refused (`what` starts the reason).

    The checks every outbound URL gets, whoever supplied it: at most
    `MAX_URL_LENGTH` characters of printable ASCII (no spaces, controls or
    backslashes); http or https; a host; no userinfo (`user:pw@`); no fragment;
    a port in 1-65535 if any. The host is a canonical IP literal (dotted-quad
    IPv4, or bracketed IPv6 without a %zone) or a DNS name of letters, digits
    and hyphens without a trailing dot. Numbers in any other spelling
    (2130706433, 0x7f.1, 127.1, 0177.0.0.1) are refused, not interpreted.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"{what} longer than {MAX_URL_LENGTH} characters"
    if not url.isascii() or _BAD_CHARS_RE.search(url):
        return f"{what} contains whitespace, control, backslash or non-ASCII"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{what} is malformed: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return f"{what} scheme must be http or https"
    if "@" in parts.netloc:
        return f"{what} must not contain userinfo"
    if parts.fragment or url.endswith("#"):
        return f"{what} must not contain a fragment"
    host = (parts.hostname or "").lower()
    if not host:
        return f"{what} has no host"
    if port is not None and not 1 <= port <= 65535:
        return f"{what} port {port} is out of range"
    if "[" in parts.netloc:
        try:
            ipv6 = ipaddress.IPv6Address(host)
        except ValueError:
            ipv6 = None
        if ipv6 is None or ipv6.scope_id is not None:
            return f"{what} host [{host}] is not a plain IPv6 address"
        return UrlParts(scheme=scheme, host=host, port=port, address=ipv6)
    try:
        return UrlParts(
            scheme=scheme, host=host, port=port, address=ipaddress.IPv4Address(host)
        )
    except ValueError:
        pass
    if host.endswith("."):
        return f"{what} host must not end with a dot"
    if not _HOST_RE.match(host) or len(host) > 253:
        return f"{what} host is not a valid DNS name"
    if any(len(label) > 63 for label in host.split(".")):
        return f"{what} host has a label longer than 63 characters"
    if _NUMERIC_LABEL_RE.match(host.rpartition(".")[2]):
        return f"{what} host {host} is an IP address in a non-canonical form"
    return UrlParts(scheme=scheme, host=host, port=port, address=None)


def classify_host(parts: UrlParts) -> AddressKind | None:
    """
    What `split_url`'s host is known to be before any lookup: an IP literal's
    kind, loopback for localhost and *.localhost (RFC 6761), metadata for the
    metadata services' names; None for any other name (the connect-time guard
    judges what it resolves to).
    """
    if parts.address is not None:
        return classify_address(parts.address)
    if parts.host == "localhost" or parts.host.endswith(".localhost"):
        return AddressKind.LOOPBACK
    if parts.host in METADATA_HOSTS:
        return AddressKind.METADATA
    return None


def check_subscriber_url(url: str, *, allow_private: bool) -> str | None:
    """
    Why `url` may not be an HTTP/HTTPS subscription endpoint, or None if it may.

    The form rules are `split_url`'s; the host must not be a refused address
    or name (`classify_host`). `allow_private` (development and tests) admits
    loopback and private hosts, never metadata or the other refused kinds.
    A name is not resolved here: `guarded_session` checks its addresses at
    every connection. Matching the scheme to the subscription's protocol is
    the caller's job.
    """
    parts = split_url(url)
    if isinstance(parts, str):
        return parts
    kind = classify_host(parts)
    if subscriber_policy(allow_private=allow_private).allows(kind):
        return None
    assert kind is not None
    if parts.address is not None:
        return f"URL host {parts.host} is {kind.value}"
    if kind is AddressKind.LOOPBACK:
        return f"URL host {parts.host} is a loopback name"
    return f"URL host {parts.host} is a cloud metadata service name"


# --- connect time ------------------------------------------------------------


class AddressRefused(aiohttp.ClientOSError):
    """A connection the guard refused; the text is the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        # aiohttp's ClientConnectorError shows its OSError's strerror.
        self.strerror = reason


def refusal_reason(exc: BaseException) -> str | None:
    """The guard's reason if `exc` is (or wraps) an `AddressRefused`, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen.reason
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(
            seen.os_error, AddressRefused
        ):
            return seen.os_error.reason
        seen = seen.__cause__
    return None


class GuardedResolver(AbstractResolver):
    """
    A resolver that keeps only the addresses a policy allows.

    Wraps `inner` (default: aiohttp's `ThreadedResolver`, the system's
    getaddrinfo, which reads /etc/hosts); raises `AddressRefused` when no
    address of an answer is allowed. Closing it closes `inner`.
    """

    def __init__(self, policy: NetPolicy, inner: AbstractResolver | None = None):
        self.policy = policy
        self.inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for answer in answers:
            reason = address_refusal(answer["host"], self.policy)
            if reason is None:
                allowed.append(answer)
            else:
                refused.append(reason)
        if allowed:
            return allowed
        if not refused:  # resolvers raise on no answer; aiohttp needs one or this
            raise OSError(f"{host} resolved to no address")
        raise AddressRefused(f"refused: {'; '.join(refused)} (resolved from {host})")

    async def close(self) -> None:
        await self.inner.close()


def _guarded_socket_factory(policy: NetPolicy) -> SocketFactoryType:
    """A socket factory that refuses to make a socket for a refused address."""

    def make(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        reason = address_refusal(str(sockaddr[0]), policy)
        if reason is not None:
            raise AddressRefused(f"refused: {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    return make


def guarded_connector(
    policy: NetPolicy,
    *,
    ssl: ssl.SSLContext | bool,
    limit: int,
    limit_per_host: int = 0,
    resolver: AbstractResolver | None = None,
) -> aiohttp.TCPConnector:
    """
    A keep-alive connector that connects only to addresses `policy` allows.

    Args:
        policy: what besides public addresses may be reached.
        ssl: the TLS context for https URLs (True: aiohttp's default).
        limit: the pool's connection cap.
        limit_per_host: the cap per host (0: none but `limit`).
        resolver: the resolver to guard (tests inject one; default the
            system's). The caller closes it if it needs closing.
    """
    return aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        ssl=ssl,
        resolver=GuardedResolver(policy, resolver),
        socket_factory=_guarded_socket_factory(policy),
        enable_cleanup_closed=False,
    )


def http_session(
    connector: aiohttp.BaseConnector, *, timeout_s: float
) -> aiohttp.ClientSession:
    """
    pushgw's HTTP/1.1 client session around `connector`, options said once:
    `timeout_s` bounds each request (connect + send + read), bodies are never
    auto-decompressed (callers see, and cap, the bytes that were sent), status
    codes never raise, and no proxy comes from the environment.
    """
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
        raise_for_status=False,
        trust_env=False,
    )


def guarded_session(
    *,
    allow_private: bool,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = 10,
    limit_per_host: int = 0,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """
    A session for subscription endpoints: `http_session` on `guarded_connector`
    with `subscriber_policy(allow_private=...)`. Call inside the running loop;
    the caller closes it. Requests must pass `allow_redirects=False` and no
    `proxy`, and read bodies with `read_capped`.
    """
    connector = guarded_connector(
        subscriber_policy(allow_private=allow_private),
        ssl=ssl_context if ssl_context is not None else True,
        limit=limit,
        limit_per_host=limit_per_host,
        resolver=resolver,
    )
    return http_session(connector, timeout_s=timeout_s)


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """
    At most `limit` bytes of `resp`'s body; the rest is never read and raises
    nothing. A response cut short is closed, so its connection is not reused.
    """
    body = bytearray()
    while len(body) < limit:
        chunk = await resp.content.read(limit - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    if not resp.content.at_eof():
        resp.close()
    return bytes(body)
