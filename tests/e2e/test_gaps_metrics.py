"""Metrics items of docs/operations.md that had no test (docs/coverage.md, Gaps):

- the byte counters of a `tls` listener count the plaintext, in /metrics and in the status
  API (listener and server);
- only the current configuration's listeners, backends and servers appear in /metrics
  after a reload removed some (even while a removed server still drains a connection);
- a listener (and a backend) removed by a reload and added again continues its counters.

The escaping of label values is unit-tested (unit/test_metrics.c): configuration names
cannot carry the characters that need it.

The access log is the synchronisation point: sluice adds a connection to the counters
before it writes the connection's log line."""
from helpers import connect, free_port, l4_config, recv_exact, recv_line, scaled
from test_admin import Admin, find_server
from test_metrics import fetch, histogram_of, value
from tls_certs import client_context, pki, tls_connect, tls_listener  # noqa: F401


def banner_exchange(port, name, payload):
    """One connection to a banner server through a tcp listener: reads "NAME\\n", sends
    `payload`, reads it back, closes. Returns the client's local port."""
    c = connect(port)
    assert recv_line(c) == name
    c.sendall(payload)
    assert recv_exact(c, len(payload), scaled(10)) == payload
    local = c.getsockname()[1]
    c.close()
    return local


# ---------------------------------------------------------------------------------------
# bytes on tls listeners


def test_tls_listener_counts_plaintext_bytes(sluice, demo, pki):
    """Two TLS connections with known payloads through a `tls` listener to a banner
    server: sluice_bytes_received_total / sent_total of the listener, and the status API's
    bytes of the listener and of the server, are exactly the plaintext (payloads, plus the
    banner line on the way out), not the TLS records (handshake, record headers and tags
    would add several kilobytes)."""
    d = demo("banner", name="plain-b")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[tls_listener(port, [pki.a_rsa], name="secure")],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    banner = b"plain-b\n"
    sizes = (1000, 70000)  # below and above one TLS record (16 KiB)
    for n in sizes:
        payload = bytes(range(256)) * (n // 256) + b"z" * (n % 256)
        with tls_connect(port, client_context(pki), sni="a.example.com") as t:
            assert recv_line(t) == "plain-b"
            t.sendall(payload)
            assert recv_exact(t, n, scaled(10)) == payload
            local = t.getsockname()[1]
        e = s.log_for(local)
        assert e["bytes_in"] == n and e["bytes_out"] == n + len(banner), e
    received, sent = sum(sizes), sum(sizes) + 2 * len(banner)
    samples = fetch(admin)[1]
    assert value(samples, "sluice_bytes_received_total", listener="secure") == received
    assert value(samples, "sluice_bytes_sent_total", listener="secure") == sent
    st = admin.status()
    lst = next(x for x in st["listeners"] if x["name"] == "secure")
    assert (lst["bytes_received"], lst["bytes_sent"]) == (received, sent), lst
    srv = find_server(st, "pool", d.address)
    assert (srv["bytes_received"], srv["bytes_sent"]) == (received, sent), srv
    s.stop()


# ---------------------------------------------------------------------------------------
# reloads: only current objects; counters kept by name


def labels_of(samples):
    """{label name: set of values} over every sample."""
    out = {}
    for (_, labels), _ in samples.items():
        for k, v in labels:
            out.setdefault(k, set()).add(v)
    return out


def test_only_current_objects_after_a_reload(sluice, demo):
    """Before: listeners "keep" (-> pool: servers one, two) and "gone" (-> backend "old":
    server three), each with traffic, and a connection held open through "gone" and one
    through "keep" to server two. A reload keeps only "keep" -> pool with server one.
    After it, no sample of any family names "gone", "old", server two or server three,
    although the held connections are still open (their servers drain); what remains is
    still there with its counts."""
    one, two, three = demo("banner", name="one"), demo("banner", name="two"), demo("banner",
                                                                                   name="three")
    keep, gone, aport = free_port(), free_port(), free_port()

    def config(with_gone):
        listeners = [{"name": "keep", "bind": f"127.0.0.1:{keep}", "backend": "pool"}]
        backends = [{"name": "pool", "balance": "round_robin", "drain_timeout": "1m",
                     "servers": [{"address": one.address}]
                     + ([{"address": two.address}] if with_gone else [])}]
        if with_gone:
            listeners.append({"name": "gone", "bind": f"127.0.0.1:{gone}", "backend": "old"})
            backends.append({"name": "old", "drain_timeout": "1m",
                             "servers": [{"address": three.address}]})
        return l4_config(listeners=listeners, backends=backends, workers=1,
                         admin={"bind": f"127.0.0.1:{aport}"})

    s = sluice(config(True))
    s.wait_listening([aport])
    admin = Admin(aport)
    held = {}
    for _ in range(2):  # round robin over one and two: one connection each, held open
        c = connect(keep)
        held[recv_line(c)] = c
    assert set(held) == {"one", "two"}
    held["two"].sendall(b"x")
    assert recv_exact(held["two"], 1) == b"x"
    banner_exchange(gone, "three", b"through gone")
    held["three"] = connect(gone)
    assert recv_line(held["three"]) == "three"
    s.access_log(1)
    before = labels_of(fetch(admin)[1])
    assert {"keep", "gone"} <= before["listener"], before
    assert {"pool", "old"} <= before["backend"], before
    assert {one.address, two.address, three.address} <= before["server"], before

    s.write_config(config(False))
    code, _, body = admin.reload()
    assert code == 200 and body["ok"], body
    families, samples = fetch(admin)
    after = labels_of(samples)
    assert after["listener"] == {"keep"}, after["listener"]
    assert after["backend"] == {"pool"}, after["backend"]
    assert after["server"] == {one.address}, after["server"]
    # the removed server really is still draining its connection (not just closed)
    assert s.access_log(where=lambda e: e["server"] in (two.address, three.address)
                        and e["termination"] == "drained") == []
    held["two"].sendall(b"y")
    assert recv_exact(held["two"], 1) == b"y"
    # what remains keeps its counts: 2 connections on keep, one open to server one
    assert value(samples, "sluice_connections_total", listener="keep") == 2
    assert value(samples, "sluice_backend_connections_active", backend="pool",
                 server=one.address) == 1
    # every per-object family still has its samples (families of TLS and HTTP listeners
    # and backends have none in this tcp-only configuration)
    http_only = ("sluice_requests_total", "sluice_request_duration_seconds", "sluice_http",
                 "sluice_upstream_", "sluice_backend_pool_", "sluice_websocket_")
    tls_only = ("sluice_tls_handshake",)
    for name, f in families.items():
        if name.startswith("sluice_") and not name.startswith(http_only + tls_only):
            assert any(n == name or n.startswith(name + "_") for (n, _) in samples), name
    for c in held.values():
        c.close()
    s.stop()


def test_removed_and_added_again_continues_its_counters(sluice, demo):
    """Listener "side" -> backend "sidepool": three connections with known payloads. A
    reload removes both; a second reload adds them again, on another port. The listener's
    connections_total, bytes and duration histogram, and the backend's connect duration
    histogram, continue from where they were (3 connections), and a new connection adds
    to them."""
    main_d, side_d = demo("banner", name="m"), demo("banner", name="sd")
    main, side1, side2, aport = free_port(), free_port(), free_port(), free_port()

    def config(side_port):
        listeners = [{"name": "main", "bind": f"127.0.0.1:{main}", "backend": "mainpool"}]
        backends = [{"name": "mainpool", "servers": [{"address": main_d.address}]}]
        if side_port:
            listeners.append({"name": "side", "bind": f"127.0.0.1:{side_port}",
                              "backend": "sidepool"})
            backends.append({"name": "sidepool", "servers": [{"address": side_d.address}]})
        return l4_config(listeners=listeners, backends=backends,
                         admin={"bind": f"127.0.0.1:{aport}"})

    s = sluice(config(side1))
    s.wait_listening([aport])
    admin = Admin(aport)
    for n in (10, 20, 30):
        banner_exchange(side1, "sd", b"s" * n)
    s.access_log(3)

    def side_counts():
        samples = fetch(admin)[1]
        return (value(samples, "sluice_connections_total", listener="side"),
                value(samples, "sluice_bytes_received_total", listener="side"),
                value(samples, "sluice_bytes_sent_total", listener="side"),
                histogram_of(samples, "sluice_connection_duration_seconds",
                             listener="side")[2],
                histogram_of(samples, "sluice_backend_connect_duration_seconds",
                             backend="sidepool")[2])

    assert side_counts() == (3, 60, 60 + 3 * 3, 3, 3)

    s.write_config(config(None))
    code, _, body = admin.reload()
    assert code == 200 and body["ok"], body
    samples = fetch(admin)[1]
    assert ("sluice_connections_total", frozenset({("listener", "side")})) not in samples
    banner_exchange(main, "m", b"meanwhile")  # traffic elsewhere in between

    s.write_config(config(side2))
    code, _, body = admin.reload()
    assert code == 200 and body["ok"], body
    assert side_counts() == (3, 60, 69, 3, 3)
    banner_exchange(side2, "sd", b"s" * 40)
    s.access_log(5)
    assert side_counts() == (4, 100, 69 + 43, 4, 4)
    s.stop()


def test_server_removed_and_added_again_continues_its_counters(sluice, demo):
    """The same for servers (counters are kept per name): backend "pool" has server x (a
    banner) and r (refuses; retries move on to x). After traffic, a reload replaces both
    by y, another brings them back: sluice_server_connections_total and
    sluice_backend_connect_failures_total of x and r, and the status API's counts and
    bytes of x, are where they were, and new traffic adds to them."""
    x, y = demo("banner", name="x"), demo("banner", name="y")
    r = f"127.0.0.1:{free_port()}"
    port, aport = free_port(), free_port()

    def config(servers):
        return l4_config(
            listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
            backends=[{"name": "pool", "balance": "round_robin", "retries": 1,
                       "servers": [{"address": a} for a in servers]}],
            workers=1, admin={"bind": f"127.0.0.1:{aport}"})

    s = sluice(config([r, x.address]))
    s.wait_listening([aport])
    admin = Admin(aport)
    for _ in range(4):  # round robin: every other one tries r first, then x
        banner_exchange(port, "x", b"12345")
    s.access_log(4)

    def counts():
        samples = fetch(admin)[1]
        srv = find_server(admin.status(), "pool", x.address)
        return (value(samples, "sluice_server_connections_total", backend="pool",
                      server=x.address),
                value(samples, "sluice_backend_connect_failures_total", backend="pool",
                      server=r),
                (srv["connections_total"], srv["bytes_received"], srv["bytes_sent"]))

    before = counts()
    assert before[0] == 4 and before[1] >= 1 and before[2] == (4, 20, 4 * 7), before
    s.write_config(config([y.address]))
    assert admin.reload()[0] == 200
    banner_exchange(port, "y", b"elsewhere")
    s.write_config(config([r, x.address]))
    assert admin.reload()[0] == 200
    assert counts() == before
    banner_exchange(port, "x", b"more")
    s.access_log(6)
    after = counts()
    assert after[0] == 5 and after[1] >= before[1], after
    assert after[2] == (5, 24, 4 * 7 + 6), after
    s.stop()
