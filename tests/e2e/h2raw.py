"""A raw HTTP/2 client for frame-level tests (test_h2_conformance.py, test_h2_attacks.py):
frames are written as bytes (so that invalid ones can be sent), read back with
`hyperframe`, header blocks encoded and decoded with `hpack`. The `h2` library validates
what it sends and stops at the first error, which these tests must get past."""
import socket
import struct
import time

from hpack import Decoder, Encoder
from hyperframe.frame import Frame

from helpers import scaled
from tls_certs import client_context

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types and flags
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)

# SETTINGS identifiers
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = \
    range(1, 6)


def frame(ftype, flags, sid, payload=b""):
    """The bytes of one frame, whatever its content."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def settings(flags=0, sid=0, **values):
    """A SETTINGS frame; values by identifier: settings(s4=0) sets INITIAL_WINDOW_SIZE."""
    payload = b"".join(struct.pack(">HI", int(k[1:]), v) for k, v in values.items())
    return frame(SETTINGS, flags, sid, payload)


def window_update(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def ping(opaque=b"\0" * 8, flags=0):
    return frame(PING, flags, 0, opaque)


class Raw:
    """One client connection speaking raw frames. `frames` holds every frame received;
    `goaway` the first GOAWAY; `closed` is set once the server closed (EOF or reset).
    The server's SETTINGS are acknowledged as they come."""

    def __init__(self, port, pki=None, client_settings=b"", preface=True, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(scaled(10))
        s.connect(("127.0.0.1", port))
        if pki is not None:
            s = client_context(pki, alpn=["h2"]).wrap_socket(s, server_hostname="a.example.com")
            assert s.selected_alpn_protocol() == "h2"
            self.authority = "a.example.com"
        else:
            self.authority = f"127.0.0.1:{port}"
        self.sock = s
        self.enc, self.dec = Encoder(), Decoder()
        self.buf = bytearray()
        self.frames = []
        self.goaway = None
        self.closed = False
        self.headers, self.data, self.ended, self.resets = {}, {}, set(), {}
        self._block = None  # (stream id, header block so far) while CONTINUATIONs come
        self.next_sid = 1
        if preface:
            self.send(PREFACE + (client_settings or settings()))

    # ---- sending

    def send(self, data):
        self.sock.sendall(data)

    def block(self, hdrs, huffman=True):
        """An HPACK header block of (name, value) pairs, sent as given (no checks)."""
        return self.enc.encode(hdrs, huffman=huffman)

    def req_headers(self, path="/ok", method="GET", extra=(), scheme="http"):
        return [(":method", method), (":scheme", scheme), (":authority", self.authority),
                (":path", path), *extra]

    def headers_frame(self, sid, hdrs, end_stream=True, end_headers=True):
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, sid, self.block(hdrs))

    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        return sid

    def start(self, path="/ok", end_stream=True, extra=(), method="GET"):
        """Sends a request's HEADERS on a new stream; returns its id."""
        sid = self.new_sid()
        self.send(self.headers_frame(sid, self.req_headers(path, method, extra), end_stream))
        return sid

    # ---- receiving

    def _on_frame(self, f):
        self.frames.append(f)
        kind = type(f).__name__
        if kind == "SettingsFrame" and "ACK" not in f.flags:
            try:
                self.send(settings(flags=ACK))
            except OSError:
                pass
        elif kind == "GoAwayFrame" and self.goaway is None:
            self.goaway = f
        elif kind == "RstStreamFrame":
            self.resets[f.stream_id] = f.error_code
        elif kind == "DataFrame":
            self.data.setdefault(f.stream_id, bytearray()).extend(f.data)
        if kind in ("HeadersFrame", "ContinuationFrame"):
            sid, blk = self._block or (f.stream_id, b"")
            blk += f.data
            if "END_HEADERS" in f.flags:
                fields = dict((k.decode(), v.decode()) for k, v in self.dec.decode(blk, raw=True))
                self.headers.setdefault(sid, []).append(fields)
                self._block = None
            else:
                self._block = (sid, blk)
        if kind in ("HeadersFrame", "DataFrame") and "END_STREAM" in f.flags:
            self.ended.add(f.stream_id)

    def recv_once(self, timeout):
        """Reads what arrives within `timeout`; False once the connection is closed."""
        if self.closed:
            return False
        self.sock.settimeout(max(0.01, timeout))
        try:
            d = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except OSError:  # a reset: what was read before it stays in `frames`
            d = b""
        if not d:
            self.closed = True
            return False
        self.buf += d
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(self.buf[9:9 + length]))
            del self.buf[:9 + length]
            self._on_frame(f)
        return True

    def read_until(self, pred, timeout=None, what="a condition"):
        """Reads until pred() is true (returns True) or the connection closes (returns
        pred()); fails after `timeout` seconds."""
        deadline = time.monotonic() + (timeout or scaled(10))
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; frames: {self.kinds()}")
            if not self.recv_once(left):
                return bool(pred())
        return True

    def kinds(self):
        return [(type(f).__name__, f.stream_id) for f in self.frames]

    def connection_error(self):
        """Waits for the end of the connection: the GOAWAY's error code, or None when the
        server closed without one."""
        self.read_until(lambda: self.closed, what="the connection to end")
        return self.goaway.error_code if self.goaway else None

    def stream_error(self, sid):
        """Waits for RST_STREAM on sid or the end of the connection: ("rst", code),
        ("goaway", code) or ("closed", None)."""
        self.read_until(lambda: sid in self.resets or self.goaway or self.closed,
                        what=f"an error on stream {sid}")
        if sid in self.resets:
            return "rst", self.resets[sid]
        if self.goaway:
            return "goaway", self.goaway.error_code
        return "closed", None

    def barrier(self, opaque=b"barrier!"):
        """Sends a PING and reads until its ACK: everything the server sent before
        answering it has been read."""
        self.send(ping(opaque))
        self.read_until(lambda: any(type(f).__name__ == "PingFrame" and "ACK" in f.flags and
                                    f.opaque_data == opaque for f in self.frames),
                        what="the PING ACK")

    def response(self, sid):
        """Waits for stream sid to end; (status, body). Gives back the window it used."""
        self.read_until(lambda: sid in self.ended or sid in self.resets or self.closed,
                        what=f"the response on stream {sid}")
        assert sid in self.ended, (sid, self.resets, self.goaway, self.kinds())
        body = bytes(self.data.get(sid, b""))
        return self.headers[sid][0][":status"], body

    def get(self, path="/ok"):
        """A GET on a new stream; (status, body)."""
        return self.response(self.start(path))

    def close(self):
        self.sock.close()
