#include "l4/l4_route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/worker.h"
#include "l4/l4_conn.h"
#include "net/host_pattern.h"
#include "tls/client_hello.h"

static bool route_matches(const struct cfg_route *r, const char *sni, const char *const *alpn,
                          size_t n_alpn)
{
    if (r->sni && (!sni || !host_pattern_matches(r->sni, sni, strlen(sni))))
        return false;
    if (r->alpn) {
        bool offered = false;
        for (size_t i = 0; i < n_alpn && !offered; i++)
            offered = strcmp(r->alpn, alpn[i]) == 0;
        if (!offered)
            return false;
    }
    return r->action == ROUTE_BACKEND;
}

int l4_route_pick(const struct cfg_listener *l, const char *sni, const char *const *alpn,
                  size_t n_alpn)
{
    /* pass 0: exact SNI; pass 1: wildcard SNI; pass 2: no SNI condition */
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < l->n_routes; i++) {
            const struct cfg_route *r = &l->routes[i];
            int kind = !r->sni ? 2 : (r->sni[0] == '*' ? 1 : 0);
            if (kind == pass && route_matches(r, sni, alpn, n_alpn))
                return r->backend_index;
        }
    }
    return l->backend_index;
}

static bool host_allowed(const struct cfg_listener *l, const char *sni)
{
    if (l->hosts.count == 0)
        return true;
    return sni && host_patterns_match(l->hosts.items, l->hosts.count, sni, strlen(sni));
}

void l4_route_and_connect(struct l4_conn *c, const char *sni, const char *const *alpn,
                          size_t n_alpn)
{
    const struct cfg_listener *l = c->conn.listener->cfg;
    if (sni && !host_allowed(l, sni)) {
        c->error = "SNI not in the listener's hosts";
        l4_conn_close(c, TERM_NO_ROUTE);
        return;
    }
    int bi = l4_route_pick(l, sni, alpn, n_alpn);
    if (bi < 0) {
        if (!c->error)
            c->error = sni ? "no route for this SNI" : "no SNI and no default backend";
        l4_conn_close(c, TERM_NO_ROUTE);
        return;
    }
    c->at.backend = &c->conn.rt->backends[bi];
    c->idle_ms = l->idle_timeout_ms;
    if (c->at.backend->cfg->timeout_ms < c->idle_ms)
        c->idle_ms = c->at.backend->cfg->timeout_ms;
    l4_connect_next(c);
}

static struct tls_conn_info *tls_info(struct l4_conn *c)
{
    if (!c->tls)
        c->tls = calloc(1, sizeof(*c->tls));
    return c->tls;
}

void l4_route_peek_hello(struct l4_conn *c)
{
    const struct cfg_listener *l = c->conn.listener->cfg;
    /* record headers add bytes on top of the ClientHello itself: allow twice the cap */
    size_t max = l->client_hello_max, window = 2 * max;
    if (!c->peek && !(c->peek = malloc(window))) {
        c->error = "out of memory";
        l4_conn_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    ssize_t n = recv(c->client.h.fd, c->peek, window, MSG_PEEK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            c->client.readable = false;
            return;
        }
        c->error = strerror(errno);
        l4_conn_close(c, TERM_CLIENT_RESET);
        return;
    }
    if (n == 0) {
        c->error = "closed before sending a ClientHello";
        l4_conn_close(c, TERM_CLIENT_CLOSED);
        return;
    }
    struct ch_info info;
    const char *reason = NULL;
    int r = ch_parse(c->peek, (size_t)n, max, &info, &reason);
    if (r == CH_NEED_MORE && (size_t)n >= window) {
        r = CH_TOO_LARGE;
        reason = "ClientHello spread over too many records";
    }
    if (r == CH_NEED_MORE) {
        c->client.readable = false; /* the next segment brings a new event */
        return;
    }
    free(c->peek);
    c->peek = NULL;
    if (r == CH_NOT_TLS) {
        c->error = "not a TLS client";
        l4_route_and_connect(c, NULL, NULL, 0);
        return;
    }
    if (r != CH_OK) {
        c->error = reason ? reason : "malformed ClientHello";
        l4_conn_close(c, r == CH_TOO_LARGE ? TERM_CLIENT_HELLO_TOO_LARGE : TERM_BAD_CLIENT_HELLO);
        return;
    }
    struct tls_conn_info *ti = tls_info(c);
    if (ti) {
        if (info.has_sni)
            snprintf(ti->sni, sizeof(ti->sni), "%s", info.sni);
        if (info.n_alpn > 0)
            snprintf(ti->alpn, sizeof(ti->alpn), "%s", info.alpn[0]);
    }
    if (!info.has_sni)
        c->error = "ClientHello without SNI";
    const char *alpn[CH_ALPN_MAX];
    for (int i = 0; i < info.n_alpn; i++)
        alpn[i] = info.alpn[i];
    l4_route_and_connect(c, info.has_sni ? info.sni : NULL, alpn, (size_t)info.n_alpn);
}
