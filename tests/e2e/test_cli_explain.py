"""`sluice -t -c FILE --explain 'METHOD URL' [-H 'Name: value']`: which route a request
would take on which http listener, and why each route before it did not (docs/http.md)."""
import subprocess

import pytest

from helpers import SLUICE_BIN, free_port, l4_config, scaled


def explain(tmp_path, cfg, *args):
    p = tmp_path / "c.yaml"
    p.write_text(cfg)
    r = subprocess.run([SLUICE_BIN, "-t", "-c", str(p), "--explain", *args],
                       capture_output=True, text=True, timeout=scaled(10))
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def cfg():
    port, other = free_port(), free_port()
    routes = [
        {"match": {"host": "api.example.com", "path_prefix": "/v2"}, "backend": "api"},
        {"match": {"host": "api.example.com", "path_prefix": "/v1",
                   "headers": {"X-Canary": "1"}}, "backend": "canary"},
        {"match": {"host": "api.example.com", "path_prefix": "/v1"}, "backend": "api",
         "rewrite": {"strip_prefix": "/v1"}, "timeout": "2s"},
    ]
    text = l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http", "backend": "site",
          "routes": routes},
         {"name": "edge", "bind": f"127.0.0.1:{other}", "protocol": "http",
          "hosts": ["www.example.com"],
          "routes": [{"redirect": {"to": "https://{host}{request_uri}", "status": 308}}]}],
        [{"name": n, "protocol": "http", "servers": [{"address": "127.0.0.1:1"}]}
         for n in ("api", "canary", "site")])
    return text, port, other


def test_explain_names_the_route_and_why_the_others_did_not_match(tmp_path, cfg):
    text, port, other = cfg
    rc, out, err = explain(tmp_path, text, f"GET http://api.example.com:{port}/v1/a/../items?x=1")
    assert rc == 0 and "configuration ok" in err, err
    lines = out.splitlines()
    assert lines[0] == f"request: GET host=api.example.com path=/v1/items query=x=1 port={port}"
    assert lines[1] == f"listener web (http, port {port}):"
    assert lines[2].endswith("no: path_prefix /v2 does not hold")
    assert lines[3].endswith("no: headers.X-Canary does not hold")
    assert lines[4].endswith("MATCH -> backend api, rewrite strip_prefix /v1, timeout 2000ms")
    assert len(lines) == 5  # the other listener is on another port
    # a header given with -H takes the canary route
    rc, out, _ = explain(tmp_path, text, f"POST http://api.example.com:{port}/v1/x",
                         "-H", "X-Canary: 1")
    assert out.splitlines()[3].endswith("MATCH -> backend canary")
    # nothing matches: the default backend
    rc, out, _ = explain(tmp_path, text, f"GET http://other.example:{port}/")
    assert out.splitlines()[-1] == "  no route matched -> default backend site"


def test_explain_other_listener_hosts_and_no_port(tmp_path, cfg):
    text, port, other = cfg
    rc, out, _ = explain(tmp_path, text, f"GET http://www.example.com:{other}/p?q")
    assert out.splitlines()[-1].endswith("MATCH -> redirect 308 to https://{host}{request_uri}")
    rc, out, _ = explain(tmp_path, text, f"GET http://evil.example:{other}/")
    assert "evil.example is not one of the listener's hosts -> 404 (no route)" in out
    # no listener on 443: every http listener is explained
    rc, out, _ = explain(tmp_path, text, "GET https://api.example.com/v2/x")
    assert rc == 0
    assert "no http listener on port 443; every http listener:" in out
    assert out.count("listener ") == 2 + 1  # two listener lines, plus the notice
    # a path above the root is a 400, as in traffic
    rc, out, _ = explain(tmp_path, text, f"GET http://api.example.com:{port}/../x")
    assert "400 (the path climbs above the root)" in out


@pytest.mark.parametrize("req", ["ftp://x/", "GET http://bad host/", "GET http://h/\x01"])
def test_explain_refuses_what_it_cannot_read(tmp_path, cfg, req):
    rc, out, err = explain(tmp_path, cfg[0], req)
    assert rc == 2 and out == "" and "sluice: --explain" in err, (rc, out, err)
