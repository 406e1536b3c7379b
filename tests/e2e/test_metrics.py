"""GET /metrics: the whole output parses as Prometheus text exposition 0.0.4 (checked by a
strict parser below), the contract's metric names are there, and after known traffic the
counters and histogram counts are exact."""
import math
import os
import re
import signal
import socket
import ssl
import subprocess

from helpers import (connect, echo_many, free_port, l4_config, recv_line, scaled, wait_for)
from test_admin import Admin, admin_config

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


def test_contract_names_and_exact_counts(sluice, demo):
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
    assert value(samples, "sluice_connection_duration_seconds_count", listener="front") == 5
    assert value(samples, "sluice_connection_duration_seconds_bucket", listener="front",
                 le="+Inf") == 5
    assert value(samples, "sluice_connection_duration_seconds_sum", listener="front") >= 0
    assert value(samples, "sluice_backend_connect_duration_seconds_count", backend="pool") == 6
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


def test_connect_failures_and_server_down(sluice, demo):
    live = demo("echo")
    dead = f"127.0.0.1:{free_port()}"
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [dead, live.address], aport, retries=1))
    s.wait_listening([aport])
    admin = Admin(aport)
    for _ in range(4):
        c = connect(port)
        c.sendall(b"hi")
        assert c.recv(2) == b"hi"
        c.close()
    s.access_log(4)
    _, samples = fetch(admin)
    fails = value(samples, "sluice_backend_connect_failures_total", backend="pool", server=dead)
    assert fails >= 1
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=live.address) == 0
    assert value(samples, "sluice_server_connections_total", backend="pool",
                 server=live.address) == 4
    s.stop()


def test_server_admin_state_and_weight_metrics(sluice, demo):
    d = demo("banner", name="a")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    s.wait_listening([aport])
    admin = Admin(aport)
    assert admin.patch_server("pool", d.address, {"state": "drain", "weight": 9})[0] == 200
    _, samples = fetch(admin)
    assert value(samples, "sluice_server_admin_state", backend="pool", server=d.address,
                 state="drain") == 1
    assert value(samples, "sluice_server_admin_state", backend="pool", server=d.address,
                 state="enabled") == 0
    assert value(samples, "sluice_server_weight", backend="pool", server=d.address) == 9
    s.stop()


def _self_signed(tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def test_tls_handshake_metrics(sluice, demo, tmp_path):
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
    assert value(samples, "sluice_tls_handshake_errors_total", listener="secure") == 1
    assert value(samples, "sluice_tls_handshake_duration_seconds_count", listener="secure") == 3
    s.stop()


def test_build_and_process_metrics(sluice, demo):
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(admin_config(port, [d.address], aport))
    s.wait_listening([aport])
    families, samples = fetch(Admin(aport))
    info = [k for k in samples if k[0] == "sluice_build_info"]
    assert len(info) == 1 and dict(info[0][1])["version"]
    assert value(samples, "process_start_time_seconds") > 1.6e9
    assert value(samples, "process_resident_memory_bytes") > 0
    s.stop()
    # the process stopped cleanly (no leak reports etc.): covered by the fixture
    assert s.proc.returncode == 0 or s.proc.returncode == -signal.SIGTERM
