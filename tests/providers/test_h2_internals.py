"""
The parts of jh2 that `providers/h2client.py` relies on beyond its public API.
pyproject pins jh2 to the tested minor release; these fail loudly, naming what
moved, if an upgrade changes them.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import jh2.config
import jh2.connection

from pushgw.providers.h2client import _CONFIG, FastH2Connection

TESTED_MINOR = "5.0"


def test_jh2_is_the_tested_minor_release() -> None:
    assert version("jh2").startswith(TESTED_MINOR + "."), (
        f"jh2 {version('jh2')}: h2client.py was tested with {TESTED_MINOR}.x;"
        " re-check the internals below and move the pin in pyproject.toml"
    )


def test_compiled_hpack_is_in_use() -> None:
    """jh2 falls back to its pure-Python HPACK, silently, when its compiled
    module does not load; that fallback costs about 20 µs more per request."""
    assert jh2.connection.ALTERNATIVE_HPACK, "jh2._hazmat did not load"


def test_stream_counting_internals_exist() -> None:
    """FastH2Connection bounds the open-stream counts by `len(self.streams)` and
    defers to jh2's own properties (which prune closed streams)."""
    conn = jh2.connection.H2Connection(jh2.config.H2Configuration(client_side=True))
    assert isinstance(conn.streams, dict), "H2Connection.streams is no longer a dict"
    for name in ("open_outbound_streams", "open_inbound_streams"):
        assert isinstance(
            inspect.getattr_static(jh2.connection.H2Connection, name), property
        ), f"H2Connection.{name} is no longer a property"
    assert conn.remote_settings.max_concurrent_streams > 0
    assert conn.local_settings.max_concurrent_streams > 0


def test_open_stream_counts_match_jh2s_own() -> None:
    """With streams opened and ended, the amortised counts equal jh2's scan."""
    fast = FastH2Connection(config=_CONFIG)
    plain = jh2.connection.H2Connection(config=_CONFIG)
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


def test_never_indexed_headers_stay_out_of_the_dynamic_table() -> None:
    """The encoder takes (name, value, never_indexed) triples: a repeated header
    is indexed (a byte or two the second time), a never-indexed one (the APNs
    adapter's unique `:path` and `apns-id`) is sent whole every time."""
    encoder = FastH2Connection(config=_CONFIG).encoder
    topic = (b"apns-topic", b"com.example.app", False)
    path = (b":path", b"/3/device/" + b"ab" * 32, True)
    first = [len(encoder.encode([h])) for h in (topic, path)]
    again = [len(encoder.encode([h])) for h in (topic, path)]
    assert again[0] <= 2 < first[0]
    assert again[1] == first[1] > 20
