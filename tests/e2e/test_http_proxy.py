"""The HTTP/1.1 reverse proxy: http listeners to http backends (shared/spec/http.md).

A recording backend (httpbackend.py) keeps the exact bytes of every request it receives,
so the tests assert on what sluice forwarded, what the client got, the access log and the
metrics."""
import http.client
import json
import re
import socket
import time
import urllib.request

import pytest

from helpers import free_port, l4_config, scaled, wait_closed, wait_for


def http_config(port, servers, routes=None, lhttp=None, bhttp=None, workers=1, backend_kw=None,
                listener_kw=None, admin_port=None, extra_backends=()):
    lst = {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http", "backend": "app"}
    if routes is not None:
        lst["routes"] = routes
    if lhttp:
        lst["http"] = lhttp
    lst.update(listener_kw or {})
    be = {"name": "app", "protocol": "http", "servers": [{"address": a} for a in servers]}
    if bhttp:
        be["http"] = bhttp
    be.update(backend_kw or {})
    top = {}
    if admin_port:
        top["admin"] = {"bind": f"127.0.0.1:{admin_port}"}
    return l4_config([lst], [be, *extra_backends], workers=workers, **top)


def read_response(s, head_request=False):
    """Reads one response from socket s: (status, headers dict lowercased, body bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError(f"closed after {buf!r}")
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    head, rest = buf[:i].decode("latin-1"), buf[i:]
    lines = head.split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, hdrs, b"", rest
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        rest = bytearray(rest)
        while len(rest) < n:
            d = s.recv(1 << 20)
            if not d:
                raise EOFError
            rest += d
        return status, hdrs, bytes(rest[:n]), bytes(rest[n:])
    if hdrs.get("transfer-encoding") == "chunked":
        while not re.search(rb"0\r\n(?:[^\r\n]+\r\n)*\r\n$", rest):
            d = s.recv(65536)
            if not d:
                raise EOFError
            rest += d
        return status, hdrs, rest, b""
    while True:
        d = s.recv(65536)
        if not d:
            return status, hdrs, rest, b""
        rest += d


def conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    return s


def exchange(port, raw):
    s = conn(port)
    s.sendall(raw)
    try:
        return read_response(s)[:3]
    finally:
        s.close()


def closed_by_peer(s, timeout=None):
    s.settimeout(timeout or scaled(3))
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_get_is_forwarded_with_forwarding_fields_and_logged(sluice, backend):
    b = backend()
    port = free_port()
    s = sluice(http_config(port, [b.address]))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5))
    c.request("GET", "/hello?x=1", headers={"User-Agent": "t/1", "Connection": "keep-alive, X-Hop",
                                            "X-Hop": "secret", "Keep-Alive": "timeout=5",
                                            "X-Forwarded-For": "6.6.6.6", "TE": "trailers",
                                            "Proxy-Connection": "keep-alive"})
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"path=/hello?x=1 body=0\n"
    req = b.requests[0]
    assert req.head.startswith(b"GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port)
    names = req.names()
    for hop in ("connection", "x-hop", "keep-alive", "te", "proxy-connection"):
        assert hop not in names, req.head
    assert req.get("X-Forwarded-For") == "127.0.0.1"  # untrusted incoming value replaced
    assert req.get("X-Forwarded-Proto") == "http"
    assert req.get("X-Forwarded-Host") == f"127.0.0.1:{port}"
    rid = req.get("X-Request-Id")
    assert rid and re.fullmatch(r"[0-9a-f]{24}", rid)
    e = s.access_log(1)[0]
    assert e["method"] == "GET" and e["path"] == "/hello" and e["query"] == "x=1"
    assert e["status"] == 200 and e["termination"] == "complete" and e["request_id"] == rid
    assert e["protocol"] == "HTTP/1.1" and e["user_agent"] == "t/1" and e["backend"] == "app"
    assert e["server"] == b.address and isinstance(e["upstream_ms"], int)
    assert e["bytes_in"] > 0 and e["bytes_out"] > len(b"path=/hello?x=1 body=0\n")
    # a request id the client sent is kept
    c.request("GET", "/again", headers={"X-Request-Id": "abc-123"})
    c.getresponse().read()
    assert b.requests[1].get("X-Request-Id") == "abc-123"
    assert s.access_log(2)[1]["request_id"] == "abc-123"


def test_keepalive_pool_reuses_server_connections(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    for _ in range(3):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5))
        for _ in range(3):
            c.request("GET", "/x")
            assert c.getresponse().read()
        c.close()
    assert len(b.requests) == 9
    assert b.connections == 1, "the server saw one connection for 9 requests"


def test_pipelined_requests_are_answered_in_order(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    s = conn(port)
    s.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5)))
    rest = b""
    for i in range(5):
        s2 = _Buffered(s, rest)
        st, h, body, rest = read_response(s2)
        assert st == 200 and body == b"path=/p%d body=0\n" % i
    s.close()


class _Buffered:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, s, first):
        self.s, self.first = s, first

    def recv(self, n):
        if self.first:
            d, self.first = self.first, b""
            return d
        return self.s.recv(n)


def test_bodies_are_forwarded_byte_for_byte(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    body = bytes(range(256)) * 1000
    st, _, got = exchange(port, b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
    assert st == 200 and got == b"path=/up body=%d\n" % len(body)
    assert b.requests[0].body == body
    chunked = b"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    st, _, got = exchange(port, b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + chunked)
    assert st == 200
    r = b.requests[1]
    assert r.get("Transfer-Encoding") == "chunked" and r.body == chunked  # verbatim


def test_large_streams_both_ways(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    n = 64 << 20
    s = conn(port)
    s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n)
    st, h, body, _ = read_response(s)
    assert st == 200 and len(body) == n
    s.close()


def test_response_framings(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    s = conn(port)
    s.sendall(b"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, body, _ = read_response(s)
    assert st == 200 and h["transfer-encoding"] == "chunked"
    assert body == b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    for path, code in ((b"/status/204", 204), (b"/status/304", 304)):
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        st, h, body, rest = read_response(s)
        assert st == code and body == b"" and rest == b""
    s.sendall(b"HEAD /big/100 HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, body, rest = read_response(s, head_request=True)
    assert st == 200 and h["content-length"] == "100" and rest == b""
    s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")  # the connection is still in step
    assert read_response(s)[0] == 200
    s.sendall(b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, body, _ = read_response(s)
    assert st == 200 and body == b"until the end" and h["connection"] == "close"
    s.close()


@pytest.mark.parametrize("raw,status", [
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    # the rest of the spec's "Messages" list, one case each
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX@Y: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
    (b"GET http://other.example/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
])
def test_malformed_requests_are_refused_and_never_forwarded(sluice, backend, raw, status):
    b = backend()
    port = free_port()
    s = sluice(http_config(port, [b.address]))
    c = conn(port)
    c.sendall(raw)
    st, h, body, _ = read_response(c)
    assert st == status and h.get("connection") == "close" and h.get("x-request-id")
    assert closed_by_peer(c)
    if b"chunked\r\n\r\n" in raw and raw.endswith(b"\r\n") and status == 400:
        # a chunked body streams: its head may be on its way when a bad chunk line comes;
        # the server never gets a whole request
        assert b.requests == []
    else:
        assert b.requests == [] and b.connections == 0
    e = s.access_log(1)[0]
    assert e["status"] == status and e["termination"] == "bad_request"


def test_routing_by_path_host_method_header_and_404(sluice, backend):
    a, api = backend(), backend()
    port = free_port()
    routes = [
        {"match": {"path_prefix": "/api"}, "backend": "api"},
        {"match": {"host": "*.example.com", "methods": ["POST"]}, "backend": "api"},
        {"match": {"headers": {"X-Canary": "1"}}, "backend": "api"},
        {"match": {"path_regex": "^/re/[0-9]+$"}, "backend": "api"},
    ]
    extra = [{"name": "api", "protocol": "http", "servers": [{"address": api.address}]}]
    s = sluice(http_config(port, [a.address], routes=routes, extra_backends=extra))

    def hit(method, path, host=b"h", hdrs=b""):
        exchange(port, b"%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 0\r\n\r\n"
                 % (method, path, host, hdrs))

    hit(b"GET", b"/api")
    hit(b"GET", b"/api/v1")
    hit(b"GET", b"/apix")
    hit(b"POST", b"/", b"x.example.com:8080")
    hit(b"GET", b"/", b"x.example.com")
    hit(b"GET", b"/", b"h", b"X-Canary: 1\r\n")
    hit(b"GET", b"/re/42")
    hit(b"GET", b"/re/42x")
    assert [r.target for r in api.requests] == ["/api", "/api/v1", "/", "/", "/re/42"]
    assert [r.target for r in a.requests] == ["/apix", "/", "/re/42x"]
    log = s.access_log(8)
    assert [e["route"] for e in log] == [0, 0, None, 1, None, 2, 3, None]
    # no default backend: 404, and the hosts filter
    port2 = free_port()
    cfg = l4_config([{"name": "w2", "bind": f"127.0.0.1:{port2}", "protocol": "http",
                      "hosts": ["good.example"],
                      "routes": [{"match": {"path": "/only"}, "backend": "app"}]}],
                    [{"name": "app", "protocol": "http", "servers": [{"address": a.address}]}])
    sluice(cfg)
    assert exchange(port2, b"GET /only HTTP/1.1\r\nHost: good.example\r\n\r\n")[0] == 200
    assert exchange(port2, b"GET /other HTTP/1.1\r\nHost: good.example\r\n\r\n")[0] == 404
    assert exchange(port2, b"GET /only HTTP/1.1\r\nHost: bad.example\r\n\r\n")[0] == 404


def test_limits(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address], lhttp={"max_body_size": "1k",
                                                  "max_header_size": "2k", "max_headers": 5}))
    assert exchange(port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n")[0] == 413
    assert exchange(port, b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 414
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 3000 + b"\r\n\r\n")[0] == 431
    many = b"".join(b"X%d: y\r\n" % i for i in range(6))
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")[0] == 431
    assert b.requests == []


def test_server_failures_502_503_504(sluice, backend):
    b = backend()
    dead = free_port()
    port = free_port()
    s = sluice(http_config(port, [f"127.0.0.1:{dead}"], backend_kw={"retries": 0}))
    st, h, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert st == 502
    assert s.access_log(1)[0]["termination"] == "connect_failed"
    port2 = free_port()
    s2 = sluice(http_config(port2, [b.address], bhttp={"response_timeout": "300ms"}))
    st, h, _ = exchange(port2, b"GET /slow/1500 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert st == 504
    assert s2.access_log(1)[0]["termination"] == "response_timeout"
    # connect failure on the first server goes to the next one
    port3 = free_port()
    sluice(http_config(port3, [f"127.0.0.1:{dead}", b.address],
                       backend_kw={"balance": "round_robin", "retries": 1}))
    for _ in range(2):
        assert exchange(port3, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200


@pytest.mark.parametrize("bad", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
])
def test_malformed_response_is_502_and_its_connection_never_reused(sluice, scripted, bad):
    """The spec's "responses are held to the same rules": a malformed head from the server
    becomes 502 for the client (whose connection stays usable), and that server
    connection is closed, never pooled: the next request opens a new one."""
    def handler(sock):
        head = b""
        while b"\r\n\r\n" not in head:
            d = sock.recv(4096)
            if not d:
                return "no request"
            head += d
        sock.sendall(bad if b" /bad " in head else
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if b" /bad " not in head:
            return "good"
        state, _, data = wait_closed(sock, scaled(5))  # sluice must close this one
        return (state, data)

    srv = scripted(handler)
    port = free_port()
    s = sluice(http_config(port, [srv.address], backend_kw={"retries": 0}))
    c = conn(port)
    c.sendall(b"GET /bad HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, body, _ = read_response(c)
    assert st == 502, (st, body)
    assert srv.wait_results(1)[0] == ("eof", b""), "the server connection was not closed"
    c.sendall(b"GET /good HTTP/1.1\r\nHost: a\r\n\r\n")
    st, _, body, _ = read_response(c)
    assert st == 200 and body == b"ok"
    assert srv.wait_results(2)[1] == "good"  # a second server connection served it
    e = s.access_log(1)[0]
    assert e["status"] == 502 and e["termination"] == "bad_response", e


def test_stale_pooled_connection_is_not_reused(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address], backend_kw={"keepalive": {"idle_timeout": "200ms"}}))
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200
    time.sleep(scaled(0.5))
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200
    assert b.connections == 2


def test_expect_100_continue(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    s = conn(port)
    s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    time.sleep(0.2)
    s.sendall(b"data")
    st, h, body, _ = read_response(s)
    assert st == 200 and body == b"path=/e body=4\n"
    assert b.requests[0].body == b"data"


def test_http10_keepalive_and_close(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address]))
    s = conn(port)
    s.sendall(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, body, _ = read_response(s)
    assert st == 200 and h.get("connection") == "keep-alive"
    assert b.requests[0].head.startswith(b"GET /a HTTP/1.0\r\n")
    s.sendall(b"GET /b HTTP/1.0\r\n\r\n")
    st, h, body, _ = read_response(s)
    assert st == 200 and h.get("connection") == "close" and closed_by_peer(s)


def test_keepalive_requests_limit_and_idle_timeout(sluice, backend):
    b = backend()
    port = free_port()
    sluice(http_config(port, [b.address], lhttp={"keepalive_requests": 2},
                       listener_kw={"idle_timeout": "300ms"}))
    s = conn(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert "connection" not in read_response(s)[1]
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(s)[1]["connection"] == "close"
    assert closed_by_peer(s)
    s = conn(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    read_response(s)
    assert closed_by_peer(s, scaled(2))


def test_header_timeout_408(sluice, backend):
    b = backend()
    port = free_port()
    s = sluice(http_config(port, [b.address], lhttp={"header_timeout": "300ms"}))
    c = conn(port)
    c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
    st, h, _, _ = read_response(c)
    assert st == 408 and h["connection"] == "close"
    assert s.access_log(1)[0]["termination"] == "header_timeout"


def test_websocket_upgrade_becomes_a_tunnel(sluice, backend):
    b = backend()
    port = free_port()
    s = sluice(http_config(port, [b.address]))
    c = conn(port)
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    st, h, _, rest = read_response(c)
    assert st == 101 and h["upgrade"] == "websocket" and h["connection"].lower() == "upgrade"
    req = b.requests[0]
    assert req.get("Upgrade") == "websocket" and req.get("Connection") == "upgrade"
    c.sendall(b"frame-bytes")
    got = rest
    while len(got) < 11:
        got += c.recv(100)
    assert got == b"frame-bytes"
    c.close()
    e = s.access_log(1)[0]
    assert e["status"] == 101 and e["termination"] == "upgraded" and e["bytes_in"] > 11


def test_metrics(sluice, backend):
    b = backend()
    port, admin = free_port(), free_port()
    sluice(http_config(port, [b.address], admin_port=admin))
    for _ in range(3):
        exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    exchange(port, b"GET / HTTP/1.1\r\n\r\n")

    def metrics():
        return urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                      timeout=scaled(5)).read().decode()
    # a generated response is counted when its exchange ends, which may be just after the
    # client has read it
    text = wait_for(lambda: (lambda t: t if 'code="4xx"} 1' in t else None)(metrics()),
                    scaled(5), what="the 400 counted")
    assert 'sluice_requests_total{listener="web",backend="app",code="2xx"} 3' in text
    assert 'sluice_requests_total{listener="web",backend="",code="4xx"} 1' in text
    assert 'sluice_http_errors_total{listener="web",reason="bad_request"} 1' in text
    assert 'sluice_backend_pool_reused_total{backend="app"} 2' in text
    assert 'sluice_backend_pool_idle{backend="app"} 1' in text
    assert 'sluice_http_requests_active{listener="web"} 0' in text
    assert 'sluice_request_duration_seconds_count{listener="web",backend="app"} 3' in text
    assert 'sluice_upstream_response_seconds_count{backend="app"} 3' in text


def test_reload_changes_routes_of_an_open_keepalive_connection(sluice, backend):
    a, other = backend(), backend()
    port = free_port()
    extra = [{"name": "other", "protocol": "http", "servers": [{"address": other.address}]}]
    s = sluice(http_config(port, [a.address], extra_backends=extra))
    c = conn(port)
    c.sendall(b"GET /r HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(c)[0] == 200
    s.reload(http_config(port, [a.address], extra_backends=extra,
                         routes=[{"match": {"path": "/r"}, "backend": "other"}]))
    wait_for(lambda: "reload" in s.stderr() or "configuration" in s.stderr(), scaled(5))
    time.sleep(scaled(0.3))
    c.sendall(b"GET /r HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(c)[0] == 200
    assert len(other.requests) == 1 and len(a.requests) == 1
    c.close()


def test_graceful_stop_closes_idle_keepalive_connections(sluice, backend):
    b = backend()
    port = free_port()
    s = sluice(http_config(port, [b.address]))
    c = conn(port)
    c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    read_response(c)
    t0 = time.monotonic()
    s.stop(timeout=scaled(5))
    assert time.monotonic() - t0 < scaled(3)
    assert closed_by_peer(c)
