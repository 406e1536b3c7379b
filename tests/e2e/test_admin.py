"""The admin API on admin.bind: status, reload, PATCH of servers, bearer token, limits,
keep-alive, and reload / drain through the API under traffic.

The small admin client here (admin_config, start_admin, api) is reused by test_metrics.py
and test_dashboard.py."""
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse

import pytest

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_all, recv_line, scaled,
                     accepted, wait_closed, wait_for)


# ---------------------------------------------------------------------------------------
# admin client helpers


def admin_config(listen_port, servers, admin_port, token_file=None, backend="pool",
                 listener="front", workers=2, **backend_kw):
    """A tcp listener `listener` on listen_port to backend `backend` over `servers`, with
    the admin API on admin_port."""
    admin = {"bind": f"127.0.0.1:{admin_port}"}
    if token_file:
        admin["token_file"] = token_file
    return l4_config(
        listeners=[{"name": listener, "bind": f"127.0.0.1:{listen_port}", "protocol": "tcp",
                    "backend": backend}],
        backends=[{"name": backend, "servers": [{"address": a} for a in servers],
                   **backend_kw}],
        workers=workers, admin=admin)


def wait_admin(s, admin_port):
    """Waits until the admin port listens (fails with sluice's log if it exits)."""
    s.wait_listening([admin_port])


class Admin:
    """A keep-alive HTTP client for the admin API on 127.0.0.1:port."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, token=None, headers=None):
        """Returns (status, headers dict (lower-case names), parsed JSON or text)."""
        h = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=scaled(10))
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closed an idle keep-alive connection: retry on a new one
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        ctype = hdrs.get("content-type", "")
        if ctype.startswith("application/json") and method != "HEAD":
            return r.status, hdrs, json.loads(data)
        return r.status, hdrs, data.decode()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def status(self):
        code, _, body = self.get("/api/v1/status")
        assert code == 200, body
        return body

    def patch_server(self, backend, address, body, quote=True, **kw):
        a = urllib.parse.quote(address, safe="") if quote else address
        return self.request("PATCH", f"/api/v1/backends/{backend}/servers/{a}", body=body, **kw)

    def reload(self, **kw):
        return self.request("POST", "/api/v1/reload", **kw)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def find_server(status, backend, address):
    for b in status["backends"]:
        if b["name"] == backend:
            for s in b["servers"]:
                if s["address"] == address:
                    return s
    raise AssertionError(f"no server {backend}/{address} in {status}")


def raw_request(port, data, timeout=None):
    """Sends raw bytes on a new connection and returns everything read until EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout or scaled(5))
    try:
        s.sendall(data)
        return recv_all(s, timeout)
    finally:
        s.close()


def status_line(raw):
    return int(raw.split(b" ", 2)[1])


def json_body(raw):
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


@pytest.fixture
def setup(sluice, demo, tmp_path):
    """A running sluice with two banner servers "a" and "b" and the admin API (no token).
    Returns a namespace with s, admin, port, admin_port, servers."""
    def make(token=None, **backend_kw):
        servers = [demo("banner", name="a"), demo("banner", name="b")]
        port, aport = free_port(), free_port()
        token_file = None
        if token is not None:
            token_file = str(tmp_path / "admin.token")
            with open(token_file, "w") as f:
                f.write(token)
            os.chmod(token_file, 0o600)
        text = admin_config(port, [d.address for d in servers], aport, token_file=token_file,
                            **backend_kw)
        s = sluice(text)
        wait_admin(s, aport)
        ns = type("Setup", (), {})()
        ns.s, ns.port, ns.admin_port, ns.servers = s, port, aport, servers
        ns.admin = Admin(aport)
        ns.token_file = token_file
        ns.config = text
        return ns
    return make


# ---------------------------------------------------------------------------------------
# status


def test_status_lists_listeners_backends_servers(setup):
    t = setup()
    c = connect(t.port)
    name = recv_line(c)
    st = t.admin.status()
    assert st["state"] == "running" and st["workers"] == 2 and st["generation"] >= 1
    assert st["active_connections"] == 1
    (lst,) = st["listeners"]
    assert lst["name"] == "front" and lst["protocol"] == "tcp"
    assert lst["binds"] == [f"127.0.0.1:{t.port}"] and lst["backend"] == "pool"
    assert lst["active_connections"] == 1 and lst["connections_total"] == 1
    (be,) = st["backends"]
    assert be["name"] == "pool" and be["balance"] == "round_robin"
    assert [s["address"] for s in be["servers"]] == [d.address for d in t.servers]
    for srv in be["servers"]:
        assert srv["state"] == "enabled" and srv["weight"] == 1 and srv["healthy"] is True
        assert srv["usable"] is True
        assert srv["health"]["checked"] is False
        assert srv["health"]["last_check"] == "no health check configured"
    by_name = {d.name: d.address for d in t.servers}
    srv = find_server(st, "pool", by_name[name])
    assert srv["active_connections"] == 1 and srv["connections_total"] == 1
    c.close()
    wait_for(lambda: t.admin.status()["active_connections"] == 0, scaled(5),
             what="active connections back to 0")
    t.s.stop()


def test_health_detail_with_probes(sluice, demo):
    """A server with a tcp health check shows its probe result; a dead one is down."""
    up = demo("echo")
    dead = f"127.0.0.1:{free_port()}"
    port, aport = free_port(), free_port()
    text = admin_config(port, [up.address, dead], aport,
                        health={"interval": "200ms", "timeout": "200ms",
                                "healthy_threshold": 1, "unhealthy_threshold": 1})
    s = sluice(text)
    wait_admin(s, aport)
    admin = Admin(aport)

    def settled():
        st = admin.status()
        a, b = find_server(st, "pool", up.address), find_server(st, "pool", dead)
        return (a, b) if a["healthy"] and not b["healthy"] else None
    a, b = wait_for(settled, scaled(10), interval=0.1, what="probe results")
    assert a["health"]["checked"] is True and b["health"]["checked"] is True
    assert re.fullmatch(r"ok in \d+ ms", a["health"]["last_check"]), a
    assert "connection refused" in b["health"]["last_check"], b
    assert a["health"]["probe_successes"] >= 1 and a["health"]["probe_failures"] == 0, a
    assert b["health"]["probe_successes"] == 0 and b["health"]["probe_failures"] >= 1, b
    assert a["usable"] is True and b["usable"] is False
    s.stop()


def test_unknown_path_and_wrong_method(setup):
    t = setup()
    code, _, body = t.admin.get("/nope")
    assert code == 404 and "error" in body
    code, _, body = t.admin.get("/api/v1/status/extra")
    assert code == 404
    code, hdrs, body = t.admin.request("DELETE", "/api/v1/status")
    assert code == 405 and "error" in body and "GET" in hdrs["allow"]
    code, hdrs, body = t.admin.get("/api/v1/reload")
    assert code == 405 and hdrs["allow"] == "POST"
    code, hdrs, _ = t.admin.request("POST", "/metrics")
    assert code == 405
    # query strings are ignored for routing
    code, _, body = t.admin.get("/api/v1/status?pretty=1")
    assert code == 200 and body["listeners"]
    # HEAD: the headers of GET, no body
    code, hdrs, body = t.admin.request("HEAD", "/api/v1/status")
    assert code == 200 and int(hdrs["content-length"]) > 0
    t.s.stop()


# ---------------------------------------------------------------------------------------
# PATCH


def test_patch_state_and_weight(setup):
    t = setup()
    a, b = (d.address for d in t.servers)
    code, _, body = t.admin.patch_server("pool", a, {"state": "drain"})
    assert code == 200, body
    assert body["address"] == a and body["state"] == "drain" and body["usable"] is False
    # plain (not URL-encoded) address works too
    code, _, body = t.admin.patch_server("pool", a, {"state": "disabled"}, quote=False)
    assert code == 200 and body["state"] == "disabled"
    code, _, body = t.admin.patch_server("pool", a, {"weight": 7})
    assert code == 200 and body["weight"] == 7 and body["state"] == "disabled"
    code, _, body = t.admin.patch_server("pool", a, {"state": "enabled", "weight": 3})
    assert code == 200 and body["state"] == "enabled" and body["weight"] == 3
    srv = find_server(t.admin.status(), "pool", a)
    assert srv["state"] == "enabled" and srv["weight"] == 3 and srv["config_weight"] == 1
    # GET on the same path returns the server
    code, _, body = t.admin.get("/api/v1/backends/pool/servers/" + urllib.parse.quote(b, safe=""))
    assert code == 200 and body["address"] == b
    t.s.stop()


@pytest.mark.parametrize("body, fragment", [
    ("{", "bad JSON"),
    ("", "bad JSON"),
    ("[]", "bad JSON"),
    ('{"state":"drain"} trailing', "bad JSON"),
    ('{"state":true}', '"state" must be one of "enabled", "drain", "disabled"'),
    ('{"state":"sleeping"}', "state"),
    ('{"state":5}', "state"),
    ('{"weight":"5"}', "weight"),
    ('{"weight":1.5}', "only integers"),
    ('{"weight":-1}', "weight"),
    ('{"weight":257}', "weight"),
    ('{"colour":"red"}', "unknown field"),
    ("{}", "nothing to change"),
    ('{"state":"drain","state":"enabled"}', "duplicate"),
])
def test_patch_bad_bodies(setup, body, fragment):
    t = setup()
    code, hdrs, resp = t.admin.patch_server("pool", t.servers[0].address, body)
    assert code == 400, resp
    assert hdrs["content-type"].startswith("application/json")
    assert fragment in resp["error"], resp
    # nothing changed
    assert find_server(t.admin.status(), "pool", t.servers[0].address)["state"] == "enabled"
    t.s.stop()


def test_patch_unknown_backend_and_server(setup):
    t = setup()
    code, _, body = t.admin.patch_server("nope", t.servers[0].address, {"state": "drain"})
    assert code == 404 and "nope" in body["error"]
    code, _, body = t.admin.patch_server("pool", "127.0.0.1:1", {"state": "drain"})
    assert code == 404 and "127.0.0.1:1" in body["error"]
    code, _, body = t.admin.patch_server("pool", "127.0.0.1%zz", {"state": "drain"}, quote=False)
    assert code == 404
    t.s.stop()


# ---------------------------------------------------------------------------------------
# bearer token


def test_token_required_for_mutating_calls(setup):
    t = setup(token="  s3cret-token\n\n")
    a = t.servers[0].address
    # reads need no token
    assert t.admin.get("/api/v1/status")[0] == 200
    assert t.admin.get("/metrics")[0] == 200
    assert t.admin.get("/")[0] == 200
    for call in (lambda **kw: t.admin.reload(**kw),
                 lambda **kw: t.admin.patch_server("pool", a, {"state": "drain"}, **kw)):
        code, hdrs, body = call()
        assert code == 401 and "error" in body and "bearer" in hdrs["www-authenticate"].lower()
        code, _, body = call(token="wrong")
        assert code == 401 and body["error"] == "invalid token"
        code, _, body = call(token="s3cret-token-and-more")
        assert code == 401
        code, _, body = call(token="s3cret-toke")
        assert code == 401
        code, _, body = call(token="s3cret-token")
        assert code == 200, body
    # a scheme other than Bearer is refused
    code, _, _ = t.admin.request("POST", "/api/v1/reload",
                                 headers={"Authorization": "Basic czNjcmV0LXRva2Vu"})
    assert code == 401
    t.s.stop()


def test_token_file_is_reread_on_reload(setup):
    t = setup(token="first")
    assert t.admin.reload(token="first")[0] == 200
    with open(t.token_file, "w") as f:
        f.write("second\n")
    assert t.admin.reload(token="first")[0] == 200  # checked before the reload happens
    assert t.admin.reload(token="first")[0] == 401
    assert t.admin.reload(token="second")[0] == 200
    t.s.stop()


def test_cross_origin_mutation_refused(setup):
    t = setup()
    code, _, body = t.admin.reload(headers={"Origin": "http://evil.example"})
    assert code == 403 and "cross-origin" in body["error"]
    code, _, body = t.admin.reload(headers={"Origin": f"http://127.0.0.1:{t.admin_port}"})
    assert code == 200
    t.s.stop()


# ---------------------------------------------------------------------------------------
# limits and HTTP handling


def test_oversized_body_and_headers(setup):
    t = setup()
    path = "/api/v1/backends/pool/servers/" + urllib.parse.quote(t.servers[0].address, safe="")
    body = b'{"state":"drain","pad":"' + b"x" * (70 * 1024) + b'"}'
    code, _, resp = t.admin.request("PATCH", path, body=body)
    assert code == 413 and "error" in resp
    # announced only: refused before the body is sent
    raw = raw_request(t.admin_port, f"PATCH {path} HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Length: 10000000\r\n\r\n".encode())
    assert status_line(raw) == 413 and "error" in json_body(raw)
    raw = raw_request(t.admin_port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
                      b"\r\n\r\n")
    assert status_line(raw) == 431 and "error" in json_body(raw)
    raw = raw_request(t.admin_port, b"GET / HTTP/1.1\r\n" +
                      b"".join(b"H%d: v\r\n" % i for i in range(100)) + b"\r\n")
    assert status_line(raw) == 431
    raw = raw_request(t.admin_port, b"GET /\x01 HTTP/1.1\r\n\r\n")
    assert status_line(raw) == 400 and "error" in json_body(raw)
    raw = raw_request(t.admin_port, b"GET / HTTP/2.0\r\n\r\n")
    assert status_line(raw) == 505
    raw = raw_request(t.admin_port, b"POST /api/v1/reload HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status_line(raw) == 411
    # the server is still fine
    assert t.admin.get("/api/v1/status")[0] == 200
    t.s.stop()


def test_request_timeout(setup):
    t = setup()
    s = socket.create_connection(("127.0.0.1", t.admin_port), timeout=scaled(20))
    s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")  # never finished
    start = time.monotonic()
    raw = recv_all(s, scaled(20))
    waited = time.monotonic() - start
    assert status_line(raw) == 408 and "error" in json_body(raw)
    assert 8 <= waited <= scaled(15)
    s.close()
    t.s.stop()


def test_keep_alive_and_pipelining(setup):
    t = setup()
    s = socket.create_connection(("127.0.0.1", t.admin_port), timeout=scaled(5))
    one = b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(one)
    f = s.makefile("rb")

    def read_response():
        status = f.readline()
        length = None
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status.split()[1]), f.read(length)
    code, body = read_response()
    assert code == 200 and json.loads(body)["listeners"]
    # 20 requests in one write, answered in order on the same connection
    patch = (b'PATCH /api/v1/backends/pool/servers/' +
             urllib.parse.quote(t.servers[0].address, safe="").encode() +
             b' HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{"weight":N}')
    s.sendall(b"".join(patch.replace(b"N", b"%d" % (i % 10)) for i in range(20)) + one)
    for i in range(20):
        code, body = read_response()
        assert code == 200 and json.loads(body)["weight"] == i % 10
    code, _ = read_response()
    assert code == 200
    # HTTP/1.0 without keep-alive: closed after the response
    raw = raw_request(t.admin_port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert status_line(raw) == 200 and b"sluice_connections_total" in raw
    s.close()
    t.s.stop()


def test_connection_limit(setup):
    t = setup()
    held = [socket.create_connection(("127.0.0.1", t.admin_port)) for _ in range(64)]
    # make sure sluice accepted them all
    wait_for(lambda: all(h.send(b"G") == 1 for h in held), scaled(5), what="64 admin conns")
    wait_for(lambda: accepted(t.admin_port, [h.getsockname()[1] for h in held]), scaled(5),
             what="sluice to accept the 64 admin connections")
    raw = raw_request(t.admin_port, b"GET /api/v1/status HTTP/1.1\r\n\r\n")
    assert status_line(raw) == 503
    for h in held:
        h.close()
    wait_for(lambda: t.admin.request("GET", "/api/v1/status")[0] == 200, scaled(5),
             what="admin API usable again")
    t.s.stop()


def test_dashboard_and_metrics_content_types(setup):
    t = setup()
    code, hdrs, body = t.admin.get("/")
    assert code == 200 and hdrs["content-type"] == "text/html; charset=utf-8"
    assert '<script src="/dashboard.js"></script>' in body
    csp = hdrs["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe" not in csp
    for path, ctype, text in (("/dashboard.js", "text/javascript; charset=utf-8", "'use strict'"),
                              ("/dashboard.css", "text/css; charset=utf-8", ":root {")):
        code, hdrs, body = t.admin.get(path)
        assert code == 200 and hdrs["content-type"] == ctype and text in body, (path, hdrs)
        assert hdrs["x-content-type-options"] == "nosniff"
    code, hdrs, body = t.admin.get("/metrics")
    assert code == 200 and hdrs["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    t.s.stop()


# ---------------------------------------------------------------------------------------
# reload and drain through the API


class Load(threading.Thread):
    """Opens connections continuously (banner + one echo round trip each) and counts
    successes and failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                c = connect(self.port, timeout=scaled(5))
                recv_line(c)
                echo_roundtrip(c, b"ping")
                c.close()
                self.ok += 1
            except (OSError, AssertionError) as e:
                self.failures.append(repr(e))


def test_reload_under_load_and_broken_config(setup):
    t = setup()
    load = Load(t.port)
    load.start()
    try:
        wait_for(lambda: load.ok >= 20, scaled(10), what="traffic flowing")
        for i in range(5):
            # alternate the drain timeout so that every reload really changes something
            text = t.config.replace("name: pool\n", f"name: pool\n  drain_timeout: {i + 1}s\n")
            t.s.write_config(text)
            code, _, body = t.admin.reload()
            assert code == 200 and body == {"ok": True, "generation": i + 2}, body
            before = load.ok
            wait_for(lambda: load.ok >= before + 10, scaled(10), what="traffic after reload")
        # a broken file: every error is reported, the old configuration keeps serving
        t.s.write_config(t.config.replace("protocol: tcp", "protocol: carrier-pigeon")
                         .replace("backend: pool", "backend: nowhere"))
        code, _, body = t.admin.reload()
        assert code == 422 and body["ok"] is False
        assert len(body["errors"]) >= 2, body
        assert any("protocol" in e for e in body["errors"]), body
        assert any("nowhere" in e for e in body["errors"]), body
        before = load.ok
        wait_for(lambda: load.ok >= before + 10, scaled(10), what="traffic after a failed reload")
    finally:
        load.stop = True
        load.join()
    assert load.failures == [], load.failures[:5]
    st = t.admin.status()
    assert st["reloads"] == {"success": 5, "failure": 1}
    assert st["generation"] == 6
    t.s.stop()


def test_drain_and_enable_through_the_api(setup):
    t = setup(drain_timeout="2s")
    by_name = {d.name: d.address for d in t.servers}
    # an open connection on server "a"
    held = None
    others = []
    for _ in range(10):
        c = connect(t.port, timeout=scaled(10))
        if recv_line(c) == "a" and held is None:
            held = c
        else:
            others.append(c)
    assert held is not None
    for c in others:
        c.close()
    code, _, body = t.admin.patch_server("pool", by_name["a"], {"state": "drain"})
    assert code == 200 and body["state"] == "drain"
    drained_at = time.monotonic()
    # new connections all go to "b"
    for _ in range(10):
        c = connect(t.port)
        assert recv_line(c) == "b"
        c.close()
    # the open one still works until the drain timeout...
    echo_roundtrip(held, b"still here")
    # ...then it is closed, logged as "drained"
    held.settimeout(scaled(10))
    try:
        rest = held.recv(100)
    except ConnectionResetError:
        rest = b""
    waited = time.monotonic() - drained_at
    assert rest == b"" and 1.5 <= waited <= scaled(5), (rest, waited)
    port = held.getsockname()[1]
    held.close()
    entry = t.s.log_for(port)
    assert entry["termination"] == "drained" and entry["server"] == by_name["a"], entry
    # enabled again: "a" takes new connections
    code, _, body = t.admin.patch_server("pool", by_name["a"], {"state": "enabled"})
    assert code == 200 and body["state"] == "enabled" and body["usable"] is True
    seen = set()
    for _ in range(10):
        c = connect(t.port)
        seen.add(recv_line(c))
        c.close()
    assert seen == {"a", "b"}
    t.s.stop()


def test_disabled_server_takes_no_connections(setup):
    t = setup(drain_timeout="1s")
    by_name = {d.name: d.address for d in t.servers}
    held = None
    while held is None:
        c = connect(t.port)
        if recv_line(c) == "b":
            held = c
        else:
            c.close()
    code, _, body = t.admin.patch_server("pool", by_name["b"], {"state": "disabled"})
    assert code == 200 and body["state"] == "disabled" and body["usable"] is False, body
    assert f"server {by_name['b']} of backend pool set to disabled: 1 open connection(s) " \
           "get 1000 ms" in t.s.stderr()
    # the API shows it apart from drain: disabled, healthy but not usable, a drain clock
    st = t.admin.status()
    srv = find_server(st, "pool", by_name["b"])
    assert (srv["state"], srv["healthy"], srv["usable"]) == ("disabled", True, False), srv
    assert 0 < srv["drain_ms_left"] <= 1000 and srv["active_connections"] == 1, srv
    assert st["backends"][0]["servers_usable"] == 1
    path = "/api/v1/backends/pool/servers/" + urllib.parse.quote(by_name["b"], safe="")
    assert t.admin.get(path)[2]["state"] == "disabled"
    # like drain: the open connection keeps working, then gets drain_timeout
    echo_roundtrip(held, b"still here")
    state, waited, _ = wait_closed(held, scaled(5))
    assert state in ("eof", "reset") and waited <= scaled(2.5), (state, waited)
    assert t.s.log_for(held)["termination"] == "drained"
    for _ in range(6):
        c = connect(t.port)
        assert recv_line(c) == "a"
        c.close()
    srv = find_server(t.admin.status(), "pool", by_name["b"])
    assert srv["state"] == "disabled" and srv["active_connections"] == 0, srv
    assert srv["connections_total"] == 1, srv  # none of the six new ones
    code, _, body = t.admin.patch_server("pool", by_name["b"], {"state": "enabled"})
    assert code == 200 and body["usable"] is True and "drain_ms_left" not in body, body
    assert t.admin.patch_server("pool", by_name["a"], {"weight": 0})[0] == 200
    for _ in range(6):
        c = connect(t.port)
        assert recv_line(c) == "b"
        c.close()
    t.s.stop()


def listening_ports_of(pid):
    """The TCP ports that process `pid` itself listens on (its socket inodes matched
    against the LISTEN entries of /proc/net/tcp{,6}), whoever else uses the host."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and int(fields[9]) in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_admin_off_without_block(sluice, demo):
    """Without an `admin` block sluice listens on its listener's port only: nothing on the
    default admin port 127.0.0.1:9900 (nor anywhere else)."""
    d = demo("echo")
    port = free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}]))
    c = connect(port)  # serving: start-up is over, whatever it was going to open is open
    echo_roundtrip(c)
    c.close()
    assert listening_ports_of(s.proc.pid) == {port}
    assert "admin API listening" not in s.stderr()
    s.stop()


def test_admin_port_in_use_fails_start(sluice, demo, tmp_path):
    """admin.bind taken by someone else: exit code 2 with a one-line reason."""
    d = demo("echo")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    aport = busy.getsockname()[1]
    port = free_port()
    s = sluice(admin_config(port, [d.address], aport), wait=False)
    rc = s.wait_exit(scaled(10))
    assert rc == 2
    assert "admin.bind" in s.stderr() and "in use" in s.stderr()
    busy.close()
