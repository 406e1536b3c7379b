/* TLS listener contexts.
 *
 * Design: certificates are grouped into "context groups", one SSL_CTX each. For every name
 * a certificate carries (exact or wildcard), the group is the set of certificates that
 * carry that very name, at most one per key type (RSA, ECDSA, RSA-PSS, Ed25519, ...) and
 * the first in file order when two share a key type. Certificates that share names but not
 * key types thus land in one SSL_CTX, where OpenSSL picks among them from the client's
 * signature algorithms and cipher suites (ECDSA for an ECDSA-only client, RSA otherwise).
 * Identical sets share one SSL_CTX, so the usual "RSA + ECDSA for the same names" costs
 * one context, not two.
 *
 * Each connection starts on the default group's context (the group of the first
 * certificate's first name). A ClientHello callback, which runs before OpenSSL looks at
 * session tickets or the cache, reads the SNI, applies the `hosts` filter (an unlisted
 * name fails with an unrecognized_name alert; no SNI is allowed and gets the default),
 * switches to the group found by exact name, then by one-label wildcard, else keeps the
 * default, and sets the connection's session id context to
 *     SHA-256(listener name, client_auth mode, CA and CRL file digests,
 *             the group's certificate fingerprints, the SNI).
 * OpenSSL refuses to resume a session whose id context differs, so a session never
 * crosses an SNI (even between names of one certificate), a certificate change, or a
 * client-auth change (including a new CRL on reload): each is a full handshake.
 *
 * Every context is configured identically apart from its certificates, because OpenSSL
 * takes some settings from the initial context (verify mode, options) and others from the
 * switched-to one (certificates, verify store, CA names, ALPN callback). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "net/host_pattern.h"
#include "tls/tls_internal.h"
#include "tls/tls_server.h"

#define TLS_MOZILLA_INTERMEDIATE                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
#define TLS_SESSION_CACHE_SIZE 20000 /* stateful cache, used only without tickets */
#define TLS_SESSION_CACHE_SECONDS 300
#define TLS_VERIFY_DEPTH 10
#define TLS_GROUP_SLOTS 8 /* key types per context; OpenSSL has fewer certificate slots */

struct tls_group {
    int certs[TLS_GROUP_SLOTS]; /* indices into the loaded certificates, file order */
    int n;
    unsigned char sid[32]; /* SHA-256(base, fingerprints) */
    SSL_CTX *ctx;
};

struct tls_server {
    atomic_int refs;
    struct tls_group *groups;
    size_t n_groups;
    int default_group;
    struct tls_name_table names;
    char **hosts; /* lowercase */
    size_t n_hosts;
    unsigned char *alpn; /* wire format, server preference order; NULL: no ALPN */
    size_t alpn_len;
};

static int ssl_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void server_unref(struct tls_server *s);

static void ssl_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr != NULL)
        server_unref(ptr);
}

static void idx_init(void)
{
    ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_ex_free);
}

static void server_unref(struct tls_server *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n_groups; i++)
        SSL_CTX_free(s->groups[i].ctx);
    free(s->groups);
    tls_names_free(&s->names);
    for (size_t i = 0; i < s->n_hosts; i++)
        free(s->hosts[i]);
    free(s->hosts);
    free(s->alpn);
    free(s);
}

void tls_server_free(struct tls_server *s)
{
    if (s != NULL)
        server_unref(s);
}

SSL *tls_server_ssl_new(struct tls_server *s)
{
    SSL *ssl = SSL_new(s->groups[s->default_group].ctx);
    if (ssl == NULL)
        return NULL;
    atomic_fetch_add(&s->refs, 1);
    if (SSL_set_ex_data(ssl, ssl_idx, s) != 1) {
        server_unref(s);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

bool tls_server_host_served(SSL *ssl, const char *host, size_t len)
{
    const struct tls_server *s = SSL_get_ex_data(ssl, ssl_idx);
    char name[256];
    if (s == NULL || len == 0 || len >= sizeof(name))
        return s == NULL || len == 0; /* no Host to compare; an overlong one is nobody's */
    for (size_t i = 0; i < len; i++)
        name[i] = (char)tolower((unsigned char)host[i]);
    if (name[len - 1] == '.') /* absolute form of the same name */
        len--;
    name[len] = '\0';
    int g = tls_names_lookup(&s->names, name);
    if (g < 0)
        g = s->default_group;
    return SSL_get_SSL_CTX(ssl) == s->groups[g].ctx;
}

/* ---- per-connection callbacks ---- */

static int sid_for(const struct tls_group *g, const char *sni, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, g->sid, sizeof(g->sid)) == 1 &&
             EVP_DigestUpdate(md, sni, strlen(sni) + 1) == 1 &&
             EVP_DigestFinal_ex(md, out, &len) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/* Runs first on every ClientHello: SNI -> hosts filter -> context -> session id context. */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
    struct tls_server *s = arg;
    const unsigned char *ext;
    size_t len;
    char sni[256] = "";
    int g = s->default_group;

    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) == 1) {
        int r = tls_sni_parse(ext, len, sni, sizeof(sni));
        if (r < 0) {
            ERR_raise_data(ERR_LIB_SSL, SSL_R_SSL3_EXT_INVALID_SERVERNAME,
                           "malformed server_name extension");
            *al = SSL_AD_DECODE_ERROR;
            return SSL_CLIENT_HELLO_ERROR;
        }
        if (r > 0)
            sni[0] = '\0';
    }
    if (sni[0] != '\0') {
        if (s->n_hosts > 0 && !host_patterns_match(s->hosts, s->n_hosts, sni, strlen(sni))) {
            ERR_raise_data(ERR_LIB_SSL, SSL_R_SSL3_EXT_INVALID_SERVERNAME,
                           "server name \"%s\" is not in the listener's hosts", sni);
            *al = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        }
        int found = tls_names_lookup(&s->names, sni);
        if (found >= 0)
            g = found;
    }
    unsigned char sid[32];
    if (SSL_set_SSL_CTX(ssl, s->groups[g].ctx) == NULL || sid_for(&s->groups[g], sni, sid) < 0 ||
        SSL_set_session_id_context(ssl, sid, sizeof(sid)) != 1) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* First configured protocol the client also offers; none in common: no ALPN. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const struct tls_server *s = arg;
    for (size_t i = 0; i < s->alpn_len; i += 1u + s->alpn[i]) {
        const unsigned char *mine = s->alpn + i;
        for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break;
            if (in[j] == mine[0] && memcmp(in + j + 1, mine + 1, mine[0]) == 0) {
                *out = mine + 1;
                *outlen = mine[0];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* ---- building ---- */

struct build {
    const struct cfg_listener *l;
    struct tls_cert *certs;
    size_t n_certs;
    X509_STORE *store; /* client CAs (+ CRLs), NULL for client_auth none */
    STACK_OF(X509_NAME) * ca_names;
    unsigned char base[32];
};

static int encode_alpn(struct tls_server *s, const struct cfg_listener *l, char *err, size_t errlen)
{
    static char *https_default[] = {"h2", "http/1.1"};
    char *const *items = l->tls.alpn.items;
    size_t n = l->tls.alpn.count, total = 0;
    if (n == 0 && l->protocol == PROTO_HTTPS) {
        items = https_default;
        n = 2;
    }
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        if (len == 0 || len > 255) {
            snprintf(err, errlen, "tls.alpn: protocol name \"%s\" must be 1-255 bytes", items[i]);
            return -1;
        }
        total += 1 + len;
    }
    s->alpn = malloc(total);
    if (s->alpn == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        s->alpn[s->alpn_len] = (unsigned char)len;
        memcpy(s->alpn + s->alpn_len + 1, items[i], len);
        s->alpn_len += 1 + len;
    }
    return 0;
}

static int copy_hosts(struct tls_server *s, const struct cfg_listener *l)
{
    if (l->hosts.count == 0)
        return 0;
    s->hosts = calloc(l->hosts.count, sizeof(*s->hosts));
    if (s->hosts == NULL)
        return -1;
    for (size_t i = 0; i < l->hosts.count; i++) {
        const char *h = l->hosts.items[i];
        size_t len = strlen(h);
        if (len > 0 && h[len - 1] == '.')
            len--;
        s->hosts[i] = strndup(h, len);
        if (s->hosts[i] == NULL)
            return -1;
        s->n_hosts++;
        for (char *p = s->hosts[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    return 0;
}

static bool has_name(const struct tls_cert *c, const char *name)
{
    for (size_t i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i], name) == 0)
            return true;
    return false;
}

/* Index of the group holding exactly `set`, creating it if new; -1 when out of memory. */
static int group_for(struct tls_server *s, const int *set, int n)
{
    for (size_t i = 0; i < s->n_groups; i++)
        if (s->groups[i].n == n && memcmp(s->groups[i].certs, set, n * sizeof(int)) == 0)
            return (int)i;
    struct tls_group *v = realloc(s->groups, (s->n_groups + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    s->groups = v;
    memset(&v[s->n_groups], 0, sizeof(*v));
    memcpy(v[s->n_groups].certs, set, n * sizeof(int));
    v[s->n_groups].n = n;
    return (int)s->n_groups++;
}

/* The certificates answering for `name`: those carrying it, first one per key type. */
static int set_for_name(const struct build *b, const char *name, int *set)
{
    int n = 0;
    for (size_t i = 0; i < b->n_certs && n < TLS_GROUP_SLOTS; i++) {
        if (!has_name(&b->certs[i], name))
            continue;
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup = dup || b->certs[set[j]].key_type == b->certs[i].key_type;
        if (!dup)
            set[n++] = (int)i;
    }
    return n;
}

static int make_groups(struct tls_server *s, const struct build *b)
{
    int set[TLS_GROUP_SLOTS];
    for (size_t i = 0; i < b->n_certs; i++) {
        for (size_t k = 0; k < b->certs[i].n_names; k++) {
            const char *name = b->certs[i].names[k];
            if (tls_names_find(&s->names, name) >= 0)
                continue;
            int g = group_for(s, set, set_for_name(b, name, set));
            if (g < 0 || tls_names_add(&s->names, name, g) < 0)
                return -1;
            tls_names_sort(&s->names);
        }
    }
    if (b->certs[0].n_names > 0) {
        s->default_group = tls_names_find(&s->names, b->certs[0].names[0]);
    } else {
        set[0] = 0;
        s->default_group = group_for(s, set, 1);
    }
    return s->default_group < 0 ? -1 : 0;
}

static int digest_into(EVP_MD_CTX *md, const void *p, size_t n)
{
    return EVP_DigestUpdate(md, p, n) == 1 ? 0 : -1;
}

/* base = SHA-256(listener name, mode, CA digest, CRL digest) computed by the caller;
 * group sid = SHA-256(base, fingerprints of the group's certificates). */
static int group_sids(struct tls_server *s, const struct build *b)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        struct tls_group *g = &s->groups[i];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int len = 32;
        int rc = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -1;
        if (rc == 0)
            rc = digest_into(md, b->base, sizeof(b->base));
        for (int j = 0; j < g->n && rc == 0; j++)
            rc = digest_into(md, b->certs[g->certs[j]].fp, 32);
        if (rc == 0 && EVP_DigestFinal_ex(md, g->sid, &len) != 1)
            rc = -1;
        EVP_MD_CTX_free(md);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Creates and configures the context of group `g`. Returns 0 or -1 with `err` set. */
static int make_ctx(struct tls_server *s, const struct build *b, struct tls_group *g, char *err,
                    size_t errlen)
{
    const struct cfg_listener_tls *t = &b->l->tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_errf(err, errlen, "cannot create TLS context");
        return -1;
    }
    g->ctx = ctx;
    int minv = t->min_version == 0x0304 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (t->min_version != 0 && t->min_version != 0x0303 && t->min_version != 0x0304) {
        snprintf(err, errlen, "tls.min_version: unsupported version 0x%04x", t->min_version);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, minv);
    /* The server's order picks the suite (every offered suite is forward-secret AEAD);
     * a client that puts ChaCha20 first (no AES hardware) still gets it. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 (t->session_tickets ? 0 : SSL_OP_NO_TICKET));
    tls_ctx_io_settings(ctx);
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    const char *ciphers = t->ciphers != NULL ? t->ciphers : TLS_MOZILLA_INTERMEDIATE;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        tls_errf(err, errlen, "tls.ciphers: no usable cipher in \"%s\"", ciphers);
        return -1;
    }
    if (t->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
        tls_errf(err, errlen, "tls.ciphersuites: bad list \"%s\"", t->ciphersuites);
        return -1;
    }
    if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 || SSL_CTX_set_dh_auto(ctx, 1) != 1) {
        tls_errf(err, errlen, "cannot set key exchange groups");
        return -1;
    }
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, s);
    if (s->alpn != NULL)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);

    if (t->session_tickets) {
        /* One TLS 1.3 ticket per handshake (OpenSSL's default is two): a client resumes
         * one connection with it and gets a fresh ticket each time it does. */
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_timeout(ctx, TLS_TICKET_ROTATE_SECONDS);
        if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tickets_cb) != 1) {
            tls_errf(err, errlen, "cannot set the session ticket callback");
            return -1;
        }
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
        SSL_CTX_set_timeout(ctx, TLS_SESSION_CACHE_SECONDS);
    }
    if (SSL_CTX_set_session_id_context(ctx, g->sid, sizeof(g->sid)) != 1) {
        tls_errf(err, errlen, "cannot set the session id context");
        return -1;
    }

    if (t->client_auth != CLIENT_AUTH_NONE) {
        int mode = SSL_VERIFY_PEER;
        if (t->client_auth == CLIENT_AUTH_REQUIRED)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
        STACK_OF(X509_NAME) *names = b->ca_names ? SSL_dup_CA_list(b->ca_names) : NULL;
        if (SSL_CTX_set1_verify_cert_store(ctx, b->store) != 1 ||
            (b->ca_names != NULL && names == NULL)) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            tls_errf(err, errlen, "tls.client_auth: cannot set the CA store");
            return -1;
        }
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }

    for (int i = 0; i < g->n; i++) {
        struct tls_cert *c = &b->certs[g->certs[i]];
        if (SSL_CTX_use_cert_and_key(ctx, c->leaf, c->key, c->chain, 1) != 1) {
            tls_errf(err, errlen, "certificate %s: cannot use it",
                     t->certificates[g->certs[i]].cert);
            return -1;
        }
    }
    return 0;
}

struct tls_server *tls_server_new(const struct cfg_listener *l, char *err, size_t errlen)
{
    struct build b = {.l = l};
    const struct cfg_listener_tls *t = &l->tls;
    const char *lname = l->name != NULL ? l->name : "?";
    char why[768];
    struct tls_server *s = NULL;
    unsigned char ca_digest[32] = {0}, crl_digest[32] = {0};

    snprintf(err, errlen, "unknown error");
    if (!l->has_tls || t->n_certificates == 0) {
        snprintf(err, errlen, "listener %s: tls.certificates: at least one is required", lname);
        return NULL;
    }
    if (tls_tickets_init() < 0) {
        snprintf(err, errlen, "listener %s: cannot create session ticket keys", lname);
        return NULL;
    }
    pthread_once(&idx_once, idx_init);
    if (ssl_idx < 0) {
        snprintf(err, errlen, "listener %s: OpenSSL ex_data index unavailable", lname);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    b.certs = calloc(t->n_certificates, sizeof(*b.certs));
    if (s == NULL || b.certs == NULL)
        goto oom;
    atomic_init(&s->refs, 1);

    for (size_t i = 0; i < t->n_certificates; i++) {
        if (tls_load_cert(&b.certs[i], t->certificates[i].cert, t->certificates[i].key, why,
                          sizeof(why)) < 0) {
            snprintf(err, errlen, "listener %s: tls.certificates[%zu]: %s", lname, i, why);
            goto fail;
        }
        b.n_certs++;
    }

    if (t->client_auth != CLIENT_AUTH_NONE) {
        if (t->client_ca == NULL) {
            snprintf(err, errlen, "listener %s: tls.client_auth.ca is required", lname);
            goto fail;
        }
        b.store = X509_STORE_new();
        if (b.store == NULL)
            goto oom;
        if (tls_load_ca(t->client_ca, b.store, &b.ca_names, ca_digest, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "listener %s: tls.client_auth.ca: %s", lname, why);
            goto fail;
        }
        if (t->client_crl != NULL &&
            tls_load_crl(t->client_crl, b.store, crl_digest, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "listener %s: tls.client_auth.crl: %s", lname, why);
            goto fail;
        }
    }

    /* base of every session id context */
    {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int len = 32;
        unsigned char mode = (unsigned char)t->client_auth;
        int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 digest_into(md, "sluice-sid-v1", 14) == 0 &&
                 digest_into(md, lname, strlen(lname) + 1) == 0 && digest_into(md, &mode, 1) == 0 &&
                 digest_into(md, ca_digest, 32) == 0 && digest_into(md, crl_digest, 32) == 0 &&
                 EVP_DigestFinal_ex(md, b.base, &len) == 1;
        EVP_MD_CTX_free(md);
        if (!ok)
            goto oom;
    }

    if (encode_alpn(s, l, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "listener %s: %s", lname, why);
        goto fail;
    }
    if (copy_hosts(s, l) < 0 || make_groups(s, &b) < 0 || group_sids(s, &b) < 0)
        goto oom;
    for (size_t i = 0; i < s->n_groups; i++) {
        if (make_ctx(s, &b, &s->groups[i], why, sizeof(why)) < 0) {
            snprintf(err, errlen, "listener %s: %s", lname, why);
            goto fail;
        }
    }
    goto done;

oom:
    snprintf(err, errlen, "listener %s: out of memory", lname);
fail:
    if (s != NULL)
        server_unref(s);
    s = NULL;
done:
    for (size_t i = 0; i < b.n_certs; i++)
        tls_cert_clear(&b.certs[i]);
    free(b.certs);
    X509_STORE_free(b.store);
    sk_X509_NAME_pop_free(b.ca_names, X509_NAME_free);
    ERR_clear_error();
    return s;
}
