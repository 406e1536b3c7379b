"""`https` listeners: TLS termination (the listener `tls` block, as for `tls` listeners)
then HTTP/1.1 through the same engine as `http` listeners (shared/spec/http.md).

Real clients (Python ssl, curl, openssl s_client) against the real build/sluice, a
recording HTTP backend behind it; assertions on bytes, statuses, the access log and the
metrics."""
import re
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from helpers import connect, free_port, l4_config, scaled, wait_for
from test_http_proxy import read_response
from tls_certs import cert_entry, client_context, pki  # noqa: F401


def https_config(port, pki, servers, certs=None, tls=None, lhttp=None, routes=None,
                 admin_port=None, protocol="https"):
    lst = {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": protocol, "backend": "app",
           "tls": {"certificates": cert_entry(*(certs or [pki.a_ec, pki.b])), **(tls or {})}}
    if lhttp is not None:
        lst["http"] = lhttp
    if routes is not None:
        lst["routes"] = routes
    be = {"name": "app", "protocol": "http", "servers": [{"address": a} for a in servers]}
    top = {"admin": {"bind": f"127.0.0.1:{admin_port}"}} if admin_port else {}
    return l4_config([lst], [be], workers=1, **top)


def tls_conn(port, pki, sni="a.example.com", cert=None, ragged=True, rcvbuf=None):
    ctx = client_context(pki, cert=cert)
    if not ragged:  # Debian's Python ignores a TCP EOF without close_notify by default
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    raw = socket.socket()
    if rcvbuf:  # a small window: sluice's writes to this client are often partial
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(scaled(10))
    raw.connect(("127.0.0.1", port))
    return ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=ragged)


def get(s, path="/", host="a.example.com", extra=b""):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra + b"\r\n")
    return read_response(s)[:3]


def metrics(admin):
    return urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                  timeout=scaled(5)).read().decode()


def test_https_keepalive_forwarding_and_log(sluice, backend, pki):
    """Requests over one TLS connection reach the backend over one pooled connection, with
    X-Forwarded-Proto: https; each access-log line carries the TLS details."""
    b = backend()
    port = free_port()
    s = sluice(https_config(port, pki, [b.address]))
    c = tls_conn(port, pki)
    assert c.selected_alpn_protocol() is None  # the client offered none
    for i in range(3):
        status, hdrs, body = get(c, f"/r{i}")
        assert status == 200 and body == f"path=/r{i} body=0\n".encode()
    c.close()
    assert len(b.requests) == 3 and b.connections == 1
    head = b.requests[0].head.decode("latin-1")
    assert "\r\nX-Forwarded-Proto: https\r\n" in head, head
    assert "\r\nX-Forwarded-Host: a.example.com\r\n" in head, head
    logs = s.access_log(count=3)
    for e in logs:
        assert e["status"] == 200 and e["termination"] == "complete"
        assert e["sni"] == "a.example.com"
        assert e["tls_version"] == "TLSv1.3" and e["tls_cipher"].startswith("TLS_")
        assert e["protocol"] == "HTTP/1.1"


def test_alpn_and_curl(sluice, backend, pki):
    """ALPN: h2 for a client that offers it (the server's order: h2 first), http/1.1 for
    one that offers only that; curl's default over https gets HTTP/2, --http1.1 HTTP/1.1,
    both verifying the chain."""
    b = backend()
    port = free_port()
    s = sluice(https_config(port, pki, [b.address]))
    for offer, want in ((["http/1.1", "h2"], "h2"), (["http/1.1"], "http/1.1")):
        ctx = client_context(pki, alpn=offer)
        c = ctx.wrap_socket(connect(port), server_hostname="a.example.com")
        assert c.selected_alpn_protocol() == want
        c.close()
    c = client_context(pki, alpn=["http/1.1"]).wrap_socket(connect(port),
                                                          server_hostname="a.example.com")
    assert get(c)[0] == 200
    c.close()
    for args, version in (([], "2"), (["--http1.1"], "1.1")):
        r = subprocess.run(["curl", "-sS", "--cacert", pki.root.cert, "--resolve",
                            f"a.example.com:{port}:127.0.0.1", *args,
                            "-w", "\n%{http_code} %{http_version}",
                            f"https://a.example.com:{port}/curl"],
                           capture_output=True, text=True, timeout=scaled(10))
        assert r.returncode == 0, r.stderr
        assert r.stdout.endswith(f"\n200 {version}"), r.stdout
        assert r.stdout.startswith("path=/curl body=0")
    logs = s.access_log(count=3)
    assert [e["alpn"] for e in logs[-2:]] == ["h2", "http/1.1"]
    assert [e["protocol"] for e in logs[-2:]] == ["HTTP/2", "HTTP/1.1"]


def test_sni_host_check(sluice, backend, pki):
    """sni_host_check (default on): a Host that another certificate serves gets 421 (the
    connection stays usable), a Host on the same certificate passes, and with the check
    off the request is forwarded."""
    b = backend()
    port, admin = free_port(), free_port()
    s = sluice(https_config(port, pki, [b.address], admin_port=admin))
    c = tls_conn(port, pki)
    status, hdrs, body = get(c, host="b.example.com")
    assert status == 421 and b"Misdirected" in body or status == 421
    assert get(c, host="a2.example.com")[0] == 200  # same certificate: fine
    assert get(c, host="A.EXAMPLE.COM:443")[0] == 200  # case and port do not matter
    c.close()
    assert [r.target for r in b.requests] == ["/", "/"]
    e = s.access_log(where=lambda e: e["status"] == 421, count=1)[0]
    assert e["termination"] == "bad_request" and "another certificate" in e["error"]
    text = wait_for(lambda: (lambda t: t if 'reason="misdirected"} 1' in t else None)(
        metrics(admin)), scaled(5), what="misdirected counted")
    assert 'sluice_http_errors_total{listener="web",reason="misdirected"} 1' in text
    s.reload(https_config(port, pki, [b.address], lhttp={"sni_host_check": False},
                          admin_port=admin))
    wait_for(lambda: "generation 2" in s.stderr(), scaled(10), what="reload")
    c = tls_conn(port, pki)
    assert get(c, host="b.example.com")[0] == 200
    c.close()


def test_mtls_variables_reach_the_server(sluice, backend, pki):
    """With client_auth required, the client certificate's subject, fingerprint and
    verification result, the SNI, TLS version and scheme are variables of header actions."""
    b = backend()
    port = free_port()
    routes = [{"match": {"path_prefix": "/"}, "backend": "app",
               "request_headers": {"set": {
                   "X-Client-Subject": "{client_cert_subject}",
                   "X-Client-Fp": "{client_cert_fingerprint}",
                   "X-Client-Verify": "{client_cert_verify}",
                   "X-Sni": "{sni}", "X-Tls": "{tls_version}", "X-Scheme": "{scheme}"}}}]
    sluice(https_config(port, pki, [b.address], routes=routes,
                        tls={"client_auth": {"mode": "required", "ca": pki.client_ca.cert}}))
    c = tls_conn(port, pki, cert=pki.alice)
    assert get(c)[0] == 200
    c.close()
    head = b.requests[0].head.decode("latin-1")
    assert re.search(r"\r\nX-Client-Subject: CN=alice,O=sluice tests\r\n", head), head
    assert f"\r\nX-Client-Fp: {pki.alice.fingerprint}\r\n" in head
    assert "\r\nX-Client-Verify: SUCCESS\r\n" in head
    assert "\r\nX-Sni: a.example.com\r\n" in head
    assert "\r\nX-Tls: TLSv1.3\r\n" in head
    assert "\r\nX-Scheme: https\r\n" in head
    with pytest.raises((ssl.SSLError, OSError)):  # no certificate: refused
        c = tls_conn(port, pki)
        get(c)


def test_large_bodies_both_ways_byte_exact(sluice, backend, pki):
    """8 MiB down then 4 MiB up on one keep-alive TLS connection: bulk records are
    coalesced, and the last of them must leave before the exchange counts as done (else
    the tail would wait for the next request)."""
    b = backend()
    port = free_port()
    sluice(https_config(port, pki, [b.address]))
    c = tls_conn(port, pki, rcvbuf=8192)
    c.settimeout(scaled(20))
    n = 8 << 20
    c.sendall(f"GET /big/{n} HTTP/1.1\r\nHost: a.example.com\r\n\r\n".encode())
    body = bytearray()
    while b"\r\n\r\n" not in body:
        body += c.recv(65536)
    body = body[body.index(b"\r\n\r\n") + 4:]
    while len(body) < n:  # a slow reader: sluice's writes block, records wait in its buffer
        d = c.recv(16384)
        assert d, f"closed after {len(body)} of {n} body bytes"
        body += d
    assert bytes(body) == b"x" * n
    up = bytes(range(256)) * (4 << 12)
    c.sendall(b"POST /up HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: "
              + str(len(up)).encode() + b"\r\n\r\n" + up)
    status, hdrs, body = read_response(c)[:3]
    assert status == 200 and body == f"path=/up body={len(up)}\n".encode()
    assert b.requests[-1].body == up
    status, hdrs, body = get(c, "/chunked")
    assert status == 200 and body.endswith(b"0\r\nX-Trailer: t\r\n\r\n")
    c.close()


def test_close_sends_close_notify(sluice, backend, pki):
    """A response with Connection: close ends with TLS close_notify (a clean TLS EOF, not
    a truncation the client must treat as an attack)."""
    b = backend()
    port = free_port()
    sluice(https_config(port, pki, [b.address]))
    c = tls_conn(port, pki, ragged=False)
    c.settimeout(scaled(5))
    status, hdrs, body = get(c, extra=b"Connection: close\r\n")
    assert status == 200 and hdrs.get("connection") == "close"
    assert c.recv(1) == b""  # raises SSLEOFError without close_notify
    c.close()


def test_handshake_failures_and_timeout(sluice, backend, pki):
    """Garbage instead of a ClientHello, and a client that stalls mid-handshake: both are
    closed (the stall at handshake_timeout), logged tls_error, and counted in
    sluice_tls_handshake_errors_total; neither reaches the backend."""
    b = backend()
    port, admin = free_port(), free_port()
    s = sluice(https_config(port, pki, [b.address], tls={"handshake_timeout": "1s"},
                            admin_port=admin))
    g = connect(port)
    g.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")  # plain HTTP to https
    g.settimeout(scaled(5))
    try:
        g.recv(100)
    except ConnectionResetError:
        pass
    g.close()
    t0 = time.monotonic()
    st = connect(port)
    st.sendall(b"\x16")
    st.settimeout(scaled(5))
    try:
        assert st.recv(100) == b""
    except ConnectionResetError:
        pass
    assert 0.8 < time.monotonic() - t0 < scaled(4)
    st.close()
    logs = s.access_log(count=2)
    assert all(e["termination"] == "tls_error" for e in logs), logs
    assert any("in time" in e["error"] for e in logs), logs
    text = wait_for(lambda: (lambda t: t if 'handshake_errors_total{listener="web"} 2' in t
                             else None)(metrics(admin)), scaled(5), what="2 handshake errors")
    assert 'sluice_tls_handshakes_total{listener="web",version="TLSv1.3"} 0' in text or \
        'sluice_tls_handshakes_total{listener="web"' not in text
    assert b.requests == []
    c = tls_conn(port, pki)  # still serving
    assert get(c)[0] == 200
    c.close()
    text = wait_for(lambda: (lambda t: t if 'version="TLSv1.3"} 1' in t else None)(
        metrics(admin)), scaled(5), what="one TLS 1.3 handshake")


def test_websocket_over_https(sluice, backend, pki):
    """An Upgrade over an https listener becomes a tunnel inside TLS (no splice)."""
    b = backend()
    port = free_port()
    s = sluice(https_config(port, pki, [b.address]))
    c = tls_conn(port, pki)
    c.settimeout(scaled(5))
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: a.example.com\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101 ")
    payload = bytes(range(256)) * 1024
    c.sendall(payload)
    got = b""
    while len(got) < len(payload):
        d = c.recv(65536)
        assert d
        got += d
    assert got == payload
    c.close()
    e = s.access_log(count=1)[0]
    assert e["termination"] == "upgraded" and e["sni"] == "a.example.com"


def test_scheme_in_redirects(sluice, backend, pki):
    """{scheme} is https on an https listener (a redirect that keeps the scheme)."""
    b = backend()
    port = free_port()
    routes = [{"match": {"path_prefix": "/old"},
               "redirect": {"to": "{scheme}://{host}/new", "status": 301}}]
    sluice(https_config(port, pki, [b.address], routes=routes))
    c = tls_conn(port, pki)
    status, hdrs, _ = get(c, "/old")
    c.close()
    assert status == 301 and hdrs["location"] == "https://a.example.com/new"


@pytest.mark.parametrize("lst,msg", [
    ({"protocol": "http", "http": {"sni_host_check": True}},
     "sni_host_check needs an https listener"),
    ({"protocol": "https", "tls_alpn": ["h2", "spdy/3"]}, "speaks h2 and http/1.1, not spdy/3"),
    ({"protocol": "https", "http": {"h2c": True}}, "h2c needs an http listener"),
])
def test_config_refusals(tmp_path, pki, lst, msg):
    from helpers import SLUICE_BIN
    port = free_port()
    d = {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": lst["protocol"],
         "backend": "app"}
    if lst["protocol"] == "https":
        d["tls"] = {"certificates": cert_entry(pki.a_ec)}
        if "tls_alpn" in lst:
            d["tls"]["alpn"] = lst["tls_alpn"]
    if "http" in lst:
        d["http"] = lst["http"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(l4_config([d], [{"name": "app", "protocol": "http",
                                    "servers": [{"address": "127.0.0.1:1"}]}]))
    r = subprocess.run([SLUICE_BIN, "-t", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=scaled(10))
    assert r.returncode != 0 and msg in r.stderr, r.stderr


def test_plain_socket_is_not_spliced(sluice, backend, pki):
    """Sanity: many mid-size keep-alive responses over TLS (the copy path only), all
    byte-exact."""
    b = backend()
    port = free_port()
    sluice(https_config(port, pki, [b.address]))
    c = tls_conn(port, pki)
    c.settimeout(scaled(10))
    for n in (1, 16383, 16384, 16385, 65536, 200000):
        status, _, body = get(c, f"/big/{n}")
        assert status == 200 and body == b"x" * n
    c.close()
