"""GET /metrics: the whole output parses as Prometheus text exposition 0.0.4 (checked by a
strict parser below); the exposed families are exactly those of the docs' metrics table,
with their types and labels; after known traffic the counters, gauges and histograms are
exact (histograms observation by observation against the access log); the process_*
metrics agree with /proc.

More per-metric tests: test_metrics_refused.py (the refused counter, reason by reason,
and sluice_server_up), test_metrics_tls.py (TLS handshakes, errors, durations; TLS to
servers), test_metrics_durations.py (duration histograms against the clock). The helpers
here (fetch, value, histogram_of, assert_histogram_holds) are shared with them."""
import math
import os
import re
import socket
import ssl
import subprocess

from helpers import (connect, echo_many, free_port, l4_config, recv_exact, recv_line, scaled,
                     wait_for)
from test_admin import Admin, admin_config
from tls_certs import client_context, pki, tls_connect, tls_listener  # noqa: F401

CONTRACT = {
    "sluice_connections_total": ("counter", {"listener"}),
    "sluice_connections_active": ("gauge", {"listener"}),
    "sluice_bytes_received_total": ("counter", {"listener"}),
    "sluice_bytes_sent_total": ("counter", {"listener"}),
    "sluice_backend_connections_active": ("gauge", {"backend", "server"}),
    "sluice_backend_connect_failures_total": ("counter", {"backend", "server"}),
    "sluice_server_up": ("gauge", {"backend", "server"}),
    "sluice_connection_duration_seconds": ("histogram", {"listener"}),
    "sluice_backend_connect_duration_seconds": ("histogram", {"backend"}),
    "sluice_tls_handshakes_total": ("counter", {"listener", "version"}),
    "sluice_tls_handshake_errors_total": ("counter", {"listener"}),
    "sluice_config_reloads_total": ("counter", {"result"}),
    "sluice_requests_total": ("counter", None),
    "sluice_request_duration_seconds": ("histogram", None),
}

# ---------------------------------------------------------------------------------------
# a strict parser for the text exposition format 0.0.4

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


def _parse_value(text, where):
    if not FLOAT.match(text):
        raise ExpositionError(f"{where}: bad value {text!r}")
    return float(text.replace("Inf", "inf").replace("NaN", "nan"))


def _parse_labels(s, i, where):
    """Parses '{a="x",b="y"}' starting at s[i] == '{'. Returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i:i + 1] == "}":
            return labels, i + 1
        m = LABEL_NAME.match(s, i)
        if not m:
            raise ExpositionError(f"{where}: bad label name at {s[i:]!r}")
        name = m.group(0)
        if name.startswith("__"):
            raise ExpositionError(f"{where}: reserved label name {name}")
        if name in labels:
            raise ExpositionError(f"{where}: duplicate label {name}")
        i = m.end()
        if s[i:i + 2] != '="':
            raise ExpositionError(f"{where}: expected =\" after label {name}")
        i += 2
        value = []
        while True:
            if i >= len(s):
                raise ExpositionError(f"{where}: unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ExpositionError(f"{where}: bad escape \\{nxt} in a label value")
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ExpositionError(f"{where}: raw newline in a label value")
            else:
                value.append(c)
                i += 1
        labels[name] = "".join(value)
        if s[i:i + 1] == ",":
            i += 1
            if s[i:i + 1] == "}":
                return labels, i + 1  # a trailing comma is allowed
        elif s[i:i + 1] != "}":
            raise ExpositionError(f"{where}: expected , or }} after a label value")


def _family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return name


def parse_exposition(text):
    """Parses and validates the whole text. Returns (families, samples): families maps a
    name to {"type", "help"}; samples maps (name, frozenset(labels.items())) to value."""
    if text and not text.endswith("\n"):
        raise ExpositionError("the output does not end with a newline")
    types, helps, samples = {}, {}, {}
    seen_families, current = set(), None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.fullmatch(name):
                    raise ExpositionError(f"{where}: bad metric name {name!r}")
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ExpositionError(f"{where}: bad TYPE line {line!r}")
                    if name in types:
                        raise ExpositionError(f"{where}: second TYPE for {name}")
                    if name in seen_families:
                        raise ExpositionError(f"{where}: TYPE for {name} after its samples")
                    types[name] = parts[3]
                else:
                    if name in helps:
                        raise ExpositionError(f"{where}: second HELP for {name}")
                    help_text = parts[3] if len(parts) == 4 else ""
                    if re.search(r"\\[^\\n]", help_text) or help_text.endswith("\\"):
                        raise ExpositionError(f"{where}: bad escape in HELP")
                    helps[name] = help_text
            continue
        m = METRIC_NAME.match(line)
        if not m:
            raise ExpositionError(f"{where}: bad metric name in {line!r}")
        name, i = m.group(0), m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = _parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise ExpositionError(f"{where}: expected a space before the value in {line!r}")
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2):
            raise ExpositionError(f"{where}: junk after the value in {line!r}")
        value = _parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ExpositionError(f"{where}: bad timestamp {rest[1]!r}")
        family = _family_of(name, types)
        if family != current:
            if family in seen_families:
                raise ExpositionError(f"{where}: samples of {family} are not contiguous")
            seen_families.add(family)
            current = family
        ftype = types.get(family, "untyped")
        if ftype == "histogram":
            if name == family:
                raise ExpositionError(f"{where}: bare sample of histogram {family}")
            if name.endswith("_bucket") and "le" not in labels:
                raise ExpositionError(f"{where}: bucket without le")
        if ftype == "counter" and (value < 0 or math.isnan(value)):
            raise ExpositionError(f"{where}: negative counter {name}")
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ExpositionError(f"{where}: duplicate series {name}{labels}")
        samples[key] = value
    families = {n: {"type": t, "help": helps.get(n)} for n, t in types.items()}
    for family, t in types.items():
        if t == "histogram":
            _check_histogram(family, samples)
    return families, samples


def _check_histogram(family, samples):
    """Buckets sorted by le, cumulative, ending with +Inf == _count; _sum present."""
    groups = {}
    for (name, labels), value in samples.items():
        if name == family + "_bucket":
            d = dict(labels)
            le = d.pop("le")
            groups.setdefault(frozenset(d.items()), []).append((float(le.replace("Inf", "inf")),
                                                                value))
    for key, buckets in groups.items():
        buckets.sort()
        if buckets[-1][0] != math.inf:
            raise ExpositionError(f"{family}{dict(key)}: no +Inf bucket")
        counts = [c for _, c in buckets]
        if counts != sorted(counts):
            raise ExpositionError(f"{family}{dict(key)}: buckets not cumulative: {counts}")
        count = samples.get((family + "_count", key))
        if count is None or samples.get((family + "_sum", key)) is None:
            raise ExpositionError(f"{family}{dict(key)}: missing _count or _sum")
        if count != counts[-1]:
            raise ExpositionError(f"{family}{dict(key)}: +Inf bucket {counts[-1]} != "
                                  f"_count {count}")


def test_strict_parser_rejects_bad_input():
    """The parser itself: it must catch what it is meant to catch."""
    good = ('# HELP a_total x\n# TYPE a_total counter\na_total{l="q\\"\\\\\\n"} 1\n'
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3.5\n'
            'h_count 2\n')
    parse_exposition(good)
    bad = [
        "a 1",                                          # no final newline
        "a{l=\"x\"} one\n",                             # bad value
        "a{l=\"x\\t\"} 1\n",                            # bad escape
        "a{l=x} 1\n",                                   # unquoted
        "1a 1\n",                                       # bad name
        "a 1\nb 1\na 2\n",                              # not contiguous (and duplicate)
        "# TYPE a counter\n# TYPE a counter\na 1\n",    # two TYPE lines
        "# TYPE a counter\na -1\n",                     # negative counter
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "a{l=\"1\",l=\"2\"} 1\n",
    ]
    for text in bad:
        try:
            parse_exposition(text)
        except ExpositionError:
            continue
        raise AssertionError(f"accepted: {text!r}")


# ---------------------------------------------------------------------------------------


def fetch(admin):
    code, hdrs, text = admin.get("/metrics")
    assert code == 200
    assert hdrs["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(text)


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


# Histogram bucket bounds (seconds) as docs/operations.md lists them.
BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


def histogram_of(samples, family, **labels):
    """({le: cumulative count} with math.inf for +Inf, _sum, _count) of one series."""
    buckets = {}
    for (name, lab), v in samples.items():
        d = dict(lab)
        le = d.pop("le", None)
        if name == family + "_bucket" and d == labels:
            buckets[float(le.replace("Inf", "inf"))] = v
    return (buckets, value(samples, family + "_sum", **labels),
            value(samples, family + "_count", **labels))


def assert_histogram_holds(samples, family, observed, **labels):
    """The series holds exactly the observations `observed` (seconds): every bucket's
    cumulative count, _count, and _sum (printed with 6 decimals). Observations come from
    the access log (duration_ms, connect_ms), which sluice computes from the same clock
    reading, so a unit error on either side or a misplaced bucket shows."""
    buckets, total, count = histogram_of(samples, family, **labels)
    assert sorted(buckets) == BOUNDS + [math.inf], sorted(buckets)
    want = {le: sum(1 for v in observed if v <= le) for le in BOUNDS + [math.inf]}
    assert buckets == want, (labels, buckets, sorted(observed))
    assert count == len(observed)
    assert abs(total - sum(observed)) <= 1e-6 * (len(observed) + 1), (total, sum(observed))


def ms_to_s(entries, field):
    """The access log's millisecond field as seconds (the same division the C side does
    on microseconds: both are exact to the nearest double)."""
    return [e[field] / 1000 for e in entries]


DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "operations.md")


def documented_metrics():
    """{name: (type, set of labels)} from the metrics table of docs/operations.md."""
    text = open(DOCS).read()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[1] in TYPES:
            labels = set(re.findall(r"`([a-z_]+)`", cells[2]))
            table[cells[0].strip("`")] = (cells[1], labels)
    return table


def test_exposed_families_match_the_documentation(sluice, demo, pki):
    """Every family in the docs' metrics table is exposed with the documented type, HELP
    and labels (on every sample), and nothing undocumented is exposed; the fixed
    contract's names are among them. With a tcp and a tls listener, so that the TLS
    families have samples."""
    d = demo("echo")
    port, tport, aport = free_port(), free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "plain", "bind": f"127.0.0.1:{port}", "backend": "pool"},
                   tls_listener(tport, [pki.a_ec], name="secure")],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    docs = documented_metrics()
    assert len(docs) >= 20, docs
    for name, (mtype, labels) in CONTRACT.items():
        assert name in docs and docs[name][0] == mtype, name
        if labels is not None:
            assert docs[name][1] == labels, name
    families, samples = fetch(Admin(aport))
    assert set(families) == set(docs), set(families) ^ set(docs)
    types = {n: f["type"] for n, f in families.items()}
    with_samples = set()
    for name, (mtype, _) in docs.items():
        assert families[name]["type"] == mtype, name
        assert families[name]["help"], name
    for (name, labels), _ in samples.items():
        family = _family_of(name, types)
        with_samples.add(family)
        got = {k for k, _ in labels} - ({"le"} if name.endswith("_bucket") else set())
        assert got == docs[family][1], (name, got, docs[family][1])
    # only the HTTP families have no samples (no http listener or backend here)
    assert set(docs) - with_samples == {
        "sluice_requests_total", "sluice_request_duration_seconds",
        "sluice_upstream_response_seconds", "sluice_http_requests_active",
        "sluice_websocket_tunnels_active", "sluice_http2_streams_active",
        "sluice_http_errors_total", "sluice_http_requests_by_protocol_total",
        "sluice_backend_pool_idle", "sluice_backend_pool_reused_total"}
    s.stop()


def test_counts_per_listener_and_direction(sluice, demo):
    """Two listeners on one banner backend (it sends "b\n" first, then echoes): each
    listener's counters hold its own traffic only; received and sent are told apart;
    the process gauge is the sum of the listeners' gauges."""
    d = demo("banner", name="b")
    p1, p2, aport = free_port(), free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "one", "bind": f"127.0.0.1:{p1}", "backend": "pool"},
                   {"name": "two", "bind": f"127.0.0.1:{p2}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    for _ in range(2):
        c = connect(p1)
        assert recv_line(c) == "b"
        c.sendall(b"x" * 10)
        assert recv_exact(c, 10) == b"x" * 10
        c.close()
    s.access_log(2)
    held = []
    for p, n in ((p1, 3), (p2, 100)):
        c = connect(p)
        assert recv_line(c) == "b"
        c.sendall(b"y" * n)
        assert recv_exact(c, n) == b"y" * n
        held.append(c)
    samples = fetch(admin)[1]
    assert value(samples, "sluice_connections_total", listener="one") == 3
    assert value(samples, "sluice_connections_total", listener="two") == 1
    assert value(samples, "sluice_connections_active", listener="one") == 1
    assert value(samples, "sluice_connections_active", listener="two") == 1
    assert value(samples, "sluice_process_connections_active") == 2
    assert value(samples, "sluice_backend_connections_active", backend="pool",
                 server=d.address) == 2
    # bytes count when a connection ends: only the two closed ones so far
    assert value(samples, "sluice_bytes_received_total", listener="one") == 20
    assert value(samples, "sluice_bytes_sent_total", listener="one") == 24
    assert value(samples, "sluice_bytes_received_total", listener="two") == 0
    assert value(samples, "sluice_bytes_sent_total", listener="two") == 0
    for c in held:
        c.close()
    s.access_log(4)
    samples = fetch(admin)[1]
    assert value(samples, "sluice_bytes_received_total", listener="one") == 23
    assert value(samples, "sluice_bytes_sent_total", listener="one") == 29
    assert value(samples, "sluice_bytes_received_total", listener="two") == 100
    assert value(samples, "sluice_bytes_sent_total", listener="two") == 102
    assert value(samples, "sluice_connections_active", listener="one") == 0
    assert value(samples, "sluice_process_connections_active") == 0
    assert value(samples, "sluice_backend_connections_active", backend="pool",
                 server=d.address) == 0
    s.stop()


def test_contract_names_and_exact_counts(sluice, demo):
    """The fixed contract's families with their types and labels; after five echoed
    connections and one held open, every listener, server and histogram value is exact;
    reloads count by result and counters survive them."""
    servers = [demo("echo"), demo("echo")]
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address for d in servers], aport))
    s.wait_listening([aport])
    admin = Admin(aport)

    families, samples = fetch(admin)
    for name, (mtype, labels) in CONTRACT.items():
        assert name in families, f"missing family {name}"
        assert families[name]["type"] == mtype, (name, families[name])
        assert families[name]["help"], f"{name} has no HELP"
    # every sample carries exactly the contract's labels
    for (name, labels), _ in samples.items():
        family = _family_of(name, {n: f["type"] for n, f in families.items()})
        if family in CONTRACT and CONTRACT[family][1] is not None:
            got = {k for k, _ in labels} - {"le"}
            assert got == CONTRACT[family][1], (name, got)
    assert value(samples, "sluice_connections_total", listener="front") == 0
    assert value(samples, "sluice_config_reloads_total", result="success") == 0
    assert value(samples, "sluice_config_reloads_total", result="failure") == 0
    for d in servers:
        assert value(samples, "sluice_server_up", backend="pool", server=d.address) == 1

    # five connections with known byte counts
    sizes = [10, 100, 1000, 10000, 100000]
    echo_many(port, [os.urandom(n) for n in sizes], timeout=scaled(20))
    s.access_log(5)
    # one connection still open
    held = connect(port)
    held.sendall(b"x")
    assert held.recv(1) == b"x"

    _, samples = fetch(admin)
    assert value(samples, "sluice_connections_total", listener="front") == 6
    assert value(samples, "sluice_connections_active", listener="front") == 1
    assert value(samples, "sluice_bytes_received_total", listener="front") == sum(sizes)
    assert value(samples, "sluice_bytes_sent_total", listener="front") == sum(sizes)
    # the five closed connections, observation by observation (the held one is not in yet)
    done = s.access_log(5)
    assert_histogram_holds(samples, "sluice_connection_duration_seconds",
                           ms_to_s(done, "duration_ms"), listener="front")
    # a connect time is observed at connect: the held connection's is in already
    _, _, connects = histogram_of(samples, "sluice_backend_connect_duration_seconds",
                                  backend="pool")
    assert connects == 6
    per_server = [value(samples, "sluice_server_connections_total", backend="pool",
                        server=d.address) for d in servers]
    assert sum(per_server) == 6
    active = [value(samples, "sluice_backend_connections_active", backend="pool",
                    server=d.address) for d in servers]
    assert sorted(active) == [0, 1]
    for d in servers:
        assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                     server=d.address) == 0
    assert value(samples, "sluice_process_connections_active") == 1
    held.close()
    wait_for(lambda: value(fetch(admin)[1], "sluice_connections_active", listener="front") == 0,
             scaled(5), what="active back to 0")
    entries = s.access_log(6)
    _, samples = fetch(admin)
    assert_histogram_holds(samples, "sluice_backend_connect_duration_seconds",
                           ms_to_s(entries, "connect_ms"), backend="pool")
    assert_histogram_holds(samples, "sluice_connection_duration_seconds",
                           ms_to_s(entries, "duration_ms"), listener="front")
    assert value(samples, "sluice_listener_refused_total", listener="front") == 0

    # reload results: one good SIGHUP, one broken one
    s.reload()
    wait_for(lambda: value(fetch(admin)[1], "sluice_config_reloads_total", result="success")
             == 1, scaled(5), what="a successful reload counted")
    text = open(s.config_path).read()
    s.reload(text.replace("protocol: tcp", "protocol: nonsense"))
    wait_for(lambda: value(fetch(admin)[1], "sluice_config_reloads_total", result="failure")
             == 1, scaled(5), what="a failed reload counted")
    # counters survive reloads
    _, samples = fetch(admin)
    assert value(samples, "sluice_connections_total", listener="front") == 6
    s.stop()


def test_connect_failures_refused_and_connections_established(sluice, demo):
    """A refused connect counts one failure on that server and no connection: a client
    sent to the dead server first logs retries=1, so the failures equal the retries."""
    live = demo("echo")
    dead = f"127.0.0.1:{free_port()}"
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [dead, live.address], aport, retries=1))
    s.wait_listening([aport])
    admin = Admin(aport)
    for _ in range(6):
        c = connect(port)
        c.sendall(b"hi")
        assert c.recv(2) == b"hi"
        c.close()
    entries = s.access_log(6)
    retried = sum(e["retries"] for e in entries)
    assert retried >= 1, entries  # round robin over two servers: some went to `dead` first
    _, samples = fetch(admin)
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=dead) == retried
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=live.address) == 0
    assert value(samples, "sluice_server_connections_total", backend="pool",
                 server=live.address) == 6
    assert value(samples, "sluice_server_connections_total", backend="pool", server=dead) == 0
    # no health check configured: failed connects do not mark it down (docs: "or has none")
    assert value(samples, "sluice_server_up", backend="pool", server=dead) == 1
    s.stop()


def test_server_admin_state_and_weight_metrics(sluice, demo):
    """Each admin state shows as exactly one 1 among the three `state` series; the weight
    gauge follows the configuration, the API (0 included) and a reload."""
    d = demo("banner", name="a")
    port, aport = free_port(), free_port()
    text = l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address, "weight": 3}]}],
        admin={"bind": f"127.0.0.1:{aport}"})
    s = sluice(text)
    s.wait_listening([aport])
    admin = Admin(aport)

    def states():
        samples = fetch(admin)[1]
        return {st: value(samples, "sluice_server_admin_state", backend="pool",
                          server=d.address, state=st) for st in ("enabled", "drain", "disabled")}

    def weight():
        return value(fetch(admin)[1], "sluice_server_weight", backend="pool", server=d.address)

    assert states() == {"enabled": 1, "drain": 0, "disabled": 0}
    assert weight() == 3
    assert admin.patch_server("pool", d.address, {"state": "drain", "weight": 9})[0] == 200
    assert states() == {"enabled": 0, "drain": 1, "disabled": 0}
    assert weight() == 9
    assert admin.patch_server("pool", d.address, {"state": "disabled", "weight": 0})[0] == 200
    assert states() == {"enabled": 0, "drain": 0, "disabled": 1}
    assert weight() == 0
    assert admin.patch_server("pool", d.address, {"state": "enabled"})[0] == 200
    assert states() == {"enabled": 1, "drain": 0, "disabled": 0}
    s.reload(text.replace("weight: 3", "weight: 5"))
    wait_for(lambda: weight() == 5, scaled(5), what="the reloaded weight")
    s.stop()


def _self_signed(tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def test_tls_handshake_metrics(sluice, demo, tmp_path):
    """Completed handshakes by version, one failed handshake (plain text), and the
    handshake duration counting completed ones only. More in test_metrics_tls.py."""
    d = demo("echo")
    cert, key = _self_signed(tmp_path)
    port, aport = free_port(), free_port()
    text = l4_config(
        listeners=[{"name": "secure", "bind": f"127.0.0.1:{port}", "protocol": "tls",
                    "backend": "pool",
                    "tls": {"certificates": [{"cert": cert, "key": key}]}}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"})
    s = sluice(text)
    s.wait_listening([aport])
    admin = Admin(aport)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as c:
                c.sendall(b"ping")
                assert c.recv(4) == b"ping"
    # a failed handshake: plain text on the TLS port
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            raw.recv(100)
        except OSError:
            pass
    s.access_log(4)
    families, samples = fetch(admin)
    assert value(samples, "sluice_tls_handshakes_total", listener="secure", version="TLSv1.3") == 2
    assert value(samples, "sluice_tls_handshakes_total", listener="secure", version="TLSv1.2") == 1
    assert value(samples, "sluice_tls_handshakes_total", listener="secure", version="TLSv1.1") == 0
    assert value(samples, "sluice_tls_handshakes_total", listener="secure", version="TLSv1") == 0
    assert value(samples, "sluice_tls_handshake_errors_total", listener="secure") == 1
    assert value(samples, "sluice_listener_refused_total", listener="secure") == 0
    assert value(samples, "sluice_tls_handshake_duration_seconds_count", listener="secure") == 3
    s.stop()


def proc_stat(pid):
    """(utime + stime in seconds, start time since the epoch) from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    # fields[0] is field 3 (state): utime 14, stime 15, starttime 22
    return (int(fields[11]) + int(fields[12])) / tick, btime + int(fields[19]) / tick


def proc_rss(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_build_and_process_metrics(sluice, demo, pki):
    """build_info carries the running version; the process_* metrics agree with what
    /proc says about the process (read just before and just after the scrape), and the
    CPU counter grows with CPU work (TLS handshakes with an RSA key)."""
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[tls_listener(port, [pki.default], name="secure")],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    pid = s.proc.pid

    families, samples = fetch(admin)
    info = [k for k in samples if k[0] == "sluice_build_info"]
    assert len(info) == 1 and samples[info[0]] == 1
    version = dict(info[0][1])["version"]
    assert version == admin.status()["version"]
    out = subprocess.run([s.proc.args[0], "--version"], capture_output=True, text=True).stdout
    assert out.splitlines()[0] == f"sluice {version}", out
    _, started = proc_stat(pid)
    assert started - 1 <= value(samples, "process_start_time_seconds") <= started + scaled(2)
    assert families["process_cpu_seconds_total"]["type"] == "counter"

    def cpu_bracketed():
        lo, _ = proc_stat(pid)
        rss_lo = proc_rss(pid)
        samples = fetch(admin)[1]
        hi, _ = proc_stat(pid)
        rss_hi = proc_rss(pid)
        cpu = value(samples, "process_cpu_seconds_total")
        assert lo - 0.005 <= cpu <= hi + 0.005, (lo, cpu, hi)
        rss = value(samples, "process_resident_memory_bytes")
        assert 0.9 * min(rss_lo, rss_hi) <= rss <= 1.1 * max(rss_lo, rss_hi), (rss_lo, rss,
                                                                                 rss_hi)
        return cpu

    cpu0 = cpu_bracketed()
    ctx = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    made = []

    def burn():
        for _ in range(20):  # full RSA handshakes: a signature each on sluice's side
            with tls_connect(port, ctx, sni="default.example.com") as t:
                t.sendall(b"x")
                t.recv(1)
            made.append(1)
        return cpu_bracketed() >= cpu0 + 0.05
    wait_for(burn, scaled(60), interval=0, what="process_cpu_seconds_total to grow by 0.05")
    s.access_log(len(made))
    s.stop()
