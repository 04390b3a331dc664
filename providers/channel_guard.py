"""
SSRF guard for WNS and MPNS channel URIs.

WNS and MPNS endpoints are URLs that clients hand us; we POST to them with the
application's bearer token (WNS) or TLS client certificate (MPNS). Without a
guard the gateway could be used to reach internal hosts, or to leak the WNS token
to any server. Microsoft: "always ensure that the channel URI uses the domain
notify.windows.com"
(https://learn.microsoft.com/en-us/windows/apps/design/shell/tiles-and-notifications/windows-push-notification-services--wns--overview).

The check is pure (no DNS, no I/O), so the service layer runs it when an endpoint
is created and the adapters run it again before every send. It is deliberately
strict: only plain ASCII host names under an allowed suffix, the scheme's default
port, no userinfo, no IP literals (loopback ones only when the settings allow
loopback, which is for the mocks).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

WNS_SUFFIXES: tuple[str, ...] = ("notify.windows.com",)
MPNS_SUFFIXES: tuple[str, ...] = ("notify.live.net",)

MAX_URI_LENGTH = 2048  # WNS channel URIs are ~250 characters
_DEFAULT_PORTS = {"https": 443, "http": 80}
# What a DNS host name may contain once lower-cased; anything else (percent
# escapes, backslashes, IDNA, brackets) is refused instead of normalised.
_HOST_RE = re.compile(
    r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)
_BAD_CHARS_RE = re.compile(r"[\x00-\x20\x7f\\]")


def check_channel_uri(
    uri: str,
    *,
    allowed_suffixes: tuple[str, ...],
    allow_loopback: bool,
    allow_http: bool = False,
) -> str | None:
    """
    Why `uri` may not be used as a channel URI, or None when it may.

    Args:
        uri: the endpoint token (a channel URI).
        allowed_suffixes: provider domains, e.g. `WNS_SUFFIXES`; the host must be
            one of them or a subdomain (`db5.notify.windows.com`).
        allow_loopback: also accept 127.0.0.0/8, ::1 and localhost, on any port
            and over http or https (the loopback mocks).
        allow_http: accept http:// for the provider domains too (MPNS channel
            URIs were historically `http://*.notify.live.net/...`).

    Returns:
        A short reason when refused, else None.
    """
    if len(uri) > MAX_URI_LENGTH:
        return f"channel URI longer than {MAX_URI_LENGTH} characters"
    if not uri.isascii() or _BAD_CHARS_RE.search(uri):
        return "channel URI contains whitespace, control, backslash or non-ASCII"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        return f"channel URI is malformed: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return "channel URI scheme must be https"
    if "@" in parts.netloc:
        return "channel URI must not contain userinfo"
    if parts.fragment:
        return "channel URI must not contain a fragment"
    host = (parts.hostname or "").lower()
    if not host:
        return "channel URI has no host"
    if _is_loopback(host):
        return None if allow_loopback else "loopback channel URIs are not allowed"
    if _is_ip_literal(host):
        return "channel URI host must be a provider domain, not an IP address"
    if not _HOST_RE.match(host):
        return "channel URI host is not a valid DNS name"
    if not any(host == s or host.endswith("." + s) for s in allowed_suffixes):
        return "channel URI host is not under " + " or ".join(allowed_suffixes)
    if scheme == "http" and not allow_http:
        return "channel URI scheme must be https"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"channel URI port {port} is not allowed"
    return None


def check_wns_channel(uri: str, *, allow_loopback: bool) -> str | None:
    """`check_channel_uri` with WNS's rules: https under notify.windows.com."""
    return check_channel_uri(
        uri, allowed_suffixes=WNS_SUFFIXES, allow_loopback=allow_loopback
    )


def check_mpns_channel(uri: str, *, allow_loopback: bool) -> str | None:
    """`check_channel_uri` with MPNS's rules: http(s) under notify.live.net."""
    return check_channel_uri(
        uri,
        allowed_suffixes=MPNS_SUFFIXES,
        allow_loopback=allow_loopback,
        allow_http=True,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # Dotted forms such as 0x7f.1 or 2130706433 are not valid names under a
        # provider suffix either, so the suffix check refuses them.
        return False
    return True
