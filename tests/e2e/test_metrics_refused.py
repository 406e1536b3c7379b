"""sluice_listener_refused_total, one reason at a time.

The counter counts connections that sluice declines to forward without trying a server:
termination no_route, no_server, bad_proxy_header, hello_timeout, bad_client_hello and
client_hello_too_large (docs/operations.md). Each test checks the counter after every
single client, so that dropping any one reason from the code fails exactly there; and the
boundary: a client that leaves first, a failed TLS handshake (its own counter), a failed
connect (per server) and the listener limit (connections wait, nobody is refused) leave
it alone.

The access log is the synchronisation point: sluice adds to the counters before it
writes a connection's log line, so once the line is there the counters are final."""
import ssl

from helpers import (Demo, connect, echo_roundtrip, free_port, l4_config, recv_exact, scaled,
                     silent_for, wait_closed, wait_for)
from test_admin import Admin
from test_metrics import fetch, value
from tls_certs import pki, tls_listener  # noqa: F401


def metric(admin, name, **labels):
    return value(fetch(admin)[1], name, **labels)


def refused(admin, listener):
    return metric(admin, "sluice_listener_refused_total", listener=listener)


def closed_by_sluice(sock):
    """Waits for sluice to close `sock` (EOF or reset) and closes it."""
    state, _, _ = wait_closed(sock, scaled(5))
    assert state in ("eof", "reset"), state
    sock.close()


def client_hello(sni):
    """The bytes of a TLS ClientHello carrying `sni`, made with a memory BIO."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def expect_refusal(s, admin, sock, listener, termination, count):
    """sluice closes `sock` with `termination`, and the refused counter of `listener` is
    then exactly `count`."""
    port = sock.getsockname()[1]
    closed_by_sluice(sock)
    e = s.log_for(port)
    assert e["termination"] == termination, e
    assert e["server"] is None, e
    assert refused(admin, listener) == count, (termination, e)


def test_no_route_and_unreadable_client_hello(sluice, demo):
    """A passthrough listener without a default backend: not TLS and an unknown SNI are
    no_route; a stalled, a foreign and an oversized ClientHello are refusals too."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "edge", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "routes": [{"match": {"sni": "a.example.com"}, "backend": "pool"}],
                    "client_hello_timeout": "300ms", "client_hello_max": "1k"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    assert refused(admin, "edge") == 0

    c = connect(port)
    c.sendall(b"hello, not TLS\n")
    expect_refusal(s, admin, c, "edge", "no_route", 1)

    c = connect(port)
    c.sendall(client_hello("nothing.test"))
    expect_refusal(s, admin, c, "edge", "no_route", 2)

    c = connect(port)
    c.sendall(b"\x16\x03\x01")  # a record header begun, then nothing
    expect_refusal(s, admin, c, "edge", "hello_timeout", 3)

    c = connect(port)
    c.sendall(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00")  # a ServerHello
    expect_refusal(s, admin, c, "edge", "bad_client_hello", 4)

    c = connect(port)
    c.sendall(b"\x16\x03\x01\x10\x00\x01\x00\x10\x00")  # announces a 4 KiB ClientHello
    expect_refusal(s, admin, c, "edge", "client_hello_too_large", 5)

    # a routed ClientHello reaches the server: no refusal
    c = connect(port)
    hello = client_hello("a.example.com")
    c.sendall(hello)
    assert recv_exact(c, len(hello)) == hello  # the echo server sends it back
    c.close()
    wait_for(lambda: len(s.access_lines()) == 6, scaled(5), what="6 access log lines")
    assert s.access_lines()[-1]["termination"] == "client_closed"
    assert refused(admin, "edge") == 5
    assert metric(admin, "sluice_connections_total", listener="edge") == 6
    s.stop()


def test_bad_proxy_header(sluice, demo):
    """Malformed and late PROXY headers are refusals; a client that closes before sending
    one is not (it left; sluice refused nothing); a good header is served."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool",
                    "proxy_protocol": "accept", "proxy_protocol_timeout": "300ms"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)

    c = connect(port)
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    expect_refusal(s, admin, c, "front", "bad_proxy_header", 1)

    c = connect(port)
    c.sendall(b"PROXY TCP4 1.2.")  # never finished
    expect_refusal(s, admin, c, "front", "bad_proxy_header", 2)

    c = connect(port)
    local = c.getsockname()[1]
    c.close()
    assert s.log_for(local)["termination"] == "client_closed"
    assert refused(admin, "front") == 2

    c = connect(port)
    c.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n")
    echo_roundtrip(c)
    local = c.getsockname()[1]
    c.close()
    e = s.access_log(1, where=lambda e: e["client"] == "192.0.2.1:1234")[0]
    assert e["termination"] == "client_closed", e
    assert refused(admin, "front") == 2
    s.stop()


def test_no_server_and_server_up(sluice, tmp_path):
    """A server whose probe fails is down (sluice_server_up 0) and a client then finds no
    usable server: a refusal. Once a server answers the probe it is up (1) and the next
    client is served; drained, the server is unusable again: another no_server."""
    port, aport, sport = free_port(), free_port(), free_port()
    address = f"127.0.0.1:{sport}"
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": address}],
                   "health": {"interval": "100ms", "timeout": "200ms", "healthy_threshold": 1,
                              "unhealthy_threshold": 1}}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)

    def up():
        return metric(admin, "sluice_server_up", backend="pool", server=address)

    # a probed server starts down and stays down while its probe fails
    wait_for(lambda: admin.status()["backends"][0]["servers"][0]["health"]["probe_failures"]
             >= 1, scaled(5), what="a failed probe")
    assert up() == 0
    c = connect(port)
    expect_refusal(s, admin, c, "front", "no_server", 1)

    Demo(str(tmp_path), "echo", name="late", port=sport)
    wait_for(lambda: up() == 1, scaled(5), what="sluice_server_up 1 once the probe passes")
    c = connect(port)
    echo_roundtrip(c)
    local = c.getsockname()[1]
    c.close()
    assert s.log_for(local)["termination"] == "client_closed"
    assert refused(admin, "front") == 1

    assert admin.patch_server("pool", address, {"state": "drain"})[0] == 200
    c = connect(port)
    expect_refusal(s, admin, c, "front", "no_server", 2)
    assert up() == 1  # drained, not down
    # the status API reads the same counter
    assert admin.status()["listeners"][0]["refused_total"] == 2
    s.stop()


def test_listener_limit_is_not_a_refusal(sluice, demo):
    """Over a listener's max_connections sluice stops accepting: the extra client waits in
    the kernel's backlog and is served when a slot frees. Nobody is refused, so the
    counter stays 0 (and the waiting client is counted as a connection only once it is
    accepted)."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "small", "bind": f"127.0.0.1:{port}", "backend": "pool",
                    "max_connections": 1}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    first = connect(port)
    echo_roundtrip(first)
    second = connect(port)
    second.sendall(b"queued")
    assert silent_for(second, 0.3), "the connection over the limit was served"
    assert metric(admin, "sluice_connections_total", listener="small") == 1
    assert metric(admin, "sluice_connections_active", listener="small") == 1
    assert refused(admin, "small") == 0
    first.close()
    assert recv_exact(second, 6) == b"queued"
    second.close()
    entries = s.access_log(2)
    assert [e["termination"] for e in entries] == ["client_closed", "client_closed"], entries
    assert metric(admin, "sluice_connections_total", listener="small") == 2
    assert refused(admin, "small") == 0
    s.stop()


def test_failed_handshake_and_failed_connect_are_not_refusals(sluice, pki):
    """A TLS handshake that fails counts in sluice_tls_handshake_errors_total, a connect
    that fails in sluice_backend_connect_failures_total: neither is a refusal."""
    tport, port, aport = free_port(), free_port(), free_port()
    dead = f"127.0.0.1:{free_port()}"
    s = sluice(l4_config(
        listeners=[tls_listener(tport, [pki.a_ec], name="secure", backend="pool"),
                   {"name": "plain", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": dead}], "retries": 0}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    c = connect(tport)
    c.sendall(b"GET / HTTP/1.1\r\n\r\n")
    local = c.getsockname()[1]
    closed_by_sluice(c)
    assert s.log_for(local)["termination"] == "tls_error"
    c = connect(port)
    local = c.getsockname()[1]
    closed_by_sluice(c)
    assert s.log_for(local)["termination"] == "connect_failed"
    samples = fetch(admin)[1]
    assert value(samples, "sluice_tls_handshake_errors_total", listener="secure") == 1
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=dead) == 1
    assert value(samples, "sluice_listener_refused_total", listener="secure") == 0
    assert value(samples, "sluice_listener_refused_total", listener="plain") == 0
    s.stop()
