"""HTTP routing (shared/spec/http.md "Route policy", docs/http.md "Routing"): every match
kind, first match wins, and matching on the normalised path, against recording backends:
which backend got the request and the exact request line it received."""
import subprocess

import pytest

from helpers import SLUICE_BIN, free_port
from httpbackend import HttpBackend
from test_http_proxy import exchange, http_config


@pytest.fixture
def backends():
    made = [HttpBackend(), HttpBackend()]
    yield made
    for b in made:
        b.close()


def start(sluice, backends, routes):
    dflt, api = backends
    port = free_port()
    extra = [{"name": "api", "protocol": "http", "servers": [{"address": api.address}]}]
    s = sluice(http_config(port, [dflt.address], routes=routes, extra_backends=extra))
    return port, s


def get(port, target, hdrs=b""):
    return exchange(port, b"GET %s HTTP/1.1\r\nHost: h\r\n%s\r\n" % (target, hdrs))[0]


def test_normalised_path_cannot_slip_past_a_rule(sluice, backends):
    dflt, api = backends
    port, s = start(sluice, backends, [{"match": {"path_prefix": "/admin"}, "backend": "api"}])
    for t in [b"/a/../admin", b"/x/%2e%2E/admin/users", b"/./admin", b"/%61dmin?q=/../x",
              b"/admin"]:
        assert get(port, t) == 200
    # the server gets the path that was routed, byte for byte; the query is left alone
    assert [r.target for r in api.requests] == [
        "/admin", "/admin/users", "/admin", "/admin?q=/../x", "/admin"]
    assert api.requests[1].head.startswith(b"GET /admin/users HTTP/1.1\r\nHost: h\r\n")
    # segment-aware, and %2F is not a separator
    for t in [b"/adminx", b"/admin%2Fx", b"/b/admin"]:
        assert get(port, t) == 200
    assert [r.target for r in dflt.requests] == ["/adminx", "/admin%2Fx", "/b/admin"]
    # climbing above the root: 400, never forwarded, connection closed
    n = len(api.requests) + len(dflt.requests)
    for t in [b"/..", b"/a/../../admin", b"/%2e%2e/admin"]:
        assert get(port, t) == 400
    assert len(api.requests) + len(dflt.requests) == n
    e = s.access_log(11)[-3:]
    assert all(x["status"] == 400 and x["termination"] == "bad_request" for x in e)


def test_header_forms_query_and_first_match(sluice, backends):
    dflt, api = backends
    routes = [
        {"match": {"headers": {"X-Block": {"present": True}}}, "backend": "app"},
        {"match": {"headers": {"User-Agent": {"regex": "^curl/"}}}, "backend": "api"},
        {"match": {"query": {"v": "2", "debug": {"present": False}}}, "backend": "api"},
        {"match": {"headers": {"X-Canary": "1"}}, "backend": "api"},
        {"match": {"path_prefix": "/"}, "backend": "app"},
    ]
    port, s = start(sluice, backends, routes)
    assert get(port, b"/1", b"User-Agent: curl/8\r\n") == 200
    assert get(port, b"/2", b"User-Agent: curl/8\r\nX-Block: \r\n") == 200  # first match
    assert get(port, b"/3", b"User-Agent: xcurl/8\r\n") == 200
    assert get(port, b"/4?a=1&v=2") == 200
    assert get(port, b"/5?v=2&debug") == 200
    assert get(port, b"/6?v=%32") == 200
    assert get(port, b"/7", b"X-Canary: 1\r\n") == 200
    assert get(port, b"/8", b"X-Canary: 2\r\n") == 200
    assert [r.target for r in api.requests] == ["/1", "/4?a=1&v=2", "/6?v=%32", "/7"]
    assert [r.target for r in dflt.requests] == ["/2", "/3", "/5?v=2&debug", "/8"]
    assert [e.get("route") for e in s.access_log(8)] == [1, 0, 4, 2, 4, 2, 3, 4]


def test_bad_match_config_is_refused(tmp_path):
    port = free_port()
    cfg = http_config(port, ["127.0.0.1:1"], routes=[
        {"match": {"headers": {"X-A": {"regex": "("}}}, "backend": "app"},
        {"match": {"query": {"q": {"present": True, "exact": "1"}}}, "backend": "app"},
        {"match": {"headers": {"Bad Name": "1"}}, "backend": "app"}])
    p = tmp_path / "c.yaml"
    p.write_text(cfg)
    r = subprocess.run([SLUICE_BIN, "-t", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "routes[0].match.headers.X-A.regex: invalid regular expression" in r.stderr
    assert "routes[1].match.query.q: expected exactly one of exact, regex, present" in r.stderr
    assert "invalid header name 'Bad Name'" in r.stderr
