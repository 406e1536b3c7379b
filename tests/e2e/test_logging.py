"""The `log` block: where access log lines go (`access: stdout | stderr | off | path`),
their `format` (json / text), and the process log `level` (error < warn < info < debug).

The file and stdout sinks and the JSON fields are covered by test_l4_accesslog.py and
test_reload.py; this file covers the other values."""
import json
import re

import pytest

from dnsserver import DNSServer
from helpers import (RFC3339_MS, connect, echo_roundtrip, free_port, l4_config, read_text,
                     recv_line, scaled, wait_closed, wait_for)
from test_admin import Admin, find_server
from tls_certs import client_context, pki, pool, tls_connect, tls_listener  # noqa: F401

PROCESS_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (error|warn|info|debug): ")
LEVELS = ["error", "warn", "info", "debug"]


def echo_config(port, address, **top):
    return l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": address}]}], **top)


def json_lines(text):
    """The lines of `text` that are JSON objects (access log lines), parsed."""
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


# ---------------------------------------------------------------------------------------
# log.access


def test_access_log_to_stderr(sluice, demo):
    """`access: stderr`: the JSON lines go to stderr among the process log lines, and
    nothing at all goes to stdout."""
    d = demo("echo")
    port = free_port()
    s = sluice(echo_config(port, d.address, log={"access": "stderr"}))
    c = connect(port)
    local = c.getsockname()[1]
    echo_roundtrip(c, b"to stderr")
    c.close()
    entry = wait_for(lambda: next((e for e in json_lines(s.stderr())
                                   if e["client"] == f"127.0.0.1:{local}"), None),
                     scaled(5), what="the access log line on stderr")
    assert entry["bytes_in"] == 9 and entry["termination"] == "client_closed", entry
    assert "sluice ready" in s.stderr()  # the process log shares the stream
    s.stop()
    assert read_text(s.out_path) == ""


def test_access_log_off(sluice, demo, tmp_path):
    """`access: off`: connections are served and logged nowhere: neither stream nor any
    file (not even one named "off" beside the config) has a line for them, even after a
    clean stop has flushed everything."""
    d = demo("echo")
    port = free_port()
    s = sluice(echo_config(port, d.address, log={"access": "off"}))
    for _ in range(3):
        c = connect(port)
        echo_roundtrip(c, b"unlogged")
        c.close()
    s.stop()
    assert read_text(s.out_path) == ""
    assert json_lines(s.stderr()) == [] and "client_closed" not in s.stderr()
    logged = [p.name for p in tmp_path.iterdir() if p.is_file() and
              "client_closed" in read_text(str(p))]
    assert logged == [], logged


# ---------------------------------------------------------------------------------------
# log.format: text


def text_lines(s):
    return [x for x in read_text(s.out_path).splitlines() if x]


def test_text_format(sluice, demo, blackhole):
    """`format: text`: one line per connection,
    TIME LISTENER CLIENT -> BACKEND/SERVER in=N out=N DURATIONms connect=Nms TERMINATION,
    with "-" for a server never reached and the failure's detail at the end."""
    d = demo("banner", name="hello")
    hole = blackhole()
    port, p_fail = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"},
                   {"name": "doomed", "bind": f"127.0.0.1:{p_fail}", "backend": "hole"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]},
                  {"name": "hole", "servers": [{"address": hole.address}],
                   "connect_timeout": "200ms", "retries": 0}],
        log={"format": "text"}))
    c = connect(port)
    local = c.getsockname()[1]
    assert recv_line(c) == "hello"
    echo_roundtrip(c, b"0123456789")
    c.close()
    line = wait_for(lambda: text_lines(s), scaled(5), what="a text line")[0]
    m = re.fullmatch(r"(\S+) front 127\.0\.0\.1:(\d+) -> pool/(\S+) in=10 out=16 (\d+)ms "
                     r"connect=(\d+)ms client_closed", line)
    assert m, line
    assert RFC3339_MS.match(m.group(1)) and int(m.group(2)) == local, line
    assert m.group(3) == d.address, line
    assert int(m.group(5)) <= int(m.group(4)) < scaled(5000), line
    with pytest.raises(ValueError):
        json.loads(line)

    c = connect(p_fail)
    assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    local = c.getsockname()[1]
    c.close()
    line = wait_for(lambda: text_lines(s)[1:], scaled(5), what="a second text line")[0]
    assert re.fullmatch(rf"\S+ doomed 127\.0\.0\.1:{local} -> hole/- in=0 out=0 \d+ms "
                        r'connect=0ms connect_failed error="connect timeout"', line), line
    s.stop()


def test_text_format_names_the_sni(sluice, demo, pki):
    """On a TLS listener the text line ends with sni=NAME."""
    d = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.a_rsa])],
                         backends=[pool([d.address])], log={"format": "text"}))
    with tls_connect(port, client_context(pki), sni="a.example.com") as t:
        echo_roundtrip(t, b"tls")
        local = t.getsockname()[1]
    line = wait_for(lambda: text_lines(s), scaled(5), what="a text line")[0]
    assert re.fullmatch(rf"\S+ front 127\.0\.0\.1:{local} -> pool/{re.escape(d.address)} "
                        r"in=3 out=3 \d+ms connect=\d+ms client_closed sni=a\.example\.com",
                        line), line
    s.stop()


# ---------------------------------------------------------------------------------------
# log.level


@pytest.mark.parametrize("level", LEVELS)
def test_level_filters_the_process_log(sluice, demo, level):
    """One message of each level is made to happen: a DNS name resolved (debug
    "resolving"), start-up ("sluice ready", info), a probed server that is down (warn), a
    reload of a broken file (error). Those at or above `level` are in the process log,
    those below are not, and no line of a lower level appears at all."""
    d = demo("echo")
    dns = DNSServer()
    try:
        dns.set("svc.test", ["127.0.0.1"], ttl=300)
        dead = f"127.0.0.1:{free_port()}"
        port, aport = free_port(), free_port()
        text = l4_config(
            listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
            backends=[{"name": "pool",
                       "servers": [{"address": f"svc.test:{d.port}"}, {"address": dead}],
                       "health": {"interval": "200ms", "timeout": "200ms",
                                  "healthy_threshold": 1, "unhealthy_threshold": 1}}],
            log={"level": level}, resolver={"nameservers": [dns.address]},
            admin={"bind": f"127.0.0.1:{aport}"})
        s = sluice(text)
        s.wait_listening([aport])
        admin = Admin(aport)

        def settled():  # resolved and probed (both logged, if at all, by now)
            st = admin.status()
            named, down = find_server(st, "pool", f"svc.test:{d.port}"), find_server(st, "pool",
                                                                                     dead)
            return named["usable"] and down["health"]["checked"]
        wait_for(settled, scaled(5), interval=0.1, what="name resolved and dead server probed")
        s.reload(text.replace("protocol: tcp", "protocol: tcpp").replace(
            "backend: pool", "backend: nowhere"))
        wait_for(lambda: "reload rejected" in s.stderr(), scaled(5), what="the rejected reload")
        s.stop()
    finally:
        dns.close()
    err = s.stderr()
    lines = err.splitlines()
    bad = [x for x in lines if not PROCESS_LINE.match(x)]
    assert bad == [], bad  # every line is "TIME LEVEL: message"
    rank = LEVELS.index(level)
    seen = {PROCESS_LINE.match(x).group(2) for x in lines}
    assert seen <= set(LEVELS[:rank + 1]), (level, seen)
    expected = {
        "debug": f"debug: server svc.test:{d.port} of backend pool: resolving svc.test",
        "info": "info: sluice ready: 1 listener(s), 1 backend(s)",
        "warn": f"warn: server {dead} of backend pool is DOWN: connection refused",
        "error": "error: reload rejected: ",
    }
    for msg_level, fragment in expected.items():
        present = fragment in err
        assert present == (LEVELS.index(msg_level) <= rank), (level, fragment, err)
