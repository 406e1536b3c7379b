/* A byte tunnel: both directions between two sockets, each pumped until its source
 * ends, a FIN (or TLS close_notify) passed on as one once all before it was written
 * (half-close), and the tunnel done when both directions are. A Layer 4 connection is a
 * tunnel from the start; a WebSocket becomes one after its 101. */
#ifndef SLUICE_PROXY_TUNNEL_H
#define SLUICE_PROXY_TUNNEL_H

#include "proxy/pump.h"
#include "proxy/term.h"

struct tunnel {
    struct sock *client, *server;
    struct pump_dir *up, *down; /* up: client -> server; down: server -> client */
};

enum tunnel_state {
    TUNNEL_OPEN,   /* bytes may still move: wait for events */
    TUNNEL_DONE,   /* both sides ended: close with *why (whose FIN came first) */
    TUNNEL_FAILED, /* a socket failed: close with *why (reset or error on that side), *err
                      and *failed tell which and how */
};

/* Moves bytes both ways as far as possible now. x_up / x_down are the pump contexts of
 * the two directions. *first_fin (an enum term, TERM_NONE until a side ended) records
 * which side ended first; a reset from a side that had already ended cleanly is the
 * normal end of the flow, not a failure. */
enum tunnel_state tunnel_run(const struct tunnel *t, struct pump_ctx *x_up, struct pump_ctx *x_down,
                             uint8_t *first_fin, enum term *why, struct sock **failed, int *err);

#endif
