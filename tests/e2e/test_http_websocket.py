"""WebSocket through an http listener (shared/spec/http.md, docs/http.md "WebSocket"), with
a real client: Python `websockets` (Debian python3-websockets). Backends: sluice-demo in
websocket mode (RFC 6455 echo in C) and a Python `websockets` server that records what it
sees; raw scripted servers for half-close and reset. What is checked: frames of every kind
and size come back intact, the close handshake's code reaches the other end in both
directions, half-close and reset cross the tunnel, `tunnel_idle_timeout` ends a silent
tunnel (and only a silent one), and the tunnel's whole life is one access-log line with
`termination: upgraded`."""
import asyncio
import random
import socket
import threading
import time
import urllib.request

import websockets

from helpers import free_port, scaled, wait_closed, wait_for
from test_http_proxy import conn, http_config, read_response

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def run(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, scaled(timeout))
    return asyncio.run(bounded())


def client(port, **kw):
    """A websockets client through sluice; no keepalive pings (they would hide idleness)."""
    return websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None, ping_interval=None,
                              close_timeout=scaled(5), **kw)


def tunnels_active(admin_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics",
                                  timeout=scaled(5)).read().decode()
    for line in text.splitlines():
        if line.startswith('sluice_websocket_tunnels_active{listener="web"}'):
            return int(float(line.split()[-1]))
    raise AssertionError("no sluice_websocket_tunnels_active for web")


def test_echo_text_binary_fragments_large_ping_and_close(sluice, demo):
    d = demo("websocket", name="ws-1")
    port, admin_port = free_port(), free_port()
    s = sluice(http_config(port, [d.address], admin_port=admin_port))
    big = random.Random(11).randbytes(16 << 20)
    seen = {}

    async def go():
        async with client(port) as ws:
            seen["served_by"] = ws.response_headers.get("X-Served-By")
            await ws.send("hello, ünïcode")
            seen["text"] = await ws.recv()
            await ws.send(bytes(range(256)))
            seen["binary"] = await ws.recv()
            await ws.send(["frag", "ment", "ed"])  # three frames, FIN on the last
            seen["fragmented"] = await ws.recv()
            await ws.send(b"")
            seen["empty"] = await ws.recv()
            await ws.send(big)
            seen["big"] = await ws.recv()
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, scaled(5))
            seen["active"] = await asyncio.to_thread(tunnels_active, admin_port)
            await ws.close(4001, "client done")
            seen["close"] = (ws.close_code, ws.close_reason)

    run(go())
    assert seen["served_by"] == "ws-1"
    assert seen["text"] == "hello, ünïcode"
    assert seen["binary"] == bytes(range(256))
    assert seen["fragmented"] == "fragmented"
    assert seen["empty"] == b""
    assert seen["big"] == big, "16 MiB message changed on its way"
    assert seen["active"] == 1
    # the server got our close (code and reason) and answered with it
    assert seen["close"] == (4001, "client done")
    lines = s.access_log(1)
    wait_for(lambda: tunnels_active(admin_port) == 0, scaled(5), what="tunnel gauge back to 0")
    assert len(s.access_log()) == 1, "one line for the tunnel's whole life"
    e = lines[0]
    assert e["status"] == 101 and e["termination"] == "upgraded" and e["method"] == "GET", e
    assert e["path"] == "/ws" and e["server"] == d.address, e
    assert e["bytes_in"] > len(big) and e["bytes_out"] > len(big), e
    assert e["bytes_in"] < len(big) + 4096 and e["bytes_out"] < len(big) + 4096, e


class RecordingWsServer:
    """A Python websockets server on its own event loop thread. Each connection's messages
    and the close code/reason it received are kept; the message "close-me CODE" makes it
    close with CODE. With `ssl` (a server SSLContext) it speaks wss."""

    def __init__(self, ssl=None):
        self.ssl = ssl
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sessions = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        self.ready.wait(scaled(5))

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await websockets.serve(self._handler, sock=self.sock, max_size=None,
                                                 ping_interval=None, ssl=self.ssl)
            self.ready.set()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    async def _handler(self, ws, path=None):
        rec = {"path": getattr(ws, "path", path), "headers": dict(ws.request_headers),
               "messages": [], "close": None}
        self.sessions.append(rec)
        try:
            async for msg in ws:
                rec["messages"].append(msg)
                if isinstance(msg, str) and msg.startswith("close-me "):
                    await ws.close(int(msg.split()[1]), "server done")
                    break
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        rec["close"] = (ws.close_code, ws.close_reason)

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.t.join(scaled(5))


def test_close_code_reaches_the_other_end_both_ways(sluice):
    srv = RecordingWsServer()
    try:
        port = free_port()
        s = sluice(http_config(port, [srv.address]))
        got = {}

        async def go():
            async with client(port) as ws:  # client closes
                await ws.send("one")
                got["echo"] = await ws.recv()
                await ws.close(4001, "client bye")
                got["client_close"] = (ws.close_code, ws.close_reason)
            async with client(port) as ws:  # server closes
                await ws.send("close-me 4002")
                try:
                    await ws.recv()
                    raise AssertionError("message after the server's close")
                except websockets.ConnectionClosed:
                    pass
                got["server_close"] = (ws.close_code, ws.close_reason)

        run(go())
        assert got["echo"] == "one"
        wait_for(lambda: len(srv.sessions) == 2 and all(r["close"] for r in srv.sessions),
                 scaled(5), what="both sessions closed at the server")
        first, second = srv.sessions
        assert first["messages"] == ["one"]
        assert first["close"] == (4001, "client bye"), "the server saw the client's close code"
        assert got["client_close"] == (4001, "client bye")
        assert second["close"] == (4002, "server done")
        assert got["server_close"] == (4002, "server done"), "the client saw the server's code"
        # forwarded as an upgrade: the handshake fields reached the server
        h = {k.lower(): v for k, v in first["headers"].items()}
        assert h["upgrade"] == "websocket" and "sec-websocket-key" in h
        assert h["x-forwarded-for"] == "127.0.0.1"
        lines = s.access_log(2)
        assert [e["termination"] for e in lines] == ["upgraded", "upgraded"], lines
    finally:
        srv.close()


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(4096)
        if not d:
            raise EOFError(buf)
        buf += d
    return buf


def recv_until_eof(sock):
    data = bytearray()
    while True:
        d = sock.recv(65536)
        if not d:
            return bytes(data)
        data += d


SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def upgraded(port):
    """A client connection through sluice that got its 101; returns (socket, bytes after)."""
    c = conn(port)
    c.sendall(UPGRADE)
    st, _, _, rest = read_response(c)
    assert st == 101
    return c, rest


def test_client_half_close_crosses_the_tunnel(sluice, scripted):
    """Client FIN first: the server reads to EOF, then still answers on its open side."""
    def handler(sock):
        read_head(sock)
        sock.sendall(SWITCH)
        got = recv_until_eof(sock)  # ends only when the client's FIN came through
        sock.sendall(b"after your FIN: " + got)
        return got

    srv = scripted(handler)
    port = free_port()
    s = sluice(http_config(port, [srv.address]))
    c, rest = upgraded(port)
    payload = random.Random(3).randbytes(1 << 20)
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    assert rest + recv_until_eof(c) == b"after your FIN: " + payload
    assert srv.wait_results(1) == [payload]
    c.close()
    e = s.access_log(1)[0]
    assert e["termination"] == "upgraded" and e["error"] == "client_closed", e


def test_server_half_close_crosses_the_tunnel(sluice, scripted):
    """Server FIN first: the client sees EOF, then its bytes still reach the server."""
    def handler(sock):
        read_head(sock)
        sock.sendall(SWITCH + b"bye")
        sock.shutdown(socket.SHUT_WR)
        return recv_until_eof(sock)

    srv = scripted(handler)
    port = free_port()
    s = sluice(http_config(port, [srv.address]))
    c, rest = upgraded(port)
    c.settimeout(scaled(5))
    assert rest + recv_until_eof(c) == b"bye"
    payload = random.Random(4).randbytes(1 << 20)
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    assert srv.wait_results(1) == [payload]
    c.close()
    e = s.access_log(1)[0]
    assert e["termination"] == "upgraded" and e["error"] == "server_closed", e


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_reset_crosses_the_tunnel_both_ways(sluice, scripted):
    go_reset = threading.Event()

    def handler(sock):
        read_head(sock)
        sock.sendall(SWITCH)
        data = sock.recv(100)
        if data == b"reset me":
            sock.sendall(b"ok")
            go_reset.wait(scaled(5))
            rst_close(sock)
            return "server reset"
        sock.sendall(b"held")
        state, _, _ = wait_closed(sock, scaled(5))  # the client resets: so must we see
        return state

    srv = scripted(handler)
    port = free_port()
    s = sluice(http_config(port, [srv.address]))
    # the server aborts: the client gets a reset, not a clean EOF
    c, _ = upgraded(port)
    c.sendall(b"reset me")
    assert c.recv(2) == b"ok"
    go_reset.set()
    state, _, _ = wait_closed(c, scaled(5))
    assert state == "reset", state
    c.close()
    # the client aborts: the server's side is reset too
    c, _ = upgraded(port)
    c.sendall(b"hold")
    assert c.recv(4) == b"held"
    rst_close(c)
    assert srv.wait_results(2) == ["server reset", "reset"]
    lines = s.access_log(2)
    assert [e["error"] for e in lines] == ["Connection reset by peer"] * 2, lines
    assert all(e["termination"] == "upgraded" for e in lines), lines


def test_tunnel_idle_timeout_ends_a_silent_tunnel_only(sluice, demo):
    d = demo("websocket")
    port = free_port()
    s = sluice(http_config(port, [d.address], lhttp={"tunnel_idle_timeout": "600ms"}))
    out = {}

    async def go():
        async with client(port) as ws:
            # traffic every 200 ms for 2 s: more than three timeouts long, never idle
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < 2.0:
                await ws.send(f"tick {n}")
                assert await ws.recv() == f"tick {n}"
                t1 = time.monotonic()
                n += 1
                await asyncio.sleep(0.2)
            out["alive_for"] = time.monotonic() - t0
            # then silence (since t1, the last echo): sluice closes both sides
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                out["closed_after"] = time.monotonic() - t1
                out["code"] = e.code

    run(go())
    assert out["alive_for"] >= 2.0
    assert 0.5 <= out["closed_after"] < scaled(3), out
    assert out["code"] == 1006, "no close frame: sluice ends the TCP connection"
    e = s.access_log(1)[0]
    assert e["status"] == 101 and e["termination"] == "upgraded", e
    assert e["error"] == "tunnel idle timeout", e
    assert 2400 <= e["duration_ms"] < 2000 + scaled(3) * 1000, e
    assert len(s.access_log()) == 1
