"""EPOLLOUT only while a socket is full.

Proxied sockets are registered for input only: a fresh socket is writable, and with
EPOLLOUT in the interest set every ACK of bytes sent would raise an edge and wake the
worker for nothing. EPOLLOUT joins the set when a write answers EAGAIN (a slow reader),
so that the rest is written once the reader catches up. These tests read the interest
sets from /proc/<pid>/fdinfo of sluice's epoll descriptors."""
import glob
import os
import re
import select
import socket
import time

from helpers import echo_roundtrip, free_port, l4_config, scaled, wait_for
from tls_certs import pool

EPOLLOUT = 0x004


def loopback_tcp_sockets():
    """(local_port, remote_port, inode) of every IPv4 TCP socket, from /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            yield (int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16),
                   int(fields[9]))


def socket_inode(local_port, remote_port):
    """Inode of the TCP socket local_port -> remote_port, or None."""
    return next((i for lp, rp, i in loopback_tcp_sockets()
                 if (lp, rp) == (local_port, remote_port)), None)


def interest(pid, inode):
    """The epoll event mask sluice registered for its socket `inode`, or None."""
    fd = None
    for path in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            if os.readlink(path) == f"socket:[{inode}]":
                fd = int(os.path.basename(path))
        except OSError:
            continue
    if fd is None:
        return None
    for path in glob.glob(f"/proc/{pid}/fdinfo/*"):
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(rf"^tfd:\s+{fd}\s+events:\s+([0-9a-f]+)", text, re.M)
        if m:
            return int(m.group(1), 16)
    return None


def start(sluice, demo):
    d = demo()
    port = free_port()
    s = sluice(l4_config(listeners=[{"name": "front", "bind": f"127.0.0.1:{port}",
                                     "protocol": "tcp", "backend": "pool"}],
                         backends=[pool([d.address])], workers=1))
    return s, port, d


def test_an_established_connection_waits_for_input_only(sluice, demo):
    s, port, d = start(sluice, demo)
    c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    for _ in range(3):
        echo_roundtrip(c)
    client_side = socket_inode(port, c.getsockname()[1])
    mask = wait_for(lambda: interest(s.proc.pid, client_side), scaled(2),
                    what="the client socket in an epoll set")
    assert not mask & EPOLLOUT, hex(mask)
    server_sides = [i for i in (socket_inode(p, d.port) for p in _sluice_ports(s.proc.pid, d.port))
                    if i]
    assert server_sides, "no connection from sluice to the echo server"
    for inode in server_sides:
        m = interest(s.proc.pid, inode)
        assert m is not None and not m & EPOLLOUT, hex(m or 0)
    c.close()
    s.stop()


def test_a_full_socket_waits_for_output_and_loses_nothing(sluice, demo):
    s, port, _ = start(sluice, demo)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # a small reader (before
    c.connect(("127.0.0.1", port))                          # connect: window scaling)
    payload = os.urandom(32 << 20)
    client_side = socket_inode(port, c.getsockname()[1])
    sent = 0
    c.setblocking(False)
    # Push until both directions back up: the echo comes back faster than we read it,
    # so sluice's socket to us fills and its send() says EAGAIN.
    # Our first EAGAIN may come before sluice read anything (a slow, loaded machine):
    # keep pushing while waiting, until sluice's socket to us is full.
    def push_and_look():
        nonlocal sent
        while sent < len(payload):
            try:
                sent += c.send(payload[sent:sent + 65536])
            except BlockingIOError:
                break
        m = interest(s.proc.pid, client_side)
        return m is not None and m & EPOLLOUT and m

    mask = wait_for(push_and_look, scaled(5), what="EPOLLOUT on the full socket")
    assert mask & EPOLLOUT
    got = bytearray()
    deadline = time.monotonic() + scaled(30)
    while len(got) < len(payload):  # now read it all back, sending the rest meanwhile
        assert time.monotonic() < deadline, f"stalled at {len(got)} of {len(payload)}"
        want_write = [c] if sent < len(payload) else []
        readable, writable, _ = select.select([c], want_write, [], 0.5)
        if readable:
            part = c.recv(1 << 20)
            assert part, f"EOF after {len(got)} bytes"
            got += part
        if writable:
            try:
                sent += c.send(payload[sent:sent + 65536])
            except BlockingIOError:
                pass
    assert bytes(got) == payload
    c.close()
    s.stop()


def _sluice_ports(pid, remote_port):
    """Local ports of sluice's connections to remote_port (its sockets' inodes matched
    against /proc/net/tcp)."""
    inodes = set()
    for path in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            link = os.readlink(path)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return [lp for lp, rp, i in loopback_tcp_sockets() if rp == remote_port and i in inodes]
