"""PROXY protocol from a load balancer in front of an http listener (`proxy_protocol:
accept`): the header's client address is the one sluice forwards (X-Forwarded-For) and
logs; a missing or malformed header ends the connection before any request, logged
`bad_proxy_header` and counted as a refusal, with no byte reaching a server. The reader is
the front stage L4 listeners use too (src/proxy/front.c). And the other way: an http
backend with `proxy_protocol: v1 | v2` sends a header at the start of each server
connection, and a pooled connection only ever carries requests of the client it names."""
import socket
import struct
import urllib.request

import pytest

from helpers import free_port, scaled, wait_closed, wait_for
from httpbackend import HttpBackend
from test_http_proxy import http_config, read_response


def listener_config(port, b, admin_port):
    return http_config(port, [b.address], admin_port=admin_port,
                       listener_kw={"proxy_protocol": "accept",
                                    "proxy_protocol_timeout": "300ms"})


def refused(admin_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics",
                                  timeout=scaled(5)).read().decode()
    for line in text.splitlines():
        if line.startswith('sluice_listener_refused_total{listener="web"}'):
            return int(float(line.split()[-1]))
    return 0


def test_proxy_header_gives_the_client_address(sluice, backend):
    b = backend()
    port, admin_port = free_port(), free_port()
    s = sluice(listener_config(port, b, admin_port))
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    # header and request in one segment, then a second request on the same connection
    c.sendall(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n"
              b"GET /one HTTP/1.1\r\nHost: app\r\n\r\n")
    status, _, body, rest = read_response(c)
    assert status == 200 and rest == b""
    c.sendall(b"GET /two HTTP/1.1\r\nHost: app\r\n\r\n")
    assert read_response(c)[0] == 200
    c.close()
    assert [r.get("X-Forwarded-For") for r in b.requests] == ["203.0.113.7", "203.0.113.7"]
    lines = s.access_log(2)
    assert [e["client"] for e in lines] == ["203.0.113.7:40000"] * 2, lines
    # a v2 LOCAL header (the balancer's own health check) keeps the real peer address
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    c.sendall(b"\r\n\r\n\x00\r\nQUIT\n" + b"\x20\x00\x00\x00" + b"GET /three HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(c)[0] == 200
    c.close()
    assert b.requests[2].get("X-Forwarded-For") == "127.0.0.1"
    assert refused(admin_port) == 0


def test_missing_or_bad_proxy_header_is_refused(sluice, backend):
    b = backend()
    port, admin_port = free_port(), free_port()
    s = sluice(listener_config(port, b, admin_port))
    s.wait_listening([admin_port])
    # a request without the header: the parser refuses it as a PROXY header
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    c.sendall(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
    state, _, data = wait_closed(c, scaled(5))  # a reset: the request was never read
    assert state in ("eof", "reset") and data == b"", (state, data)
    c.close()
    # nothing at all: closed after proxy_protocol_timeout (300ms)
    silent = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    state, waited, data = wait_closed(silent, scaled(5))
    assert state == "eof" and data == b"" and 0.25 <= waited < scaled(2), (state, waited)
    silent.close()
    lines = s.access_log(2)
    assert sorted(e["termination"] for e in lines) == ["bad_proxy_header"] * 2, lines
    assert {e["error"] for e in lines} >= {"no PROXY header in time"}, lines
    assert all(e["status"] is None and e["method"] is None for e in lines), lines
    wait_for(lambda: refused(admin_port) == 2, scaled(5), what="two refusals counted")
    assert b.connections == 0 and b.requests == []


# ---- PROXY protocol to the servers of an http backend (`proxy_protocol: v1 | v2`) ----

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(src, sport, dst, dport):
    return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()


def v2_header(src, sport, dst, dport):
    return (V2_SIG + b"\x21\x11" + struct.pack("!H", 12) + socket.inet_aton(src) +
            socket.inet_aton(dst) + struct.pack("!HH", sport, dport))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_backend_header_once_per_server_connection_for_its_own_client(sluice, version):
    """Two clients (their addresses given by a balancer in front) interleave keep-alive
    requests. Each server connection starts with one PROXY header naming the client whose
    requests it carries: a pooled connection is reused by later requests of that client,
    never by another client's (which would then be attributed to the wrong address)."""
    b = HttpBackend(expect_proxy=True)
    try:
        port = free_port()
        s = sluice(http_config(port, [b.address], listener_kw={"proxy_protocol": "accept"},
                               backend_kw={"proxy_protocol": version}))
        clients = {"203.0.113.7": 40000, "198.51.100.9": 50000}
        socks = {}
        for ip, cport in clients.items():
            c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
            c.sendall(v1_header(ip, cport, "192.0.2.1", 80))
            socks[ip] = c
        order = ["203.0.113.7", "198.51.100.9", "203.0.113.7", "198.51.100.9", "203.0.113.7"]
        for i, ip in enumerate(order):
            socks[ip].sendall(b"GET /r%d HTTP/1.1\r\nHost: app\r\n\r\n" % i)
            st, _, body, _ = read_response(socks[ip])
            assert st == 200 and body.startswith(b"path=/r%d " % i)
        for c in socks.values():
            c.close()
        build = v1_header if version == "v1" else v2_header
        want = {ip: build(ip, cport, "192.0.2.1", 80) for ip, cport in clients.items()}
        assert b.connections == 2, "one server connection per client, reused by it"
        assert sorted(b.proxy_headers.values()) == sorted(want.values()), b.proxy_headers
        for r in b.requests:
            xff = r.get("X-Forwarded-For")
            assert b.proxy_headers[r.conn_id] == want[xff], (r.target, xff, r.conn_id)
        assert [r.target for r in b.requests] == [f"/r{i}" for i in range(5)]
        lines = s.access_log(5)
        assert [e["reused"] for e in lines] == [False, False, True, True, True], lines
    finally:
        b.close()


def test_backend_header_carries_the_real_client_address(sluice):
    """Without a balancer in front: the header names the client socket's own address and
    port and sluice's listening address; a second client connection (another port) gets a
    server connection of its own, its keep-alive requests share it."""
    b = HttpBackend(expect_proxy=True)
    try:
        port = free_port()
        sluice(http_config(port, [b.address], backend_kw={"proxy_protocol": "v1"}))
        ports = []
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
            ports.append(c.getsockname()[1])
            for _ in range(2):
                c.sendall(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
                assert read_response(c)[0] == 200
            c.close()
        assert b.proxy_headers == {i + 1: v1_header("127.0.0.1", p, "127.0.0.1", port)
                                   for i, p in enumerate(ports)}
        assert [r.conn_id for r in b.requests] == [1, 1, 2, 2]
    finally:
        b.close()
