"""`tls` backends: the TLS handshake towards a server is part of connecting to it, so
it is bounded by the backend's `connect_timeout`, not by the idle `timeout`."""
import socket
import time

from helpers import connect, free_port, l4_config, scaled, wait_closed
from test_tls_backend import front, tls_backend
from tls_certs import pki, pool  # noqa: F401


def test_tls_handshake_to_a_silent_server_is_timed_by_connect_timeout(sluice, pki):
    """The server accepts TCP (the kernel completes the handshake) and never answers the
    ClientHello: the client is closed after connect_timeout (400ms), far before the idle
    timeouts (10s), logged as tls_error with the reason."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accept()ed: connect() succeeds, nothing is ever answered
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        backend = dict(tls_backend([address], pki.root.cert), connect_timeout="400ms",
                       timeout="10s", retries=0)
        port = free_port()
        s = sluice(l4_config(listeners=[dict(front(port, "pool"), idle_timeout="10s")],
                             backends=[backend]))
        c = connect(port)
        t0 = time.monotonic()
        state, _, data = wait_closed(c, scaled(8))
        waited = time.monotonic() - t0
        assert state in ("eof", "reset") and data == b"", (state, data)
        assert 0.35 <= waited < scaled(2), f"closed after {waited:.2f}s"
        e = s.log_for(c)
        c.close()
        assert e["termination"] == "tls_error", e
        assert e["error"] == "TLS handshake with server timed out", e
        assert e["server"] == address and e["retries"] == 0, e
        assert 380 <= e["duration_ms"] < 2000, e
        s.stop()
    finally:
        silent.close()
