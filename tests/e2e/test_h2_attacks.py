"""HTTP/2 attacks (issue 13, "Protection"): each must cost the attacker more than sluice.
For each: the expected GOAWAY or RST_STREAM, sluice's memory (VmRSS) bounded, the reason
counted in sluice_http_errors_total{reason} and logged, and a well-behaved connection
served right after. Rapid reset (CVE-2023-44487) is in test_http2.py.

Raw frames via h2raw.py; the sluice under test has one worker. Memory bounds are checked
on the normal build only: ASan's quarantine keeps freed memory resident by design."""
import socket
import struct
import subprocess
import time

import pytest

from h2raw import (CONTINUATION, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, HEADERS,
                   PROTOCOL_ERROR, SETTINGS, Raw, frame, ping, settings)
from helpers import ASAN, scaled, wait_for
from test_h2_conformance import Gateway
from tls_certs import pki  # noqa: F401

MiB = 1024 * 1024


def rss(s):
    """sluice's resident memory, bytes."""
    with open(f"/proc/{s.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def gw(request, sluice, backend, pki):
    g = Gateway(sluice, backend, pki, **getattr(request, "param", {}))
    g.still_serves()  # warm: the worker's buffers exist before the baseline
    g.rss0 = rss(g.sluice)
    return g


def after_attack(gw, reason, log_text, rss_limit=8 * MiB):
    """The aftermath every attack test checks: counted once under `reason`, logged,
    memory growth under rss_limit, a new connection served, nothing refused forwarded."""
    wait_for(lambda: gw.metric(reason) == 1, scaled(5), what=f"{reason} counted")
    wait_for(lambda: log_text in gw.sluice.stderr(), scaled(5), what=f"the log line {log_text!r}")
    grown = rss(gw.sluice) - gw.rss0
    assert ASAN or grown < rss_limit, f"sluice grew by {grown / MiB:.1f} MiB"
    gw.still_serves()
    gw.never_forwarded()


def test_continuation_flood(gw):
    """HEADERS without END_HEADERS, then CONTINUATION frames that never end the block
    (CVE-2024-27316 and kin): past nghttp2's max_continuations (8 here, more with a
    larger max_header_list_size) the connection ends with GOAWAY ENHANCE_YOUR_CALM,
    counted as http2_continuation_flood."""
    c = gw.raw()
    blk = c.block(c.req_headers("/refused"))
    flood = frame(HEADERS, END_STREAM, 1, blk)
    flood += b"".join(frame(CONTINUATION, 0, 1, c.block([(f"x-{i}", "v" * 50)]))
                      for i in range(100))
    c.send(flood)
    assert c.connection_error() == ENHANCE_YOUR_CALM, c.kinds()
    after_attack(gw, "http2_continuation_flood", "CONTINUATION frames in a header block")


@pytest.mark.parametrize("kind", ["one-large-header", "many-tiny-headers"])
def test_hpack_bomb(gw, kind):
    """A header inserted once in the HPACK dynamic table and referenced thousands of
    times (each one byte on the wire, 4 KiB decoded), or thousands of tiny fields: the
    stream is reset past max_header_list_size (32 KiB) without sluice holding what was
    decoded; counted as headers_too_large; the same connection serves the next stream."""
    c = gw.raw()
    if kind == "one-large-header":
        # literal with incremental indexing, new name: dynamic index 62 from now on
        # a literal with incremental indexing: the newest entry, index 62, on both sides
        blk = c.block(c.req_headers("/refused", extra=[("x-big", "b" * 4000)]), huffman=False)
        refs = b"\xbe" * (16384 * 6)
    else:
        blk = c.block(c.req_headers("/refused"))
        refs = b"".join(b"\x00\x01" + bytes([97 + i % 26]) + b"\x01v" for i in range(20000))
    blk += refs
    chunks = [blk[i:i + 16384] for i in range(0, len(blk), 16384)]
    assert len(chunks) <= 8, len(chunks)  # under the CONTINUATION limit: HPACK is the test
    out = frame(HEADERS, END_STREAM, 1, chunks[0])
    for i, ch in enumerate(chunks[1:], 2):
        out += frame(CONTINUATION, END_HEADERS if i == len(chunks) else 0, 1, ch)
    c.send(out)
    c.next_sid = 3
    kind_, code = c.stream_error(1)
    assert (kind_, code) == ("rst", PROTOCOL_ERROR), (kind_, code, c.kinds())
    # the table is in sync: the next request on this connection decodes right
    after_attack(gw, "headers_too_large", "header list larger than max_header_list_size")
    gw.still_serves(c)


def _flood_without_reading(gw, unit, limit_bytes=64 * MiB):
    """Sends `unit` (bytes of frames) over and over from a client that never reads, until
    sluice closes the connection; returns how many bytes went out."""
    c = gw.raw(rcvbuf=4096)
    c.sock.settimeout(scaled(10))
    batch = unit * max(1, 65536 // len(unit))
    sent = 0
    try:
        while sent < limit_bytes:
            c.sock.sendall(batch)
            sent += len(batch)
    except OSError:  # reset or broken pipe: sluice closed
        pass
    c.close()
    assert sent < limit_bytes, "sluice never closed the connection"
    return sent


@pytest.mark.parametrize("what", ["settings", "ping"])
def test_control_frame_flood_from_a_client_that_never_reads(gw, what):
    """SETTINGS or PING frames, each owing an acknowledgement, from a client that never
    reads (CVE-2019-9512, -9515): the acknowledgements pile up until the socket buffers
    are full, then in nghttp2 up to max_outbound_ack (1000); past that the connection
    closes (a GOAWAY ENHANCE_YOUR_CALM follows what was written, if the client ever
    reads), counted as http2_flood. sluice's memory stays flat."""
    unit = settings() if what == "settings" else ping(b"12345678")
    _flood_without_reading(gw, unit)
    after_attack(gw, "http2_flood", "SETTINGS/PING acknowledgements it does not read")


def test_settings_with_too_many_entries(gw):
    """One SETTINGS frame with 33 entries, past nghttp2's max_settings (32): GOAWAY
    ENHANCE_YOUR_CALM from nghttp2, counted as http2_flood."""
    c = gw.raw()
    c.send(frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", 0x100 + i, 1) for i in range(33))))
    assert c.connection_error() == ENHANCE_YOUR_CALM, c.kinds()
    after_attack(gw, "http2_flood", "connection error ENHANCE_YOUR_CALM")


def test_empty_data_frame_flood(gw):
    """Empty DATA frames without END_STREAM (CVE-2019-9518) carry nothing and cost the
    client nothing: past 100 in 10 s, GOAWAY ENHANCE_YOUR_CALM, http2_empty_frames. The
    request they belonged to never reaches the backend whole."""
    c = gw.raw()
    sid = c.start("/refused", end_stream=False, method="POST")
    c.send(frame(DATA, 0, sid, b"") * 500)
    assert c.connection_error() == ENHANCE_YOUR_CALM, c.kinds()
    after_attack(gw, "http2_empty_frames", "more than 100 empty DATA frames")


def test_headers_on_forgotten_streams(gw):
    """HEADERS on stream ids below the last one used that nghttp2 has no record of (ids
    the client skipped) are ignored by nghttp2 (it cannot tell them from streams reset
    long ago, whose late trailers must be ignored), but each is decoded: they count
    against the reset-and-error budget, so a flood ends with GOAWAY ENHANCE_YOUR_CALM
    (http2_abuse) past 2 x max_concurrent_streams (200 here)."""
    c = gw.raw()
    c.next_sid = 101
    c.response(c.start("/ok"))
    c.send(b"".join(c.headers_frame(sid, c.req_headers("/refused"))
                    for _ in range(5) for sid in range(1, 101, 2)))
    assert c.connection_error() == ENHANCE_YOUR_CALM, c.kinds()
    after_attack(gw, "http2_abuse", "(last: HEADERS on a closed stream)")


@pytest.mark.parametrize("gw", [{"backend_cfg": {"timeout": "2s"}}], indirect=True)
def test_streams_held_at_window_zero(gw):
    """A client announces SETTINGS_INITIAL_WINDOW_SIZE 0 and opens max_concurrent_streams
    (100) streams with large responses, then never opens a window: each stream's response
    waits in at most 64 KiB (the engine stops reading its server), so sluice's memory is
    bounded by streams x 64 KiB plus the per-exchange buffers, and other connections are
    served meanwhile. Each such stream ends (RST_STREAM) once the backend `timeout` (2 s
    here) passes without progress, as for an HTTP/1.1 client that stops reading."""
    c = gw.raw(client_settings=settings(s4=0))
    sids = [c.start("/big/5000000") for _ in range(100)]
    wait_for(lambda: len(gw.backend.requests) >= 101, scaled(10), what="100 requests forwarded")
    c.read_until(lambda: all(s in c.headers for s in sids), what="100 response heads")
    # sluice's memory settles once every stream's buffer is full
    samples = []

    def settled():
        samples.append(rss(gw.sluice))
        return len(samples) > 5 and samples[-1] == samples[-5]
    wait_for(settled, scaled(10), interval=0.1, what="sluice's memory to settle")
    assert not c.data, "DATA sent into a zero window"
    grown = samples[-1] - gw.rss0
    # about 12 MiB measured: 64 KiB of response and the exchange buffers per stream
    assert ASAN or grown < 24 * MiB, f"{grown / MiB:.1f} MiB for 100 stalled streams"
    t0 = time.monotonic()
    gw.still_serves()
    assert time.monotonic() - t0 < scaled(2)
    c.read_until(lambda: set(sids) <= set(c.resets), timeout=scaled(10),
                 what="the stalled streams reset after the backend timeout")
    wait_for(lambda: "sluice_http2_streams_active{listener=\"clear\"} 0" in _metrics(gw),
             scaled(5), what="the stalled streams freed")
    c.close()


def _metrics(gw):
    import urllib.request
    return urllib.request.urlopen(f"http://127.0.0.1:{gw.admin}/metrics",
                                  timeout=scaled(5)).read().decode()


def test_many_streams_on_one_connection(gw):
    """There is no cap on the total streams of a connection (nginx has 1000, HAProxy none
    by default): a stream's state is freed when it ends, so a long-lived connection costs
    no more after 20,000 streams than after 2,000, and abuse through stream churn is what
    the reset-and-error budget covers. h2load on one connection, RSS compared."""
    def load(n):
        r = subprocess.run(["h2load", "-n", str(n), "-c", "1", "-m", "20",
                            f"http://127.0.0.1:{gw.h2c}/ok"],
                           capture_output=True, text=True, timeout=scaled(60))
        assert f"{n} succeeded, 0 failed, 0 errored" in r.stdout, r.stdout
    load(2000)
    before = rss(gw.sluice)
    load(20000)
    grown = rss(gw.sluice) - before
    assert ASAN or grown < 2 * MiB, f"{grown / MiB:.1f} MiB more after 20,000 streams"


def test_stalled_flood_does_not_hurt_neighbours(gw):
    """While one client floods PINGs without reading, another is served promptly (the
    worker does not spin on the flooder)."""
    c = gw.raw(rcvbuf=4096)
    c.sock.settimeout(scaled(5))
    unit = ping(b"abcdefgh") * 4000
    try:
        for _ in range(20):
            c.sock.sendall(unit)
    except OSError:
        pass
    t0 = time.monotonic()
    gw.still_serves()
    assert time.monotonic() - t0 < scaled(2)
    c.close()
    assert socket  # the module is used by h2raw's clients
