"""The outbound-URL guard's pure half: subscriber URLs and address classes."""

from __future__ import annotations

import ipaddress

import pytest

from pushgw.netguard import (
    MAX_URL_LENGTH,
    AddressKind,
    NetPolicy,
    address_refusal,
    check_subscriber_url,
    classify_address,
    split_url,
)

# (URL, a word of the reason) refused whatever allow_private says.
ALWAYS_REFUSED = [
    # scheme, form
    ("ftp://example.com/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com:70/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("example.com/hook", "scheme"),
    ("//example.com/hook", "scheme"),
    ("", "scheme"),
    ("https:///hook", "no host"),
    ("http://:80/", "no host"),
    ("https://user:pw@example.com/", "userinfo"),
    ("https://user@example.com/", "userinfo"),
    ("https://@example.com/", "userinfo"),
    ("https://example.com@127.0.0.1/", "userinfo"),
    ("https://example.com#@evil.example/", "fragment"),
    ("https://example.com/hook#frag", "fragment"),
    ("https://example.com/#", "fragment"),
    ("https://evil.example\\@example.com/", "backslash"),
    ("https://example.com/ hook", "whitespace"),
    ("https://example.com/\thook", "whitespace"),
    ("https://example.com/\x00", "control"),
    ("https://bücher.example/", "non-ASCII"),
    ("https://example.com/" + "a" * MAX_URL_LENGTH, "longer than 2048"),
    # ports
    ("https://example.com:0/", "port 0"),
    ("https://example.com:65536/", "malformed"),
    ("https://example.com:99999/", "malformed"),
    ("https://example.com:-1/", "malformed"),
    ("https://example.com:+80/", "malformed"),
    ("https://example.com:8o/", "malformed"),
    # host names
    ("https://%65xample.com/", "DNS name"),
    ("https://exa_mple.com/", "DNS name"),
    ("https://-example.com/", "DNS name"),
    ("https://example..com/", "DNS name"),
    ("https://example.com./", "end with a dot"),
    ("https://example.com../", "end with a dot"),
    ("https://" + "a" * 64 + ".example/", "63 characters"),
    ("https://" + "a." * 130 + "example/", "DNS name"),
    ("https://[v1.fe]/", "plain IPv6"),
    ("https://[example.com]/", "malformed"),
    ("https://[::1/", "malformed"),
    # IPv4 in spellings other than the dotted quad
    ("http://2130706433/", "non-canonical"),
    ("http://0x7f000001/", "non-canonical"),
    ("http://0x7f.1/", "non-canonical"),
    ("http://0x7f.0.0.1/", "non-canonical"),
    ("http://0177.0.0.1/", "non-canonical"),
    ("http://127.1/", "non-canonical"),
    ("http://127.0.1/", "non-canonical"),
    ("http://127.000.000.001/", "non-canonical"),
    ("http://8.8.8.08/", "non-canonical"),
    ("http://256.0.0.1/", "non-canonical"),
    ("http://1.2.3.4.5/", "non-canonical"),
    ("http://evil.0x10/", "non-canonical"),
    ("http://127.0.0.1./", "end with a dot"),
    # zone ids
    ("http://[fe80::1%25eth0]/", "plain IPv6"),
    ("http://[fe80::1%eth0]/", "plain IPv6"),
    ("http://[::1%251]/", "plain IPv6"),
    # address kinds no policy admits
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://169.254.170.2/v2/credentials", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ("http://168.63.129.16/", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata service"),
    ("http://METADATA.Google.Internal/", "metadata service"),
    ("http://metadata/computeMetadata/v1/", "metadata service"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://[::ffff:0.0.0.0]/", "unspecified"),
    ("http://0.1.2.3/", "reserved"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250:1900/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://100.127.255.254/", "carrier-grade NAT"),
    ("http://192.0.2.10/", "reserved"),  # TEST-NET-1
    ("http://198.18.0.1/", "reserved"),  # benchmarking
    ("http://[2001:db8::1]/", "reserved"),  # documentation
    ("http://[fec0::1]/", "reserved"),  # site-local
    ("http://[64:ff9b:1::a00:1]/", "reserved"),  # NAT64 local use
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),  # NAT64 of 169.254.169.254
]

# Loopback and private hosts: refused, unless allow_private (development).
PRIVATE_OR_LOOPBACK = [
    ("http://127.0.0.1:8080/hook", "loopback address"),
    ("http://127.255.255.254/", "loopback address"),
    ("https://[::1]:8443/", "loopback address"),
    ("http://[::ffff:127.0.0.1]/", "loopback address"),
    ("http://[::ffff:7f00:1]/", "loopback address"),
    ("http://[::7f00:1]/", "loopback address"),  # IPv4-compatible
    ("http://[64:ff9b::7f00:1]/", "loopback address"),  # NAT64
    ("http://[2002:7f00:1::]/", "loopback address"),  # 6to4
    ("http://localhost/", "loopback name"),
    ("http://LOCALHOST:9000/", "loopback name"),
    ("http://app.localhost/", "loopback name"),
    ("http://10.0.0.1/", "private address"),
    ("http://172.16.0.1/", "private address"),
    ("http://172.31.255.255/", "private address"),
    ("http://192.168.1.1/", "private address"),
    ("http://[::ffff:10.1.2.3]/", "private address"),
    ("http://[fd12:3456::1]/", "private address"),
    ("http://[fc00::1]/", "private address"),
]

ACCEPTED = [
    "https://example.com/hook",
    "https://EXAMPLE.com/Hook?Token=AbC",
    "http://example.com:8080/sns?x=1&y=2",
    "https://hooks.example.co.uk:443/a/b/c",
    "https://example.com",
    "http://example.com:/",  # empty port: the default
    "https://xn--bcher-kva.example/",  # IDNA, punycoded
    "https://8.8.8.8/",
    "https://[2606:4700:4700::1111]/dns",
    "https://[::ffff:8.8.8.8]/",  # IPv4-mapped public: judged as 8.8.8.8
    "http://172.32.0.1/",  # just outside 172.16.0.0/12
    "http://100.128.0.1/",  # just outside 100.64.0.0/10
    "https://1.example/",  # a numeric label that is not the last is a name
    "https://localhost.example.com/",  # localhost only as the last label
    "https://example.com/%7Euser/hook",
    "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/")),
]


@pytest.mark.parametrize(("url", "word"), ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_refused_whatever_the_policy(url: str, word: str, allow_private: bool) -> None:
    """Bad forms, metadata, link-local and the other non-public kinds: refused."""
    reason = check_subscriber_url(url, allow_private=allow_private)

    assert reason is not None
    assert word in reason


@pytest.mark.parametrize(("url", "word"), PRIVATE_OR_LOOPBACK)
def test_private_and_loopback_only_with_allow_private(url: str, word: str) -> None:
    """allow_private admits loopback and private hosts, in any spelling of them."""
    reason = check_subscriber_url(url, allow_private=False)

    assert reason is not None
    assert word in reason
    assert None is check_subscriber_url(url, allow_private=True)


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_urls_pass(url: str) -> None:
    """Public hosts on http(s), any port, names or literals, pass."""
    assert None is check_subscriber_url(url, allow_private=False)


def test_reasons_name_the_host_and_kind() -> None:
    """A refusal says which host and why, for the caller's error message."""
    assert "URL host 127.0.0.1 is a loopback address" == check_subscriber_url(
        "http://127.0.0.1/", allow_private=False
    )
    assert (
        "URL host 169.254.169.254 is a cloud metadata address"
        == check_subscriber_url("http://169.254.169.254/", allow_private=True)
    )


def test_split_url_parts() -> None:
    """The parts a caller works with: lower-case scheme and host, port, literal."""
    parts = split_url("HTTPS://[2606:4700::1]:8443/x")

    assert not isinstance(parts, str)
    assert ("https", "2606:4700::1", 8443) == (parts.scheme, parts.host, parts.port)
    assert ipaddress.ip_address("2606:4700::1") == parts.address
    named = split_url("http://Example.COM/")
    assert not isinstance(named, str)
    assert ("example.com", None, None) == (named.host, named.port, named.address)


def test_split_url_names_what_it_checks() -> None:
    """Reasons start with the caller's noun (the channel guard says "channel URI")."""
    assert "channel URI must not contain userinfo" == split_url(
        "https://a@b.example/", what="channel URI"
    )


CLASSES = [
    ("8.8.8.8", None),
    ("2606:4700:4700::1111", None),
    ("127.0.0.1", AddressKind.LOOPBACK),
    ("::1", AddressKind.LOOPBACK),
    ("::ffff:127.0.0.2", AddressKind.LOOPBACK),
    ("10.255.255.255", AddressKind.PRIVATE),
    ("fd00::1", AddressKind.PRIVATE),
    ("169.254.0.1", AddressKind.LINK_LOCAL),
    ("fe80::1%eth0", AddressKind.LINK_LOCAL),
    ("169.254.169.254", AddressKind.METADATA),
    ("fd00:ec2::254", AddressKind.METADATA),
    ("fd00:ec2::254%2", AddressKind.METADATA),
    ("::ffff:169.254.169.254", AddressKind.METADATA),
    ("100.100.100.200", AddressKind.METADATA),
    ("0.0.0.0", AddressKind.UNSPECIFIED),
    ("::", AddressKind.UNSPECIFIED),
    ("224.0.0.251", AddressKind.MULTICAST),
    ("ff05::2", AddressKind.MULTICAST),
    ("255.255.255.255", AddressKind.BROADCAST),
    ("100.64.0.0", AddressKind.SHARED),
    ("2002:a00:1::", AddressKind.PRIVATE),  # 6to4 of 10.0.0.1
    ("2001::1", AddressKind.RESERVED),  # Teredo
    ("203.0.113.5", AddressKind.RESERVED),
]


@pytest.mark.parametrize(("address", "kind"), CLASSES)
def test_classify_address(address: str, kind: AddressKind | None) -> None:
    """Each address is put in its class; IPv6 forms of IPv4 by the IPv4 address."""
    assert kind is classify_address(ipaddress.ip_address(address))


def test_address_refusal_by_policy() -> None:
    """The flags admit their one kind each; metadata stays refused."""
    closed, loopback = NetPolicy(), NetPolicy(allow_loopback=True)
    dev = NetPolicy(allow_loopback=True, allow_private=True)

    assert "127.0.0.1 is a loopback address" == address_refusal("127.0.0.1", closed)
    assert None is address_refusal("127.0.0.1", loopback)
    assert "10.0.0.1 is a private address" == address_refusal("10.0.0.1", loopback)
    assert None is address_refusal("10.0.0.1", dev)
    assert "fd00:ec2::254 is a cloud metadata address" == address_refusal(
        "fd00:ec2::254", dev
    )
    assert None is address_refusal("8.8.8.8", closed)
    assert "'localhost' is not a numeric address" == address_refusal("localhost", dev)
