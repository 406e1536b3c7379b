"""`sluice -t -c FILE`: exit 0 and quiet when valid; exit 1 and one line per error,
"FILE:LINE:COL: key.path: message", when not. Line numbers are checked exactly, the column
only for being on that line (key or value position are both fine)."""
import os
import re
import subprocess

import pytest

from helpers import SLUICE_BIN, free_port, listening_ports, scaled
from test_admin import Admin, find_server

ERROR_RE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<path>[^\s:]+): "
                      r"(?P<msg>.+)$")

VALID = """\
workers: 2
max_connections: 1000
shutdown_timeout: 5s
log: {access: stdout, format: json, level: info}
listeners:
  - name: front
    bind: "127.0.0.1:18080"
    protocol: tcp
    idle_timeout: 4m
    max_connections: 0
    backend: pool
backends:
  - name: pool
    protocol: tcp
    servers:
      - {address: "127.0.0.1:9001"}
      - {address: "127.0.0.1:9002", weight: 3}
      - {address: "localhost:9003", backup: true}
    balance: round_robin
    connect_timeout: 2s
    timeout: 60s
    retries: 2
    max_connections_per_server: 100
"""


def check(tmp_path, text, name="broken.yaml"):
    """Runs `sluice -t -c name` in tmp_path; returns (exit code, stdout, parsed errors,
    raw stderr)."""
    path = tmp_path / name
    path.write_text(text)
    p = subprocess.run([SLUICE_BIN, "-t", "-c", name], cwd=tmp_path, capture_output=True,
                       text=True, timeout=scaled(20))
    errors = []
    for line in p.stderr.splitlines():
        m = ERROR_RE.match(line)
        if m:
            errors.append(m)
    return p.returncode, p.stdout, errors, p.stderr


def find(errors, path_prefix, line, text, stderr):
    """The error for key path `path_prefix...` on `line`; fails listing all errors."""
    for m in errors:
        if m["path"].startswith(path_prefix) and int(m["line"]) == line:
            assert os.path.basename(m["file"]) == "broken.yaml", m.group(0)
            lines = text.splitlines()
            assert 1 <= int(m["col"]) <= len(lines[line - 1]) + 1, m.group(0)
            return m
    raise AssertionError(f"no error for {path_prefix} at line {line}; stderr:\n{stderr}")


def broken(valid_line_edits):
    """VALID with some lines replaced: {line number: new text}."""
    lines = VALID.splitlines()
    for n, new in valid_line_edits.items():
        lines[n - 1] = new
    return "\n".join(lines) + "\n"


def test_valid_file(tmp_path):
    rc, out, errors, err = check(tmp_path, VALID, name="sluice.yaml")
    assert rc == 0, err
    assert out == ""
    assert errors == [], err


def test_check_does_not_start_listening(tmp_path):
    port = free_port()
    text = VALID.replace("18080", str(port))
    rc, _, _, err = check(tmp_path, text)
    assert rc == 0, err
    assert port not in listening_ports()


def test_unknown_key_with_did_you_mean(tmp_path):
    text = broken({9: "    idle_timout: 4m"})
    rc, out, errors, err = check(tmp_path, text)
    assert rc == 1 and out == ""
    m = find(errors, "listeners[0]", 9, text, err)
    assert "idle_timout" in m.group(0)
    assert re.search(r"did you mean.*idle_timeout", m["msg"], re.I), m.group(0)


def test_unknown_top_level_key(tmp_path):
    text = "listners: []\n" + VALID
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1
    m = find(errors, "listners", 1, text, err)
    assert re.search(r"did you mean.*listeners", m["msg"], re.I), m.group(0)


def test_port_out_of_range(tmp_path):
    """The spec's own example: backends[1].servers[0].address: port 70000 out of range."""
    text = VALID + ("  - name: second\n"
                    "    servers:\n"
                    "      - address: \"127.0.0.1:70000\"\n")
    line = len(VALID.splitlines()) + 3
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1
    m = find(errors, "backends[1].servers[0].address", line, text, err)
    assert m["path"] == "backends[1].servers[0].address"
    assert "70000" in m["msg"] and "range" in m["msg"], m.group(0)


def test_duplicate_backend_name(tmp_path):
    text = VALID + ("  - name: pool\n"
                    "    servers: [{address: \"127.0.0.1:9009\"}]\n")
    line = len(VALID.splitlines()) + 1
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1
    m = find(errors, "backends[1].name", line, text, err)
    assert re.search(r"duplicate|already", m["msg"], re.I) and "pool" in m["msg"], m.group(0)


def test_missing_backend(tmp_path):
    text = broken({11: "    backend: nope"})
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1
    m = find(errors, "listeners[0].backend", 11, text, err)
    assert "nope" in m["msg"], m.group(0)


def test_bare_number_duration(tmp_path):
    text = broken({20: "    connect_timeout: 5"})
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1
    m = find(errors, "backends[0].connect_timeout", 20, text, err)
    assert m["msg"] == "duration needs a unit (ms, s, m, h)", m.group(0)


@pytest.mark.parametrize("lineno,new,path,msg", [
    (1, "workers: lots", "workers", "expected an integer (1-256) or auto"),
    (6, "  - name: \"bad name!\"", "listeners[0].name",
     "invalid name 'bad name!' (use 1-64 of A-Z a-z 0-9 _ . -)"),
    (8, "    protocol: udp", "listeners[0].protocol",
     "invalid value 'udp' (expected one of: tcp, tls, http, https)"),
    (16, "      - {address: \"127.0.0.1:9001\", weight: 0}", "backends[0].servers[0].weight",
     "0 out of range (1-256)"),
    (19, "    balance: fastest", "backends[0].balance",
     "invalid value 'fastest' (expected one of: round_robin, least_connections, random_two, "
     "consistent_hash)"),
    (22, "    retries: many", "backends[0].retries", "expected an integer"),
    (7, "    bind: \"127.0.0.1\"", "listeners[0].bind", "missing port"),
])
def test_bad_values(tmp_path, lineno, new, path, msg):
    text = broken({lineno: new})
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1, err
    m = find(errors, path, lineno, text, err)
    assert m["path"] == path and m["msg"] == msg, m.group(0)
    assert len(errors) == 1, err


def test_tcp_listener_to_http_backend_is_an_error(tmp_path):
    text = broken({14: "    protocol: http"})
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1
    assert err.splitlines() == [
        "broken.yaml:11:14: listeners[0].backend: backend 'pool' has protocol http; a tcp "
        "listener needs tcp or tls backends",
        "broken.yaml: 1 error(s)"]


# Every spelling the loader takes for a boolean (docs/configuration.md, Conventions), and
# values that look boolean in some YAML dialect but are refused.
BOOLEANS = [("true", True), ("false", False), ("True", True), ("FALSE", False),
            ("yes", True), ("No", False), ("ON", True), ("off", False), ("'yes'", True),
            ('"false"', False)]
NOT_BOOLEANS = ["1", "0", "y", "n", "maybe", "~", "''", "[true]"]


def test_boolean_spellings_are_read_as_documented(sluice):
    """One server per spelling as `backup`; the admin API shows what each was read as."""
    port, admin_port = free_port(), free_port()
    servers = "".join(f"      - {{address: \"127.0.0.1:{9001 + i}\", backup: {v}}}\n"
                      for i, (v, _) in enumerate(BOOLEANS))
    text = (f"workers: 1\nadmin: {{bind: \"127.0.0.1:{admin_port}\"}}\n"
            f"listeners:\n  - {{name: front, bind: \"127.0.0.1:{port}\", backend: pool}}\n"
            f"backends:\n  - name: pool\n    servers:\n{servers}")
    s = sluice(text)
    s.wait_listening([admin_port])
    status = Admin(admin_port).status()
    for i, (spelling, value) in enumerate(BOOLEANS):
        server = find_server(status, "pool", f"127.0.0.1:{9001 + i}")
        assert server["backup"] is value, f"backup: {spelling} read as {server['backup']}"


@pytest.mark.parametrize("value", NOT_BOOLEANS)
def test_non_boolean_is_refused(tmp_path, value):
    text = broken({16: "      - {address: \"127.0.0.1:9001\", backup: %s}" % value})
    rc, _, errors, err = check(tmp_path, text)
    assert rc == 1, f"backup: {value} accepted"
    m = find(errors, "backends[0].servers[0].backup", 16, text, err)
    assert m["path"] == "backends[0].servers[0].backup", m.group(0)
    assert m["msg"] == "expected true or false", m.group(0)
    assert len(errors) == 1, err


def test_every_error_is_reported(tmp_path):
    text = broken({9: "    idle_timout: 4m", 11: "    backend: nope",
                   20: "    connect_timeout: 5"})
    text += ("  - name: pool\n"
             "    servers:\n"
             "      - address: \"127.0.0.1:70000\"\n")
    rc, out, errors, err = check(tmp_path, text)
    assert rc == 1 and out == ""
    base = len(VALID.splitlines())
    want = [
        ("listeners[0]", 9, "unknown key 'idle_timout' (did you mean 'idle_timeout'?)"),
        ("listeners[0].backend", 11, "unknown backend 'nope'"),
        ("backends[0].connect_timeout", 20, "duration needs a unit (ms, s, m, h)"),
        ("backends[1].name", base + 1, "duplicate backend name 'pool' (first defined on line 13)"),
        ("backends[1].servers[0].address", base + 3, "port 70000 out of range (1-65535)"),
    ]
    for path, line, msg in want:
        m = find(errors, path, line, text, err)
        assert m["msg"] == msg, m.group(0)
    assert len(errors) == len(want), err
    assert err.splitlines()[-1] == f"broken.yaml: {len(want)} error(s)"


def test_yaml_syntax_error_has_position(tmp_path):
    text = VALID.replace("    protocol: tcp\n    idle_timeout", "    protocol: [tcp\n    idle_timeout")
    rc, _, _, err = check(tmp_path, text)
    assert rc == 1
    assert err.splitlines() == [
        "broken.yaml:9:17: YAML syntax error: did not find expected ',' or ']' (while parsing "
        "a flow sequence at line 8)",
        "broken.yaml: 1 error(s)"]


def test_missing_file(tmp_path):
    path = str(tmp_path / "absent.yaml")
    p = subprocess.run([SLUICE_BIN, "-t", "-c", path],
                       capture_output=True, text=True, timeout=scaled(20))
    assert p.returncode == 1
    assert p.stderr.splitlines() == [f"{path}: cannot read: No such file or directory",
                                     f"{path}: 1 error(s)"]


def test_invalid_file_refuses_to_start(tmp_path):
    port = free_port()
    text = broken({11: "    backend: nope"}).replace("18080", str(port))
    (tmp_path / "broken.yaml").write_text(text)
    p = subprocess.run([SLUICE_BIN, "-c", "broken.yaml"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=scaled(20))
    assert p.returncode == 1
    assert p.stderr.splitlines() == ["broken.yaml:11:14: listeners[0].backend: unknown backend "
                                     "'nope'"], p.stderr
