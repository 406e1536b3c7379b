"""The access log: one JSON line per connection, written when it ends."""
import datetime
import json

from helpers import (RFC3339_MS, connect, echo_roundtrip, free_port, l4_config, recv_exact,
                     recv_line, rst_close, scaled, wait_closed, wait_for)

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
