/* A backend server's run-time object, shared by all workers and kept across reloads.
 *
 * Identity is (backend name, address text). A reload that keeps a server reuses the same
 * object, so its health, admin state, counters and open-connection count carry over.
 * Connections hold a reference; the object is freed when the last runtime snapshot and
 * the last connection using it let go. Fields written by the main thread (health, DNS,
 * admin state) are atomics read by workers without locks. */
#ifndef SLUICE_UPSTREAM_SERVER_H
#define SLUICE_UPSTREAM_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/stats.h"
#include "net/addr.h"
#include "upstream/balance.h"

enum server_admin { SERVER_ENABLED, SERVER_DRAIN, SERVER_DISABLED };

/* Addresses a DNS name resolved to; immutable once published. */
#define SERVER_MAX_ADDRS 16
struct server_addrs {
    size_t count;
    struct sockaddr_storage addrs[SERVER_MAX_ADDRS];
    socklen_t lens[SERVER_MAX_ADDRS];
};

struct server_retired;

struct server {
    atomic_int refs;
    char *backend; /* backend name */
    char *address; /* as written in the config */
    struct net_addr addr;
    struct lb_server_state lb;
    uint64_t affinity_id; /* the affinity cookie's value (hash of backend and address; never 0) */
    int config_weight;
    atomic_bool has_probe;        /* the backend has a health block (a reload may change it) */
    atomic_int admin;             /* enum server_admin */
    atomic_bool healthy;          /* probes (or true without probes) */
    atomic_bool removed;          /* dropped from the config by a reload */
    atomic_ullong drain_deadline; /* monotonic ms when draining ends; 0 = not draining */
    atomic_uint passive_failures; /* consecutive connect failures on live traffic */
    atomic_uint rr_addr;          /* rotates over resolved addresses */
    _Atomic(struct server_addrs *) resolved; /* NULL until a name resolves; IPs: fixed */
    /* health detail for the status API (written by the main thread) */
    char last_check[160];
    uint64_t last_change_ms;
    int probe_successes, probe_failures;
    struct server_retired *retired; /* old DNS answers awaiting free (main thread only) */
    int workers;
    /* [workers] counters, kept by (backend, address) for the life of the process: a
     * server removed by a reload and added again continues them (core/stats.h) */
    struct server_slot *slots;
};

struct server *server_new(const char *backend, const struct cfg_server *cs, bool has_probe,
                          int workers);
struct server *server_ref(struct server *s);
void server_unref(struct server *s);

/* Recomputes lb.usable from health, admin state and removal. Any thread. */
void server_update_usable(struct server *s);

/* Picks the socket address for a new connection (rotating over DNS answers). Returns 0,
 * or -EHOSTUNREACH when a name has not resolved yet. */
int server_next_addr(struct server *s, struct sockaddr_storage *out, socklen_t *len);

/* Marks a connect failure / success on live traffic (passive health): `threshold`
 * consecutive failures take a probed server down until its probe succeeds again; servers
 * without a probe are never marked down this way. Returns true when this failure took
 * the server down. */
bool server_passive_failure(struct server *s, unsigned threshold);
void server_passive_success(struct server *s);

/* Replaces the resolved address set (main thread). The old set is retired, not freed at
 * once, since workers may be reading it; retired sets are freed with the server. */
void server_set_addrs(struct server *s, const struct server_addrs *addrs);

/* A reload kept this server and changed whether its backend has a `health` block (main
 * thread). Gaining a probe, the server keeps its current health until the probes decide;
 * losing it, the server is healthy (nothing checks it any more). Counters, connections,
 * admin state and weight are untouched. */
void server_set_probed(struct server *s, bool probed);

const char *server_admin_name(int admin);

#endif
