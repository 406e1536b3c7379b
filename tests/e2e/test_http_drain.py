"""Admin drain/disable at L7 (shared/spec/http.md "Draining at L7", configuration.md
drain_timeout) on in-flight HTTP exchanges: a request in flight to a disabled server
finishes and its server connection is then closed, not pooled; an exchange still in flight
when the server's drain_timeout passes is cut (503 before a response head, the client
connection closed after one; logged `drained`); affinity-bound requests keep reaching a
draining server until its drain_timeout, then move with a new cookie. (Idle pooled
connections closing at once: test_http_more.py.)"""
import socket
import threading
import time

from helpers import free_port, scaled, wait_for
from test_admin import Admin
from test_http_affinity import cookie_value
from test_http_more import CountingBackend, send_later
from test_http_proxy import closed_by_peer, conn, http_config, read_response

import pytest


@pytest.fixture
def backend():
    made = []

    def make():
        made.append(CountingBackend())
        return made[-1]

    yield make
    for b in made:
        b.close()


def test_in_flight_request_to_disabled_server_finishes_then_its_connection_closes(
        sluice, backend):
    a, b = backend(), backend()
    port, admin_port = free_port(), free_port()
    sluice(http_config(port, [a.address, b.address], admin_port=admin_port,
                       backend_kw={"balance": "round_robin", "drain_timeout": "30s"}))
    c = conn(port)
    t, out = send_later(c, b"GET /slow/800 HTTP/1.1\r\nHost: a\r\n\r\n")
    wait_for(lambda: len(a.requests) + len(b.requests) == 1, scaled(5), what="request in flight")
    busy, other = (a, b) if a.requests else (b, a)
    code, _, body = Admin(admin_port).patch_server("app", busy.address, {"state": "disabled"})
    assert code == 200, body
    t.join(scaled(5))
    assert out and out[0][0] == 200  # the response in flight completed
    wait_for(lambda: busy.closed_ids == [1], scaled(2), what="its server connection closed")
    # the same client connection carries on, to the other server
    for _ in range(3):
        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(c)[0] == 200
    assert len(busy.requests) == 1 and len(other.requests) == 3


def test_exchange_waiting_for_a_drained_server_is_cut_at_drain_timeout(sluice, backend):
    a = backend()
    port, admin_port = free_port(), free_port()
    s = sluice(http_config(port, [a.address], admin_port=admin_port,
                           backend_kw={"drain_timeout": "1s", "timeout": "60s"}))
    c = conn(port)
    t, out = send_later(c, b"GET /slow/5000 HTTP/1.1\r\nHost: a\r\n\r\n")
    wait_for(lambda: len(a.requests) == 1, scaled(5), what="request at the server")
    code, _, body = Admin(admin_port).patch_server("app", a.address, {"state": "drain"})
    assert code == 200, body
    t0 = time.monotonic()
    t.join(scaled(4))
    assert out and out[0][0] == 503
    assert 0.7 <= time.monotonic() - t0 < scaled(3)
    e = s.access_log(1)[0]
    assert e["termination"] == "drained" and e["error"] == "server removed or drained"
    assert e["status"] == 503


class StallingServer:
    """Answers every request with a 100-byte Content-Length response, sends 3 bytes of the
    body, then stalls until closed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(s)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")

    def close(self):
        self.sock.close()
        for s in self.conns:
            s.close()


def test_response_in_progress_from_a_drained_server_is_cut_at_drain_timeout(sluice):
    srv = StallingServer()
    try:
        port, admin_port = free_port(), free_port()
        s = sluice(http_config(port, [srv.address], admin_port=admin_port,
                               backend_kw={"drain_timeout": "1s", "timeout": "60s"}))
        c = conn(port)
        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        while not got.endswith(b"abc"):
            got += c.recv(4096)
        assert got.startswith(b"HTTP/1.1 200")
        code, _, body = Admin(admin_port).patch_server("app", srv.address, {"state": "drain"})
        assert code == 200, body
        t0 = time.monotonic()
        assert closed_by_peer(c, scaled(4))
        assert 0.7 <= time.monotonic() - t0 < scaled(3)
        e = s.access_log(1)[0]
        assert e["termination"] == "drained" and e["status"] == 200
    finally:
        srv.close()


def test_affinity_to_a_draining_server_until_drain_timeout(sluice, backend):
    a, b = backend(), backend()
    port, admin_port = free_port(), free_port()
    sluice(http_config(port, [a.address, b.address], admin_port=admin_port,
                       backend_kw={"balance": "round_robin", "drain_timeout": "2s",
                                   "affinity": {"cookie": "S"}}))

    def get(cookie=None):
        raw = b"GET / HTTP/1.1\r\nHost: a\r\n" + (
            f"Cookie: S={cookie}\r\n".encode() if cookie else b"") + b"\r\n"
        c = conn(port)
        c.sendall(raw)
        status, h, _, _ = read_response(c)
        c.close()
        assert status == 200
        return h.get("set-cookie")

    value = cookie_value(get(), "S")
    sticky, other = (a, b) if a.requests else (b, a)
    code, _, body = Admin(admin_port).patch_server("app", sticky.address, {"state": "drain"})
    assert code == 200, body
    t0 = time.monotonic()
    assert get(value) is None and len(sticky.requests) == 2
    # served, and its server connection is not pooled: closed after the response
    wait_for(lambda: len(sticky.closed_ids) == sticky.connections, scaled(2),
             what="the drained server's connection closed after the response")
    # once drain_timeout has passed, the session moves (a new cookie)
    wait_for(lambda: time.monotonic() - t0 > 2.05, scaled(4), interval=0.1, what="drain_timeout")
    moved = get(value)
    assert moved is not None and cookie_value(moved, "S") != value
    assert len(sticky.requests) == 2 and len(other.requests) == 1
