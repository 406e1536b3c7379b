"""Active health probes (backends[].health) and passive health on live traffic.

Probes run on the main thread, once per interval per server for the whole process. A
probed server starts down and comes up at its first success; afterwards
unhealthy_threshold failures take it down and healthy_threshold successes bring it back.
Every change is a process log line "server ADDR of backend NAME is UP|DOWN: reason"."""
import collections
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

import helpers
from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     wait_closed, wait_for)

FAST = {"interval": "200ms", "timeout": "150ms", "healthy_threshold": 1,
        "unhealthy_threshold": 2}


def pool_config(port, servers, health=None, workers=2, **backend):
    """servers: list of addresses or (address, extra server keys)."""
    srv = []
    for s in servers:
        addr, extra = (s, {}) if isinstance(s, str) else s
        srv.append({"address": addr, **extra})
    b = {"name": "pool", "servers": srv, **backend}
    if health is not None:
        b["health"] = health
    return l4_config(
        workers=workers,
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[b])


def changes(s, address, state):
    """How many "is UP"/"is DOWN" lines the process log has for `address`."""
    return s.stderr().count(f"server {address} of backend pool is {state}:")


def wait_change(s, address, state, count=1, timeout=None):
    try:
        wait_for(lambda: changes(s, address, state) >= count, timeout or scaled(5),
                 what=f"{address} {state} #{count}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- sluice stderr:\n{s.stderr()}") from None


def pick(port, ports=None):
    """One connection: the banner name of the server reached, checked with an echo. The
    client's local port is appended to `ports` when given (to find its access log line)."""
    c = connect(port)
    try:
        if ports is not None:
            ports.append(c.getsockname()[1])
        name = recv_line(c)
        echo_roundtrip(c, b"hi")
    finally:
        c.close()
    return name


def entries_of(s, ports):
    """The access log entries of the connections from these client ports."""
    return [s.log_for(p) for p in ports]


def restart_demo(tmp_path, old, mode="banner"):
    """A new sluice-demo on the same port and name as a stopped one."""
    return helpers.Demo(str(tmp_path), mode=mode, name=old.name, port=old.port)


def test_probed_server_starts_down_then_comes_up(sluice, demo, tmp_path):
    """A server that is not listening at start is never tried (no connect attempt, no
    retry); once it listens, the next probe brings it up and traffic reaches it."""
    b = demo("banner", name="b")
    late_port = free_port()
    late_addr = f"127.0.0.1:{late_port}"
    port = free_port()
    s = sluice(pool_config(port, [late_addr, b.address], FAST))
    wait_change(s, b.address, "UP")
    wait_for(lambda: f"server {late_addr} of backend pool is DOWN: connection refused "
                     "(no successful check yet)" in s.stderr(), scaled(3),
             what="the late server reported down")
    assert changes(s, late_addr, "UP") == 0
    assert [pick(port) for _ in range(6)] == ["b"] * 6
    entries = s.access_log(6)
    assert all(e["server"] == b.address and e["retries"] == 0 for e in entries), entries

    late = helpers.Demo(str(tmp_path), mode="banner", name="late", port=late_port)
    t0 = time.monotonic()
    wait_change(s, late_addr, "UP")
    assert time.monotonic() - t0 < scaled(1.5)
    assert "late" in {pick(port) for _ in range(8)}
    late.stop()
    s.stop()


def test_killed_server_goes_down_and_comes_back(sluice, demo, tmp_path):
    """Stopping a server marks it down within interval * unhealthy_threshold (plus a
    timeout); from then on no client connection fails or even tries it. Restarting it
    brings it back after healthy_threshold successes."""
    a, b = demo("banner", name="a"), demo("banner", name="b")
    port = free_port()
    health = dict(FAST, healthy_threshold=2)
    s = sluice(pool_config(port, [a.address, b.address], health))
    wait_change(s, a.address, "UP")
    wait_change(s, b.address, "UP")
    assert {pick(port) for _ in range(6)} == {"a", "b"}

    t0 = time.monotonic()
    a.stop()
    wait_change(s, a.address, "DOWN")
    took = time.monotonic() - t0
    assert took < scaled(0.2 * 2 + 0.15 + 0.6), f"marked down after {took:.2f}s"
    line = [x for x in s.stderr().splitlines() if f"{a.address} of backend pool is DOWN" in x]
    assert "connection refused (2 consecutive failures)" in line[0], line

    ports = []
    assert [pick(port, ports) for _ in range(10)] == ["b"] * 10
    entries = entries_of(s, ports)
    assert all(e["server"] == b.address and e["retries"] == 0 for e in entries), entries

    a2 = restart_demo(tmp_path, a)
    t0 = time.monotonic()
    wait_change(s, a.address, "UP", count=2)
    assert time.monotonic() - t0 < scaled(0.2 * 2 + 0.6)
    assert "2 consecutive successes" in s.stderr()
    assert "a" in {pick(port) for _ in range(8)}
    a2.stop()
    s.stop()


def test_send_expect(sluice, demo):
    """send/expect: a pong server is up; a server that answers something else (banner
    mode echoes the PING back, no "+PONG") stays down and never gets a client."""
    good, wrong = demo("pong", name="good"), demo("banner", name="wrong")
    port = free_port()
    health = dict(FAST, send="PING\r\n", expect="+PONG")
    s = sluice(pool_config(port, [wrong.address, good.address], health))
    wait_change(s, good.address, "UP")
    wait_for(lambda: f"{wrong.address} of backend pool is DOWN: reply did not contain "
                     f"'+PONG'" in s.stderr(), scaled(3), what="wrong server reported down")
    # negative check, so a bounded wait: nothing counts the probes of a demo server; 0.5 s
    # is two more probes (200 ms interval), any of which would bring it UP (threshold 1)
    time.sleep(0.5)
    assert changes(s, wrong.address, "UP") == 0
    for _ in range(6):
        c = connect(port)
        c.sendall(b"PING\r\n")
        assert recv_line(c) == "+PONG\r"
        c.close()
    entries = s.access_log(6)
    assert all(e["server"] == good.address and e["retries"] == 0 for e in entries), entries
    s.stop()


def test_backup_takes_over_and_gives_back(sluice, demo, tmp_path):
    """The backup gets traffic only while every primary is down."""
    a, bk = demo("banner", name="a"), demo("banner", name="bk")
    port = free_port()
    s = sluice(pool_config(port, [a.address, (bk.address, {"backup": True})], FAST))
    wait_change(s, a.address, "UP")
    wait_change(s, bk.address, "UP")
    assert [pick(port) for _ in range(6)] == ["a"] * 6
    a.stop()
    wait_change(s, a.address, "DOWN")
    assert [pick(port) for _ in range(6)] == ["bk"] * 6
    a2 = restart_demo(tmp_path, a)
    wait_change(s, a.address, "UP", count=2)
    assert [pick(port) for _ in range(6)] == ["a"] * 6
    a2.stop()
    s.stop()


def test_all_servers_down_closes_client_at_once(sluice):
    """Every server down: a new client is closed at once, without any connect attempt
    (termination no_server)."""
    dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    port = free_port()
    s = sluice(pool_config(port, dead, dict(FAST, timeout="100ms"), connect_timeout="5s"))
    wait_for(lambda: s.stderr().count("no successful check yet") >= 2, scaled(3),
             what="both servers reported down")
    for _ in range(3):
        c = connect(port)
        state, waited, data = wait_closed(c, scaled(3))
        assert state in ("eof", "reset") and data == b"", (state, data)
        assert waited < scaled(0.5), f"closed after {waited:.2f}s"
        c.close()
    entries = s.access_log(3)
    assert all(e["termination"] == "no_server" for e in entries), entries
    s.stop()


def test_probe_once_per_interval_for_the_process(sluice, scripted):
    """With 4 workers a 200 ms interval still means about 5 probes a second in total."""
    srv = scripted(lambda sock: time.monotonic())
    port = free_port()
    s = sluice(pool_config(port, [srv.address], {"interval": "200ms", "timeout": "150ms"},
                           workers=4))
    first = srv.wait_results(1)[0]
    wait_for(lambda: any(t >= first + 2.0 for t in srv.results), scaled(5),
             what="a probe after the 2 s window")
    window = [t for t in srv.results if first <= t < first + 2.0]
    assert 8 <= len(window) <= 12, f"{len(window)} probes in 2 s"
    s.stop()


def test_probe_timeout_marks_down_with_the_reason(sluice, demo, scripted, blackhole):
    """A probe that gets no answer within health.timeout fails: a server that accepts but
    never replies to `send` and a server whose connect never completes both go down, each
    with the timeout as the reason, and take no client; a healthy one takes them all."""
    def mute(sock):  # reads the probe's bytes, answers nothing, waits for the close
        try:
            while sock.recv(256):
                pass
        except ConnectionResetError:
            pass
        return "closed"

    silent, hole, good = scripted(mute), blackhole(), demo("pong", name="good")
    port = free_port()
    health = dict(FAST, timeout="300ms", send="PING\r\n", expect="+PONG",
                  unhealthy_threshold=1)
    s = sluice(pool_config(port, [silent.address, hole.address, good.address], health))
    wait_change(s, good.address, "UP")
    for addr, reason in ((silent.address, "timeout after 300 ms waiting for a reply"),
                         (hole.address, "connect timeout after 300 ms")):
        line = f"server {addr} of backend pool is DOWN: {reason} (no successful check yet)"
        wait_for(lambda: line in s.stderr(), scaled(3), what=f"{addr} down by timeout")
        assert changes(s, addr, "UP") == 0
    # the silent server saw the probes, each connection closed by sluice at the timeout
    assert silent.wait_results(1)[0] == "closed"
    ports = []
    for _ in range(6):
        c = connect(port)
        ports.append(c.getsockname()[1])
        c.sendall(b"PING\r\n")
        assert recv_line(c) == "+PONG\r"
        c.close()
    entries = entries_of(s, ports)
    assert all(e["server"] == good.address and e["retries"] == 0 for e in entries), entries
    s.stop()


@pytest.mark.parametrize("version,header", [
    ("v1", b"PROXY UNKNOWN\r\n"),
    ("v2", b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"),
])
def test_probe_sends_proxy_local_header_first(sluice, scripted, version, header):
    """With proxy_protocol v1/v2 on the backend, a probe starts with a header carrying no
    address (v1 UNKNOWN, v2 LOCAL), then its send bytes."""
    def handler(sock):
        buf = b""
        while b"PING\r\n" not in buf:
            chunk = sock.recv(256)
            if not chunk:
                break
            buf += chunk
        sock.sendall(b"+PONG\r\n")
        return buf

    srv = scripted(handler)
    port = free_port()
    health = dict(FAST, send="PING\r\n", expect="+PONG")
    s = sluice(pool_config(port, [srv.address], health, proxy_protocol=version))
    wait_change(s, srv.address, "UP")
    got = srv.wait_results(1)[0]
    assert got == header + b"PING\r\n", got
    s.stop()


def test_passive_health_marks_down_on_live_failures(sluice, demo):
    """With a long probe interval, a server that stops listening is marked down after 3
    failed live connections; clients are retried on the other server meanwhile and none
    of them fails."""
    a, b = demo("banner", name="a"), demo("banner", name="b")
    port = free_port()
    health = {"interval": "1m", "timeout": "500ms"}
    s = sluice(pool_config(port, [a.address, b.address], health, retries=2))
    wait_change(s, a.address, "UP")
    wait_change(s, b.address, "UP")
    a.stop()
    marked = f"server {a.address} of backend pool marked down: 3 consecutive connect failures"
    for _ in range(40):
        assert pick(port) == "b"
        if marked in s.stderr():
            break
    assert marked in s.stderr(), s.stderr()
    ports = []
    assert [pick(port, ports) for _ in range(6)] == ["b"] * 6
    entries = entries_of(s, ports)
    assert all(e["retries"] == 0 for e in entries), entries
    s.stop()


def test_reload_keeps_running_probes_and_stops_removed(sluice, demo, scripted):
    """A reload keeps the state of servers that remain (no new UP line, no gap), probes a
    new server at once, and stops probing a removed one."""
    a = demo("banner", name="a")
    gone = scripted(lambda sock: time.monotonic())
    newcomer = demo("banner", name="new")
    port = free_port()
    s = sluice(pool_config(port, [a.address, gone.address], FAST))
    wait_change(s, a.address, "UP")
    wait_change(s, gone.address, "UP")
    before = s.stderr().count("configuration reloaded")
    s.reload(pool_config(port, [a.address, newcomer.address], FAST))
    wait_for(lambda: s.stderr().count("configuration reloaded") > before, scaled(5),
             what="reload applied")
    t_reload = time.monotonic()
    wait_change(s, newcomer.address, "UP", timeout=scaled(1.5))
    assert changes(s, a.address, "UP") == 1
    # negative check, so a bounded wait: no probe of the removed server in the 2 probe
    # intervals (200 ms) after t_reload + 0.1, however long the newcomer took to come up
    time.sleep(max(0, t_reload + 0.1 + 0.4 - time.monotonic()))
    late = [t for t in gone.results if t > t_reload + 0.1]
    assert late == [], f"{len(late)} probes of a removed server after the reload"
    assert {pick(port) for _ in range(8)} == {"a", "new"}
    s.stop()


# ---------------------------------------------------------------------------------------
# TLS probes


def make_cert(tmp_path):
    cert, key = os.path.join(tmp_path, "srv.pem"), os.path.join(tmp_path, "srv.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def tls_server(scripted, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def handler(sock):
        try:
            with ctx.wrap_socket(sock, server_side=True) as t:
                t.recv(1)
        except ssl.SSLError as e:  # the probe refused the certificate
            return e.reason
        return "handshake"

    return scripted(handler)


def test_tls_probe_rejects_untrusted_certificate(sluice, scripted, tmp_path):
    """health type tls verifies the server's certificate (here against the system store,
    which does not trust a self-signed one): the server stays down with the reason."""
    cert, key = make_cert(str(tmp_path))
    srv = tls_server(scripted, cert, key)
    plain = scripted(lambda sock: sock.recv(1))
    port = free_port()
    s = sluice(pool_config(port, [srv.address, plain.address], dict(FAST, type="tls")))
    wait_for(lambda: f"{srv.address} of backend pool is DOWN: TLS handshake failed: "
                     f"certificate verify failed" in s.stderr(), scaled(3),
             what="untrusted certificate reported")
    wait_for(lambda: f"{plain.address} of backend pool is DOWN: " in s.stderr(), scaled(3),
             what="plain TCP server reported down")
    assert changes(s, srv.address, "UP") == 0 and changes(s, plain.address, "UP") == 0
    # the probe aborted the handshake itself, with an "unknown CA" alert
    assert "TLSV1_ALERT_UNKNOWN_CA" in srv.wait_results(1), srv.results
    s.stop()


def test_tls_probe_handshake_ok(sluice, scripted, tmp_path):
    """A tls backend whose CA is configured: the probe's handshake succeeds."""
    cert, key = make_cert(str(tmp_path))
    srv = tls_server(scripted, cert, key)
    port = free_port()
    s = sluice(pool_config(port, [srv.address], dict(FAST, type="tls"), protocol="tls",
                           tls={"ca": cert}))
    wait_change(s, srv.address, "UP")
    assert re.search(r"is UP: ok in \d+ ms \(TLSv1\.[23]\)", s.stderr()), s.stderr()
    assert srv.wait_results(1)[0] == "handshake"
    s.stop()
