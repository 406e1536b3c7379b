/* Finding and connecting to a server of a backend, for one client exchange: balancing
 * with retries (servers already tried are skipped), the connect itself, passive health
 * (consecutive connect failures on live traffic) and the PROXY header towards servers.
 * The mechanism only: the caller (L4 today, HTTP next) decides when to retry and how an
 * exchange ends. Worker thread; no allocation. */
#ifndef SLUICE_UPSTREAM_CONNECT_H
#define SLUICE_UPSTREAM_CONNECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/runtime.h"
#include "proxy/sock.h"

#define UP_MAX_TRIES 17

/* One exchange's search for a server. Zeroed, then `backend` set by the caller. */
struct up_attempt {
    struct rt_backend *backend;
    struct server *server; /* current (reference), NULL when none */
    uint64_t start_ms;     /* the first connect attempt, for the connect time */
    bool counted;          /* server->lb.active was incremented */
    uint8_t n_tried;
    int tried[UP_MAX_TRIES]; /* indexes into backend->servers */
};

enum up_pick_result {
    UP_PICKED,    /* a->server is the next server to try */
    UP_NO_SERVER, /* no server was usable for a first attempt (all down, drained, full) */
    UP_GIVE_UP,   /* tries exhausted (retries + 1) or no untried server left */
};

/* The balancing key of a client address (consistent_hash, affinity.client_ip), or 0 when
 * the backend does not hash. */
uint64_t up_client_key(const struct rt_backend *b, const struct sockaddr *client);

/* Picks the next untried server of a->backend (affinity pool first when configured),
 * takes a reference and counts it active. */
enum up_pick_result up_pick(struct up_attempt *a, int worker, uint64_t key);

/* Takes backend->servers[idx] as the next server to try (a choice made by the caller,
 * e.g. cookie affinity), like up_pick; the caller checked that tries remain. */
void up_pick_index(struct up_attempt *a, int idx);

/* Starts a non-blocking connect of a new socket to a->server into s->h.fd (plus
 * TCP_NODELAY), and registers it with s->loop (input, and output while connecting).
 * `eager`: the caller has bytes to send at once, so an already established connection
 * (TCP_INFO, as on loopback) is worth one getsockopt to skip the writability event;
 * *done tells so. Returns 0, or -1 with *why (the socket, if any, is left in s for the
 * caller to close). */
int up_connect(struct up_attempt *a, struct sock *s, bool eager, bool *done, const char **why,
               uint64_t now);

/* A connecting socket reported writability or an error: 0 when connected, else the
 * errno of the failure. On success, drops EPOLLOUT from its interest and resets the
 * server's passive failure count. */
int up_connect_result(struct up_attempt *a, struct sock *s);

/* The attempt on a->server failed (`why` for the log): counts the failure, applies
 * passive health (the third consecutive failure takes a probed server down, logged once)
 * and lets the server go (up_release). */
void up_failed(struct up_attempt *a, int worker, const char *why);

/* Lets a->server go: the active count and the reference. The socket is the caller's. */
void up_release(struct up_attempt *a);

/* Sends a PROXY header (version 1 or 2) for client -> local, with the TLS details as
 * v2 TLVs, on the freshly connected socket s. Returns 0 or -1. */
int up_send_proxy_header(struct sock *s, int version, const struct sockaddr *client,
                         const struct sockaddr *local, const char *alpn, const char *sni);

#endif
