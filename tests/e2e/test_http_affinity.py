"""Session affinity and request hashing on http backends (shared/spec/http.md, "Route
policy"): affinity.cookie (opaque value, attributes, sticks, survives a reload, stays on a
draining server, moves with a new cookie when its server is down or disabled),
affinity.client_ip at L7, and consistent_hash with hash_key host, path, header:NAME and
cookie:NAME."""
import os
import re
import socket
import subprocess

from helpers import free_port, scaled, wait_for
from httpbackend import HttpBackend
from test_admin import Admin
from test_http_proxy import exchange, http_config

import pytest


@pytest.fixture
def backends():
    made = []

    def make(n):
        made.extend(HttpBackend() for _ in range(n))
        return made[-n:]

    yield make
    for b in made:
        b.close()


def get(port, path="/", headers=()):
    raw = f"GET {path} HTTP/1.1\r\nHost: a.example\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return exchange(port, raw.encode())


def which(servers, before):
    """The index of the one server whose request count grew since `before`."""
    grown = [i for i, s in enumerate(servers) if len(s.requests) > before[i]]
    assert len(grown) == 1, grown
    return grown[0]


def counts(servers):
    return [len(s.requests) for s in servers]


def sticky_get(port, servers, cookie=None, name="SLUICE_AFFINITY"):
    """One request (with the cookie when given): (server index, Set-Cookie or None)."""
    before = counts(servers)
    hdrs = [("Cookie", f"theme=dark; {name}={cookie}")] if cookie else []
    status, h, _ = get(port, headers=hdrs)
    assert status == 200
    return which(servers, before), h.get("set-cookie")


def cookie_value(set_cookie, name="SLUICE_AFFINITY"):
    m = re.match(rf"{name}=([0-9a-f]{{16}}); ", set_cookie)
    assert m, set_cookie
    return m.group(1)


def cookie_config(port, servers, admin_port, affinity=None, **kw):
    return http_config(port, [s.address for s in servers], admin_port=admin_port,
                       backend_kw={"balance": "round_robin",
                                   "affinity": affinity or {"cookie": "SLUICE_AFFINITY"}, **kw})


def test_cookie_sticks_is_opaque_and_survives_a_reload(sluice, backends):
    servers = backends(3)
    port, admin_port = free_port(), free_port()
    sluice(cookie_config(port, servers, admin_port))
    first, sc = sticky_get(port, servers)
    assert sc is not None
    value = cookie_value(sc)
    # attributes: a session cookie (no Max-Age/Expires), HttpOnly, SameSite=Lax, not Secure
    # on a plain http listener
    assert sc == f"SLUICE_AFFINITY={value}; Path=/; HttpOnly; SameSite=Lax", sc
    # opaque: the value says nothing of the address
    addr = servers[first].address
    assert str(servers[first].port) not in value and "127" not in value
    assert value.encode().hex() not in addr.encode().hex()
    # requests without the cookie are balanced; with it, they stick and get no new cookie
    for _ in range(9):
        i, sc2 = sticky_get(port, servers, value)
        assert i == first and sc2 is None
    # a reload keeps it
    code, _, body = Admin(admin_port).reload()
    assert code == 200, body
    for _ in range(6):
        i, sc2 = sticky_get(port, servers, value)
        assert i == first and sc2 is None


def test_cookie_survives_a_config_change_and_a_restart(sluice, backends):
    servers = backends(3)
    port, admin_port = free_port(), free_port()
    s = sluice(cookie_config(port, servers, admin_port))
    first, sc = sticky_get(port, servers)
    value = cookie_value(sc)
    # the reload changes the backend (order of servers, timeout): the value still names it
    s.write_config(http_config(port, [x.address for x in reversed(servers)],
                               admin_port=admin_port,
                               backend_kw={"balance": "round_robin", "timeout": "30s",
                                           "affinity": {"cookie": "SLUICE_AFFINITY"}}))
    code, _, body = Admin(admin_port).reload()
    assert code == 200, body
    for _ in range(6):
        i, sc2 = sticky_get(port, servers, value)
        assert i == first and sc2 is None
    s.stop()
    port2, admin2 = free_port(), free_port()
    sluice(cookie_config(port2, servers, admin2))
    for _ in range(3):
        i, sc2 = sticky_get(port2, servers, value)
        assert i == first and sc2 is None


def test_cookie_stays_while_draining_moves_when_disabled(sluice, backends):
    servers = backends(3)
    port, admin_port = free_port(), free_port()
    sluice(cookie_config(port, servers, admin_port))
    admin = Admin(admin_port)
    first, sc = sticky_get(port, servers)
    value = cookie_value(sc)
    code, _, body = admin.patch_server("app", servers[first].address, {"state": "drain"})
    assert code == 200, body
    # sessions bound to the draining server stay on it ...
    for _ in range(4):
        i, sc2 = sticky_get(port, servers, value)
        assert i == first and sc2 is None
    # ... new clients never get it
    for _ in range(6):
        i, sc2 = sticky_get(port, servers)
        assert i != first and cookie_value(sc2) != value
    code, _, body = admin.patch_server("app", servers[first].address, {"state": "disabled"})
    assert code == 200, body
    i, sc2 = sticky_get(port, servers, value)
    assert i != first
    moved = cookie_value(sc2)
    assert moved != value
    for _ in range(4):
        j, sc3 = sticky_get(port, servers, moved)
        assert j == i and sc3 is None


def test_cookie_moves_with_a_new_cookie_when_its_server_is_down(sluice, backends):
    servers = backends(3)
    port, admin_port = free_port(), free_port()
    sluice(cookie_config(port, servers, admin_port,
                         health={"type": "tcp", "interval": "100ms", "timeout": "200ms",
                                 "healthy_threshold": 1, "unhealthy_threshold": 1}))
    admin = Admin(admin_port)

    def healthy(addr):
        st = admin.status()
        return [sv["healthy"] for b in st["backends"] for sv in b["servers"]
                if sv["address"] == addr][0]

    for s in servers:
        wait_for(lambda s=s: healthy(s.address), scaled(5), what="servers up")
    first, sc = sticky_get(port, servers)
    value = cookie_value(sc)
    servers[first].close()
    wait_for(lambda: not healthy(servers[first].address), scaled(5), what="server down")
    i, sc2 = sticky_get(port, servers, value)
    assert i != first and sc2 is not None
    moved = cookie_value(sc2)
    assert moved != value
    for _ in range(4):
        j, sc3 = sticky_get(port, servers, moved)
        assert j == i and sc3 is None


def test_cookie_attributes_ttl_same_site_and_unknown_values(sluice, backends):
    servers = backends(2)
    port, admin_port = free_port(), free_port()
    sluice(cookie_config(port, servers, admin_port,
                         affinity={"cookie": "route", "ttl": "2h", "same_site": "Strict"}))
    first, sc = sticky_get(port, servers, name="route")
    value = cookie_value(sc, "route")
    assert sc == f"route={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=7200", sc
    # a value naming no server (forged, stale) is balanced and replaced
    for bogus in ("0123456789abcdef", "not-a-server", servers[first].address):
        _, sc2 = sticky_get(port, servers, bogus, name="route")
        assert sc2 is not None and cookie_value(sc2, "route") != bogus


def test_cookie_affinity_config_errors(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(http_config(free_port(), ["127.0.0.1:1"],
                                backend_kw={"affinity": {"client_ip": True, "ttl": "1h",
                                                         "same_site": "Loose"}}))
    r = subprocess.run([os.environ.get("SLUICE_BUILD", "build") + "/sluice", "-t", "-c",
                        str(path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "affinity.ttl: ttl is only used with affinity.cookie" in r.stderr, r.stderr
    assert "affinity.same_site" in r.stderr, r.stderr


def test_client_ip_affinity_at_l7(sluice, backends):
    servers = backends(3)
    port = free_port()
    sluice(http_config(port, [s.address for s in servers],
                       backend_kw={"balance": "round_robin", "affinity": {"client_ip": True}}))
    chosen = {}
    for n in range(2, 14):
        ip = f"127.0.0.{n}"
        picks = set()
        for _ in range(3):
            before = counts(servers)
            s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5),
                                         source_address=(ip, 0))
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
            s.close()
            wait_for(lambda: sum(counts(servers)) > sum(before), scaled(2), what="request")
            picks.add(which(servers, before))
        assert len(picks) == 1, (ip, picks)
        chosen[ip] = picks.pop()
    assert len(set(chosen.values())) >= 2, chosen


@pytest.mark.parametrize("hash_key,vary", [
    ("host", lambda k: ("/", [("Host", f"{k}.example")])),
    ("path", lambda k: (f"/{k}?q=1", [])),
    ("header:X-User", lambda k: ("/", [("X-User", k)])),
    ("cookie:sid", lambda k: ("/", [("Cookie", f"a=1; sid={k}")])),
])
def test_consistent_hash_keys(sluice, backends, hash_key, vary):
    servers = backends(3)
    port = free_port()
    sluice(http_config(port, [s.address for s in servers],
                       backend_kw={"balance": "consistent_hash", "hash_key": hash_key}))
    chosen = {}
    for k in [f"user{n}" for n in range(16)]:
        path, hdrs = vary(k)
        picks = set()
        for _ in range(3):
            before = counts(servers)
            raw = f"GET {path} HTTP/1.1\r\n" + ("" if hash_key == "host" else "Host: a\r\n") + \
                "".join(f"{a}: {b}\r\n" for a, b in hdrs) + "\r\n"
            assert exchange(port, raw.encode())[0] == 200
            picks.add(which(servers, before))
        assert len(picks) == 1, (k, picks)
        chosen[k] = picks.pop()
    # 16 keys over 3 servers spread (all on one would mean the key is not hashed)
    assert len(set(chosen.values())) >= 2, chosen
    if hash_key == "host":  # host names compare case-insensitively
        before = counts(servers)
        assert exchange(port, b"GET / HTTP/1.1\r\nHost: USER3.Example\r\n\r\n")[0] == 200
        assert which(servers, before) == chosen["user3"]
