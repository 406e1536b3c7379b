"""The dashboard at GET / in headless Chromium, driven over the DevTools protocol: the page
loads without console errors, shows the configured servers, reflects a state change made
through the API, its buttons change a server's state, and screenshots (light and dark)
are saved under tests/out/.

Python has no websocket module here, so a minimal RFC 6455 client (handshake, masked
client frames, fragmented server messages) is included below; it is all CDP needs."""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import pytest

from helpers import REPO, connect, free_port, recv_line, scaled, wait_for
from test_admin import Admin, admin_config, find_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUT_DIR = os.path.join(REPO, "tests", "out")

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"no chromium at {CHROMIUM}: the dashboard is NOT "
                                       "tested (make deps installs it)")


class WebSocket:
    """A blocking websocket client for one ws:// URL (text messages only)."""

    def __init__(self, url, timeout):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise AssertionError(f"websocket handshake: EOF after {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"websocket handshake refused: {head!r}")

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise AssertionError("websocket closed")
            buf += chunk
        return bytes(buf)

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv(self):
        """The next complete text message."""
        parts = []
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if b1 & 0x80 else None
            data = self._recv_exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise AssertionError("websocket closed by the browser")
            if opcode == 0x9:  # ping: answer with a (masked) pong
                self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | len(data)) + b"\0" * 4 + data)
                continue
            if opcode in (0x1, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self):
        self.sock.close()


class Browser:
    """Headless Chromium with one page, driven over CDP. Collects console errors."""

    def __init__(self, tmp_path):
        self.profile = str(tmp_path / "chromium-profile")
        os.makedirs(self.profile, exist_ok=True)
        self.log_path = str(tmp_path / "chromium.log")
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-extensions",
                "--disable-default-apps", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                "--window-size=1440,1000", "about:blank"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        active = os.path.join(self.profile, "DevToolsActivePort")
        wait_for(lambda: os.path.exists(active) and open(active).read().count("\n") >= 1 or
                 self.proc.poll() is not None, scaled(30), what="chromium DevTools port")
        if self.proc.poll() is not None:
            raise AssertionError(f"chromium exited: {open(self.log_path).read()[-2000:]}")
        port = int(open(active).read().split("\n")[0])
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(10))
        c.request("GET", "/json/list")
        pages = [p for p in json.loads(c.getresponse().read()) if p["type"] == "page"]
        c.close()
        assert pages, "no page target in chromium"
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"], scaled(30))
        self.next_id = 0
        self.errors = []    # console errors, exceptions, error log entries
        self.messages = []  # every console message, for failure reports
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method)
        self.call("Emulation.setDeviceMetricsOverride", width=1440, height=1000,
                  deviceScaleFactor=1, mobile=False)

    def _event(self, msg):
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", "")))
                            for a in params.get("args", []))
            self.messages.append(f"console.{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            self.messages.append(f"log.{e.get('level')}: {e.get('text')} {e.get('url', '')}")
            if e.get("level") == "error":
                self.errors.append(f"log: {e.get('text')} {e.get('url', '')}")

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise AssertionError(f"CDP {method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"evaluate {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def navigate(self, url):
        self.call("Page.navigate", url=url)
        wait_for(lambda: self.eval("document.readyState") == "complete", scaled(20),
                 interval=0.1, what="page loaded")

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        try:
            self.ws.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


class Traffic(threading.Thread):
    """Some connections per second so that the charts have something to show."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop = port, False

    def run(self):
        while not self.stop:
            try:
                c = connect(self.port)
                recv_line(c)
                c.sendall(b"x" * 2000)
                c.recv(4096)
                c.close()
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)  # pacing, not a wait: about 20 connections a second


def row_state(browser, backend, address):
    sel = json.dumps(f'tr[data-server="{backend}/{address}"] .state')
    return browser.eval(f"(document.querySelector({sel}) || {{}}).dataset?.state || null")


def test_dashboard_live_view(sluice, demo, browser):
    servers = [demo("banner", name="alpha"), demo("banner", name="beta")]
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address for d in servers], aport, backend="web-pool",
                            listener="public"))
    s.wait_listening([aport])
    admin = Admin(aport)
    traffic = Traffic(port)
    traffic.start()
    try:
        browser.navigate(f"http://127.0.0.1:{aport}/")
        assert browser.eval("document.title") == "sluice dashboard"
        wait_for(lambda: browser.eval("document.querySelectorAll('#servers tr[data-server]')"
                                      ".length") == 2,
                 scaled(10), interval=0.2, what="server rows")
        text = browser.eval("document.body.innerText")
        for d in servers:
            assert d.address in text
        assert "web-pool" in text and "public" in text

        # a change made through the API shows up at the next poll
        a, b = servers[0].address, servers[1].address
        assert row_state(browser, "web-pool", a) == "enabled"
        assert admin.patch_server("web-pool", a, {"state": "drain"})[0] == 200
        wait_for(lambda: row_state(browser, "web-pool", a) == "drain", scaled(6),
                 interval=0.2, what="dashboard shows drain")

        # the page's own buttons call the PATCH API
        def click(state):
            sel = json.dumps(f'tr[data-server="web-pool/{b}"] button[data-action="{state}"]')
            browser.eval(f"document.querySelector({sel}).click()")
            wait_for(lambda: find_server(admin.status(), "web-pool", b)["state"] == state,
                     scaled(6), interval=0.2, what=f"button set the server {state}")

        click("disabled")
        wait_for(lambda: row_state(browser, "web-pool", b) == "disabled", scaled(6),
                 interval=0.2, what="dashboard shows disabled")
        click("enabled")

        # let the charts and latency table fill in, then take the screenshots
        wait_for(lambda: browser.eval(
            "document.querySelectorAll('#chart-conn path').length") >= 1,
            scaled(10), interval=0.2, what="connection chart drawn")
        wait_for(lambda: browser.eval("document.querySelectorAll('#latency tbody tr').length")
                 == 2, scaled(6), interval=0.2, what="latency rows")
        # settled for the screenshot: every p50 cell has a value and the toasts of the
        # clicks above (4 s each) are gone
        wait_for(lambda: browser.eval(
            "[...document.querySelectorAll('#latency tbody tr td:nth-child(3)')]"
            ".every((td) => td.textContent !== '-')"
            " && document.getElementById('toast').childElementCount === 0"),
            scaled(10), interval=0.2, what="p50 values and no toast left")
        p50 = browser.eval("document.querySelector('#latency tbody tr td:nth-child(3)')"
                           ".textContent")
        assert p50 and p50 != "-", p50
        os.makedirs(OUT_DIR, exist_ok=True)
        browser.screenshot(os.path.join(OUT_DIR, "dashboard.png"))
        browser.call("Emulation.setEmulatedMedia",
                     features=[{"name": "prefers-color-scheme", "value": "dark"}])
        wait_for(lambda: browser.eval("getComputedStyle(document.body).backgroundColor")
                 == "rgb(13, 17, 23)", scaled(5), interval=0.1, what="dark colours (--bg)")
        browser.screenshot(os.path.join(OUT_DIR, "dashboard-dark.png"))
        assert browser.eval("document.getElementById('conn').className") == "up"
    finally:
        traffic.stop = True
        traffic.join()
    assert browser.errors == [], "\n".join(browser.errors + ["--- all:"] + browser.messages)
    s.stop()


def test_dashboard_with_token(sluice, demo, browser, tmp_path):
    """With admin.token_file set, the page's buttons send the token typed in the field
    (kept in sessionStorage); without it the API's 401 message is shown."""
    d = demo("banner", name="solo")
    token_file = str(tmp_path / "token")
    with open(token_file, "w") as f:
        f.write("page-token\n")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport, token_file=token_file))
    s.wait_listening([aport])
    admin = Admin(aport)
    browser.navigate(f"http://127.0.0.1:{aport}/")
    wait_for(lambda: browser.eval("document.querySelectorAll('#servers tr[data-server]').length")
             == 1, scaled(10), interval=0.2, what="server row")
    sel = json.dumps(f'tr[data-server="pool/{d.address}"] button[data-action="drain"]')
    browser.eval(f"document.querySelector({sel}).click()")
    wait_for(lambda: "401" in (browser.eval("document.getElementById('toast').innerText") or ""),
             scaled(6), interval=0.2, what="401 shown")
    assert find_server(admin.status(), "pool", d.address)["state"] == "enabled"
    browser.eval("const t = document.getElementById('token'); t.value = 'page-token';"
                 "t.dispatchEvent(new Event('input'))")
    assert browser.eval("sessionStorage.getItem('sluice-token')") == "page-token"
    browser.eval(f"document.querySelector({sel}).click()")
    wait_for(lambda: find_server(admin.status(), "pool", d.address)["state"] == "drain",
             scaled(6), interval=0.2, what="drain with the token")
    # the only errors are the browser's notes about the expected 401 response
    unexpected = [e for e in browser.errors if "401" not in e]
    assert unexpected == [], "\n".join(browser.errors)
    s.stop()
