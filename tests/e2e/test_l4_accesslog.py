"""The access log: one JSON line per connection, written when it ends."""
import datetime
import json
import os
import socket
import ssl
import subprocess

import pytest

from helpers import (RFC3339_MS, connect, echo_roundtrip, free_port, l4_config, recv_exact,
                     recv_line, rst_close, scaled, wait_closed, wait_for)
from tls_certs import client_context, pki, pool, tls_connect, tls_listener  # noqa: F401

REQUIRED = ("time", "listener", "client", "backend", "server", "bytes_in", "bytes_out",
            "duration_ms", "connect_ms", "termination", "retries")


def config(port, addresses, name="front", backend="pool", **backend_kw):
    return l4_config(
        listeners=[{"name": name, "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": backend}],
        backends=[{"name": backend, "servers": [{"address": a} for a in addresses],
                   **backend_kw}])


def test_fields_of_a_normal_connection(sluice, demo):
    b = demo("echo")
    port = free_port()
    s = sluice(config(port, [b.address], name="edge", backend="echoes"))
    before = datetime.datetime.now(datetime.timezone.utc)
    c = connect(port)
    local = c.getsockname()
    echo_roundtrip(c, b"x" * 1000)
    c.close()
    e = s.access_log(1)[0]
    after = datetime.datetime.now(datetime.timezone.utc)
    for k in REQUIRED:
        assert k in e, f"missing {k}: {e}"
    assert RFC3339_MS.match(e["time"]), e["time"]
    t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=1) <= t <= after + datetime.timedelta(seconds=1)
    assert e["listener"] == "edge"
    assert e["backend"] == "echoes"
    assert e["client"] == f"{local[0]}:{local[1]}"
    assert e["server"] == b.address
    assert e["bytes_in"] == 1000 and e["bytes_out"] == 1000
    assert isinstance(e["duration_ms"], (int, float)) and 0 <= e["duration_ms"] < scaled(5000)
    assert isinstance(e["connect_ms"], (int, float)) and 0 <= e["connect_ms"] <= e["duration_ms"]
    assert e["termination"] == "client_closed"
    assert e["retries"] == 0
    s.stop()


def test_directions_are_not_swapped(sluice, demo):
    """bytes_in counts what the client sent, bytes_out what it received: the banner
    server sends 6 bytes more than the client."""
    b = demo("banner", name="hello")
    port = free_port()
    s = sluice(config(port, [b.address]))
    c = connect(port)
    assert recv_line(c) == "hello"
    c.sendall(b"0123456789")
    assert recv_exact(c, 10) == b"0123456789"
    c.close()
    e = s.access_log(1)[0]
    assert (e["bytes_in"], e["bytes_out"]) == (10, 16), e
    s.stop()


def test_one_line_per_connection_each_valid_json(sluice, demo):
    b = demo("echo")
    port = free_port()
    s = sluice(config(port, [b.address]))
    ports = []
    for i in range(25):
        c = connect(port)
        ports.append(c.getsockname()[1])
        echo_roundtrip(c, b"y" * (i + 1))
        c.close()
    entries = s.access_log(25)
    with open(s.out_path) as f:
        raw = [line for line in f.read().splitlines() if line.strip()]
    assert len(raw) == 25
    for line in raw:
        json.loads(line)  # each line is a whole JSON document
    by_port = {int(e["client"].rsplit(":", 1)[1]): e for e in entries}
    for i, p in enumerate(ports):
        assert by_port[p]["bytes_in"] == i + 1 and by_port[p]["bytes_out"] == i + 1
    s.stop()


def test_termination_reasons(sluice, demo, blackhole):
    """client_closed, server_closed, client_reset, idle_timeout, connect_failed: each
    connection's line says why it ended."""
    echo = demo("echo")
    closer = demo("banner", name="bye", extra=["--close-after-banner"])
    hole = blackhole()
    p_echo, p_close, p_idle, p_fail = (free_port() for _ in range(4))
    cfg = l4_config(
        listeners=[
            {"name": "echo", "bind": f"127.0.0.1:{p_echo}", "protocol": "tcp",
             "backend": "echo"},
            {"name": "close", "bind": f"127.0.0.1:{p_close}", "protocol": "tcp",
             "backend": "close"},
            {"name": "idle", "bind": f"127.0.0.1:{p_idle}", "protocol": "tcp",
             "backend": "echo", "idle_timeout": "500ms"},
            {"name": "fail", "bind": f"127.0.0.1:{p_fail}", "protocol": "tcp",
             "backend": "hole"},
        ],
        backends=[
            {"name": "echo", "servers": [{"address": echo.address}]},
            {"name": "close", "servers": [{"address": closer.address}]},
            {"name": "hole", "servers": [{"address": hole.address}],
             "connect_timeout": "300ms", "retries": 0},
        ])
    s = sluice(cfg)
    c = connect(p_echo)
    echo_roundtrip(c)
    c.close()
    c = connect(p_echo)
    echo_roundtrip(c)
    rst_close(c)
    c = connect(p_close)
    assert wait_closed(c, scaled(3))[0] == "eof"
    c.close()
    c = connect(p_idle)
    echo_roundtrip(c)
    assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    c.close()
    c = connect(p_fail)
    assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    c.close()
    entries = s.access_log(5)
    got = sorted((e["listener"], e["termination"]) for e in entries)
    assert got == sorted([("echo", "client_closed"), ("echo", "client_reset"),
                          ("close", "server_closed"), ("idle", "idle_timeout"),
                          ("fail", "connect_failed")]), got
    fail = next(e for e in entries if e["listener"] == "fail")
    assert fail["connect_ms"] is None, fail  # no connection was made
    assert fail["error"] == "connect timeout", fail
    s.stop()


def test_access_log_to_file(sluice, demo, tmp_path):
    """log.access may be a path (relative to the config file's directory)."""
    b = demo("echo")
    port = free_port()
    cfg = l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": b.address}]}],
        log={"access": "access.log"})
    s = sluice(cfg)
    c = connect(port)
    echo_roundtrip(c, b"abc")
    c.close()
    path = tmp_path / "access.log"
    wait_for(lambda: path.exists() and path.read_text().endswith("\n"), scaled(5),
             what="access.log line")
    e = json.loads(path.read_text().splitlines()[0])
    assert e["bytes_in"] == 3 and e["termination"] == "client_closed"
    s.stop()
    assert s.access_log() == []  # nothing on stdout


# ---------------------------------------------------------------------------------------
# client_error and internal_error


def test_client_error_on_a_corrupt_tls_record(sluice, demo, pki):
    """client_error is a failure on the client's side that is not a reset: here a TLS
    client whose record after the handshake fails to decrypt. The line carries OpenSSL's
    reason; the bytes relayed before it are counted."""
    d = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.a_rsa])],
                         backends=[pool([d.address])]))
    t = tls_connect(port, client_context(pki), sni="a.example.com")
    echo_roundtrip(t, b"fine so far")
    # an application data record of garbage, written under the TLS layer
    raw = socket.socket(fileno=os.dup(t.fileno()))
    raw.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(0x40))
    raw.close()
    with pytest.raises(ssl.SSLError, match="BAD_RECORD_MAC"):  # sluice's alert
        t.recv(100)
    e = s.log_for(t)
    t.close()
    assert e["termination"] == "client_error", e
    assert "bad record mac" in e["error"] or "decryption failed" in e["error"], e
    assert e["bytes_in"] == 11 and e["bytes_out"] == 11, e
    s.stop()


FAIL_SSL_NEW = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
/* SSL_new fails (as on an allocation failure) while the file $FAIL_SSL_NEW exists. */
void *SSL_new(void *ctx)
{
    static void *(*real)(void *);
    const char *flag = getenv("FAIL_SSL_NEW");
    if (flag && access(flag, F_OK) == 0)
        return NULL;
    if (!real)
        real = (void *(*)(void *))dlsym(RTLD_NEXT, "SSL_new");
    return real(ctx);
}
"""


def test_internal_error_when_a_tls_session_cannot_be_made(sluice, demo, pki, tmp_path,
                                                          monkeypatch):
    """internal_error is a local failure: every place that reports it is an allocation
    or epoll registration failure (l4_conn.c, l4_route.c, l4_tls.c). One is provoked
    here with a preloaded SSL_new that fails on demand, as it does out of memory: the
    client is closed, the line says internal_error with the reason, and sluice goes on
    serving once SSL_new works again."""
    shim_c, shim = tmp_path / "fail_ssl_new.c", tmp_path / "fail_ssl_new.so"
    shim_c.write_text(FAIL_SSL_NEW)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(shim), str(shim_c), "-ldl"],
                   check=True, capture_output=True)
    flag = tmp_path / "fail-now"
    d = demo("echo")
    port = free_port()
    monkeypatch.setenv("LD_PRELOAD", str(shim))
    monkeypatch.setenv("FAIL_SSL_NEW", str(flag))
    # the sanitizer runtime must otherwise come first in the library list
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                                       "verify_asan_link_order=0")
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.a_rsa])],
                         backends=[pool([d.address])]))
    monkeypatch.delenv("LD_PRELOAD")
    with tls_connect(port, client_context(pki), sni="a.example.com") as t:
        echo_roundtrip(t, b"before")
    flag.touch()
    c = connect(port)
    state, _, data = wait_closed(c, scaled(5))
    assert state in ("eof", "reset") and data == b"", (state, data)
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "internal_error", e
    assert e["error"] == "cannot create TLS session" and e["backend"] is None, e
    flag.unlink()
    with tls_connect(port, client_context(pki), sni="a.example.com") as t:
        echo_roundtrip(t, b"after")
    s.stop()
