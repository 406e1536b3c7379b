"""TLS passthrough: a `tcp` listener with `match.sni` / `match.alpn` routes reads the
ClientHello without consuming it, picks a backend, and forwards the client's bytes
untouched (TLS is not terminated).

ClientHellos are made by Python's ssl module over a MemoryBIO, then written as the test
wants: whole, one byte per segment, re-framed into many small TLS records, or grown past
1,500 bytes. Either the handshake is completed end to end through sluice with a real TLS
server (which proves the bytes arrived unchanged, since the handshake transcript covers
them), or a recording server compares the bytes it got with what was sent."""
import socket
import ssl
import struct
import time

import pytest

from helpers import (connect, free_port, l4_config, recv_line, scaled, wait_closed,
                     wait_for)
from tls_certs import pki, pool  # noqa: F401


class BioClient:
    """A TLS client driven by hand: .hello is its ClientHello (raw stream bytes), then
    .finish(sock) completes the handshake over any socket."""

    def __init__(self, ctx, sni):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.out.read()

    def _feed(self, sock):
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("EOF during the TLS exchange")
        self.inc.write(data)

    def finish(self, sock):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = self.out.read()
                if pending:
                    sock.sendall(pending)
                self._feed(sock)
        pending = self.out.read()
        if pending:
            sock.sendall(pending)

    def send(self, sock, data):
        self.obj.write(data)
        sock.sendall(self.out.read())

    def recv_exact(self, sock, n):
        buf = b""
        while len(buf) < n:
            try:
                buf += self.obj.read(n - len(buf))
            except ssl.SSLWantReadError:
                out = self.out.read()
                if out:
                    sock.sendall(out)
                self._feed(sock)
        return buf


def reframe(hello, size):
    """The same handshake bytes re-framed into TLS records of at most `size` bytes."""
    assert hello[0] == 22
    version = hello[1:3]
    body = hello[5:5 + struct.unpack(">H", hello[3:5])[0]]
    assert len(body) + 5 == len(hello), "one record expected"
    out = b""
    for i in range(0, len(body), size):
        chunk = body[i:i + size]
        out += b"\x16" + version + struct.pack(">H", len(chunk)) + chunk
    return out


def client_ctx(p, alpn=None, check_hostname=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(p.root.cert)
    ctx.check_hostname = check_hostname
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TlsEcho:
    """A TLS server (certificate for the given name) that answers "NAME:" + each chunk."""

    def __init__(self, scripted, cert, name):
        self.name = name.encode()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        self.ctx.set_alpn_protocols(["h2", "x-proto", "http/1.1"])
        self.srv = scripted(self._handle)
        self.address = self.srv.address

    def _handle(self, sock):
        with self.ctx.wrap_socket(sock, server_side=True) as t:
            while True:
                data = t.recv(65536)
                if not data:
                    return "done"
                t.sendall(self.name + b":" + data)


class Recorder:
    """A server that writes "NAME\\n" and then records every byte until EOF."""

    def __init__(self, scripted, name):
        self.name = name

        def handle(sock):
            sock.sendall(name.encode() + b"\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        self.srv = scripted(handle)
        self.address = self.srv.address


def passthrough(port, routes, default=None, **listener):
    lst = {"name": "edge", "bind": f"127.0.0.1:{port}", "protocol": "tcp", "routes": routes,
           **listener}
    if default:
        lst["backend"] = default
    return lst


def send_slowly(sock, data, step=1, pause=0.001):
    for i in range(0, len(data), step):
        sock.sendall(data[i:i + step])
        time.sleep(pause)  # pacing under test: the hello in separate segments


@pytest.fixture
def tls_pair(sluice, scripted, pki):
    """sluice with routes a.example.com -> A, *.example.com -> W (a TLS server for the
    wildcard), alpn x-proto -> X; no default backend."""
    a = TlsEcho(scripted, pki.a_ec, "A")
    w = TlsEcho(scripted, pki.wild, "W")
    x = TlsEcho(scripted, pki.b, "X")
    port = free_port()
    routes = [{"match": {"sni": "*.example.com"}, "backend": "w"},
              {"match": {"sni": "a.example.com"}, "backend": "a"},
              {"match": {"alpn": "x-proto"}, "backend": "x"}]
    s = sluice(l4_config(listeners=[passthrough(port, routes)],
                         backends=[pool([a.address], name="a"), pool([w.address], name="w"),
                                   pool([x.address], name="x")]))
    return s, port


def roundtrip(port, bio, write_hello):
    c = connect(port)
    write_hello(c, bio.hello)
    bio.finish(c)
    bio.send(c, b"hello")
    reply = bio.recv_exact(c, 7)
    local = c.getsockname()[1]
    c.close()
    return reply, local


def test_sni_routing_whole_hello(tls_pair, pki):
    s, port = tls_pair
    for sni, want in (("a.example.com", b"A"), ("c.example.com", b"W")):
        reply, local = roundtrip(port, BioClient(client_ctx(pki), sni), lambda c, h: c.sendall(h))
        assert reply == want + b":hello"
        e = s.log_for(local)
        assert e["sni"] == sni and e["backend"] == want.decode().lower(), e
        assert "tls_version" not in e  # not terminated here


def test_hello_one_byte_per_segment(tls_pair, pki):
    s, port = tls_pair
    bio = BioClient(client_ctx(pki), "a.example.com")
    reply, local = roundtrip(port, bio, lambda c, h: send_slowly(c, h))
    assert reply == b"A:hello"
    assert s.log_for(local)["backend"] == "a"


def test_hello_split_into_many_records(tls_pair, pki):
    s, port = tls_pair
    bio = BioClient(client_ctx(pki), "a.example.com")
    records = reframe(bio.hello, 100)
    assert records.count(b"\x16\x03") >= len(bio.hello) // 100
    reply, local = roundtrip(port, bio, lambda c, h: send_slowly(c, reframe(h, 100), step=105))
    assert reply == b"A:hello"
    # and 1-byte records, all in one write
    bio = BioClient(client_ctx(pki), "c.example.com")
    reply, local = roundtrip(port, bio, lambda c, h: c.sendall(reframe(h, 1)))
    assert reply == b"W:hello"


def test_large_hello_and_alpn_route(tls_pair, pki):
    s, port = tls_pair
    big = ["x-proto"] + [f"p{i:02d}-" + "z" * 56 for i in range(40)]
    bio = BioClient(client_ctx(pki, alpn=big, check_hostname=False), "other.test")
    assert len(bio.hello) > 1500, len(bio.hello)
    reply, local = roundtrip(port, bio, lambda c, h: send_slowly(c, h, step=500))
    assert reply == b"X:hello"
    e = s.log_for(local)
    assert e["backend"] == "x" and e["alpn"] == "x-proto" and e["sni"] == "other.test", e
    assert bio.obj.selected_alpn_protocol() == "x-proto"


def test_wildcard_vs_exact_and_depth(sluice, scripted):
    recs = {n: Recorder(scripted, n) for n in ("exact", "wild", "dflt")}
    port = free_port()
    routes = [{"match": {"sni": "*.example.com"}, "backend": "wild"},
              {"match": {"sni": "a.example.com"}, "backend": "exact"}]
    s = sluice(l4_config(listeners=[passthrough(port, routes, default="dflt")],
                         backends=[pool([r.address], name=n) for n, r in recs.items()]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for sni, want in (("a.example.com", "exact"), ("A.EXAMPLE.COM", "exact"),
                      ("b.example.com", "wild"), ("x.y.example.com", "wild"),
                      ("example.com", "dflt"), ("a.example.org", "dflt")):
        c = connect(port)
        c.sendall(BioClient(ctx, sni).hello)
        assert recv_line(c) == want, sni
        c.close()
    s.stop()


def test_backend_gets_the_exact_bytes(sluice, scripted, pki):
    rec = Recorder(scripted, "rec")
    port = free_port()
    s = sluice(l4_config(listeners=[passthrough(port, [{"match": {"sni": "a.example.com"},
                                                        "backend": "rec"}])],
                         backends=[pool([rec.address], name="rec")]))
    hello = reframe(BioClient(client_ctx(pki), "a.example.com").hello, 77)
    tail = bytes(range(256)) * 300
    c = connect(port)
    send_slowly(c, hello[:50])
    c.sendall(hello[50:] + tail)
    assert recv_line(c) == "rec"
    c.shutdown(socket.SHUT_WR)
    assert wait_closed(c, scaled(5))[0] == "eof"
    c.close()
    got = rec.srv.wait_results(1)[0]
    assert got == hello + tail
    e = s.access_log(1)[0]
    assert e["bytes_in"] == len(hello) + len(tail) and e["bytes_out"] == 4, e
    s.stop()


def test_no_sni_goes_to_default(sluice, scripted, pki):
    rec, dflt = Recorder(scripted, "rec"), Recorder(scripted, "dflt")
    port = free_port()
    s = sluice(l4_config(
        listeners=[passthrough(port, [{"match": {"sni": "a.example.com"}, "backend": "rec"}],
                               default="dflt")],
        backends=[pool([rec.address], name="rec"), pool([dflt.address], name="dflt")]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    hello = BioClient(ctx, None).hello
    c = connect(port)
    c.sendall(hello)
    assert recv_line(c) == "dflt"
    local = c.getsockname()[1]
    c.close()
    e = s.log_for(local)
    assert e["backend"] == "dflt" and "sni" not in e, e
    assert dflt.srv.wait_results(1)[0] == hello
    s.stop()


def test_not_tls_default_or_closed(sluice, scripted):
    dflt = Recorder(scripted, "dflt")
    routes = [{"match": {"sni": "a.example.com"}, "backend": "dflt"}]
    port, port2 = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[passthrough(port, routes, default="dflt"),
                   dict(passthrough(port2, routes), name="strict")],
        backends=[pool([dflt.address], name="dflt")]))
    c = connect(port)
    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert recv_line(c) == "dflt"
    local = c.getsockname()[1]
    c.close()
    assert dflt.srv.wait_results(1)[0] == b"SSH-2.0-OpenSSH_9.2\r\n"
    e = s.log_for(local)
    assert e["backend"] == "dflt", e
    c = connect(port2)
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    state, _, data = wait_closed(c, scaled(5))
    assert state in ("eof", "reset") and data == b""
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "no_route" and e["backend"] is None, e
    assert e["error"] == "not a TLS client", e
    s.stop()


def test_no_route_for_sni_without_default(tls_pair, pki):
    s, port = tls_pair
    c = connect(port)
    c.sendall(BioClient(client_ctx(pki), "nothing.test").hello)
    state, _, _ = wait_closed(c, scaled(5))
    assert state in ("eof", "reset")
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "no_route" and e["sni"] == "nothing.test", e


def test_hello_timeout_too_large_and_malformed(sluice, scripted, pki):
    rec = Recorder(scripted, "rec")
    port = free_port()
    s = sluice(l4_config(
        listeners=[passthrough(port, [{"match": {"sni": "a.example.com"}, "backend": "rec"}],
                               default="rec", client_hello_timeout="300ms",
                               client_hello_max="1k")],
        backends=[pool([rec.address], name="rec")]))
    hello = BioClient(client_ctx(pki), "a.example.com").hello
    silent, partial = connect(port), connect(port)
    partial.sendall(hello[:20])
    t0 = time.monotonic()
    for c in (silent, partial):
        assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    assert 0.2 < time.monotonic() - t0 < scaled(3)
    for c in (silent, partial):
        e = s.log_for(c)
        assert e["termination"] == "hello_timeout" and e["error"] == "no ClientHello in time", e
        c.close()
    big = BioClient(client_ctx(pki, alpn=[f"p{i:02d}-" + "z" * 56 for i in range(40)]),
                    "a.example.com").hello
    assert len(big) > 1024
    c = connect(port)
    c.sendall(big)
    assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    assert s.log_for(c)["termination"] == "client_hello_too_large"
    c.close()
    c = connect(port)
    c.sendall(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00")  # a ServerHello, not a ClientHello
    assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    assert s.log_for(c)["termination"] == "bad_client_hello"
    c.close()
    wait_for(lambda: len(s.access_lines()) == 4, scaled(2), what="4 lines")
    assert rec.srv.results == []
    s.stop()


def test_default_route_reason_is_logged(sluice, scripted):
    """A client routed to the default backend because it sent no SNI, or no TLS at all,
    keeps the reason in the `error` field of its access log line, even when the
    connection then ends normally."""
    dflt = Recorder(scripted, "dflt")
    port = free_port()
    s = sluice(l4_config(
        listeners=[passthrough(port, [{"match": {"sni": "a.example.com"}, "backend": "dflt"}],
                               default="dflt")],
        backends=[pool([dflt.address], name="dflt")]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    locals_ = []
    for data in (BioClient(ctx, None).hello, b"SSH-2.0-OpenSSH_9.2\r\n"):
        c = connect(port)
        c.sendall(data)
        assert recv_line(c) == "dflt"
        locals_.append(c.getsockname()[1])
        c.close()
    assert s.log_for(locals_[0]).get("error") == "ClientHello without SNI"
    assert s.log_for(locals_[1]).get("error") == "not a TLS client"
    s.stop()
