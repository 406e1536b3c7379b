"""TLS passthrough, at the edges of what a ClientHello may be: the size cap applied to the
byte, and a server_name list that names two hosts (RFC 6066 §3 forbids it; a router that
picked one could route by a name the server never sees)."""
import ssl
import struct

from helpers import connect, free_port, l4_config, recv_line, scaled, wait_closed, wait_for
from test_tls_passthrough import BioClient, Recorder, client_ctx, passthrough
from tls_certs import pki, pool  # noqa: F401


def with_extension(hello, ext_type, body):
    """A single-record ClientHello with one more extension appended; every length on the
    way (record, handshake message, extensions block) is patched."""
    assert hello[0] == 0x16 and hello[5] == 1
    msg = bytearray(hello[5:])
    assert len(msg) == struct.unpack(">H", hello[3:5])[0], "one record expected"
    p = 4 + 2 + 32
    p += 1 + msg[p]                                       # session id
    p += 2 + struct.unpack(">H", msg[p:p + 2])[0]         # cipher suites
    p += 1 + msg[p]                                       # compression methods
    ext_len = struct.unpack(">H", msg[p:p + 2])[0]
    assert p + 2 + ext_len == len(msg)
    msg += struct.pack(">HH", ext_type, len(body)) + body
    msg[p:p + 2] = struct.pack(">H", ext_len + 4 + len(body))
    msg[1:4] = (len(msg) - 4).to_bytes(3, "big")
    return hello[:3] + struct.pack(">H", len(msg)) + bytes(msg)


def sized_hello(pki, size):
    """A real ClientHello for a.example.com whose handshake message is `size` bytes."""
    base = BioClient(client_ctx(pki), "a.example.com").hello
    pad = size - (len(base) - 5) - 4
    assert pad >= 0
    out = with_extension(base, 0xFAFA, b"\0" * pad)  # an unknown type: skipped by parsers
    assert len(out) - 5 == size
    return out


def test_client_hello_max_is_exact(sluice, scripted, pki):
    """client_hello_max: 1k admits a ClientHello of 1024 bytes and refuses one of 1025."""
    rec = Recorder(scripted, "rec")
    port = free_port()
    s = sluice(l4_config(
        listeners=[passthrough(port, [{"match": {"sni": "a.example.com"}, "backend": "rec"}],
                               client_hello_max="1k")],
        backends=[pool([rec.address], name="rec")]))
    at_limit, over = sized_hello(pki, 1024), sized_hello(pki, 1025)
    c = connect(port)
    c.sendall(at_limit)
    assert recv_line(c) == "rec"
    c.close()
    assert rec.srv.wait_results(1)[0] == at_limit
    c = connect(port)
    c.sendall(over)
    assert wait_closed(c, scaled(5))[0] in ("eof", "reset")
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "client_hello_too_large" and e["backend"] is None, e
    assert len(rec.srv.results) == 1
    s.stop()


def two_names_hello(pki, first, second):
    """A real ClientHello whose server_name list holds host_name `first` then `second`."""
    base = BioClient(client_ctx(pki, check_hostname=False), None).hello  # no server_name
    entries = b"".join(b"\0" + struct.pack(">H", len(n)) + n for n in (first, second))
    return with_extension(base, 0, struct.pack(">H", len(entries)) + entries)


def test_two_host_names_in_server_name_refused(sluice, scripted, pki):
    """The list "a.example.com, evil.com" is a bad ClientHello: not routed by either name
    (OpenSSL refuses the same bytes with decode_error)."""
    a, evil = Recorder(scripted, "a"), Recorder(scripted, "evil")
    port = free_port()
    s = sluice(l4_config(
        listeners=[passthrough(port, [{"match": {"sni": "a.example.com"}, "backend": "a"},
                                      {"match": {"sni": "evil.com"}, "backend": "evil"}])],
        backends=[pool([a.address], name="a"), pool([evil.address], name="evil")]))
    for names in ((b"a.example.com", b"evil.com"), (b"evil.com", b"a.example.com")):
        c = connect(port)
        c.sendall(two_names_hello(pki, *names))
        state, _, data = wait_closed(c, scaled(5))
        assert state in ("eof", "reset") and data == b"", (names, data)
        e = s.log_for(c)
        c.close()
        assert e["termination"] == "bad_client_hello", e
        assert e["error"] == "more than one name in server_name", e
        assert e["backend"] is None and "sni" not in e, e
    wait_for(lambda: len(s.access_lines()) == 2, scaled(2), what="2 access log lines")
    assert a.srv.results == [] and evil.srv.results == []
    # the same listener still routes a well-formed hello
    c = connect(port)
    c.sendall(BioClient(client_ctx(pki), "a.example.com").hello)
    assert recv_line(c) == "a"
    c.close()
    s.stop()


def test_openssl_refuses_the_same_bytes(pki):
    """The reference behaviour: an OpenSSL server answers a two-name list with an alert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.a_ec.cert, pki.a_ec.key)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = ctx.wrap_bio(inc, out, server_side=True)
    inc.write(two_names_hello(pki, b"a.example.com", b"evil.com"))
    try:
        srv.do_handshake()
        raise AssertionError("OpenSSL accepted two host names")
    except ssl.SSLError as e:
        assert e.reason == "BAD_EXTENSION", e
    alert = out.read()
    assert alert[0] == 21 and alert[-2:] == b"\x02\x32", alert  # fatal decode_error (50)
