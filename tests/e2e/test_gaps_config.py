"""Configuration keys whose run-time effect had no test (docs/coverage.md, Gaps): the
global `max_connections: 0`, the access-log file opened in append mode, a wildcard bind,
the PROXY header's client address for hashing and affinity, an unreadable certificate at
start, `session_tickets: false`, a route without `match`, PROXY v2 TLVs behind a
passthrough listener, `retries` as a cap, affinity falling back from a down server, the
default nameservers from /etc/resolv.conf and `resolver.timeout`."""
import json
import os
import random
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest

import helpers
from dnsserver import DNSServer
from helpers import (connect, echo_roundtrip, free_port, l4_config, listening_ports,
                     recv_exact, recv_line, scaled, wait_closed, wait_for)
from test_admin import Admin, admin_config, find_server, wait_admin
from test_tls_passthrough import BioClient, Recorder, client_ctx, passthrough
from tls_certs import (client_context, pki, pool, tls_connect, tls_listener)  # noqa: F401

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def front(port, backend="pool", host="127.0.0.1", **kw):
    return {"name": "front", "bind": f"{host}:{port}", "protocol": "tcp", "backend": backend,
            **kw}


# ---------------------------------------------------------------------------------------
# top level and log


def test_max_connections_zero_means_no_global_cap(sluice, demo):
    """`max_connections: 0`: no global cap, 60 connections held open at once are all
    accepted and served (a cap of 0 would accept none)."""
    d = demo("echo")
    port = free_port()
    s = sluice(l4_config([front(port)], [pool([d.address])], max_connections=0))
    held = [connect(port) for _ in range(60)]
    for i, c in enumerate(held):
        echo_roundtrip(c, b"held %d" % i)
    for c in held:
        c.close()
    assert len(s.access_log(60)) == 60
    s.stop()


def test_access_log_file_is_opened_in_append_mode(sluice, demo, tmp_path):
    """A relative `log.access` file that exists already is appended to, at the first start
    and at a restart: what it held is kept, the new lines come after it."""
    path = tmp_path / "access.log"
    path.write_text("a line from before\n")
    d = demo("echo")
    port = free_port()
    text = l4_config([front(port)], [pool([d.address])], log={"access": "access.log"})

    for run in (1, 2):  # the first start, then a restart
        s = sluice(text)
        c = connect(port)
        echo_roundtrip(c, b"x")
        c.close()
        wait_for(lambda: path.read_text().endswith("}\n") and
                 path.read_text().count("\n") == 1 + run, scaled(5),
                 what=f"access log line {run} in the file")
        s.stop()
        assert s.access_lines() == []  # nothing on stdout
    lines = path.read_text().splitlines()
    assert lines[0] == "a line from before", lines
    assert len(lines) == 3, lines
    for line in lines[1:]:
        e = json.loads(line)
        assert e["listener"] == "front" and e["termination"] == "client_closed", e


# ---------------------------------------------------------------------------------------
# listeners


def test_wildcard_bind_serves_every_local_address(sluice, demo):
    """`bind: "*:PORT"` listens on every IPv4 address: reached through 127.0.0.1 and two
    other loopback addresses, and listed as 0.0.0.0 by the kernel."""
    d = demo("echo")
    port = free_port()
    s = sluice(l4_config([front(port, host="*")], [pool([d.address])]))
    for host in ("127.0.0.1", "127.0.0.2", "127.31.41.59"):
        c = connect(port, host=host)
        echo_roundtrip(c, host.encode())
        c.close()
    entries = s.access_log(3)
    assert all(e["termination"] == "client_closed" for e in entries), entries
    with open("/proc/net/tcp") as f:
        listen = [line.split()[1] for line in f if line.split()[3] == "0A"]
    assert f"00000000:{port:04X}" in listen, listen
    s.stop()


@pytest.mark.parametrize("backend_kw", [
    {"balance": "consistent_hash"},
    {"balance": "round_robin", "affinity": {"client_ip": True}},
], ids=["consistent_hash", "affinity"])
def test_proxy_header_client_is_the_hash_key(sluice, demo, backend_kw):
    """Behind `proxy_protocol: accept`, `client_ip` hashing and affinity use the address
    in the PROXY header: every connection comes from 127.0.0.1, yet each header address
    always reaches the same server and the 20 addresses spread over all three."""
    servers = [demo("banner", name=f"S{i}") for i in range(3)]
    port = free_port()
    s = sluice(l4_config(
        [front(port, proxy_protocol="accept")],
        [{"name": "pool", "servers": [{"address": d.address} for d in servers], **backend_kw}]))
    chosen = {}
    for i in range(20):
        ip = f"198.51.100.{i + 1}"
        picks = set()
        for k in range(3):
            c = connect(port)
            c.sendall(f"PROXY TCP4 {ip} 203.0.113.1 {40000 + k} 443\r\n".encode())
            picks.add(recv_line(c))
            c.close()
        assert len(picks) == 1, (ip, picks)
        chosen[ip] = picks.pop()
    assert set(chosen.values()) == {"S0", "S1", "S2"}, chosen
    assert {e["client"].rsplit(":", 1)[0] for e in s.access_log(60)} == set(chosen)
    s.stop()


# ---------------------------------------------------------------------------------------
# listener tls


@pytest.mark.parametrize("which", ["cert", "key"])
def test_unreadable_certificate_at_start_exits_2(sluice, demo, pki, tmp_path, which):
    """A certificate or key file that cannot be read at start: exit code 2 and exactly one
    line on stderr naming the file and the reason; nothing left listening."""
    d = demo("echo")
    port = free_port()
    missing = str(tmp_path / f"missing.{which}")
    lst = tls_listener(port, [pki.a_ec])
    lst["tls"]["certificates"][0][which] = missing
    s = sluice(l4_config([lst], [pool([d.address])]), wait=False)
    rc = s.wait_exit(scaled(10))
    lines = [line for line in s.stderr().splitlines() if line.strip()]
    assert rc == 2, (rc, lines)
    assert len(lines) == 1, lines
    assert missing in lines[0] and "No such file or directory" in lines[0], lines
    assert lines[0].startswith("sluice: listener front: tls.certificates[0]"), lines
    assert port not in listening_ports()


def _ticket_len(sess):
    """The length in bytes of the session ticket in the PEM session file `sess` (0 when
    the session has none), from `openssl sess_id -text`; None while the file is missing or
    not (yet) a complete session."""
    if not os.path.exists(sess):
        return None
    r = subprocess.run(["openssl", "sess_id", "-in", sess, "-noout", "-text"],
                       capture_output=True, text=True)
    if r.returncode != 0 or "Session-ID:" not in r.stdout:
        return None
    if "TLS session ticket:" not in r.stdout:
        return 0
    n = 0
    for line in r.stdout.split("TLS session ticket:", 1)[1].splitlines()[1:]:
        if " - " not in line:
            break
        n += len(line.split(" - ", 1)[1][:47].replace("-", " ").split())
    return n


def _s_client_tls13_ticket_len(port, tmp_path):
    """Full TLS 1.3 handshake with `openssl s_client`: the length of the first session
    ticket it saves (with TLS 1.3 a session is saved when a ticket arrives)."""
    sess = str(tmp_path / "sess-tls13.pem")
    if os.path.exists(sess):
        os.unlink(sess)
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                          "-servername", "a.example.com", "-tls1_3", "-sess_out", sess],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # stdin stays open (the connection with it) until a saved session can be read
        length = wait_for(lambda: (lambda n: None if n is None else (n,))(_ticket_len(sess)),
                          scaled(5), interval=0.05, what="a session saved by s_client")[0]
        out = p.communicate(b"", timeout=scaled(5))[0].decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and "New," in out, out
    return length


def test_session_tickets_false_issues_no_ticket(sluice, demo, pki, tmp_path):
    """`session_tickets: true` hands TLS 1.2 clients an RFC 5077 ticket and TLS 1.3 clients
    a self-contained (encrypted session) ticket; `false` gives TLS 1.2 clients none and TLS
    1.3 clients only a session ID to look up in the server's cache (32 bytes) - and the
    session still resumes, from that cache."""
    d = demo("echo")
    got = {}
    for tickets in (True, False):
        port = free_port()
        s = sluice(l4_config([tls_listener(port, [pki.a_ec], session_tickets=tickets)],
                             [pool([d.address])]))
        ctx = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
        with tls_connect(port, ctx, sni="a.example.com") as t:
            echo_roundtrip(t, b"1")
            sess = t.session
        with tls_connect(port, ctx, sni="a.example.com", session=sess) as t:
            echo_roundtrip(t, b"2")
            reused = t.session_reused
        got[tickets] = (sess.has_ticket, reused, _s_client_tls13_ticket_len(port, tmp_path))
        s.stop()
    has12, reused12, len13 = got[True]
    assert has12 and reused12 and len13 > 64, got
    has12, reused12, len13 = got[False]
    assert not has12 and reused12 and len13 == 32, got


# ---------------------------------------------------------------------------------------
# routes


def test_route_without_match_catches_everything(sluice, scripted, pki):
    """A route without `match` matches every connection: on a passthrough listener an
    unknown SNI, a ClientHello without SNI and a non-TLS client all reach it (the exact
    SNI route still wins); on a plain tcp listener with only that route and no default
    backend, every connection reaches it."""
    a, anything = Recorder(scripted, "a"), Recorder(scripted, "any")
    port, port2 = free_port(), free_port()
    routes = [{"match": {"sni": "a.example.com"}, "backend": "a"}, {"backend": "any"}]
    s = sluice(l4_config(
        [passthrough(port, routes),
         {"name": "plain", "bind": f"127.0.0.1:{port2}", "protocol": "tcp",
          "routes": [{"backend": "any"}]}],
        [pool([a.address], name="a"), pool([anything.address], name="any")]))
    no_sni_ctx = client_ctx(pki, check_hostname=False)
    cases = [("a.example.com", BioClient(client_ctx(pki), "a.example.com").hello, "a"),
             ("other.example.org", BioClient(client_ctx(pki), "other.example.org").hello, "any"),
             ("no SNI", BioClient(no_sni_ctx, None).hello, "any"),
             ("not TLS", b"GET / HTTP/1.0\r\n\r\n", "any")]
    for what, first_bytes, want in cases:
        c = connect(port)
        c.sendall(first_bytes)
        assert recv_line(c) == want, what
        local = c.getsockname()[1]
        c.close()
        assert s.log_for(local)["backend"] == want, what
    c = connect(port2)
    assert recv_line(c) == "any"
    c.sendall(b"plain bytes")
    local = c.getsockname()[1]
    c.close()
    e = s.log_for(local)
    assert e["listener"] == "plain" and e["backend"] == "any", e
    s.stop()


def test_passthrough_sends_sni_and_alpn_as_proxy_v2_tlvs(sluice, scripted, pki):
    """A passthrough listener (TLS not terminated) in front of a `proxy_protocol: v2`
    backend: the header carries the ClientHello's SNI (TLV 0x02) and its first offered
    ALPN protocol (TLV 0x01), then the untouched ClientHello follows."""
    def record(sock):
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    rec = scripted(record)
    port = free_port()
    routes = [{"match": {"sni": "*.example.com"}, "backend": "rec"}]
    s = sluice(l4_config([passthrough(port, routes)],
                         [pool([rec.address], name="rec", proxy_protocol="v2")]))
    hello = BioClient(client_ctx(pki, alpn=["x-proto", "h2"]), "a.example.com").hello
    c = connect(port)
    c.sendall(hello)
    c.shutdown(socket.SHUT_WR)
    state, _, _ = wait_closed(c, scaled(5))
    cport = c.getsockname()[1]
    c.close()
    (data,) = rec.wait_results(1)
    assert data[:12] == V2_SIG and data[12] == 0x21 and data[13] == 0x11, data[:16]
    length = struct.unpack("!H", data[14:16])[0]
    body, rest = data[16:16 + length], data[16 + length:]
    assert body[:12] == (socket.inet_aton("127.0.0.1") + socket.inet_aton("127.0.0.1") +
                         struct.pack("!HH", cport, port)), body[:12]
    tlvs, pos = {}, 12
    while pos < len(body):
        t, ln = body[pos], struct.unpack("!H", body[pos + 1:pos + 3])[0]
        tlvs.setdefault(t, body[pos + 3:pos + 3 + ln])
        pos += 3 + ln
    assert pos == len(body), body
    assert tlvs.get(0x02) == b"a.example.com", tlvs
    assert tlvs.get(0x01) == b"x-proto", tlvs
    assert rest == hello  # the ClientHello itself, untouched, after the header
    e = s.access_log(1)[0]
    assert e["sni"] == "a.example.com" and e["alpn"] == "x-proto", e
    s.stop()


# ---------------------------------------------------------------------------------------
# backends


def test_retries_caps_the_servers_tried(sluice, demo):
    """`retries: 1` with four refusing servers and one live one (round robin, one
    worker): a connection tries at most two servers. Some clients get `connect_failed`
    after exactly one retry, none has more, and the failed attempts counted per server
    equal the attempts the access log implies."""
    live = demo("echo")
    dead = [f"127.0.0.1:{free_port()}" for _ in range(4)]
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, dead + [live.address], aport, workers=1, retries=1))
    wait_admin(s, aport)
    for i in range(15):
        c = connect(port)
        try:
            echo_roundtrip(c, b"try %d" % i, timeout=scaled(2))
        except (AssertionError, ConnectionResetError, BrokenPipeError):
            pass  # this one ran out of retries
        c.close()
    entries = s.access_log(15)
    assert all(e["retries"] <= 1 for e in entries), [e["retries"] for e in entries]
    failed = [e for e in entries if e["termination"] == "connect_failed"]
    served = [e for e in entries if e["server"] == live.address]
    assert failed and served, entries
    assert all(e["retries"] == 1 for e in failed), failed
    assert len(failed) + len(served) == 15, entries
    st = Admin(aport).status()
    fails = sum(find_server(st, "pool", a)["connect_failures_total"] for a in dead)
    attempts = sum(e["retries"] + 1 for e in entries)
    assert fails == attempts - len(served), (fails, attempts, len(served))
    assert find_server(st, "pool", live.address)["connect_failures_total"] == 0
    s.stop()


def test_affinity_falls_back_when_its_server_is_down(sluice, demo):
    """affinity.client_ip with health checks: when the server a client address sticks to
    goes down, that client goes to another server (without even trying the dead one:
    `retries: 0` in the log), always the same one while the first stays down."""
    servers = [demo("banner", name=f"S{i}") for i in range(3)]
    by_name = {d.name: d for d in servers}
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address for d in servers], aport,
                            affinity={"client_ip": True},
                            health={"interval": "200ms", "timeout": "200ms",
                                    "healthy_threshold": 1, "unhealthy_threshold": 1}))
    wait_admin(s, aport)
    admin = Admin(aport)
    wait_for(lambda: admin.status()["backends"][0]["servers_usable"] == 3, scaled(10),
             interval=0.1, what="all three servers up")
    ip = "127.0.0.77"

    def picks(n):
        got = []
        for _ in range(n):
            c = connect(port, source_ip=ip)
            got.append(recv_line(c))
            c.close()
        return got
    first = picks(4)
    assert len(set(first)) == 1, first
    home = by_name[first[0]]
    home.stop()
    wait_for(lambda: not find_server(admin.status(), "pool", home.address)["healthy"],
             scaled(5), interval=0.05, what="the home server marked down")
    n_before = len(s.access_log())
    after = picks(6)
    assert len(set(after)) == 1 and after[0] != home.name, after
    entries = s.access_log(n_before + 6)[n_before:]
    assert all(e["retries"] == 0 and e["server"] == by_name[after[0]].address
               for e in entries), entries
    s.stop()


# ---------------------------------------------------------------------------------------
# resolver


def _can_unshare_mounts():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _can_unshare_mounts(),
                    reason="needs root and unshare --mount (a private /etc/resolv.conf)")
def test_default_nameservers_come_from_resolv_conf(sluice, demo, tmp_path, monkeypatch):
    """Without `resolver.nameservers`, names are asked of the nameservers listed in
    /etc/resolv.conf. sluice runs in its own mount namespace where /etc/resolv.conf is a
    file of the test naming a test DNS server (on port 53 of a loopback address)."""
    ip = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
    try:
        dns = DNSServer(host=ip, port=53)
    except OSError as e:
        pytest.skip(f"cannot bind {ip}:53: {e}")
    try:
        d = demo("echo")
        dns.set("svc.gaps.test", ["127.0.0.1"], ttl=60)
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {ip}\n")
        wrapper = tmp_path / "sluice-with-resolv-conf"
        wrapper.write_text(
            "#!/bin/sh\n"
            "exec unshare --mount --propagation private sh -c "
            "'mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"' "
            f"'{resolv}' '{helpers.SLUICE_BIN}' \"$@\"\n")
        wrapper.chmod(0o755)
        monkeypatch.setattr(helpers, "SLUICE_BIN", str(wrapper))
        port = free_port()
        s = sluice(l4_config([front(port)],
                             [pool([f"svc.gaps.test:{d.port}"])], log={"level": "debug"}))
        monkeypatch.undo()

        def served():
            c = connect(port)
            try:
                c.sendall(b"x")
                return recv_exact(c, 1, timeout=scaled(1)) == b"x"
            except (AssertionError, ConnectionResetError, BrokenPipeError):
                return False
            finally:
                c.close()
        wait_for(served, scaled(10), interval=0.1, what="the name resolved and served")
        assert dns.count("svc.gaps.test") >= 1
        assert "svc.gaps.test:%d of backend pool: now 127.0.0.1" % d.port in s.stderr()
        s.stop()
    finally:
        dns.close()


def test_resolver_timeout_with_a_silent_nameserver(sluice, demo):
    """`resolver.timeout: 300ms` and a nameserver that never answers: the lookup gives up
    after the two attempts (300 ms, then c-ares doubles it for the second: 600 ms), about
    0.9 s after the first query, not after the default 2 s (+4 s); each query type was
    asked exactly twice."""
    dns = DNSServer()
    try:
        dns.mode = "silent"
        port = free_port()
        s = sluice(l4_config(
            [front(port)], [pool([f"svc.test:{free_port()}"])],
            resolver={"nameservers": [dns.address], "timeout": "300ms", "retry": "1h"}))
        line = "DNS lookup of svc.test failed"
        wait_for(lambda: line in s.stderr(), scaled(10), interval=0.01,
                 what="the DNS failure warning")
        warned = time.monotonic()
        times = dns.times("svc.test")
        assert len(times) == 4, times  # A and AAAA, two attempts each
        took = warned - times[0]
        limit = 2.0 if helpers.ASAN else 1.4  # timers, not CPU: little slack needed
        assert 0.8 <= took <= limit, f"gave up {took:.2f}s after the first query"
        gap = times[2] - times[0]  # the second attempt of the first query type
        assert 0.25 <= gap <= 0.6, times
        assert "timeout" in s.stderr().split(line, 1)[1].split("\n", 1)[0].lower()
        s.stop()
    finally:
        dns.close()
