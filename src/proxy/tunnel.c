#include "proxy/tunnel.h"

#include <errno.h>

static enum term reset_reason(int err, bool client_side)
{
    if (err == -ECONNRESET || err == -EPIPE)
        return client_side ? TERM_CLIENT_RESET : TERM_SERVER_RESET;
    return client_side ? TERM_CLIENT_ERROR : TERM_SERVER_ERROR;
}

/* One direction; returns TUNNEL_OPEN or TUNNEL_DONE/FAILED with the outputs set. */
static enum tunnel_state run_dir(const struct tunnel *t, struct pump_ctx *x, struct pump_dir *d,
                                 struct sock *src, struct sock *dst, uint8_t *first_fin,
                                 enum term *why, struct sock **failed, int *err)
{
    enum pump_result r = pump_run(x, d, src, dst, true, err);
    if (r == PUMP_OK) {
        if (src->eof && *first_fin == TERM_NONE)
            *first_fin = src == t->client ? TERM_CLIENT_CLOSED : TERM_SERVER_CLOSED;
        pump_forward_fin(d, src, dst);
        return TUNNEL_OPEN;
    }
    *failed = r == PUMP_SRC_ERR ? src : dst;
    bool client_side = *failed == t->client;
    if (*first_fin != TERM_NONE && (*failed)->eof) {
        *why = (enum term) * first_fin; /* that side had already finished cleanly */
        return TUNNEL_DONE;
    }
    *why = reset_reason(*err, client_side);
    return TUNNEL_FAILED;
}

enum tunnel_state tunnel_run(const struct tunnel *t, struct pump_ctx *x_up, struct pump_ctx *x_down,
                             uint8_t *first_fin, enum term *why, struct sock **failed, int *err)
{
    enum tunnel_state st =
        run_dir(t, x_up, t->up, t->client, t->server, first_fin, why, failed, err);
    if (st != TUNNEL_OPEN)
        return st;
    st = run_dir(t, x_down, t->down, t->server, t->client, first_fin, why, failed, err);
    if (st != TUNNEL_OPEN)
        return st;
    if (t->client->shut && t->server->shut && !t->client->unflushed && !t->server->unflushed) {
        *why = *first_fin != TERM_NONE ? (enum term) * first_fin : TERM_CLIENT_CLOSED;
        return TUNNEL_DONE;
    }
    return TUNNEL_OPEN;
}
