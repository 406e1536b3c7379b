"""The protocol mix of HTTP listeners (issue 13, "Observability"): every request's access
log line carries `protocol` (HTTP/1.0, HTTP/1.1, HTTP/2) and, on https listeners, its
connection's `alpn` and TLS fields (HTTP/2 streams included);
`sluice_http_requests_by_protocol_total{listener,protocol}` and the status API's
`http.requests_by_protocol` count them; `sluice_http2_streams_active` and
`http.http2_streams_active` show the streams open.

Real clients: curl (--http1.0, --http1.1, --http2 over TLS, --http2-prior-knowledge for
h2c) and the Python `h2` library (streams held open), two workers (the counters are
per-worker slots summed when read)."""
import re
import socket
import subprocess
import urllib.request

import test_http2
from helpers import free_port, l4_config, scaled, wait_for
from test_admin import Admin
from test_http2 import Client
from test_http_proxy import read_response
from tls_certs import cert_entry, client_context, pki  # noqa: F401

PROTOCOLS = ("HTTP/1.0", "HTTP/1.1", "HTTP/2")
TLS_FIELDS = ("sni", "alpn", "tls_version", "tls_cipher", "client_subject",
              "client_fingerprint")


def config(pki, port, cport, aport, servers, tls=None, workers=2):
    web = {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "https", "backend": "app",
           "tls": {"certificates": cert_entry(pki.a_ec), **(tls or {})}}
    clear = {"name": "clear", "bind": f"127.0.0.1:{cport}", "protocol": "http",
             "backend": "app", "http": {"h2c": True}}
    be = {"name": "app", "protocol": "http", "servers": [{"address": a} for a in servers]}
    return l4_config([web, clear], [be], workers=workers,
                     admin={"bind": f"127.0.0.1:{aport}"})


def curl(pki, port, paths, args, https=True, cert=None):
    """One curl invocation fetching `paths` in turn; returns the HTTP versions it saw."""
    if https:
        base = f"https://a.example.com:{port}"
        pre = ["--cacert", pki.root.cert, "--resolve", f"a.example.com:{port}:127.0.0.1"]
        if cert is not None:
            pre += ["--cert", cert.cert, "--key", cert.key]
    else:
        base, pre = f"http://127.0.0.1:{port}", []
    argv = ["curl", "-sS", *pre, *args, "-w", "%{http_code} %{http_version}\n"]
    for p in paths:
        argv += ["-o", "/dev/null", base + p]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(20))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0::2] == ["200"] * len(paths), r.stdout
    return lines[1::2]


def metric(aport, name, **labels):
    text = urllib.request.urlopen(f"http://127.0.0.1:{aport}/metrics",
                                  timeout=scaled(5)).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\d+)$", text, re.M)
    assert m, (name, labels)
    return int(m.group(1))


def by_protocol(aport, listener):
    return {p: metric(aport, "sluice_http_requests_by_protocol_total", listener=listener,
                      protocol=p) for p in PROTOCOLS}


def listener_http(admin, name):
    return next(x for x in admin.status()["listeners"] if x["name"] == name)["http"]


def test_protocol_mix_in_log_metric_and_status(sluice, backend, pki):
    """13 requests of known protocols on an https and an h2c listener: each log line has
    the right `protocol`, and on https its connection's `alpn` and TLS fields (absent on
    the clear listener); the metric and the status API count exactly them."""
    b = backend()
    port, cport, aport = free_port(), free_port(), free_port()
    s = sluice(config(pki, port, cport, aport, [b.address]))
    s.wait_listening([port, cport, aport])
    admin = Admin(aport)
    try:
        assert by_protocol(aport, "web") == dict.fromkeys(PROTOCOLS, 0)
        # the path names the protocol each request must be logged with
        # (listener, curl options, https, protocol, count, curl's %{http_version}: the
        # response's, and sluice answers 1.0 requests with an HTTP/1.1 status line)
        plan = [
            ("clear", ["--http1.0"], False, "HTTP/1.0", 2, "1.1"),
            ("clear", ["--http1.1"], False, "HTTP/1.1", 3, "1.1"),
            ("clear", ["--http2-prior-knowledge"], False, "HTTP/2", 2, "2"),
            ("web", ["--http1.0"], True, "HTTP/1.0", 1, "1.1"),
            ("web", ["--http1.1"], True, "HTTP/1.1", 2, "1.1"),
            ("web", ["--http2"], True, "HTTP/2", 3, "2"),
        ]
        want = {"web": dict.fromkeys(PROTOCOLS, 0), "clear": dict.fromkeys(PROTOCOLS, 0)}
        for lst, args, https, proto, n, version in plan:
            paths = [f"/{lst}/{proto.replace('/', '')}/{i}" for i in range(n)]
            if "--http2-prior-knowledge" in args:
                # Debian's curl 7.88.1 fails a second URL on a prior-knowledge connection
                # ("Error in the HTTP2 framing layer" before sending it: curl/curl#10634,
                # fixed in 8.0): one curl, one connection, one stream each
                got = [v for p in paths for v in curl(pki, cport, [p], args, https=False)]
            else:
                got = curl(pki, port if https else cport, paths, args, https=https)
            assert got == [version] * n, (args, got)
            want[lst][proto] += n
        logs = s.access_log(count=13)
        assert len(logs) == 13
        for e in logs:
            lst, proto = e["path"].split("/")[1:3]
            assert e["listener"] == lst and e["status"] == 200, e
            assert e["protocol"].replace("/", "") == proto, e
            if lst == "clear":
                assert not set(TLS_FIELDS) & set(e), e
                continue
            assert e["sni"] == "a.example.com", e
            assert e["tls_version"] == "TLSv1.3" and e["tls_cipher"].startswith("TLS_"), e
            assert "client_subject" not in e and "client_fingerprint" not in e, e
            # curl offers h2 and http/1.1 unless told 1.x; for 1.0 it offers http/1.0,
            # which sluice does not speak: no ALPN, no field
            assert e.get("alpn") == {"HTTP2": "h2", "HTTP1.1": "http/1.1",
                                     "HTTP1.0": None}[proto], e
        # an HTTP/2 connection's streams: one line each, same connection, same fields
        h2 = [e for e in logs if e["listener"] == "web" and e["protocol"] == "HTTP/2"]
        assert len({e["client"] for e in h2}) == 1 and len(h2) == 3

        # the counters: exact per listener and protocol, in the metric and the status
        for lst in ("web", "clear"):
            assert by_protocol(aport, lst) == want[lst], lst
            http = listener_http(admin, lst)
            assert http["requests_by_protocol"] == want[lst], http
            assert http["requests_total"] == sum(want[lst].values())
            assert http["http2_streams_active"] == 0
            assert metric(aport, "sluice_http2_streams_active", listener=lst) == 0
        assert want == {"web": {"HTTP/1.0": 1, "HTTP/1.1": 2, "HTTP/2": 3},
                        "clear": {"HTTP/1.0": 2, "HTTP/1.1": 3, "HTTP/2": 2}}

        # a request line sluice cannot read: 400, "protocol": null, in requests_total only
        c = socket.create_connection(("127.0.0.1", cport), timeout=scaled(5))
        c.sendall(b"GET /x HTTP/1.1 junk\r\nHost: h\r\n\r\n")
        assert read_response(c)[0] == 400
        c.close()
        e = s.access_log(count=14)[-1]
        assert e["status"] == 400 and e["protocol"] is None, e
        wait_for(lambda: listener_http(admin, "clear")["requests_total"] == 8, scaled(5),
                 interval=0.05, what="the 400 counted")
        assert by_protocol(aport, "clear") == want["clear"]
        assert listener_http(admin, "clear")["requests_by_protocol"] == want["clear"]
    finally:
        admin.close()
    s.stop()


def test_streams_gauge_and_mtls_fields_per_stream(sluice, backend, pki, monkeypatch):
    """Three slow streams held open on one HTTP/2 connection (client certificate alice):
    `sluice_http2_streams_active` and `http2_streams_active` are 3 meanwhile, then 0;
    each stream's line carries the connection's TLS fields and client certificate, as
    does an HTTP/1.1 request over TLS."""
    b = backend()
    port, cport, aport = free_port(), free_port(), free_port()
    s = sluice(config(pki, port, cport, aport, [b.address], workers=1,
                      tls={"client_auth": {"mode": "required", "ca": pki.client_ca.cert}}))
    s.wait_listening([port, cport, aport])
    admin = Admin(aport)
    try:
        # test_http2.Client makes its own TLS context: one with alice's certificate
        monkeypatch.setattr(test_http2, "client_context",
                            lambda p, alpn=None: client_context(p, cert=pki.alice, alpn=alpn))
        cl = Client(port, pki)
        sids = [cl.request(f"/slow/{1500 + i}") for i in range(3)]

        def open_now():
            return (metric(aport, "sluice_http2_streams_active", listener="web"),
                    listener_http(admin, "web")["http2_streams_active"])
        wait_for(lambda: open_now() == (3, 3), scaled(3), interval=0.05,
                 what="3 streams open")
        assert metric(aport, "sluice_http2_streams_active", listener="clear") == 0
        assert listener_http(admin, "web")["requests_by_protocol"]["HTTP/2"] == 0
        cl.wait(sids)
        assert all(cl.headers[i][":status"] == "200" for i in sids)
        wait_for(lambda: open_now() == (0, 0), scaled(3), interval=0.05,
                 what="streams closed")
        assert curl(pki, port, ["/one"], ["--http1.1"], cert=pki.alice) == ["1.1"]
        logs = s.access_log(count=4)
        cl.close()
        for e in logs:
            assert e["sni"] == "a.example.com" and e["tls_version"] == "TLSv1.3", e
            assert e["tls_cipher"].startswith("TLS_"), e
            assert re.fullmatch(r"CN=alice,O=sluice tests", e["client_subject"]), e
            assert e["client_fingerprint"] == pki.alice.fingerprint, e
        assert sorted((e["protocol"], e["alpn"]) for e in logs) == [
            ("HTTP/1.1", "http/1.1"), ("HTTP/2", "h2"), ("HTTP/2", "h2"), ("HTTP/2", "h2")]
        want = {"HTTP/1.0": 0, "HTTP/1.1": 1, "HTTP/2": 3}
        assert by_protocol(aport, "web") == want
        assert listener_http(admin, "web")["requests_by_protocol"] == want
    finally:
        admin.close()
    s.stop()
