"""The WNS/MPNS channel-URI SSRF guard (pure; no network)."""

from __future__ import annotations

import pytest

from pushgw.providers.channel_guard import (
    MPNS_SUFFIXES,
    WNS_SUFFIXES,
    check_channel_uri,
    check_mpns_channel,
    check_wns_channel,
)

WNS_TOKEN = "AwYAAADq0ZBuxw%2bHsRBtV0XDWtDg"

REFUSED_WNS = [
    "http://10.0.0.1/",
    "https://10.0.0.1/?token=x",
    "https://evil.example/",
    "https://notify.windows.com.evil.com/?token=x",
    "https://evilnotify.windows.com/?token=x",
    "https://user:pw@db5.notify.windows.com/?token=x",
    "https://db5.notify.windows.com@evil.example/?token=x",
    "https://evil.example\\@db5.notify.windows.com/",
    "https://evil.example#@db5.notify.windows.com/",
    "http://db5.notify.windows.com/?token=x",
    "https://db5.notify.windows.com:8443/?token=x",
    "https://db5.notify.windows.com:99999/",
    "https://%64b5.notify.windows.com/",
    "https://db5.notify.windows.com./?token=x",
    "https://127.0.0.1:8080/w/?token=x",
    "http://localhost:8080/w/",
    "https://[::1]/",
    "https://[::ffff:7f00:1]/",
    "https://2130706433/",
    "https://169.254.169.254/latest/meta-data/",
    "ftp://db5.notify.windows.com/",
    "file:///etc/passwd",
    "https:///?token=x",
    "https://db5.notify.windows.com/ ?token=x",
    "https://db5.notify.windöws.com/",
    "",
    "https://db5.notify.windows.com/?token=" + "a" * 3000,
]

ACCEPTED_WNS = [
    f"https://db5.notify.windows.com/?token={WNS_TOKEN}",
    f"https://cloud.notify.windows.com/?token={WNS_TOKEN}",
    f"https://DB5.Notify.Windows.Com/?token={WNS_TOKEN}",
    f"https://wns2-by3p.notify.windows.com:443/w/?token={WNS_TOKEN}",
    "https://notify.windows.com/?token=x",
]

LOOPBACK = [
    "http://127.0.0.1:8080/w/?token=x",
    "https://127.0.0.1:1/w/",
    "http://127.5.6.7:80/",
    "http://localhost:9000/w/",
    "http://[::1]:9000/m/abc",
]


@pytest.mark.parametrize("uri", REFUSED_WNS)
def test_wns_refuses(uri: str) -> None:
    """A URI outside https://*.notify.windows.com is refused with a reason."""
    reason = check_wns_channel(uri, allow_loopback=False)

    assert reason is not None
    assert reason != ""


@pytest.mark.parametrize("uri", ACCEPTED_WNS)
def test_wns_accepts_provider_hosts(uri: str) -> None:
    """https URIs on notify.windows.com hosts pass, whatever the case."""
    assert None is check_wns_channel(uri, allow_loopback=False)


@pytest.mark.parametrize("uri", LOOPBACK)
def test_loopback_only_when_allowed(uri: str) -> None:
    """Loopback URIs (any port, http or https) pass only with allow_loopback."""
    assert None is check_wns_channel(uri, allow_loopback=True)
    assert None is check_mpns_channel(uri, allow_loopback=True)
    assert (
        check_wns_channel(uri, allow_loopback=False)
        == "loopback channel URIs are not allowed"
    )


@pytest.mark.parametrize(
    "uri",
    [
        "https://10.0.0.1/",
        "https://user@127.0.0.1/",
        "https://127.0.0.1.evil.example/",
        "https://evil.example/",
    ],
)
def test_allow_loopback_does_not_open_other_hosts(uri: str) -> None:
    """allow_loopback admits loopback hosts only, never private or public ones."""
    assert check_wns_channel(uri, allow_loopback=True) is not None


def test_mpns_accepts_historic_http() -> None:
    """MPNS channel URIs may be http or https under notify.live.net."""
    path = "/throttledthirdparty/01.00/AAFRQHgiiUWtT"

    assert None is check_mpns_channel(
        f"http://db3.notify.live.net{path}", allow_loopback=False
    )
    assert None is check_mpns_channel(
        f"https://db3.notify.live.net{path}", allow_loopback=False
    )
    assert check_mpns_channel(
        f"http://db3.notify.live.net:8080{path}", allow_loopback=False
    )
    assert check_mpns_channel(
        f"https://db5.notify.windows.com{path}", allow_loopback=False
    )


def test_suffixes_are_configurable() -> None:
    """The suffix list decides the domain; MPNS's list does not admit WNS hosts."""
    uri = "https://db5.notify.windows.com/?token=x"

    assert None is check_channel_uri(
        uri, allowed_suffixes=WNS_SUFFIXES, allow_loopback=False
    )
    assert check_channel_uri(uri, allowed_suffixes=MPNS_SUFFIXES, allow_loopback=False)
    assert check_channel_uri(uri, allowed_suffixes=(), allow_loopback=False)
