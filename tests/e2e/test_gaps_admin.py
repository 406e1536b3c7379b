"""Admin API behaviour that had no test (docs/coverage.md, Gaps): `admin.bind` moved or
removed by a reload, a token file unreadable at a reload, 503 for a reload while
stopping, the exact head limits (64 lines, 8 KiB, and 414 for an over-long request line),
idle keep-alive connections closed after 30 s, HEAD on every GET path, non-zero
`connect_failures_total` / `health.passive_failures`, and the drain log line as
documented."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.parse

import pytest

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     silent_for, wait_closed, wait_for)
from test_admin import (Admin, admin_config, find_server, listening_ports_of, raw_request,
                        wait_admin)

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "operations.md")


def operations_md():
    with open(DOCS) as f:
        return f.read()


def generation_logged(s, n):
    """True once the process log says the configuration reached generation n."""
    return f"(generation {n})" in s.stderr()


def split_response(raw):
    """(status, {lower-case header: value}, body) of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


# ---------------------------------------------------------------------------------------
# admin.bind and admin.token_file at a reload


def read_one_response(sock):
    """(status, headers, body) of the next response on a kept-alive connection."""
    f = sock.makefile("rb")
    try:
        status = int(f.readline().split()[1])
        headers = {}
        while (line := f.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, f.read(int(headers.get("content-length", 0)))
    finally:
        f.close()


def kept_alive(aport, token=None):
    """A connection to the admin API that has had one answered GET and stays open."""
    c = socket.create_connection(("127.0.0.1", aport), timeout=scaled(5))
    c.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_one_response(c)[0] == 200
    return c


def test_reload_moves_the_admin_api_turns_it_off_and_on(sluice, demo, tmp_path):
    """A reload that changes `admin.bind` closes the old port and answers on the new one;
    one without an `admin` block leaves nothing listening but the listener; one that
    brings the block back opens the API again. Traffic is served throughout. Connections
    accepted before a move or a turn-off take no further request: the API call that
    moved it gets its answer with `Connection: close`, idle kept-alive ones are closed
    (so no client keeps using the old API, with its old token or, once the block is
    gone, without one)."""
    d = demo("echo")
    port, a1, a2 = free_port(), free_port(), free_port()
    token_file = tmp_path / "admin.token"
    token_file.write_text("tok")
    os.chmod(token_file, 0o600)
    first = admin_config(port, [d.address], a1, token_file=str(token_file))
    s = sluice(first)
    wait_admin(s, a1)
    pid = s.proc.pid
    assert Admin(a1).status()["generation"] == 1
    idle = kept_alive(a1)
    mover = kept_alive(a1)

    s.write_config(admin_config(port, [d.address], a2, token_file=str(token_file)))
    mover.sendall(b"POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
                  b"Content-Length: 0\r\n\r\n")
    code, hdrs, body = read_one_response(mover)
    assert code == 200 and hdrs["connection"] == "close", (code, hdrs, body)
    assert json.loads(body) == {"ok": True, "generation": 2}
    for c in (mover, idle):
        state, _, data = wait_closed(c, scaled(2))
        assert (state, data) == ("eof", b""), (state, data)
        c.close()
    wait_for(lambda: listening_ports_of(pid) == {port, a2}, scaled(5),
             what="the admin API on its new port only")
    assert Admin(a2).status()["generation"] == 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", a1), timeout=scaled(2))
    assert f"admin API listening on http://127.0.0.1:{a2}/" in s.stderr()

    idle = kept_alive(a2)
    s.reload(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}]))
    wait_for(lambda: generation_logged(s, 3), scaled(5), what="the third generation")
    state, _, data = wait_closed(idle, scaled(2))
    assert (state, data) == ("eof", b""), (state, data)
    idle.close()
    wait_for(lambda: listening_ports_of(pid) == {port}, scaled(5),
             what="the admin API closed")
    assert "admin API turned off by the new configuration" in s.stderr()
    c = connect(port)
    echo_roundtrip(c, b"no admin")
    c.close()

    s.reload(first)
    wait_for(lambda: listening_ports_of(pid) == {port, a1}, scaled(5),
             what="the admin API back on its first port")
    admin = Admin(a1)
    assert admin.status()["generation"] == 4
    assert admin.reload()[0] == 401 and admin.reload(token="tok")[0] == 200
    s.stop()


def _token_setup(sluice, demo, tmp_path, token=None):
    """sluice with the admin API and, when `token` is given, a token file holding it.
    Returns (sluice, Admin, token file path, config text with a token file)."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    token_file = str(tmp_path / "admin.token")
    if token is not None:
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
    with_token = admin_config(port, [d.address], aport, token_file=token_file)
    s = sluice(with_token if token is not None else admin_config(port, [d.address], aport))
    wait_admin(s, aport)
    return s, Admin(aport), token_file, with_token


@pytest.mark.parametrize("how", ["removed", "directory"])
def test_unreadable_token_file_at_reload_keeps_the_previous_token(sluice, demo, tmp_path,
                                                                   how):
    """The token file disappears (or becomes a directory) and sluice reloads: the reload
    succeeds, an error says the previous token stays in force, and it does: no token or
    another one is refused, the old one works."""
    s, admin, token_file, _ = _token_setup(sluice, demo, tmp_path, token="first")
    os.unlink(token_file)
    if how == "directory":
        os.mkdir(token_file)
    code, _, body = admin.reload(token="first")
    assert code == 200 and body["generation"] == 2, body
    assert admin.reload()[0] == 401
    assert admin.reload(token="second")[0] == 401
    code, _, body = admin.reload(token="first")
    assert code == 200 and body["generation"] == 3, body
    reason = "No such file or directory" if how == "removed" else "Is a directory"
    assert (f"error: admin.token_file {token_file}: {reason}; the admin API keeps its "
            "previous token") in s.stderr()
    assert admin.get("/api/v1/status")[0] == 200  # reads never need it
    s.stop()


def test_token_file_unreadable_at_the_reload_that_adds_it_fails_closed(sluice, demo, tmp_path):
    """A reload adds `admin.token_file` but the file cannot be read: there is no previous
    token to keep, so every mutating call is refused until a reload can read it."""
    s, admin, token_file, with_token = _token_setup(sluice, demo, tmp_path)
    s.write_config(with_token)
    code, _, body = admin.reload()  # no token needed yet
    assert code == 200 and body["generation"] == 2, body
    assert (f"error: admin.token_file {token_file}: No such file or directory; mutating "
            "admin calls are refused until the file can be read") in s.stderr()
    for token in (None, "", "anything"):
        assert admin.reload(token=token)[0] == 401, token
    a = find_server(admin.status(), "pool", admin.status()["backends"][0]["servers"][0]
                    ["address"])
    assert admin.patch_server("pool", a["address"], {"weight": 5})[0] == 401
    with open(token_file, "w") as f:
        f.write("now-readable")
    os.chmod(token_file, 0o600)
    s.signal(signal.SIGHUP)
    wait_for(lambda: admin.status()["generation"] == 3, scaled(5), what="the SIGHUP reload")
    assert admin.reload()[0] == 401
    assert admin.reload(token="now-readable")[0] == 200
    s.stop()


# ---------------------------------------------------------------------------------------
# reload while stopping


def test_reload_while_stopping_is_503(sluice, demo):
    """After SIGTERM, while an open connection keeps sluice in its graceful stop, the
    admin API still answers, but a reload gets 503 and is not counted."""
    d = demo("banner", name="b")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    wait_admin(s, aport)
    admin = Admin(aport)
    held = connect(port)
    assert recv_line(held) == "b"
    s.signal(signal.SIGTERM)
    wait_for(lambda: admin.status()["state"] == "stopping", scaled(5), what="state stopping")
    code, hdrs, body = admin.reload()
    assert code == 503, (code, body)
    assert hdrs["content-type"].startswith("application/json")
    assert body == {"ok": False, "errors": ["sluice is stopping"]}, body
    st = admin.status()
    assert st["reloads"] == {"success": 0, "failure": 0} and st["generation"] == 1, st
    echo_roundtrip(held, b"still served")
    held.close()
    assert s.wait_exit(scaled(10)) == 0


# ---------------------------------------------------------------------------------------
# request head limits


def _get_with_fields(n):
    """A GET whose head has exactly n header lines (Connection: close is one of them)."""
    return (b"GET /api/v1/status HTTP/1.1\r\nConnection: close\r\n" +
            b"".join(b"X-Field-%02d: v\r\n" % i for i in range(n - 1)) + b"\r\n")


def _get_of_size(total):
    """A GET whose head (request line to the empty line) is exactly `total` bytes."""
    start = b"GET /api/v1/status HTTP/1.1\r\nConnection: close\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (total - len(start) - len(end)) + end


def _request_line_of(length, version=b"1.1"):
    """A GET whose request line, CRLF included, is `length` bytes, then an empty line
    (HTTP/1.0 closes after the response without a Connection header)."""
    start, end = b"GET /api/v1/status?", b" HTTP/" + version + b"\r\n"
    return start + b"q" * (length - len(start) - len(end)) + end + b"\r\n"


def test_admin_head_limits_are_exact(sluice, demo):
    """64 header lines are accepted, 65 get 431; a head of exactly 8192 bytes is
    accepted, 8193 gets 431; a request line that does not end within the 8 KiB gets 414
    (one that does, leaving no room for the empty line, gets 431)."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    wait_admin(s, aport)

    def ask(data):
        code, hdrs, body = split_response(raw_request(aport, data))
        return code, body
    assert ask(_get_with_fields(64))[0] == 200
    code, body = ask(_get_with_fields(65))
    assert code == 431 and b"request headers too large (at most 8 KiB, 64 lines)" in body, body
    assert len(_get_of_size(8192)) == 8192
    assert ask(_get_of_size(8192))[0] == 200
    code, body = ask(_get_of_size(8193))
    assert code == 431 and b"at most 8 KiB" in body, body
    code, body = ask(_request_line_of(8193))
    assert code == 414, (code, body)
    assert body == b'{"error":"request line too long (at most 8 KiB)"}\n', body
    code, body = ask(_request_line_of(8192))
    assert code == 431, (code, body)
    code, body = ask(_request_line_of(8190, b"1.0"))  # with the empty line: 8192 bytes
    assert code == 200, (code, body)
    assert Admin(aport).get("/api/v1/status")[0] == 200
    s.stop()


def test_operations_md_lists_414():
    """The documented status codes include the admin server's 414."""
    text = operations_md()
    para = text.split("**Status codes.**", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\b414 request line (longer than|over) 8 KiB", para), para


# ---------------------------------------------------------------------------------------
# idle keep-alive connections: closed after 30 s of the process's monotonic clock

CLOCK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Adds the int64 number of milliseconds stored in $CLOCK_SKIP_FILE (mapped shared, so
 * the test moves the clock by rewriting the file) to every CLOCK_MONOTONIC reading, and
 * makes every epoll_wait return within 20 ms, so that event loops look at the clock
 * again soon after the test moved it. */
static const volatile int64_t *skip;
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);

int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
    if (!real_epoll_wait)
        real_epoll_wait = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT,
                                                                            "epoll_wait");
    return real_epoll_wait(epfd, events, max, timeout < 0 || timeout > 20 ? 20 : timeout);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (!real_clock_gettime)
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT,
                                                                        "clock_gettime");
    int r = real_clock_gettime(id, ts);
    if (r != 0 || (id != CLOCK_MONOTONIC && id != CLOCK_MONOTONIC_COARSE))
        return r;
    if (!__atomic_load_n(&skip, __ATOMIC_ACQUIRE)) {
        const char *path = getenv("CLOCK_SKIP_FILE");
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0)
            return r;
        void *p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            return r;
        __atomic_store_n(&skip, (const volatile int64_t *)p, __ATOMIC_RELEASE);
    }
    int64_t ms = *skip;
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
    return r;
}
"""


def test_idle_keep_alive_connection_closed_after_30s(sluice, demo, tmp_path, monkeypatch):
    """An admin keep-alive connection idle after a response is closed (no response, just
    EOF) once 30 s pass, not before. The 30 s are not waited for: an LD_PRELOAD shim moves
    sluice's monotonic clock forward by 28.5 s (still open half a real second later, under
    30 s idle) and then by 30.2 s (closed within half a second, at most 31.5 s idle)."""
    shim_c, shim = tmp_path / "clockskip.c", tmp_path / "clockskip.so"
    shim_c.write_text(CLOCK_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(shim), str(shim_c), "-ldl"],
                   check=True, capture_output=True)
    skip = tmp_path / "clock-skip"
    skip.write_bytes(struct.pack("<q", 0))

    def set_skip(ms):
        with open(skip, "r+b") as f:
            f.write(struct.pack("<q", ms))

    d = demo("echo")
    port, aport = free_port(), free_port()
    monkeypatch.setenv("LD_PRELOAD", str(shim))
    monkeypatch.setenv("CLOCK_SKIP_FILE", str(skip))
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                                       "verify_asan_link_order=0")
    s = sluice(admin_config(port, [d.address], aport))
    monkeypatch.delenv("LD_PRELOAD")
    wait_admin(s, aport)
    c = socket.create_connection(("127.0.0.1", aport), timeout=scaled(5))
    c.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
    f = c.makefile("rb")
    assert f.readline().startswith(b"HTTP/1.1 200 ")
    length = None
    while (line := f.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length and len(f.read(length)) == length
    idle_since = time.monotonic()
    set_skip(28500)
    assert silent_for(c, 0.5)  # bounded negative check: still open
    # idle for 28.5 s plus the real time since the response: under 30 s
    assert time.monotonic() - idle_since < 1.4, "too slow to bound the idle time"
    set_skip(30200)
    state, waited, data = wait_closed(c, 0.5)  # by now idle for at most 31.5 s
    assert (state, data) == ("eof", b""), (state, waited, data)
    f.close()
    c.close()
    assert Admin(aport).get("/api/v1/status")[0] == 200  # a new connection is fine
    s.stop()


# ---------------------------------------------------------------------------------------
# HEAD


def test_head_works_on_every_get_path(sluice, demo):
    """HEAD on the dashboard and its files, /metrics, the status and a server object: 200
    with GET's content type and a Content-Length (GET's own for the fixed files), and no
    body at all (read to EOF with Connection: close)."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    wait_admin(s, aport)
    server = "/api/v1/backends/pool/servers/" + urllib.parse.quote(d.address, safe="")
    fixed = ("/", "/dashboard.js", "/dashboard.css")
    for path in fixed + ("/metrics", "/api/v1/status", server, "/api/v1/status?x=1"):
        get_code, get_hdrs, get_body = split_response(raw_request(
            aport, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()))
        raw = raw_request(aport, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n".encode())
        code, hdrs, body = split_response(raw)
        assert get_code == 200 and code == 200, (path, get_code, code)
        assert body == b"", (path, body[:100])
        assert hdrs["content-type"] == get_hdrs["content-type"], (path, hdrs)
        assert int(hdrs["content-length"]) > 0, (path, hdrs)
        if path in fixed:
            assert int(hdrs["content-length"]) == len(get_body), (path, hdrs)
    # on a kept-alive connection the next response starts right after HEAD's head
    both = raw_request(aport, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
    first, _, rest = both.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ") and rest.startswith(b"HTTP/1.1 200 "), both[:300]
    s.stop()


# ---------------------------------------------------------------------------------------
# counters in the status


def test_connect_failures_and_passive_failures_are_counted(sluice, demo):
    """A refusing server without health checks: every attempt at it counts in its
    `connect_failures_total` (and in the metric), and `health.passive_failures` counts the
    consecutive failures; the live server's stay 0."""
    live = demo("banner", name="live")
    dead = f"127.0.0.1:{free_port()}"
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [dead, live.address], aport, retries=2, workers=1))
    wait_admin(s, aport)
    for _ in range(8):
        c = connect(port)
        assert recv_line(c) == "live"
        c.close()
    entries = s.access_log(8)
    tried_dead = sum(e["retries"] for e in entries)
    assert tried_dead >= 3, entries
    admin = Admin(aport)
    st = admin.status()
    srv = find_server(st, "pool", dead)
    assert srv["connect_failures_total"] == tried_dead, srv
    assert srv["health"]["passive_failures"] == tried_dead, srv
    assert srv["healthy"] is True  # without a probe, live traffic never marks it down
    ok = find_server(st, "pool", live.address)
    assert ok["connect_failures_total"] == 0 and ok["health"]["passive_failures"] == 0, ok
    assert ok["connections_total"] == 8, ok
    metrics = admin.get("/metrics")[2]
    want = (f'sluice_backend_connect_failures_total{{backend="pool",server="{dead}"}} '
            f"{tried_dead}")
    assert want in metrics.splitlines(), [m for m in metrics.splitlines()
                                          if "connect_failures" in m]
    s.stop()


# ---------------------------------------------------------------------------------------
# the drain log line


def test_drain_log_line_is_as_documented(sluice, demo):
    """Draining a server with two open connections logs
    `server ADDR of backend NAME set to drain: 2 open connection(s) get MS ms`, the line
    operations.md shows (with its example values)."""
    servers = [demo("banner", name="a"), demo("banner", name="b")]
    a = servers[0].address
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address for d in servers], aport, drain_timeout="2s"))
    wait_admin(s, aport)
    held, others = [], []
    while len(held) < 2:
        c = connect(port)
        (held if recv_line(c) == "a" else others).append(c)
    for c in others:
        c.close()
    code, _, body = Admin(aport).patch_server("pool", a, {"state": "drain"})
    assert code == 200 and body["state"] == "drain", body
    got = f"server {a} of backend pool set to drain: 2 open connection(s) get 2000 ms"
    assert f"info: {got}\n" in s.stderr()
    doc = re.search(r"info: (server \S+ of backend \S+ set to drain: .*)", operations_md())
    assert doc, "no drain line in operations.md"
    m = re.fullmatch(r"server (\S+) of backend (\S+) set to drain: (\d+) (.*) get (\d+) ms",
                     doc.group(1))
    assert m, doc.group(1)
    assert doc.group(1).replace(m.group(1), a).replace(m.group(2), "pool").replace(
        f": {m.group(3)} ", ": 2 ").replace(f"get {m.group(5)} ms", "get 2000 ms") == got
    for c in held:
        c.close()
    s.stop()
