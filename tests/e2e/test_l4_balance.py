"""Balancing: which server a new connection goes to. The banner demo writes its name on
connect, so the client sees which server it reached (and the access log must agree)."""
import collections

from helpers import connect, echo_roundtrip, free_port, l4_config, recv_line


def pool_config(port, servers, workers=2, **backend):
    """servers: list of (address, extra server keys)."""
    return l4_config(
        workers=workers,
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": a, **kw} for a, kw in servers],
                   **backend}])


def pick(port, source_ip=None):
    """Opens a connection, returns (socket, name of the server that answered)."""
    c = connect(port, source_ip=source_ip)
    return c, recv_line(c)


def pick_and_close(port, source_ip=None):
    c, name = pick(port, source_ip)
    c.close()
    return name


def test_round_robin_spread(sluice, demo):
    """60 sequential connections over 3 equal servers: 20 each, give or take 2 (each worker
    thread may keep its own rotation)."""
    servers = [demo("banner", name=n) for n in ("a", "b", "c")]
    port = free_port()
    s = sluice(pool_config(port, [(d.address, {}) for d in servers], balance="round_robin"))
    counts = collections.Counter(pick_and_close(port) for _ in range(60))
    assert set(counts) == {"a", "b", "c"}, counts
    for name in "abc":
        assert abs(counts[name] - 20) <= 2, counts
    # The access log names the server the client saw.
    entries = s.access_log(60)
    by_addr = collections.Counter(e["server"] for e in entries)
    assert by_addr == {d.address: counts[d.name] for d in servers}
    s.stop()


def test_round_robin_single_worker_is_exact(sluice, demo):
    """With one worker the rotation is exact: every window of 3 picks covers all 3."""
    servers = [demo("banner", name=n) for n in ("a", "b", "c")]
    port = free_port()
    s = sluice(pool_config(port, [(d.address, {}) for d in servers], workers=1))
    seq = [pick_and_close(port) for _ in range(12)]
    for i in range(0, 12, 3):
        assert sorted(seq[i:i + 3]) == ["a", "b", "c"], seq
    s.stop()


def test_weights(sluice, demo):
    """Weights 1 and 3: 80 connections split 20 / 60, give or take 2 per worker."""
    light, heavy = demo("banner", name="light"), demo("banner", name="heavy")
    port = free_port()
    s = sluice(pool_config(port, [(light.address, {}), (heavy.address, {"weight": 3})],
                           balance="round_robin"))
    counts = collections.Counter(pick_and_close(port) for _ in range(80))
    assert abs(counts["light"] - 20) <= 3 and abs(counts["heavy"] - 60) <= 3, counts
    s.stop()


def test_weights_single_worker_smooth(sluice, demo):
    """Smooth weighted round robin (one worker): weights 1 and 3 give exactly one "light"
    in every 4 consecutive picks, never bursts of the same server longer than 3."""
    light, heavy = demo("banner", name="light"), demo("banner", name="heavy")
    port = free_port()
    s = sluice(pool_config(port, [(light.address, {}), (heavy.address, {"weight": 3})],
                           workers=1))
    seq = [pick_and_close(port) for _ in range(16)]
    for i in range(0, 16, 4):
        assert seq[i:i + 4].count("light") == 1, seq
    s.stop()


def test_least_connections_long_lived(sluice, demo):
    """Long-lived connections: least_connections fills the servers evenly, and once the
    connections of one server end, new ones go there."""
    servers = [demo("banner", name=n) for n in ("a", "b", "c")]
    port = free_port()
    s = sluice(pool_config(port, [(d.address, {}) for d in servers],
                           balance="least_connections"))
    held = [pick(port) for _ in range(6)]
    counts = collections.Counter(name for _, name in held)
    assert counts == {"a": 2, "b": 2, "c": 2}, counts
    # Free server "a" (both its connections), and wait until sluice has seen it.
    for c, name in held:
        if name == "a":
            c.close()
    s.access_log(2)
    fresh = [pick(port) for _ in range(2)]
    assert [name for _, name in fresh] == ["a", "a"], fresh
    # Now 2/2/2 again: one more goes anywhere, then two more avoid the one it picked.
    c7, n7 = pick(port)
    more = [pick(port) for _ in range(2)]  # keep the sockets: they must stay open
    names = [name for _, name in more]
    assert n7 not in names and names[0] != names[1], (n7, names)
    for c, _ in held + fresh + more:
        c.close()
    c7.close()
    s.stop()


def test_least_connections_ignores_closed(sluice, demo):
    """Short connections leave no count behind: sequential short connections with
    least_connections still reach every server."""
    servers = [demo("banner", name=n) for n in ("a", "b")]
    port = free_port()
    s = sluice(pool_config(port, [(d.address, {}) for d in servers],
                           balance="least_connections"))
    names = set()
    for i in range(20):
        c, name = pick(port)
        echo_roundtrip(c)
        names.add(name)
        # Hold this one while opening the next, so both servers must be used.
        c2, name2 = pick(port)
        names.add(name2)
        assert name2 != name, (name, name2)
        c.close()
        c2.close()
        s.access_log(2 * (i + 1))
    assert names == {"a", "b"}
    s.stop()


def test_consistent_hash_sticky_per_client_ip(sluice, demo):
    """consistent_hash on client_ip: each client address always reaches the same server
    (clients come from different 127.0.0.x addresses), and different addresses spread."""
    servers = [demo("banner", name=n) for n in ("a", "b", "c")]
    port = free_port()
    s = sluice(pool_config(port, [(d.address, {}) for d in servers],
                           balance="consistent_hash", hash_key="client_ip"))
    chosen = {}
    for i in range(2, 32):
        ip = f"127.0.0.{i}"
        names = {pick_and_close(port, source_ip=ip) for _ in range(4)}
        assert len(names) == 1, f"{ip} went to {names}"
        chosen[ip] = names.pop()
    assert len(set(chosen.values())) >= 2, chosen
    # the access log agrees: every line of a client address names that client's server
    addr_of = {d.name: d.address for d in servers}
    entries = s.access_log(30 * 4)
    assert all(e["server"] == addr_of[chosen[e["client"].rsplit(":", 1)[0]]]
               for e in entries), entries
    s.stop()


def test_random_two_uses_every_server(sluice, demo):
    servers = [demo("banner", name=n) for n in ("a", "b", "c")]
    port = free_port()
    s = sluice(pool_config(port, [(d.address, {}) for d in servers], balance="random_two"))
    counts = collections.Counter(pick_and_close(port) for _ in range(60))
    assert set(counts) == {"a", "b", "c"}, counts
    s.stop()


def test_backup_server_unused_while_primary_up(sluice, demo):
    primary, backup = demo("banner", name="primary"), demo("banner", name="backup")
    port = free_port()
    s = sluice(pool_config(port, [(primary.address, {}), (backup.address, {"backup": True})]))
    assert {pick_and_close(port) for _ in range(10)} == {"primary"}
    s.stop()
