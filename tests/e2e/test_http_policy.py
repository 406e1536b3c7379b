"""Route actions (shared/spec/http.md "Route policy", docs/http.md "Routing cookbook"):
redirect, respond, rewrite, request and response header operations with variables, and a
route's own timeout, against a recording backend: the exact bytes each side received."""
import socket
import subprocess
import time

import pytest

from helpers import SLUICE_BIN, free_port, scaled
from httpbackend import HttpBackend
from test_http_proxy import http_config, read_response


@pytest.fixture
def backend():
    b = HttpBackend()
    yield b
    b.close()


def raw(port, data):
    """Sends data, returns (status, headers, body, raw response head bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        s.sendall(data)
        st, hdrs, body, _ = read_response(s, head_request=data.startswith(b"HEAD"))
        return st, hdrs, body
    finally:
        s.close()


def get(port, target, host=b"h.example", extra=b""):
    return raw(port, b"GET %s HTTP/1.1\r\nHost: %s\r\nX-Request-Id: rid1\r\n%s\r\n"
               % (target, host, extra))


def test_redirects(sluice, backend):
    port = free_port()
    routes = [
        {"match": {"path_prefix": "/old"},
         "redirect": {"to": "https://new.example/", "status": 301, "keep_path": True,
                      "keep_query": True}},
        {"match": {"path_prefix": "/q"},
         "redirect": {"to": "/search?from={method}", "status": 303, "keep_query": True}},
        {"match": {"path": "/t307"}, "redirect": {"to": "/x", "status": 307}},
        {"match": {"path": "/t302"}, "redirect": {"to": "/x"}},
        # the http -> https one-liner
        {"redirect": {"to": "https://{host}{request_uri}", "status": 308}},
    ]
    s = sluice(http_config(port, [backend.address], routes=routes))
    st, h, body = get(port, b"/old/a/../b?x=1&y=2")
    assert (st, h["location"], h["content-length"], body) == (
        301, "https://new.example/old/b?x=1&y=2", "0", b"")
    st, h, _ = get(port, b"/q?term=a%20b")
    assert (st, h["location"]) == (303, "/search?from=GET&term=a%20b")
    assert get(port, b"/t307")[1]["location"] == "/x"
    st, h, _ = get(port, b"/t302")
    assert (st, h["location"], h["x-request-id"]) == (302, "/x", "rid1")
    st, h, _ = get(port, b"/any/where?z=9", host=b"www.example.com:8080")
    assert (st, h["location"]) == (308, "https://www.example.com/any/where?z=9")
    assert backend.requests == []
    log = s.access_log(5)
    assert [e["status"] for e in log] == [301, 303, 307, 302, 308]
    assert {e["termination"] for e in log} == {"redirect"}
    assert [e["route"] for e in log] == [0, 1, 2, 3, 4]


def test_respond_with_variables_and_response_headers(sluice, backend):
    port = free_port()
    routes = [
        {"match": {"path": "/ping"},
         "respond": {"status": 200, "body": "pong {client_ip} {method} {path} {query} "
                                            "{header.X-Who} {cookie.sid} {listener} [{sni}]\n"},
         "response_headers": {"set": {"Cache-Control": "no-store"},
                              "add": {"X-Status": "{status}"}}},
        {"match": {"path": "/json"},
         "respond": {"status": 403, "body": "{{\"error\": \"no\"}", "content_type":
                     "application/json"}},
        {"match": {"path": "/empty"}, "respond": {"status": 204}},
    ]
    s = sluice(http_config(port, [backend.address], routes=routes))
    st, h, body = get(port, b"/ping?a=1", extra=b"X-Who: me\r\nCookie: a=1; sid=s42\r\n")
    assert st == 200
    assert body == b"pong 127.0.0.1 GET /ping a=1 me s42 web []\n"
    assert h["content-type"] == "text/plain" and h["content-length"] == str(len(body))
    assert h["cache-control"] == "no-store" and h["x-status"] == "200"
    st, h, body = get(port, b"/json")
    assert (st, h["content-type"], body) == (403, "application/json", b'{"error": "no"}')
    st, h, body = get(port, b"/empty")
    assert st == 204 and "content-length" not in h and body == b""
    # HEAD: the length of the body, no body
    st, h, body = raw(port, b"HEAD /ping HTTP/1.1\r\nHost: h\r\n\r\n")
    assert st == 200 and body == b"" and int(h["content-length"]) > 0
    # keep-alive holds: two answers on one connection
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    c.sendall(b"GET /json HTTP/1.1\r\nHost: h\r\n\r\n")
    st, h, body, _ = read_response(c)
    assert (st, body, h["content-length"]) == (403, b'{"error": "no"}', "15")
    assert "connection" not in h
    c.sendall(b"GET /ping HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
    st, h, _, _ = read_response(c)
    assert st == 200 and h["connection"] == "close"  # a body it did not read: close
    c.close()
    assert backend.requests == []
    assert {e["termination"] for e in s.access_log(5)} == {"respond"}


def test_rewrites_and_request_headers_byte_for_byte(sluice, backend):
    port = free_port()
    routes = [
        {"match": {"path_prefix": "/v1"}, "backend": "app",
         "rewrite": {"strip_prefix": "/v1", "host": "internal.example:8080"},
         "request_headers": {"set": {"X-Client": "{client_ip}", "X-Env": "prod"},
                             "add": {"X-Trace": "{request_id}/{header.X-Who}"},
                             "remove": ["X-Debug", "Cookie"]}},
        {"match": {"path_prefix": "/old/"}, "backend": "app",
         "rewrite": {"replace_prefix": {"from": "/old/", "to": "/new/"}}},
        {"match": {"path_regex": "^/u/"}, "backend": "app",
         "rewrite": {"regex": "^/u/([0-9]+)/(.*)$", "replace": "/users/\\1/\\2"}},
    ]
    sluice(http_config(port, [backend.address], routes=routes,
                       lhttp={"forwarded": "none"}))
    st, _, _ = get(port, b"/v1/items?x=1",
                   extra=b"X-Who: me\r\nX-Env: dev\r\nX-Debug: 1\r\nCookie: c=1\r\nAccept: */*\r\n")
    assert st == 200
    assert backend.requests[0].head == (
        b"GET /items?x=1 HTTP/1.1\r\nHost: internal.example:8080\r\nX-Request-Id: rid1\r\n"
        b"X-Who: me\r\nAccept: */*\r\nX-Client: 127.0.0.1\r\nX-Env: prod\r\n"
        b"X-Trace: rid1/me\r\n\r\n")
    get(port, b"/v1")
    assert backend.requests[1].target == "/"
    get(port, b"/v1x")  # not under /v1: no route matches, the default backend, untouched
    assert backend.requests[2].target == "/v1x"
    get(port, b"/old/a/b?k")
    assert backend.requests[3].head.startswith(b"GET /new/a/b?k HTTP/1.1\r\nHost: h.example\r\n")
    get(port, b"/u/42/profile/x?y=1")
    assert backend.requests[4].target == "/users/42/profile/x?y=1"
    get(port, b"/u/abc")  # the route matches, its regex does not: path unchanged
    assert backend.requests[5].target == "/u/abc"


def test_response_headers_on_forwarded_responses(sluice, backend):
    port = free_port()
    routes = [{"backend": "app",
               "response_headers": {"set": {"X-Conn": "replaced"},
                                    "add": {"Via": "sluice {status} {server}"},
                                    "remove": ["X-Missing"]}}]
    sluice(http_config(port, [backend.address], routes=routes))
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    s.sendall(b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    s.close()
    head = buf.split(b"\r\n\r\n")[0]
    assert head == (b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n"
                    b"X-Conn: replaced\r\nVia: sluice 200 %s" % backend.address.encode())


def test_route_timeout(sluice, backend):
    port = free_port()
    routes = [{"match": {"path_prefix": "/slow"}, "backend": "app", "timeout": "300ms"}]
    s = sluice(http_config(port, [backend.address], routes=routes))
    t0 = time.monotonic()
    st, _, _ = get(port, b"/slow/3000")
    took = time.monotonic() - t0
    assert st == 504 and took < scaled(2.5), took
    assert s.access_log(1)[0]["termination"] == "response_timeout"


@pytest.mark.parametrize("route,message", [
    ({"respond": {"body": "{nope}"}}, "routes[0].respond.body: unknown variable {nope}"),
    ({"redirect": {"to": "/a{host"}}, "routes[0].redirect.to: '{' without '}'"),
    ({"backend": "app", "request_headers": {"set": {"X-A": "{status}"}}},
     "routes[0].request_headers.set.X-A: {status} is only known in response_headers"),
    ({"backend": "app", "request_headers": {"set": {"X-A": "a\nb"}}},
     "a value must not hold CR or LF"),
    ({"backend": "app", "request_headers": {"set": {"Host": "x"}}},
     "Host is sluice's to write (it frames the message; use rewrite.host)"),
    ({"backend": "app", "response_headers": {"remove": ["Content-Length"]}},
     "Content-Length is sluice's to write"),
    ({"backend": "app", "rewrite": {"regex": "^/(.*)$"}}, "regex and replace go together"),
    ({"backend": "app", "rewrite": {"strip_prefix": "/a", "regex": "x", "replace": "/y"}},
     "use only one of strip_prefix, replace_prefix, regex"),
    ({"backend": "app", "rewrite": {"host": "bad host"}}, "expected host or host:port"),
    ({"respond": {}, "timeout": "1s"}, "timeout only applies to routes with a backend"),
])
def test_bad_policy_config_is_refused(tmp_path, route, message):
    p = tmp_path / "c.yaml"
    p.write_text(http_config(free_port(), ["127.0.0.1:1"], routes=[route]))
    r = subprocess.run([SLUICE_BIN, "-t", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0 and message in r.stderr, r.stderr
