"""Graceful stop (SIGTERM/SIGINT) and start-up failures."""
import signal
import socket
import time

import pytest

from helpers import (Sluice, connect, echo_roundtrip, free_port, l4_config, scaled,
                     wait_closed, wait_for)


def config(port, address, **top):
    return l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": address}]}], **top)


def start_proxy(sluice, demo, **top):
    """Starts an echo backend and sluice in front of it (top-level settings **top).
    Returns (sluice, port)."""
    b = demo("echo")
    port = free_port()
    return sluice(config(port, b.address, **top)), port


def start_with_open_conn(sluice, demo, **top):
    """start_proxy(), then one client connection with a completed echo round trip.
    Returns (sluice, port, connection)."""
    s, port = start_proxy(sluice, demo, **top)
    c = connect(port)
    echo_roundtrip(c)
    return s, port, c


def refused(port):
    """True once the listener is gone. A connection attempt that races the closing
    listener is reset instead of refused: that too means it was not accepted."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_lets_open_connections_finish(sluice, demo, sig):
    """On SIGTERM the listeners close at once (new connections refused) while open
    connections keep working; when the last one ends, sluice exits 0 without waiting for
    shutdown_timeout."""
    s, port = start_proxy(sluice, demo, shutdown_timeout="20s")
    conns = [connect(port) for _ in range(3)]
    ours = {c.getsockname()[1] for c in conns}
    for c in conns:
        echo_roundtrip(c)
    s.signal(sig)
    wait_for(lambda: refused(port), scaled(3), what="listener closed after the signal")
    assert s.running()
    for i, c in enumerate(conns):
        # negative check, so a bounded wait: still served 0.2, 0.4 and 0.6 s into the
        # drain, long after the stop reached the workers (the listener is closed)
        time.sleep(0.2)
        echo_roundtrip(c, b"still here %d" % i)
        c.close()
    start = time.monotonic()
    assert s.wait_exit(scaled(5)) == 0, s.stderr()
    assert time.monotonic() - start < scaled(5)
    entries = [e for e in s.access_log() if int(e["client"].rsplit(":", 1)[1]) in ours]
    assert len(entries) == 3
    assert all(e["termination"] == "client_closed" for e in entries), entries


def test_shutdown_timeout_closes_the_rest(sluice, demo):
    """Connections still open after shutdown_timeout are closed, logged as shutdown, and
    sluice exits 0."""
    s, _, c = start_with_open_conn(sluice, demo, shutdown_timeout="1s")
    s.signal(signal.SIGTERM)
    start = time.monotonic()
    echo_roundtrip(c)  # still served during the drain
    state, waited, _ = wait_closed(c, scaled(5))
    assert state in ("eof", "reset")
    assert 0.7 <= time.monotonic() - start <= scaled(3)
    assert s.wait_exit(scaled(5)) == 0, s.stderr()
    e = s.access_log(1)[0]
    assert e["termination"] == "shutdown", e
    assert e["bytes_in"] == 8 and e["bytes_out"] == 8


def test_second_signal_stops_at_once(sluice, demo):
    """A second SIGTERM during the drain closes the open connection now (not after the
    60 s shutdown_timeout), logs it as shutdown, and sluice exits 0."""
    s, port, c = start_with_open_conn(sluice, demo, shutdown_timeout="60s")
    s.signal(signal.SIGTERM)
    wait_for(lambda: refused(port), scaled(3), what="listener closed")
    echo_roundtrip(c, b"draining")  # the first signal left it open
    s.signal(signal.SIGTERM)
    state, waited, data = wait_closed(c, scaled(3))
    assert state in ("eof", "reset") and data == b"", (state, waited, data)
    assert s.wait_exit(scaled(3)) == 0, s.stderr()
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "shutdown", e
    assert e["bytes_in"] == 4 + 8 and e["bytes_out"] == 4 + 8, e
    assert "second signal: closing every connection now" in s.stderr()


def test_idle_stop_is_prompt(sluice, demo):
    """With nothing open, SIGTERM exits 0 at once."""
    s, port = start_proxy(sluice, demo)
    start = time.monotonic()
    s.stop(timeout=scaled(3))
    assert time.monotonic() - start < scaled(2)


def test_port_in_use_is_a_startup_failure(tmp_path, demo):
    """A listener port held by someone else: exit code 2 with a one-line reason."""
    b = demo("echo")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        s = Sluice(str(tmp_path), config(port, b.address), wait=False)
        rc = s.wait_exit(scaled(10))
        assert rc == 2, (rc, s.stderr())
        lines = s.stderr().splitlines()
        assert len(lines) == 1, lines  # one line: the reason
        assert str(port) in lines[0] and "Address already in use" in lines[0], lines
    finally:
        holder.close()
