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
strict: the form rules of `pushgw.netguard.split_url` (ASCII, no userinfo, no
fragment, canonical host forms only), then a host name under an allowed suffix,
the scheme's default port, no IP literals (loopback hosts only when the settings
allow loopback, which is for the mocks). What a provider host name resolves to
is checked at connect time, by the adapters' guarded session (`netguard`).
"""

from __future__ import annotations

from pushgw.netguard import AddressKind, classify_host, split_url

WNS_SUFFIXES: tuple[str, ...] = ("notify.windows.com",)
MPNS_SUFFIXES: tuple[str, ...] = ("notify.live.net",)

_DEFAULT_PORTS = {"https": 443, "http": 80}


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
    parts = split_url(uri, what="channel URI")
    if isinstance(parts, str):
        return parts
    if classify_host(parts) is AddressKind.LOOPBACK:
        return None if allow_loopback else "loopback channel URIs are not allowed"
    host = parts.host
    if parts.address is not None:
        return "channel URI host must be a provider domain, not an IP address"
    if not any(host == s or host.endswith("." + s) for s in allowed_suffixes):
        return "channel URI host is not under " + " or ".join(allowed_suffixes)
    if parts.scheme == "http" and not allow_http:
        return "channel URI scheme must be https"
    if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
        return f"channel URI port {parts.port} is not allowed"
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
