"""Server failures: refused connects, every server down, resets."""
import socket
import threading

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_exact, recv_line,
                     rst_close, scaled, wait_closed)


def pool_config(port, addresses, **backend):
    return l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": a} for a in addresses],
                   **backend}])


def test_refused_server_is_retried_elsewhere(sluice, demo):
    """One server refuses (nothing listens): every client still reaches the live one, and
    the connections that tried the dead one first log retries >= 1."""
    live = demo("banner", name="live")
    dead = f"127.0.0.1:{free_port()}"
    port = free_port()
    s = sluice(pool_config(port, [dead, live.address], retries=2, connect_timeout="5s"))
    for _ in range(8):
        c = connect(port)
        assert recv_line(c) == "live"
        echo_roundtrip(c, b"abc")
        c.close()
    entries = s.access_log(8)
    assert all(e["server"] == live.address for e in entries), entries
    assert all(e["termination"] == "client_closed" for e in entries), entries
    assert all(e["bytes_in"] == 3 and e["bytes_out"] == 5 + 3 for e in entries), entries
    assert any(e["retries"] >= 1 for e in entries), entries
    s.stop()


def test_all_servers_down_closes_client_at_once(sluice):
    """Every server refuses: the client is closed promptly (well under connect_timeout),
    with termination connect_failed."""
    port = free_port()
    dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    s = sluice(pool_config(port, dead, retries=2, connect_timeout="5s"))
    for _ in range(3):
        c = connect(port)
        state, waited, data = wait_closed(c, scaled(3))
        assert state in ("eof", "reset") and data == b"", (state, data)
        assert waited < scaled(1.0), f"closed after {waited:.2f}s"
        c.close()
    entries = s.access_log(3)
    for e in entries:
        assert e["termination"] == "connect_failed", e
        assert e["bytes_in"] == 0 and e["bytes_out"] == 0, e
        assert e["retries"] >= 1, e
        assert e.get("server") in (None, *dead), e
    s.stop()


def test_client_data_sent_before_failure_is_not_lost_on_retry(sluice, demo):
    """Bytes the client sends while sluice is still trying servers reach the server it
    finally connects to."""
    live = demo("echo")
    port = free_port()
    dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    s = sluice(pool_config(port, [*dead, live.address], retries=3, balance="round_robin"))
    for _ in range(6):
        c = connect(port)
        c.sendall(b"early bytes")
        assert recv_exact(c, 11) == b"early bytes"
        c.close()
    entries = s.access_log(6)
    assert all(e["server"] == live.address and e["bytes_in"] == 11 for e in entries), entries
    s.stop()


def test_client_reset_is_logged(sluice, demo):
    b = demo("echo")
    port = free_port()
    s = sluice(pool_config(port, [b.address]))
    c = connect(port)
    echo_roundtrip(c, b"12345")
    rst_close(c)
    e = s.access_log(1)[0]
    assert e["termination"] == "client_reset", e
    assert e["bytes_in"] == 5 and e["bytes_out"] == 5
    s.stop()


def test_server_reset_reaches_client(sluice, scripted):
    """The server aborts (RST): the client sees a reset too, and the log says server_reset."""
    echoed = threading.Event()

    def handler(sock):
        data = sock.recv(100)
        sock.sendall(data)
        echoed.wait(scaled(5))  # the client has the echo: abort now
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return data

    srv = scripted(handler)
    port = free_port()
    s = sluice(pool_config(port, [srv.address]))
    c = connect(port)
    echo_roundtrip(c, b"hi")
    echoed.set()
    state, _, _ = wait_closed(c, scaled(5))
    assert state == "reset", state
    e = s.access_log(1)[0]
    assert e["termination"] == "server_reset", e
    s.stop()


def test_server_closes_first(sluice, demo):
    """The server closes right after its banner: the client gets the banner then EOF."""
    b = demo("banner", name="bye", extra=["--close-after-banner"])
    port = free_port()
    s = sluice(pool_config(port, [b.address]))
    c = connect(port)
    state, _, data = wait_closed(c, scaled(5))
    assert (state, data) == ("eof", b"bye\n")
    c.close()
    e = s.access_log(1)[0]
    assert e["termination"] == "server_closed", e
    assert e["bytes_out"] == 4 and e["bytes_in"] == 0
    s.stop()
