"""HTTP/2 conformance: the case groups of h2spec (which is not installable here), ported
to raw frames (h2raw.py): connection preface, frame sizes, stream states, flow control,
SETTINGS, HPACK errors, HTTP message (pseudo-header and field) rules.

Every error case checks the error code (RFC 9113), then that sluice goes on serving: a
request on a new stream of the same connection after a stream error, on a new
connection after a connection error; and that the backend never saw a refused request
(refused requests ask for /refused, good ones for /ok). Connection errors are counted in
sluice_http_errors_total{reason="http2_protocol_error"}, refused requests in
reason="bad_request"."""
import struct
import urllib.request

import pytest
import yaml

from h2raw import (ACK, COMPRESSION_ERROR, CONTINUATION, DATA, END_HEADERS, END_STREAM,
                   FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, HEADERS, PING, PRIORITY,
                   PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, SETTINGS, STREAM_CLOSED,
                   WINDOW_UPDATE, Raw, frame, ping, settings, window_update)
from helpers import free_port, scaled, wait_for
from test_http2 import config
from tls_certs import pki  # noqa: F401

MAX_WINDOW = 2**31 - 1


class Gateway:
    """sluice with an https (h2) and an h2c listener before one recording backend."""

    def __init__(self, sluice, backend, pki, lhttp=None, backend_cfg=None):
        self.backend = backend()
        self.https, self.h2c, self.admin = free_port(), free_port(), free_port()
        text = config(pki, self.https, self.h2c, [self.backend.address],
                      admin_port=self.admin, lhttp=lhttp)
        if backend_cfg:
            doc = yaml.safe_load(text)
            doc["backends"][0].update(backend_cfg)
            text = yaml.safe_dump(doc, sort_keys=False)
        self.sluice = sluice(text)

    def raw(self, **kw):
        return Raw(self.h2c, **kw)

    def metric(self, reason, listener="clear"):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics",
                                      timeout=scaled(5)).read().decode()
        key = f'sluice_http_errors_total{{listener="{listener}",reason="{reason}"}} '
        for line in text.splitlines():
            if line.startswith(key):
                return int(line.split()[-1])
        return 0

    def targets(self):
        return [r.target for r in self.backend.requests]

    def still_serves(self, c=None):
        """A request succeeds: on connection c when given, else on a new connection."""
        fresh = c is None
        c = c or self.raw()
        status, body = c.get("/ok")
        assert status == "200" and body.startswith(b"path=/ok "), (status, body)
        if fresh:
            c.close()

    def never_forwarded(self):
        assert not [t for t in self.targets() if t.startswith("/refused")], self.targets()


@pytest.fixture
def gw(sluice, backend, pki):
    return Gateway(sluice, backend, pki)


def connection_error(gw, c, codes):
    """The connection ended with a GOAWAY carrying one of `codes`; counted; a new
    connection is served; nothing refused reached the backend."""
    code = c.connection_error()
    assert code in codes, (code, c.kinds())
    wait_for(lambda: gw.metric("http2_protocol_error") == 1, scaled(5),
             what="the connection error counted")
    gw.still_serves()
    gw.never_forwarded()


def stream_or_connection_error(gw, c, sid, codes):
    """RST_STREAM on sid (then the same connection serves another request) or GOAWAY
    (then a new connection serves), with one of `codes`; RFC 9113 allows either."""
    kind, code = c.stream_error(sid)
    assert kind in ("rst", "goaway") and code in codes, (kind, code, c.kinds())
    gw.still_serves(c if kind == "rst" else None)
    gw.never_forwarded()


# ---- 3.4 / 3.5: the connection preface

def test_preface_bad_magic_over_tls(gw, pki):
    """ALPN h2 then something that is not the client preface: GOAWAY PROTOCOL_ERROR or
    a plain close (h2spec 3.5/2); counted; the next connection is served."""
    c = Raw(gw.https, pki=pki, preface=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings())
    code = c.connection_error()
    assert code in (None, PROTOCOL_ERROR), code
    wait_for(lambda: gw.metric("http2_protocol_error", "web") == 1, scaled(5), what="counted")
    ok = Raw(gw.https, pki=pki)
    assert ok.get("/ok")[0] == "200"
    gw.never_forwarded()


def test_preface_not_followed_by_settings(gw):
    """The preface must be followed by SETTINGS (h2spec 3.5/1): a PING first is a
    PROTOCOL_ERROR."""
    c = gw.raw(preface=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + ping())
    connection_error(gw, c, (PROTOCOL_ERROR,))


def test_server_preface_and_settings_ack(gw):
    """The server's first frame is SETTINGS (its preface); our SETTINGS, even with an
    unknown identifier (ignored, h2spec 6.5.2/5), are acknowledged (6.5.3/2)."""
    c = gw.raw(client_settings=settings(s255=7))
    c.read_until(lambda: len(c.frames) >= 2 and any(
        type(f).__name__ == "SettingsFrame" and "ACK" in f.flags for f in c.frames),
        what="SETTINGS and its ACK")
    assert type(c.frames[0]).__name__ == "SettingsFrame" and "ACK" not in c.frames[0].flags
    gw.still_serves(c)


# ---- 4.2: frame sizes (the default SETTINGS_MAX_FRAME_SIZE, 16384)

def test_data_over_max_frame_size(gw):
    """DATA with 16385 bytes on an open stream: FRAME_SIZE_ERROR (h2spec 4.2/2)."""
    c = gw.raw()
    sid = c.start("/refused", end_stream=False, method="POST")
    c.send(frame(DATA, END_STREAM, sid, b"x" * 16385))
    stream_or_connection_error(gw, c, sid, (FRAME_SIZE_ERROR,))


def test_headers_over_max_frame_size(gw):
    """A HEADERS frame over 16384 bytes: connection error FRAME_SIZE_ERROR (4.2/3)."""
    c = gw.raw()
    blk = c.block(c.req_headers("/refused", extra=[("x-big", "a" * 17000)]), huffman=False)
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, blk))
    connection_error(gw, c, (FRAME_SIZE_ERROR,))


@pytest.mark.parametrize("ftype,sid,payload", [
    (PING, 0, b"\0" * 7),                      # 6.7/4: PING is 8 bytes
    (WINDOW_UPDATE, 0, b"\0\0\1"),             # 6.9/3: WINDOW_UPDATE is 4 bytes
    (SETTINGS, 0, b"\0\3\0\0\0\1\0"),          # 6.5/3: a multiple of 6
    (RST_STREAM, 1, b"\0\0\0"),                # 6.4/2: RST_STREAM is 4 bytes
], ids=["ping-7", "window_update-3", "settings-7", "rst_stream-3"])
def test_control_frame_bad_length(gw, ftype, sid, payload):
    """Fixed-length frames with another length: FRAME_SIZE_ERROR."""
    c = gw.raw()
    if ftype == RST_STREAM:
        c.start("/slow/300")  # stream 1 is open: the length is the only fault
    c.send(frame(ftype, 0, sid, payload))
    connection_error(gw, c, (FRAME_SIZE_ERROR,))


def test_priority_bad_length(gw):
    """PRIORITY of 4 bytes (5.3.2/? 6.3/2): FRAME_SIZE_ERROR, stream or connection."""
    c = gw.raw()
    c.send(frame(PRIORITY, 0, 1, b"\0\0\0\0"))
    kind, code = c.stream_error(1)
    assert code == FRAME_SIZE_ERROR, (kind, code)
    gw.still_serves(c if kind == "rst" else None)


def test_settings_ack_with_payload(gw):
    """SETTINGS with ACK and a payload: FRAME_SIZE_ERROR (6.5/1)."""
    c = gw.raw()
    c.send(frame(SETTINGS, ACK, 0, struct.pack(">HI", 3, 100)))
    connection_error(gw, c, (FRAME_SIZE_ERROR,))


# ---- 5.1: stream states and identifiers

@pytest.mark.parametrize("case", [
    "data-on-idle", "rst-on-idle", "window-update-on-idle", "continuation-alone",
    "even-stream-id", "headers-then-ping", "continuation-other-stream",
])
def test_stream_state_connection_errors(gw, case):
    """Frames that the stream's state forbids: connection error PROTOCOL_ERROR (h2spec
    5.1/1-3, 5.1.1/1-2, 6.10/2-4)."""
    c = gw.raw()
    hdrs = c.req_headers("/refused")
    if case == "data-on-idle":
        c.send(frame(DATA, END_STREAM, 1, b"x"))
    elif case == "rst-on-idle":
        c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    elif case == "window-update-on-idle":
        c.send(window_update(1, 100))
    elif case == "continuation-alone":
        c.send(frame(CONTINUATION, END_HEADERS, 1, c.block(hdrs)))
    elif case == "even-stream-id":
        c.send(c.headers_frame(2, hdrs))
    elif case == "headers-then-ping":
        c.send(c.headers_frame(1, hdrs, end_headers=False) + ping())
    elif case == "continuation-other-stream":
        blk = c.block(hdrs)
        c.send(frame(HEADERS, END_STREAM, 1, blk[:5]) + frame(CONTINUATION, END_HEADERS, 3,
                                                              blk[5:]))
    connection_error(gw, c, (PROTOCOL_ERROR,))


def test_decreasing_stream_id_is_ignored(gw):
    """HEADERS on a stream id lower than one already used (h2spec 5.1.1/2 wants a
    connection error PROTOCOL_ERROR). nghttp2 ignores such a block when it has no record
    of the stream (it cannot tell a skipped id from a stream it reset, whose late
    frames must be ignored): no answer, nothing forwarded, the connection goes on. Each
    one counts against the connection's reset-and-error budget (test_h2_attacks.py)."""
    c = gw.raw()
    c.send(c.headers_frame(5, c.req_headers("/ok")))
    c.response(5)
    c.send(c.headers_frame(3, c.req_headers("/refused")))
    c.barrier()
    assert 3 not in c.headers and 3 not in c.resets and not c.goaway
    c.next_sid = 7
    gw.still_serves(c)
    gw.never_forwarded()


@pytest.mark.parametrize("what", ["data", "headers"])
def test_half_closed_remote(gw, what):
    """A stream whose request ended (half-closed (remote)) gets DATA or HEADERS:
    STREAM_CLOSED (h2spec 5.1/5-6), and the other streams go on."""
    c = gw.raw()
    sid = c.start("/slow/500")
    if what == "data":
        c.send(frame(DATA, END_STREAM, sid, b"x"))
    else:
        c.send(c.headers_frame(sid, [("x-more", "1")]))
    kind, code = c.stream_error(sid)
    assert code == STREAM_CLOSED, (kind, code, c.kinds())
    gw.still_serves(c if kind == "rst" else None)


def test_data_on_closed_stream(gw):
    """DATA on a stream that ended both ways: STREAM_CLOSED (h2spec 5.1/13)."""
    c = gw.raw()
    sid = c.start("/ok")
    c.response(sid)
    c.send(frame(DATA, END_STREAM, sid, b"x"))
    kind, code = c.stream_error(sid)
    assert code == STREAM_CLOSED, (kind, code, c.kinds())
    gw.still_serves(c if kind == "rst" else None)


def test_concurrent_stream_limit(sluice, backend, pki):
    """More streams than SETTINGS_MAX_CONCURRENT_STREAMS (acknowledged): the extra one is
    refused, never forwarded. RFC 9113 5.1.2 asks for a stream error (PROTOCOL_ERROR or
    REFUSED_STREAM); nghttp2 makes it a connection error PROTOCOL_ERROR once the client
    acknowledged the limit, which h2spec 5.1.2/1 accepts too."""
    gw = Gateway(sluice, backend, pki, lhttp={"http2": {"max_concurrent_streams": 2}})
    c = gw.raw()
    c.read_until(lambda: c.frames, what="the server's SETTINGS")
    slow = [c.start("/slow/400"), c.start("/slow/400")]
    extra = c.start("/refused")
    kind, code = c.stream_error(extra)
    assert code in (REFUSED_STREAM, PROTOCOL_ERROR), (kind, code)
    if kind == "rst":
        for sid in slow:
            assert c.response(sid)[0] == "200"
    gw.still_serves(c if kind == "rst" else None)
    gw.never_forwarded()


# ---- 5.2 / 6.9: flow control

@pytest.mark.parametrize("case,codes", [
    ("zero-increment-connection", (PROTOCOL_ERROR,)),
    ("overflow-connection", (FLOW_CONTROL_ERROR,)),
])
def test_flow_control_connection_errors(gw, case, codes):
    """WINDOW_UPDATE with 0 on the connection (6.9/1), a connection window over 2^31-1
    (6.9.1/2): connection errors."""
    c = gw.raw()
    if case == "zero-increment-connection":
        c.send(window_update(0, 0))
    else:
        c.send(window_update(0, MAX_WINDOW))
    connection_error(gw, c, codes)


@pytest.mark.parametrize("case,codes", [
    ("zero-increment-stream", (PROTOCOL_ERROR,)),
    ("overflow-stream", (FLOW_CONTROL_ERROR,)),
    ("settings-overflow", (FLOW_CONTROL_ERROR,)),
])
def test_flow_control_stream_errors(gw, case, codes):
    """WINDOW_UPDATE with 0 on a stream (6.9/2), a stream window over 2^31-1 (6.9.1/3):
    stream (or connection) errors. A SETTINGS_INITIAL_WINDOW_SIZE that pushes an open
    stream's window over 2^31-1 is a connection error for RFC 9113 6.9.2; nghttp2 resets
    that stream with FLOW_CONTROL_ERROR instead (the other streams go on)."""
    c = gw.raw()
    sid = c.start("/slow/500")
    if case == "settings-overflow":
        c.send(window_update(sid, MAX_WINDOW - 65535) + settings(s4=65536))
    else:
        c.send(window_update(sid, 0 if case == "zero-increment-stream" else MAX_WINDOW))
    kind, code = c.stream_error(sid)
    assert code in codes, (kind, code, c.kinds())
    gw.still_serves(c if kind == "rst" else None)


def test_never_more_data_than_the_window(gw):
    """sluice sends no more DATA than the client's windows allow: nothing at window 0,
    exactly each WINDOW_UPDATE's worth, a SETTINGS_INITIAL_WINDOW_SIZE change applied
    to the open stream (6.9.2/1-2), and the connection window (65,535) caps streams with
    large windows. A PING answered after the DATA shows nothing more was on its way."""
    c = gw.raw(client_settings=settings(s4=0))
    sid = c.start("/big/200000")
    c.read_until(lambda: sid in c.headers, what="the response head")
    c.barrier(b"ping0000")
    assert len(c.data.get(sid, b"")) == 0
    got = lambda: len(c.data.get(sid, b""))  # noqa: E731
    c.send(window_update(sid, 100))
    c.read_until(lambda: got() >= 100, what="100 bytes")
    c.barrier(b"ping0001")
    assert got() == 100
    c.send(settings(s4=1000))  # the stream's window: 0 + (1000 - 0)
    c.read_until(lambda: got() >= 1100, what="1000 more bytes")
    c.barrier(b"ping0002")
    assert got() == 1100
    # the connection window: 65535 - 1100 left; the stream's is made huge
    c.send(window_update(sid, 10_000_000))
    c.read_until(lambda: got() >= 65535, what="the connection window's worth")
    c.barrier(b"ping0003")
    assert got() == 65535
    c.send(window_update(0, 200000))
    assert c.response(sid) == ("200", b"x" * 200000)


# ---- 6.5: SETTINGS

@pytest.mark.parametrize("frame_bytes,codes", [
    (settings(sid=1, s3=100), (PROTOCOL_ERROR,)),          # 6.5/2: on a stream
    (settings(s2=2), (PROTOCOL_ERROR,)),                   # 6.5.2/1: ENABLE_PUSH 2
    (settings(s4=2**31), (FLOW_CONTROL_ERROR,)),           # 6.5.2/2: window over 2^31-1
    (settings(s5=16383), (PROTOCOL_ERROR,)),               # 6.5.2/3: MAX_FRAME_SIZE low
    (settings(s5=2**24), (PROTOCOL_ERROR,)),               # 6.5.2/4: MAX_FRAME_SIZE high
], ids=["stream-id", "enable-push-2", "window-2^31", "frame-size-16383", "frame-size-2^24"])
def test_bad_settings(gw, frame_bytes, codes):
    c = gw.raw()
    c.send(frame_bytes)
    connection_error(gw, c, codes)


# ---- HPACK (RFC 7541): decoding errors are connection errors COMPRESSION_ERROR

def _literal(name):
    return b"\x00" + bytes([len(name)]) + name + b"\x01a"


@pytest.mark.parametrize("block", [
    b"\x80",                                # index 0
    b"\xbe",                                # index 62: past the static table, none dynamic
    b"\x00\x81\xff\x01a",                   # Huffman name: 8 bits of padding
    b"\x00\x84\xff\xff\xff\xff\x01a",       # Huffman name holding EOS
    b"\x3f\xe2\x1f",                        # table size update to 4097 (> 4096)
    b"\x82\x20",                            # table size update after a field
    b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # an index that overflows
], ids=["index-0", "index-62", "huffman-padding", "huffman-eos", "table-size-over",
        "table-size-late", "integer-overflow"])
def test_hpack_errors(gw, block):
    c = gw.raw()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    connection_error(gw, c, (COMPRESSION_ERROR,))


# ---- 8.1: HTTP messages, pseudo-header and field rules (stream errors, never forwarded)

BASE = [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/refused")]


def _without(name):
    return [f for f in BASE if f[0] != name]


MALFORMED = {
    "missing-method": _without(":method"),
    "missing-path": _without(":path"),
    "missing-scheme": _without(":scheme"),
    "empty-path": _without(":path") + [(":path", "")],
    "unknown-pseudo": BASE + [(":foo", "bar")],
    "response-pseudo": BASE + [(":status", "200")],
    "pseudo-after-regular": BASE[:3] + [("x-a", "1"), BASE[3]],
    "duplicate-method": BASE + [(":method", "GET")],
    "duplicate-path": BASE + [(":path", "/refused2")],
    "uppercase-name": BASE + [("X-Upper", "1")],
    "connection": BASE + [("connection", "keep-alive")],
    "keep-alive": BASE + [("keep-alive", "timeout=5")],
    "proxy-connection": BASE + [("proxy-connection", "keep-alive")],
    "transfer-encoding": BASE + [("transfer-encoding", "chunked")],
    "upgrade": BASE + [("upgrade", "websocket")],
    "te-gzip": BASE + [("te", "gzip")],
    "value-lf": BASE + [("x-v", "a\nb")],
    "value-cr": BASE + [("x-v", "a\rb")],
    "value-nul": BASE + [("x-v", "a\0b")],
    "name-space": BASE + [("x y", "1")],
    "host-differs": BASE + [("host", "other.example")],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_reset(gw, case):
    """A malformed request (RFC 9113 8.1.1, 8.2, 8.3): RST_STREAM PROTOCOL_ERROR, counted
    as bad_request, not forwarded; the connection serves the next stream."""
    c = gw.raw()
    hdrs = [(":authority", c.authority) if n == ":authority" else (n, v)
            for n, v in MALFORMED[case]]
    sid = c.new_sid()
    c.send(c.headers_frame(sid, hdrs))
    kind, code = c.stream_error(sid)
    assert (kind, code) == ("rst", PROTOCOL_ERROR), (kind, code, c.kinds())
    gw.still_serves(c)
    gw.never_forwarded()
    assert gw.metric("bad_request") == 1


@pytest.mark.parametrize("case", ["length-mismatch", "trailer-pseudo", "trailer-no-end-stream"])
def test_malformed_body_or_trailers(gw, case):
    """A content-length that the DATA contradicts (8.1.1), a trailer section with a
    pseudo-header or without END_STREAM (8.1): RST_STREAM PROTOCOL_ERROR; the request
    never reaches the backend whole."""
    c = gw.raw()
    sid = c.new_sid()
    extra = [("content-length", "10")] if case == "length-mismatch" else []
    c.send(c.headers_frame(sid, c.req_headers("/refused", "POST", extra), end_stream=False))
    if case == "length-mismatch":
        c.send(frame(DATA, END_STREAM, sid, b"12345"))
    else:
        c.send(frame(DATA, 0, sid, b"12345"))
        trailer = [(":path", "/x")] if case == "trailer-pseudo" else [("x-t", "1")]
        c.send(c.headers_frame(sid, trailer, end_stream=case != "trailer-no-end-stream"))
    kind, code = c.stream_error(sid)
    assert (kind, code) == ("rst", PROTOCOL_ERROR), (kind, code, c.kinds())
    gw.still_serves(c)
    gw.never_forwarded()
