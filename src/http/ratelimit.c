/* GCRA rate limiter with a bounded, lock-free key table. See ratelimit.h. */
#include "http/ratelimit.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

struct rl_slot {
    _Atomic uint64_t key; /* 0: empty */
    _Atomic uint64_t tat; /* theoretical arrival time (ns); 0: a full bucket */
};

struct ratelimit {
    atomic_int refs;
    uint64_t interval;  /* ns between requests at the average rate */
    uint64_t tolerance; /* burst * interval: how far ahead of now the arrival time may be */
    size_t n_sets;
    struct rl_slot *slots; /* n_sets * RATELIMIT_SET, cache-line aligned */
};

struct ratelimit *ratelimit_new(uint64_t requests, uint64_t per_ns, uint64_t burst, size_t max_keys)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    atomic_init(&rl->refs, 1);
    rl->interval = per_ns / requests ? per_ns / requests : 1;
    rl->tolerance = burst > UINT64_MAX / 4 / rl->interval ? UINT64_MAX / 4 : rl->interval * burst;
    rl->n_sets = (max_keys + RATELIMIT_SET - 1) / RATELIMIT_SET;
    if (rl->n_sets == 0)
        rl->n_sets = 1;
    size_t bytes = rl->n_sets * RATELIMIT_SET * sizeof(struct rl_slot);
    rl->slots = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    memset(rl->slots, 0, bytes); /* all-zero atomics: empty slots */
    return rl;
}

struct ratelimit *ratelimit_ref(struct ratelimit *rl)
{
    atomic_fetch_add_explicit(&rl->refs, 1, memory_order_relaxed);
    return rl;
}

void ratelimit_unref(struct ratelimit *rl)
{
    if (rl && atomic_fetch_sub_explicit(&rl->refs, 1, memory_order_acq_rel) == 1) {
        free(rl->slots);
        free(rl);
    }
}

size_t ratelimit_slots(const struct ratelimit *rl)
{
    return rl->n_sets * RATELIMIT_SET;
}

/* GCRA on one slot's arrival time: allowed (0, the time advanced) or the wait. */
static uint64_t gcra(const struct ratelimit *rl, _Atomic uint64_t *tat, uint64_t now)
{
    uint64_t old = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t next = (old > now ? old : now) + rl->interval;
        if (next - now > rl->tolerance)
            return next - now - rl->tolerance;
        if (atomic_compare_exchange_weak_explicit(tat, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

/* The slot of `key` in its set: found, or taken over (empty or fullest bucket). */
static struct rl_slot *slot_of(struct ratelimit *rl, uint64_t key)
{
    struct rl_slot *set = &rl->slots[(key % rl->n_sets) * RATELIMIT_SET];
    for (int attempt = 0; attempt < 4; attempt++) {
        struct rl_slot *victim = &set[0];
        uint64_t victim_key = 0, victim_tat = UINT64_MAX;
        for (int i = 0; i < RATELIMIT_SET; i++) {
            uint64_t k = atomic_load_explicit(&set[i].key, memory_order_acquire);
            if (k == key)
                return &set[i];
            uint64_t t = k ? atomic_load_explicit(&set[i].tat, memory_order_relaxed) : 0;
            if (t < victim_tat) { /* an empty slot counts as a full bucket (0) */
                victim = &set[i];
                victim_key = k;
                victim_tat = t;
            }
        }
        if (atomic_compare_exchange_strong_explicit(&victim->key, &victim_key, key,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            atomic_store_explicit(&victim->tat, 0, memory_order_relaxed);
            return victim;
        }
        /* another thread changed the slot: look again */
    }
    return NULL;
}

uint64_t ratelimit_take(struct ratelimit *rl, uint64_t key, uint64_t now_ns)
{
    if (key == 0)
        key = 1; /* 0 marks an empty slot */
    struct rl_slot *s = slot_of(rl, key);
    if (!s) /* the set kept changing under us: let this one through */
        return 0;
    return gcra(rl, &s->tat, now_ns);
}

/* Same limiter settings (so a reload may keep the budget). */
static bool same_limit(const struct cfg_rate_limit *a, const struct cfg_rate_limit *b)
{
    return a->set && b->set && a->requests == b->requests && a->per_ms == b->per_ms &&
           a->burst == b->burst && a->key == b->key && a->max_keys == b->max_keys &&
           (a->key != RL_KEY_HEADER || strcmp(a->header, b->header) == 0);
}

int ratelimit_attach(struct cfg_listener *l, const struct cfg_listener *prev)
{
    for (size_t i = 0; i < l->n_routes; i++) {
        struct cfg_route *r = &l->routes[i];
        const struct cfg_rate_limit *c = &r->rate_limit;
        if (!c->set)
            continue;
        if (prev && i < prev->n_routes && prev->routes[i].limiter &&
            same_limit(c, &prev->routes[i].rate_limit)) {
            r->limiter = ratelimit_ref(prev->routes[i].limiter);
            continue;
        }
        size_t keys = c->key == RL_KEY_ROUTE ? 1 : (size_t)c->max_keys;
        r->limiter = ratelimit_new(c->requests, c->per_ms * 1000000ULL, c->burst, keys);
        if (!r->limiter)
            return -1;
    }
    return 0;
}

void ratelimit_detach(struct cfg_listener *l)
{
    for (size_t i = 0; i < l->n_routes; i++) {
        ratelimit_unref(l->routes[i].limiter);
        l->routes[i].limiter = NULL;
    }
}
