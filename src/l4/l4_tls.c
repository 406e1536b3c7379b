/* TLS on either side of a Layer 4 connection: the handshakes of proxy/tls_step.c, under
 * the worker's handshake budget, and what follows them (routing by SNI, established). */
#include "l4/l4_tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/worker.h"
#include "l4/l4_conn.h"
#include "l4/l4_route.h"
#include "tls/tls_info.h"

static struct tls_conn_info *tls_info(struct l4_conn *c)
{
    if (!c->tls)
        c->tls = calloc(1, sizeof(*c->tls));
    return c->tls;
}

const char *l4_tls_io_error(struct l4_conn *c, SSL *ssl)
{
    struct tls_conn_info *ti = tls_info(c);
    if (!ti) {
        ERR_clear_error();
        return "TLS error";
    }
    return tls_ssl_error(ssl, ti->error, sizeof(ti->error));
}

/* Runs one handshake step on side s. Returns 1 done, 0 wants I/O, -1 failed (with the
 * reason stored in c->tls->error and c->error). */
static int handshake_step(struct l4_conn *c, struct sock *s)
{
    struct tls_conn_info *ti = tls_info(c);
    char fallback[160];
    int r = tls_step_run(s, ti ? ti->error : fallback, ti ? sizeof(ti->error) : sizeof(fallback));
    if (r < 0)
        c->error = ti ? ti->error : "TLS handshake failed";
    return r;
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
    if (!c->client.ssl && tls_step_server_init(&c->client, c->conn.listener->tls) < 0) {
        c->error = "cannot create TLS session";
        l4_conn_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    if (!tls_step_ready(&c->client) || !take_step(c))
        return;
    int r = handshake_step(c, &c->client);
    if (r == 0)
        return;
    if (r < 0) { /* counted as a handshake error by l4_conn_close */
        log_debug("listener %s: TLS handshake failed: %s", c->conn.listener->cfg->name, c->error);
        l4_conn_close(c, TERM_TLS_ERROR);
        return;
    }
    struct tls_conn_info *ti = tls_info(c);
    tls_step_accepted(&c->client, ls, loop_now(&c->conn.w->loop) - c->conn.start_ms, ti);
    const char *sni = ti && ti->sni[0] ? ti->sni : NULL;
    const char *alpn[1] = {ti ? ti->alpn : ""};
    l4_route_and_connect(c, sni, alpn, alpn[0][0] ? 1 : 0);
}

int l4_tls_start_server(struct l4_conn *c)
{
    if (tls_step_client_init(&c->srv, c->at.backend->tls, c->at.server->addr.host) < 0) {
        c->error = "cannot create TLS session to the server";
        return -1;
    }
    return 0;
}

void l4_tls_connect_step(struct l4_conn *c)
{
    if (!tls_step_ready(&c->srv) || !take_step(c))
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
