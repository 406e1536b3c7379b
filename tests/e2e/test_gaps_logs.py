"""Log lines of docs/operations.md that had no test (docs/coverage.md, Gaps):

- access log `termination: server_error`: a plain socket error on the server's side that
  is not a reset (provoked with a preloaded recv() that fails with EIO);
- process log lines operators rely on, each asserted in full with its level, as the code
  writes it: `sluice ready: ... N worker(s) ...`, `admin API listening on http://ADDR/`,
  `reload rejected: N error(s) in FILE; the running configuration is kept`, the `drain`
  line of a server, `listener NAME: TLS handshake failed: ...` at debug only,
  `DNS lookup of NAME works again`, `admin API: weight of server ... set to N`,
  `admin: refused a connection: ...`, `stopping: ...` and `stopped`.

Every process log line is `TIME LEVEL: message` (test_logging.py checks the format of
them all); `logged()` below matches one whole line."""
import re
import signal
import socket
import subprocess

import pytest

from dnsserver import DNSServer
from helpers import (accepted, connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     wait_closed, wait_for)
from test_admin import Admin, admin_config, find_server, raw_request, status_line
from tls_certs import pki, pool, tls_listener  # noqa: F401

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def lines(s, level, message):
    """The process log lines that are exactly `message` at `level`."""
    pattern = re.compile(f"^{TIME} {level}: {re.escape(message)}$")
    return [x for x in s.stderr().splitlines() if pattern.match(x)]


def logged(s, level, message, timeout=None):
    """Waits until the process log has the line `message` at `level`."""
    try:
        return wait_for(lambda: lines(s, level, message), timeout or scaled(5),
                        what=f"{level}: {message}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- stderr:\n{s.stderr()}") from None


def echo_config(port, addresses, **top):
    return l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": a} for a in addresses]}], **top)


# ---------------------------------------------------------------------------------------
# access log: server_error

FAIL_RECV = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
/* recv() on a socket connected to 127.0.0.1:$FAIL_RECV_PORT fails with EIO while the
 * file $FAIL_RECV_FLAG exists; every other call is the real recv(). */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    static ssize_t (*real)(int, void *, size_t, int);
    const char *flag = getenv("FAIL_RECV_FLAG"), *port = getenv("FAIL_RECV_PORT");
    if (flag && port && access(flag, F_OK) == 0) {
        struct sockaddr_in peer;
        socklen_t n = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &n) == 0 && peer.sin_family == AF_INET &&
            ntohs(peer.sin_port) == atoi(port)) {
            errno = EIO;
            return -1;
        }
    }
    if (!real)
        real = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    return real(fd, buf, len, flags);
}
"""


def test_server_error_on_a_socket_error_from_the_server(sluice, demo, tmp_path, monkeypatch):
    """A read from the server's socket that fails with EIO (not a reset) ends the
    connection with `termination: server_error` and the error's text; the bytes relayed
    before it are counted, the client gets a clean close, and sluice goes on serving."""
    shim_c, shim = tmp_path / "fail_recv.c", tmp_path / "fail_recv.so"
    shim_c.write_text(FAIL_RECV)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(shim), str(shim_c), "-ldl"],
                   check=True, capture_output=True)
    flag = tmp_path / "fail-now"
    d = demo("echo")
    port = free_port()
    monkeypatch.setenv("LD_PRELOAD", str(shim))
    monkeypatch.setenv("FAIL_RECV_FLAG", str(flag))
    monkeypatch.setenv("FAIL_RECV_PORT", str(d.port))
    # the sanitizer runtime must otherwise come first in the library list
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                                       "verify_asan_link_order=0")
    s = sluice(echo_config(port, [d.address]))
    monkeypatch.delenv("LD_PRELOAD")
    c = connect(port)
    echo_roundtrip(c, b"before")
    flag.touch()
    c.sendall(b"lost!")  # the echo server answers; sluice's read of the answer fails
    state, _, data = wait_closed(c, scaled(5))
    assert (state, data) == ("eof", b""), (state, data)
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "server_error", e
    assert e["error"] == "Input/output error", e
    assert e["server"] == d.address and e["bytes_in"] == 11 and e["bytes_out"] == 6, e
    flag.unlink()
    c = connect(port)
    echo_roundtrip(c, b"after")
    c.close()
    s.stop()


# ---------------------------------------------------------------------------------------
# process log


def test_ready_line_names_the_worker_count(sluice, demo):
    """`sluice ready: 2 listener(s), 3 backend(s), 3 worker(s), config PATH` at info, with
    `workers: 3` (neither the default, the CPU count, nor 1): the started worker count."""
    d = demo("echo")
    p1, p2 = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "one", "bind": f"127.0.0.1:{p1}", "backend": "a"},
                   {"name": "two", "bind": f"127.0.0.1:{p2}", "backend": "b"}],
        backends=[pool([d.address], name=n) for n in ("a", "b", "c")], workers=3))
    logged(s, "info", f"sluice ready: 2 listener(s), 3 backend(s), 3 worker(s), "
                      f"config {s.config_path}")
    s.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
def test_admin_listening_line(sluice, demo, host):
    """`admin API listening on http://ADDR/` at info, with the address as bound (IPv6 in
    brackets): the URL in the line answers."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(echo_config(port, [d.address], admin={"bind": f"{host}:{aport}"}))
    logged(s, "info", f"admin API listening on http://{host}:{aport}/")
    family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.settimeout(scaled(5))
        c.connect((host.strip("[]"), aport))
        c.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert c.recv(64).startswith(b"HTTP/1.1 200 ")
    s.stop()


def test_reload_rejected_line_in_full(sluice, demo):
    """A reload of a file with two errors: `reload rejected: 2 error(s) in PATH; the
    running configuration is kept` at error (PATH as given to -c), then each error on its
    own line; the old configuration keeps serving."""
    d = demo("echo")
    port = free_port()
    text = echo_config(port, [d.address])
    s = sluice(text)
    s.reload(text.replace("backend: pool", "backend: nowhere").replace(
        "workers: 2", "workers: 0"))
    logged(s, "error", f"reload rejected: 2 error(s) in {s.config_path}; "
                       "the running configuration is kept")
    err = s.stderr()
    assert "workers: 0 out of range" in err and "nowhere" in err, err
    c = connect(port)
    echo_roundtrip(c, b"old config")
    c.close()
    s.stop()


def test_drain_line_counts_open_connections(sluice, demo):
    """PATCH state drain with two connections open to the server: `server ADDR of backend
    pool set to drain: 2 open connection(s) get 7000 ms` at info (the backend's
    drain_timeout); back to enabled: `server ADDR of backend pool set to enabled`."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport, drain_timeout="7s"))
    s.wait_listening([aport])
    admin = Admin(aport)
    held = [connect(port) for _ in range(2)]
    for c in held:
        echo_roundtrip(c, b"open")
    wait_for(lambda: find_server(admin.status(), "pool", d.address)["active_connections"] == 2,
             scaled(5), what="two open connections")
    assert admin.patch_server("pool", d.address, {"state": "drain"})[0] == 200
    logged(s, "info", f"server {d.address} of backend pool set to drain: "
                      "2 open connection(s) get 7000 ms")
    assert admin.patch_server("pool", d.address, {"state": "enabled"})[0] == 200
    logged(s, "info", f"server {d.address} of backend pool set to enabled")
    for c in held:
        c.close()
    s.stop()


@pytest.mark.parametrize("level", ["debug", "info"])
def test_tls_handshake_failure_logged_at_debug(sluice, demo, pki, level):
    """A client that speaks plain text to a `tls` listener: at `log.level: debug` the line
    `listener secure: TLS handshake failed: REASON` is there, REASON being the access
    log's `error`; at `info` it is not (it is per-connection noise, counted in
    sluice_tls_handshake_errors_total)."""
    d = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.a_ec], name="secure")],
                         backends=[pool([d.address])], log={"level": level}))
    c = connect(port)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    state, _, _ = wait_closed(c, scaled(5))
    assert state in ("eof", "reset"), state
    e = s.log_for(c)  # written after the debug line, if any
    c.close()
    assert e["termination"] == "tls_error" and e["error"], e
    message = f"listener secure: TLS handshake failed: {e['error']}"
    assert len(lines(s, "debug", message)) == (1 if level == "debug" else 0), s.stderr()
    assert "TLS handshake failed" not in "\n".join(
        x for x in s.stderr().splitlines() if " debug: " not in x), s.stderr()
    s.stop()


def test_dns_lookup_works_again_line(sluice, demo):
    """A name that resolves, then fails (SERVFAIL), then resolves again to the same
    address: one info line `server NAME:PORT of backend pool: DNS lookup of NAME works
    again (ADDR)`, and only one: the lookups after it are quiet at info level."""
    d = demo("echo")
    dns = DNSServer()
    try:
        dns.set("svc.test", ["127.0.0.1"], ttl=1)
        port = free_port()
        server = f"svc.test:{d.port}"
        s = sluice(echo_config(port, [server], resolver={"nameservers": [dns.address],
                                                          "retry": "1s"}))
        prefix = f"server {server} of backend pool: "
        logged(s, "info", prefix + "now 127.0.0.1")
        dns.mode = "servfail"
        wait_for(lambda: "DNS lookup of svc.test failed" in s.stderr(), scaled(5),
                 what="the failure warning")
        dns.mode = "normal"
        again = prefix + "DNS lookup of svc.test works again (127.0.0.1)"
        logged(s, "info", again)
        seen = dns.count("svc.test")  # two more lookups (TTL 1 s) that succeed
        wait_for(lambda: dns.count("svc.test") >= seen + 4, scaled(6), interval=0.1,
                 what="two more lookups (A and AAAA each)")
        assert len(lines(s, "info", again)) == 1, s.stderr()
        c = connect(port)
        echo_roundtrip(c, b"resolved")
        c.close()
        s.stop()
    finally:
        dns.close()


def test_weight_change_through_the_api_logged(sluice, demo):
    """PATCH weight 7: `admin API: weight of server ADDR of backend pool set to 7` at
    info; a PATCH of the state alone logs no weight line."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    s.wait_listening([aport])
    admin = Admin(aport)
    assert admin.patch_server("pool", d.address, {"state": "drain"})[0] == 200
    logged(s, "info", f"server {d.address} of backend pool set to drain: "
                      "0 open connection(s) get 30000 ms")
    assert "weight of server" not in s.stderr()
    assert admin.patch_server("pool", d.address, {"weight": 7})[0] == 200
    logged(s, "info", f"admin API: weight of server {d.address} of backend pool set to 7")
    assert s.stderr().count("weight of server") == 1, s.stderr()
    s.stop()


def test_refused_admin_connection_logged(sluice, demo):
    """With 64 admin connections open, the 65th gets 503 and the line
    `admin: refused a connection: 64 admin connections open` (warn)."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    s.wait_listening([aport])
    held = [socket.create_connection(("127.0.0.1", aport)) for _ in range(64)]
    try:
        wait_for(lambda: accepted(aport, [h.getsockname()[1] for h in held]), scaled(5),
                 what="sluice to accept the 64 admin connections")
        assert "refused a connection" not in s.stderr()
        raw = raw_request(aport, b"GET /api/v1/status HTTP/1.1\r\n\r\n")
        assert status_line(raw) == 503
        logged(s, "warn", "admin: refused a connection: 64 admin connections open")
    finally:
        for h in held:
            h.close()
    s.stop()


def test_stopping_and_stopped_lines(sluice, demo):
    """SIGTERM with a connection open and `shutdown_timeout: 5s`: `stopping: no new
    connections; open ones get up to 5000 ms` at info at once; `stopped` only when the
    process is done (the connection still works meanwhile), as the last line."""
    d = demo("echo")
    port = free_port()
    s = sluice(echo_config(port, [d.address], shutdown_timeout="5s"))
    c = connect(port)
    echo_roundtrip(c, b"held")
    s.signal(signal.SIGTERM)
    logged(s, "info", "stopping: no new connections; open ones get up to 5000 ms")
    echo_roundtrip(c, b"still served")
    assert lines(s, "info", "stopped") == []
    c.close()
    assert s.wait_exit(scaled(5)) == 0
    last = s.stderr().splitlines()[-1]
    assert re.fullmatch(f"{TIME} info: stopped", last), s.stderr()
