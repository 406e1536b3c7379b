"""Daemon behaviour that packaging relies on (shared/spec/packaging.md): admin /healthz and
/readyz, shutdown_delay, a configuration without listeners, sluice_ready and
sluice_build_info, and two instances agreeing on consistent-hash picks behind PROXY v2."""
import signal
import socket
import struct
import subprocess
import time

from helpers import (SLUICE_BIN, connect, echo_roundtrip, free_port, l4_config, recv_line,
                     scaled, wait_closed, wait_for)
from test_admin import Admin
from test_gaps_logs import lines, logged
from test_metrics import parse_exposition

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def echo_config(port, address, admin_port, **top):
    return l4_config(
        [{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        [{"name": "pool", "servers": [{"address": address}]}],
        admin={"bind": f"127.0.0.1:{admin_port}"}, **top)


def start(sluice, demo, **top):
    """An echo backend, sluice in front of it with the admin API. Returns (s, port, admin)."""
    b = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(echo_config(port, b.address, aport, **top))
    s.wait_listening([aport])
    return s, port, Admin(aport)


def metric(admin, name):
    """The samples of `name` as {labels frozenset: value}."""
    code, _, text = admin.get("/metrics")
    assert code == 200
    _, samples = parse_exposition(text)
    return {labels: v for (n, labels), v in samples.items() if n == name}


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


def test_healthz_readyz_and_metrics(sluice, demo):
    """While serving: /healthz 200 ok, /readyz 200 ready (text/plain, GET and HEAD, no
    token), other methods 405; sluice_ready 1; sluice_build_info{version,openssl} 1 with
    the version of `sluice --version`."""
    s, _, admin = start(sluice, demo)
    code, hdrs, body = admin.get("/healthz")
    assert (code, body) == (200, "ok\n")
    assert hdrs["content-type"].startswith("text/plain")
    code, _, body = admin.get("/readyz")
    assert (code, body) == (200, "ready\n")
    code, hdrs, body = admin.request("HEAD", "/readyz")
    assert code == 200 and body == "" and hdrs["content-length"] == "6"
    code, hdrs, _ = admin.request("POST", "/readyz")
    assert code == 405 and hdrs["allow"] == "GET, HEAD"
    assert metric(admin, "sluice_ready") == {frozenset(): 1}
    info = metric(admin, "sluice_build_info")
    assert len(info) == 1 and list(info.values()) == [1]
    labels = dict(next(iter(info)))
    version = subprocess.run([SLUICE_BIN, "--version"], capture_output=True, text=True).stdout
    assert version.splitlines()[0] == f"sluice {labels['version']}"
    assert labels["openssl"] and labels["openssl"] in version.splitlines()[1]
    s.stop()


def test_shutdown_delay_keeps_accepting_while_not_ready(sluice, demo):
    """SIGTERM with shutdown_delay 2s: /readyz 503 `shutting down` and sluice_ready 0 at
    once, the listener still accepts and proxies new connections during the delay, closes
    after it (not before), open connections are then drained, and sluice exits 0."""
    s, port, admin = start(sluice, demo, shutdown_delay="2s", shutdown_timeout="20s")
    held = connect(port)
    echo_roundtrip(held)
    s.signal(signal.SIGTERM)
    start_t = time.monotonic()
    logged(s, "info", "shutdown: not ready, listeners close in 2s (shutdown_delay)")
    code, _, body = admin.get("/readyz")
    assert (code, body) == (503, "shutting down\n")
    assert metric(admin, "sluice_ready") == {frozenset(): 0}
    assert admin.get("/healthz")[0] == 200
    assert admin.status()["state"] == "stopping"
    # new connections are still accepted and served during the delay
    fresh = connect(port)
    echo_roundtrip(fresh, b"during the delay")
    fresh.close()
    assert time.monotonic() - start_t < 1.5, "the check above ran too late to prove anything"
    wait_for(lambda: refused(port), scaled(5), what="listener closed after shutdown_delay")
    assert time.monotonic() - start_t >= 1.9
    logged(s, "info", "shutdown: listeners closed, draining 1 connection(s) for up to 20s")
    assert s.running()
    echo_roundtrip(held, b"drained")  # the open connection is served through the drain
    held.close()
    assert s.wait_exit(scaled(5)) == 0, s.stderr()


def test_second_signal_skips_the_delay(sluice, demo):
    """A second SIGTERM during shutdown_delay skips the delay and the drain: the open
    connection closes now and sluice exits 0 long before the 60 s delay."""
    s, port, admin = start(sluice, demo, shutdown_delay="60s", shutdown_timeout="60s")
    held = connect(port)
    echo_roundtrip(held)
    s.signal(signal.SIGTERM)
    logged(s, "info", "shutdown: not ready, listeners close in 60s (shutdown_delay)")
    echo_roundtrip(connect(port), b"still accepting")
    start_t = time.monotonic()
    s.signal(signal.SIGTERM)
    state, _, _ = wait_closed(held, scaled(3))
    assert state in ("eof", "reset")
    assert s.wait_exit(scaled(3)) == 0, s.stderr()
    assert time.monotonic() - start_t < scaled(3)
    assert "second signal: closing every connection now" in s.stderr()


def test_reload_refused_during_the_delay(sluice, demo):
    """A reload (SIGHUP or the admin API) never changes a running shutdown."""
    s, port, admin = start(sluice, demo, shutdown_delay="30s")
    s.signal(signal.SIGTERM)
    logged(s, "info", "shutdown: not ready, listeners close in 30s (shutdown_delay)")
    s.signal(signal.SIGHUP)
    logged(s, "warn", "reload refused: sluice is stopping")
    code, _, body = admin.reload()
    assert code == 503, body
    assert "configuration reloaded" not in s.stderr()
    echo_roundtrip(connect(port))  # still the old listener, still accepting
    s.signal(signal.SIGTERM)
    assert s.wait_exit(scaled(5)) == 0


def admin_only(aport, listeners):
    doc = {"workers": 1, "admin": {"bind": f"127.0.0.1:{aport}"}, "log": {"access": "stdout"}}
    if listeners is not None:
        doc["listeners"] = listeners
    return l4_config.__globals__["yaml"].safe_dump(doc, sort_keys=False)


def test_no_listeners_is_valid(sluice, demo, tmp_path):
    """`listeners: []` and no listeners key at all are valid: -t passes, sluice serves the
    admin API only (ready), warns `no listeners configured`, and a reload can add one."""
    for listeners in ([], None):
        aport = free_port()
        text = admin_only(aport, listeners)
        path = tmp_path / "check.yaml"
        path.write_text(text)
        r = subprocess.run([SLUICE_BIN, "-t", "-c", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "configuration ok (0 listener(s), 0 backend(s))" in r.stderr
        s = sluice(text)
        s.wait_listening([aport])
        logged(s, "warn", "no listeners configured (admin API only)")
        admin = Admin(aport)
        assert admin.get("/readyz")[:3:2] == (200, "ready\n")
        assert admin.status()["listeners"] == []
        s.stop()
    # the admin-only instance takes a listener on reload
    b = demo("echo")
    port = free_port()
    text = echo_config(port, b.address, aport)
    s = sluice(admin_only(aport, []))
    s.wait_listening([aport])
    s.reload(text)
    s.wait_listening([port])
    echo_roundtrip(connect(port))
    assert len(lines(s, "warn", "no listeners configured (admin API only)")) == 1
    s.stop()


def pp2_header(src_ip, src_port, dst_ip="192.0.2.1", dst_port=443):
    """A PROXY v2 PROXY/TCP4 header."""
    addrs = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!HH", src_port,
                                                                               dst_port)
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(addrs)) + addrs


def test_two_instances_agree_on_consistent_hash_behind_proxy_v2(sluice, demo):
    """Two instances with the same backend (started at different times, with different
    worker counts and the server list in a different order) pick the same server for each
    of 40 clients whose addresses arrive in PROXY v2 headers; the picks spread."""
    servers = [demo("banner", name=f"S{i}") for i in range(4)]
    addresses = [d.address for d in servers]

    def config(port, order, workers):
        return l4_config(
            [{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool",
              "proxy_protocol": "accept"}],
            [{"name": "pool", "balance": "consistent_hash", "hash_key": "client_ip",
              "servers": [{"address": a} for a in order]}], workers=workers)

    p1, p2 = free_port(), free_port()
    a = sluice(config(p1, addresses, 1))
    b = sluice(config(p2, list(reversed(addresses)), 2))

    def pick(port, ip, n):
        c = connect(port)
        c.sendall(pp2_header(ip, 40000 + n))
        line = recv_line(c)
        c.close()
        return line

    picks = {}
    for n in range(40):
        ip = f"198.51.100.{n + 1}" if n < 20 else f"203.0.113.{n * 3 % 250 + 1}"
        first, second = pick(p1, ip, n), pick(p2, ip, n)
        assert first == second, (ip, first, second)
        assert pick(p1, ip, n + 100) == first  # the source port does not matter
        picks[ip] = first
    assert len(set(picks.values())) >= 3, picks
    a.stop()
    b.stop()
