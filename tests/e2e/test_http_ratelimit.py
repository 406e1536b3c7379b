"""Route rate limits (shared/spec/http.md, "Route policy"): one budget for the whole
process across its workers, 429 with Retry-After over it (logged `rate_limited`, counted in
sluice_http_errors_total{reason="rate_limited"}), keyed by client address, a header, or
the route; the budget refills at the configured rate; routes without rate_limit are not
limited."""
import socket
import threading

from helpers import free_port, scaled, wait_for
from httpbackend import HttpBackend
from test_admin import Admin
from test_http_proxy import http_config, read_response
from test_metrics_refused import metric

import pytest


@pytest.fixture
def backend():
    b = HttpBackend()
    yield b
    b.close()


def limited_config(port, backend, rate_limit, admin_port=None, workers=2, extra_routes=()):
    routes = [{"match": {"path_prefix": "/login"}, "backend": "app", "rate_limit": rate_limit},
              *extra_routes, {"match": {"path_prefix": "/"}, "backend": "app"}]
    return http_config(port, [backend.address], routes=routes, workers=workers,
                       admin_port=admin_port)


def one(port, path="/login", headers=(), source_ip=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5),
                                 source_address=(source_ip, 0) if source_ip else None)
    try:
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: a\r\n" +
                   "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode())
        return read_response(s)[:3]
    finally:
        s.close()


def burst(port, n, headers=()):
    """n connections opened at once, then n requests sent together: the statuses."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) for _ in range(n)]
    raw = ("GET /login HTTP/1.1\r\nHost: a\r\n" +
           "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()
    out = [None] * n
    go = threading.Event()

    def run(i):
        go.wait()
        socks[i].sendall(raw)
        out[i] = read_response(socks[i])[:2]

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(scaled(10))
    for s in socks:
        s.close()
    return out


def test_one_budget_across_two_workers(sluice, backend):
    port, admin_port = free_port(), free_port()
    s = sluice(limited_config(port, backend, {"requests": 16, "per": "60s"},
                              admin_port=admin_port))
    admin = Admin(admin_port)
    assert admin.status()["workers"] == 2
    # 64 concurrent connections: the kernel spreads them over both workers' listening
    # sockets (SO_REUSEPORT); a budget per worker would let about 32 through
    out = burst(port, 64)
    ok = [o for o in out if o[0] == 200]
    limited = [o for o in out if o[0] == 429]
    assert len(ok) == 16 and len(limited) == 48, [o[0] for o in out]
    for _, h in limited:
        assert 1 <= int(h["retry-after"]) <= 60, h
    assert len(backend.requests) == 16
    # other routes are not limited
    for _ in range(5):
        assert one(port, "/other")[0] == 200
    lines = s.access_log(48, where=lambda e: e.get("termination") == "rate_limited")
    assert len(lines) == 48 and all(e["status"] == 429 for e in lines)
    assert all(e["route"] == 0 and e["backend"] is None for e in lines)  # never sent on
    assert metric(admin, "sluice_http_errors_total", listener="web",
                  reason="rate_limited") == 48


def test_budget_refills_and_retry_after(sluice, backend):
    port = free_port()
    sluice(limited_config(port, backend, {"requests": 2, "per": "400ms", "burst": 1},
                          workers=1))
    assert one(port)[0] == 200
    status, h, body = one(port)
    assert status == 429 and h["retry-after"] == "1" and body == b"429 Too Many Requests\n"
    # at 2 per 400 ms, one more after ~200 ms (refused tries do not use the budget)
    wait_for(lambda: one(port)[0] == 200, scaled(2), interval=0.05, what="budget refilled")
    assert one(port)[0] == 429


def test_keys_client_ip_header_and_route(sluice, backend):
    port, admin_port = free_port(), free_port()

    def config(rl):
        return limited_config(port, backend, rl, admin_port=admin_port, workers=1)

    s = sluice(config({"requests": 2, "per": "60s"}))
    for ip in ("127.0.0.2", "127.0.0.3"):
        assert [one(port, source_ip=ip)[0] for _ in range(3)] == [200, 200, 429], ip

    s.write_config(config({"requests": 2, "per": "60s", "key": "header:X-Api-Key"}))
    code, _, body = Admin(admin_port).reload()
    assert code == 200, body
    k1, k2 = [("X-Api-Key", "k1")], [("X-Api-Key", "k2")]
    assert [one(port, headers=k1, source_ip=f"127.0.0.{n}")[0] for n in (5, 6, 7)] == \
        [200, 200, 429]
    assert one(port, headers=k2)[0] == 200
    # without the header: keyed by the client address
    assert [one(port, source_ip="127.0.0.4")[0] for _ in range(3)] == [200, 200, 429]

    s.write_config(config({"requests": 3, "per": "60s", "key": "route"}))
    code, _, body = Admin(admin_port).reload()
    assert code == 200, body
    got = [one(port, source_ip=f"127.0.0.{n}")[0] for n in (5, 6, 7, 8)]
    assert got == [200, 200, 200, 429]


def test_reload_with_same_limit_keeps_the_budget(sluice, backend):
    port, admin_port = free_port(), free_port()
    s = sluice(limited_config(port, backend, {"requests": 2, "per": "60s"},
                              admin_port=admin_port, workers=1))
    assert [one(port)[0] for _ in range(3)] == [200, 200, 429]
    # same rate_limit, other settings changed: still limited; a changed limit starts afresh
    s.write_config(limited_config(port, backend, {"requests": 2, "per": "60s"},
                                  admin_port=admin_port, workers=1,
                                  extra_routes=[{"match": {"path": "/x"}, "backend": "app"}]))
    code, _, body = Admin(admin_port).reload()
    assert code == 200, body
    assert one(port)[0] == 429
    s.write_config(limited_config(port, backend, {"requests": 3, "per": "60s"},
                                  admin_port=admin_port, workers=1))
    code, _, body = Admin(admin_port).reload()
    assert code == 200, body
    assert [one(port)[0] for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.parametrize("rl,error", [
    ({"per": "1s"}, "rate_limit: missing required key 'requests'"),
    ({"requests": 0, "per": "1s"}, "rate_limit.requests"),
    ({"requests": 5, "per": "1s", "key": "user"},
     "invalid value 'user' (expected one of: client_ip, route, header:NAME)"),
    ({"requests": 5, "per": "1s", "max_keys": 2}, "rate_limit.max_keys"),
    ({"requests": 5, "per": "1s", "bust": 2}, "rate_limit"),
])
def test_rate_limit_config_errors(tmp_path, rl, error):
    import os
    import subprocess
    path = tmp_path / "bad.yaml"
    path.write_text(limited_config(free_port(), type("B", (), {"address": "127.0.0.1:1"}), rl))
    r = subprocess.run([os.environ.get("SLUICE_BUILD", "build") + "/sluice", "-t", "-c",
                        str(path)], capture_output=True, text=True)
    assert r.returncode != 0 and error in r.stderr, r.stderr
