"""Servers given by DNS name: resolved on the main thread with c-ares, re-resolved when the
TTL runs out, last good addresses kept when the nameserver fails, /etc/hosts honoured.

The names live in dnsserver.DNSServer (a tiny UDP DNS server on loopback) that sluice is
pointed at with `resolver.nameservers`. Banner demos bound on 127.0.0.2 and 127.0.0.3
(same port) tell which address a connection reached."""
import collections
import time

import pytest

from dnsserver import DNSServer
from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     wait_for)


@pytest.fixture
def dns():
    d = DNSServer()
    yield d
    d.close()


def name_config(port, server, nameserver, workers=2, **resolver):
    """A tcp listener on `port` to backend "pool" with one server address `server`."""
    res = {"nameservers": [nameserver], "retry": "1s"}
    res.update(resolver)
    return l4_config(
        workers=workers,
        log={"level": "debug"},
        resolver=res,
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": server}]}])


def banner_on(demo, ip, port, name):
    """A banner demo that also listens on ip:port (any 127/8 address)."""
    return demo("banner", name=name, extra=("--listen", f"{ip}:{port}"))


def pick(port):
    """Which server a new connection reaches (None when it is closed without a banner)."""
    c = connect(port)
    try:
        return recv_line(c, timeout=scaled(2))
    except (AssertionError, ConnectionResetError):
        return None
    finally:
        c.close()


def wait_pick(port, want, timeout):
    return wait_for(lambda: pick(port) == want, timeout, interval=0.1,
                    what=f"new connections to reach {want}")


def test_follows_dns_changes_and_keeps_last_good(sluice, demo, dns):
    """Answer 127.0.0.2 (TTL 1s), then 127.0.0.3: new connections follow within a few
    seconds, an open one stays up. Then SERVFAIL, then no nameserver at all: the last good
    address keeps being used, with one warning for the whole failure streak."""
    sport = free_port()
    banner_on(demo, "127.0.0.2", sport, "two")
    banner_on(demo, "127.0.0.3", sport, "three")
    dns.set("svc.test", ["127.0.0.2"], ttl=1)
    port = free_port()
    s = sluice(name_config(port, f"svc.test:{sport}", dns.address))
    wait_pick(port, "two", scaled(5))

    old = connect(port)
    assert recv_line(old) == "two"
    echo_roundtrip(old, b"before")

    dns.set("svc.test", ["127.0.0.3"], ttl=1)
    t0 = time.monotonic()
    wait_pick(port, "three", scaled(5))
    assert time.monotonic() - t0 < scaled(4)
    assert [pick(port) for _ in range(5)] == ["three"] * 5
    echo_roundtrip(old, b"still-connected")
    wait_for(lambda: f"server svc.test:{sport} of backend pool: now 127.0.0.3" in s.stderr(),
             scaled(2), what="the address change in the process log")

    dns.mode = "servfail"
    wait_for(lambda: "DNS lookup of svc.test failed" in s.stderr(), scaled(5),
             what="the failure warning")
    assert [pick(port) for _ in range(4)] == ["three"] * 4
    seen = dns.count("svc.test")  # the failed lookup is retried after `retry` (1s)
    wait_for(lambda: dns.count("svc.test") > seen, scaled(3), what="a retried lookup")

    dns.close()  # nobody answers any more: lookups fail (retry 1s), address kept
    again = s.stderr().count("DNS lookup of svc.test failed again")
    wait_for(lambda: s.stderr().count("DNS lookup of svc.test failed again") >= again + 2,
             scaled(8), what="two failed lookups with no nameserver")
    assert [pick(port) for _ in range(4)] == ["three"] * 4
    echo_roundtrip(old, b"after")
    assert s.stderr().count("DNS lookup of svc.test failed:") == 1, s.stderr()
    assert "keeping the last good addresses" in s.stderr()
    old.close()
    s.stop()


def test_two_records_spread(sluice, demo, dns):
    """A name with two A records: connections alternate over both addresses."""
    sport = free_port()
    banner_on(demo, "127.0.0.2", sport, "two")
    banner_on(demo, "127.0.0.3", sport, "three")
    dns.set("pair.test", ["127.0.0.3", "127.0.0.2"], ttl=30)
    port = free_port()
    s = sluice(name_config(port, f"pair.test:{sport}", dns.address))
    wait_for(lambda: pick(port) is not None, scaled(5), interval=0.1, what="resolution")
    counts = collections.Counter(pick(port) for _ in range(20))
    assert set(counts) == {"two", "three"}, counts
    assert abs(counts["two"] - counts["three"]) <= 2, counts
    assert "now 127.0.0.2, 127.0.0.3" in s.stderr()
    s.stop()


def test_unresolved_server_unusable_until_it_resolves(sluice, demo, dns):
    """NXDOMAIN at start: the server has no address, connections are closed at once; once
    the name exists (retry 1s) traffic flows."""
    sport = free_port()
    banner_on(demo, "127.0.0.2", sport, "two")
    port = free_port()
    s = sluice(name_config(port, f"later.test:{sport}", dns.address))
    wait_for(lambda: "DNS lookup of later.test failed" in s.stderr(), scaled(5),
             what="the failure warning")
    assert "not usable until it resolves" in s.stderr()
    assert pick(port) is None
    dns.set("later.test", ["127.0.0.2"], ttl=5)
    wait_pick(port, "two", scaled(4))
    s.stop()


def test_localhost_from_etc_hosts(sluice, demo, dns):
    """localhost resolves through /etc/hosts: the nameserver is never asked."""
    d = demo("banner", name="local")
    port = free_port()
    s = sluice(name_config(port, f"localhost:{d.port}", dns.address))
    wait_pick(port, "local", scaled(5))
    assert dns.count("localhost") == 0
    assert f"server localhost:{d.port} of backend pool: now 127.0.0.1" in s.stderr()
    s.stop()


def test_reload_starts_and_stops_names(sluice, demo, dns):
    """A reload that swaps the server's name: the new name is resolved at once, the old
    one is no longer asked for."""
    sport = free_port()
    banner_on(demo, "127.0.0.2", sport, "two")
    banner_on(demo, "127.0.0.3", sport, "three")
    dns.set("a.test", ["127.0.0.2"], ttl=1)
    dns.set("b.test", ["127.0.0.3"], ttl=1)
    port = free_port()
    s = sluice(name_config(port, f"a.test:{sport}", dns.address))
    wait_pick(port, "two", scaled(5))
    s.reload(name_config(port, f"b.test:{sport}", dns.address))
    wait_pick(port, "three", scaled(4))
    asked = dns.count("a.test")
    # two TTLs by sluice's own clock: b.test (TTL 1s too) looked up twice more; a.test,
    # if still resolved, would have been asked again meanwhile
    unchanged = f"server b.test:{sport} of backend pool: 127.0.0.3 unchanged"
    again = s.stderr().count(unchanged)
    wait_for(lambda: s.stderr().count(unchanged) >= again + 2, scaled(5),
             what="two more lookups of b.test")
    assert dns.count("a.test") == asked
    assert dns.count("b.test") >= 2
    s.stop()


def test_reload_switches_nameservers(sluice, demo, dns):
    """The first nameserver never answers (lookups stay in flight); a reload pointing at
    another one re-asks the pending lookup there at once."""
    sport = free_port()
    banner_on(demo, "127.0.0.2", sport, "two")
    dns.mode = "silent"
    good = DNSServer()
    try:
        good.set("svc.test", ["127.0.0.2"], ttl=30)
        port = free_port()
        s = sluice(name_config(port, f"svc.test:{sport}", dns.address, timeout="5s"))
        wait_for(lambda: dns.count("svc.test") > 0, scaled(5), what="the first query")
        assert pick(port) is None
        s.reload(name_config(port, f"svc.test:{sport}", good.address, timeout="5s"))
        t0 = time.monotonic()
        wait_pick(port, "two", scaled(3))
        assert time.monotonic() - t0 < scaled(2.5)
        assert f"resolver: nameservers {good.address}" in s.stderr()
        s.stop()
    finally:
        good.close()


def lookups(times, gap=0.3):
    """Start times of the lookups in a list of query times: the A and AAAA queries of one
    lookup (and c-ares' retransmissions) come within `gap` of each other."""
    starts = []
    for t in times:
        if not starts or t - last > gap:
            starts.append(t)
        last = t
    return starts


@pytest.mark.parametrize("ttl, resolver, interval", [
    (1, {"min_ttl": "2s"}, 2.0),                    # a short TTL is raised to min_ttl
    (0, {"min_ttl": "1500ms"}, 1.5),                # a TTL of 0 counts as min_ttl
    (3600, {"min_ttl": "100ms", "max_ttl": "1s"}, 1.0),  # a long one lowered to max_ttl
], ids=["min_ttl", "ttl_0", "max_ttl"])
def test_ttl_clamped_to_min_and_max(sluice, demo, dns, ttl, resolver, interval):
    """The nameserver sees the name asked again every clamp(TTL, min_ttl, max_ttl), and
    the debug line says when the next lookup is due."""
    d = demo("banner", name="local")
    dns.set("ttl.test", ["127.0.0.1"], ttl=ttl)
    port = free_port()
    s = sluice(name_config(port, f"ttl.test:{d.port}", dns.address, **resolver))
    starts = wait_for(lambda: (lambda x: x if len(x) >= 4 else None)(
        lookups(dns.times("ttl.test"))), scaled(4 * interval + 3), interval=0.05,
        what="four lookups")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(interval - 0.1 <= g <= interval + scaled(0.4) for g in gaps), (interval, gaps)
    assert f"unchanged, next lookup in {int(interval * 1000)} ms" in s.stderr(), s.stderr()
    assert pick(port) == "local"
    s.stop()
