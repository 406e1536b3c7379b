"""Out of descriptors: the admin server and the worker listeners pause accepting and
retry on a timer (no busy loop), log each episode once, and serve what waited once
descriptors free up.

sluice runs with RLIMIT_NOFILE lowered to 256 (prlimit on the running process); the test
holds more client connections than that allows, on a listener that waits for a PROXY
header (so each takes one descriptor, and no server connection frees one by failing)."""
import os
import re
import resource
import socket
import time

import pytest

from helpers import connect, echo_roundtrip, free_port, l4_config, scaled, wait_for

NOFILE = 256
HELD = 300  # client connections waiting for their PROXY header: one descriptor each


def thread_cpu_seconds(pid, tid):
    """utime + stime of one thread, in seconds."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def starved(sluice, demo):
    """A sluice (2 workers, admin on) limited to NOFILE descriptors, with HELD client
    connections to its tcp listener, enough to exhaust them. Returns (s, port,
    admin_port, clients); closing the clients ends the starvation."""
    backend = demo("echo")
    port, admin_port = free_port(), free_port()
    text = l4_config([{"name": "echo", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                       "backend": "pool", "proxy_protocol": "accept",
                       "proxy_protocol_timeout": "60s"}],
                     [{"name": "pool", "servers": [{"address": backend.address}]}],
                     admin={"bind": f"127.0.0.1:{admin_port}"})
    s = sluice(text)
    s.wait_listening([admin_port])
    resource.prlimit(s.proc.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    clients = []
    for _ in range(HELD):
        c = socket.create_connection(("127.0.0.1", port))  # lands in the backlog if need be
        clients.append(c)
    wait_for(lambda: "cannot accept" in s.stderr(), scaled(10),
             what="sluice to run out of descriptors")
    yield s, port, admin_port, clients
    for c in clients:
        c.close()


def close_all(clients):
    for c in clients:
        c.close()
    clients.clear()


def test_admin_accept_pauses_without_spinning_when_out_of_descriptors(starved):
    s, port, admin_port, clients = starved
    scrape = socket.create_connection(("127.0.0.1", admin_port))
    scrape.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # (matches the old message too, so that the CPU check below is what a spin fails on)
    wait_for(lambda: re.search(r"admin: (cannot )?accept", s.stderr()), scaled(5),
             what="the admin accept failure in the log")
    # the main thread (tid == pid) must be idle, not retrying accept() in a loop
    before = thread_cpu_seconds(s.proc.pid, s.proc.pid)
    t0 = time.monotonic()
    time.sleep(1.0)  # the CPU measurement window
    used = thread_cpu_seconds(s.proc.pid, s.proc.pid) - before
    elapsed = time.monotonic() - t0
    assert used < 0.2 * elapsed, f"main thread used {used:.2f}s CPU in {elapsed:.2f}s"
    assert s.stderr().count("admin: cannot accept") == 1, s.stderr()[-2000:]
    # descriptors free up: the waiting scrape is accepted and answered
    close_all(clients)
    scrape.settimeout(scaled(5))
    data = b""
    while b"sluice_connections_total" not in data:
        chunk = scrape.recv(65536)
        assert chunk, f"admin closed without the metrics: {data[:200]!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:100]
    wait_for(lambda: "admin: accepting connections again" in s.stderr(), scaled(5),
             what="the end of the episode in the log")
    scrape.close()


def test_listener_logs_one_line_per_starvation_episode(starved):
    s, port, admin_port, clients = starved
    # the backlog stays non-empty for a second: each worker retries every 50 ms
    cpu_before = process_cpu_seconds(s.proc.pid)
    t0 = time.monotonic()
    time.sleep(1.0)  # twenty retry periods
    cpu = process_cpu_seconds(s.proc.pid) - cpu_before
    elapsed = time.monotonic() - t0
    lines = [ln for ln in s.stderr().splitlines() if "listener echo: cannot accept" in ln]
    assert 1 <= len(lines) <= 2, "one line per worker per episode:\n" + "\n".join(lines)
    assert "Too many open files" in lines[0]
    assert cpu < 0.3 * elapsed, f"sluice used {cpu:.2f}s CPU in {elapsed:.2f}s while paused"
    # descriptors free up: connections accepted again, new ones served
    close_all(clients)
    wait_for(lambda: "listener echo: accepting connections again" in s.stderr(), scaled(10),
             what="the end of the episode in the log")
    c = connect(port)
    c.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000\r\n")
    echo_roundtrip(c, b"after the episode")
    c.close()
    starting = len([ln for ln in s.stderr().splitlines() if "listener echo: cannot accept" in ln])
    assert starting == len(lines), "no new episode once descriptors are free"
