"""Certificates, keys, client CAs and CRLs are read again on every reload (SIGHUP); one bad
file rejects the whole reload and the running certificates stay in use. Open TLS
connections are never affected."""
import hashlib
import re
import shutil
import ssl
import subprocess

import pytest

from helpers import free_port, l4_config, recv_exact, scaled, wait_for
from tls_certs import client_context, pki, pool, tls_connect  # noqa: F401


def reloads(s, what):
    return len(re.findall(what, s.stderr()))


def reload_and_wait(s, what="configuration reloaded"):
    before = reloads(s, what)
    s.reload()
    wait_for(lambda: reloads(s, what) > before, scaled(5), what=what)


def install(tmp_path, cert, name="site"):
    shutil.copy(cert.cert, tmp_path / f"{name}.pem")
    shutil.copy(cert.key, tmp_path / f"{name}.key")


def fingerprint(t):
    """SHA-256 (hex) of the certificate the server presented on TLS socket t."""
    return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def served(port, ctx, sni="a.example.com"):
    with tls_connect(port, ctx, sni=sni) as t:
        t.sendall(b"?")
        assert recv_exact(t, 1) == b"?"
        return fingerprint(t)


def config(port, b, client_auth=None, crl=False):
    """A tls listener serving site.pem/site.key (paths relative to the config file)."""
    tls = {"certificates": [{"cert": "site.pem", "key": "site.key"}]}
    if client_auth:
        tls["client_auth"] = {"mode": client_auth, "ca": "clients.pem"}
        if crl:
            tls["client_auth"]["crl"] = "clients.crl"
    return l4_config(listeners=[{"name": "front", "bind": f"127.0.0.1:{port}",
                                 "protocol": "tls", "tls": tls, "backend": "pool"}],
                     backends=[pool([b.address])])


def start_proxy(sluice, demo, pki, tmp_path, client_auth=None):
    """Installs pki.a_rsa as site.pem/site.key (and, with client_auth, the client CA as
    clients.pem) in tmp_path, then starts an echo backend and sluice in front of it.
    Returns (sluice, port, backend)."""
    b = demo("echo")
    install(tmp_path, pki.a_rsa)
    if client_auth:
        shutil.copy(pki.client_ca.cert, tmp_path / "clients.pem")
    port = free_port()
    return sluice(config(port, b, client_auth=client_auth)), port, b


def test_new_certificate_after_reload_old_connection_unaffected(sluice, demo, pki, tmp_path):
    s, port, _ = start_proxy(sluice, demo, pki, tmp_path)
    ctx = client_context(pki)
    assert served(port, ctx) == pki.a_rsa.fingerprint
    old = tls_connect(port, ctx, sni="a.example.com")
    old.sendall(b"before")
    assert recv_exact(old, 6) == b"before"
    install(tmp_path, pki.a_ec)  # same names, new key and certificate
    reload_and_wait(s)
    assert served(port, ctx) == pki.a_ec.fingerprint
    old.sendall(b"after")  # the open connection keeps going on its old session
    assert recv_exact(old, 5) == b"after"
    assert fingerprint(old) == pki.a_rsa.fingerprint
    old.close()
    # a session from before the reload does not resume onto the new certificate
    with tls_connect(port, ctx, sni="a.example.com") as t:
        t.sendall(b"1")
        recv_exact(t, 1)
        sess = t.session
    install(tmp_path, pki.a_rsa)
    reload_and_wait(s)
    with tls_connect(port, ctx, sni="a.example.com", session=sess) as t:
        assert not t.session_reused
        assert fingerprint(t) == pki.a_rsa.fingerprint
    s.stop()


def test_bad_file_rejects_the_whole_reload(sluice, demo, pki, tmp_path):
    s, port, _ = start_proxy(sluice, demo, pki, tmp_path, client_auth="optional")
    ctx = client_context(pki)
    assert served(port, ctx) == pki.a_rsa.fingerprint

    def rejected(reason):
        before = len(s.stderr())
        reload_and_wait(s, "reload rejected")
        # only this reload's lines: an earlier rejection's message must not match
        assert re.search(reason, s.stderr()[before:]), s.stderr()[before:]
        assert served(port, ctx) == pki.a_rsa.fingerprint  # still the old one

    # a new certificate with the old (mismatched) key
    shutil.copy(pki.a_ec.cert, tmp_path / "site.pem")
    rejected(r"do not match")
    # the key file missing
    shutil.copy(pki.a_ec.cert, tmp_path / "site.pem")
    (tmp_path / "site.key").unlink()
    rejected(r"key file .*site\.key.*No such file")
    # good certificate and key, but a broken client CA file
    install(tmp_path, pki.a_ec)
    (tmp_path / "clients.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n"
                                          "-----END CERTIFICATE-----\n")
    rejected(r"CA file .*clients\.pem")
    # an encrypted key is refused too
    enc = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", pki.a_ec.key, "-aes128", "-passout", "pass:x",
                    "-out", str(enc)], check=True, capture_output=True)
    shutil.copy(pki.client_ca.cert, tmp_path / "clients.pem")
    shutil.copy(enc, tmp_path / "site.key")
    rejected(r"key file .*site\.key")
    # everything fixed: the reload goes through
    install(tmp_path, pki.a_ec)
    reload_and_wait(s)
    assert served(port, ctx) == pki.a_ec.fingerprint
    s.stop()


def test_crl_reloaded(sluice, demo, pki, tmp_path):
    """A CRL added by a reload takes effect for new handshakes."""
    s, port, b = start_proxy(sluice, demo, pki, tmp_path, client_auth="required")
    ctx = client_context(pki, cert=pki.mallory)
    assert served(port, ctx) == pki.a_rsa.fingerprint  # not revoked yet
    shutil.copy(pki.client_ca.crl, tmp_path / "clients.crl")
    s.write_config(config(port, b, client_auth="required", crl=True))
    reload_and_wait(s)
    # refused by sluice with a "certificate revoked" alert: with TLS 1.3 the client
    # learns it at its first read (a timeout or a bare EOF would not be a refusal)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):
        served(port, ctx)
    e = s.access_log(2)[1]
    assert e["termination"] == "tls_error" and "certificate revoked" in e["error"], e
    assert served(port, client_context(pki, cert=pki.alice)) == pki.a_rsa.fingerprint
    s.stop()
