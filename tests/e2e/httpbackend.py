"""A recording HTTP/1.1 server for the HTTP end-to-end tests.

Every request it receives is kept as the exact bytes of its head and body (`requests`),
with the connection it came on, so tests assert on what sluice forwarded byte for byte.
Responses are chosen by path:
    /status/N        -> status N, empty body (HEAD/204/304 without one)
    /chunked         -> a chunked response with a trailer
    /close           -> a close-delimited response (no Content-Length, then FIN)
    /slow/MS         -> answers after MS milliseconds
    /big/N           -> N bytes of body
    /rand/N          -> N pseudo-random bytes of body: rand_body(N)
    /healthz         -> status `health_status` (200 unless a test changes it), empty body
    /ws              -> 101 Switching Protocols, then echoes bytes back
    anything else    -> 200 with "path=<target>\\n"
With answer_expect=True a request with `Expect: 100-continue` gets `100 Continue` before
its body is read (the default never sends one, so that clients' expect timeouts show).
With expect_proxy=True every connection must start with a PROXY protocol header (v1 or
v2), kept byte for byte in `proxy_headers[conn_id]`; a connection without one is closed.

With tls=<server ssl.SSLContext> every connection is TLS (after the PROXY header, if any):
what each handshake negotiated is kept in `tls_info[conn_id]` (sni, alpn, version,
resumed, peer certificate) and a failed one in `tls_errors`; `tls_notified` counts the
connections that sluice ended with close_notify. Two more paths then:
    /tls-close       -> the response, then close_notify and FIN (a server ending a pooled
                        connection cleanly); counted in `tls_closed`
    /ticket          -> the response, then, once the test sets `ticket_go`, a TLS 1.3
                        NewSessionTicket on the now idle connection (`ticket_sent` is set)
"""
import ctypes
import random
import re
import socket
import ssl
import threading
import time


class Request:
    def __init__(self, conn_id, head, body):
        self.conn_id = conn_id
        self.head = head
        self.body = body
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = lines[0].split(" ", 2)
        self.fields = []
        for line in lines[1:]:
            if line:
                k, v = line.split(":", 1)
                self.fields.append((k, v.strip()))

    def get(self, name):
        vals = [v for k, v in self.fields if k.lower() == name.lower()]
        return vals[0] if vals else None

    def names(self):
        return [k.lower() for k, _ in self.fields]


PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_proxy_header(s):
    """Reads one PROXY header (v1 line or v2 block) from s: (header bytes, bytes after)."""
    buf = b""
    while True:
        if buf.startswith(PP2_SIG) and len(buf) >= 16:
            end = 16 + int.from_bytes(buf[14:16], "big")
            if len(buf) >= end:
                return buf[:end], buf[end:]
        elif buf.startswith(b"PROXY ") and b"\r\n" in buf:
            end = buf.index(b"\r\n") + 2
            return buf[:end], buf[end:]
        elif len(buf) >= 16 and not buf.startswith(PP2_SIG) and not buf.startswith(b"PROXY "):
            raise EOFError(f"no PROXY header: {buf!r}")
        if len(buf) > 600:
            raise EOFError("PROXY header too long")
        d = s.recv(1)  # byte by byte: never reads past the header
        if not d:
            raise EOFError
        buf += d


def _ssl_ptr(tls_sock):
    """(libssl, the SSL* of a Python SSLSocket), read from the _ssl object and checked to
    be the one of this socket."""
    lib = ctypes.CDLL("libssl.so.3")
    for name in ("SSL_new_session_ticket", "SSL_do_handshake", "SSL_get_fd"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    # _ssl._SSLSocket: PyObject_HEAD (2 pointers), a weakref to the socket, then SSL *ssl
    ptr = ctypes.c_void_p.from_address(id(tls_sock._sslobj) + 3 * ctypes.sizeof(ctypes.c_void_p))
    assert lib.SSL_get_fd(ptr.value) == tls_sock.fileno(), "not the SSL* of this socket"
    return lib, ptr.value


def send_session_ticket(tls_sock):
    """Sends a TLS 1.3 NewSessionTicket on the established server-side `tls_sock` now,
    outside any handshake (OpenSSL's SSL_new_session_ticket)."""
    lib, ssl_ptr = _ssl_ptr(tls_sock)
    assert lib.SSL_new_session_ticket(ssl_ptr) == 1
    assert lib.SSL_do_handshake(ssl_ptr) == 1  # writes the queued ticket




def rand_body(n):
    """The body of /rand/N: N bytes, the same for the same N."""
    return random.Random(n).randbytes(n)


class HttpBackend:
    def __init__(self, expect_proxy=False, answer_expect=False, tls=None):
        self.expect_proxy = expect_proxy
        self.answer_expect = answer_expect
        self.proxy_headers = {}
        self.health_status = 200
        self.tls = tls
        self.tls_info = {}
        self.tls_errors = []
        self.tls_closed = 0
        self.tls_notified = 0
        self.ticket_go = threading.Event()
        self.ticket_sent = threading.Event()
        self._sni = threading.local()
        if tls is not None:
            # Python's default: an EOF without close_notify reads as a clean end
            tls.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
            tls.sni_callback = lambda sslobj, name, ctx: setattr(self._sni, "name", name)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                cid = self.connections
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    def _read_body(self, s, buf, head):
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        if m:
            n = int(m.group(1))
            while len(buf) < n:
                d = s.recv(65536)
                if not d:
                    raise EOFError
                buf += d
            return buf[:n], buf[n:]
        if re.search(rb"\r\ntransfer-encoding:\s*chunked", head, re.I):
            while True:
                m = re.search(rb"(?:^|\r\n)0(?:;[^\r\n]*)?\r\n(?:[^\r\n]+\r\n)*\r\n", buf)
                if m and self._chunked_complete(buf):
                    end = self._chunked_complete(buf)
                    return buf[:end], buf[end:]
                d = s.recv(65536)
                if not d:
                    raise EOFError
                buf += d
        return b"", buf

    @staticmethod
    def _chunked_complete(buf):
        pos = 0
        while True:
            e = buf.find(b"\r\n", pos)
            if e < 0:
                return None
            size = int(buf[pos:e].split(b";")[0], 16)
            pos = e + 2
            if size == 0:
                while True:
                    e = buf.find(b"\r\n", pos)
                    if e < 0:
                        return None
                    if e == pos:
                        return e + 2
                    pos = e + 2
            pos += size + 2
            if pos > len(buf):
                return None

    def _serve(self, s, cid):
        buf = b""
        try:
            if self.expect_proxy:
                header, buf = read_proxy_header(s)
                with self.lock:
                    self.proxy_headers[cid] = header
            if self.tls is not None:
                t = self._tls_accept(s, cid)
                if t is None:
                    return
                s = t
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:  # on TLS: close_notify (an EOF without it raises)
                        with self.lock:
                            self.tls_notified += self.tls is not None
                        return
                    buf += d
                i = buf.index(b"\r\n\r\n") + 4
                head, buf = buf[:i], buf[i:]
                if self.answer_expect and re.search(rb"\r\nexpect:\s*100-continue", head, re.I):
                    s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, buf = self._read_body(s, buf, head)
                req = Request(cid, head, body)
                with self.lock:
                    self.requests.append(req)
                if not self._respond(s, req):
                    return
        except (OSError, EOFError):
            return
        finally:
            s.close()

    def _tls_accept(self, s, cid):
        """The server side of the TLS handshake on s: the SSLSocket, or None (recorded)."""
        self._sni.name = None
        try:
            t = self.tls.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.tls_errors.append(str(e))
            s.close()
            return None
        with self.lock:
            self.tls_info[cid] = {"sni": self._sni.name, "alpn": t.selected_alpn_protocol(),
                                  "version": t.version(), "resumed": t.session_reused,
                                  "peer": t.getpeercert()}
        return t

    def _respond(self, s, req):
        path = req.target
        head_only = req.method == "HEAD"
        if path.startswith("/slow/"):
            time.sleep(int(path.split("/")[2]) / 1000)
        if path.startswith("/status/") or path == "/healthz":
            code = self.health_status if path == "/healthz" else int(path.split("/")[2])
            s.sendall(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode()
                      if code not in (204, 304) else f"HTTP/1.1 {code} X\r\n\r\n".encode())
            return True
        if path == "/chunked":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
            return True
        if path == "/close":
            s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            return False
        if path == "/ws":
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            while True:
                d = s.recv(65536)
                if not d:
                    return False
                s.sendall(d)
        if path.startswith("/rand/"):
            data = rand_body(int(path.split("/")[2]))
            s.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode())
            if not head_only:
                s.sendall(data)
            return True
        if path.startswith("/big/"):
            n = int(path.split("/")[2])
            s.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
            if not head_only:
                chunk = b"x" * 65536
                while n > 0:
                    s.sendall(chunk[:min(n, 65536)])
                    n -= 65536
            return True
        if path in ("/tls-close", "/ticket") and self.tls is not None:
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            if path == "/ticket":
                if self.ticket_go.wait(30):
                    send_session_ticket(s)
                    self.ticket_sent.set()
                return True
            try:
                s.settimeout(30)  # sluice must act on the close_notify alone
                s.unwrap()  # close_notify; then waits for sluice's answer or its FIN
            except (ssl.SSLError, OSError):
                pass
            with self.lock:
                self.tls_closed += 1
            return False
        body = f"path={path} body={len(req.body)}\n".encode()
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() +
                  b"\r\nX-Conn: " + str(req.conn_id).encode() + b"\r\n\r\n" +
                  (b"" if head_only else body))
        return True

    def close(self):
        self.closed = True
        self.sock.close()
