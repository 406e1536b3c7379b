/* The run-time snapshot: one immutable config plus the objects built from it (listening
 * sockets, backend pools, servers, stats, TLS contexts). Workers use the newest snapshot
 * for new connections; every connection holds a reference to the one it started with.
 *
 * runtime_build() is called by the main thread at start and on reload. It reuses from the
 * previous snapshot the listening sockets whose address is unchanged, the server objects
 * that remain (health, counters, open connections carry over) and the stats objects. */
#ifndef SLUICE_CORE_RUNTIME_H
#define SLUICE_CORE_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/stats.h"
#include "upstream/balance.h"
#include "upstream/server.h"

struct tls_server;
struct tls_client;
struct conn_ops;

struct rt_listener {
    const struct cfg_listener *cfg;
    struct listener_stats *stats;
    int *fds;        /* [bind * workers + worker] listening sockets */
    bool peek_hello; /* tcp listener with sni/alpn routes: TLS passthrough */
    struct tls_server *tls;
    const struct conn_ops *proto; /* serves the accepted sockets */
};

struct rt_backend {
    const struct cfg_backend *cfg;
    struct backend_stats *stats;
    struct server **servers;
    size_t n_servers;
    struct lb_pool *pool;
    struct lb_pool *affinity_pool; /* affinity.client_ip: a consistent-hash pool by client */
    struct tls_client *tls;
};

struct runtime {
    atomic_int refs;
    struct config *cfg;
    int workers;
    struct rt_listener *listeners;
    size_t n_listeners;
    struct rt_backend *backends;
    size_t n_backends;
    unsigned generation;
};

/* Builds a snapshot from cfg (takes over the caller's reference to cfg). `prev` may be
 * NULL. On failure returns NULL and writes a one-line reason to err; nothing of prev is
 * changed. Listening sockets are opened here, so "address in use" is reported now. */
struct runtime *runtime_build(struct config *cfg, struct runtime *prev, int workers, char *err,
                              size_t errlen);

/* After the new snapshot is live: marks servers of prev that new no longer has as removed
 * and starts their drain clock. */
void runtime_retire_servers(struct runtime *prev, struct runtime *next, uint64_t now_ms);

/* Closes the listening sockets of old that next does not reuse (next may be NULL: close
 * all). Call only once no worker polls them any more. */
void runtime_close_listeners(struct runtime *old, const struct runtime *next);

struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* The server object called `address` in backend `backend`, or NULL. */
struct server *runtime_find_server(const struct runtime *rt, const char *backend,
                                   const char *address);
struct rt_backend *runtime_find_backend(const struct runtime *rt, const char *name);

/* Process-wide counters that outlive reloads. */
extern atomic_uint runtime_active_connections; /* client connections open right now */
extern atomic_ulong runtime_reloads_ok, runtime_reloads_failed;

#endif
