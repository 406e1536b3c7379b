"""PROXY protocol from a load balancer in front of an http listener (`proxy_protocol:
accept`): the header's client address is the one sluice forwards (X-Forwarded-For) and
logs; a missing or malformed header ends the connection before any request, logged
`bad_proxy_header` and counted as a refusal, with no byte reaching a server. The reader is
the front stage L4 listeners use too (src/proxy/front.c)."""
import socket
import urllib.request

from helpers import free_port, scaled, wait_closed, wait_for
from test_http_proxy import backend, http_config, read_response  # noqa: F401 (fixture)


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
