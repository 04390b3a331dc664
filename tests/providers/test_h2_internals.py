"""
The parts of h2 that `providers/h2client.py` relies on beyond its public API.
pyproject pins h2 to the tested minor release; these fail loudly, naming what
moved, if an upgrade changes them.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import h2.config
import h2.connection

from pushgw.providers.h2client import _CONFIG, FastH2Connection

TESTED_MINOR = "4.4"


def test_h2_is_the_tested_minor_release() -> None:
    assert version("h2").startswith(TESTED_MINOR + "."), (
        f"h2 {version('h2')}: h2client.py was tested with {TESTED_MINOR}.x;"
        " re-check the internals below and move the pin in pyproject.toml"
    )


def test_stream_counting_internals_exist() -> None:
    """FastH2Connection bounds the open-stream counts by `len(self.streams)` and
    defers to h2's own properties (which prune closed streams)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    assert isinstance(conn.streams, dict), "H2Connection.streams is no longer a dict"
    for name in ("open_outbound_streams", "open_inbound_streams"):
        assert isinstance(
            inspect.getattr_static(h2.connection.H2Connection, name), property
        ), f"H2Connection.{name} is no longer a property"
    assert conn.remote_settings.max_concurrent_streams > 0
    assert conn.local_settings.max_concurrent_streams > 0


def test_open_stream_counts_match_h2s_own() -> None:
    """With streams opened and ended, the amortised counts equal h2's scan."""
    fast = FastH2Connection(config=_CONFIG)
    plain = h2.connection.H2Connection(config=_CONFIG)
    for conn in (fast, plain):
        conn.initiate_connection()
        for n in range(300):
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(
                stream_id,
                [
                    (b":method", b"POST"),
                    (b":path", b"/"),
                    (b":scheme", b"https"),
                    (b":authority", b"x"),
                ],
                end_stream=n % 3 == 0,  # a third half-closed (local) at once
            )
    assert plain.open_outbound_streams == fast.open_outbound_streams
    assert plain.open_inbound_streams == fast.open_inbound_streams


def test_encoder_takes_a_huffman_flag_and_writes_literals() -> None:
    """The override that turns Huffman coding off wraps `encoder.encode(headers,
    huffman=...)`: the value must then appear as plain octets."""
    assert (
        "huffman"
        in inspect.signature(
            h2.connection.H2Connection(config=_CONFIG).encoder.encode
        ).parameters
    )
    conn = FastH2Connection(config=_CONFIG)
    block = conn.encoder.encode([(b"apns-topic", b"com.example.app")])
    assert b"com.example.app" in block
