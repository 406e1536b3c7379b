"""TLS metrics: sluice_tls_handshake_errors_total per kind of failure (the handshake
timeout of a TLS slowloris included), sluice_tls_handshakes_total per version,
sluice_tls_handshake_duration_seconds in seconds and in the right bucket, and the TLS
side of backends: a failed or timed-out handshake with a server is a failed connection
attempt, and the connect time includes the TLS handshake.

The access log is the synchronisation point: sluice adds to the counters before it
writes a connection's log line."""
import math
import socket
import ssl
import time

from helpers import connect, free_port, l4_config, recv_exact, scaled, wait_closed, wait_for
from test_admin import Admin
from test_metrics import BOUNDS, assert_histogram_holds, fetch, histogram_of, ms_to_s, value
from tls_certs import client_context, pki, s_client, tls_connect, tls_listener  # noqa: F401

VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def start(sluice, demo, listeners, backend_servers=None, **backend):
    d = demo("echo")
    aport = free_port()
    s = sluice(l4_config(
        listeners=listeners,
        backends=[{"name": "pool", "servers": [{"address": a} for a in
                                              (backend_servers or [d.address])], **backend}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    return s, Admin(aport)


def errors(admin, listener):
    return value(fetch(admin)[1], "sluice_tls_handshake_errors_total", listener=listener)


def handshakes(samples, listener):
    return {v: value(samples, "sluice_tls_handshakes_total", listener=listener, version=v)
            for v in VERSIONS}


def test_handshake_timeouts_are_counted(sluice, demo, pki):
    """Issue 10, defect 2: five clients send one byte (0x16) and stall. They are closed at
    handshake_timeout with tls_error, and each is a handshake error, not a refusal."""
    port = free_port()
    s, admin = start(sluice, demo, [tls_listener(port, [pki.a_ec], name="secure",
                                                 handshake_timeout="1s")])
    clients = []
    for _ in range(5):
        c = connect(port)
        c.sendall(b"\x16")
        clients.append(c)
    t0 = time.monotonic()
    for c in clients:
        state, _, _ = wait_closed(c, scaled(5))
        assert state in ("eof", "reset"), state
    took = time.monotonic() - t0
    assert 0.8 < took < scaled(3), took
    entries = [s.log_for(c) for c in clients]
    for e in entries:
        assert e["termination"] == "tls_error" and e["error"] == "TLS handshake timed out", e
    for c in clients:
        c.close()
    samples = fetch(admin)[1]
    assert value(samples, "sluice_tls_handshake_errors_total", listener="secure") == 5
    assert value(samples, "sluice_listener_refused_total", listener="secure") == 0
    assert handshakes(samples, "secure") == dict.fromkeys(VERSIONS, 0)
    assert histogram_of(samples, "sluice_tls_handshake_duration_seconds",
                        listener="secure")[2] == 0
    assert value(samples, "sluice_connections_total", listener="secure") == 5
    # their connection durations (about 1 s each) are in the duration histogram
    assert_histogram_holds(samples, "sluice_connection_duration_seconds",
                           ms_to_s(entries, "duration_ms"), listener="secure")
    s.stop()


def test_handshake_errors_each_kind(sluice, demo, pki):
    """Every kind of failed handshake counts once, on its own listener: plain text, a
    TLS 1.1 client, no shared cipher, a client that hangs up mid-ClientHello, and a client
    without the certificate that mutual TLS requires."""
    port, mport = free_port(), free_port()
    mtls = {"mode": "required", "ca": pki.client_ca.cert}
    s, admin = start(sluice, demo, [
        tls_listener(port, [pki.default], name="open"),
        tls_listener(mport, [pki.a_ec], name="mtls", client_auth=mtls)])

    def expect(listener, n, what):
        wait_for(lambda: len([e for e in s.access_lines() if e["listener"] == listener]) >= n,
                 scaled(10), what=f"{n} log lines on {listener}")
        entry = [e for e in s.access_lines() if e["listener"] == listener][n - 1]
        assert entry["termination"] == "tls_error", (what, entry)
        assert errors(admin, listener) == n, what

    c = connect(port)
    c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    wait_closed(c, scaled(5))
    c.close()
    expect("open", 1, "plain text")

    rc, out = s_client(port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert rc != 0, out
    expect("open", 2, "TLS 1.1")

    rc, out = s_client(port, "-tls1_2", "-cipher", "AES128-SHA")
    assert rc != 0, out
    expect("open", 3, "no shared cipher")

    ctx = client_context(pki)
    inc, out_bio = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out_bio, server_hostname="default.example.com")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out_bio.read()
    c = connect(port)
    c.sendall(hello[:len(hello) // 2])
    c.close()
    expect("open", 4, "hang-up mid-ClientHello")

    try:
        with tls_connect(mport, client_context(pki), sni="a.example.com") as t:
            t.sendall(b"x")
            t.recv(1)  # TLS 1.3: the refusal of the missing certificate arrives here
    except (ssl.SSLError, OSError):
        pass
    expect("mtls", 1, "no client certificate")

    samples = fetch(admin)[1]
    assert handshakes(samples, "open") == dict.fromkeys(VERSIONS, 0)
    assert handshakes(samples, "mtls") == dict.fromkeys(VERSIONS, 0)
    assert value(samples, "sluice_tls_handshake_errors_total", listener="open") == 4
    assert value(samples, "sluice_listener_refused_total", listener="open") == 0
    s.stop()


def test_handshakes_by_version_and_their_duration(sluice, demo, pki):
    """Completed handshakes count per negotiated version (TLSv1 and TLSv1.1 exist as
    series but stay 0: the listener's floor is TLS 1.2). A client that waits ~0.3 s
    before its ClientHello has a handshake of at least that long, measured from accept:
    the observation lands in its bucket and the _sum is in seconds."""
    port = free_port()
    s, admin = start(sluice, demo, [tls_listener(port, [pki.a_ec], name="secure")])
    ctx12 = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    ctx13 = client_context(pki, min_version=ssl.TLSVersion.TLSv1_3)
    for ctx in (ctx13, ctx12, ctx13):
        with tls_connect(port, ctx, sni="a.example.com") as t:
            t.sendall(b"ping")
            assert recv_exact(t, 4) == b"ping"
    s.access_log(3)
    samples = fetch(admin)[1]
    assert handshakes(samples, "secure") == {"TLSv1": 0, "TLSv1.1": 0, "TLSv1.2": 1,
                                             "TLSv1.3": 2}
    _, fast_sum, count = histogram_of(samples, "sluice_tls_handshake_duration_seconds",
                                      listener="secure")
    assert count == 3
    assert 0 <= fast_sum <= sum(ms_to_s(s.access_log(3), "duration_ms")) + 0.003

    raw = connect(port)
    local = raw.getsockname()[1]
    t0 = time.monotonic()
    time.sleep(0.3)  # the stimulus: a client slow to start its handshake
    t = ctx13.wrap_socket(raw, server_hostname="a.example.com")
    t.sendall(b"ping")
    assert recv_exact(t, 4) == b"ping"
    t.close()
    client_side = time.monotonic() - t0
    slow = s.log_for(local)
    buckets, total, count = histogram_of(fetch(admin)[1], "sluice_tls_handshake_duration_seconds",
                                         listener="secure")
    assert count == 4
    v = total - fast_sum  # the slow handshake alone
    # (+10 ms: sluice's clock counts whole milliseconds)
    assert 0.3 <= v <= min(client_side, slow["duration_ms"] / 1000) + 0.01, (v, slow)
    # each fast handshake took at most fast_sum: every bound from fast_sum up holds the
    # three, and the slow one from v up
    above, between = [le for le in BOUNDS if le >= max(v, fast_sum)], \
        [le for le in BOUNDS if fast_sum <= le < v]
    assert above and between, (fast_sum, v)
    for le in above + [math.inf]:
        assert buckets[le] == 4, (le, buckets)
    for le in between:
        assert buckets[le] == 3, (le, buckets)
    s.stop()


# ---------------------------------------------------------------------------------------
# TLS towards servers


class SlowTlsServer:
    """A TLS echo server that waits `delay` seconds after accepting before it answers the
    handshake (or never, with delay None)."""

    def __init__(self, scripted, cert, delay):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        self.delay = delay
        self.srv = scripted(self._handle)
        self.address = self.srv.address

    def _handle(self, sock):
        if self.delay is None:
            sock.settimeout(scaled(10))
            try:
                while sock.recv(65536):  # swallow the ClientHello, never answer
                    pass
            except OSError:
                pass
            return "silent"
        time.sleep(self.delay)
        try:
            t = self.ctx.wrap_socket(sock, server_side=True)
        except ssl.SSLError as e:  # sluice refusing the certificate: the expected end
            return f"refused: {e.reason}"
        while True:
            data = t.recv(65536)
            if not data:
                return "done"
            t.sendall(data)


def tls_pool(addresses, pki, **kw):
    return {"name": "pool", "protocol": "tls", "servers": [{"address": a} for a in addresses],
            "tls": {"ca": pki.root.cert}, **kw}


def test_backend_connect_time_includes_tls(sluice, scripted, pki):
    """docs: connect time is "TCP, plus TLS for TLS backends". A server that takes 0.3 s
    to answer the handshake has connect_ms >= 300 in the log, and the histogram holds
    exactly the logged times (sum in seconds, right buckets). A connection counts in
    sluice_server_connections_total once established."""
    srv = SlowTlsServer(scripted, pki.backend, delay=0.3)
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[tls_pool([srv.address], pki)], admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    for _ in range(2):
        c = connect(port)
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"
        c.close()
    entries = s.access_log(2)
    assert all(e["connect_ms"] >= 300 for e in entries), entries
    samples = fetch(admin)[1]
    assert_histogram_holds(samples, "sluice_backend_connect_duration_seconds",
                           ms_to_s(entries, "connect_ms"), backend="pool")
    assert value(samples, "sluice_server_connections_total", backend="pool",
                 server=srv.address) == 2
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=srv.address) == 0
    s.stop()


def test_backend_tls_failure_and_timeout_are_connect_failures(sluice, scripted, pki):
    """docs: sluice_backend_connect_failures_total counts failed attempts "(refused, timed
    out, TLS)". An untrusted certificate and a server that never answers the handshake
    (connect_timeout) are one failure each, no established connection, no connect time."""
    untrusted = SlowTlsServer(scripted, pki.other_backend, delay=0)
    mute = SlowTlsServer(scripted, pki.backend, delay=None)
    port, port2, aport = free_port(), free_port(), free_port()
    backends = [tls_pool([untrusted.address], pki, retries=0),
                dict(tls_pool([mute.address], pki, retries=0, connect_timeout="300ms"),
                     name="mute")]
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"},
                   {"name": "front2", "bind": f"127.0.0.1:{port2}", "backend": "mute"}],
        backends=backends, admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    for p, srv, backend, why in ((port, untrusted, "pool", "certificate verify failed"),
                                 (port2, mute, "mute", "timed out")):
        c = connect(p)
        state, _, _ = wait_closed(c, scaled(5))
        assert state in ("eof", "reset")
        e = s.log_for(c)
        c.close()
        assert e["termination"] == "tls_error" and why in e["error"], e
        assert e["connect_ms"] is None, e  # the connection was never made
        samples = fetch(admin)[1]
        assert value(samples, "sluice_backend_connect_failures_total", backend=backend,
                     server=srv.address) == 1, backend
        assert value(samples, "sluice_server_connections_total", backend=backend,
                     server=srv.address) == 0, backend
        assert histogram_of(samples, "sluice_backend_connect_duration_seconds",
                            backend=backend)[2] == 0
    # a tcp listener has no TLS handshake series
    assert not [k for k in samples if k[0].startswith("sluice_tls_handshake")]
    assert untrusted.srv.wait_results(1) == ["refused: TLSV1_ALERT_UNKNOWN_CA"]
    s.stop()


def test_silent_client_is_a_handshake_error(sluice, demo, pki):
    """A client that connects to a TLS listener and closes without a byte: a failed
    handshake (the listener cannot tell it from a broken client), never a completed one."""
    port = free_port()
    s, admin = start(sluice, demo, [tls_listener(port, [pki.a_ec], name="secure")])
    c = socket.create_connection(("127.0.0.1", port))
    local = c.getsockname()[1]
    c.close()
    assert s.log_for(local)["termination"] == "tls_error"
    samples = fetch(admin)[1]
    assert value(samples, "sluice_tls_handshake_errors_total", listener="secure") == 1
    assert handshakes(samples, "secure") == dict.fromkeys(VERSIONS, 0)
    s.stop()
