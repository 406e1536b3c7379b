/* Load-balancing algorithms over a pool of servers.
 *
 * A pool is built once per configuration snapshot and backend (lb_pool_new) and is then
 * read by every worker thread. Server state that changes at run time (weight, usable,
 * active connections) lives in struct lb_server_state, shared by all workers and updated
 * with atomics; per-worker balancing state (smooth round-robin weights, random seed) sits
 * in per-worker slots of the pool so that picking a server takes no lock. */
#ifndef SLUICE_UPSTREAM_BALANCE_H
#define SLUICE_UPSTREAM_BALANCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* Run-time state of one server, shared by all workers. Owned by the server's runtime
 * object (upstream/server.h); the balancer only reads it. */
struct lb_server_state {
    atomic_int weight;  /* 1-256; 0 means "take no new connections" */
    atomic_bool usable; /* healthy, enabled and not draining */
    atomic_uint active; /* connections open to this server right now */
    bool backup;        /* only used when no primary is usable */
    uint64_t hash_id;   /* stable identity for consistent hashing (hash of address) */
};

struct lb_pool;

/* Builds a pool over `servers[0..n)` for `workers` worker threads. The array of
 * pointers is copied; the states themselves must outlive the pool. Returns NULL on
 * allocation failure. */
struct lb_pool *lb_pool_new(enum cfg_balance algo, struct lb_server_state *const *servers, size_t n,
                            int workers);
void lb_pool_free(struct lb_pool *pool);

/* Picks a server for a new connection on worker `worker`.
 *  - `key`: hash of the client key (client IP...), used by consistent_hash only.
 *  - `tried`/`n_tried`: indexes already attempted for this connection; never returned.
 *  - `max_per_server`: 0 for no limit, else servers with active >= max are skipped.
 * Primaries are considered first; backups only when no primary is usable (not tried,
 * usable, weight > 0, under the limit). Returns the index into the pool's servers, or
 * -1 when no server can take the connection. */
int lb_pick(struct lb_pool *pool, int worker, uint64_t key, const int *tried, size_t n_tried,
            unsigned max_per_server);

/* 64-bit hash (FNV-1a followed by a mixer) of bytes, for hash_id and client keys. */
uint64_t lb_hash(const void *data, size_t len);

#endif
