"""Idle and connect timeouts.

Connect timeouts need a server that never answers a SYN. helpers.Blackhole makes one on
loopback: a listening socket with backlog 0, never accepted from, whose one-slot accept
queue we fill ourselves; Linux then drops further SYNs, so connect() hangs."""
import time

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     wait_closed)


def config(port, addresses, listener=None, **backend):
    return l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool", **(listener or {})}],
        backends=[{"name": "pool", "servers": [{"address": a} for a in addresses],
                   **backend}])


def test_listener_idle_timeout(sluice, demo):
    """idle_timeout 1s: a connection with no byte either way is closed after about 1s;
    traffic keeps it alive."""
    b = demo("echo")
    port = free_port()
    s = sluice(config(port, [b.address], listener={"idle_timeout": "1s"}))
    c = connect(port)
    # Keep it busy for 2.5s with a byte every 0.3s: it must survive.
    start = time.monotonic()
    while time.monotonic() - start < 2.5:
        time.sleep(0.3)  # the traffic pattern under test: paced below the idle timeout
        echo_roundtrip(c, b".")
    state, waited, _ = wait_closed(c, scaled(6))
    assert state in ("eof", "reset"), "not closed by idle_timeout"
    assert 0.8 <= waited <= scaled(3), f"closed after {waited:.2f}s of idleness"
    e = s.access_log(1)[0]
    assert e["termination"] == "idle_timeout", e
    assert e["bytes_in"] == e["bytes_out"] >= 8
    s.stop()


def test_backend_timeout_is_idle_timeout(sluice, demo):
    """For tcp backends `timeout` is an idle timeout too (the shorter one wins)."""
    b = demo("echo")
    port = free_port()
    s = sluice(config(port, [b.address], listener={"idle_timeout": "60s"}, timeout="1s"))
    c = connect(port)
    echo_roundtrip(c)
    state, waited, _ = wait_closed(c, scaled(6))
    assert state in ("eof", "reset")
    assert 0.8 <= waited <= scaled(3), waited
    assert s.access_log(1)[0]["termination"] == "idle_timeout"
    s.stop()


def test_finished_connection_does_not_wait_for_idle_timeout(sluice, demo):
    """Once both sides have sent FIN the connection ends at once, not at idle_timeout."""
    port = free_port()
    srv = demo("banner", name="x")
    s = sluice(config(port, [srv.address], listener={"idle_timeout": "5s"}))
    c = connect(port)
    assert recv_line(c) == "x"
    # The demo echoes, so after our FIN it will FIN too: the connection ends normally.
    c.shutdown(1)
    state, waited, _ = wait_closed(c, scaled(3))
    assert state == "eof" and waited < scaled(2)
    assert s.access_log(1)[0]["termination"] == "client_closed"
    s.stop()


def test_connect_timeout_then_retry(sluice, demo, blackhole):
    """The first server never answers: after connect_timeout (500ms) sluice tries the
    next one, and the client is served."""
    hole = blackhole()
    live = demo("banner", name="live")
    port = free_port()
    s = sluice(config(port, [hole.address, live.address], connect_timeout="500ms", retries=1))
    delays = []
    for _ in range(4):
        start = time.monotonic()
        c = connect(port)
        assert recv_line(c, timeout=scaled(5)) == "live"
        delays.append(time.monotonic() - start)
        c.close()
    entries = s.access_log(4)
    retried = [e for e in entries if e["retries"] >= 1]
    assert retried, entries
    assert all(e["server"] == live.address for e in entries)
    assert all(e["termination"] == "client_closed" for e in entries)
    # Those who waited for the blackhole waited about connect_timeout, not the kernel's.
    assert max(delays) >= 0.45 and max(delays) < scaled(3), delays
    s.stop()


def test_connect_timeout_all_fail(sluice, blackhole):
    """Only a blackhole: the client is closed after connect_timeout (x tries), logged as
    connect_failed with no bytes."""
    hole = blackhole()
    port = free_port()
    s = sluice(config(port, [hole.address], connect_timeout="500ms", retries=0))
    c = connect(port)
    state, waited, data = wait_closed(c, scaled(5))
    assert state in ("eof", "reset") and data == b""
    assert 0.45 <= waited <= scaled(2.5), waited
    e = s.access_log(1)[0]
    assert e["termination"] == "connect_failed", e
    assert e["connect_ms"] is None, e  # no connection was made
    assert e["error"] == "connect timeout", e
    s.stop()
