"""HTTP/2 to servers: backends with `http.version: 2` (shared/spec/http.md "Protocols";
docs/http.md "HTTP/2 to servers and gRPC"). h2c on `http` backends, ALPN h2 on `https`
ones; requests of HTTP/1.1 and HTTP/2 clients multiplexed onto one connection per
server per worker (src/http/h2_up.c).

Servers: h2backend.H2Backend (the `h2` library), which records what it got. Clients:
curl (HTTP/1.1) and the `h2` client of test_http2.py (gRPC-shaped unary and
bidirectional streaming, trailers)."""
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading
import urllib.request

import pytest

from h2backend import H2Backend, grpc_frame, grpc_frames, pattern
from helpers import free_port, l4_config, scaled, wait_for
from test_http2 import Client
from tls_certs import cert_entry, pki  # noqa: F401


@pytest.fixture
def h2backend():
    made = []

    def make(**kw):
        b = H2Backend(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def tls_server_ctx(pki, alpn=("h2",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.backend.cert, pki.backend.key)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def config(servers, http_port, https_port=None, pki=None, protocol="http", admin_port=None,
           bhttp=None, backend_kw=None, workers=1):
    be = {"name": "app", "protocol": protocol, "servers": [{"address": a} for a in servers],
          "http": {"version": "2", **(bhttp or {})}, **(backend_kw or {})}
    if protocol == "https":
        be["tls"] = {"ca": pki.root.cert, "sni": "backend.internal"}
    listeners = [{"name": "web", "bind": f"127.0.0.1:{http_port}", "protocol": "http",
                  "backend": "app", "http": {"h2c": True}}]
    if https_port:
        listeners.append({"name": "secure", "bind": f"127.0.0.1:{https_port}",
                          "protocol": "https", "backend": "app",
                          "tls": {"certificates": cert_entry(pki.a_ec)}})
    top = {"admin": {"bind": f"127.0.0.1:{admin_port}"}} if admin_port else {}
    return l4_config(listeners, [be], workers=workers, **top)


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", str(scaled(10)), *args],
                       capture_output=True, timeout=scaled(20))
    return r


def get_json(port, path, data=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers=headers or {})
    with urllib.request.urlopen(req, timeout=scaled(10)) as r:
        return r.status, dict(r.headers), json.loads(r.read())


def metric(admin_port, name, **labels):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics",
                                  timeout=scaled(5)).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} in /metrics")


def test_http11_clients_to_h2c_server(sluice, h2backend):
    """HTTP/1.1 requests become HTTP/2 streams: pseudo-headers from the request line and
    Host, te: trailers added, hop-by-hop fields gone, bodies (Content-Length and chunked)
    intact; responses with a content-length pass as they are, those without one come
    chunked with their trailers; every request rides one connection."""
    b = h2backend()
    port, admin = free_port(), free_port()
    sluice(config([b.address], port, admin_port=admin))
    status, _, got = get_json(port, "/a/b?x=1", headers={"Connection": "keep-alive",
                                                          "X-Custom": "v1"})
    assert status == 200
    assert got["pseudo"] == {":method": "GET", ":scheme": "http",
                             ":authority": f"127.0.0.1:{port}", ":path": "/a/b?x=1"}
    names = [k for k, _ in got["headers"]]
    assert ("te", "trailers") in [tuple(h) for h in got["headers"]]
    assert "connection" not in names and "host" not in names
    assert ["x-custom", "v1"] in got["headers"]
    body = os.urandom(300_000)
    status, _, got = get_json(port, "/upload", data=body)
    assert got["body_len"] == len(body)
    assert got["body_sha256"] == hashlib.sha256(body).hexdigest()
    # a chunked upload: decoded into DATA frames
    r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
             f"http://127.0.0.1:{port}/chunked-upload")
    assert r.returncode == 0, r.stderr
    # the response without content-length comes chunked, trailers included
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
    s.sendall(b"GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n")
    raw = b""
    while not raw.endswith(b"\r\n\r\n") or b"x-sum" not in raw:
        d = s.recv(65536)
        assert d, raw
        raw += d
    s.close()
    head, rest = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()
    assert rest == b"d\r\none,two,three\r\n0\r\nx-sum: 13\r\n\r\n"
    # 5 MB download, content-length passed
    r = curl("-o", "-", f"http://127.0.0.1:{port}/big?n=5000000")
    assert r.stdout == pattern(5_000_000)
    assert b.connections == 1, "one HTTP/2 connection carries every request"
    assert metric(admin, "sluice_backend_pool_reused_total", backend="app") >= 4
    assert metric(admin, "sluice_server_connections_total", backend="app") == 1


def test_grpc_unary_and_trailers_only_over_https_both_ways(sluice, h2backend, pki):
    """An HTTP/2 client's gRPC call through an https listener to an https backend (ALPN
    h2): messages, grpc-status trailers, and a trailers-only error response pass."""
    b = h2backend(tls_ctx=tls_server_ctx(pki))
    port, sport = free_port(), free_port()
    sluice(config([b.address], port, https_port=sport, pki=pki, protocol="https"))
    c = Client(sport, pki)
    grpc = [("content-type", "application/grpc"), ("te", "trailers")]
    body = grpc_frame(b"hello") + grpc_frame(b"world")
    sid = c.request("/grpc.Echo/Unary", method="POST", body=body, extra=grpc)
    fail = c.request("/grpc.Echo/Fail", method="POST", body=grpc_frame(b"x"), extra=grpc)
    c.wait([sid, fail])
    assert c.headers[sid][":status"] == "200"
    msgs, rest = grpc_frames(bytes(c.data[sid]))
    assert msgs == [b"echo:hello", b"echo:world"] and rest == b""
    assert c.trailers[sid] == {"grpc-status": "0", "grpc-message": "ok"}
    assert c.headers[fail]["grpc-status"] == "12"
    assert fail not in c.data or bytes(c.data[fail]) == b""
    c.close()
    assert b.requests[0]["pseudo"][":scheme"] == "https"
    assert b.connections == 1


def test_grpc_bidirectional_streaming(sluice, h2backend):
    """Each message crosses as soon as it is sent, both ways: the client gets the echo of
    message n before it sends message n+1 (nothing waits for the end of a stream)."""
    b = h2backend()
    port = free_port()
    sluice(config([b.address], port))
    c = Client(port)
    sid = c.request("/grpc.Echo/Bidi", method="POST", end=False,
                    extra=[("content-type", "application/grpc"), ("te", "trailers")])
    for i in range(5):
        msg = f"message-{i}".encode() * (1 + i * 1000)
        c.send_body(sid, grpc_frame(msg), end=False)
        want = grpc_frame(b"echo:" + msg)
        c.pump(lambda: len(c.data.get(sid, b"")) >= (c.__dict__.setdefault("seen", 0) + len(want)))
        got = bytes(c.data[sid])[c.seen:c.seen + len(want)]
        assert got == want
        c.seen += len(want)
    c.c.end_stream(sid)
    c.flush()
    c.wait([sid])
    assert c.trailers[sid] == {"grpc-status": "0", "grpc-message": "ok"}
    c.close()


def test_request_trailers_and_100_streams_byte_exact(sluice, h2backend):
    """100 concurrent streams of one HTTP/2 client, uploads and downloads of mixed sizes,
    come back byte-exact over the HTTP/2 server connection."""
    b = h2backend()
    port = free_port()
    sluice(config([b.address], port))
    c = Client(port)
    sids = {}
    for i in range(100):
        if i % 2:
            body = os.urandom(1000 + i * 3000)
            sid = c.request(f"/up/{i}", method="POST", body=body)
            sids[sid] = ("up", body)
        else:
            n = 1000 + i * 5000
            sid = c.request(f"/big?n={n}")
            sids[sid] = ("down", n)
    c.wait(list(sids))
    for sid, (kind, v) in sids.items():
        assert c.headers[sid][":status"] == "200", (sid, c.reset.get(sid))
        if kind == "up":
            got = json.loads(bytes(c.data[sid]))
            assert got["body_sha256"] == hashlib.sha256(v).hexdigest()
        else:
            assert bytes(c.data[sid]) == pattern(v)
    c.close()
    assert b.connections == 1


def test_server_stream_limit_opens_more_connections(sluice, h2backend):
    """A server that allows 2 concurrent streams gets more connections under 8
    concurrent requests, never more than 2 streams on one."""
    b = h2backend(max_streams=2)
    port = free_port()
    sluice(config([b.address], port))
    get_json(port, "/warm")  # the first connection learns the server's SETTINGS
    results = []

    def one(i):
        results.append(get_json(port, f"/slow?ms=300&i={i}")[0])

    ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(scaled(20))
    assert results == [200] * 8
    assert b.max_open <= 2
    assert b.connections >= 4


def test_failures_connect_refused_reset_and_no_h2_alpn(sluice, h2backend, pki):
    """A server that refuses the connection: 502 after the next server was tried; a
    stream reset by the server: 502; an https server that does not offer h2: 502 with
    the reason logged."""
    good = h2backend()
    dead = free_port()
    port = free_port()
    s = sluice(config([f"127.0.0.1:{dead}", good.address], port,
                      backend_kw={"balance": "round_robin", "retries": 1}))
    for _ in range(4):
        assert get_json(port, "/x")[0] == 200
    r = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/reset")
    assert r.stdout == b"502"
    e = s.access_log(1, where=lambda e: e.get("path") == "/reset")[0]
    assert e["status"] == 502 and e["termination"] == "server_aborted"
    assert e["error"] == "server reset before a complete response head"
    assert len(good.requests) >= 4 and len(s.access_log(4, where=lambda e: e["status"] == 200)) >= 4

    h1only = h2backend(tls_ctx=tls_server_ctx(pki, alpn=("http/1.1",)))
    port2 = free_port()
    s2 = sluice(config([h1only.address], port2, pki=pki, protocol="https"))
    r = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port2}/x")
    assert r.stdout == b"502"
    wait_for(lambda: "did not accept HTTP/2" in s2.stderr(), scaled(5), what="ALPN reason")


def test_idle_connection_closed_after_keepalive_idle_timeout(sluice, h2backend):
    b = h2backend()
    port = free_port()
    sluice(config([b.address], port, backend_kw={"keepalive": {"idle_timeout": "300ms"}}))
    assert get_json(port, "/x")[0] == 200
    wait_for(lambda: b.closed_connections == 1, scaled(5), what="idle session closed")
    assert get_json(port, "/y")[0] == 200
    assert b.connections == 2


def test_config_refuses_proxy_protocol_with_version_2(tmp_path):
    port = free_port()
    cfg = config(["127.0.0.1:9"], port, backend_kw={"proxy_protocol": "v2"})
    path = tmp_path / "c.yaml"
    path.write_text(cfg)
    from helpers import SLUICE_BIN
    r = subprocess.run([SLUICE_BIN, "-t", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "proxy_protocol cannot be used with http.version 2" in r.stderr


def test_disabled_server_connection_finishes_its_stream_then_closes(sluice, h2backend):
    """Admin disable of a server with an HTTP/2 connection: the stream in flight completes,
    then the connection closes (GOAWAY); new requests go to the other server."""
    from test_admin import Admin
    a, b = h2backend(), h2backend()
    port, admin = free_port(), free_port()
    sluice(config([a.address, b.address], port, admin_port=admin,
                  backend_kw={"balance": "round_robin", "drain_timeout": "30s"}))
    out = []
    t = threading.Thread(target=lambda: out.append(get_json(port, "/slow?ms=800")[0]))
    t.start()
    wait_for(lambda: a.connections + b.connections == 1, scaled(5), what="request in flight")
    busy, other = (a, b) if a.connections else (b, a)
    code, _, body = Admin(admin).patch_server("app", busy.address, {"state": "disabled"})
    assert code == 200, body
    t.join(scaled(10))
    assert out == [200]
    wait_for(lambda: busy.closed_connections == 1, scaled(5), what="its connection closed")
    for _ in range(3):
        assert get_json(port, "/x")[0] == 200
    assert len(other.requests) == 3 and busy.connections == 1
