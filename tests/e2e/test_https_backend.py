"""`https` backends: an http listener proxies HTTP/1.1 over TLS to its servers
(shared/spec/http.md "Protocols", docs/http.md "HTTPS backends").

Servers are the recording HTTP backend (httpbackend.py) wrapped in Python's ssl module:
it keeps every request byte for byte and, per TLS connection, the SNI, ALPN, version and
client certificate it saw. Checked: requests and bodies (4 MiB both ways, chunked) cross
intact; keep-alive pools keep TLS sessions (one handshake for many requests); a server
certificate that fails verification is a failed connect (502, reason logged, counted,
next server tried); `verify: false`; SNI; client certificates; a pooled connection the
server closes with close_notify, and one that gets session tickets while idle; the
connect timeout covers the handshake and connect_ms includes it; WebSocket; https health
probes; PROXY protocol v2 before the handshake."""
import asyncio
import http.client
import os
import socket
import ssl
import time
import urllib.request

import pytest
import websockets

from helpers import free_port, scaled, wait_for
from httpbackend import HttpBackend, rand_body
from test_http_proxy import conn, http_config, read_response
from test_http_proxy_protocol import v2_header
from test_http_websocket import RecordingWsServer
from tls_certs import pki  # noqa: F401 (fixture)


def server_ctx(cert, client_ca=None, max_version=None):
    """A server-side context with `cert` (leaf + intermediate), offering ALPN http/1.1;
    with `client_ca` a client certificate from that CA is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert, cert.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if max_version:
        ctx.maximum_version = max_version
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca.cert)
    return ctx


@pytest.fixture
def tls_backend(pki):
    """make(cert=pki.backend, **kw) -> a running TLS HttpBackend (closed at teardown)."""
    made = []

    def make(cert=None, client_ca=None, max_version=None, **kw):
        b = HttpBackend(tls=server_ctx(cert or pki.backend, client_ca, max_version), **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def https_config(port, servers, tls, admin_port=None, **backend_kw):
    """An http listener `web` on port -> https backend `app` with `tls` as its tls block."""
    return http_config(port, servers, admin_port=admin_port,
                       backend_kw={"protocol": "https", "tls": tls, **backend_kw})


def metric(admin_port, name, **labels):
    """The value of one sample of /metrics (0 when absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics",
                                  timeout=scaled(5)).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    return 0.0


def pool_idle(aport):
    return metric(aport, "sluice_backend_pool_idle", backend="app")


def test_requests_and_bodies_cross_tls_byte_for_byte(sluice, tls_backend, pki):
    """GET, a 4 MiB upload and download, chunked both ways: all intact, over one TLS
    connection (TLS 1.3, ALPN http/1.1, no SNI towards an IP address)."""
    b = tls_backend()
    port = free_port()
    s = sluice(https_config(port, [b.address], {"ca": pki.root.cert}))
    c = conn(port)
    c.sendall(b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    st, _, body, _ = read_response(c)
    assert st == 200 and body == b"path=/hello?x=1 body=0\n"
    assert b.requests[0].get("X-Forwarded-Proto") == "http"
    up = os.urandom(4 << 20)
    c.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(up) + up)
    st, _, body, _ = read_response(c)
    assert st == 200 and body == b"path=/up body=%d\n" % len(up)
    assert b.requests[1].body == up
    c.sendall(b"GET /rand/%d HTTP/1.1\r\nHost: a\r\n\r\n" % (4 << 20))
    st, _, body, _ = read_response(c)
    assert st == 200 and body == rand_body(4 << 20)
    chunked = b"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    c.sendall(b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    st, _, body, _ = read_response(c)
    assert st == 200 and b.requests[3].body == chunked
    c.sendall(b"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, body, _ = read_response(c)
    assert st == 200 and h["transfer-encoding"] == "chunked" and b"hello" in body
    c.close()
    assert b.connections == 1 and [r.conn_id for r in b.requests] == [1] * 5
    info = b.tls_info[1]
    assert info["alpn"] == "http/1.1" and info["version"] == "TLSv1.3", info
    assert info["sni"] is None, "no SNI for a server given by IP address"
    lines = s.access_log(5)
    assert [e["status"] for e in lines] == [200] * 5
    assert [e["termination"] for e in lines] == ["complete"] * 5
    assert isinstance(lines[0]["connect_ms"], int) and lines[0]["reused"] is False
    assert all(e["reused"] for e in lines[1:]), lines
    assert lines[1]["bytes_in"] > len(up) and lines[2]["bytes_out"] > 4 << 20


def test_keepalive_pool_keeps_tls_sessions(sluice, tls_backend, pki):
    """50 requests on one client connection, then 3 more client connections: the server
    sees one TLS connection (one handshake) for all of them."""
    b = tls_backend()
    port, aport = free_port(), free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert}, admin_port=aport))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5))
    for i in range(50):
        c.request("GET", f"/r{i}")
        assert c.getresponse().read() == f"path=/r{i} body=0\n".encode()
    c.close()
    for _ in range(3):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5))
        for _ in range(2):
            c.request("GET", "/x")
            assert c.getresponse().read()
        c.close()
    assert len(b.requests) == 56
    assert b.connections == 1 and len(b.tls_info) == 1, "one TLS connection for 56 requests"
    assert metric(aport, "sluice_backend_pool_reused_total", backend="app") == 55
    assert metric(aport, "sluice_server_connections_total", backend="app",
                  server=b.address) == 1


def test_untrusted_certificate_is_a_failed_connect(sluice, tls_backend, pki):
    """A server whose certificate the backend's `ca` does not trust: 502 with OpenSSL's
    reason in the access log and the process log, counted as a connect failure; with a
    good server beside it, the request is retried there."""
    bad = tls_backend(cert=pki.other_backend)
    good = tls_backend()
    port, aport = free_port(), free_port()
    s = sluice(https_config(port, [bad.address], {"ca": pki.root.cert}, admin_port=aport))
    c = conn(port)
    c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, _, _ = read_response(c)
    assert st == 502
    e = s.access_log(1)[0]
    assert e["termination"] == "connect_failed" and e["status"] == 502, e
    assert "certificate verify failed" in e["error"], e
    assert e["connect_ms"] is None
    assert metric(aport, "sluice_backend_connect_failures_total", backend="app",
                  server=bad.address) >= 1
    assert wait_for(lambda: "TLS handshake with server" in s.stderr(), scaled(5),
                    what="warning in the process log")
    assert "certificate verify failed" in s.stderr()
    assert bad.requests == [] and bad.tls_errors, "no request byte reached the bad server"
    s.stop()
    # the same bad server first, a good one second: every request still succeeds
    port, aport = free_port(), free_port()
    s = sluice(https_config(port, [bad.address, good.address], {"ca": pki.root.cert},
                            admin_port=aport))
    for i in range(4):
        c = conn(port)
        c.sendall(b"GET /t%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % i)
        assert read_response(c)[0] == 200
        c.close()
    assert len(good.requests) == 4 and bad.requests == []
    assert metric(aport, "sluice_backend_connect_failures_total", backend="app",
                  server=bad.address) >= 1
    retried = [e for e in s.access_log(4) if e["retries"] == 1]
    assert retried and all(e["server"] == good.address for e in retried), s.access_log()


def get(port, path="/", close=False):
    """One GET on a new client connection: (status, body)."""
    c = conn(port)
    c.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (path.encode(),
                                                         b"Connection: close\r\n" if close else b""))
    st, _, body, _ = read_response(c)
    c.close()
    return st, body


def test_verify_false_accepts_any_certificate(sluice, tls_backend, pki):
    b = tls_backend(cert=pki.other_backend)
    port = free_port()
    sluice(https_config(port, [b.address], {"verify": False}))
    assert get(port, "/v") == (200, b"path=/v body=0\n")


def test_sni_and_name_verification_as_configured(sluice, tls_backend, pki):
    """`sni: backend.internal` is sent and verified against the certificate's DNS name; a
    name the certificate does not carry fails verification."""
    b = tls_backend()
    port = free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert, "sni": "backend.internal"}))
    assert get(port)[0] == 200
    assert b.tls_info[1]["sni"] == "backend.internal"
    port2 = free_port()
    s = sluice(https_config(port2, [b.address], {"ca": pki.root.cert, "sni": "other.internal"}))
    assert get(port2)[0] == 502
    assert b.tls_info[1]["sni"] == "backend.internal" and len(b.tls_info) == 1
    assert "certificate verify failed" in s.access_log(1)[0]["error"]


def test_client_certificate_to_a_server_that_requires_one(sluice, tls_backend, pki):
    b = tls_backend(client_ca=pki.client_ca)
    port = free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert, "cert": pki.gateway.cert,
                                            "key": pki.gateway.key}))
    assert get(port)[0] == 200
    subject = dict(x[0] for x in b.tls_info[1]["peer"]["subject"])
    assert subject["commonName"] == "sluice-gw"
    port2 = free_port()
    s = sluice(https_config(port2, [b.address], {"ca": pki.root.cert}))
    assert get(port2)[0] == 502
    # TLS 1.3: the client's side of the handshake ends before the server checks the
    # certificate; its refusal is an alert in place of the response (or, when it closed
    # before the request was written, a failed write)
    e = s.access_log(1)[0]
    assert e["termination"] == "server_aborted", e
    assert "certificate required" in e["error"] or e["error"] == "write to server failed", e
    assert wait_for(lambda: b.tls_errors, scaled(5), what="the server's handshake error")
    assert len(b.requests) == 1, "the refused connection carried no request"


def test_server_closing_a_pooled_connection_with_close_notify(sluice, tls_backend, pki):
    """The server ends an idle pooled connection with close_notify then FIN: sluice drops
    it from the pool at once, so that even a POST (never replayed) gets a new connection
    and succeeds; a GET racing with another such close succeeds too."""
    b = tls_backend()
    port, aport = free_port(), free_port()
    s = sluice(https_config(port, [b.address], {"ca": pki.root.cert}, admin_port=aport))
    c = conn(port)
    c.sendall(b"GET /tls-close HTTP/1.1\r\nHost: a\r\n\r\n")
    st, _, body, _ = read_response(c)
    assert (st, body) == (200, b"ok\n")
    wait_for(lambda: b.tls_closed == 1, scaled(5), what="the server's close")
    wait_for(lambda: pool_idle(aport) == 0, scaled(5), what="the closed connection unpooled")
    c.sendall(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    st, _, body, _ = read_response(c)
    assert (st, body) == (200, b"path=/p body=5\n")
    assert b.connections == 2 and b.requests[-1].conn_id == 2
    # the next close races with the next request: replayed on a new connection if need be
    c.sendall(b"GET /tls-close HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(c)[0] == 200
    c.sendall(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
    st, _, body, _ = read_response(c)
    assert (st, body) == (200, b"path=/after body=0\n")
    c.close()
    assert [e["status"] for e in s.access_log(4)] == [200] * 4


def test_session_tickets_on_an_idle_pooled_connection_keep_it(sluice, tls_backend, pki):
    """A TLS 1.3 NewSessionTicket arriving on an idle pooled connection is processed, not
    taken for the server's close or stray bytes: the next request reuses the connection."""
    b = tls_backend()
    port, aport = free_port(), free_port()
    s = sluice(https_config(port, [b.address], {"ca": pki.root.cert}, admin_port=aport))
    assert get(port, "/ticket") == (200, b"ok\n")
    wait_for(lambda: pool_idle(aport) == 1, scaled(5), what="the connection pooled")
    b.ticket_go.set()
    assert b.ticket_sent.wait(scaled(5))
    # the ticket is in sluice's socket before this request leaves: its event comes first
    assert get(port, "/next") == (200, b"path=/next body=0\n")
    assert get(port, "/again")[0] == 200
    assert b.connections == 1 and [r.conn_id for r in b.requests] == [1, 1, 1]
    assert b.tls_info[1]["version"] == "TLSv1.3"
    assert metric(aport, "sluice_backend_pool_reused_total", backend="app") == 2
    assert [e["reused"] for e in s.access_log(3)] == [False, True, True]


def test_tls_1_2_server(sluice, tls_backend, pki):
    """A server that stops at TLS 1.2 (no post-handshake tickets): pooled and reused."""
    b = tls_backend(max_version=ssl.TLSVersion.TLSv1_2)
    port = free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert}))
    for i in range(3):
        assert get(port, f"/{i}")[0] == 200
    assert b.connections == 1 and b.tls_info[1]["version"] == "TLSv1.2"


def test_connect_timeout_covers_the_handshake_and_connect_ms_includes_it(sluice, scripted, pki):
    """A server that accepts TCP but never answers the ClientHello: 502 after
    connect_timeout, logged as a TLS handshake timeout. One that answers it 300 ms late:
    the request succeeds and connect_ms counts those 300 ms."""
    silent = scripted(lambda sock: sock.recv(65536) and sock.recv(65536))
    ctx = server_ctx(pki.backend)

    def late(sock):
        sock.recv(1, socket.MSG_PEEK)  # the ClientHello is there
        time.sleep(0.3)
        t = ctx.wrap_socket(sock, server_side=True)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += t.recv(65536)
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        t.close()
        return buf

    slow = scripted(late)
    port = free_port()
    s = sluice(https_config(port, [silent.address], {"ca": pki.root.cert},
                            connect_timeout="300ms"))
    t0 = time.monotonic()
    assert get(port)[0] == 502
    assert time.monotonic() - t0 >= 0.25
    e = s.access_log(1)[0]
    assert e["termination"] == "connect_failed", e
    assert e["error"] == "TLS handshake with server timed out", e
    s.stop()
    port = free_port()
    s = sluice(https_config(port, [slow.address], {"ca": pki.root.cert}, connect_timeout="5s"))
    assert get(port) == (200, b"ok")
    e = s.access_log(1)[0]
    assert e["connect_ms"] >= 250, e


def test_websocket_through_an_https_backend(sluice, pki):
    """A real WebSocket client through sluice to a wss server: messages of every size come
    back intact and the close code crosses; one access-log line, `upgraded`."""
    srv = RecordingWsServer(ssl=server_ctx(pki.backend))
    try:
        port = free_port()
        s = sluice(https_config(port, [srv.address], {"ca": pki.root.cert}))
        big = os.urandom(4 << 20)
        got = {}

        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None,
                                          ping_interval=None, close_timeout=scaled(5)) as ws:
                await ws.send("hello")
                got["text"] = await ws.recv()
                await ws.send(big)
                got["big"] = await ws.recv()
                await ws.close(4001, "done")

        asyncio.run(asyncio.wait_for(go(), scaled(30)))
        assert got["text"] == "hello" and got["big"] == big
        wait_for(lambda: srv.sessions and srv.sessions[0]["close"], scaled(5),
                 what="the server's close")
        assert srv.sessions[0]["close"][0] == 4001
        e = s.access_log(1)[0]
        assert e["status"] == 101 and e["termination"] == "upgraded", e
        assert e["bytes_in"] > 4 << 20 and e["bytes_out"] > 4 << 20
    finally:
        srv.close()


def test_https_health_probe_takes_a_server_out_and_back(sluice, tls_backend, pki):
    """health defaults to the backend's protocol (https): the probe runs over TLS with the
    backend's tls settings; a failing server leaves the rotation and comes back."""
    a, b = tls_backend(), tls_backend()
    port, aport = free_port(), free_port()
    s = sluice(https_config(port, [a.address, b.address], {"ca": pki.root.cert},
                            admin_port=aport,
                            health={"path": "/healthz", "interval": "100ms", "timeout": "1s",
                                    "healthy_threshold": 1, "unhealthy_threshold": 1}))

    def up(srv):
        return metric(aport, "sluice_server_up", backend="app", server=srv.address)

    wait_for(lambda: up(a) == 1 and up(b) == 1, scaled(5), what="both servers up")
    probes = [r for r in a.requests if r.target == "/healthz"]
    assert probes and a.tls_info, "the probe spoke TLS to the server"
    a.health_status = 503
    wait_for(lambda: up(a) == 0, scaled(5), what="a down")
    n = len([r for r in a.requests if r.target != "/healthz"])
    for i in range(4):
        assert get(port, f"/h{i}", close=True)[0] == 200
    assert len([r for r in a.requests if r.target != "/healthz"]) == n
    a.health_status = 200
    wait_for(lambda: up(a) == 1, scaled(5), what="a back up")
    wait_for(lambda: get(port, "/back", close=True) and
             any(r.target == "/back" for r in a.requests), scaled(5),
             what="a request on a again")
    assert "DOWN" in s.stderr() and "UP" in s.stderr()


def test_proxy_protocol_v2_goes_before_the_handshake(sluice, tls_backend, pki):
    b = tls_backend(expect_proxy=True)
    port = free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert}, proxy_protocol="v2"))
    c = conn(port)
    cport = c.getsockname()[1]
    for i in range(3):
        c.sendall(b"GET /pp%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
        assert read_response(c)[0] == 200
    c.close()
    assert b.connections == 1 and [r.conn_id for r in b.requests] == [1, 1, 1]
    assert b.proxy_headers[1] == v2_header("127.0.0.1", cport, "127.0.0.1", port)
    assert b.tls_info[1]["version"] == "TLSv1.3"


def test_pool_ends_idle_connections_with_close_notify(sluice, tls_backend, pki):
    """keepalive.idle_timeout closes an idle pooled TLS connection cleanly: close_notify
    before the FIN (the server sees the end of the TLS stream, not a truncation)."""
    b = tls_backend()
    port = free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert},
                        keepalive={"idle_timeout": "200ms"}))
    assert get(port)[0] == 200
    wait_for(lambda: b.tls_notified == 1, scaled(5), what="close_notify from sluice")


def test_upload_to_a_slow_reading_server_is_flushed_to_the_end(sluice, scripted, pki):
    """A server reading an 8 MiB body slowly keeps sluice's socket full most of the time
    (writes blocked, TLS records waiting in the write buffer): the whole body arrives."""
    ctx = server_ctx(pki.backend)
    n = 8 << 20

    def slow(sock):
        t = ctx.wrap_socket(sock, server_side=True)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += t.recv(65536)
        got = len(buf) - buf.index(b"\r\n\r\n") - 4
        while got < n:
            time.sleep(0.001)
            got += len(t.recv(16384))
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        t.close()
        return got

    srv = scripted(slow)
    port = free_port()
    sluice(https_config(port, [srv.address], {"ca": pki.root.cert}))
    c = conn(port)
    c.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % n + os.urandom(n))
    st, _, body, _ = read_response(c)
    assert (st, body) == (200, b"ok")
    assert srv.wait_results(1) == [n]


def test_handshakes_over_the_worker_budget_are_deferred_not_lost(sluice, tls_backend, pki):
    """40 concurrent requests each need a new server connection at once: more handshakes
    than a worker runs in one turn (16). The rest wait for the next turns and finish."""
    b = tls_backend()
    port = free_port()
    sluice(https_config(port, [b.address], {"ca": pki.root.cert}))
    clients = [conn(port) for _ in range(40)]
    for c in clients:
        c.sendall(b"GET /slow/300 HTTP/1.1\r\nHost: a\r\n\r\n")
    for c in clients:
        assert read_response(c)[0] == 200
        c.close()
    assert len(b.tls_info) == 40
