"""Hot reload (SIGHUP): open connections survive, listening sockets stay open, an invalid
file changes nothing, and servers removed by a reload drain for their drain_timeout."""
import re
import threading
import time

from helpers import (connect, echo_roundtrip, free_port, l4_config, recv_line, scaled,
                     wait_closed, wait_for)


def reload_count(s):
    return len(re.findall(r"configuration reloaded", s.stderr()))


def reload_and_wait(s, config_text=None):
    before = reload_count(s)
    s.reload(config_text)
    wait_for(lambda: reload_count(s) > before, scaled(5), what="reload applied")


class Hammer(threading.Thread):
    """Opens short echo connections back to back until stopped; counts failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop_flag = threading.Event()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            payload = f"hammer-{i}".encode()
            try:
                s = connect(self.port, timeout=scaled(5))
                try:
                    s.sendall(payload)
                    got = b""
                    while len(got) < len(payload):
                        chunk = s.recv(len(payload) - len(got))
                        if not chunk:
                            break
                        got += chunk
                    if got != payload:
                        self.failures.append(f"#{i}: got {got!r}")
                    else:
                        self.ok += 1
                finally:
                    s.close()
            except OSError as e:
                self.failures.append(f"#{i}: {e!r}")


def two_server_config(port, a, b, weight_b=1, idle="4m", drain="30s"):
    return l4_config(
        [{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp", "backend": "pool",
          "idle_timeout": idle}],
        [{"name": "pool", "drain_timeout": drain,
          "servers": [{"address": a.address}, {"address": b.address, "weight": weight_b}]}])


def test_twenty_reloads_under_load_cut_nothing(sluice, demo):
    a, b = demo("echo"), demo("echo")
    port = free_port()
    s = sluice(two_server_config(port, a, b))
    long_lived = [connect(port) for _ in range(50)]
    for i, c in enumerate(long_lived):
        echo_roundtrip(c, f"before-{i}".encode())
    hammer = Hammer(port)
    hammer.start()
    try:
        for i in range(20):
            # alternate between two configs that really differ
            reload_and_wait(s, two_server_config(port, a, b, weight_b=1 + i % 2,
                                                 idle="4m" if i % 2 else "5m"))
            # traffic under each configuration: two more echo connections done (the
            # second began after the reload), or a failure to report
            ok = hammer.ok
            wait_for(lambda: hammer.ok >= ok + 2 or hammer.failures, scaled(5),
                     what="hammer connections after the reload")
    finally:
        hammer.stop_flag.set()
        hammer.join(scaled(10))
    assert hammer.failures == [], hammer.failures[:5]
    assert hammer.ok > 20, f"only {hammer.ok} connections made during the reloads"
    for i, c in enumerate(long_lived):
        echo_roundtrip(c, f"after-{i}".encode())
        c.close()
    assert "reload rejected" not in s.stderr()
    s.stop()
    entries = s.access_log(50 + hammer.ok)
    bad = [e for e in entries if e["termination"] not in ("client_closed",)]
    assert bad == [], bad[:3]


def test_invalid_file_changes_nothing(sluice, demo):
    a, b = demo("banner", name="A"), demo("banner", name="B")
    port, other_port = free_port(), free_port()
    good = two_server_config(port, a, b)
    s = sluice(good)
    held = connect(port)
    assert recv_line(held) in ("A", "B")
    broken = good.replace("protocol: tcp", "protocol: tcpp") + (
        f"\n# a new listener that must not open\n")
    broken = broken.replace(f"127.0.0.1:{port}", f"127.0.0.1:{other_port}")
    before = len(re.findall("reload rejected", s.stderr()))
    s.reload(broken)
    wait_for(lambda: len(re.findall("reload rejected", s.stderr())) > before, scaled(5),
             what="reload rejected")
    err = s.stderr()
    assert re.search(r"\.yaml:\d+:\d+: listeners\[0\]\.protocol", err), err
    # the old configuration still serves, the new port was never opened
    c = connect(port)
    assert recv_line(c) in ("A", "B")
    c.close()
    try:
        connect(other_port, timeout=1).close()
        opened = True
    except OSError:
        opened = False
    assert not opened
    echo_roundtrip(held, b"still here")
    held.close()
    s.stop()


def test_reload_adds_and_removes_listeners(sluice, demo):
    a = demo("echo")
    p1, p2 = free_port(), free_port()
    one = l4_config([{"name": "one", "bind": f"127.0.0.1:{p1}", "backend": "pool"}],
                    [{"name": "pool", "servers": [{"address": a.address}]}])
    both = l4_config([{"name": "one", "bind": f"127.0.0.1:{p1}", "backend": "pool"},
                      {"name": "two", "bind": f"127.0.0.1:{p2}", "backend": "pool"}],
                     [{"name": "pool", "servers": [{"address": a.address}]}])
    only_two = l4_config([{"name": "two", "bind": f"127.0.0.1:{p2}", "backend": "pool"}],
                         [{"name": "pool", "servers": [{"address": a.address}]}])
    s = sluice(one)
    held = connect(p1)
    echo_roundtrip(held)
    reload_and_wait(s, both)
    s.wait_listening([p1, p2])
    c = connect(p2)
    echo_roundtrip(c)
    c.close()
    reload_and_wait(s, only_two)

    def p1_closed():
        try:
            connect(p1, timeout=0.5).close()
            return False
        except OSError:
            return True
    wait_for(p1_closed, scaled(5), what="listener one closed")
    # the connection accepted on the removed listener is not cut
    echo_roundtrip(held, b"survivor")
    held.close()
    s.stop()


def test_removed_server_drains_for_its_timeout(sluice, demo):
    a, b = demo("banner", name="A"), demo("banner", name="B")
    port = free_port()
    s = sluice(two_server_config(port, a, b, drain="2s"), )
    conns = {}
    while len(conns) < 2:
        c = connect(port)
        conns.setdefault(recv_line(c), []).append(c)
    on_b = conns["B"][0]
    only_a = l4_config(
        [{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp", "backend": "pool"}],
        [{"name": "pool", "drain_timeout": "2s", "servers": [{"address": a.address}]}])
    t0 = time.monotonic()
    reload_and_wait(s, only_a)
    # new connections all go to A
    for _ in range(4):
        c = connect(port)
        assert recv_line(c) == "A"
        c.close()
    # the connection to B keeps working during the drain ...
    echo_roundtrip(on_b, b"draining")
    # ... and is closed when drain_timeout ends
    state, _, _ = wait_closed(on_b, scaled(6))
    assert state in ("eof", "reset"), state
    elapsed = time.monotonic() - t0
    assert 1.8 <= elapsed <= 2.0 + scaled(1.2), elapsed
    entry = s.log_for(on_b)
    assert entry["termination"] == "drained"
    assert entry["server"] == b.address
    # a connection to A (kept server) is not touched
    for c in conns["A"]:
        echo_roundtrip(c, b"kept")
        c.close()
    s.stop()


def test_reload_reopens_the_access_log_file(sluice, demo, tmp_path):
    """logrotate: after the file is moved away, a reload makes sluice write to a new file
    at the configured path; lines never go missing and nothing else changes."""
    import json
    import os
    a = demo("echo")
    port = free_port()
    path = tmp_path / "access.log"
    cfg = l4_config([{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
                    [{"name": "pool", "servers": [{"address": a.address}]}],
                    log={"access": str(path)})
    s = sluice(cfg)

    def lines(p):
        return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []

    for _ in range(3):
        c = connect(port)
        echo_roundtrip(c)
        c.close()
    wait_for(lambda: len(lines(path)) == 3, scaled(5), what="3 lines in the first file")
    rotated = tmp_path / "access.log.1"
    os.rename(path, rotated)
    reload_and_wait(s)
    for _ in range(2):
        c = connect(port)
        echo_roundtrip(c)
        c.close()
    wait_for(lambda: len(lines(path)) == 2, scaled(5), what="2 lines in the new file")
    assert len(lines(rotated)) == 3
    s.stop()
    assert all(e["termination"] == "client_closed" for e in lines(path) + lines(rotated))
