/* Connections to servers that outlive one HTTP exchange: a per-worker, per-server pool of
 * idle keep-alive connections. Lock-free: the idle list of (worker, server) hangs off the
 * server's per-worker slot (server objects outlive reloads), and only that worker touches
 * it. Every idle connection of a worker is also on the worker's list (pool_all), so that
 * draining servers and the worker's exit reach them whatever the current snapshot.
 *
 * An idle connection stays registered for input (EPOLLIN | EPOLLRDHUP): an event while
 * idle (the server's FIN, a reset, stray bytes; on TLS a close_notify or data, but not a
 * session ticket) closes it, so a connection the server closed is noticed before it is
 * reused, without a peek per request. A TLS connection keeps its session for its life:
 * one handshake serves all its requests. Its own timer closes
 * it after keepalive.idle_timeout. A leased connection belongs to its leaseholder, whose
 * handler gets its events (on_io). */
#ifndef SLUICE_UPSTREAM_POOL_H
#define SLUICE_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/addr.h"
#include "proxy/sock.h"

struct server;
struct worker;

struct upconn {
    struct sock sock; /* first: sock.h is the epoll cookie */
    struct timer timer;
    struct server *server;              /* reference, for the life of the connection */
    struct upconn *prev, *next;         /* idle list of (worker, server) */
    struct upconn *all_prev, *all_next; /* the worker's list of idle connections */
    struct worker *w;
    unsigned requests; /* requests sent on it */
    bool idle;
    /* A connection that began with a PROXY header speaks for the client connection it
     * names (client and local address, ports included): only that one may reuse it. */
    bool has_peer;
    union sockaddr_any peer_client, peer_local;
    /* leaseholder's handler and cookie (while leased) */
    void (*on_io)(struct upconn *u, uint32_t events);
    void *owner;
};

/* A new connection object for server s (reference taken), its socket not open yet
 * (sock.h.fd = -1; the caller connects it). NULL when out of memory. */
struct upconn *upconn_new(struct worker *w, struct server *s);

/* Closes and frees u (leased, idle, or never pooled). `notify`: the connection ends
 * cleanly, so a TLS one sends its close_notify first (sock_close). */
void upconn_close(struct upconn *u, bool notify);
/* upconn_close without close_notify: the connection failed or is abandoned mid-exchange. */
void upconn_free(struct upconn *u);

/* The newest idle connection to s on worker w that speaks for (client, local), or, when
 * client is NULL, that began with no PROXY header; leased (removed from the pool), or
 * NULL. */
struct upconn *upool_take(struct worker *w, struct server *s, const struct sockaddr *client,
                          const struct sockaddr *local);

/* Ends u's lease: pools it as idle, or closes it when the server is leaving (removed,
 * not enabled, draining), the pool of (worker, server) already holds max_idle, or the
 * socket is not clean (ended, failed, or bytes waiting). */
void upool_put(struct upconn *u, int max_idle, uint64_t idle_timeout_ms);

/* Closes the idle connections of w whose server is leaving (after a drain change). */
void upool_drain_check(struct worker *w);

/* Closes every idle connection of w (at exit). */
void upool_close_all(struct worker *w);

#endif
