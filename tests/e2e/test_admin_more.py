"""GET /api/v1/status field by field (every documented field, its JSON type and its
value after known traffic), the `disabled` state of a server as the API shows it, and a
server with an IPv6 address in the API and the access log."""
import signal
import urllib.parse

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     wait_closed, wait_for)
from test_admin import Admin, find_server
from tls_certs import pki, tls_listener  # noqa: F401
from test_cli import source_version

# documented fields and their JSON types (bool checked apart from int: bool is an int)
TOP = {"version": str, "pid": int, "generation": int, "workers": int, "config": str,
       "state": str, "active_connections": int, "reloads": dict, "listeners": list,
       "backends": list}
LISTENER = {"name": str, "protocol": str, "binds": list, "backend": (str, type(None)),
            "tls": bool, "tls_passthrough": bool, "routes": int, "max_connections": int,
            "active_connections": int, "connections_total": int, "bytes_received": int,
            "bytes_sent": int, "refused_total": int}
BACKEND = {"name": str, "protocol": str, "balance": str, "health_checks": bool,
           "drain_timeout_ms": int, "connect_timeout_ms": int, "servers_usable": int,
           "servers": list}
SERVER = {"address": str, "state": str, "weight": int, "config_weight": int, "backup": bool,
          "healthy": bool, "usable": bool, "active_connections": int, "connections_total": int,
          "connect_failures_total": int, "bytes_received": int, "bytes_sent": int,
          "health": dict}
HEALTH = {"checked": bool, "last_check": str, "last_change_seconds_ago": (float, type(None)),
          "probe_successes": int, "probe_failures": int, "passive_failures": int}


def check_types(obj, schema, where, optional=()):
    """Every field of `schema` present with its type; nothing undocumented besides
    `optional`."""
    assert set(obj) - set(optional) == set(schema), (where, sorted(obj), sorted(schema))
    for key, types in schema.items():
        types = types if isinstance(types, tuple) else (types,)
        value = obj[key]
        ok = any(type(value) is t for t in types)  # exact: True is not an int here
        assert ok, f"{where}.{key} = {value!r}: expected {types}"


def check_status_types(st):
    check_types(st, TOP, "status")
    assert set(st["reloads"]) == {"success", "failure"}
    assert all(type(v) is int for v in st["reloads"].values()), st["reloads"]
    for lst in st["listeners"]:
        check_types(lst, LISTENER, f"listener {lst.get('name')}")
        assert all(type(b) is str for b in lst["binds"])
    for b in st["backends"]:
        check_types(b, BACKEND, f"backend {b.get('name')}")
        for s in b["servers"]:
            check_types(s, SERVER, f"server {s.get('address')}", optional=("drain_ms_left",))
            if "drain_ms_left" in s:
                assert type(s["drain_ms_left"]) is int
            check_types(s["health"], HEALTH, f"server {s['address']} health")


def test_status_fields(sluice, demo, pki):
    a, b = demo("banner", name="a"), demo("banner", name="b")
    c = demo("echo", name="c")
    p_db, p_edge1, p_edge2, p_tls, aport = (free_port() for _ in range(5))
    text = l4_config(
        workers=3,
        shutdown_timeout="10s",
        admin={"bind": f"127.0.0.1:{aport}"},
        listeners=[
            {"name": "db", "bind": f"127.0.0.1:{p_db}", "backend": "pg", "max_connections": 5},
            {"name": "edge", "bind": [f"127.0.0.1:{p_edge1}", f"127.0.0.1:{p_edge2}"],
             "routes": [{"match": {"sni": "a.example.com"}, "backend": "other"}]},
            tls_listener(p_tls, [pki.a_rsa], name="secure", backend="other"),
        ],
        backends=[
            {"name": "pg", "balance": "least_connections", "drain_timeout": "7s",
             "connect_timeout": "3s",
             "health": {"interval": "200ms", "timeout": "200ms", "healthy_threshold": 1},
             "servers": [{"address": a.address, "weight": 2},
                         {"address": b.address, "backup": True}]},
            {"name": "other", "servers": [{"address": c.address}]},
        ])
    s = sluice(text)
    s.wait_listening([aport])
    admin = Admin(aport)

    def both_up():
        st = admin.status()
        return st if all(x["healthy"] for x in st["backends"][0]["servers"]) else None
    st = wait_for(both_up, scaled(5), interval=0.1, what="pg servers up")
    check_status_types(st)
    assert st["version"] == source_version()
    assert st["pid"] == s.proc.pid and st["workers"] == 3 and st["generation"] == 1
    assert st["config"] == s.config_path and st["state"] == "running"
    assert st["reloads"] == {"success": 0, "failure": 0}

    # traffic with known byte counts: one closed connection, one held open, one refused
    done = connect(p_db)
    assert recv_line(done) == "a"
    echo_roundtrip(done, b"0123456789")
    done_port = done.getsockname()[1]
    done.close()
    held = connect(p_db)
    assert recv_line(held) == "a"
    refused = connect(p_edge2)
    refused.sendall(b"not TLS\r\n")
    assert wait_closed(refused, scaled(5))[0] in ("eof", "reset")
    refused_port = refused.getsockname()[1]
    refused.close()
    s.log_for(done_port)
    s.log_for(refused_port)

    st = admin.status()
    check_status_types(st)
    assert st["active_connections"] == 1
    db, edge, secure = st["listeners"]
    assert db == {"name": "db", "protocol": "tcp", "binds": [f"127.0.0.1:{p_db}"],
                  "backend": "pg", "tls": False, "tls_passthrough": False, "routes": 0,
                  "max_connections": 5, "active_connections": 1, "connections_total": 2,
                  "bytes_received": 10, "bytes_sent": 2 + 10, "refused_total": 0}, db
    assert edge == {"name": "edge", "protocol": "tcp",
                    "binds": [f"127.0.0.1:{p_edge1}", f"127.0.0.1:{p_edge2}"],
                    "backend": None, "tls": False, "tls_passthrough": True, "routes": 1,
                    "max_connections": 0, "active_connections": 0, "connections_total": 1,
                    "bytes_received": 0, "bytes_sent": 0, "refused_total": 1}, edge
    assert (secure["name"], secure["protocol"], secure["tls"], secure["backend"],
            secure["tls_passthrough"], secure["connections_total"]) == (
        "secure", "tls", True, "other", False, 0), secure
    pg, other = st["backends"]
    assert {k: v for k, v in pg.items() if k != "servers"} == {
        "name": "pg", "protocol": "tcp", "balance": "least_connections",
        "health_checks": True, "drain_timeout_ms": 7000, "connect_timeout_ms": 3000,
        "servers_usable": 2}, pg
    assert {k: v for k, v in other.items() if k != "servers"} == {
        "name": "other", "protocol": "tcp", "balance": "round_robin",
        "health_checks": False, "drain_timeout_ms": 30000, "connect_timeout_ms": 5000,
        "servers_usable": 1}, other
    sa, sb = pg["servers"]
    health_a = sa.pop("health")
    assert sa == {"address": a.address, "state": "enabled", "weight": 2, "config_weight": 2,
                  "backup": False, "healthy": True, "usable": True, "active_connections": 1,
                  "connections_total": 2, "connect_failures_total": 0,
                  "bytes_received": 10, "bytes_sent": 12}, sa
    assert health_a["checked"] is True and health_a["last_check"].startswith("ok in ")
    assert 0 <= health_a["last_change_seconds_ago"] < scaled(10), health_a
    assert health_a["probe_successes"] >= 1 and health_a["probe_failures"] == 0
    assert health_a["passive_failures"] == 0
    assert sb["backup"] is True and sb["config_weight"] == 1 and sb["connections_total"] == 0
    (sc,) = other["servers"]
    assert sc["health"] == {"checked": False, "last_check": "no health check configured",
                            "last_change_seconds_ago": None, "probe_successes": 0,
                            "probe_failures": 0, "passive_failures": 0}, sc

    # drain_ms_left appears with a drain deadline only
    code, _, body = admin.patch_server("pg", b.address, {"state": "drain"})
    assert code == 200 and 0 < body["drain_ms_left"] <= 7000, body
    st = admin.status()
    check_status_types(st)
    assert "drain_ms_left" in find_server(st, "pg", b.address)
    assert "drain_ms_left" not in find_server(st, "pg", a.address)
    assert st["backends"][0]["servers_usable"] == 1

    # generation and reload counters
    code, _, body = admin.reload()
    assert code == 200 and body == {"ok": True, "generation": 2}, body
    st = admin.status()
    assert st["generation"] == 2 and st["reloads"] == {"success": 1, "failure": 0}, st
    s.write_config(text.replace("protocol: tls", "protocol: tlss"))
    assert admin.reload()[0] == 422
    st = admin.status()
    assert st["generation"] == 2 and st["reloads"] == {"success": 1, "failure": 1}, st

    # "stopping" while a stop lets the held connection finish
    s.signal(signal.SIGTERM)
    wait_for(lambda: admin.status()["state"] == "stopping", scaled(5), what="state stopping")
    echo_roundtrip(held, b"x")
    held.close()
    assert s.wait_exit(scaled(10)) == 0, s.stderr()


def test_ipv6_server_and_listener_addresses(sluice, demo):
    """A server at [::1]:PORT and a listener on [::1]: the status shows both with their
    brackets, the server's URL takes the address URL-encoded or plain, PATCH works on it,
    and the access log names it the same way."""
    port6 = free_port()
    d = demo("banner", name="six", extra=("--listen", f"[::1]:{port6}"))
    server = f"[::1]:{port6}"
    lport, aport = free_port(), free_port()
    s = sluice(l4_config(
        admin={"bind": f"127.0.0.1:{aport}"},
        listeners=[{"name": "front", "bind": [f"127.0.0.1:{lport}", f"[::1]:{lport}"],
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": server}, {"address": d.address}]}]))
    s.wait_listening([aport])
    admin = Admin(aport)
    st = admin.status()
    assert st["listeners"][0]["binds"] == [f"127.0.0.1:{lport}", f"[::1]:{lport}"], st
    assert [x["address"] for x in st["backends"][0]["servers"]] == [server, d.address], st
    encoded = urllib.parse.quote(server, safe="")
    assert encoded == f"%5B%3A%3A1%5D%3A{port6}"
    for path in (encoded, server):
        code, _, body = admin.get(f"/api/v1/backends/pool/servers/{path}")
        assert code == 200 and body["address"] == server, (path, code, body)
    code, _, body = admin.patch_server("pool", server, {"weight": 3})
    assert code == 200 and body["address"] == server and body["weight"] == 3, body
    # the IPv4 server out: every connection goes to [::1]
    assert admin.patch_server("pool", d.address, {"state": "disabled"})[0] == 200
    c = connect(lport)
    assert recv_line(c) == "six"
    local = c.getsockname()[1]
    c.close()
    assert s.log_for(local)["server"] == server
    srv = wait_for(lambda: (lambda x: x if x["connections_total"] == 1 else None)(
        find_server(admin.status(), "pool", server)), scaled(5),
        what="the connection counted on the IPv6 server")
    assert srv["usable"] is True and srv["weight"] == 3, srv
    s.stop()
