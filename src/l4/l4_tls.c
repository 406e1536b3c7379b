/* TLS on either side of a Layer 4 connection. Handshakes are driven by socket events:
 * each step runs SSL_do_handshake until it completes or wants I/O; the edge-triggered
 * readiness flags of the side are cleared when OpenSSL wants that kind of I/O. */
#include "l4/l4_tls.h"

#include <ctype.h>
#include <openssl/err.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "l4/l4_conn.h"
#include "l4/l4_route.h"
#include "net/listen.h"
#include "tls/tls_client.h"
#include "tls/tls_info.h"
#include "tls/tls_io.h"
#include "tls/tls_server.h"

static struct l4_tls_info *tls_info(struct l4_conn *c)
{
    if (!c->tls)
        c->tls = calloc(1, sizeof(*c->tls));
    return c->tls;
}

const char *l4_tls_io_error(struct l4_conn *c, SSL *ssl)
{
    struct l4_tls_info *ti = tls_info(c);
    if (!ti) {
        ERR_clear_error();
        return "TLS error";
    }
    return tls_ssl_error(ssl, ti->error, sizeof(ti->error));
}

static int version_index(const char *v)
{
    if (!v)
        return -1;
    if (strcmp(v, "TLSv1.3") == 0)
        return 3;
    if (strcmp(v, "TLSv1.2") == 0)
        return 2;
    if (strcmp(v, "TLSv1.1") == 0)
        return 1;
    if (strcmp(v, "TLSv1") == 0)
        return 0;
    return -1;
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

/* Runs one handshake step on side s. Returns 1 done, 0 wants I/O, -1 failed (with the
 * reason stored in c->tls->error and c->error). */
static int handshake_step(struct l4_conn *c, struct sock *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        /* With read-ahead, the step that completes the handshake may also have read the
         * peer's first records (often in the same segment as its Finished), even in a
         * step run for writability while `readable` was clear: those bytes raise no new
         * edge, so the side must count as readable for the pump to fetch them. */
        if (SSL_has_pending(s->ssl))
            s->readable = true;
        return 1;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->readable = false;
        /* A `tls` listener's sockets start with delayed ACKs so that the ClientHello's
         * ACK rides on the ServerHello; but a ClientHello spanning segments must be
         * acknowledged now: a client with Nagle's algorithm on may hold its short last
         * segment until then, and the delayed ACK would cost it 40 ms and more. */
        if (hello_incomplete(s->ssl))
            tcp_quickack(s->h.fd, true);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        sock_blocked(s);
        return 0;
    default: {
        struct l4_tls_info *ti = tls_info(c);
        if (ti) {
            tls_ssl_error(s->ssl, ti->error, sizeof(ti->error));
            c->error = ti->error;
        } else {
            c->error = "TLS handshake failed";
        }
        return -1;
    }
    }
}

/* True when side s has the readiness its handshake waits for: a step for a write-only
 * event while OpenSSL waits for bytes would only cost a read that says EAGAIN. */
static bool step_ready(const struct sock *s)
{
    if (s->ssl && SSL_want_read(s->ssl))
        return s->readable;
    if (s->ssl && SSL_want_write(s->ssl))
        return s->writable;
    return s->readable || s->writable;
}

/* ---- handshake budget ---- */

/* True when c may run a handshake step now (and takes one from the worker's budget);
 * otherwise c's step is queued to run in a later turn (l4_tls_run_step). */
static bool take_step(struct l4_conn *c)
{
    return worker_budget_take(c->conn.w, &c->conn);
}

void l4_tls_run_step(struct l4_conn *c)
{
    if (c->state == L4_TLS_ACCEPT)
        l4_tls_accept_step(c);
    else if (c->state == L4_TLS_CONNECT)
        l4_tls_connect_step(c);
}

void l4_tls_accept_step(struct l4_conn *c)
{
    struct listener_slot *ls = &c->conn.listener->stats->slots[c->conn.w->index];
    if (!c->client.ssl) {
        c->client.ssl = tls_server_ssl_new(c->conn.listener->tls);
        if (!c->client.ssl || tls_sock_attach(c->client.ssl, c->client.h.fd) < 0) {
            c->error = "cannot create TLS session";
            l4_conn_close(c, TERM_INTERNAL_ERROR);
            return;
        }
        /* A client that closes TCP without close_notify (most do) ends its stream like a
         * FIN (see proxy/pump.c). Without this option OpenSSL treats that EOF as a fatal
         * error and drops the session from the server cache, so that TLS 1.2 session-id
         * and TLS 1.3 stateful resumption (session_tickets: false) would rarely work. */
        SSL_set_options(c->client.ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    }
    if (!step_ready(&c->client) || !take_step(c))
        return;
    int r = handshake_step(c, &c->client);
    if (r == 0)
        return;
    if (r < 0) { /* counted as a handshake error by l4_conn_close */
        log_debug("listener %s: TLS handshake failed: %s", c->conn.listener->cfg->name, c->error);
        l4_conn_close(c, TERM_TLS_ERROR);
        return;
    }
    struct tls_peer_info pi;
    tls_peer_info(c->client.ssl, &pi);
    /* DNS names are case-insensitive: log and route the SNI lowercased, as passthrough
     * (which reads it from the raw ClientHello) does */
    for (char *p = pi.sni; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int vi = version_index(pi.version);
    if (vi >= 0)
        counter_add(&ls->tls_handshakes[vi], 1);
    hist_observe(&ls->tls_handshake, (loop_now(&c->conn.w->loop) - c->conn.start_ms) * 1000);
    struct l4_tls_info *ti = tls_info(c);
    if (ti) {
        snprintf(ti->sni, sizeof(ti->sni), "%s", pi.sni);
        snprintf(ti->alpn, sizeof(ti->alpn), "%s", pi.alpn);
        snprintf(ti->version, sizeof(ti->version), "%s", pi.version ? pi.version : "");
        snprintf(ti->cipher, sizeof(ti->cipher), "%s", pi.cipher ? pi.cipher : "");
        if (pi.peer_verified) {
            snprintf(ti->client_subject, sizeof(ti->client_subject), "%s", pi.peer_subject);
            snprintf(ti->client_fingerprint, sizeof(ti->client_fingerprint), "%s",
                     pi.peer_fingerprint);
        }
    }
    const char *alpn[1] = {pi.alpn};
    l4_route_and_connect(c, pi.sni[0] ? pi.sni : NULL, alpn, pi.alpn[0] ? 1 : 0);
}

int l4_tls_start_server(struct l4_conn *c)
{
    c->srv.ssl = tls_client_ssl_new(c->at.backend->tls, c->at.server->addr.host);
    if (!c->srv.ssl || tls_sock_attach(c->srv.ssl, c->srv.h.fd) < 0) {
        c->error = "cannot create TLS session to the server";
        return -1;
    }
    SSL_set_options(c->srv.ssl, SSL_OP_IGNORE_UNEXPECTED_EOF); /* same as the client side */
    return 0;
}

void l4_tls_connect_step(struct l4_conn *c)
{
    if (!step_ready(&c->srv) || !take_step(c))
        return;
    int r = handshake_step(c, &c->srv);
    if (r == 0)
        return;
    if (r < 0) {
        log_warn("backend %s: TLS handshake with server %s failed: %s", c->at.backend->cfg->name,
                 c->at.server->address, c->error);
        l4_conn_close(c, TERM_TLS_ERROR);
        return;
    }
    l4_established(c);
}
