"""PROXY protocol: sending v1/v2 to servers and accepting v1/v2 from a balancer in front."""
import socket
import struct
import time

from helpers import (connect, free_port, l4_config, recv_exact, scaled, wait_closed)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def config(port, server, send=None, accept=False, bind_host="127.0.0.1", pp_timeout=None):
    listener = {"name": "front", "bind": f"{bind_host}:{port}", "backend": "pool"}
    if accept:
        listener["proxy_protocol"] = "accept"
    if pp_timeout:
        listener["proxy_protocol_timeout"] = pp_timeout
    backend = {"name": "pool", "servers": [{"address": server}]}
    if send:
        backend["proxy_protocol"] = send
    return l4_config([listener], [backend])


def start_proxy(sluice, demo, **kw):
    """Starts an echo backend and sluice in front of it (config(port, backend, **kw)).
    Returns (sluice, port)."""
    d = demo("echo")
    port = free_port()
    return sluice(config(port, d.address, **kw)), port


def expect_relayed(s, c, data, want, client):
    """Sends data on c, expects want back and closes c; asserts that the one access log
    entry names client, and returns that entry."""
    c.sendall(data)
    assert recv_exact(c, len(want)) == want
    c.close()
    entry = s.access_log(1)[0]
    assert entry["client"] == client
    return entry


def test_sends_v1_ipv4(sluice, demo):
    s, port = start_proxy(sluice, demo, send="v1")
    c = connect(port)
    c.sendall(b"hello")
    cport = c.getsockname()[1]
    want = f"PROXY TCP4 127.0.0.1 127.0.0.1 {cport} {port}\r\n".encode() + b"hello"
    assert recv_exact(c, len(want)) == want
    c.close()
    s.stop()


def test_sends_v2_ipv4_byte_exact(sluice, demo):
    s, port = start_proxy(sluice, demo, send="v2")
    c = connect(port)
    c.sendall(b"x")
    cport = c.getsockname()[1]
    want = (V2_SIG + b"\x21\x11" + struct.pack("!H", 12) + socket.inet_aton("127.0.0.1") +
            socket.inet_aton("127.0.0.1") + struct.pack("!HH", cport, port) + b"x")
    assert recv_exact(c, len(want)) == want
    c.close()
    s.stop()


def test_sends_v1_and_v2_ipv6(sluice, demo):
    d = demo("echo")
    for version in ("v1", "v2"):
        port = free_port()
        s = sluice(config(port, d.address, send=version, bind_host="[::1]"))
        c = socket.create_connection(("::1", port), timeout=scaled(5))
        c.sendall(b"six")
        cport = c.getsockname()[1]
        if version == "v1":
            want = f"PROXY TCP6 ::1 ::1 {cport} {port}\r\n".encode()
        else:
            lo6 = socket.inet_pton(socket.AF_INET6, "::1")
            want = (V2_SIG + b"\x21\x21" + struct.pack("!H", 36) + lo6 + lo6 +
                    struct.pack("!HH", cport, port))
        want += b"six"
        assert recv_exact(c, len(want)) == want
        c.close()
        s.stop()


def test_accepts_v1_and_passes_real_client_on(sluice, demo):
    s, port = start_proxy(sluice, demo, send="v1", accept=True)
    header = b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n"
    entry = expect_relayed(s, connect(port), header + b"ping", header + b"ping",
                           "203.0.113.7:40000")
    assert entry["bytes_in"] == 4  # the PROXY header itself is not client payload
    s.stop()


def test_accepts_v2_with_tlvs(sluice, demo):
    s, port = start_proxy(sluice, demo, accept=True)
    addr = socket.inet_pton(socket.AF_INET6, "2001:db8::1") + \
        socket.inet_pton(socket.AF_INET6, "2001:db8::2") + struct.pack("!HH", 5555, 443)
    tlv = b"\x02" + struct.pack("!H", 11) + b"example.com"
    body = addr + tlv
    header = V2_SIG + b"\x21\x21" + struct.pack("!H", len(body)) + body
    expect_relayed(s, connect(port), header + b"data", b"data", "[2001:db8::1]:5555")
    s.stop()


def test_header_split_over_segments(sluice, demo):
    s, port = start_proxy(sluice, demo, accept=True)
    c = connect(port)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for ch in b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n":
        c.send(bytes([ch]))
        time.sleep(0.002)  # pacing under test: one segment per byte
    expect_relayed(s, c, b"ok", b"ok", "192.0.2.1:1234")
    s.stop()


def test_rejects_malformed_oversized_and_slow_headers(sluice, demo):
    s, port = start_proxy(sluice, demo, accept=True, pp_timeout="500ms")
    cases = {
        "garbage": b"GET / HTTP/1.0\r\n\r\n",
        "bad_port": b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n",
        "v1_too_long": b"PROXY TCP4 " + b"1" * 200 + b"\r\n",
        "v2_oversized": V2_SIG + b"\x21\x11" + struct.pack("!H", 60000) + b"\x00" * 100,
    }
    socks = {}
    for name, data in cases.items():
        c = connect(port)
        c.sendall(data)
        socks[name] = c
    for name, c in socks.items():
        state, waited, got = wait_closed(c, scaled(3))
        assert state in ("eof", "reset"), name
        assert got == b"", name
        c.close()
    slow = connect(port)
    slow.sendall(b"PROXY TCP4 1.2.")
    state, waited, _ = wait_closed(slow, scaled(5))
    assert state in ("eof", "reset")
    assert 0.4 <= waited <= scaled(2.0)
    entries = s.access_log(5)
    assert all(e["termination"] == "bad_proxy_header" for e in entries), entries
    assert all(e["server"] is None for e in entries)
    s.stop()
