"""What a reload keeps of a server that stays in the file (same backend, same address):
its open connections, counters, admin state and API weight, whatever else the reload
changes about it (a health block added or removed, another weight in the file). And what
a rejected reload changes: nothing. Also the admin state's drain clock, which a switch
from drain to disabled must not restart."""
import socket
import time

from helpers import connect, echo_roundtrip, free_port, recv_line, scaled, wait_closed, wait_for
from test_admin import find_server, setup  # noqa: F401  (setup is a fixture)


def hold_connection_to(t, name):
    """An open connection that the balancer sent to server `name` (others closed)."""
    for _ in range(20):
        c = connect(t.port, timeout=scaled(10))
        if recv_line(c) == name:
            return c
        c.close()
    raise AssertionError(f"no connection reached server {name}")


def server(t, name):
    return find_server(t.admin.status(), "pool", {d.name: d.address for d in t.servers}[name])


def reload_ok(t, text):
    t.s.write_config(text)
    code, _, body = t.admin.reload()
    assert code == 200 and body["ok"] is True, body
    return body["generation"]


def with_health(text):
    return text.replace("name: pool\n", "name: pool\n  health:\n    interval: 200ms\n", 1)


def test_reload_adding_and_removing_health_keeps_the_server(setup):
    t = setup(drain_timeout="1s")
    held = hold_connection_to(t, "a")
    assert t.admin.patch_server("pool", server(t, "a")["address"], {"weight": 7})[0] == 200
    before = server(t, "a")
    assert before["active_connections"] == 1 and before["weight"] == 7

    reload_ok(t, with_health(t.config))
    wait_for(lambda: server(t, "a")["health"]["last_check"].startswith("ok in "), scaled(5),
             what="the first probe of the kept server")
    after = server(t, "a")
    assert after["health"]["checked"] is True and after["healthy"] is True, after
    assert after["connections_total"] == before["connections_total"], after
    assert after["weight"] == 7 and after["state"] == "enabled", after
    # a server the reload had replaced would be drained: its connection cut at drain_timeout
    # (1 s). This is a check that something does NOT happen, so it waits that long, once.
    time.sleep(1.5)
    echo_roundtrip(held, b"still here after adding health")
    assert server(t, "a")["active_connections"] == 1

    reload_ok(t, t.config)  # the health block removed again
    after = server(t, "a")
    assert after["health"]["checked"] is False, after
    assert after["health"]["last_check"] == "no health check configured", after
    assert after["healthy"] is True and after["usable"] is True, after
    assert after["connections_total"] == before["connections_total"], after
    assert after["weight"] == 7, after
    time.sleep(1.5)  # as above: longer than drain_timeout
    echo_roundtrip(held, b"still here after removing health")
    port = held.getsockname()[1]
    held.close()
    entry = t.s.log_for(port)
    assert entry["termination"] == "client_closed", entry
    assert "drained" not in t.s.stderr() and "removed by reload" not in t.s.stderr()
    t.s.stop()


def test_server_gaining_a_probe_goes_down_when_its_probes_fail(setup, sluice):
    """A server that served without a probe keeps its state when a reload adds one, until
    unhealthy_threshold failures take it down (as any server once seen healthy)."""
    t = setup(drain_timeout="1s")
    b = t.servers[1]
    b.stop()  # "b" now refuses connections: only a probe can tell
    assert server(t, "b")["healthy"] is True  # no probe: nothing checks it
    reload_ok(t, t.config.replace("name: pool\n", "name: pool\n  health:\n    interval: 100ms\n"
                                  "    unhealthy_threshold: 2\n", 1))
    wait_for(lambda: server(t, "b")["healthy"] is False, scaled(5),
             what="server b marked down by its new probe")
    st = server(t, "b")
    assert st["usable"] is False and st["health"]["checked"] is True, st
    assert "is DOWN" in t.s.stderr() and "2 consecutive failures" in t.s.stderr(), \
        t.s.stderr()[-1500:]
    assert server(t, "a")["healthy"] is True
    for _ in range(6):
        c = connect(t.port)
        assert recv_line(c) == "a"
        c.close()
    t.s.stop()


def test_api_weight_survives_reload_unless_the_file_changes_it(setup):
    t = setup()
    addr = server(t, "a")["address"]
    assert t.admin.patch_server("pool", addr, {"weight": 7})[0] == 200
    # a reload that changes something else keeps the weight set through the API
    reload_ok(t, t.config.replace("name: pool\n", "name: pool\n  drain_timeout: 3s\n", 1))
    st = server(t, "a")
    assert st["weight"] == 7 and st["config_weight"] == 1, st
    # a reload that changes this server's weight in the file sets it
    text = t.config.replace(f"- address: {addr}\n", f"- address: {addr}\n    weight: 3\n", 1)
    assert text != t.config
    reload_ok(t, text)
    st = server(t, "a")
    assert st["weight"] == 3 and st["config_weight"] == 3, st
    t.s.stop()


def test_rejected_reload_changes_no_server(setup):
    """A reload that fails late (a listener port in use) must not have applied the new
    weight or health settings to the servers it would have kept."""
    t = setup()
    addr = server(t, "a")["address"]
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    weighted = t.config.replace(f"- address: {addr}\n", f"- address: {addr}\n    weight: 9\n", 1)
    assert weighted != t.config
    for text in (weighted, with_health(t.config), with_health(weighted)):
        text = text.replace("listeners:\n", "listeners:\n- name: extra\n  bind: 127.0.0.1:"
                            f"{taken}\n  protocol: tcp\n  backend: pool\n", 1)
        t.s.write_config(text)
        code, _, body = t.admin.reload()
        assert code == 422 and body["ok"] is False, body
        assert body["errors"] == [f"cannot listen on 127.0.0.1:{taken}: Address already in use"]
    busy.close()
    st = server(t, "a")
    assert st["weight"] == 1 and st["config_weight"] == 1, st
    assert st["health"]["checked"] is False, st
    assert st["health"]["last_check"] == "no health check configured", st
    t.s.stop()


def test_drain_then_disabled_keeps_the_drain_clock(setup):
    """drain at t0 with drain_timeout 2s, then disabled 1 s later: the open connection is
    still cut at t0 + 2 s, not 2 s after the second change."""
    t = setup(drain_timeout="2s")
    held = hold_connection_to(t, "a")
    addr = server(t, "a")["address"]
    assert t.admin.patch_server("pool", addr, {"state": "drain"})[0] == 200
    t0 = time.monotonic()
    wait_for(lambda: server(t, "a").get("drain_ms_left", 2000) <= 1000, scaled(5),
             what="half the drain time gone")
    code, _, body = t.admin.patch_server("pool", addr, {"state": "disabled"})
    assert code == 200 and body["state"] == "disabled", body
    assert body["drain_ms_left"] <= 1000, body
    state, _, _ = wait_closed(held, scaled(5))
    waited = time.monotonic() - t0
    assert state in ("eof", "reset")
    assert 1.8 <= waited < 2.7, f"cut {waited:.2f}s after the drain began"
    assert t.s.log_for(held)["termination"] == "drained"
    held.close()
    t.s.stop()
