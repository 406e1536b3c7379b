#include "upstream/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"

/* An address set replaced by a newer DNS answer; freed some seconds later, when no worker
 * can still be copying from it (workers copy an address out within one callback). */
struct server_retired {
    struct server_retired *next;
    struct server_addrs *addrs;
    uint64_t since_ms;
};
#define RETIRE_GRACE_MS 5000

struct server *server_new(const char *backend, const struct cfg_server *cs, bool has_probe,
                          int workers)
{
    struct server_stats *st = server_stats_get(backend, cs->address, workers);
    if (!st || st->workers < workers)
        return NULL;
    size_t size = (sizeof(struct server) + 63) & ~(size_t)63;
    struct server *s = aligned_alloc(64, size);
    if (!s)
        return NULL;
    memset(s, 0, size);
    s->slots = st->slots;
    s->backend = strdup(backend);
    s->address = strdup(cs->address);
    if (!s->backend || !s->address) {
        free(s->backend);
        free(s->address);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->addr = cs->addr;
    s->config_weight = cs->weight;
    atomic_init(&s->lb.weight, cs->weight);
    s->lb.backup = cs->backup;
    s->lb.hash_id = lb_hash(cs->address, strlen(cs->address));
    char ident[512];
    int il = snprintf(ident, sizeof(ident), "sluice-affinity\n%s\n%s", backend, cs->address);
    s->affinity_id = lb_hash(ident, il > 0 && (size_t)il < sizeof(ident) ? (size_t)il : 0) | 1;
    atomic_init(&s->has_probe, has_probe);
    s->workers = workers;
    atomic_init(&s->admin, SERVER_ENABLED);
    atomic_init(&s->healthy, !has_probe);
    snprintf(s->last_check, sizeof(s->last_check), "%s",
             has_probe ? "waiting for first probe" : "no health check configured");
    if (!cs->addr.is_name) {
        struct server_addrs *a = calloc(1, sizeof(*a));
        if (!a) {
            server_unref(s);
            return NULL;
        }
        a->count = 1;
        a->addrs[0] = cs->addr.ss;
        a->lens[0] = cs->addr.len;
        atomic_init(&s->resolved, a);
    }
    server_update_usable(s);
    return s;
}

struct server *server_ref(struct server *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void server_unref(struct server *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(atomic_load(&s->resolved));
    while (s->retired) {
        struct server_retired *r = s->retired;
        s->retired = r->next;
        free(r->addrs);
        free(r);
    }
    free(s->backend);
    free(s->address);
    free(s);
}

void server_update_usable(struct server *s)
{
    bool usable = atomic_load(&s->healthy) && atomic_load(&s->admin) == SERVER_ENABLED &&
                  !atomic_load(&s->removed) && atomic_load(&s->resolved) != NULL;
    atomic_store(&s->lb.usable, usable);
}

int server_next_addr(struct server *s, struct sockaddr_storage *out, socklen_t *len)
{
    struct server_addrs *a = atomic_load_explicit(&s->resolved, memory_order_acquire);
    if (!a || a->count == 0)
        return -EHOSTUNREACH;
    unsigned i = atomic_fetch_add_explicit(&s->rr_addr, 1, memory_order_relaxed) % a->count;
    memcpy(out, &a->addrs[i], a->lens[i]);
    *len = a->lens[i];
    return 0;
}

bool server_passive_failure(struct server *s, unsigned threshold)
{
    unsigned n = atomic_fetch_add(&s->passive_failures, 1) + 1;
    /* Only a probe can bring a server back, so without one live traffic never marks it
     * down (the balancer's retry already steps around a failing server). */
    if (!atomic_load(&s->has_probe) || threshold == 0 || n != threshold ||
        !atomic_load(&s->healthy))
        return false;
    atomic_store(&s->healthy, false);
    server_update_usable(s);
    return true;
}

void server_passive_success(struct server *s)
{
    if (atomic_load_explicit(&s->passive_failures, memory_order_relaxed) != 0)
        atomic_store_explicit(&s->passive_failures, 0, memory_order_relaxed);
}

void server_set_addrs(struct server *s, const struct server_addrs *addrs)
{
    uint64_t now = clock_monotonic_ms();
    struct server_retired **pp = &s->retired;
    while (*pp) {
        struct server_retired *r = *pp;
        if (now - r->since_ms >= RETIRE_GRACE_MS) {
            *pp = r->next;
            free(r->addrs);
            free(r);
        } else {
            pp = &r->next;
        }
    }
    struct server_addrs *copy = malloc(sizeof(*copy));
    struct server_retired *r = malloc(sizeof(*r));
    if (!copy || !r) {
        free(copy);
        free(r);
        return; /* keep the previous answer */
    }
    *copy = *addrs;
    struct server_addrs *old = atomic_exchange_explicit(&s->resolved, copy, memory_order_acq_rel);
    if (old) {
        r->addrs = old;
        r->since_ms = now;
        r->next = s->retired;
        s->retired = r;
    } else {
        free(r);
    }
    server_update_usable(s);
}

const char *server_admin_name(int admin)
{
    switch (admin) {
    case SERVER_DRAIN:
        return "drain";
    case SERVER_DISABLED:
        return "disabled";
    default:
        return "enabled";
    }
}

void server_set_probed(struct server *s, bool probed)
{
    if (atomic_load(&s->has_probe) == probed)
        return;
    atomic_store(&s->has_probe, probed);
    s->probe_successes = s->probe_failures = 0;
    if (probed) {
        snprintf(s->last_check, sizeof(s->last_check), "%s",
                 "health check added by a reload: waiting for its first probe");
        return;
    }
    snprintf(s->last_check, sizeof(s->last_check), "%s", "no health check configured");
    atomic_store(&s->passive_failures, 0);
    atomic_store(&s->healthy, true);
    server_update_usable(s);
}
