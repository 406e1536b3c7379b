"""The dashboard's HTTP views in headless Chromium (the Browser of test_dashboard.py): for
an http listener, requests per second and the answers by status class; for an http
backend, the upstream response percentiles and the server connection pool (idle, reused).
A tcp listener and backend next to them get no HTTP rows. The numbers the page shows are
checked against GET /api/v1/status once the traffic has stopped."""
import json
import os
import socket
import threading
import time

from helpers import connect, free_port, l4_config, recv_line, scaled, wait_for
from httpbackend import HttpBackend
from test_admin import Admin
from test_dashboard import OUT_DIR, browser, pytestmark  # noqa: F401
from test_http_proxy import read_response
from tls_certs import pki  # noqa: F401


class HttpTraffic(threading.Thread):
    """Keep-alive requests, every fourth answered 404 by the server."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.sent = port, False, 0

    def run(self):
        s = None
        while not self.stop:
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                path = "/status/404" if self.sent % 4 == 3 else "/slow/2"
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
                read_response(s)
                self.sent += 1
            except (OSError, EOFError):
                s = None
            time.sleep(0.02)  # pacing, not a wait: some tens of requests a second
        if s:
            s.close()


def cell(browser, row_sel, field):
    sel = json.dumps(f'{row_sel} td[data-field="{field}"]')
    return browser.eval(f"(document.querySelector({sel}) || {{}}).textContent || null")


def test_dashboard_http_views(sluice, demo, browser):
    be = HttpBackend()
    echo = demo("banner", name="plain")
    port, tport, aport = free_port(), free_port(), free_port()
    s = sluice(l4_config(
        [{"name": "site", "bind": f"127.0.0.1:{port}", "protocol": "http", "backend": "app"},
         {"name": "raw", "bind": f"127.0.0.1:{tport}", "backend": "tcp-pool"}],
        [{"name": "app", "protocol": "http", "servers": [{"address": be.address}]},
         {"name": "tcp-pool", "servers": [{"address": echo.address}]}],
        workers=1, admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([port, tport, aport])
    admin = Admin(aport)
    c = connect(tport)  # one tcp connection, so the tcp listener has numbers too
    assert recv_line(c) == "plain"
    c.close()
    traffic = HttpTraffic(port)
    traffic.start()
    try:
        browser.navigate(f"http://127.0.0.1:{aport}/")
        wait_for(lambda: browser.eval("document.getElementById('http-section').hidden") is False,
                 scaled(10), interval=0.2, what="HTTP section shown")
        # only the http listener and backend have rows
        assert browser.eval("[...document.querySelectorAll('#http-listeners tbody tr')]"
                            ".map((r) => r.dataset.listener)") == ["site"]
        assert browser.eval("[...document.querySelectorAll('#http-backends tbody tr')]"
                            ".map((r) => r.dataset.backend)") == ["app"]

        # requests per second, from the metrics between two polls
        def rate():
            v = cell(browser, 'tr[data-listener="site"]', "rate")
            return v not in (None, "-") and float(v.rstrip("k")) > 0
        wait_for(rate, scaled(10), interval=0.2, what="requests/s above 0")
        reused_rate = cell(browser, 'tr[data-backend="app"]', "reused-rate")

        # upstream response percentiles: a row for the http backend only
        def upstream_rows():
            return browser.eval(
                "[...document.querySelectorAll('#latency tbody tr')]"
                ".filter((r) => r.cells[0].textContent === 'Upstream response')"
                ".map((r) => [r.cells[1].textContent, r.cells[2].textContent])")
        wait_for(lambda: (upstream_rows() or [[None, "-"]])[0][1] != "-", scaled(10),
                 interval=0.2, what="upstream p50")
        rows = upstream_rows()
        assert [r[0] for r in rows] == ["app"], rows
        assert rows[0][1].endswith("ms"), rows  # /slow/2: milliseconds

        os.makedirs(OUT_DIR, exist_ok=True)
        browser.screenshot(os.path.join(OUT_DIR, "dashboard-http.png"))
    finally:
        traffic.stop = True
        traffic.join()
    assert traffic.sent >= 8, traffic.sent
    assert reused_rate not in (None, "-") and float(reused_rate.rstrip("k")) > 0, reused_rate

    # traffic stopped: the page catches up with the API and shows its numbers
    # (counted as each exchange ends, which may be just after the client read it)
    def counted():
        st = admin.status()
        lh = next(x for x in st["listeners"] if x["name"] == "site")["http"]
        bh = next(x for x in st["backends"] if x["name"] == "app")["http"]
        done = lh["requests_total"] == traffic.sent and bh["pool_idle"] == 1
        return (lh, bh) if done else None
    lh, bh = wait_for(counted, scaled(5), interval=0.05, what="requests counted")
    assert lh["requests_by_class"]["4xx"] == traffic.sent // 4
    assert bh["pool_idle"] == 1 and bh["pool_reused_total"] == traffic.sent - 1

    def shown():
        row = 'tr[data-listener="site"]'
        return (cell(browser, row, "total") == str(traffic.sent)
                and cell(browser, row, "2xx") == str(lh["requests_by_class"]["2xx"])
                and cell(browser, row, "4xx") == str(lh["requests_by_class"]["4xx"])
                and cell(browser, row, "5xx") == "0"
                and cell(browser, row, "active") == "0"
                and cell(browser, row, "errors") == str(lh["errors_total"])
                and cell(browser, 'tr[data-backend="app"]', "idle") == "1"
                and cell(browser, 'tr[data-backend="app"]', "reused") == str(traffic.sent - 1)
                and cell(browser, 'tr[data-backend="app"]', "responses") == str(traffic.sent))
    wait_for(shown, scaled(6), interval=0.2, what="page shows the status numbers")
    assert browser.errors == [], "\n".join(browser.errors + ["--- all:"] + browser.messages)
    admin.close()
    be.close()
    s.stop()


def test_dashboard_tcp_only_has_no_http_section(sluice, demo, browser):
    d = demo("banner", name="solo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config([{"name": "raw", "bind": f"127.0.0.1:{port}", "backend": "b"}],
                         [{"name": "b", "servers": [{"address": d.address}]}],
                         workers=1, admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([port, aport])
    browser.navigate(f"http://127.0.0.1:{aport}/")
    wait_for(lambda: browser.eval("document.querySelectorAll('#servers tr[data-server]').length")
             == 1, scaled(10), interval=0.2, what="server row")
    assert browser.eval("document.getElementById('http-section').hidden") is True
    assert browser.eval("document.querySelectorAll('#http-listeners tbody tr').length") == 0
    assert browser.errors == [], "\n".join(browser.errors)
    s.stop()


def test_dashboard_protocol_mix(sluice, backend, pki, browser):
    """The protocol table: per http listener the requests by HTTP/1.0, HTTP/1.1 and HTTP/2
    (count and share), a bar whose segments are the shares, and the HTTP/2 streams open
    (2 while two slow streams are held, then 0); the numbers equal the status API."""
    import test_http2
    from test_http_protocol_mix import config, curl
    b = backend()
    port, cport, aport = free_port(), free_port(), free_port()
    s = sluice(config(pki, port, cport, aport, [b.address], workers=1))
    s.wait_listening([port, cport, aport])
    admin = Admin(aport)
    # web: 1 x HTTP/1.0, 1 x HTTP/1.1, 2 x HTTP/2; clear: 3 x HTTP/1.1
    curl(pki, port, ["/a"], ["--http1.0"])
    curl(pki, port, ["/b"], ["--http1.1"])
    curl(pki, port, ["/c", "/d"], ["--http2"])
    curl(pki, cport, ["/e", "/f", "/g"], ["--http1.1"], https=False)
    browser.navigate(f"http://127.0.0.1:{aport}/")

    def row(listener):
        return browser.eval(
            f"""(() => {{ const r = document.querySelector('#http-protocols tr[data-listener="{listener}"]');
            if (!r) return null;
            const f = (k) => r.querySelector('td[data-field="' + k + '"]');
            return {{counts: ['HTTP/1.0', 'HTTP/1.1', 'HTTP/2'].map((p) => f(p).querySelector('.count').textContent),
                    shares: ['HTTP/1.0', 'HTTP/1.1', 'HTTP/2'].map((p) => f(p).querySelector('.share').textContent),
                    bar: [...r.querySelectorAll('.mix i')].map((i) => [i.dataset.protocol,
                          Math.round(i.getBoundingClientRect().width * 100 / r.querySelector('.mix').getBoundingClientRect().width)]),
                    streams: f('h2-streams').textContent}}; }})()""")
    want_web = {"counts": ["1", "1", "2"], "shares": ["25%", "25%", "50%"],
                "bar": [["HTTP/1.0", 25], ["HTTP/1.1", 25], ["HTTP/2", 50]], "streams": "0"}
    want_clear = {"counts": ["0", "3", "0"], "shares": ["0%", "100%", "0%"],
                  "bar": [["HTTP/1.1", 100]], "streams": "0"}
    wait_for(lambda: row("web") == want_web and row("clear") == want_clear, scaled(8),
             interval=0.2, what=f"protocol rows {row('web')} {row('clear')}")
    assert browser.eval("[...document.querySelectorAll('#http-protocols tbody tr')]"
                        ".map((r) => r.dataset.listener)") == ["web", "clear"]
    st = admin.status()
    for name, want in (("web", want_web), ("clear", want_clear)):
        by = next(x for x in st["listeners"] if x["name"] == name)["http"]["requests_by_protocol"]
        assert [str(by[p]) for p in ("HTTP/1.0", "HTTP/1.1", "HTTP/2")] == want["counts"]

    # two HTTP/2 streams held open by a slow server: the page shows 2, then 0
    cl = test_http2.Client(port, pki)
    sids = [cl.request("/slow/4000"), cl.request("/slow/4100")]  # two polls at least
    wait_for(lambda: (row("web") or {}).get("streams") == "2", scaled(4), interval=0.1,
             what="2 streams shown")
    cl.wait(sids)
    cl.close()
    wait_for(lambda: row("web") == dict(want_web, counts=["1", "1", "4"],
                                        shares=["17%", "17%", "67%"],
                                        bar=[["HTTP/1.0", 17], ["HTTP/1.1", 17], ["HTTP/2", 67]]),
             scaled(6), interval=0.2, what=f"streams closed and counted {row('web')}")
    os.makedirs(OUT_DIR, exist_ok=True)
    browser.screenshot(os.path.join(OUT_DIR, "dashboard-protocols.png"))
    assert browser.errors == [], "\n".join(browser.errors + ["--- all:"] + browser.messages)
    admin.close()
    s.stop()
