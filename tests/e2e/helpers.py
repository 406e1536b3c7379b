"""Harness for the end-to-end tests: start build/sluice and build/sluice-demo on loopback,
talk to them with plain sockets, read the access log.

Binaries come from $SLUICE_BUILD (default <repo>/build). When that path contains "asan"
every timeout is multiplied by TIME_SCALE, because the sanitizer build is slower.
Every process started here is registered and killed at the end of the test that started
it (see conftest.py), whether the test passed or not.
"""
import errno
import json
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import time

try:  # python3-yaml; without it configs are written as JSON, which is valid YAML too
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("SLUICE_BUILD", os.path.join(REPO, "build")))
SLUICE_BIN = os.path.join(BUILD, "sluice")
DEMO_BIN = os.path.join(BUILD, "sluice-demo")
ASAN = "asan" in BUILD
TIME_SCALE = 4.0 if ASAN else 1.0

# Processes started by the helpers and not yet reaped; conftest kills what is left.
_LIVE = []


def scaled(seconds):
    """A timeout, stretched for sanitizer builds."""
    return seconds * TIME_SCALE


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Polls `predicate` until it returns something truthy; returns that value.
    Raises AssertionError naming `what` after `timeout` seconds (already scaled)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


_HANDED_OUT = set()


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now, and that this test run
    has not handed out before (so a "dead" server port never becomes a listener's)."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def listening_ports():
    """Ports in LISTEN state on this host, from /proc/net/tcp{,6}. Checking here, rather
    than connecting, leaves no stray connection (and access log line) behind."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def accepted(port, client_ports):
    """True once every connection to the listener on 127.0.0.1:`port` from one of
    `client_ports` (the clients' local ports) has been accept()ed. A connection still in
    the kernel's accept queue is listed in /proc/net/tcp with inode 0; accept() gives it
    one (and loses it again when closed: this is for connections still open). For waiting
    until sluice took a connection, or checking that it has not."""
    want, inodes = set(client_ports), {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = (int(x.rsplit(":", 1)[1], 16) for x in fields[1:3])
            if local == port and remote in want and fields[3] != "0A":
                inodes[remote] = int(fields[9])
    return len(inodes) == len(want) and all(inodes.values())


def tcp_queues(local_port, remote_port):
    """(bytes in the send queue, bytes in the receive queue) of the IPv4 TCP socket
    local_port -> remote_port on 127.0.0.1, from /proc/net/tcp; None when there is none."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            ports = tuple(int(x.rsplit(":", 1)[1], 16) for x in fields[1:3])
            if ports == (local_port, remote_port) and fields[3] != "0A":
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def kill_all_live():
    """Kills every process the helpers started that is still running."""
    while _LIVE:
        p = _LIVE.pop()
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _spawn(argv, out_path, err_path, cwd=None):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                             start_new_session=True, env=env)
    _LIVE.append(p)
    return p


def _forget(p):
    if p in _LIVE:
        _LIVE.remove(p)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "AddressSanitizer:DEADLYSIGNAL")


def sanitizer_report(text):
    """The sanitizer report in a process log, or None."""
    for m in SANITIZER_MARKERS:
        i = text.find(m)
        if i >= 0:
            return text[max(0, i - 200):i + 4000]
    return None


# ---------------------------------------------------------------------------------------
# Demo backends


class Demo:
    """One build/sluice-demo process listening on 127.0.0.1:port."""

    def __init__(self, workdir, mode="echo", name=None, port=None, extra=()):
        self.port = port or free_port()
        self.name = name or f"demo{self.port}"
        self.mode = mode
        self.address = f"127.0.0.1:{self.port}"
        base = os.path.join(workdir, f"demo-{self.name}")
        self.out_path, self.err_path = base + ".out", base + ".err"
        argv = [DEMO_BIN, "--listen", self.address, "--mode", mode, "--name", self.name,
                *extra]
        self.proc = _spawn(argv, self.out_path, self.err_path)
        try:
            wait_for(lambda: "ready" in read_text(self.out_path) or self.proc.poll() is not None,
                     scaled(10), what=f"sluice-demo {self.name} ready")
        except AssertionError:
            raise AssertionError(f"sluice-demo did not start:\n{read_text(self.err_path)}")
        if self.proc.poll() is not None:
            raise AssertionError(f"sluice-demo exited with {self.proc.returncode}:\n"
                                 f"{read_text(self.err_path)}")

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=scaled(10))
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            _forget(self.proc)
        return rc


# ---------------------------------------------------------------------------------------
# sluice


def l4_config(listeners, backends, workers=2, **top):
    """A sluice.yaml document (as text) with the access log on stdout. `listeners` and
    `backends` are lists of dicts written as given; `top` adds top-level keys."""
    doc = {"workers": workers}
    doc.update(top)
    log = dict(doc.pop("log", {}))
    log.setdefault("access", "stdout")
    doc["log"] = log
    doc["listeners"] = listeners
    doc["backends"] = backends
    if yaml is None:
        return json.dumps(doc, indent=2) + "\n"
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _bind_ports(config_text):
    """Ports of every listener bind address in a config."""
    if config_text.lstrip().startswith("{"):
        doc = json.loads(config_text)
    elif yaml is None:  # rough fallback: every address on a line with a bind key
        ports = []
        for line in config_text.splitlines():
            if re.search(r"\bbind\b\"?\s*:", line) and "admin" not in line:
                ports += [int(p) for p in re.findall(r"[\w.*\]]:(\d+)", line.split("bind", 1)[1])]
        return ports
    else:
        doc = yaml.safe_load(config_text) or {}
    ports = []
    for lst in doc.get("listeners") or []:
        binds = lst.get("bind")
        for b in binds if isinstance(binds, list) else [binds]:
            if isinstance(b, str) and ":" in b:
                ports.append(int(b.rsplit(":", 1)[1]))
    return ports


class Sluice:
    """A running build/sluice with its configuration in `workdir`.

    stdout (the access log, one JSON object a line) goes to <workdir>/sluice.out and stderr
    (the process log) to <workdir>/sluice.err."""

    def __init__(self, workdir, config_text, name="sluice", wait=True, args=()):
        self.workdir = str(workdir)
        self.config_path = os.path.join(self.workdir, f"{name}.yaml")
        self.out_path = os.path.join(self.workdir, f"{name}.out")
        self.err_path = os.path.join(self.workdir, f"{name}.err")
        self.write_config(config_text)
        self.ports = _bind_ports(config_text)
        self.proc = _spawn([SLUICE_BIN, *args, "-c", self.config_path], self.out_path,
                           self.err_path, cwd=self.workdir)
        if wait:
            self.wait_listening(self.ports)

    def write_config(self, config_text):
        with open(self.config_path, "w") as f:
            f.write(config_text)

    def stderr(self):
        return read_text(self.err_path)

    def wait_listening(self, ports, timeout=None):
        """Waits until every port is in LISTEN state; fails with the process log if sluice
        exits or the time runs out."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"sluice exited with {self.proc.returncode} at start:\n"
                                     f"{self.stderr()}")
            return set(ports) <= listening_ports()
        try:
            wait_for(ready, timeout or scaled(10), what=f"sluice listening on {ports}")
        except AssertionError as e:
            if "timed out" in str(e):
                raise AssertionError(f"{e}\n--- sluice stderr:\n{self.stderr()}") from None
            raise

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config_text=None):
        """Optionally rewrites the config file, then sends SIGHUP."""
        if config_text is not None:
            self.write_config(config_text)
        self.signal(signal.SIGHUP)

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its exit code or fails."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"sluice still running after {timeout:.1f}s\n"
                                 f"--- stderr:\n{self.stderr()}") from None
        _forget(self.proc)
        return rc

    def stop(self, timeout=None, expect_code=0):
        """SIGTERM, then asserts a clean exit (code `expect_code`) within `timeout`."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        rc = self.wait_exit(timeout or scaled(10))
        assert rc == expect_code, f"sluice exited with {rc}\n--- stderr:\n{self.stderr()}"
        return rc

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        _forget(self.proc)

    def access_lines(self):
        """Every complete access log line so far, parsed. A line that is not a JSON object
        fails the test."""
        text = read_text(self.out_path)
        lines = text.split("\n")[:-1]  # the last piece is empty or still being written
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise AssertionError(f"access log line is not JSON: {line!r}") from None
            assert isinstance(obj, dict), f"access log line is not an object: {line!r}"
            out.append(obj)
        return out

    def access_log(self, count=None, timeout=None, where=None):
        """Parsed access log entries (those matching `where`, if given). With `count`, polls
        until at least that many are there (fails after `timeout`, default 10s scaled)."""
        def entries():
            lines = self.access_lines()
            return [e for e in lines if where is None or where(e)]
        if count is None:
            return entries()
        try:
            return wait_for(lambda: (lambda e: e if len(e) >= count else None)(entries()),
                            timeout or scaled(10), what=f"{count} access log lines")
        except AssertionError as e:
            raise AssertionError(f"{e}; have {entries()}\n--- stderr:\n{self.stderr()}") from None

    def log_for(self, client_sock_or_port, timeout=None):
        """The access log entry of the connection from this client socket (or local port)."""
        port = client_sock_or_port
        if isinstance(port, socket.socket):
            port = port.getsockname()[1]
        want = f":{port}"
        return self.access_log(1, timeout, where=lambda e: str(e.get("client", "")).endswith(want))[0]


# ---------------------------------------------------------------------------------------
# Clients


def connect(port, host="127.0.0.1", timeout=None, source_ip=None):
    """A blocking TCP connection to host:port (optionally from `source_ip`, any 127/8
    address works on loopback), with `timeout` on every operation."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout or scaled(5))
    if source_ip:
        s.bind((source_ip, 0))
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock, n, timeout=None):
    """Exactly n bytes, or AssertionError on EOF/timeout."""
    buf = bytearray()
    deadline = time.monotonic() + (timeout or scaled(5))
    while len(buf) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(min(1 << 20, n - len(buf)))
        except socket.timeout:
            raise AssertionError(f"timed out with {len(buf)}/{n} bytes") from None
        if not chunk:
            raise AssertionError(f"EOF after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


def recv_line(sock, timeout=None, limit=1024):
    """One line (without the newline)."""
    buf = bytearray()
    deadline = time.monotonic() + (timeout or scaled(5))
    while not buf.endswith(b"\n"):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1)
        except socket.timeout:
            raise AssertionError(f"timed out reading a line, got {bytes(buf)!r}") from None
        if not chunk:
            raise AssertionError(f"EOF reading a line, got {bytes(buf)!r}")
        buf += chunk
        assert len(buf) <= limit, "line too long"
    return buf[:-1].decode()


def recv_all(sock, timeout=None):
    """Everything until EOF. Fails on timeout; a reset is returned as-is by raising."""
    buf = bytearray()
    deadline = time.monotonic() + (timeout or scaled(5))
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError(f"no EOF within the timeout ({len(buf)} bytes read)") from None
        if not chunk:
            return bytes(buf)
        buf += chunk


def wait_closed(sock, timeout):
    """Waits until the peer closes: returns ("eof"|"reset", seconds waited, data read
    meanwhile), or ("open", timeout, data) if nothing happened in time."""
    start = time.monotonic()
    deadline = start + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "open", time.monotonic() - start, bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "open", time.monotonic() - start, bytes(data)
        except (ConnectionResetError, BrokenPipeError):
            return "reset", time.monotonic() - start, bytes(data)
        if not chunk:
            return "eof", time.monotonic() - start, bytes(data)
        data += chunk


def silent_for(sock, seconds):
    """True when nothing at all (no byte, no EOF, no reset) arrives for `seconds`."""
    state, _, data = wait_closed(sock, seconds)
    return state == "open" and not data


def echo_roundtrip(sock, payload=b"ping", timeout=None):
    """Sends payload and checks the same bytes come back."""
    sock.sendall(payload)
    got = recv_exact(sock, len(payload), timeout)
    assert got == payload
    return got


def rst_close(sock):
    """Closes with an RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def random_sizes(count, lo=1, hi=16 << 20, seed=1234):
    """`count` sizes from lo to hi, log-uniform (so small and huge both appear), with both
    ends always included."""
    rng = random.Random(seed)
    sizes = [lo, hi]
    while len(sizes) < count:
        sizes.append(int(round(2 ** rng.uniform(0, (hi).bit_length() - 1))))
    return [max(lo, min(hi, s)) for s in sizes[:count]]


def echo_many(port, payloads, timeout, chunk=256 * 1024):
    """Opens one connection per payload, all at once, streams each payload, half-closes,
    and reads until EOF, all concurrently in one selector loop. Asserts every connection
    got back exactly its payload. Returns the list of local ports, in payload order."""
    sel = selectors.DefaultSelector()
    conns = []
    for i, data in enumerate(payloads):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        assert err in (0, errno.EINPROGRESS), os.strerror(err)
        c = {"i": i, "sock": s, "data": memoryview(data), "sent": 0, "got": 0,
             "bad": None, "eof": False, "shut": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    ports = [None] * len(payloads)
    open_count = len(conns)
    deadline = time.monotonic() + timeout
    while open_count:
        left = deadline - time.monotonic()
        if left <= 0:
            pending = [(c["i"], len(c["data"]), c["sent"], c["got"]) for c in conns
                       if not c["eof"]]
            raise AssertionError(f"echo timed out; (index, size, sent, received): {pending[:10]}")
        for key, mask in sel.select(min(left, 1.0)):
            c = key.data
            s = c["sock"]
            if ports[c["i"]] is None:
                try:
                    ports[c["i"]] = s.getsockname()[1]
                except OSError:
                    pass
            if mask & selectors.EVENT_WRITE and not c["shut"]:
                try:
                    if c["sent"] < len(c["data"]):
                        c["sent"] += s.send(c["data"][c["sent"]:c["sent"] + chunk])
                    if c["sent"] == len(c["data"]):
                        s.shutdown(socket.SHUT_WR)
                        c["shut"] = True
                        sel.modify(s, selectors.EVENT_READ, c)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    raise AssertionError(f"connection {c['i']}: send failed: {e}") from None
            if mask & selectors.EVENT_READ:
                try:
                    got = s.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    raise AssertionError(f"connection {c['i']} (size {len(c['data'])}): "
                                         f"recv failed after {c['got']} bytes: {e}") from None
                if not got:
                    assert c["got"] == len(c["data"]), (
                        f"connection {c['i']}: EOF after {c['got']} of {len(c['data'])} bytes")
                    c["eof"] = True
                    sel.unregister(s)
                    s.close()
                    open_count -= 1
                    continue
                expect = c["data"][c["got"]:c["got"] + len(got)]
                if bytes(expect) != got:
                    raise AssertionError(f"connection {c['i']}: bytes differ at offset "
                                         f"{c['got']} (size {len(c['data'])})")
                c["got"] += len(got)
    sel.close()
    return ports


# ---------------------------------------------------------------------------------------
# Special servers


class Blackhole:
    """A loopback address whose connect() never completes, for connect timeout tests.

    How: a listening socket with backlog 0 that is never accept()ed. Linux lets one
    connection into such an accept queue; once the queue is full it drops every further
    SYN (tcp_conn_request checks sk_acceptq_is_full before syncookies are considered), so
    a client's connect() just retransmits its SYN until its own timeout. We fill the queue
    with our own connections until /proc/net/tcp shows it full: on a LISTEN line rx_queue
    is the queue's length and tx_queue its maximum, and full is length > maximum, the
    very test sk_acceptq_is_full makes. No root, no sysctl, no non-loopback address."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.fillers = []
        for _ in range(8):
            if self._queue_full():
                return
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(f)
            try:
                wait_for(self._queue_full, scaled(0.1), interval=0.002, what="queue full")
            except AssertionError:
                pass  # not yet: one more filler
        raise AssertionError("could not make a blackhole listener on loopback")

    def _queue_full(self):
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == self.port:
                    length, maximum = (int(x, 16) for x in fields[4].split(":")[::-1])
                    return length > maximum
        return False

    def close(self):
        for f in self.fillers:
            f.close()
        self.listener.close()


class ScriptedServer:
    """A one-connection-at-a-time Python server on 127.0.0.1 for behaviours the demo has
    no mode for. `handler(sock)` runs in a thread per accepted connection; what it returns
    is appended to `.results`, what it raises to `.errors` (which fails the test: see the
    `scripted` fixture)."""

    def __init__(self, handler):
        import threading
        self.handler = handler
        self.results = []
        self.errors = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._threads = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        import threading
        self.listener.settimeout(0.1)
        while not self._stop:
            try:
                s, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._run, args=(s,), daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, s):
        try:
            s.settimeout(scaled(10))
            self.results.append(self.handler(s))
        except Exception as e:  # fails the test at teardown (conftest.py `scripted`)
            self.errors.append(e)
        finally:
            s.close()

    def wait_results(self, n, timeout=None):
        return wait_for(lambda: self.results if len(self.results) >= n else None,
                        timeout or scaled(10), what=f"{n} scripted server results")

    def close(self):
        self._stop = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() now, not at its 0.1 s
        except OSError:
            pass
        self.listener.close()
        self._thread.join(timeout=2)


RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
