"""Reload and life-cycle rules that had no test (docs/coverage.md, Gaps): open
connections keep the settings they started with, a `workers` change waits for a restart,
a server's API state (drain, disabled) and its drain clock survive a reload, and the
systemd notifications (READY=1, STATUS=configuration reloaded, STOPPING=1)."""
import os
import signal
import socket
import tempfile
import time

import pytest

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     silent_for, wait_closed, wait_for)
from test_admin import Admin, admin_config, find_server, wait_admin


def generation_logged(s, n):
    return f"(generation {n})" in s.stderr()


def wait_generation(s, n):
    wait_for(lambda: generation_logged(s, n), scaled(5), what=f"configuration generation {n}")


# ---------------------------------------------------------------------------------------
# open connections keep their settings


@pytest.mark.parametrize("where", ["listener idle_timeout", "backend timeout"])
def test_open_connection_keeps_its_timeout_across_a_reload(sluice, demo, where):
    """A reload lowers the idle timeout (the listener's `idle_timeout` or the backend's
    `timeout`) from 10 s to 500 ms: a new connection is closed after 500 ms idle, the one
    opened before the reload stays open however long it idles, and still works."""
    d = demo("echo")
    port = free_port()

    def config(value):
        lst = {"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}
        backend = {"name": "pool", "servers": [{"address": d.address}]}
        (lst if where.startswith("listener") else backend)[where.split()[1]] = value
        return l4_config([lst], [backend])
    s = sluice(config("10s"))
    old = connect(port)
    echo_roundtrip(old, b"before")
    s.reload(config("500ms"))
    wait_generation(s, 2)
    new = connect(port)
    echo_roundtrip(new, b"after the reload")
    state, waited, _ = wait_closed(new, scaled(3))
    assert state == "eof" and 0.4 <= waited, (state, waited)
    assert s.log_for(new)["termination"] == "idle_timeout"
    # the old connection has now idled more than three times the new timeout
    assert silent_for(old, 1.0)  # bounded negative check: a 500 ms timeout would close it
    echo_roundtrip(old, b"still open")
    local = old.getsockname()[1]
    old.close()
    assert s.log_for(local)["termination"] == "client_closed"
    s.stop()


# ---------------------------------------------------------------------------------------
# workers


def test_workers_change_takes_effect_at_the_next_restart(sluice, demo):
    """`workers: 2` reloaded as 3: the reload succeeds with a warning, the process keeps
    its two workers (status, thread count); the next start runs three."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport, workers=2))
    wait_admin(s, aport)
    admin = Admin(aport)
    threads = len(os.listdir(f"/proc/{s.proc.pid}/task"))
    s.reload(admin_config(port, [d.address], aport, workers=3))
    wait_generation(s, 2)
    assert ("warn: reload: workers changed to 3; takes effect at the next restart "
            "(keeping 2)") in s.stderr()
    st = admin.status()
    assert st["workers"] == 2 and st["generation"] == 2, st
    assert len(os.listdir(f"/proc/{s.proc.pid}/task")) == threads
    c = connect(port)
    echo_roundtrip(c, b"served")
    c.close()
    s.stop()
    s2 = sluice(admin_config(port, [d.address], aport, workers=3))
    wait_admin(s2, aport)
    assert Admin(aport).status()["workers"] == 3
    assert "1 backend(s), 3 worker(s), config" in s2.stderr()
    assert len(os.listdir(f"/proc/{s2.proc.pid}/task")) == threads + 1
    s2.stop()


# ---------------------------------------------------------------------------------------
# API state across a reload


@pytest.mark.parametrize("state", ["drain", "disabled"])
def test_api_state_and_its_drain_clock_survive_a_reload(sluice, demo, state):
    """A server set to drain / disabled through the API keeps that state across a reload
    that changes its backend: still not picked, the drain clock not restarted (the open
    connection is cut `drain_timeout` after the API call, not after the reload)."""
    servers = [demo("banner", name="a"), demo("banner", name="b")]
    a = servers[0].address
    port, aport = free_port(), free_port()

    def config(timeout):
        return admin_config(port, [x.address for x in servers], aport, drain_timeout="3s",
                            timeout=timeout)
    s = sluice(config("60s"))
    wait_admin(s, aport)
    admin = Admin(aport)
    held = None
    while held is None:
        c = connect(port)
        if recv_line(c) == "a":
            held = c
        else:
            c.close()
    code, _, body = admin.patch_server("pool", a, {"state": state})
    patched = time.monotonic()
    assert code == 200 and body["state"] == state, body
    wait_for(lambda: find_server(admin.status(), "pool", a)["drain_ms_left"] <= 1800,
             scaled(5), interval=0.05, what="1.2 s of the drain clock gone")
    s.write_config(config("59s"))
    code, _, body = admin.reload()
    assert code == 200 and body["generation"] == 2, body
    srv = find_server(admin.status(), "pool", a)
    assert srv["state"] == state and srv["usable"] is False, srv
    assert 0 < srv["drain_ms_left"] <= 1800, srv
    metrics = admin.get("/metrics")[2].splitlines()
    assert (f'sluice_server_admin_state{{backend="pool",server="{a}",state="{state}"}} 1'
            in metrics), [m for m in metrics if "admin_state" in m]
    for _ in range(6):
        c = connect(port)
        assert recv_line(c) == "b"
        c.close()
    echo_roundtrip(held, b"still here")
    state_seen, _, _ = wait_closed(held, scaled(5))
    since_patch = time.monotonic() - patched
    assert state_seen in ("eof", "reset"), state_seen
    # 3 s after the API call (a restarted clock would make it 4.2 s or more)
    assert 2.7 <= since_patch <= 3.8, since_patch
    assert s.log_for(held)["termination"] == "drained"
    s.stop()


# ---------------------------------------------------------------------------------------
# systemd


def test_systemd_notifications(sluice, demo, tmp_path, monkeypatch):
    """With NOTIFY_SOCKET set (as systemd does for Type=notify), sluice sends READY=1 once
    serving, READY=1 with STATUS=configuration reloaded after each successful reload
    (nothing for a rejected one), and STOPPING=1 when a stop begins."""
    d = demo("echo")
    port = free_port()
    sock_dir = tempfile.mkdtemp(prefix="sluice-notify-")  # short: sun_path is 108 bytes
    path = os.path.join(sock_dir, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(scaled(5))

    def config(timeout):
        return l4_config([{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
                         [{"name": "pool", "servers": [{"address": d.address}],
                           "timeout": timeout}])
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        s = sluice(config("60s"))
        monkeypatch.delenv("NOTIFY_SOCKET")
        assert ns.recv(4096) == b"READY=1\nSTATUS=serving"
        assert "sluice ready:" in s.stderr()
        c = connect(port)
        echo_roundtrip(c, b"serving")
        c.close()

        s.reload(config("59s"))
        assert ns.recv(4096) == b"READY=1\nSTATUS=configuration reloaded"
        wait_generation(s, 2)  # logged just after the notification
        s.reload("listeners: [\n")  # broken: rejected
        wait_for(lambda: "reload rejected" in s.stderr(), scaled(5), what="the rejection")
        ns.settimeout(0.3)
        with pytest.raises(socket.timeout):  # bounded negative check: nothing sent
            ns.recv(4096)
        ns.settimeout(scaled(5))
        s.reload(config("58s"))
        assert ns.recv(4096) == b"READY=1\nSTATUS=configuration reloaded"

        s.signal(signal.SIGTERM)
        assert ns.recv(4096) == b"STOPPING=1"
        assert s.wait_exit(scaled(10)) == 0
    finally:
        ns.close()
        os.unlink(path)
        os.rmdir(sock_dir)
