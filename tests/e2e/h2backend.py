"""A recording HTTP/2 server for the tests of `http.version: 2` backends, built on the
`h2` library: h2c (prior knowledge) or TLS with ALPN h2, one thread per connection.

It keeps every request (pseudo-headers, fields, body, trailers) and counts connections
and the most streams it saw open at once on one connection. Paths:
  /grpc.Echo/Unary, /grpc.Echo/Bidi   gRPC-shaped: length-prefixed messages echoed back,
      Unary after the request ended, Bidi each message as soon as it is complete; then
      trailers grpc-status: 0, grpc-message: ok
  /grpc.Echo/Fail                     trailers-only: HEADERS with grpc-status 12, ended
  /chunked                            no content-length, 3 DATA frames, trailer x-sum
  /big?n=N                            N bytes of a fixed pattern, with content-length
  /reset                              RST_STREAM (INTERNAL_ERROR) instead of a response
  /slow?ms=N                          the default answer after N ms
  anything else                       200, JSON of what was received, content-length
"""
import hashlib
import json
import socket
import ssl
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PATTERN = bytes(range(256)) * 256


def pattern(n):
    out = bytearray()
    while len(out) < n:
        out += PATTERN[: n - len(out)]
    return bytes(out)


def grpc_frames(buf):
    """Splits complete gRPC length-prefixed messages off buf: (messages, rest)."""
    msgs = []
    while len(buf) >= 5:
        size = int.from_bytes(buf[1:5], "big")
        if len(buf) < 5 + size:
            break
        msgs.append(bytes(buf[5:5 + size]))
        buf = buf[5 + size:]
    return msgs, buf


def grpc_frame(msg):
    return b"\x00" + len(msg).to_bytes(4, "big") + msg


class Stream:
    def __init__(self, sid, headers):
        self.sid = sid
        self.headers = headers
        self.pseudo = {k: v for k, v in headers if k.startswith(":")}
        self.body = bytearray()
        self.trailers = None
        self.pending = b""  # bytes to send (flow control)
        self.end_after = None  # trailers to send after pending (list) or True (end)
        self.grpc_buf = b""
        self.started = False


class H2Backend:
    def __init__(self, tls_ctx=None, max_streams=None, alpn=("h2",)):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.closed_connections = 0
        self.max_open = 0
        self.tls_ctx = tls_ctx
        self.max_streams = max_streams
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve_safe, args=(c,), daemon=True)
            t.start()

    def _serve_safe(self, c):
        try:
            if self.tls_ctx is not None:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            self._serve(c)
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            pass
        finally:
            with self.lock:
                self.closed_connections += 1
            try:
                c.close()
            except OSError:
                pass

    def _serve(self, c):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        if self.max_streams:
            conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                                  self.max_streams})
        c.sendall(conn.data_to_send())
        streams = {}
        timers = []  # (when, stream)
        while True:
            c.settimeout(0.01 if timers else 1.0)
            try:
                data = c.recv(65536)
                if not data:
                    return
            except socket.timeout:
                data = None
                if self.stopping:
                    return
            if data:
                for ev in conn.receive_data(data):
                    self._event(conn, streams, timers, ev)
            now = time.monotonic()
            for when, st in list(timers):
                if when <= now:
                    timers.remove((when, st))
                    self._answer_default(conn, st)
            self._send_pending(conn, streams)
            out = conn.data_to_send()
            if out:
                c.sendall(out)

    def _event(self, conn, streams, timers, ev):
        if isinstance(ev, h2.events.RequestReceived):
            st = Stream(ev.stream_id, ev.headers)
            streams[ev.stream_id] = st
            with self.lock:
                open_now = sum(1 for s in streams.values() if s.end_after is not True)
                self.max_open = max(self.max_open, open_now)
            path = st.pseudo.get(":path", "")
            if path.startswith("/grpc.Echo/Bidi"):
                conn.send_headers(st.sid, [(":status", "200"), ("content-type", "application/grpc")])
                st.started = True
        elif isinstance(ev, h2.events.DataReceived):
            st = streams.get(ev.stream_id)
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if st is None:
                return
            st.body += ev.data
            if st.pseudo.get(":path", "").startswith("/grpc.Echo/Bidi"):
                st.grpc_buf += ev.data
                msgs, st.grpc_buf = grpc_frames(st.grpc_buf)
                for m in msgs:
                    st.pending += grpc_frame(b"echo:" + m)
        elif isinstance(ev, h2.events.TrailersReceived):
            st = streams.get(ev.stream_id)
            if st is not None:
                st.trailers = ev.headers
        elif isinstance(ev, h2.events.StreamEnded):
            st = streams.get(ev.stream_id)
            if st is not None:
                self._record(st)
                self._respond(conn, st, timers)
        elif isinstance(ev, h2.events.StreamReset):
            streams.pop(ev.stream_id, None)

    def _record(self, st):
        with self.lock:
            self.requests.append({
                "pseudo": dict(st.pseudo),
                "headers": [(k, v) for k, v in st.headers if not k.startswith(":")],
                "body": bytes(st.body),
                "trailers": st.trailers,
            })

    def _respond(self, conn, st, timers):
        path = st.pseudo.get(":path", "")
        url = urllib.parse.urlsplit(path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/grpc.Echo/Unary":
            msgs, _ = grpc_frames(bytes(st.body))
            conn.send_headers(st.sid, [(":status", "200"), ("content-type", "application/grpc")])
            st.pending = b"".join(grpc_frame(b"echo:" + m) for m in msgs)
            st.end_after = [("grpc-status", "0"), ("grpc-message", "ok")]
        elif url.path == "/grpc.Echo/Bidi":
            st.end_after = [("grpc-status", "0"), ("grpc-message", "ok")]
        elif url.path == "/grpc.Echo/Fail":
            conn.send_headers(st.sid, [(":status", "200"), ("content-type", "application/grpc"),
                                       ("grpc-status", "12"), ("grpc-message", "unimplemented")],
                              end_stream=True)
            st.end_after = True
        elif url.path == "/chunked":
            conn.send_headers(st.sid, [(":status", "200"), ("content-type", "text/plain")])
            st.pending = b"one,two,three"
            st.end_after = [("x-sum", "13")]
        elif url.path == "/big":
            n = int(q.get("n", "0"))
            conn.send_headers(st.sid, [(":status", "200"), ("content-length", str(n))])
            st.pending = pattern(n)
            st.end_after = []
        elif url.path == "/reset":
            conn.reset_stream(st.sid, error_code=2)
            st.end_after = True
        elif url.path == "/slow":
            timers.append((time.monotonic() + int(q.get("ms", "100")) / 1000, st))
        else:
            self._answer_default(conn, st)

    def _answer_default(self, conn, st):
        body = json.dumps({
            "pseudo": st.pseudo,
            "headers": [[k, v] for k, v in st.headers if not k.startswith(":")],
            "body_len": len(st.body),
            "body_sha256": hashlib.sha256(bytes(st.body)).hexdigest(),
            "trailers": st.trailers,
        }).encode()
        conn.send_headers(st.sid, [(":status", "200"), ("content-type", "application/json"),
                                   ("content-length", str(len(body)))])
        st.pending = body
        st.end_after = []

    def _send_pending(self, conn, streams):
        for sid, st in list(streams.items()):
            if st.end_after is True:
                streams.pop(sid, None)
                continue
            while st.pending:
                try:
                    window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                except h2.exceptions.StreamClosedError:
                    streams.pop(sid, None)
                    break
                if window <= 0:
                    break
                n = min(window, len(st.pending))
                conn.send_data(sid, st.pending[:n])
                st.pending = st.pending[n:]
            if not st.pending and st.end_after is not None and sid in streams:
                if st.end_after:
                    conn.send_headers(sid, st.end_after, end_stream=True)
                else:
                    conn.end_stream(sid)
                st.end_after = True
                streams.pop(sid, None)  # closed on our side: no longer counted as open
