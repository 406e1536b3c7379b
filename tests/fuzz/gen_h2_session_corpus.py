#!/usr/bin/python3
"""Writes the seed corpus of fuzz_h2_session (tests/fuzz/corpus/fuzz_h2_session/): valid
HTTP/2 client connections made with the Python h2 library (hyperframe for the frames
h2 will not send), in the harness's input format (fuzz_h2_session.c):

    flags (1 byte: 1 the harness sends the preface, 2 a graceful stop at the end, 4 all
    connections closed at once, 8 deadlines re-armed after each write, 16 a small send
    buffer on sluice's end of the socket)
    | 4 response kinds | client bytes, "@@TURN@@" between writes
    [| "@@RESP@@" raw response for kind 15]

Run from anywhere: /usr/bin/python3 tests/fuzz/gen_h2_session_corpus.py (Debian's
python3-h2; the output is committed, so the fuzz targets do not need Python)."""
import os

import h2.config
import h2.connection
import h2.settings
from hyperframe.frame import (DataFrame, GoAwayFrame, HeadersFrame, PingFrame, PriorityFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_h2_session")
TURN = b"@@TURN@@"
RESP = b"@@RESP@@"
AUTH = "fuzz.example"


def kinds(*k):
    k = list(k) + [0] * (4 - len(k))
    return bytes(k[:4])


class C:
    """A client connection whose output is collected turn by turn."""

    def __init__(self, validate=True):
        cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate,
                                        header_encoding="utf-8")
        self.c = h2.connection.H2Connection(cfg)
        self.c.initiate_connection()
        self.turns = [b""]

    def flush(self):
        self.turns[-1] += self.c.data_to_send()

    def raw(self, b):
        self.flush()
        self.turns[-1] += b

    def turn(self):
        self.flush()
        self.turns.append(b"")

    def req(self, path, method="GET", body=None, extra=(), end=True, sid=None):
        sid = sid or self.c.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", AUTH), (":path", path),
                *extra]
        self.c.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.c.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def bytes(self):
        self.flush()
        return TURN.join(t for t in self.turns)


def write(name, flags, k, data, raw=None):
    blob = bytes([flags]) + k + data + ((RESP + raw) if raw is not None else b"")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)


def main():
    os.makedirs(OUT, exist_ok=True)

    c = C()
    c.req("/")
    write("get_length", 0, kinds(0), c.bytes())

    c = C()
    c.req("/", extra=[("te", "trailers"), ("accept", "*/*")])
    write("get_chunked_trailers", 0, kinds(1), c.bytes())

    c = C()
    c.req("/upload", "POST", body=b"x" * 100,
          extra=[("content-length", "100"), ("expect", "100-continue")])
    write("post_length_interim", 0, kinds(2), c.bytes())

    c = C()
    sid = c.req("/upload", "POST", end=False, extra=[("content-type", "text/plain")])
    c.c.send_data(sid, b"first part ")
    c.turn()
    c.c.send_data(sid, b"second part", end_stream=True)
    write("post_chunked_in_turns", 0, kinds(1), c.bytes())

    c = C()
    c.req("/", "HEAD")
    c.req("/nothing")
    c.req("/cached", extra=[("if-none-match", '"x"')])
    write("head_204_304", 0, kinds(6, 3, 4), c.bytes())

    c = C()
    c.req("/stream")
    write("close_delimited", 0, kinds(5), c.bytes())

    # a body larger than the client's window: WINDOW_UPDATEs in the next turns
    c = C()
    sid = c.req("/big")
    c.turn()
    c.raw(WindowUpdateFrame(0, window_increment=1 << 20).serialize())
    c.raw(WindowUpdateFrame(sid, window_increment=1 << 20).serialize())
    c.turn()
    c.raw(WindowUpdateFrame(sid, window_increment=1 << 20).serialize())
    write("big_body_window", 0, kinds(6 | (6 << 5)), c.bytes())

    c = C()
    sid = c.req("/chunks")
    c.turn()
    c.raw(WindowUpdateFrame(0, window_increment=1 << 20).serialize())
    c.raw(WindowUpdateFrame(sid, window_increment=1 << 20).serialize())
    write("big_chunked_window", 0, kinds(11 | (7 << 5)), c.bytes())

    # extended CONNECT (RFC 8441), after the server's SETTINGS allowed it
    c = C(validate=False)
    c.c.local_settings = h2.settings.Settings(client=True)
    c.raw(b"")
    sid = 1
    c.raw(HeadersFrame(sid, flags=["END_HEADERS"],
                       data=c.c.encoder.encode([(":method", "CONNECT"), (":protocol", "websocket"),
                                                (":scheme", "http"), (":authority", AUTH),
                                                (":path", "/ws"),
                                                ("sec-websocket-version", "13")])).serialize())
    c.turn()
    c.raw(DataFrame(sid, data=b"\x81\x85\x00\x00\x00\x00hello").serialize())
    c.turn()
    c.raw(DataFrame(sid, data=b"", flags=["END_STREAM"]).serialize())
    write("websocket", 0, kinds(7), c.bytes())

    c = C()
    for p in ("/a", "/b", "/c", "/d", "/e"):
        c.req(p)
    c.raw(RstStreamFrame(5, error_code=8).serialize())
    write("five_streams_one_reset", 0, kinds(0, 1, 12, 13), c.bytes())

    c = C()
    c.req("/respond?x=1")
    c.req("/redirect/old?q")
    c.req("/hdr/x", extra=[("cookie", "a=1"), ("cookie", "b=2"), ("x-forwarded-for", "1.2.3.4")])
    write("routes", 0, kinds(13), c.bytes())

    c = C()
    c.req("/raw")
    write("raw_response", 0, kinds(15),
          c.bytes(), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"3\r\nabc\r\n0\r\nX-Raw: yes\r\n\r\n")

    # rapid reset: more resets than the glitch budget allows (GOAWAY ENHANCE_YOUR_CALM)
    c = C()
    for _ in range(110):
        sid = c.req("/")
        c.c.reset_stream(sid)
        c.flush()
    write("rapid_reset", 0, kinds(0), c.bytes())

    c = C()
    c.raw(PingFrame(0, opaque_data=b"12345678").serialize())
    c.raw(PriorityFrame(1, depends_on=0, stream_weight=10).serialize())
    c.raw(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 100,
                                     SettingsFrame.MAX_FRAME_SIZE: 16384}).serialize())
    c.req("/small-window")
    c.turn()
    c.raw(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
    write("ping_settings_goaway", 0, kinds(6), c.bytes())

    c = C()
    c.req("/a")
    c.req("/b")
    c.req("/c")
    c.req("/d")
    write("broken_responses", 0, kinds(8, 9, 10, 14), c.bytes())

    # flags bit 1: a graceful stop after the client's bytes, streams still in progress
    c = C()
    c.req("/a")
    c.req("/big")
    c.req("/upload", "POST", end=False)
    write("graceful_stop", 2, kinds(1, 6 | (7 << 5), 0), c.bytes())

    # flags bit 2: every connection closed at once mid-exchange; bit 3: deadlines re-armed
    c = C()
    sid = c.req("/upload", "POST", end=False)
    c.c.send_data(sid, b"part")
    c.req("/big")
    c.turn()
    c.c.send_data(sid, b"more")
    write("shutdown_now_rearm", 4 | 8, kinds(6 | (5 << 5), 6 | (7 << 5)), c.bytes())

    # flags bit 4: sluice's socket has a small send buffer (short writes, EPOLLOUT)
    c = C()
    for p in ("/a", "/b", "/c"):
        sid = c.req(p)
        c.raw(WindowUpdateFrame(sid, window_increment=1 << 20).serialize())
    c.raw(WindowUpdateFrame(0, window_increment=1 << 22).serialize())
    write("small_send_buffer", 16, kinds(6 | (7 << 5), 11 | (7 << 5), 6 | (6 << 5)), c.bytes())

    # what h2_req refuses after nghttp2's checks passed: a second host field
    c = C(validate=False)
    c.req("/", extra=[("host", AUTH), ("host", AUTH)])
    c.req("/next")
    write("two_hosts", 0, kinds(0), c.bytes())

    # a header list past max_header_list_size through HPACK's dynamic table: one indexed
    # literal, then 1-byte references to it
    c = C(validate=False)
    c.flush()
    lit = b"\x40\x03x-a\x7f\x81\x01" + b"v" * 256  # literal with incremental indexing
    block = b"\x82\x86\x84" + b"\x41\x0c" + AUTH.encode() + lit + b"\xbe" * 200
    c.raw(HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"], data=block).serialize())
    write("hpack_amplified", 0, kinds(0), c.bytes())

    # malformed requests that nghttp2's HTTP messaging checks reset
    c = C(validate=False)
    c.req("/", extra=[("connection", "close")])
    c.req("/", extra=[("te", "gzip")])
    c.req("/", extra=[("x-ws", " v ")])
    c.req("/ok")
    write("malformed_requests", 0, kinds(0), c.bytes())

    # request trailers (not forwarded)
    c = C()
    sid = c.req("/upload", "POST", end=False)
    c.c.send_data(sid, b"body")
    c.c.send_headers(sid, [("x-trailer", "t")], end_stream=True)
    c.flush()
    write("request_trailers", 0, kinds(1), c.bytes())

    # more SETTINGS in one read than nghttp2 queues acknowledgements for (flood)
    c = C()
    c.raw(SettingsFrame(0).serialize() * 1500)
    write("settings_flood", 0, kinds(0), c.bytes())

    # the harness sends the preface and an empty SETTINGS; the input only frames
    enc = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)).encoder
    hb = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", AUTH),
                     (":path", "/")])
    frames = HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"], data=hb).serialize()
    write("harness_preface", 1, kinds(0), frames)


if __name__ == "__main__":
    main()
