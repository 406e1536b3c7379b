/* A client connection, whatever its protocol: what the worker knows of it.
 *
 * The worker accepts a socket, reserves a connection slot (global and listener limits)
 * and hands the socket to the listener's protocol (rt_listener.proto->start). From there
 * the protocol owns the socket and the connection object, whose first member is a
 * struct conn. The worker reaches an open connection only through its ops: close it at
 * shutdown, re-arm its deadline after a drain change. The protocol gives everything back
 * with conn_release() at the end of its close: the worker's list, the slot, the runtime
 * reference and the memory (freed after the loop turn).
 *
 * Layer 4 (tcp/tls) implements conn_ops in src/l4/; HTTP will implement its own. */
#ifndef SLUICE_PROXY_CONN_H
#define SLUICE_PROXY_CONN_H

#include <stdint.h>
#include <sys/socket.h>

#include "proxy/term.h"

struct conn;
struct worker;
struct runtime;
struct rt_listener;

struct conn_ops {
    const char *name;
    /* Handles an accepted socket fd of listener l, for which the worker reserved a slot.
     * Takes ownership of fd and of the slot: on any failure, closes fd and gives the slot
     * back (conn_release, or conn_release_slot when no object was made). */
    void (*start)(struct worker *w, struct rt_listener *l, int fd, const struct sockaddr *peer,
                  socklen_t peer_len);
    /* Ends the connection now with `why` (shutdown_timeout reached, second signal). */
    void (*close)(struct conn *c, enum term why);
    /* A server's drain deadline changed: re-evaluate the connection's deadline. */
    void (*rearm)(struct conn *c);
    /* Runs the expensive step that the worker's budget deferred (worker_budget_take). */
    void (*step)(struct conn *c);
    /* Graceful stop began (optional): finish what is in progress, take nothing new
     * (HTTP: an idle keep-alive connection closes now, a busy one after its response). */
    void (*stop)(struct conn *c);
    /* Work that worker_soon() queued (optional): runs after the current batch of events,
     * outside any other connection's call stack (HTTP/2: send what its streams wrote). */
    void (*soon)(struct conn *c);
};

struct conn {
    struct conn *prev, *next; /* the worker's list of open connections */
    const struct conn_ops *ops;
    struct worker *w;
    struct runtime *rt; /* snapshot this connection started with (reference) */
    struct rt_listener *listener;
    struct conn *step_prev, *step_next; /* the worker's queue of deferred steps */
    struct conn *soon_next;             /* the worker's queue of worker_soon() work */
    bool soon_queued;
    uint64_t start_ms;
};

/* Starts c's life on worker w for listener l (c zeroed by the caller): links it into the
 * worker's list, takes a reference to the worker's current snapshot and counts the
 * accepted connection. */
void conn_init(struct conn *c, const struct conn_ops *ops, struct worker *w, struct rt_listener *l);

/* The end of every close: unlinks c (and its deferred step), gives back the slot and the
 * snapshot, and frees c once the current loop turn is over. */
void conn_release(struct conn *c);

/* Puts `to` in the place of `from` (the same listener slot, snapshot reference, start time
 * and place in the worker's list) with other ops: a connection that changes protocol
 * (HTTP/1.1 to HTTP/2). `from` is left unlinked; the caller frees it (loop_defer_free). */
void conn_replace(struct conn *from, struct conn *to, const struct conn_ops *ops);

/* Gives back a slot reserved for a connection that never got an object (out of memory). */
void conn_release_slot(struct rt_listener *l);

#endif
