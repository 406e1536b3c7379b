/* Unit tests for src/tls/ (contexts, SNI, mTLS, tickets, backends).
 *
 * Certificates are made at start with the openssl command line in a mkdtemp directory
 * (the CRL with the OpenSSL API); handshakes run in memory over BIO pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls_client.h"
#include "tls/tls_info.h"
#include "tls/tls_internal.h"
#include "tls/tls_server.h"

static char dir[] = "/tmp/sluice-tls-XXXXXX";
static char g_err[1024]; /* reason of the last failed handshake, from the failing side */

/* ---- fixtures: files ---- */

static char paths[128][600];
static int n_paths;

/* Absolute path of `file` in the test directory (stable storage). */
static char *P(const char *file)
{
    for (int i = 0; i < n_paths; i++) {
        const char *base = strrchr(paths[i], '/') + 1;
        if (strcmp(base, file) == 0)
            return paths[i];
    }
    assert_true(n_paths < 128);
    snprintf(paths[n_paths], sizeof(paths[0]), "%s/%s", dir, file);
    return paths[n_paths++];
}

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

#define RSA_KEY "-newkey rsa:2048"
#define EC_KEY "-newkey ec -pkeyopt ec_paramgen_curve:P-256"

static int make_ca(const char *name, const char *cn)
{
    return sh("cd %s && openssl req -x509 %s -nodes -keyout %s.key -out %s.pem -subj '/CN=%s' "
              "-days 3 -addext basicConstraints=critical,CA:TRUE "
              "-addext keyUsage=keyCertSign,cRLSign 2>/dev/null",
              dir, RSA_KEY, name, name, cn);
}

/* Leaf `name`.pem/.key signed by `ca`; `ext` is the extension text (SAN...). When `chain`
 * is set its PEM is appended to the leaf file. */
static int make_leaf(const char *name, const char *keyspec, const char *ca, const char *cn,
                     const char *ext, const char *chain)
{
    char append[160] = "";
    if (chain != NULL)
        snprintf(append, sizeof(append), "&& cat %s.pem >> %s.pem", chain, name);
    return sh("cd %s && openssl req -new %s -nodes -keyout %s.key -out %s.csr -subj '/CN=%s' "
              "2>/dev/null && printf 'basicConstraints=CA:FALSE\\n%s\\n' > %s.ext && "
              "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days 2 "
              "-sha256 -extfile %s.ext -out %s.pem 2>/dev/null %s",
              dir, keyspec, name, name, cn, ext, name, name, ca, ca, name, name, append);
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void make_crl(const char *ca, const char *revoked, const char *out)
{
    char kp[64];
    snprintf(kp, sizeof(kp), "%.40s.pem", ca);
    X509 *cax = read_cert(P(kp));
    X509 *rv = read_cert(P(revoked));
    snprintf(kp, sizeof(kp), "%.40s.key", ca);
    FILE *f = fopen(P(kp), "r");
    assert_non_null(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(key);

    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_adj(NULL, time(NULL), 0, -60);
    ASN1_TIME *next = ASN1_TIME_adj(NULL, time(NULL), 2, 0);
    X509_REVOKED *r = X509_REVOKED_new();
    assert_true(crl && last && next && r);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(cax)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, last), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
    assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(rv)), 1);
    assert_int_equal(X509_REVOKED_set_revocationDate(r, last), 1);
    assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    f = fopen(P(out), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
    fclose(f);
    X509_CRL_free(crl);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    EVP_PKEY_free(key);
    X509_free(cax);
    X509_free(rv);
}

static int group_setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    int rc = 0;
    rc |= make_ca("ca", "Test Root CA");
    rc |= make_ca("other", "Other CA");
    rc |= make_ca("clientca", "Client CA");
    rc |= sh("cd %s && openssl req -new %s -nodes -keyout inter.key -out inter.csr "
             "-subj '/CN=Test Intermediate' 2>/dev/null && "
             "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign,cRLSign\\n' "
             "> inter.ext && openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 3 -sha256 -extfile inter.ext -out inter.pem 2>/dev/null",
             dir, RSA_KEY);
    rc |= make_leaf("def", RSA_KEY, "ca", "default", "subjectAltName=DNS:default.test", NULL);
    rc |= make_leaf("rsa_www", RSA_KEY, "inter", "rsa-www",
                    "subjectAltName=DNS:www.example.com,DNS:example.com", "inter");
    rc |= make_leaf("ec_www", EC_KEY, "ca", "ec-www",
                    "subjectAltName=DNS:www.example.com,DNS:example.com", NULL);
    rc |= make_leaf("wild", RSA_KEY, "ca", "wild", "subjectAltName=DNS:*.wild.test", NULL);
    rc |= make_leaf("exact", EC_KEY, "ca", "exact", "subjectAltName=DNS:foo.wild.test", NULL);
    rc |= make_leaf("cnonly", EC_KEY, "ca", "cn.test", "", NULL);
    rc |= make_leaf("backend", RSA_KEY, "inter", "backend",
                    "subjectAltName=DNS:backend.test,IP:127.0.0.1", "inter");
    rc |= make_leaf("alice", EC_KEY, "clientca", "alice", "extendedKeyUsage=clientAuth", NULL);
    rc |= make_leaf("mallory", EC_KEY, "clientca", "mallory", "extendedKeyUsage=clientAuth", NULL);
    rc |= make_leaf("eve", EC_KEY, "other", "eve", "extendedKeyUsage=clientAuth", NULL);
    rc |= sh("cd %s && echo garbage > garbage.pem", dir);
    if (rc != 0)
        return -1;
    make_crl("clientca", "mallory.pem", "clients.crl");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sh("rm -rf %s", dir);
    return 0;
}

/* ---- fixtures: configuration ---- */

struct lcfg {
    struct cfg_listener l;
    struct cfg_certificate certs[8];
    char *alpn[4];
    char *hosts[4];
};

/* Listener "web" with the certificates named (file stems), tickets on, TLS 1.2 min. */
static void lcfg_init(struct lcfg *c, const char *const *names, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->l.name = "web";
    c->l.protocol = PROTO_TLS;
    c->l.has_tls = true;
    c->l.tls.session_tickets = true;
    c->l.tls.min_version = 0x0303;
    for (size_t i = 0; i < n; i++) {
        char f[64];
        snprintf(f, sizeof(f), "%s.pem", names[i]);
        c->certs[i].cert = P(f);
        snprintf(f, sizeof(f), "%s.key", names[i]);
        c->certs[i].key = P(f);
    }
    c->l.tls.certificates = c->certs;
    c->l.tls.n_certificates = n;
    c->l.tls.alpn.items = c->alpn;
    c->l.hosts.items = c->hosts;
}

static const char *const all_certs[] = {"def", "rsa_www", "ec_www", "wild", "exact", "cnonly"};

static struct tls_server *server_all(void)
{
    struct lcfg c;
    char err[1024];
    lcfg_init(&c, all_certs, 6);
    struct tls_server *s = tls_server_new(&c.l, err, sizeof(err));
    if (s == NULL)
        fprintf(stderr, "tls_server_new: %s\n", err);
    assert_non_null(s);
    return s;
}

/* ---- fixtures: handshakes ---- */

struct copts {
    int minv, maxv;
    const char *ciphers; /* TLS 1.2 list */
    const char *sigalgs;
    const char *alpn; /* comma-separated */
    const char *cert; /* client certificate stem */
};

static SSL *client_new(const struct copts *o, const char *sni)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, o && o->minv ? o->minv : TLS1_2_VERSION);
    if (o && o->maxv)
        SSL_CTX_set_max_proto_version(ctx, o->maxv);
    if (o && o->ciphers)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, o->ciphers), 1);
    SSL_CTX_set_session_cache_mode(ctx,
                                   SSL_SESS_CACHE_OFF); /* freeing a cache spoils its sessions */
    if (o && o->cert) {
        char f[64];
        snprintf(f, sizeof(f), "%s.pem", o->cert);
        assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, P(f)), 1);
        snprintf(f, sizeof(f), "%s.key", o->cert);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, P(f), SSL_FILETYPE_PEM), 1);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    assert_non_null(ssl);
    SSL_set_connect_state(ssl);
    if (sni)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    if (o && o->sigalgs)
        assert_int_equal(SSL_set1_sigalgs_list(ssl, o->sigalgs), 1);
    if (o && o->alpn) {
        unsigned char wire[128];
        size_t n = 0;
        char tmp[128];
        snprintf(tmp, sizeof(tmp), "%s", o->alpn);
        for (char *save, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            wire[n++] = (unsigned char)strlen(t);
            memcpy(wire + n, t, strlen(t));
            n += strlen(t);
        }
        assert_int_equal(SSL_set_alpn_protos(ssl, wire, (unsigned)n), 0);
    }
    return ssl;
}

static bool want_io(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Runs the handshake between c and s over a BIO pair, then one byte each way (so that
 * TLS 1.3 tickets and late alerts are processed). 0 on success; else g_err holds the
 * failing side's reason. */
static int pump(SSL *c, SSL *s)
{
    BIO *bc, *bs;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    bool cd = false, sd = false;
    g_err[0] = '\0';
    ERR_clear_error();
    for (int i = 0; i < 100 && !(cd && sd); i++) {
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = true;
            else if (!want_io(c, r))
                goto cfail;
        }
        if (!sd) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = true;
            else if (!want_io(s, r))
                goto sfail;
        }
    }
    if (!(cd && sd))
        return -1;
    char b;
    if (SSL_write(s, "s", 1) != 1)
        goto sfail;
    if (SSL_read(c, &b, 1) != 1)
        goto cfail;
    if (SSL_write(c, "c", 1) != 1)
        goto cfail;
    if (SSL_read(s, &b, 1) != 1)
        goto sfail;
    return 0;
cfail:
    tls_ssl_error(c, g_err, sizeof(g_err));
    return -1;
sfail:
    tls_ssl_error(s, g_err, sizeof(g_err));
    /* let the client read the alert, for its side of the story */
    if (SSL_do_handshake(c) != 1 || SSL_read(c, &b, 1) <= 0) {
        size_t n = strlen(g_err);
        snprintf(g_err + n, sizeof(g_err) - n, " / client: ");
        n = strlen(g_err);
        tls_ssl_error(c, g_err + n, sizeof(g_err) - n);
    }
    return -2;
}

/* Frees both ends, after a close_notify each way when the handshake went through: OpenSSL
 * marks the session of a connection freed without SSL_shutdown as not resumable. */
static void close_pair(SSL *c, SSL *s, int rc)
{
    if (rc == 0) {
        SSL_shutdown(c);
        SSL_shutdown(s);
    }
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
}

/* One handshake of a fresh client against `srv`; returns pump's result, fills `cn` with
 * the server certificate's CN and `info` with the server side's view. */
static int run(struct tls_server *srv, const struct copts *o, const char *sni, char *cn,
               size_t cnlen, struct tls_peer_info *info)
{
    SSL *c = client_new(o, sni);
    SSL *s = tls_server_ssl_new(srv);
    assert_non_null(s);
    int rc = pump(c, s);
    if (cn != NULL) {
        cn[0] = '\0';
        X509 *peer = SSL_get0_peer_certificate(c);
        if (peer)
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, (int)cnlen);
    }
    if (info != NULL)
        tls_peer_info(s, info);
    close_pair(c, s, rc);
    return rc;
}

static void expect_cn(struct tls_server *srv, const struct copts *o, const char *sni,
                      const char *want)
{
    char cn[128];
    int rc = run(srv, o, sni, cn, sizeof(cn), NULL);
    if (rc != 0)
        fprintf(stderr, "sni %s: %s\n", sni ? sni : "(none)", g_err);
    assert_int_equal(rc, 0);
    if (strcmp(cn, want) != 0)
        fprintf(stderr, "sni %s: got %s want %s\n", sni, cn, want);
    assert_string_equal(cn, want);
}

/* ---- pure helpers ---- */

static void test_sni_parse(void **state)
{
    (void)state;
    char out[256];
    const unsigned char ok[] = {0,   14,  0,   0,   11,  'W', 'w', 'W',
                                '.', 'a', 'b', 'c', '.', 'c', 'o', '.'};
    assert_int_equal(tls_sni_parse(ok, sizeof(ok), out, sizeof(out)), 0);
    assert_string_equal(out, "www.abc.co");
    const unsigned char bad_len[] = {0, 9, 0, 0, 11, 'a'};
    assert_int_equal(tls_sni_parse(bad_len, sizeof(bad_len), out, sizeof(out)), -1);
    const unsigned char nul[] = {0, 5, 0, 0, 2, 'a', 0};
    assert_int_equal(tls_sni_parse(nul, sizeof(nul), out, sizeof(out)), -1);
    const unsigned char other[] = {0, 4, 7, 0, 1, 'x'};
    assert_int_equal(tls_sni_parse(other, sizeof(other), out, sizeof(out)), 1);
    assert_int_equal(tls_sni_parse(ok, 1, out, sizeof(out)), -1);
}

static void test_hosts_and_names(void **state)
{
    (void)state;
    struct tls_name_table t = {0};
    assert_int_equal(tls_names_add(&t, "*.wild.test", 1), 0);
    assert_int_equal(tls_names_add(&t, "foo.wild.test", 2), 0);
    assert_int_equal(tls_names_add(&t, "foo.wild.test", 3), 0); /* first wins */
    tls_names_sort(&t);
    assert_int_equal(tls_names_lookup(&t, "foo.wild.test"), 2);
    assert_int_equal(tls_names_lookup(&t, "bar.wild.test"), 1);
    assert_int_equal(tls_names_lookup(&t, "a.bar.wild.test"), -1);
    assert_int_equal(tls_names_lookup(&t, "wild.test"), -1);
    assert_int_equal(tls_names_lookup(&t, "*.wild.test"), 1);
    tls_names_free(&t);
}

/* ---- certificate selection ---- */

static void test_sni_selection(void **state)
{
    (void)state;
    struct tls_server *s = server_all();
    expect_cn(s, NULL, NULL, "default");
    expect_cn(s, NULL, "unknown.test", "default");
    expect_cn(s, NULL, "default.test", "default");
    expect_cn(s, NULL, "bar.wild.test", "wild");
    expect_cn(s, NULL, "BAR.Wild.Test", "wild");
    expect_cn(s, NULL, "foo.wild.test", "exact");   /* exact beats wildcard */
    expect_cn(s, NULL, "a.b.wild.test", "default"); /* wildcard covers one label */
    expect_cn(s, NULL, "wild.test", "default");
    expect_cn(s, NULL, "cn.test", "cn.test"); /* CN only when no SAN */

    char cn[128];
    struct tls_peer_info info;
    assert_int_equal(run(s, NULL, "www.example.com", cn, sizeof(cn), &info), 0);
    assert_true(strcmp(cn, "ec-www") == 0 || strcmp(cn, "rsa-www") == 0);
    assert_string_equal(info.sni, "www.example.com");
    assert_string_equal(info.version, "TLSv1.3");
    assert_false(info.peer_verified);
    assert_string_equal(info.peer_subject, "");
    tls_server_free(s);
}

static void test_key_types(void **state)
{
    (void)state;
    struct tls_server *s = server_all();
    struct copts ec13 = {.sigalgs = "ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384"};
    struct copts rsa13 = {.sigalgs = "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384"};
    struct copts ec12 = {.maxv = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"};
    struct copts rsa12 = {.maxv = TLS1_2_VERSION, .ciphers = "ECDHE-RSA-AES128-GCM-SHA256"};
    expect_cn(s, &ec13, "www.example.com", "ec-www");
    expect_cn(s, &rsa13, "www.example.com", "rsa-www");
    expect_cn(s, &ec12, "example.com", "ec-www");
    expect_cn(s, &rsa12, "example.com", "rsa-www");
    /* the RSA chain (leaf + intermediate) is sent as configured */
    SSL *c = client_new(&rsa13, "www.example.com"), *ss = tls_server_ssl_new(s);
    assert_int_equal(pump(c, ss), 0);
    assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(c)), 2);
    close_pair(c, ss, 0);
    /* ECDSA-only client, only an RSA certificate for the name: fails */
    struct copts ec12only = {.maxv = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"};
    assert_int_not_equal(run(s, &ec12only, "bar.wild.test", NULL, 0, NULL), 0);
    tls_server_free(s);
}

static void test_hosts_filter(void **state)
{
    (void)state;
    struct lcfg c;
    char err[1024];
    lcfg_init(&c, all_certs, 6);
    c.hosts[0] = "www.example.com";
    c.hosts[1] = "*.wild.test";
    c.l.hosts.count = 2;
    struct tls_server *s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    expect_cn(s, NULL, "bar.wild.test", "wild");
    expect_cn(s, NULL, "a.b.wild.test", "default"); /* allowed by hosts, no cert: default */
    expect_cn(s, NULL, NULL, "default");            /* no SNI: allowed, default */
    SSL *cl = client_new(NULL, "default.test"), *ss = tls_server_ssl_new(s);
    assert_int_not_equal(pump(cl, ss), 0);
    if (!strstr(g_err, "unrecognized name"))
        fprintf(stderr, "hosts: %s\n", g_err);
    assert_non_null(strstr(g_err, "unrecognized name"));
    SSL_free(cl);
    SSL_free(ss);
    tls_server_free(s);
}

/* ---- protocol policy ---- */

static void test_versions_ciphers(void **state)
{
    (void)state;
    struct tls_server *s = server_all();
    struct copts tls11 = {
        .minv = TLS1_1_VERSION, .maxv = TLS1_1_VERSION, .ciphers = "DEFAULT:@SECLEVEL=0"};
    assert_int_not_equal(run(s, &tls11, "default.test", NULL, 0, NULL), 0);
    struct copts weak = {.maxv = TLS1_2_VERSION, .ciphers = "AES128-SHA:@SECLEVEL=0"};
    assert_int_equal(run(s, &weak, "default.test", NULL, 0, NULL), -2);
    assert_non_null(strstr(g_err, "no shared cipher"));
    struct copts tls12 = {.maxv = TLS1_2_VERSION};
    struct tls_peer_info info;
    assert_int_equal(run(s, &tls12, "default.test", NULL, 0, &info), 0);
    assert_string_equal(info.version, "TLSv1.2");
    assert_memory_equal(info.cipher, "ECDHE-RSA-", 10);
    tls_server_free(s);

    struct lcfg c;
    char err[1024];
    lcfg_init(&c, all_certs, 1);
    c.l.tls.min_version = 0x0304;
    c.l.tls.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
    s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    assert_int_not_equal(run(s, &tls12, NULL, NULL, 0, NULL), 0);
    assert_int_equal(run(s, NULL, NULL, NULL, 0, &info), 0);
    assert_string_equal(info.cipher, "TLS_CHACHA20_POLY1305_SHA256");
    tls_server_free(s);
}

static void test_alpn(void **state)
{
    (void)state;
    struct lcfg c;
    char err[1024];
    struct tls_peer_info info;
    lcfg_init(&c, all_certs, 1);
    c.l.protocol = PROTO_HTTPS; /* default [h2, http/1.1] */
    struct tls_server *s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    struct copts both = {.alpn = "http/1.1,h2"}, h1 = {.alpn = "http/1.1"},
                 none = {.alpn = "spdy/3,foo"};
    assert_int_equal(run(s, &both, NULL, NULL, 0, &info), 0);
    assert_string_equal(info.alpn, "h2"); /* server preference */
    assert_int_equal(run(s, &h1, NULL, NULL, 0, &info), 0);
    assert_string_equal(info.alpn, "http/1.1");
    assert_int_equal(run(s, &none, NULL, NULL, 0, &info), 0);
    assert_string_equal(info.alpn, "");
    tls_server_free(s);

    lcfg_init(&c, all_certs, 1); /* tls listener, no alpn configured: none */
    s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(run(s, &both, NULL, NULL, 0, &info), 0);
    assert_string_equal(info.alpn, "");
    tls_server_free(s);

    lcfg_init(&c, all_certs, 1);
    c.alpn[0] = "x-proto";
    c.alpn[1] = "http/1.1";
    c.l.tls.alpn.count = 2;
    s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    struct copts x = {.alpn = "h2,http/1.1,x-proto"};
    assert_int_equal(run(s, &x, NULL, NULL, 0, &info), 0);
    assert_string_equal(info.alpn, "x-proto");
    tls_server_free(s);
}

/* ---- resumption ---- */

/* Handshake with `sess` offered; returns 1 reused, 0 full, -1 failed; *out = new session. */
static int resume(struct tls_server *srv, const struct copts *o, const char *sni, SSL_SESSION *sess,
                  SSL_SESSION **out)
{
    SSL *c = client_new(o, sni);
    SSL *s = tls_server_ssl_new(srv);
    if (sess)
        assert_int_equal(SSL_set_session(c, sess), 1);
    int rc = pump(c, s);
    int reused = rc == 0 ? SSL_session_reused(c) : -1;
    if (rc == 0) {
        struct tls_peer_info info;
        tls_peer_info(s, &info);
        assert_int_equal(info.resumed, reused == 1);
    }
    if (out)
        *out = SSL_get1_session(c);
    close_pair(c, s, rc);
    return reused;
}

static void resumption_cases(struct tls_server *s, const struct copts *o)
{
    SSL_SESSION *s1 = NULL, *s2 = NULL;
    assert_int_equal(resume(s, o, "www.example.com", NULL, &s1), 0);
    assert_non_null(s1);
    assert_int_equal(resume(s, o, "www.example.com", s1, &s2), 1);
    SSL_SESSION_free(s2);
    /* same certificate, other name: full handshake */
    assert_int_equal(resume(s, o, "example.com", s1, NULL), 0);
    /* other certificate */
    assert_int_equal(resume(s, o, "bar.wild.test", s1, NULL), 0);
    assert_int_equal(resume(s, o, NULL, s1, NULL), 0);
    SSL_SESSION_free(s1);
}

static void test_resumption_tickets(void **state)
{
    (void)state;
    struct tls_server *s = server_all();
    struct copts t12 = {.maxv = TLS1_2_VERSION};
    resumption_cases(s, NULL);
    resumption_cases(s, &t12);

    /* key rotation: the previous key still decrypts, the one before does not */
    SSL_SESSION *s1 = NULL, *s2 = NULL;
    assert_int_equal(resume(s, NULL, "default.test", NULL, &s1), 0);
    tls_tickets_rotate();
    assert_int_equal(resume(s, NULL, "default.test", s1, &s2), 1);
    tls_tickets_rotate();
    assert_int_equal(resume(s, NULL, "default.test", s1, NULL), 0);
    assert_int_equal(resume(s, NULL, "default.test", s2, NULL), 1); /* renewed ticket */
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);

    /* a rebuilt server (reload) with the same settings resumes the old sessions */
    assert_int_equal(resume(s, NULL, "default.test", NULL, &s1), 0);
    struct tls_server *s2srv = server_all();
    assert_int_equal(resume(s2srv, NULL, "default.test", s1, NULL), 1);
    tls_server_free(s2srv);
    SSL_SESSION_free(s1);
    tls_server_free(s);
}

static void test_resumption_cache(void **state)
{
    (void)state;
    struct lcfg c;
    char err[1024];
    lcfg_init(&c, all_certs, 6);
    c.l.tls.session_tickets = false;
    struct tls_server *s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    struct copts t12 = {.maxv = TLS1_2_VERSION};
    resumption_cases(s, &t12);
    resumption_cases(s, NULL);
    tls_server_free(s);
}

/* ---- mutual TLS ---- */

static struct tls_server *server_mtls(enum cfg_client_auth mode, bool crl)
{
    struct lcfg c;
    char err[1024];
    lcfg_init(&c, all_certs, 1);
    c.l.tls.client_auth = mode;
    c.l.tls.client_ca = P("clientca.pem");
    c.l.tls.client_crl = crl ? P("clients.crl") : NULL;
    struct tls_server *s = tls_server_new(&c.l, err, sizeof(err));
    if (s == NULL)
        fprintf(stderr, "%s\n", err);
    assert_non_null(s);
    return s;
}

static void test_mtls(void **state)
{
    (void)state;
    struct copts alice = {.cert = "alice"}, mallory = {.cert = "mallory"}, eve = {.cert = "eve"};
    struct copts alice12 = {.cert = "alice", .maxv = TLS1_2_VERSION};
    struct tls_peer_info info;

    struct tls_server *s = server_mtls(CLIENT_AUTH_REQUIRED, true);
    assert_int_equal(run(s, NULL, NULL, NULL, 0, NULL), -2);
    assert_non_null(strstr(g_err, "peer did not return a certificate"));
    assert_int_equal(run(s, &alice, NULL, NULL, 0, &info), 0);
    assert_true(info.peer_verified);
    assert_string_equal(info.peer_subject, "CN=alice");
    assert_int_equal(strlen(info.peer_fingerprint), 64);
    {
        X509 *x = read_cert(P("alice.pem"));
        unsigned char md[32];
        unsigned int n = 32;
        char hex[65];
        X509_digest(x, EVP_sha256(), md, &n);
        for (int i = 0; i < 32; i++)
            sprintf(hex + 2 * i, "%02x", md[i]);
        assert_string_equal(info.peer_fingerprint, hex);
        X509_free(x);
    }
    assert_int_equal(run(s, &alice12, NULL, NULL, 0, &info), 0);
    assert_true(info.peer_verified);
    assert_int_equal(run(s, &eve, NULL, NULL, 0, NULL), -2);
    assert_non_null(strstr(g_err, "certificate verify failed"));
    assert_int_equal(run(s, &mallory, NULL, NULL, 0, NULL), -2);
    assert_non_null(strstr(g_err, "revoked"));
    tls_server_free(s);

    s = server_mtls(CLIENT_AUTH_OPTIONAL, true);
    assert_int_equal(run(s, NULL, NULL, NULL, 0, &info), 0);
    assert_false(info.peer_verified);
    assert_int_equal(run(s, &alice, NULL, NULL, 0, &info), 0);
    assert_true(info.peer_verified);
    assert_int_not_equal(run(s, &eve, NULL, NULL, 0, NULL), 0);
    assert_int_not_equal(run(s, &mallory, NULL, NULL, 0, NULL), 0);
    tls_server_free(s);

    /* without a CRL the revoked certificate passes: the CRL is what rejects it */
    s = server_mtls(CLIENT_AUTH_REQUIRED, false);
    assert_int_equal(run(s, &mallory, NULL, NULL, 0, NULL), 0);
    tls_server_free(s);
}

static void test_mtls_resumption(void **state)
{
    (void)state;
    struct copts alice = {.cert = "alice"};
    SSL_SESSION *s1 = NULL;

    /* a session from a listener without client auth does not resume after a reload that
     * requires it */
    struct tls_server *open = server_mtls(CLIENT_AUTH_NONE, false);
    assert_int_equal(resume(open, NULL, NULL, NULL, &s1), 0);
    struct tls_server *strict = server_mtls(CLIENT_AUTH_REQUIRED, true);
    assert_int_equal(resume(strict, NULL, NULL, s1, NULL), -1);
    SSL_SESSION_free(s1);
    /* an authenticated session resumes on the same listener and keeps its peer */
    assert_int_equal(resume(strict, &alice, NULL, NULL, &s1), 0);
    SSL *c = client_new(&alice, NULL), *s = tls_server_ssl_new(strict);
    SSL_set_session(c, s1);
    assert_int_equal(pump(c, s), 0);
    assert_int_equal(SSL_session_reused(s), 1);
    struct tls_peer_info info;
    tls_peer_info(s, &info);
    assert_true(info.peer_verified);
    assert_string_equal(info.peer_subject, "CN=alice");
    close_pair(c, s, 0);
    SSL_SESSION_free(s1);
    tls_server_free(open);
    tls_server_free(strict);
}

/* ---- loading errors ---- */

static void expect_load_error(struct lcfg *c, const char *a, const char *b)
{
    char err[1024];
    struct tls_server *s = tls_server_new(&c->l, err, sizeof(err));
    assert_null(s);
    if ((a && !strstr(err, a)) || (b && !strstr(err, b)))
        fprintf(stderr, "err: %s\n", err);
    if (a)
        assert_non_null(strstr(err, a));
    if (b)
        assert_non_null(strstr(err, b));
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct lcfg c;
    lcfg_init(&c, all_certs, 2);
    c.certs[1].key = P("missing.key");
    expect_load_error(&c, "missing.key", "No such file");
    expect_load_error(&c, "tls.certificates[1]", "listener web");

    lcfg_init(&c, all_certs, 2);
    c.certs[1].key = P("def.key");
    expect_load_error(&c, "do not match", "key values mismatch");

    lcfg_init(&c, all_certs, 1);
    c.certs[0].cert = P("garbage.pem");
    expect_load_error(&c, "garbage.pem", "no start line");

    lcfg_init(&c, all_certs, 1);
    c.certs[0].key = P("garbage.pem");
    expect_load_error(&c, "garbage.pem", "private key");

    lcfg_init(&c, all_certs, 1);
    c.l.tls.client_auth = CLIENT_AUTH_REQUIRED;
    c.l.tls.client_ca = P("nope-ca.pem");
    expect_load_error(&c, "nope-ca.pem", "No such file");
    c.l.tls.client_ca = P("garbage.pem");
    expect_load_error(&c, "tls.client_auth.ca", "garbage.pem");
    c.l.tls.client_ca = P("clientca.pem");
    c.l.tls.client_crl = P("garbage.pem");
    expect_load_error(&c, "tls.client_auth.crl", "garbage.pem");
    c.l.tls.client_crl = P("nope.crl");
    expect_load_error(&c, "nope.crl", "No such file");
    c.l.tls.client_crl = NULL;
    c.l.tls.client_ca = NULL;
    expect_load_error(&c, "client_auth.ca is required", NULL);

    lcfg_init(&c, all_certs, 1);
    c.l.tls.ciphers = "NOT-A-CIPHER";
    expect_load_error(&c, "tls.ciphers", NULL);
    lcfg_init(&c, all_certs, 0);
    expect_load_error(&c, "at least one", NULL);
}

static void test_last_error(void **state)
{
    (void)state;
    char buf[256];
    assert_string_equal(tls_last_error(buf, sizeof(buf)), "unknown error");
    ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
    assert_string_equal(tls_last_error(buf, sizeof(buf)), "no shared cipher");
    assert_int_equal(ERR_peek_error(), 0);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
    assert_string_equal(tls_last_error(buf, sizeof(buf)),
                        "certificate verify failed: no start line");
    ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
    tls_last_error(buf, 5);
    assert_string_equal(buf, "no s");
}

/* ---- lifetime ---- */

static void test_free_while_in_use(void **state)
{
    (void)state;
    struct tls_server *s = server_all();
    SSL *ss = tls_server_ssl_new(s);
    tls_server_free(s); /* connection still holds it */
    SSL *c = client_new(NULL, "bar.wild.test");
    assert_int_equal(pump(c, ss), 0);
    close_pair(c, ss, 0);
}

/* ---- threads: one server and the ticket ring shared by several workers ---- */

struct worker {
    struct tls_server *srv;
    SSL_CTX *cctx;
    int ok, reused;
};

/* Plain handshake loop without cmocka asserts (not thread-safe). */
static int worker_hs(SSL *c, SSL *s)
{
    BIO *bc, *bs;
    if (BIO_new_bio_pair(&bc, 0, &bs, 0) != 1)
        return -1;
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    bool cd = false, sd = false;
    for (int i = 0; i < 100 && !(cd && sd); i++) {
        int r;
        if (!cd && (r = SSL_do_handshake(c)) == 1)
            cd = true;
        else if (!cd && !want_io(c, r))
            return -1;
        if (!sd && (r = SSL_do_handshake(s)) == 1)
            sd = true;
        else if (!sd && !want_io(s, r))
            return -1;
    }
    char b;
    if (!(cd && sd) || SSL_write(s, "s", 1) != 1 || SSL_read(c, &b, 1) != 1)
        return -1;
    SSL_shutdown(c);
    SSL_shutdown(s);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    SSL_SESSION *sess = NULL;
    const char *names[] = {"www.example.com", "bar.wild.test", "default.test"};
    for (int i = 0; i < 30; i++) {
        SSL *c = SSL_new(w->cctx), *s = tls_server_ssl_new(w->srv);
        if (c == NULL || s == NULL)
            break;
        SSL_set_connect_state(c);
        SSL_set_tlsext_host_name(c, names[i % 3]);
        if (sess != NULL && i % 3 == 0)
            SSL_set_session(c, sess);
        if (worker_hs(c, s) == 0) {
            w->ok++;
            w->reused += SSL_session_reused(c);
            if (i % 3 == 0) {
                SSL_SESSION_free(sess);
                sess = SSL_get1_session(c);
            }
        }
        SSL_free(c);
        SSL_free(s);
        ERR_clear_error();
    }
    SSL_SESSION_free(sess);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct tls_server *srv = server_all();
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.srv = srv, .cctx = SSL_CTX_new(TLS_client_method())};
        assert_non_null(w[i].cctx);
        SSL_CTX_set_session_cache_mode(w[i].cctx, SSL_SESS_CACHE_OFF);
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    tls_tickets_rotate();
    int ok = 0, reused = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        SSL_CTX_free(w[i].cctx);
        ok += w[i].ok;
        reused += w[i].reused;
    }
    tls_server_free(srv);
    assert_int_equal(ok, 120);
    assert_true(reused >= 4 * 8); /* 9 resumption attempts each, a rotation may cost one */
}

/* ---- backends ---- */

struct bcfg {
    struct cfg_backend b;
};

static void bcfg_init(struct bcfg *c, const char *ca)
{
    memset(c, 0, sizeof(*c));
    c->b.name = "api";
    c->b.protocol = PROTO_TLS;
    c->b.has_tls = true;
    c->b.tls.verify = true;
    c->b.tls.ca = ca ? P(ca) : NULL;
}

static struct tls_server *backend_server(enum cfg_client_auth mode)
{
    struct lcfg c;
    char err[1024];
    const char *names[] = {"backend"};
    lcfg_init(&c, names, 1);
    c.l.name = "backend-side";
    c.l.tls.client_auth = mode;
    c.l.tls.client_ca = P("clientca.pem");
    struct tls_server *s = tls_server_new(&c.l, err, sizeof(err));
    assert_non_null(s);
    return s;
}

/* Connects `cl` (as for server `host`, SNI override `sni`) to `srv`. */
static int backend_run(struct tls_client *cl, struct tls_server *srv, const char *host,
                       const char *sni, struct tls_peer_info *server_view, bool *reused)
{
    SSL *c = sni ? tls_client_ssl_new_sni(cl, host, sni) : tls_client_ssl_new(cl, host);
    SSL *s = tls_server_ssl_new(srv);
    assert_non_null(c);
    int rc = pump(c, s);
    if (server_view)
        tls_peer_info(s, server_view);
    if (reused)
        *reused = SSL_session_reused(c) == 1;
    if (rc == 0) {
        struct tls_peer_info ci;
        tls_peer_info(c, &ci);
        assert_true(ci.peer_verified == (SSL_get_verify_mode(c) != SSL_VERIFY_NONE));
        if (ci.peer_verified)
            assert_string_equal(ci.peer_subject, "CN=backend");
    }
    close_pair(c, s, rc);
    return rc;
}

static void test_backend_verify(void **state)
{
    (void)state;
    struct tls_server *srv = backend_server(CLIENT_AUTH_NONE);
    struct bcfg bc;
    char err[1024];
    struct tls_peer_info sv;

    bcfg_init(&bc, "ca.pem");
    struct tls_client *cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_equal(backend_run(cl, srv, "backend.test", NULL, &sv, NULL), 0);
    assert_string_equal(sv.sni, "backend.test");
    assert_int_equal(backend_run(cl, srv, "wrong.test", NULL, NULL, NULL), -1);
    assert_non_null(strstr(g_err, "certificate verify failed"));
    assert_non_null(strstr(g_err, "hostname mismatch"));
    assert_int_equal(backend_run(cl, srv, "127.0.0.1", NULL, &sv, NULL), 0);
    assert_string_equal(sv.sni, ""); /* no SNI for an IP */
    assert_int_equal(backend_run(cl, srv, "127.0.0.2", NULL, NULL, NULL), -1);
    assert_int_equal(backend_run(cl, srv, "[::1]", NULL, NULL, NULL), -1);
    assert_int_equal(backend_run(cl, srv, "127.0.0.2", "backend.test", &sv, NULL), 0);
    assert_string_equal(sv.sni, "backend.test");
    tls_client_free(cl);

    /* configured sni: used as SNI and for the name check, whatever the address */
    bc.b.tls.sni = "backend.test";
    cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_equal(backend_run(cl, srv, "10.1.2.3", NULL, &sv, NULL), 0);
    assert_string_equal(sv.sni, "backend.test");
    assert_int_equal(backend_run(cl, srv, "other.name", NULL, &sv, NULL), 0);
    tls_client_free(cl);

    /* wrong CA fails; verify off passes */
    bcfg_init(&bc, "other.pem");
    cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_equal(backend_run(cl, srv, "backend.test", NULL, NULL, NULL), -1);
    assert_non_null(strstr(g_err, "unable to get local issuer certificate"));
    tls_client_free(cl);
    bc.b.tls.verify = false;
    cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_equal(backend_run(cl, srv, "wrong.test", NULL, NULL, NULL), 0);
    tls_client_free(cl);

    /* system store: our test CA is not in it */
    bcfg_init(&bc, NULL);
    cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_equal(backend_run(cl, srv, "backend.test", NULL, NULL, NULL), -1);
    tls_client_free(cl);
    tls_server_free(srv);
}

static void test_backend_mtls_and_sessions(void **state)
{
    (void)state;
    struct tls_server *srv = backend_server(CLIENT_AUTH_REQUIRED);
    struct bcfg bc;
    char err[1024];
    struct tls_peer_info sv;
    bool reused;

    bcfg_init(&bc, "ca.pem");
    struct tls_client *cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_not_equal(backend_run(cl, srv, "backend.test", NULL, NULL, NULL), 0);
    tls_client_free(cl);

    bc.b.tls.cert = P("alice.pem");
    bc.b.tls.key = P("alice.key");
    cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    assert_int_equal(backend_run(cl, srv, "backend.test", NULL, &sv, &reused), 0);
    assert_true(sv.peer_verified);
    assert_string_equal(sv.peer_subject, "CN=alice");
    assert_false(reused);
    /* client session cache: the next connection to the same server resumes */
    assert_int_equal(backend_run(cl, srv, "backend.test", NULL, &sv, &reused), 0);
    assert_true(reused);
    assert_true(sv.resumed);
    assert_true(sv.peer_verified);
    /* another server name has its own entry */
    assert_int_equal(backend_run(cl, srv, "127.0.0.1", NULL, NULL, &reused), 0);
    assert_false(reused);

    /* the client context outlives tls_client_free while a connection uses it */
    SSL *c = tls_client_ssl_new(cl, "backend.test");
    tls_client_free(cl);
    SSL *s = tls_server_ssl_new(srv);
    assert_int_equal(pump(c, s), 0);
    assert_int_equal(SSL_session_reused(c), 1);
    close_pair(c, s, 0);
    tls_server_free(srv);
}

static void test_backend_errors(void **state)
{
    (void)state;
    struct bcfg bc;
    char err[1024];
    bcfg_init(&bc, "nope.pem");
    assert_null(tls_client_new(&bc.b, err, sizeof(err)));
    assert_non_null(strstr(err, "backend api: tls.ca"));
    assert_non_null(strstr(err, "nope.pem: No such file"));
    bcfg_init(&bc, "ca.pem");
    bc.b.tls.cert = P("alice.pem");
    assert_null(tls_client_new(&bc.b, err, sizeof(err)));
    assert_non_null(strstr(err, "go together"));
    bc.b.tls.key = P("eve.key");
    assert_null(tls_client_new(&bc.b, err, sizeof(err)));
    assert_non_null(strstr(err, "do not match"));
    /* has_tls false: verification against the system store, on by default */
    memset(&bc, 0, sizeof(bc));
    bc.b.name = "plain";
    struct tls_client *cl = tls_client_new(&bc.b, err, sizeof(err));
    assert_non_null(cl);
    SSL *c = tls_client_ssl_new(cl, "backend.test");
    assert_int_equal(SSL_get_verify_mode(c), SSL_VERIFY_PEER);
    SSL_free(c);
    tls_client_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_parse),
        cmocka_unit_test(test_hosts_and_names),
        cmocka_unit_test(test_last_error),
        cmocka_unit_test(test_sni_selection),
        cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_hosts_filter),
        cmocka_unit_test(test_versions_ciphers),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_resumption_tickets),
        cmocka_unit_test(test_resumption_cache),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_mtls_resumption),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_free_while_in_use),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_backend_verify),
        cmocka_unit_test(test_backend_mtls_and_sessions),
        cmocka_unit_test(test_backend_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
