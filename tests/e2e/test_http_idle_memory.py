"""Memory of idle keep-alive client connections on an http listener: once its response
is out and nothing more was sent, a connection holds no buffer and no exchange state,
only its connection struct (docs/http.md, "Memory"). 2,000 clients each make one request
and stay connected; sluice's RSS growth per connection must stay under 1 KiB (the struct
is under 300 bytes; the head buffer alone is 4 KiB, the exchange state 1.2 KiB, the
exchange buffers 36 KiB: keeping any of them would fail this). The sanitizer build keeps
freed memory in quarantine, so the figure is only meaningful on the normal build."""
import resource
import socket

import pytest

from helpers import ASAN, free_port, l4_config, wait_for

N = 2000


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def one_request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got or not got.endswith(b"\n"):
        part = s.recv(65536)
        assert part, got
        got += part
    assert got.startswith(b"HTTP/1.1 200 "), got


@pytest.mark.skipif(ASAN, reason="ASan quarantines freed memory: idle RSS measured on the normal build only")
def test_idle_keepalive_connections_hold_no_buffers(sluice, demo):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 200:
        pytest.skip(f"needs {N + 200} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, N + 200), hard))
    server = demo("http", name="a")
    port = free_port()
    s = sluice(l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http", "backend": "pool",
          "idle_timeout": "300s"}],
        [{"name": "pool", "protocol": "http", "servers": [{"address": server.address}]}],
        workers=1, max_connections=N + 100))
    held = []
    try:
        warm = socket.create_connection(("127.0.0.1", port))
        one_request(warm)  # first-use allocations (pool, buffers) happen here
        held.append(warm)
        before = rss_bytes(s.proc.pid)
        for _ in range(N):
            c = socket.create_connection(("127.0.0.1", port))
            one_request(c)
            held.append(c)
        # every connection is idle once its exchange is logged
        wait_for(lambda: len(s.access_lines()) >= N + 1, 10, what="all exchanges logged")
        per_conn = (rss_bytes(s.proc.pid) - before) / N
        assert per_conn < 1024, f"{per_conn:.0f} bytes of RSS per idle keep-alive connection"
    finally:
        for c in held:
            c.close()
