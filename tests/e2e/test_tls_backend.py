"""`tls` backends: sluice opens TLS to the servers (re-encryption).

Servers are Python ssl servers (which record the SNI they were sent, the client
certificate they saw and whether the session was resumed) or a second sluice with a `tls`
listener. Checked: chain and name verification (IP SAN, `sni`), refusal with the reason
in both logs, `verify: false`, backend mutual TLS, session resumption towards a server,
and `health: {type: tls}` probes."""
import ssl

import pytest

from helpers import connect, echo_roundtrip, free_port, l4_config, scaled, wait_closed, wait_for
from tls_certs import pki, pool, sluice_to_sluice  # noqa: F401


class TlsServer:
    """A TLS echo server on a ScriptedServer: every connection's outcome is appended to
    .results as a dict (sni, peer, version, resumed) or {"error": text}."""

    def __init__(self, scripted, cert, client_ca=None, min_version=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        if min_version:
            self.ctx.minimum_version = min_version
        if client_ca is not None:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(client_ca.cert)
        self.snis = []
        self.ctx.sni_callback = lambda sslobj, name, ctx: self.snis.append(name) or None
        self.srv = scripted(self._handle)
        self.address = self.srv.address

    def _handle(self, sock):
        try:
            t = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            return {"error": str(e)}
        res = {"peer": t.getpeercert(), "version": t.version(), "resumed": t.session_reused,
               "sni": self.snis[-1] if self.snis else None}
        try:
            while True:
                data = t.recv(65536)
                if not data:
                    break
                t.sendall(data)
        except (ssl.SSLError, OSError) as e:
            res["io_error"] = str(e)
        return res

    @property
    def results(self):
        return self.srv.results

    def wait(self, n):
        return self.srv.wait_results(n)


def front(port, backend):
    return {"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
            "backend": backend}


def tls_backend(addresses, ca, name="pool", health=None, **tls):
    b = pool(addresses, name=name, protocol="tls", tls={"ca": ca, **tls})
    if health:
        b["health"] = health
    return b


def start(sluice, backend):
    port = free_port()
    s = sluice(l4_config(listeners=[front(port, backend["name"])], backends=[backend]))
    return s, port


def test_verified_by_ip_san_no_sni_for_an_ip(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert))
    c = connect(port)
    local = c.getsockname()[1]
    echo_roundtrip(c, b"through TLS" * 1000)
    c.close()
    r = srv.wait(1)[0]
    assert "error" not in r, r
    assert r["sni"] is None  # never sent for an IP address
    e = s.log_for(local)
    assert e["termination"] == "client_closed" and e["bytes_in"] == 11000, e
    s.stop()


def test_sni_setting_sent_and_checked(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert, sni="backend.internal"))
    c = connect(port)
    echo_roundtrip(c)
    c.close()
    assert srv.wait(1)[0]["sni"] == "backend.internal"
    s.stop()


def _refused(s, port, srv, reason):
    c = connect(port)
    state, _, data = wait_closed(c, scaled(5))
    assert state in ("eof", "reset") and data == b"", state
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "tls_error" and e["server"] == srv.address, e
    assert reason in e["error"], e
    wait_for(lambda: f"TLS handshake with server {srv.address} failed: " in s.stderr(),
             scaled(5), what="process log line")
    assert reason in s.stderr()
    return e


def test_untrusted_server_certificate_refused(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.other_backend)  # from a CA sluice does not trust
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert))
    _refused(s, port, srv, "certificate verify failed")
    s.stop()


def test_wrong_ca_configured_refused(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend)
    s, port = start(sluice, tls_backend([srv.address], pki.other_ca.cert))
    _refused(s, port, srv, "certificate verify failed")
    s.stop()


def test_wrong_name_refused(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert, sni="other.internal"))
    _refused(s, port, srv, "hostname mismatch")
    assert srv.snis == ["other.internal"]
    s.stop()


def test_verify_false_accepts_anything(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.other_backend)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert, verify=False,
                                        sni="whatever.test"))
    c = connect(port)
    echo_roundtrip(c)
    c.close()
    s.stop()


def test_backend_mutual_tls(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend, client_ca=pki.client_ca)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert, cert=pki.gateway.cert,
                                        key=pki.gateway.key))
    c = connect(port)
    echo_roundtrip(c)
    c.close()
    r = srv.wait(1)[0]
    subject = dict(x[0] for x in r["peer"]["subject"])
    assert subject["commonName"] == "sluice-gw", r
    s.stop()


def test_backend_mutual_tls_without_client_cert_fails(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend, client_ca=pki.client_ca,
                    min_version=ssl.TLSVersion.TLSv1_2)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert))
    c = connect(port)
    c.sendall(b"x")
    state, _, data = wait_closed(c, scaled(5))
    assert state in ("eof", "reset") and data == b""
    c.close()
    r = srv.wait(1)[0]
    assert "error" in r and "CERTIFICATE" in r["error"].upper(), r
    s.stop()


def test_backend_alert_after_a_tls13_handshake_is_logged_with_its_reason(sluice, scripted,
                                                                          pki):
    """TLS 1.3: sluice's side of the handshake is complete before the server checks the
    (missing) client certificate; the server's alert arrives on the first read and the
    access log carries OpenSSL's reason, not a bare errno text."""
    srv = TlsServer(scripted, pki.backend, client_ca=pki.client_ca)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert))
    c = connect(port)  # sends nothing: the server has no unread bytes, so no reset
    state, _, data = wait_closed(c, scaled(5))
    assert state in ("eof", "reset") and data == b""
    c.close()
    e = s.access_log(1)[0]
    assert e["termination"] == "server_error", e
    assert "certificate required" in e["error"], e
    s.stop()


def test_session_resumed_towards_the_server(sluice, scripted, pki):
    srv = TlsServer(scripted, pki.backend)
    s, port = start(sluice, tls_backend([srv.address], pki.root.cert, sni="backend.internal"))
    for i in range(3):
        c = connect(port)
        echo_roundtrip(c, b"r%d" % i)
        c.close()
        srv.wait(i + 1)
    assert [r["resumed"] for r in srv.results] == [False, True, True], srv.results
    s.stop()


def test_sluice_to_sluice(sluice, demo, pki):
    """A tcp listener -> tls backend = a second sluice's tls listener -> echo server."""
    outer, inner, port = sluice_to_sluice(sluice, demo("echo").address, pki)
    c = connect(port)
    local = c.getsockname()[1]
    echo_roundtrip(c, bytes(range(256)) * 400)
    c.close()
    e = outer.log_for(local)
    assert e["termination"] == "client_closed" and e["bytes_in"] == 102400, e
    inner_e = inner.access_log(1)[0]
    assert inner_e["sni"] == "backend.internal" and inner_e["tls_version"] == "TLSv1.3"
    assert inner_e["bytes_in"] == 102400 and inner_e["bytes_out"] == 102400, inner_e
    outer.stop()
    inner.stop()


def test_tls_health_probes(sluice, scripted, pki):
    good = TlsServer(scripted, pki.backend)
    bad = TlsServer(scripted, pki.other_backend)
    backend = tls_backend([good.address, bad.address], pki.root.cert,
                          health={"type": "tls", "interval": "200ms", "timeout": "500ms",
                                  "healthy_threshold": 1, "unhealthy_threshold": 1})
    s, port = start(sluice, backend)
    wait_for(lambda: f"server {good.address} of backend pool is UP" in s.stderr(), scaled(5),
             what="good server up")
    wait_for(lambda: f"server {bad.address} of backend pool is DOWN" in s.stderr(),
             scaled(5), what="bad server down")
    assert "certificate verify failed" in s.stderr()
    assert f"server {bad.address} of backend pool is UP" not in s.stderr()
    for _ in range(4):
        c = connect(port)
        local = c.getsockname()[1]
        echo_roundtrip(c)
        c.close()
        assert s.log_for(local)["server"] == good.address
    s.stop()


def test_tls_health_probe_host_is_the_sni_and_the_verified_name(sluice, scripted, pki):
    """health.host: a `tls` probe sends it as SNI (the backend has no tls.sni and its
    servers are IP addresses, so nothing else would send one) and verifies the
    certificate against it: backend.internal matches the server's certificate and comes
    up; wrong.internal goes down with a name mismatch."""
    good, wrong = TlsServer(scripted, pki.backend), TlsServer(scripted, pki.backend)
    health = {"type": "tls", "interval": "200ms", "timeout": "500ms",
              "healthy_threshold": 1, "unhealthy_threshold": 1}
    port = free_port()
    s = sluice(l4_config(
        listeners=[front(port, "good")],
        backends=[tls_backend([good.address], pki.root.cert, name="good",
                              health=dict(health, host="backend.internal")),
                  tls_backend([wrong.address], pki.root.cert, name="wrong",
                              health=dict(health, host="wrong.internal"))]))
    wait_for(lambda: f"server {good.address} of backend good is UP" in s.stderr(), scaled(5),
             what="probe with the right host up")
    wait_for(lambda: f"server {wrong.address} of backend wrong is DOWN: TLS handshake "
                     "failed: " in s.stderr(), scaled(5), what="probe with the wrong host down")
    line = next(x for x in s.stderr().splitlines() if f"{wrong.address} of backend wrong" in x)
    assert "hostname mismatch" in line, line
    assert good.snis and set(good.snis) == {"backend.internal"}, good.snis
    assert wrong.snis and set(wrong.snis) == {"wrong.internal"}, wrong.snis
    c = connect(port)
    echo_roundtrip(c, b"traffic")  # the probed-up server takes traffic
    c.close()
    assert f"server {wrong.address} of backend wrong is UP" not in s.stderr()
    s.stop()
