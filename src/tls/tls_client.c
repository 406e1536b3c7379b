/* TLS backend (client) context.
 *
 * One SSL_CTX per backend. Sessions are cached per (server host, SNI) in a small table
 * owned by the SSL_CTX itself (ex_data freed with the context), so the cache lives exactly
 * as long as some connection or the owner still holds the context. A resumed session
 * skips certificate verification, which is sound because the cache belongs to one
 * context (one trust configuration) and its key includes the name that was verified. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_client.h"
#include "tls/tls_internal.h"

#define SESS_SLOTS 64
#define TLS_VERIFY_DEPTH 10

struct sess_slot {
    char *key; /* "host\nsni" */
    SSL_SESSION *sess;
};

struct sess_cache {
    pthread_mutex_t lock;
    struct sess_slot slots[SESS_SLOTS];
};

struct tls_client {
    SSL_CTX *ctx;
    char *sni; /* configured SNI or NULL */
    bool verify;
};

static int ctx_idx = -1, ssl_key_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct sess_cache *c = ptr;
    if (c == NULL)
        return;
    for (int i = 0; i < SESS_SLOTS; i++) {
        free(c->slots[i].key);
        SSL_SESSION_free(c->slots[i].sess);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void idx_init(void)
{
    ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, cache_free);
    ssl_key_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, key_free);
}

static unsigned slot_of(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % SESS_SLOTS;
}

/* OpenSSL hands us each new session (TLS 1.2 after the handshake, TLS 1.3 per ticket). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct sess_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
    const char *key = SSL_get_ex_data(ssl, ssl_key_idx);
    if (c == NULL || key == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    char *k = strdup(key);
    if (k == NULL)
        return 0;
    struct sess_slot *s = &c->slots[slot_of(key)];
    pthread_mutex_lock(&c->lock);
    free(s->key);
    SSL_SESSION_free(s->sess);
    s->key = k;
    s->sess = sess;
    pthread_mutex_unlock(&c->lock);
    return 1; /* we keep the reference */
}

/* Offers the cached session for `key`, if any. */
static void offer_session(SSL *ssl, struct sess_cache *c, const char *key)
{
    struct sess_slot *s = &c->slots[slot_of(key)];
    SSL_SESSION *sess = NULL;
    pthread_mutex_lock(&c->lock);
    if (s->key != NULL && strcmp(s->key, key) == 0 && s->sess != NULL) {
        sess = s->sess;
        SSL_SESSION_up_ref(sess);
    }
    pthread_mutex_unlock(&c->lock);
    if (sess == NULL)
        return;
    /* OpenSSL marks a TLS 1.3 session as used up once a handshake with it ends (RFC 8446
     * advice against ticket reuse, which is about client privacy, not our concern): hand
     * the connection a copy so the cached one stays usable for the next connections. */
    SSL_SESSION *copy = SSL_SESSION_is_resumable(sess) ? SSL_SESSION_dup(sess) : NULL;
    if (copy != NULL)
        SSL_set_session(ssl, copy);
    SSL_SESSION_free(copy);
    SSL_SESSION_free(sess);
}

void tls_client_free(struct tls_client *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    free(c->sni);
    free(c);
}

struct tls_client *tls_client_new(const struct cfg_backend *b, char *err, size_t errlen)
{
    const char *bname = b->name != NULL ? b->name : "?";
    struct cfg_backend_tls defaults = {.verify = true};
    const struct cfg_backend_tls *t = b->has_tls ? &b->tls : &defaults;
    struct tls_client *c = NULL;
    struct tls_cert cert = {0};
    struct sess_cache *cache = NULL;
    char why[768];

    pthread_once(&idx_once, idx_init);
    if (ctx_idx < 0 || ssl_key_idx < 0) {
        snprintf(err, errlen, "backend %s: OpenSSL ex_data index unavailable", bname);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    cache = calloc(1, sizeof(*cache));
    if (c == NULL || cache == NULL)
        goto oom;
    pthread_mutex_init(&cache->lock, NULL);
    c->verify = t->verify;
    if (t->sni != NULL && (c->sni = strdup(t->sni)) == NULL)
        goto oom;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL)
        goto oom;
    if (SSL_CTX_set_ex_data(c->ctx, ctx_idx, cache) != 1)
        goto oom;
    cache = NULL; /* owned by the context now */

    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    tls_ctx_io_settings(c->ctx);
    SSL_CTX_set_session_cache_mode(c->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ctx, new_session_cb);
    /* an https backend offers the one protocol it speaks: HTTP/1.1 (a server choosing by
       ALPN must not pick h2), or h2 with http.version 2 */
    static const unsigned char http11[] = "\x08http/1.1", h2[] = "\x02h2";
    bool v2 = b->http.version == 2;
    if (b->protocol == PROTO_HTTPS &&
        SSL_CTX_set_alpn_protos(c->ctx, v2 ? h2 : http11,
                                v2 ? sizeof(h2) - 1 : sizeof(http11) - 1) != 0)
        goto oom;

    if (t->verify) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(c->ctx, TLS_VERIFY_DEPTH);
        if (t->ca != NULL) {
            X509_STORE *store = SSL_CTX_get_cert_store(c->ctx);
            if (tls_load_ca(t->ca, store, NULL, NULL, why, sizeof(why)) < 0) {
                snprintf(err, errlen, "backend %s: tls.ca: %s", bname, why);
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
            tls_errf(why, sizeof(why), "system trust store");
            snprintf(err, errlen, "backend %s: tls: %s", bname, why);
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }

    if (t->cert != NULL || t->key != NULL) {
        if (t->cert == NULL || t->key == NULL) {
            snprintf(err, errlen, "backend %s: tls.cert and tls.key go together", bname);
            goto fail;
        }
        if (tls_load_cert(&cert, t->cert, t->key, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "backend %s: tls.cert: %s", bname, why);
            goto fail;
        }
        if (SSL_CTX_use_cert_and_key(c->ctx, cert.leaf, cert.key, cert.chain, 1) != 1) {
            tls_errf(why, sizeof(why), "certificate %s: cannot use it", t->cert);
            snprintf(err, errlen, "backend %s: tls.cert: %s", bname, why);
            goto fail;
        }
        tls_cert_clear(&cert);
    }
    ERR_clear_error();
    return c;

oom:
    snprintf(err, errlen, "backend %s: out of memory", bname);
fail:
    if (cache != NULL) {
        pthread_mutex_destroy(&cache->lock);
        free(cache);
    }
    tls_cert_clear(&cert);
    tls_client_free(c);
    ERR_clear_error();
    return NULL;
}

/* Strips "[...]" around an IPv6 literal into buf; true when `host` is an IP address. */
static bool host_is_ip(const char *host, char *buf, size_t buflen)
{
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len + 1 > buflen)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    unsigned char tmp[16];
    return inet_pton(AF_INET, buf, tmp) == 1 || inet_pton(AF_INET6, buf, tmp) == 1;
}

SSL *tls_client_ssl_new_sni(struct tls_client *c, const char *server_host, const char *sni)
{
    char ip[64];
    bool is_ip = server_host != NULL && host_is_ip(server_host, ip, sizeof(ip));
    const char *name = sni != NULL ? sni : c->sni;
    if (name == NULL && server_host != NULL && !is_ip)
        name = server_host;

    SSL *ssl = SSL_new(c->ctx);
    if (ssl == NULL)
        return NULL;
    SSL_set_connect_state(ssl);
    if (name != NULL && SSL_set_tlsext_host_name(ssl, name) != 1)
        goto fail;
    if (c->verify) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (name != NULL) {
            if (SSL_set1_host(ssl, name) != 1)
                goto fail;
        } else if (is_ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) != 1)
                goto fail;
        }
    }

    /* session cache key: the server and the name it was verified for */
    const char *h = server_host != NULL ? server_host : "";
    const char *n = name != NULL ? name : "";
    size_t klen = strlen(h) + strlen(n) + 2;
    char *key = malloc(klen);
    if (key == NULL)
        goto fail;
    snprintf(key, klen, "%s\n%s", h, n);
    if (SSL_set_ex_data(ssl, ssl_key_idx, key) != 1) {
        free(key);
        goto fail;
    }
    struct sess_cache *cache = SSL_CTX_get_ex_data(c->ctx, ctx_idx);
    if (cache != NULL)
        offer_session(ssl, cache, key);
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

SSL *tls_client_ssl_new(struct tls_client *c, const char *server_host)
{
    return tls_client_ssl_new_sni(c, server_host, NULL);
}
