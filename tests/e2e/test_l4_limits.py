"""Connection limits: global max_connections, per listener, per server.

Over the global or listener limit sluice stops accepting: the extra connection completes
its TCP handshake in the kernel backlog but gets no service until a slot frees."""
from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_exact, recv_line,
                     accepted, scaled, silent_for, wait_closed)


def listener(name, port, **kw):
    return {"name": name, "bind": f"127.0.0.1:{port}", "protocol": "tcp", "backend": "pool",
            **kw}


def pool(addresses, **kw):
    return {"name": "pool", "servers": [{"address": a} for a in addresses], **kw}


def assert_waits_then_served(waiting, to_close):
    """`waiting` got no service so far: check it stays silent and in the kernel's accept
    queue, close `to_close`, then it must be served."""
    waiting.sendall(b"queued")
    # negative check, so a bounded wait: 0.2 s is 4 of the paused listener's 50 ms resume
    # checks; an armed listener would accept and echo within a loop turn
    assert silent_for(waiting, 0.2), "connection over the limit was served"
    assert not accepted(waiting.getpeername()[1], [waiting.getsockname()[1]]), \
        "connection over the limit was accepted"
    to_close.close()
    assert recv_exact(waiting, 6, timeout=scaled(5)) == b"queued"


def test_global_max_connections(sluice, demo):
    b = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[listener("front", port)], backends=[pool([b.address])],
                         max_connections=2))
    held = [connect(port) for _ in range(2)]
    for c in held:
        echo_roundtrip(c)
    extra = connect(port)  # completes in the kernel backlog
    assert_waits_then_served(extra, held[0])
    echo_roundtrip(held[1])
    for c in (held[1], extra):
        c.close()
    entries = s.access_log(3)
    assert all(e["termination"] == "client_closed" for e in entries), entries
    s.stop()


def test_global_limit_spans_listeners(sluice, demo):
    """The global cap counts connections of every listener together."""
    b = demo("echo")
    p1, p2 = free_port(), free_port()
    s = sluice(l4_config(listeners=[listener("one", p1), listener("two", p2)],
                         backends=[pool([b.address])], max_connections=2))
    a = connect(p1)
    echo_roundtrip(a)
    bconn = connect(p2)
    echo_roundtrip(bconn)
    extra = connect(p2)
    assert_waits_then_served(extra, a)
    bconn.close()
    extra.close()
    s.access_log(3)
    s.stop()


def test_listener_max_connections(sluice, demo):
    """Listener "small" takes one connection at a time; listener "big" is not affected."""
    b = demo("echo")
    p_small, p_big = free_port(), free_port()
    s = sluice(l4_config(listeners=[listener("small", p_small, max_connections=1),
                                    listener("big", p_big)],
                         backends=[pool([b.address])]))
    first = connect(p_small)
    echo_roundtrip(first)
    second = connect(p_small)
    second.sendall(b"queued")
    others = [connect(p_big) for _ in range(4)]
    for c in others:
        echo_roundtrip(c)
    # negative check, bounded as in assert_waits_then_served
    assert silent_for(second, 0.2), "second connection on a full listener was served"
    assert not accepted(p_small, [second.getsockname()[1]]), \
        "second connection on a full listener was accepted"
    first.close()
    assert recv_exact(second, 6, timeout=scaled(5)) == b"queued"
    for c in others + [second]:
        c.close()
    entries = s.access_log(6)
    assert sum(e["listener"] == "small" for e in entries) == 2
    assert sum(e["listener"] == "big" for e in entries) == 4
    s.stop()


def test_max_connections_per_server(sluice, demo):
    """One connection per server: a full server is skipped; with every server full the
    client is closed at once with termination no_server."""
    a, b = demo("banner", name="a"), demo("banner", name="b")
    port = free_port()
    s = sluice(l4_config(listeners=[listener("front", port)],
                         backends=[pool([a.address, b.address], max_connections_per_server=1)]))
    c1 = connect(port)
    n1 = recv_line(c1)
    c2 = connect(port)
    n2 = recv_line(c2)
    assert {n1, n2} == {"a", "b"}, "second connection went to the full server"
    # Both full: the next client is closed at once.
    c3 = connect(port)
    state, waited, data = wait_closed(c3, scaled(3))
    assert state in ("eof", "reset") and data == b"", (state, data)
    assert waited < scaled(1)
    e = s.access_log(1, where=lambda e: e["termination"] != "client_closed")[0]
    assert e["termination"] == "no_server", e
    assert e["server"] is None and e["connect_ms"] is None, e
    # Free server a's slot: the next connection must land there, whatever the rotation says.
    (c1 if n1 == "a" else c2).close()
    s.access_log(2)
    c4 = connect(port)
    assert recv_line(c4) == "a"
    for c in (c1, c2, c3, c4):
        c.close()
    s.stop()
