"""HTTP health probes (backends[].health.type: http).

A probe is its own connection: "GET <path> HTTP/1.1" with Host (health.host, else the
server's address host), "User-Agent: sluice-health" and "Connection: close". The response
is read with the strict parser: a server is up when the status is in expect_status and the
body holds expect_body; otherwise health.last_check says why, and "is DOWN" is logged.
The servers here are scripted: /healthz answers what the test sets, any other path is
ordinary traffic answered "server=NAME"."""
import http.client
import re
import socket
import ssl
import time

import pytest

from helpers import free_port, l4_config, scaled, wait_for
from test_admin import Admin, find_server

HEALTH_OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\n"
             b"state: healthy\n")
HEALTH_CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"9\r\nstate: he\r\n6\r\nalthy\n\r\n0\r\n\r\n")
HEALTH_503 = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 15\r\n\r\n"
              b"state: healthy\n")
HEALTH_NO_TEXT = b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nstate: starting\n"
HEALTH_MALFORMED = b"HTTP/1.1 200 OK\nContent-Length: 15\n\nstate: healthy\n"


class HealthServer:
    """A scripted HTTP server: `health` is what /healthz answers (None: nothing, the
    connection held open); `probes` the heads of the /healthz requests received."""

    def __init__(self, scripted, name, tls=None):
        self.name = name
        self.health = HEALTH_OK
        self.probes = []
        self.tls = tls  # an ssl.SSLContext: the server speaks TLS
        self.server = scripted(self.serve)
        self.address = self.server.address

    def serve(self, s):
        if not self.tls:
            return self.handle(s)
        with self.tls.wrap_socket(s, server_side=True) as t:
            return self.handle(t)

    def handle(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return None
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ")
                fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
                if target == "/healthz":
                    self.probes.append((method, target, version, fields))
                    answer = self.health
                    if answer is None:
                        while s.recv(4096):  # silent until sluice gives up and closes
                            pass
                        return "silent"
                    s.sendall(answer)
                    return "probe"
                body = f"server={self.name}\n".encode()
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except (OSError, socket.timeout):
            return None


def config(port, aport, servers, **health):
    h = {"type": "http", "path": "/healthz", "expect_body": "healthy", "interval": "200ms",
         "timeout": "400ms", "healthy_threshold": 1, "unhealthy_threshold": 1, **health}
    return l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http", "backend": "app"}],
        [{"name": "app", "protocol": "http", "servers": [{"address": a} for a in servers],
          "health": h}],
        workers=1, admin={"bind": f"127.0.0.1:{aport}"})


def log_count(s, address, state):
    return s.stderr().count(f"server {address} of backend app is {state}:")


def wait_log(s, address, state, count=1):
    try:
        wait_for(lambda: log_count(s, address, state) >= count, scaled(5),
                 what=f"{address} {state} #{count}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- sluice stderr:\n{s.stderr()}") from None


def server_status(admin, address):
    return find_server(admin.status(), "app", address)


def fetch(port):
    """One request through the http listener: the name of the server that answered."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(5))
    try:
        c.request("GET", "/app", headers={"Connection": "close"})
        r = c.getresponse()
        body = r.read().decode()
        assert r.status == 200, (r.status, body)
        return body.strip().removeprefix("server=")
    finally:
        c.close()


def start(sluice, scripted, **health):
    a, b = HealthServer(scripted, "a"), HealthServer(scripted, "b")
    port, aport = free_port(), free_port()
    s = sluice(config(port, aport, [a.address, b.address], **health))
    s.wait_listening([port, aport])
    wait_log(s, a.address, "UP")
    wait_log(s, b.address, "UP")
    return s, a, b, port, Admin(aport)


def test_probe_request_and_ok_status(sluice, scripted):
    """The probe's request is the documented GET with health.host; a passing check shows
    "ok in N ms (status 200)" and the server is healthy; no "not implemented" warning."""
    s, a, b, port, admin = start(sluice, scripted, host="health.example")
    st = server_status(admin, a.address)
    assert st["healthy"] is True, st
    assert re.fullmatch(r"ok in \d+ ms \(status 200\)", st["health"]["last_check"]), st
    assert "not implemented" not in s.stderr()
    method, target, version, fields = a.probes[0]
    assert (method, target, version) == ("GET", "/healthz", "HTTP/1.1")
    assert fields == [("Host", "health.example"), ("User-Agent", "sluice-health"),
                      ("Connection", "close")]
    assert {fetch(port) for _ in range(6)} == {"a", "b"}


def test_probe_host_defaults_to_server_host(sluice, scripted):
    s, a, b, port, admin = start(sluice, scripted, path="/healthz", expect_status="200")
    assert dict(a.probes[0][3])["Host"] == "127.0.0.1"
    assert dict(b.probes[0][3])["Host"] == "127.0.0.1"


@pytest.mark.parametrize("bad,detail,good", [
    (HEALTH_503, r"status 503 not in 200-399", HEALTH_OK),
    (HEALTH_NO_TEXT, r"body does not contain 'healthy'", HEALTH_CHUNKED),
    (HEALTH_MALFORMED, r"malformed response: bare lf", HEALTH_OK),
    (None, r"timeout after 400 ms waiting for a response", HEALTH_OK),
], ids=["503", "no-text", "malformed", "silent"])
def test_server_goes_down_and_comes_back(sluice, scripted, bad, detail, good):
    """A bad answer takes the server DOWN with the reason in last_check and the log, and
    traffic goes only to the other server; a good answer brings it back UP."""
    s, a, b, port, admin = start(sluice, scripted)
    a.health = bad
    wait_log(s, a.address, "DOWN")
    line = [x for x in s.stderr().splitlines() if f"{a.address} of backend app is DOWN" in x]
    assert re.search(detail, line[0]), line
    st = wait_for(lambda: (lambda x: x if not x["healthy"] else None)(
        server_status(admin, a.address)), scaled(5), interval=0.05, what="a unhealthy")
    assert re.fullmatch(detail, st["health"]["last_check"]), st
    assert server_status(admin, b.address)["healthy"] is True
    assert {fetch(port) for _ in range(6)} == {"b"}
    a.health = good
    wait_log(s, a.address, "UP", count=2)
    st = server_status(admin, a.address)
    assert st["healthy"] is True and st["health"]["last_check"].startswith("ok in "), st
    assert log_count(s, b.address, "DOWN") == 0
    deadline = time.monotonic() + scaled(5)
    seen = set()
    while seen != {"a", "b"} and time.monotonic() < deadline:
        seen.add(fetch(port))
    assert seen == {"a", "b"}


def test_https_probe(sluice, scripted, tmp_path):
    """type https: the same GET over TLS, verified with the backend's tls settings; the
    status decides, and the detail names the TLS version."""
    from test_health import make_cert
    cert, key = make_cert(str(tmp_path))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = HealthServer(scripted, "tls", tls=ctx)
    port, aport = free_port(), free_port()
    text = l4_config(
        [{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp", "backend": "app"}],
        [{"name": "app", "protocol": "tls", "tls": {"ca": cert}, "servers": [
            {"address": srv.address}],
          "health": {"type": "https", "path": "/healthz", "interval": "200ms",
                     "timeout": "400ms", "healthy_threshold": 1, "unhealthy_threshold": 1}}],
        workers=1, admin={"bind": f"127.0.0.1:{aport}"})
    s = sluice(text)
    s.wait_listening([port, aport])
    wait_log(s, srv.address, "UP")
    admin = Admin(aport)
    st = server_status(admin, srv.address)
    assert re.fullmatch(r"ok in \d+ ms \(status 200, TLSv1\.[23]\)",
                        st["health"]["last_check"]), st
    assert srv.probes[0][:3] == ("GET", "/healthz", "HTTP/1.1")
    assert dict(srv.probes[0][3])["Host"] == "127.0.0.1"
    srv.health = HEALTH_503
    wait_log(s, srv.address, "DOWN")
    st = server_status(admin, srv.address)
    assert st["health"]["last_check"] == "status 503 not in 200-399", st
