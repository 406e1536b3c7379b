"""More of the dashboard (docs/operations.md "Dashboard"), in headless Chromium like
test_dashboard.py (whose Browser and Traffic are reused): the totals, the values drawn in
both charts, the p50/p90/p99 values, the server columns, the editable weight, the
"disconnected" state and the 2 s poll period.

The page keeps its samples in `history` (one parsed /metrics per poll) and the last status
in `status`; the tests read them, and what the page drew, in one Runtime.evaluate (the
page cannot poll in between), then recompute the expected values in Python: rates from
the samples, quantiles with an independent port of Prometheus' histogram_quantile. Where
the samples themselves matter they are compared with /metrics fetched by the test, at a
moment when the counters stand still.

Displayed numbers are rounded for the eye; `shown()` parses a cell back into a number and
the half-unit of its last digit, and `near()` compares within that."""
import json
import math
import os
import re
import time

import pytest

from helpers import (connect, free_port, l4_config, recv_exact, recv_line, scaled, wait_closed,
                     wait_for)
from test_admin import Admin, find_server
from test_dashboard import CHROMIUM, Browser, Traffic
from test_metrics import fetch, histogram_of

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"no chromium at {CHROMIUM}: the dashboard is NOT "
                                       "tested (make deps installs it)")

POLL_MS, HISTORY_MS, MIN_RATE_MS = 2000, 5 * 60 * 1000, 1000
COLORS = ['#2f6feb', '#e36209', '#1a7f37', '#8250df', '#bf3989', '#0a7ea4', '#9a6700', '#cf222e']
PAD_L, PAD_R, PAD_T, PAD_B = 58, 10, 10, 22


class NetBrowser(Browser):
    """A Browser that also records the requests the page makes (CDP Network domain):
    (monotonic timestamp in seconds, URL path) for every request."""

    def __init__(self, tmp_path):
        self.requests = []
        super().__init__(tmp_path)
        self.call("Network.enable")

    def _event(self, msg):
        if msg.get("method") == "Network.requestWillBeSent":
            p = msg["params"]
            path = re.sub(r"^https?://[^/]+", "", p["request"]["url"])
            self.requests.append((p["timestamp"], path))
        super()._event(msg)


@pytest.fixture
def browser(tmp_path):
    b = NetBrowser(tmp_path)
    yield b
    b.close()


# ---------------------------------------------------------------------------------------
# reading numbers back


UNITS = {"µs": 1e-6, "ms": 1e-3, "s": 1.0, "B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9,
         "TB": 1e12, "k": 1e3, "M": 1e6, "": 1.0}


def shown(text):
    """(value, half a unit of the last digit) of a number as the page prints it
    (fmtNum, fmtBytes, fmtSeconds; a trailing "/s" is ignored)."""
    m = re.fullmatch(r"(-?\d+(?:\.(\d+))?) ?(µs|ms|s|B|KB|MB|GB|TB|k|M|)(?:/s)?", text.strip())
    assert m, f"not a number as the page prints them: {text!r}"
    unit = UNITS[m.group(3)]
    decimals = len(m.group(2) or "")
    return float(m.group(1)) * unit, 0.5 * 10 ** -decimals * unit


def near(text, exact, what=""):
    value, half = shown(text)
    assert abs(value - exact) <= half * 1.001 + 1e-12 * abs(exact), (what, text, exact)


# ---------------------------------------------------------------------------------------
# the page's data


SNAPSHOT_JS = """(() => {
  if (!status || !history.length) return null;  /* before the first poll's answer */
  const names = %s;
  const hist = history.map((h) => {
    const v = {};
    for (const s of h.m.values())
      if (names.includes(s.name)) v[s.name + '|' + (s.labels.listener || '')] = s.value;
    return {t: h.t, v};
  });
  const chart = (id) => {
    const svg = document.getElementById(id);
    return {w: svg.clientWidth, h: svg.clientHeight,
            paths: [...svg.querySelectorAll('path')].map((p) => ({d: p.getAttribute('d'),
                                                                   stroke: p.getAttribute('stroke')})),
            labels: [...svg.querySelectorAll('text')].map((t) => t.textContent)};
  };
  const legend = (id) => [...document.getElementById(id).children].map((s) => s.textContent);
  const card = (id) => document.getElementById(id).textContent;
  return {hist, listeners: status.listeners.map((l) => l.name),
          conn: chart('chart-conn'), bytes: chart('chart-bytes'),
          legend_conn: legend('legend-conn'), legend_bytes: legend('legend-bytes'),
          cards: {active: card('c-active'), rate: card('c-rate'), in: card('c-in'),
                  out: card('c-out'), servers: card('c-servers'), reloads: card('c-reloads')}};
})()"""

COUNTERS = ["sluice_connections_total", "sluice_bytes_received_total", "sluice_bytes_sent_total"]


def snapshot(browser):
    """The page's samples, charts, legends and cards; None before its first poll."""
    return browser.eval(SNAPSHOT_JS % json.dumps(COUNTERS))


def snapshot_now(browser):
    """snapshot() once the page has polled at least once."""
    return wait_for(lambda: snapshot(browser), scaled(10), interval=0.1,
                    what="the page's first poll")


def total(sample, name, listener=None):
    """A counter of one page sample, for one listener or summed over all."""
    return sum(v for k, v in sample["v"].items()
               if k.split("|")[0] == name and (listener is None or k.split("|")[1] == listener))


def rate_pair(hist):
    """The two samples the page's rate() uses: the newest, and the newest of those at
    least MIN_RATE_MS older. None when there is no such pair yet."""
    b = hist[-1]
    for a in reversed(hist[:-1]):
        if b["t"] - a["t"] >= MIN_RATE_MS:
            return a, b
    return None


def rate_pairs(hist):
    """The pairs the charts are drawn from (the page's ratePairs())."""
    pairs, a = [], hist[0]
    for h in hist[1:]:
        if h["t"] - a["t"] < MIN_RATE_MS:
            continue
        pairs.append((a, h))
        a = h
    return pairs


def page_matches_metrics(browser, admin, listeners):
    """True when the page's newest sample holds exactly the counters of /metrics now
    (call it while the counters stand still)."""
    samples = fetch(admin)[1]
    last = snapshot_now(browser)["hist"][-1]
    for name in COUNTERS:
        for listener in listeners:
            if total(last, name, listener) != samples[(name, frozenset({("listener",
                                                                         listener)}))]:
                return False
    return True


def wait_rows(browser, n):
    wait_for(lambda: browser.eval("document.querySelectorAll('#servers tr[data-server]')"
                                  ".length") == n, scaled(10), interval=0.2, what=f"{n} rows")


def no_page_errors(browser):
    assert browser.errors == [], "\n".join(browser.errors + ["--- all:"] + browser.messages)


def banner_servers(demo, *names):
    return [demo("banner", name=n) for n in names]


def hold(port, n):
    """n connections through a banner backend, held open (banner read)."""
    held = []
    for _ in range(n):
        c = connect(port)
        recv_line(c)
        held.append(c)
    return held


class Lopsided(Traffic):
    """Traffic through a banner server with a 200-character name: each connection reads
    the banner, sends 20 bytes and reads them back, so that sluice sends about ten times
    what it receives (in and out cannot be mistaken for each other)."""

    def __init__(self, port, name):
        super().__init__(port)
        self.name = name

    def run(self):
        while not self.stop:
            try:
                c = connect(self.port)
                assert recv_line(c) == self.name
                c.sendall(b"x" * 20)
                recv_exact(c, 20)
                c.close()
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)  # pacing, not a wait: about 20 connections a second


# ---------------------------------------------------------------------------------------
# totals


def test_dashboard_totals(sluice, demo, browser):
    """The six cards: new connections/s and throughput in and out are the rates between
    the page's newest sample and the newest one at least 1 s older (connections,
    received and sent bytes told apart: the banner makes them differ), non-zero under
    traffic; the samples are /metrics; active connections is the status API's count (3
    held open); usable servers counts usable/all (a server that fails its health check
    is not usable); reloads is success / failure."""
    long_name = "w" * 200
    alpha, beta = banner_servers(demo, long_name, "beta")
    dead = f"127.0.0.1:{free_port()}"
    port, aport = free_port(), free_port()
    text = l4_config(
        listeners=[{"name": "public", "bind": f"127.0.0.1:{port}", "backend": "web-pool"}],
        backends=[{"name": "web-pool", "servers": [{"address": a}
                                                   for a in (alpha.address, beta.address, dead)],
                   "health": {"interval": "200ms", "timeout": "200ms", "healthy_threshold": 1,
                              "unhealthy_threshold": 1}}],
        admin={"bind": f"127.0.0.1:{aport}"})
    s = sluice(text)
    s.wait_listening([aport])
    admin = Admin(aport)
    wait_for(lambda: admin.status()["backends"][0]["servers_usable"] == 2, scaled(5),
             what="alpha and beta up")
    assert admin.patch_server("web-pool", beta.address, {"state": "disabled"})[0] == 200
    traffic = Lopsided(port, long_name)
    traffic.start()
    try:
        browser.navigate(f"http://127.0.0.1:{aport}/")

        def moving():  # a rate pair with traffic in between
            snap = snapshot_now(browser)
            pair = rate_pair(snap["hist"])
            if pair and total(pair[1], COUNTERS[0]) > total(pair[0], COUNTERS[0]):
                return snap, pair
            return None
        snap, (a, b) = wait_for(moving, scaled(15), interval=0.2, what="rates under traffic")
        dt = (b["t"] - a["t"]) / 1000
        for card, name in (("rate", COUNTERS[0]), ("in", COUNTERS[1]), ("out", COUNTERS[2])):
            near(snap["cards"][card], (total(b, name) - total(a, name)) / dt, card)
        assert total(b, COUNTERS[2]) - total(a, COUNTERS[2]) > \
            5 * (total(b, COUNTERS[1]) - total(a, COUNTERS[1]))  # out is about 10 x in
    finally:
        traffic.stop = True
        traffic.join()
    wait_for(lambda: admin.status()["active_connections"] == 0, scaled(5),
             what="traffic connections closed")
    held = hold(port, 3)
    assert admin.patch_server("web-pool", beta.address, {"state": "enabled"})[0] == 200
    wait_for(lambda: admin.status()["active_connections"] == 3, scaled(5), what="3 open")
    wait_for(lambda: page_matches_metrics(browser, admin, ["public"]), scaled(6), interval=0.2,
             what="the page's newest sample equals /metrics")
    wait_for(lambda: snapshot_now(browser)["cards"]["active"] == "3", scaled(6), interval=0.2,
             what="3 active connections shown")
    # a quiet pair of samples: every rate card shows 0
    wait_for(lambda: [snapshot_now(browser)["cards"][k] for k in ("rate", "in", "out")]
             == ["0", "0 B/s", "0 B/s"], scaled(8), interval=0.2, what="rates back to 0")

    assert snapshot_now(browser)["cards"]["servers"] == "2 / 3"
    assert snapshot_now(browser)["cards"]["reloads"] == "0 / 0"
    for _ in range(2):
        assert admin.reload()[0] == 200
    s.write_config(text.replace("backend: web-pool", "backend: nowhere"))
    assert admin.reload()[0] == 422
    s.write_config(text)
    assert admin.patch_server("web-pool", beta.address, {"state": "drain"})[0] == 200
    wait_for(lambda: (snapshot_now(browser)["cards"]["reloads"], snapshot_now(browser)["cards"]["servers"])
             == ("2 / 1", "1 / 3"), scaled(6), interval=0.2, what="reloads 2 / 1, servers 1 / 3")
    for c in held:
        c.close()
    no_page_errors(browser)
    s.stop()


# ---------------------------------------------------------------------------------------
# charts


def nice_step(v):
    """The page's grid step: 1, 2 or 5 times a power of ten, at most 5 steps up to v."""
    if v <= 0:
        return 1
    p = math.pow(10, math.floor(math.log10(v / 5)))
    for f in (1, 2, 5, 10):
        if v / (f * p) <= 5:
            return f * p
    return 10 * p


def path_points(d):
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]


def check_chart(chart, legend, listeners, hist, names, what):
    """The chart's lines are, per listener in status order (and in the colour of its
    index), the per-second rate of `names` (summed) between the page's sample pairs: one
    point per pair, y on the chart's scale (top = the nice maximum), x spaced by the
    pairs' time; the legend shows each listener's last value."""
    pairs = rate_pairs(hist)
    series = {}
    for l in listeners:
        series[l] = [sum(total(b, n, l) - total(a, n, l) for n in names) / ((b["t"] - a["t"])
                                                                            / 1000)
                     for a, b in pairs]
    top = max(v for pts in series.values() for v in pts)
    step = nice_step(top)
    top = step * max(1, math.ceil(top / step - 1e-9))
    w, h = max(chart["w"], 300), chart["h"] or 200
    paths = {p["stroke"]: path_points(p["d"]) for p in chart["paths"]}
    assert len(paths) == len(listeners), (what, chart["paths"])
    for i, l in enumerate(listeners):
        pts = paths[COLORS[i]]
        assert len(pts) == len(pairs), (what, l, len(pts), len(pairs))
        for (x, y), v in zip(pts, series[l]):
            want = PAD_T + (h - PAD_T - PAD_B) * (1 - v / top)
            assert abs(y - want) <= 0.051 + 1e-9, (what, l, y, want, v, top)
        for k in range(1, len(pts)):
            dt = pairs[k][1]["t"] - pairs[k - 1][1]["t"]
            want = (w - PAD_L - PAD_R) * dt / HISTORY_MS
            assert abs((pts[k][0] - pts[k - 1][0]) - want) <= 0.101, (what, l, pts, want)
        name, _, value = legend[i].partition(" ")
        assert name == l, (what, legend)
        near(value, series[l][-1], f"{what} legend {l}")
    assert series[listeners[0]][-1] > 0 and series[listeners[1]][-1] > 0, (what, series)


def test_dashboard_chart_values(sluice, demo, browser):
    """Two listeners with their own traffic. The connections chart draws, per listener,
    the rate of sluice_connections_total between sample pairs; the throughput chart the
    rate of received + sent bytes. Every point's height and spacing, and the legend's
    values, are checked against the page's samples; the samples are then compared with
    /metrics once traffic stops."""
    alpha, beta = banner_servers(demo, "alpha", "beta")
    p1, p2, aport = free_port(), free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "public", "bind": f"127.0.0.1:{p1}", "backend": "a"},
                   {"name": "other", "bind": f"127.0.0.1:{p2}", "backend": "b"}],
        backends=[{"name": "a", "servers": [{"address": alpha.address}]},
                  {"name": "b", "servers": [{"address": beta.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    traffic = [Traffic(p1), Traffic(p2)]
    for t in traffic:
        t.start()
    try:
        browser.navigate(f"http://127.0.0.1:{aport}/")
        snap = wait_for(lambda: (lambda x: x if len(rate_pairs(x["hist"])) >= 3 and
                                 len(x["conn"]["paths"]) == 2 else None)(snapshot_now(browser)),
                        scaled(20), interval=0.2, what="three sample pairs drawn")
        assert snap["listeners"] == ["public", "other"]
        check_chart(snap["conn"], snap["legend_conn"], snap["listeners"], snap["hist"],
                    [COUNTERS[0]], "connections")
        check_chart(snap["bytes"], snap["legend_bytes"], snap["listeners"], snap["hist"],
                    COUNTERS[1:], "throughput")
    finally:
        for t in traffic:
            t.stop = True
        for t in traffic:
            t.join()
    wait_for(lambda: admin.status()["active_connections"] == 0, scaled(5),
             what="traffic connections closed")
    wait_for(lambda: page_matches_metrics(browser, admin, ["public", "other"]), scaled(6),
             interval=0.2, what="the page's newest sample equals /metrics")
    no_page_errors(browser)
    s.stop()


# ---------------------------------------------------------------------------------------
# percentiles


def histogram_quantile(q, buckets):
    """Prometheus' bucketQuantile (promql/quantile.go) over [(le, cumulative count)],
    le sorted with +Inf last. None where Prometheus gives NaN."""
    if len(buckets) < 2 or buckets[-1][0] != math.inf:
        return None
    observations = buckets[-1][1]
    if observations == 0:
        return None
    rank = q * observations
    b = next((i for i in range(len(buckets) - 1) if buckets[i][1] >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def bucket_list(samples, family, **labels):
    return sorted(histogram_of(samples, family, **labels)[0].items())


LATENCY_JS = """[...document.querySelectorAll('#latency tbody tr')].map((tr) =>
  [...tr.querySelectorAll('td')].map((td) => td.textContent))"""


def check_latency(browser, rows_want):
    """The latency table equals `rows_want`: {(what, name): (buckets, scope)}, each
    percentile near histogram_quantile of those buckets, the sample count exact."""
    rows = browser.eval(LATENCY_JS)
    assert len(rows) == len(rows_want), rows
    for what, name, p50, p90, p99, count in rows:
        buckets, scope = rows_want[(what, name)]
        for q, cell in ((0.5, p50), (0.9, p90), (0.99, p99)):
            near(cell, histogram_quantile(q, buckets), f"{what} {name} p{round(q * 100)}")
        assert count == f"{buckets[-1][1]:g} {scope}", (count, buckets)


def test_dashboard_percentiles(sluice, demo, browser):
    """The page's quantile() agrees with histogram_quantile on chosen buckets; then the
    latency table's p50/p90/p99 (connect time per backend, connection duration per
    listener) agree with histogram_quantile of /metrics: first "since start" (all
    traffic before the page opened), then "last minute" (bucket deltas since the page's
    first sample). Connection durations are spread by the listener's idle_timeout:
    some connections close at once, others are closed by sluice after 300 ms idle."""
    cases = [
        [(0.001, 0), (0.01, 5), (0.1, 9), (math.inf, 10)],
        [(0.0005, 3), (0.001, 3), (0.0025, 7), (0.005, 8), (math.inf, 8)],
        [(0.0005, 100), (0.001, 100), (math.inf, 100)],
        [(0.25, 1), (0.5, 2), (1, 40), (2.5, 41), (math.inf, 41)],
    ]
    d = demo("banner", name="solo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool",
                    "idle_timeout": "300ms"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)

    def traffic(quick, idle):
        """`quick` connections closed at once, `idle` closed by sluice's idle timeout."""
        held = hold(port, idle)
        for c in hold(port, quick):
            c.close()
        for c in held:
            assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
            c.close()

    def want(samples, scope):
        return {("Connect time", "pool"):
                (bucket_list(samples, "sluice_backend_connect_duration_seconds", backend="pool"),
                 scope),
                ("Connection duration", "front"):
                (bucket_list(samples, "sluice_connection_duration_seconds", listener="front"),
                 scope)}

    traffic(8, 2)
    s.access_log(10)
    m1 = fetch(admin)[1]
    browser.navigate(f"http://127.0.0.1:{aport}/")
    for b in cases:
        js_buckets = "[" + ", ".join(f"[{'Infinity' if le == math.inf else repr(le)}, {c}]"
                                     for le, c in b) + "]"
        for q in (0.5, 0.9, 0.99):
            js = float(browser.eval(f"String(quantile({q}, {js_buckets}))"))
            py = histogram_quantile(q, b)
            if q * b[-1][1] > b[-2][1]:
                # in the +Inf bucket Prometheus answers the highest finite bound (10 s
                # on sluice's buckets) and the page Infinity, shown as "> 10 s"
                assert (js, py) == (math.inf, b[-2][0]), (b, q, js, py)
            else:
                assert abs(js - py) <= 1e-12, (b, q, js, py)
    assert browser.eval("quantile(0.5, [])") is None
    assert browser.eval("quantile(0.5, [[0.001, 0], [Infinity, 0]])") is None
    assert browser.eval("fmtSeconds(Infinity)") == "> 10 s"
    wait_for(lambda: len(browser.eval(LATENCY_JS)) == 2, scaled(10), interval=0.2,
             what="latency rows")
    check_latency(browser, want(m1, "since start"))

    traffic(3, 4)
    s.access_log(17)
    m2 = fetch(admin)[1]
    delta = {}
    for key, (b2, scope) in want(m2, "last minute").items():
        b1 = dict(want(m1, "")[key][0])
        delta[key] = ([(le, c - b1[le]) for le, c in b2], scope)
    wait_for(lambda: browser.eval(LATENCY_JS)[0][5] == "7 last minute", scaled(6),
             interval=0.2, what="the last minute's 7 connections shown")
    check_latency(browser, delta)
    # the page's first sample (the "then" of the window) was m1: nothing happened between
    assert histogram_of(m2, "sluice_connection_duration_seconds", listener="front")[2] == 17
    no_page_errors(browser)
    s.stop()


# ---------------------------------------------------------------------------------------
# servers table


SERVERS_JS = """[...document.querySelectorAll('#servers tr[data-server]')].map((tr) => {
  const td = tr.querySelectorAll('td');
  const w = td[3].querySelector('input.weight');
  return {key: tr.dataset.server, address: td[0].firstChild.textContent,
          state: td[1].querySelector('.state').dataset.state,
          health: td[2].querySelector('.health').textContent,
          detail: td[2].querySelector('.detail').textContent,
          weight: w.value, weight_title: w.title,
          active: td[4].textContent, total: td[5].textContent, failures: td[6].textContent};
})"""


def server_rows_match(browser, admin):
    """None, or a description of the first difference between the servers table and the
    status API."""
    rows = browser.eval(SERVERS_JS)
    st = admin.status()
    api = [(b["name"], v) for b in st["backends"] for v in b["servers"]]
    if len(rows) != len(api):
        return f"{len(rows)} rows, {len(api)} servers"
    for row, (backend, v) in zip(rows, api):
        h = v["health"]
        want = {"key": f"{backend}/{v['address']}", "address": v["address"],
                "state": v["state"], "health": "up" if v["healthy"] else "down",
                "weight": str(v["weight"]), "weight_title": f"configured: {v['config_weight']}",
                "active": str(v["active_connections"]), "total": str(v["connections_total"]),
                "failures": str(v["connect_failures_total"])}
        got = {k: row[k] for k in want}
        if got != want:
            return f"{got} != {want}"
        detail = h["last_check"]
        if h["last_change_seconds_ago"] is not None:
            if not re.fullmatch(re.escape(detail) + r" · changed \d+ s ago", row["detail"]):
                return f"detail {row['detail']!r} for {h}"
        elif row["detail"] != detail:
            return f"detail {row['detail']!r} for {h}"
    return None


def test_dashboard_server_columns(sluice, demo, browser):
    """Every server row against /api/v1/status: address, state, health (up/down badge,
    last check, time since the last change), weight (the current one, the configured one
    in the title), active and total connections, connect failures. Two backends: "web"
    with health checks (alpha up, a dead address down), "plain" without (a refusing
    server that collects connect failures, beta that serves). Weight set through the API
    on alpha, a connection held on each serving server."""
    alpha, beta = banner_servers(demo, "alpha", "beta")
    dead, refusing = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    p1, p2, aport = free_port(), free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "web", "bind": f"127.0.0.1:{p1}", "backend": "web"},
                   {"name": "plain", "bind": f"127.0.0.1:{p2}", "backend": "plain"}],
        backends=[{"name": "web",
                   "servers": [{"address": alpha.address, "weight": 3}, {"address": dead}],
                   "health": {"interval": "1h", "timeout": "500ms", "healthy_threshold": 1,
                              "unhealthy_threshold": 1}},
                  {"name": "plain", "retries": 1, "balance": "round_robin",
                   "servers": [{"address": refusing}, {"address": beta.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    wait_for(lambda: all(v["health"]["checked"] for v in admin.status()["backends"][0]
                         ["servers"]), scaled(5), what="first probes")
    assert admin.patch_server("web", alpha.address, {"weight": 5})[0] == 200
    held = hold(p1, 1) + hold(p2, 3)  # round robin: the refusing server fails, beta serves
    st = admin.status()
    assert find_server(st, "plain", refusing)["connect_failures_total"] >= 1
    assert find_server(st, "web", dead)["healthy"] is False
    browser.navigate(f"http://127.0.0.1:{aport}/")
    wait_rows(browser, 4)
    last = [None]

    def matches():
        last[0] = server_rows_match(browser, admin)
        return last[0] is None
    try:
        wait_for(matches, scaled(6), interval=0.2, what="server rows equal to the status")
    except AssertionError as e:
        raise AssertionError(f"{e}: {last[0]}") from None
    for c in held:
        c.close()
    # and they follow: connections closed, totals stay, active drops
    wait_for(matches, scaled(6), interval=0.2, what="server rows after the connections closed")
    no_page_errors(browser)
    s.stop()


def test_dashboard_weight_is_editable(sluice, demo, browser):
    """Typing a weight in a server's field (a change event) PATCHes it: the status API
    shows the new weight, and the page shows it after its refresh."""
    alpha, = banner_servers(demo, "alpha")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": alpha.address, "weight": 2}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    browser.navigate(f"http://127.0.0.1:{aport}/")
    wait_rows(browser, 1)
    sel = json.dumps(f'tr[data-server="pool/{alpha.address}"] input.weight')
    assert browser.eval(f"document.querySelector({sel}).value") == "2"
    browser.eval(f"const w = document.querySelector({sel}); w.value = '17';"
                 "w.dispatchEvent(new Event('change'))")
    # the toast lives 4 s from the PATCH answer: read it first, before slower checks
    wait_for(lambda: "weight 17" in browser.eval("document.getElementById('toast').innerText"),
             scaled(6), interval=0.1, what="the toast saying weight 17")
    wait_for(lambda: find_server(admin.status(), "pool", alpha.address)["weight"] == 17,
             scaled(6), interval=0.2, what="weight 17 in the status API")
    assert find_server(admin.status(), "pool", alpha.address)["config_weight"] == 2
    wait_for(lambda: browser.eval(f"document.querySelector({sel}).value") == "17"
             and browser.eval(f"document.querySelector({sel}).title") == "configured: 2",
             scaled(6), interval=0.2, what="the page shows weight 17")
    no_page_errors(browser)
    s.stop()


# ---------------------------------------------------------------------------------------
# connection state and poll period


def test_dashboard_shows_disconnected(sluice, demo, browser):
    """While sluice runs the page says "live"; once it stops, the next poll fails and
    the page says "disconnected" (class down)."""
    alpha, = banner_servers(demo, "alpha")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": alpha.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    browser.navigate(f"http://127.0.0.1:{aport}/")
    conn = "[document.getElementById('conn').className, document.getElementById('conn').innerText]"
    wait_for(lambda: browser.eval(conn) == ["up", "live"], scaled(10), interval=0.2,
             what="live")
    s.stop()
    wait_for(lambda: browser.eval(conn) == ["down", "disconnected"], scaled(6), interval=0.2,
             what="disconnected")
    # the only errors are the browser's notes about the refused requests
    unexpected = [e for e in browser.errors if "ERR_CONNECTION_REFUSED" not in e]
    assert unexpected == [], "\n".join(browser.errors)


def test_dashboard_polls_every_two_seconds(sluice, demo, browser):
    """The page asks for /api/v1/status and /metrics once at load and then every 2 s:
    the requests' send times (from the browser's network log) are 2 s apart."""
    alpha, = banner_servers(demo, "alpha")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": alpha.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    browser.navigate(f"http://127.0.0.1:{aport}/")
    n = 6

    def polls(path):
        browser.eval("1")  # lets the browser deliver pending network events
        return [t for t, p in browser.requests if p == path]
    wait_for(lambda: len(polls("/api/v1/status")) >= n and len(polls("/metrics")) >= n,
             scaled(20), interval=0.2, what=f"{n} polls")
    for path in ("/api/v1/status", "/metrics"):
        times = polls(path)[:n]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(abs(g - POLL_MS / 1000) < 0.3 for g in gaps), (path, gaps)
        assert abs((times[-1] - times[0]) / (n - 1) - POLL_MS / 1000) < 0.1, (path, gaps)
    no_page_errors(browser)
    s.stop()
