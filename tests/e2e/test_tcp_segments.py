"""Segments sluice saves on the wire.

- The FIN travels with the last bytes: when a source ends right after its last bytes (a
  server that answers and closes, a client that sends a request and half-closes), sluice
  sends those bytes (for a TLS side: the last records and the close_notify) with MSG_MORE
  and the FIN joins their segment.
- A `tls` listener's sockets start with delayed ACKs (TCP_QUICKACK off on the listening
  socket, inherited): the ACK of the ClientHello rides on the ServerHello instead of
  leaving alone a few microseconds earlier.
Each is one packet, and for the FIN one wakeup of the peer, fewer per connection. These
tests read the segments on the loopback interface (an AF_PACKET socket: root only, with
kernel receive timestamps) and check the flags of the segments around the data."""
import ctypes
import socket
import ssl
import struct
import threading
import time

import pytest

from helpers import accepted, free_port, l4_config, recv_all, scaled, wait_for
from tls_certs import client_context, pki, pool, tls_connect, tls_listener  # noqa: F401

FIN, RST = 0x01, 0x04
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; Python lacks the name
RESPONSE = b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello"
REQUEST = b"GET / HTTP/1.0\r\n\r\n"


SO_ATTACH_FILTER = 26


def port_filter(ports):
    """A classic BPF program (struct sock_fprog) that accepts IPv4 TCP frames on lo whose
    source or destination port is one of `ports`, and drops everything else."""
    ports = list(ports)
    n = len(ports)
    ops = [(0x28, 0, 0, 12),                     # ldh [12]: ethertype
           (0x15, 0, 0, 0x0800),                 # IPv4, else drop (jf set below)
           (0x30, 0, 0, 23),                     # ldb [23]: IP protocol
           (0x15, 0, 0, socket.IPPROTO_TCP),     # TCP, else drop
           (0xB1, 0, 0, 14),                     # ldxb 4*([14]&0xf): IP header length
           (0x48, 0, 0, 14)]                     # ldh [x+14]: source port
    ops += [(0x15, 0, 0, p) for p in ports]
    ops += [(0x48, 0, 0, 16)]                    # ldh [x+16]: destination port
    ops += [(0x15, 0, 0, p) for p in ports]
    ops += [(0x06, 0, 0, 0), (0x06, 0, 0, 0x40000)]  # drop; accept
    drop, accept = len(ops) - 2, len(ops) - 1
    fixed = []
    for i, (code, jt, jf, k) in enumerate(ops):
        if code == 0x15:
            if i in (1, 3):
                jt, jf = 0, drop - i - 1
            else:
                jt, jf = accept - i - 1, 0
        fixed.append(struct.pack("HBBI", code, jt, jf, k))
    prog = b"".join(fixed)
    buf = ctypes.create_string_buffer(prog)
    _FILTERS.append(buf)  # kept alive: the kernel copies it, but only during setsockopt
    return struct.pack("HL", len(fixed), ctypes.addressof(buf))


_FILTERS = []


class LoopbackSegments:
    """Collects (src_port, dst_port, tcp_flags, payload_length, kernel_time_s) of the IPv4
    TCP segments on `lo` that touch one of `ports`, from start to stop()."""

    def __init__(self, ports):
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            pytest.skip("reading segments on lo needs root (AF_PACKET): segments NOT tested")
        # only the segments of our ports reach this socket (a kernel filter): unrelated
        # loopback traffic cannot overflow its buffer and drop ours
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, port_filter(ports))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("lo", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.05)
        self.ports = set(ports)
        self.segments = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                frame, anc, _, addr = self.sock.recvmsg(65600, 64)
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue  # each loopback frame shows up twice: keep the received copy
            stamp = time.time()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", data[:16])
                    stamp = sec + nsec / 1e9
            seg = self._parse(frame)
            if seg and (seg[0] in self.ports or seg[1] in self.ports):
                # (src port, dst port, flags, payload length, time, sequence number)
                self.segments.append(seg[:4] + (stamp, seg[4]))

    @staticmethod
    def _parse(frame):
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            return None
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != socket.IPPROTO_TCP or len(ip) < ihl + 20:
            return None
        tcp = ip[ihl:]
        src, dst, seq = struct.unpack("!HHI", tcp[:8])
        header = (tcp[12] >> 4) * 4
        return src, dst, tcp[13], total - ihl - header, seq

    def _ended(self):
        """True once every connection seen has ended on the wire: a RST, or a FIN from
        each side and then a segment (the ACK) from the side that got the later FIN."""
        conns = {}
        for seg in list(self.segments):
            conns.setdefault(frozenset(seg[:2]), []).append(seg)

        def ended(segs):
            if any(x[2] & RST for x in segs):
                return True
            first_fin = {}
            for i, x in enumerate(segs):
                if x[2] & FIN:
                    first_fin.setdefault(x[0], i)
            if len(first_fin) < 2:
                return False
            side, i = max(first_fin.items(), key=lambda kv: kv[1])
            return any(x[0] != side for x in segs[i + 1:])
        return bool(conns) and all(ended(segs) for segs in conns.values())

    def stop(self):
        try:  # the last segments of the exchange
            wait_for(self._ended, scaled(5), interval=0.01,
                     what="the connections on lo to end (FIN each way and its ACK, or RST)")
        except AssertionError as e:
            raise AssertionError(f"{e}; segments: {self.segments}") from None
        finally:
            self._stop = True
            self._thread.join(timeout=2)
            self.sock.close()
        return self.segments


def from_to(segments, src, dst):
    return [s for s in segments if s[0] == src and s[1] == dst]


def answer_and_close(sock):
    """Backend: reads the request, then sends the response and its FIN in one segment."""
    got = b""
    while b"\r\n\r\n" not in got:
        part = sock.recv(4096)
        if not part:
            return "no request"
        got += part
    sock.send(RESPONSE, socket.MSG_MORE)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(4096):
        pass
    return "answered"


def assert_fin_with_data(segments, src, dst, min_payload):
    """The segments from src to dst carry exactly one FIN, on a segment with at least
    min_payload bytes of data."""
    # a retransmission (same sequence number: a loaded machine) is the same segment
    fins = list({s[5]: s for s in from_to(segments, src, dst) if s[2] & FIN}.values())
    assert len(fins) == 1, from_to(segments, src, dst)
    assert fins[0][3] >= min_payload, (fins, from_to(segments, src, dst))
    assert not any(s[2] & RST for s in from_to(segments, src, dst))


def tcp_proxy(sluice, srv):
    """A sluice with a `tcp` listener in front of server srv. Returns (sluice, port)."""
    port = free_port()
    s = sluice(l4_config(listeners=[{"name": "front", "bind": f"127.0.0.1:{port}",
                                     "protocol": "tcp", "backend": "pool"}],
                         backends=[pool([srv.address])]))
    return s, port


def test_tcp_response_and_fin_leave_in_one_segment(sluice, scripted):
    srv = scripted(answer_and_close)
    s, port = tcp_proxy(sluice, srv)
    seen = LoopbackSegments([port])
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    local = c.getsockname()[1]
    c.sendall(REQUEST)
    assert recv_all(c, timeout=scaled(5)) == RESPONSE
    c.close()
    segments = seen.stop()
    assert_fin_with_data(segments, port, local, len(RESPONSE))
    assert s.log_for(local)["termination"] == "server_closed"
    s.stop()


def test_tcp_request_and_half_close_reach_the_server_in_one_segment(sluice, scripted):
    srv = scripted(answer_and_close)
    s, port = tcp_proxy(sluice, srv)
    seen = LoopbackSegments([srv.port])
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    local = c.getsockname()[1]
    c.send(REQUEST, socket.MSG_MORE)
    c.shutdown(socket.SHUT_WR)  # request and FIN reach sluice together
    assert recv_all(c, timeout=scaled(5)) == RESPONSE
    c.close()
    srv.wait_results(1)
    segments = seen.stop()
    to_server = [seg for seg in segments if seg[1] == srv.port and seg[3] > 0]
    assert len(to_server) == 1, segments
    assert to_server[0][3] == len(REQUEST) and to_server[0][2] & FIN, segments
    assert s.log_for(local)["termination"] == "client_closed"
    s.stop()


def test_tls_records_close_notify_and_fin_leave_in_one_segment(sluice, scripted, pki):
    srv = scripted(answer_and_close)
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([srv.address])]))
    seen = LoopbackSegments([port])
    ctx = client_context(pki, min_version=ssl.TLSVersion.TLSv1_3)
    t = tls_connect(port, ctx, sni="default.example.com", timeout=scaled(5))
    local = t.getsockname()[1]
    t.sendall(REQUEST)
    got = b""
    while True:
        part = t.recv(4096)  # b"" only after a close_notify: an abrupt EOF raises
        if not part:
            break
        got += part
    assert got == RESPONSE
    t.close()
    segments = seen.stop()
    # one TLS 1.3 record with the response (+22 bytes) and the close_notify (24 bytes)
    assert_fin_with_data(segments, port, local, len(RESPONSE) + 22 + 24)
    assert s.log_for(local)["termination"] == "server_closed"
    s.stop()


def test_tls_listener_acks_the_client_hello_with_the_server_hello(sluice, demo, pki):
    d = demo()
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([d.address])]))
    seen = LoopbackSegments([port])
    t = tls_connect(port, client_context(pki), sni="default.example.com", timeout=scaled(5))
    local = t.getsockname()[1]
    t.sendall(b"ping")
    assert t.recv(4) == b"ping"
    t.close()
    segments = seen.stop()
    hello = next(x for x in segments if x[0] == local and x[3] > 0)
    answer = next(x for x in segments if x[0] == port and x[3] > 0)
    assert answer[4] >= hello[4]
    between = [x for x in from_to(segments, port, local) if hello[4] <= x[4] < answer[4]]
    # A bare ACK may only come from the delayed-ACK timer (40 ms and more), when the
    # answer took that long (a loaded machine); an immediate one is what this saves.
    assert all(x[4] - hello[4] > 0.03 for x in between), (between, hello, answer)
    s.stop()


def client_hello_bytes():
    """A real ClientHello, as Python's ssl would send it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="default.example.com")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def seconds_until_acked(sock, timeout):
    """Polls TCP_INFO until nothing sent on sock is unacknowledged; returns the wait."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        if struct.unpack_from("I", info, 24)[0] == 0:  # tcpi_unacked
            return time.monotonic() - start
        time.sleep(0.0005)  # poll interval: the wait is what is measured (0.02 s bound)
    return timeout


def test_tls_listener_acks_a_partial_client_hello_at_once(sluice, demo, pki):
    """The delayed first ACK must not hold up a ClientHello that comes in pieces: a client
    with Nagle's algorithm on (BSD stacks) keeps the short tail of a ClientHello bigger
    than one segment until the first segment is acknowledged. Sluice acknowledges a
    partial ClientHello at once instead of after the kernel's 40 ms delayed-ACK timer."""
    d = demo()
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([d.address])]))
    hello = client_hello_bytes()
    waits = []
    for _ in range(3):
        c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # sluice accepted and tried its first step (same call) on an empty socket
        wait_for(lambda: accepted(port, [c.getsockname()[1]]), scaled(5), interval=0.001,
                 what="sluice to accept the connection")
        c.sendall(hello[:100])
        waits.append(seconds_until_acked(c, 0.5))
        c.sendall(hello[100:])  # the rest: the handshake goes on as usual
        assert c.recv(5)[:1] == b"\x16", "no ServerHello after the whole ClientHello"
        c.close()
    assert min(waits) < 0.02, waits  # without the immediate ACK: 0.04 and more
    s.stop()
