"""Bulk data through TLS: the copy path with read-ahead and the bigger buffer a bulk TLS
direction moves to (16 KiB -> 64 KiB when a read fills the small one).

Every payload is sent and read back at the same time (full duplex, so both directions
are bulk at once) and compared by SHA-256; the access log must count the exact bytes.
Sizes straddle the record size (16 KiB) and the buffer sizes."""
import hashlib
import os
import select
import ssl
import threading
import time

import pytest

from helpers import connect, free_port, l4_config, scaled, tcp_queues, wait_for
from tls_certs import (client_context, pki, pool, sluice_to_sluice, tls_connect,  # noqa: F401
                       tls_listener)

SIZES = [1, 16383, 16384, 16385, 65536 + 7, 1 << 20, 8 << 20]


WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


def duplex_echo(sock, payload, chunk=65536, pause_every=0):
    """Sends payload and reads its echo at the same time, in one thread (an SSL socket
    must not be used from two threads at once): non-blocking sends and receives of up to
    `chunk` bytes, waiting in select() when neither moves. With pause_every, sleeps 20 ms
    after each pause_every bytes read (a slow reader). Returns the bytes read."""
    sock.setblocking(False)
    data = memoryview(payload)
    sent, got = 0, bytearray()
    deadline = time.monotonic() + scaled(60)
    next_pause = pause_every
    while len(got) < len(payload):
        moved = False
        if sent < len(payload):
            try:
                sent += sock.send(data[sent:sent + 65536])
                moved = True
            except WOULD_BLOCK:
                pass
        try:
            part = sock.recv(min(chunk, len(payload) - len(got)))
            if not part:
                raise AssertionError(f"EOF after {len(got)}/{len(payload)} bytes")
            got += part
            moved = True
        except WOULD_BLOCK:
            pass
        if pause_every and len(got) >= next_pause:
            next_pause += pause_every
            time.sleep(0.02)  # the slow reader under test
        if not moved:
            assert time.monotonic() < deadline, f"stalled at {len(got)}/{len(payload)} bytes"
            select.select([sock], [sock] if sent < len(payload) else [], [], 0.05)
    sock.setblocking(True)
    return bytes(got)


@pytest.mark.parametrize("size", SIZES)
def test_tls_listener_echoes_bulk_bytes_exactly(sluice, demo, pki, size):
    b = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([b.address])]))
    payload = os.urandom(size)
    t = tls_connect(port, client_context(pki), sni="default.example.com")
    local = t.getsockname()[1]
    got = duplex_echo(t, payload)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    t.close()
    e = s.log_for(local)
    assert e["bytes_in"] == size and e["bytes_out"] == size, e
    assert e["termination"] == "client_closed", e
    s.stop()


def test_many_bulk_tls_connections_at_once(sluice, demo, pki):
    """Twenty clients push 2 MiB each at the same time through one worker: every byte
    comes back in order on the right connection."""
    b = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([b.address])], workers=1))
    ctx = client_context(pki)
    results = {}

    def client(i):
        payload = os.urandom(2 << 20)
        try:
            with tls_connect(port, ctx, sni="default.example.com", timeout=scaled(30)) as t:
                got = duplex_echo(t, payload)
            results[i] = got == payload
        except Exception as e:  # noqa: BLE001 - collected and reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    assert results == {i: True for i in range(20)}, results
    entries = s.access_log(20)
    assert all(e["bytes_in"] == 2 << 20 and e["bytes_out"] == 2 << 20 for e in entries)
    s.stop()


def test_bulk_through_tls_on_both_sides(sluice, demo, pki):
    """tcp listener -> tls backend (a second sluice terminating TLS) -> echo: 8 MiB both
    ways, re-encrypted by the first sluice and decrypted by the second."""
    outer, inner, port = sluice_to_sluice(sluice, demo("echo").address, pki)
    payload = os.urandom(8 << 20)
    c = connect(port)
    local = c.getsockname()[1]
    got = duplex_echo(c, payload)
    assert got == payload
    c.close()
    e = outer.log_for(local)
    assert e["bytes_in"] == 8 << 20 and e["bytes_out"] == 8 << 20, e
    inner_e = inner.access_log(1)[0]
    assert inner_e["bytes_in"] == 8 << 20 and inner_e["bytes_out"] == 8 << 20, inner_e
    outer.stop()
    inner.stop()


def test_slow_tls_reader_gets_every_byte(sluice, demo, pki):
    """A client that reads 4 KiB at a time, pausing every 256 KiB, while it pushes 4 MiB
    through the echo backend: backpressure through both copy buffers, nothing lost."""
    b = demo("echo")
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([b.address])]))
    payload = os.urandom(4 << 20)
    t = tls_connect(port, client_context(pki), sni="default.example.com")
    assert duplex_echo(t, payload, chunk=4096, pause_every=256 << 10) == payload
    t.close()
    s.stop()


def test_server_closing_after_a_burst_reaches_a_slow_tls_client_whole(sluice, scripted, pki):
    """A server sends 6 MiB and closes at once, while the client has not read yet: the
    records still buffered in sluice (coalesced writes, a full socket) go out before the
    close_notify and FIN, and the log says the server closed."""
    payload = os.urandom(6 << 20)

    def blast(sock):
        sock.sendall(payload)
        sock.close()  # at once, before the result is seen
        return "sent"

    srv = scripted(blast)
    port = free_port()
    s = sluice(l4_config(listeners=[tls_listener(port, [pki.default])],
                         backends=[pool([srv.address])]))
    t = tls_connect(port, client_context(pki), sni="default.example.com")
    local = t.getsockname()[1]
    srv.wait_results(1)  # everything left the server while the client read nothing
    # ... and sluice holds bytes for the client: its socket to the client is full
    wait_for(lambda: (tcp_queues(port, local) or (0, 0))[0] > 0, scaled(5),
             what="bytes queued in sluice's socket to the client")
    got = bytearray()
    t.settimeout(scaled(30))
    while True:
        part = t.recv(1 << 20)
        if not part:
            break
        got += part
    assert len(got) == len(payload) and bytes(got) == payload
    t.close()
    e = s.log_for(local)
    assert e["termination"] == "server_closed" and e["bytes_out"] == len(payload), e
    s.stop()
