"""HTTP/2 to clients: https listeners with ALPN h2 and http listeners with h2c prior
knowledge (shared/spec/http.md "Protocols"). Each stream is a request of the HTTP/1.1
engine (src/http/h2_conn.c); the recording backend shows what the server got.

Clients: curl, h2load, and the Python `h2` library for frame-level control."""
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.settings

from helpers import free_port, l4_config, scaled, wait_for
from tls_certs import cert_entry, client_context, pki  # noqa: F401


def config(pki, https_port, h2c_port, servers, admin_port=None, lhttp=None, routes=None):
    be = {"name": "app", "protocol": "http", "servers": [{"address": a} for a in servers]}
    tls_l = {"name": "web", "bind": f"127.0.0.1:{https_port}", "protocol": "https",
             "backend": "app", "tls": {"certificates": cert_entry(pki.a_ec)}}
    clear = {"name": "clear", "bind": f"127.0.0.1:{h2c_port}", "protocol": "http",
             "backend": "app", "http": {"h2c": True, **(lhttp or {})}}
    if lhttp:
        tls_l["http"] = dict(lhttp)
    if routes:
        tls_l["routes"] = routes
        clear["routes"] = routes
    top = {"admin": {"bind": f"127.0.0.1:{admin_port}"}} if admin_port else {}
    return l4_config([tls_l, clear], [be], workers=1, **top)


class Client:
    """An HTTP/2 client connection (TLS with ALPN h2, or h2c prior knowledge) driven by
    the h2 library; collects events per stream."""

    def __init__(self, port, pki=None, validate=True):
        raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        if pki is not None:
            ctx = client_context(pki, alpn=["h2"])
            self.sock = ctx.wrap_socket(raw, server_hostname="a.example.com")
            assert self.sock.selected_alpn_protocol() == "h2"
            self.authority = "a.example.com"
        else:
            self.sock = raw
            self.authority = f"127.0.0.1:{port}"
        cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate,
                                        header_encoding="utf-8")
        self.c = h2.connection.H2Connection(cfg)
        self.c.initiate_connection()
        self.flush()
        self.data, self.headers, self.trailers, self.ended, self.reset = {}, {}, {}, set(), {}
        self.terminated = None
        self.remote_settings = {}

    def flush(self):
        out = self.c.data_to_send()
        if out:
            self.sock.sendall(out)

    def request(self, path, method="GET", body=None, extra=(), end=True):
        sid = self.c.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https"), (":authority", self.authority),
                (":path", path), *extra]
        self.c.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        off = 0
        while off < len(body):
            window = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size)
            if window <= 0:
                self.pump(until=lambda: self.c.local_flow_control_window(sid) > 0)
                continue
            n = min(window, len(body) - off)
            self.c.send_data(sid, body[off:off + n])
            off += n
            self.flush()
        if end:
            self.c.end_stream(sid)
            self.flush()

    def pump(self, until, timeout=None):
        deadline = time.monotonic() + (timeout or scaled(20))
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting on the HTTP/2 connection")
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            d = self.sock.recv(65536)
            if not d:
                self.terminated = self.terminated or "eof"
                return
            for ev in self.c.receive_data(d):
                self.on_event(ev)
            self.flush()

    def on_event(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self.headers[ev.stream_id] = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.data.setdefault(ev.stream_id, bytearray()).extend(ev.data)
            self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            self.trailers[ev.stream_id] = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self.ended.add(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self.reset[ev.stream_id] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value

    def wait(self, sids):
        self.pump(lambda: all(s in self.ended or s in self.reset for s in sids))

    def close(self):
        try:
            self.c.close_connection()
            self.flush()
        except OSError:
            pass
        self.sock.close()


def dechunk(raw):
    """The data of a chunked body (the recording backend keeps the framing)."""
    out, pos = bytearray(), 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return bytes(out)
        out += raw[pos:pos + size]
        pos += size + 2


def start(sluice, backend, pki, **kw):
    b = backend()
    hp, cp = free_port(), free_port()
    s = sluice(config(pki, hp, cp, [b.address], **kw))
    return s, b, hp, cp


def test_curl_h2_over_tls_and_h2c(sluice, backend, pki):
    """curl --http2 (ALPN) and --http2-prior-knowledge (h2c) get their answers over
    HTTP/2; the access log says HTTP/2 and alpn h2; the server got HTTP/1.1 with Host."""
    s, b, hp, cp = start(sluice, backend, pki)
    for url, args in ((f"https://a.example.com:{hp}/tls", ["--http2", "--cacert", pki.root.cert,
                                                            "--resolve",
                                                            f"a.example.com:{hp}:127.0.0.1"]),
                      (f"http://127.0.0.1:{cp}/clear", ["--http2-prior-knowledge"])):
        r = subprocess.run(["curl", "-sS", *args, "-w", "\n%{http_code} %{http_version}", url],
                           capture_output=True, text=True, timeout=scaled(10))
        assert r.returncode == 0, r.stderr
        path = url.rsplit("/", 1)[1]
        assert r.stdout == f"path=/{path} body=0\n\n200 2", r.stdout
    heads = [r.head.decode("latin-1") for r in b.requests]
    assert heads[0].startswith("GET /tls HTTP/1.1\r\nHost: a.example.com:")
    assert heads[1].startswith(f"GET /clear HTTP/1.1\r\nHost: 127.0.0.1:{cp}\r\n")
    logs = s.access_log(count=2)
    assert [e["protocol"] for e in logs] == ["HTTP/2", "HTTP/2"]
    assert logs[0]["alpn"] == "h2" and logs[0]["listener"] == "web"
    assert "alpn" not in logs[1] and logs[1]["listener"] == "clear"


def test_concurrent_streams_byte_exact(sluice, backend, pki):
    """30 streams at once on one connection: downloads of many sizes, uploads with and
    without content-length (chunked to the server), each answer on its own stream."""
    s, b, hp, cp = start(sluice, backend, pki)
    c = Client(hp, pki)
    sizes = [0, 1, 100, 16383, 16384, 16385, 65535, 65536, 200000, 1 << 20]
    down = {c.request(f"/big/{n}"): n for n in sizes * 2}
    up = {}
    for i, n in enumerate([0, 10, 70000, 300000, 5, 100000]):
        body = bytes((i + j) % 251 for j in range(n))
        extra = [("content-length", str(n))] if i % 2 else []
        up[c.request(f"/up{i}", method="POST", body=body, extra=extra)] = (i, body)
    c.wait(list(down) + list(up))
    assert not c.reset
    for sid, n in down.items():
        assert c.headers[sid][":status"] == "200"
        assert bytes(c.data.get(sid, b"")) == b"x" * n, (sid, n)
    got = {r.target: r for r in b.requests}
    for sid, (i, body) in up.items():
        r = got[f"/up{i}"]
        head = r.head.decode("latin-1").lower()
        # the backend answers with the size of the body bytes it read, framing included
        assert bytes(c.data[sid]) == f"path=/up{i} body={len(r.body)}\n".encode()
        if i % 2:
            assert f"content-length: {len(body)}" in head and r.body == body
        else:
            assert "transfer-encoding: chunked" in head and dechunk(r.body) == body
    c.close()


def test_request_fields_translated(sluice, backend, pki):
    """Cookie crumbs are joined, TE: trailers is not sent to an HTTP/1.1 server, the
    request id is added, the response's hop-by-hop fields are not sent to the client."""
    s, b, hp, cp = start(sluice, backend, pki)
    c = Client(cp)
    sid = c.request("/f", extra=[("cookie", "a=1"), ("x-one", "1"), ("cookie", "b=2"),
                                 ("te", "trailers"), ("user-agent", "h2-test")])
    c.wait([sid])
    head = b.requests[0].head.decode("latin-1")
    assert "\r\ncookie: a=1; b=2\r\n" in head, head
    assert "\r\nte:" not in head.lower()
    assert "\r\nx-one: 1\r\n" in head and "\r\nX-Request-Id: " in head
    hdrs = c.headers[sid]
    assert "connection" not in hdrs and "keep-alive" not in hdrs
    assert hdrs[":status"] == "200" and hdrs["content-length"] == str(len(c.data[sid]))
    c.close()


def test_trailers_pass(sluice, backend, pki):
    """A chunked response with a trailer field: DATA, then HEADERS with the trailer."""
    s, b, hp, cp = start(sluice, backend, pki)
    c = Client(hp, pki)
    sid = c.request("/chunked")
    c.wait([sid])
    assert bytes(c.data[sid]) == b"hello world"
    assert c.trailers[sid] == {"x-trailer": "t"}
    c.close()


def test_malformed_requests_are_reset_not_forwarded(sluice, backend, pki):
    """Fields HTTP/2 forbids (a connection-specific field, TE other than trailers, an
    uppercase name) reset the stream (PROTOCOL_ERROR, counted as bad_request); nothing
    reaches the server and the connection goes on serving."""
    b = backend()
    hp, cp, admin = free_port(), free_port(), free_port()
    sluice(config(pki, hp, cp, [b.address], admin_port=admin))
    c = Client(cp, validate=False)
    bad = [c.request("/a", extra=[("connection", "close")]),
           c.request("/b", extra=[("te", "gzip")]),
           c.request("/c", extra=[("x-bad", "a\tb "), ])]
    c.wait(bad)
    assert set(c.reset) == set(bad), c.reset
    ok = c.request("/ok")
    c.wait([ok])
    assert c.headers[ok][":status"] == "200"
    assert [r.target for r in b.requests] == ["/ok"]
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                  timeout=scaled(5)).read().decode()
    assert 'sluice_http_errors_total{listener="clear",reason="bad_request"} 3' in text
    c.close()


def test_settings_and_streams_gauge(sluice, backend, pki):
    """The server's SETTINGS carry the configured limits and the extended CONNECT
    setting; sluice_http2_streams_active counts open streams and returns to 0."""
    b = backend()
    hp, cp, admin = free_port(), free_port(), free_port()
    sluice(config(pki, hp, cp, [b.address], admin_port=admin,
                  lhttp={"http2": {"max_concurrent_streams": 7, "initial_window_size": "128k",
                                   "max_header_list_size": "16k"}}))
    c = Client(hp, pki)
    c.pump(lambda: c.remote_settings)
    st = c.remote_settings
    assert st[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7
    assert st[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 128 * 1024
    assert st[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == 16 * 1024
    assert st[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    slow = c.request("/slow/700")

    def gauge():
        text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                      timeout=scaled(5)).read().decode()
        for line in text.splitlines():
            if line.startswith('sluice_http2_streams_active{listener="web"}'):
                return int(line.split()[-1])
    wait_for(lambda: gauge() == 1, scaled(5), what="one stream open")
    c.wait([slow])
    wait_for(lambda: gauge() == 0, scaled(5), what="no stream open")
    c.close()


def test_graceful_stop_sends_goaway_and_finishes_streams(sluice, backend, pki):
    """SIGTERM: the client gets GOAWAY (NO_ERROR, naming the stream in progress as
    processed) and that request still completes; then the connection closes. Read as
    raw frames: the h2 library stops reading frames after a GOAWAY."""
    from hyperframe.frame import Frame
    s, b, hp, cp = start(sluice, backend, pki)
    c = Client(cp)
    sid = c.request("/slow/600")
    wait_for(lambda: b.requests or None, scaled(5), interval=0.01, what="request at the server")
    s.signal(signal.SIGTERM)
    raw = bytearray()
    c.sock.settimeout(scaled(10))
    while True:
        d = c.sock.recv(65536)
        if not d:
            break
        raw += d
    frames, pos = [], 0
    while pos + 9 <= len(raw):
        f, length = Frame.parse_frame_header(memoryview(raw[pos:pos + 9]))
        f.parse_body(memoryview(raw[pos + 9:pos + 9 + length]))
        frames.append(f)
        pos += 9 + length
    kinds = [(type(f).__name__, f.stream_id) for f in frames]
    goaway = [f for f in frames if type(f).__name__ == "GoAwayFrame"]
    assert goaway and goaway[0].error_code == 0 and goaway[0].last_stream_id >= sid, kinds
    assert ("HeadersFrame", sid) in kinds, kinds
    data = b"".join(f.data for f in frames if type(f).__name__ == "DataFrame" and f.stream_id == sid)
    assert data == b"path=/slow/600 body=0\n"
    assert kinds.index(("HeadersFrame", sid)) > kinds.index(("GoAwayFrame", 0)), kinds
    assert s.wait_exit(scaled(10)) == 0


def test_websocket_over_http2(sluice, backend, pki):
    """RFC 8441: an extended CONNECT with :protocol websocket becomes an HTTP/1.1 Upgrade
    to the server; on its 101 the stream answers 200 and carries the bytes both ways."""
    s, b, hp, cp = start(sluice, backend, pki)
    c = Client(hp, pki)
    c.pump(lambda: c.remote_settings)
    sid = c.c.get_next_available_stream_id()
    c.c.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                           (":scheme", "https"), (":path", "/ws"),
                           (":authority", "a.example.com"), ("sec-websocket-version", "13")])
    c.flush()
    c.pump(lambda: sid in c.headers)
    assert c.headers[sid][":status"] == "200"
    payload = bytes(range(256)) * 300
    c.send_body(sid, payload, end=False)
    c.pump(lambda: len(c.data.get(sid, b"")) >= len(payload))
    assert bytes(c.data[sid]) == payload
    head = b.requests[0].head.decode("latin-1")
    assert head.startswith("GET /ws HTTP/1.1\r\n")
    assert "\r\nUpgrade: websocket\r\n" in head and "\r\nSec-WebSocket-Key: " in head
    c.close()
    e = s.access_log(count=1)[0]
    assert e["termination"] == "upgraded" and e["protocol"] == "HTTP/2"


def test_h2load_short_load(sluice, backend, pki):
    """h2load: 2,000 requests over 4 connections with 10 streams each, all 2xx."""
    s, b, hp, cp = start(sluice, backend, pki)
    for url in (f"https://127.0.0.1:{hp}/load", f"http://127.0.0.1:{cp}/load"):
        r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", url],
                           capture_output=True, text=True, timeout=scaled(60))
        assert "2000 succeeded, 0 failed, 0 errored" in r.stdout, r.stdout
        assert "status codes: 2000 2xx" in r.stdout, r.stdout


def test_upgrade_h2c_header_is_answered_as_http11(sluice, backend, pki):
    """An HTTP/1.1 request with Upgrade: h2c is served as HTTP/1.1; the upgrade is not
    forwarded (spec: only prior knowledge starts h2c)."""
    s, b, hp, cp = start(sluice, backend, pki)
    sock = socket.create_connection(("127.0.0.1", cp), timeout=scaled(5))
    sock.sendall(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    assert buf.startswith(b"HTTP/1.1 200 ")
    sock.close()
    head = b.requests[0].head.decode("latin-1").lower()
    assert "upgrade" not in head and "http2-settings" not in head


def test_tls_h2_needs_no_ssl_module_tricks(pki):
    """Sanity of the test client: the ssl module can offer h2 (else the tests above would
    not test what they claim)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2"])


def test_rapid_reset_costs_the_client_its_connection(sluice, backend, pki):
    """CVE-2023-44487: a client that opens and resets streams as fast as it can. Past the
    budget (2 x max_concurrent_streams, at least 100, resets and stream errors per 10 s)
    sluice sends GOAWAY ENHANCE_YOUR_CALM and closes; counted as http2_abuse and logged;
    a well-behaved connection is served right after."""
    b = backend()
    hp, cp, admin = free_port(), free_port(), free_port()
    s = sluice(config(pki, hp, cp, [b.address], admin_port=admin,
                      lhttp={"http2": {"max_concurrent_streams": 10}}))
    c = Client(cp)
    for _ in range(150):  # all frames in one write: sluice may close before a second one
        sid = c.c.get_next_available_stream_id()
        c.c.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                               (":authority", c.authority), (":path", "/slow/1000")])
        c.c.reset_stream(sid)
    try:
        c.flush()
        c.pump(lambda: c.terminated is not None, timeout=scaled(10))
    except (ConnectionResetError, BrokenPipeError):
        pass  # the GOAWAY was read before the reset, or the assertion below says so
    assert isinstance(c.terminated, h2.events.ConnectionTerminated), c.terminated
    assert c.terminated.error_code == 11  # ENHANCE_YOUR_CALM
    c.sock.close()
    wait_for(lambda: "more than 100 stream resets and errors" in s.stderr(), scaled(5),
             what="the warning")
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                  timeout=scaled(5)).read().decode()
    assert 'sluice_http_errors_total{listener="clear",reason="http2_abuse"} 1' in text
    ok = Client(cp)
    sid = ok.request("/after")
    ok.wait([sid])
    assert ok.headers[sid][":status"] == "200"
    ok.close()


def test_request_trailers(sluice, backend, pki):
    """Request trailers (a HEADERS frame ending the stream after the body) go to the
    HTTP/1.1 server as chunked trailer fields when the body goes chunked (no
    content-length), also with no DATA at all; with a content-length the body is not
    chunked and the trailers are dropped (as HAProxy and nginx do); a trailer section
    with a field that frames or routes a message (content-length, host, te,
    connection-specific) resets the stream and the request never reaches the server
    whole."""
    b = backend()
    hp, cp, admin = free_port(), free_port(), free_port()
    sluice(config(pki, hp, cp, [b.address], admin_port=admin))
    c = Client(hp, pki, validate=False)
    base = [(":method", "POST"), (":scheme", "https"), (":authority", c.authority)]
    chunked = c.c.get_next_available_stream_id()
    c.c.send_headers(chunked, base + [(":path", "/t-chunked")])
    c.c.send_data(chunked, b"hello")
    c.c.send_headers(chunked, [("x-checksum", "abc"), ("grpc-status", "0")], end_stream=True)
    c.flush()
    nodata = c.c.get_next_available_stream_id()
    c.c.send_headers(nodata, base + [(":path", "/t-nodata")])
    c.c.send_headers(nodata, [("x-only", "1")], end_stream=True)
    c.flush()
    sized = c.c.get_next_available_stream_id()
    c.c.send_headers(sized, base + [(":path", "/t-sized"), ("content-length", "5")])
    c.c.send_data(sized, b"hello")
    c.c.send_headers(sized, [("x-dropped", "1")], end_stream=True)
    c.flush()
    c.wait([chunked, nodata, sized])
    assert not c.reset, c.reset
    got = {r.target: r for r in b.requests}
    r = got["/t-chunked"]
    assert "transfer-encoding: chunked" in r.head.decode("latin-1").lower()
    assert r.body == b"5\r\nhello\r\n0\r\nx-checksum: abc\r\ngrpc-status: 0\r\n\r\n", r.body
    assert got["/t-nodata"].body == b"0\r\nx-only: 1\r\n\r\n", got["/t-nodata"].body
    r = got["/t-sized"]
    assert r.body == b"hello" and b"x-dropped" not in r.head
    bad = {}
    for field in (("content-length", "5"), ("host", "other"), ("te", "trailers"),
                  ("connection", "close"), ("x-v", "a b ")):
        sid = c.c.get_next_available_stream_id()
        c.c.send_headers(sid, base + [(":path", "/refused")])
        c.c.send_data(sid, b"hello")
        c.c.send_headers(sid, [field], end_stream=True)
        c.flush()
        bad[sid] = field
    c.wait(list(bad))
    assert {sid: c.reset.get(sid) for sid in bad} == {sid: 1 for sid in bad}, c.reset
    after = c.request("/after")
    c.wait([after])
    assert c.headers[after][":status"] == "200"
    assert "/refused" not in [r.target for r in b.requests]
    c.close()
