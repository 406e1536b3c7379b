"""Test PKI and TLS client helpers for the TLS end-to-end tests.

`pki` (a pytest fixture, session-wide: generated once per test run, whatever module asks
first) builds with the `openssl` command line, in a tmp dir:

    server CA (root)  -> server intermediate CA -> server certificates, each file "leaf +
                         intermediate" as a server sends it (clients trust the root only):
        default   RSA-2048  default.example.com (the listener's first = default certificate)
        a_rsa     RSA-2048  a.example.com, a2.example.com
        a_ec      P-256     a.example.com, a2.example.com (same names, other key type)
        wild      P-256     *.example.com
        b         P-256     b.example.com
        cnonly    P-256     no SAN, CN cn.example.com
        backend   P-256     backend.internal + IP 127.0.0.1 (for TLS backends)
        other_backend  P-256 backend.internal, from the *other* CA (untrusted)
    client CA (root)  -> client certificates: good (CN=alice), revoked (CN=mallory, in the
                         CRL), gateway (CN=sluice-gw, used by sluice towards backends)
    other CA (root)   -> a client certificate "stranger" (CN=alice too) the listener must refuse
    client CRL        -> revokes "revoked"

Every attribute is an object with .cert (PEM path), .key and, for CAs, .crl when made.
"""
import hashlib
import os
import ssl
import subprocess
import threading
import types

import pytest

import helpers

_CACHE = {}
_LOCK = threading.Lock()


def _openssl(*args, cwd=None, input=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, input=input, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr.decode()}")
    return r.stdout


def _genkey(path, kind):
    if kind == "rsa":
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                 path)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _ca(d, name, cn, issuer=None):
    """A CA (root when issuer is None). Returns a namespace with cert, key, and for an
    intermediate .chain = its own PEM."""
    key, cert = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.pem")
    _genkey(key, "ec")
    if issuer is None:
        _openssl("req", "-x509", "-new", "-key", key, "-subj", f"/O=sluice tests/CN={cn}",
                 "-days", "30", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", cert)
    else:
        csr = os.path.join(d, f"{name}.csr")
        ext = os.path.join(d, f"{name}.ext")
        _openssl("req", "-new", "-key", key, "-subj", f"/O=sluice tests/CN={cn}", "-out", csr)
        _write(ext, "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                    "keyUsage=critical,keyCertSign,cRLSign\n")
        _openssl("x509", "-req", "-in", csr, "-CA", issuer.cert, "-CAkey", issuer.key,
                 "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", cert)
    return types.SimpleNamespace(cert=cert, key=key, name=name, cn=cn)


def _leaf(d, name, cn, issuer, kind="ec", dns=(), ips=(), usage="serverAuth", chain=None):
    """A leaf certificate signed by `issuer`. The cert file holds the leaf, then `chain`
    (a CA namespace) when given."""
    key, cert = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.pem")
    leaf = os.path.join(d, f"{name}.leaf.pem")
    csr, ext = os.path.join(d, f"{name}.csr"), os.path.join(d, f"{name}.ext")
    _genkey(key, kind)
    _openssl("req", "-new", "-key", key, "-subj", f"/O=sluice tests/CN={cn}", "-out", csr)
    lines = ["basicConstraints=critical,CA:FALSE", f"extendedKeyUsage={usage}"]
    lines.append("keyUsage=critical,digitalSignature" +
                 (",keyEncipherment" if kind == "rsa" else ""))
    sans = [f"DNS:{n}" for n in dns] + [f"IP:{i}" for i in ips]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    _write(ext, "\n".join(lines) + "\n")
    _openssl("x509", "-req", "-in", csr, "-CA", issuer.cert, "-CAkey", issuer.key,
             "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", leaf)
    with open(leaf) as f:
        pem = f.read()
    if chain is not None:
        with open(chain.cert) as f:
            pem += f.read()
    _write(cert, pem)
    der = _openssl("x509", "-in", leaf, "-outform", "DER")
    return types.SimpleNamespace(cert=cert, key=key, leaf=leaf, name=name, cn=cn,
                                 dns=list(dns), fingerprint=hashlib.sha256(der).hexdigest())


def _crl(d, ca, revoke):
    """A CRL of `ca` revoking the leaf certificates in `revoke`. Returns its path."""
    db = os.path.join(d, f"{ca.name}-db")
    os.makedirs(db, exist_ok=True)
    _write(os.path.join(db, "index.txt"), "")
    _write(os.path.join(db, "crlnumber"), "01\n")
    cnf = os.path.join(db, "ca.cnf")
    _write(cnf, "[ca]\ndefault_ca = d\n[d]\n"
                f"database = {db}/index.txt\ncrlnumber = {db}/crlnumber\n"
                "default_md = sha256\ndefault_crl_days = 30\n")
    for leaf in revoke:
        _openssl("ca", "-config", cnf, "-keyfile", ca.key, "-cert", ca.cert, "-revoke",
                 leaf.leaf)
    out = os.path.join(d, f"{ca.name}.crl")
    _openssl("ca", "-config", cnf, "-keyfile", ca.key, "-cert", ca.cert, "-gencrl", "-out", out)
    return out


def make_pki(d):
    """Generates everything described in the module docstring under directory d."""
    os.makedirs(d, exist_ok=True)
    p = types.SimpleNamespace(dir=d)
    p.root = _ca(d, "server-root", "sluice test server root")
    p.inter = _ca(d, "server-inter", "sluice test server intermediate", issuer=p.root)
    p.client_ca = _ca(d, "client-ca", "sluice test client CA")
    p.other_ca = _ca(d, "other-ca", "sluice test other CA")

    def server(name, cn, kind="ec", dns=None, ips=()):
        return _leaf(d, name, cn, p.inter, kind=kind, dns=[cn] if dns is None else dns,
                     ips=ips, chain=p.inter)

    p.default = server("default", "default.example.com", kind="rsa")
    p.a_rsa = server("a-rsa", "a.example.com", kind="rsa", dns=["a.example.com", "a2.example.com"])
    p.a_ec = server("a-ec", "a.example.com", dns=["a.example.com", "a2.example.com"])
    p.wild = server("wild", "*.example.com")
    p.b = server("b", "b.example.com")
    p.cnonly = server("cnonly", "cn.example.com", dns=[])
    p.backend = server("backend", "backend.internal", ips=["127.0.0.1"])
    p.other_backend = _leaf(d, "other-backend", "backend.internal", p.other_ca,
                            dns=["backend.internal"], ips=["127.0.0.1"])

    def client(name, cn, ca):
        return _leaf(d, name, cn, ca, usage="clientAuth")

    p.alice = client("alice", "alice", p.client_ca)
    p.mallory = client("mallory", "mallory", p.client_ca)
    p.gateway = client("gateway", "sluice-gw", p.client_ca)
    p.stranger = client("stranger", "alice", p.other_ca)
    p.client_ca.crl = _crl(d, p.client_ca, [p.mallory])
    return p


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test PKI, generated once per run (see the module docstring)."""
    with _LOCK:
        if "pki" not in _CACHE:
            _CACHE["pki"] = make_pki(str(tmp_path_factory.getbasetemp() / "tls-pki"))
        return _CACHE["pki"]


# ---------------------------------------------------------------------------------------
# configs


def cert_entry(*certs):
    return [{"cert": c.cert, "key": c.key} for c in certs]


def tls_listener(port, certs, name="front", backend="pool", **tls):
    """A `tls` listener dict; extra keyword arguments go into its `tls` block, except
    `hosts`, `routes` and `idle_timeout`, which go to the listener."""
    lst = {"name": name, "bind": f"127.0.0.1:{port}", "protocol": "tls"}
    for k in ("hosts", "routes", "idle_timeout", "proxy_protocol"):
        if k in tls:
            lst[k] = tls.pop(k)
    lst["tls"] = {"certificates": cert_entry(*certs), **tls}
    if backend:
        lst["backend"] = backend
    return lst


def pool(addresses, name="pool", **kw):
    return {"name": name, "servers": [{"address": a} for a in addresses], **kw}


def sluice_to_sluice(sluice, echo_address, pki):
    """Two sluices in a row: `outer` (a tcp listener on `port` -> a tls backend, SNI
    backend.internal, verified against the root) -> `inner` (a tls listener with the
    backend.internal certificate) -> the echo server. Returns (outer, inner, port)."""
    inner_port = helpers.free_port()
    inner = sluice(helpers.l4_config(listeners=[tls_listener(inner_port, [pki.backend])],
                                     backends=[pool([echo_address])]))
    port = helpers.free_port()
    outer = sluice(helpers.l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "protocol": "tcp",
                    "backend": "inner"}],
        backends=[pool([f"127.0.0.1:{inner_port}"], name="inner", protocol="tls",
                       tls={"ca": pki.root.cert, "sni": "backend.internal"})]))
    return outer, inner, port


# ---------------------------------------------------------------------------------------
# clients


def client_context(pki, cert=None, min_version=None, max_version=None, alpn=None,
                   verify=True):
    """A Python ssl client context trusting the server root."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(pki.root.cert)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, ctx, sni=None, session=None, timeout=None):
    """A TLS connection through sluice; `sni` None sends no server name (the context must
    then not check the host name). Returns the SSLSocket."""
    raw = helpers.connect(port, timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except BaseException:
        raw.close()
        raise


def peer_names(tls_sock):
    """(CN, [DNS SANs]) of the certificate the server sent."""
    cert = tls_sock.getpeercert()
    cn = None
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
    return cn, [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


def s_client(port, *args, input=b"", timeout=None, sni=None):
    """Runs `openssl s_client` against 127.0.0.1:port with extra args; returns
    (returncode, stdout+stderr as text). stdin gets `input` then EOF, at which s_client
    ends the connection (pass "-ign_eof" to wait for the server to close instead)."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
    if sni:
        argv += ["-servername", sni]
    else:
        argv += ["-noservername"]
    argv += list(args)
    r = subprocess.run(argv, input=input, capture_output=True,
                       timeout=timeout or helpers.scaled(10))
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def wait_log_line(s, pred, timeout=None, what="access log line"):
    """The first access log entry satisfying pred, polling."""
    return helpers.wait_for(lambda: next((e for e in s.access_lines() if pred(e)), None),
                            timeout or helpers.scaled(10), what=what)
