#include "proxy/tls_step.h"

#include <ctype.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "core/stats.h"
#include "core/strbuf.h"
#include "net/listen.h"
#include "tls/tls_client.h"
#include "tls/tls_info.h"
#include "tls/tls_io.h"
#include "tls/tls_server.h"

static int attach(struct sock *s, SSL *ssl)
{
    if (!ssl)
        return -1;
    if (tls_sock_attach(ssl, s->h.fd) < 0) {
        SSL_free(ssl);
        return -1;
    }
    /* A peer that closes TCP without close_notify (most do) ends its stream like a FIN
     * (see proxy/pump.c). Without this option OpenSSL treats that EOF as a fatal error
     * and drops the session from the cache, so that TLS 1.2 session-id and TLS 1.3
     * stateful resumption (session_tickets: false) would rarely work. */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    s->ssl = ssl;
    return 0;
}

int tls_step_server_init(struct sock *s, struct tls_server *srv)
{
    return attach(s, tls_server_ssl_new(srv));
}

int tls_step_client_init(struct sock *s, struct tls_client *cl, const char *host)
{
    return attach(s, tls_client_ssl_new(cl, host));
}

bool tls_step_ready(const struct sock *s)
{
    if (s->ssl && SSL_want_read(s->ssl))
        return s->readable;
    if (s->ssl && SSL_want_write(s->ssl))
        return s->writable;
    return s->readable || s->writable;
}

/* True while a server side has received part of a ClientHello and waits for the rest
 * (a partial record in OpenSSL's read-ahead buffer, or a message split over records). */
static bool hello_incomplete(SSL *ssl)
{
    if (!SSL_is_server(ssl))
        return false;
    OSSL_HANDSHAKE_STATE st = SSL_get_state(ssl);
    return st == TLS_ST_SR_CLNT_HELLO || (st == TLS_ST_BEFORE && SSL_has_pending(ssl));
}

int tls_step_run(struct sock *s, char *err, size_t errlen)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        /* With read-ahead, the step that completes the handshake may also have read the
         * peer's first records (often in the same segment as its Finished), even in a
         * step run for writability while `readable` was clear: those bytes raise no new
         * edge, so the socket must count as readable for them to be fetched. */
        if (SSL_has_pending(s->ssl))
            s->readable = true;
        return 1;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->readable = false;
        /* A TLS listener's sockets start with delayed ACKs so that the ClientHello's ACK
         * rides on the ServerHello; but a ClientHello spanning segments must be
         * acknowledged now: a client with Nagle's algorithm on may hold its short last
         * segment until then, and the delayed ACK would cost it 40 ms and more. */
        if (hello_incomplete(s->ssl))
            tcp_quickack(s->h.fd, true);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        sock_blocked(s);
        return 0;
    default:
        tls_ssl_error(s->ssl, err, errlen);
        return -1;
    }
}

static int version_index(const char *v)
{
    static const char *const names[TLS_VERSIONS] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    for (int i = 0; v && i < TLS_VERSIONS; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

void tls_step_accepted(struct sock *s, struct listener_slot *ls, uint64_t elapsed_ms,
                       struct tls_conn_info *ti)
{
    struct tls_peer_info pi;
    tls_peer_info(s->ssl, &pi);
    /* DNS names are case-insensitive: log and route the SNI lowercased, as passthrough
     * (which reads it from the raw ClientHello) does */
    for (char *p = pi.sni; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int vi = version_index(pi.version);
    if (vi >= 0)
        counter_add(&ls->tls_handshakes[vi], 1);
    hist_observe(&ls->tls_handshake, elapsed_ms * 1000);
    if (!ti)
        return;
    snprintf(ti->sni, sizeof(ti->sni), "%s", pi.sni);
    snprintf(ti->alpn, sizeof(ti->alpn), "%s", pi.alpn);
    snprintf(ti->version, sizeof(ti->version), "%s", pi.version ? pi.version : "");
    snprintf(ti->cipher, sizeof(ti->cipher), "%s", pi.cipher ? pi.cipher : "");
    if (pi.peer_verified) {
        snprintf(ti->client_subject, sizeof(ti->client_subject), "%s", pi.peer_subject);
        snprintf(ti->client_fingerprint, sizeof(ti->client_fingerprint), "%s", pi.peer_fingerprint);
        snprintf(ti->client_verify, sizeof(ti->client_verify), "SUCCESS");
    } else if (SSL_get0_peer_certificate(s->ssl)) {
        long v = SSL_get_verify_result(s->ssl);
        snprintf(ti->client_verify, sizeof(ti->client_verify), "FAILED:%s",
                 v == X509_V_OK ? "not verified" : X509_verify_cert_error_string(v));
    } else {
        snprintf(ti->client_verify, sizeof(ti->client_verify), "NONE");
    }
}

void tls_conn_info_log(struct strbuf *sb, const struct tls_conn_info *ti)
{
    if (!ti)
        return;
    static const struct {
        const char *key;
        size_t off;
    } fields[] = {
        {"sni", offsetof(struct tls_conn_info, sni)},
        {"alpn", offsetof(struct tls_conn_info, alpn)},
        {"tls_version", offsetof(struct tls_conn_info, version)},
        {"tls_cipher", offsetof(struct tls_conn_info, cipher)},
        {"client_subject", offsetof(struct tls_conn_info, client_subject)},
        {"client_fingerprint", offsetof(struct tls_conn_info, client_fingerprint)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = (const char *)ti + fields[i].off;
        if (v[0])
            sb_json_kv_str(sb, fields[i].key, v);
    }
}
