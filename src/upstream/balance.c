/* Load-balancing algorithms: smooth weighted round robin, least connections, power of
 * two random choices and a consistent-hash ring. See balance.h for the contract.
 *
 * Threading: a pool is immutable after lb_pool_new except for its per-worker slots. Slot
 * `w` is only ever touched by lb_pick(pool, w, ...), so each worker must use its own
 * index. Slots are 64-byte aligned and padded to whole cache lines, so two workers
 * never write the same line. Server states are read with relaxed atomic loads: a value
 * that changes during a pick only makes that pick slightly stale, never wrong in kind
 * (an index returned was eligible when it was looked at).
 *
 * Cost of lb_pick: no allocation, no lock. round_robin, least_connections and
 * random_two are O(n * n_tried) (n_tried is the retry count, small). consistent_hash
 * is O(log ring) when the server owning the key is eligible; otherwise O(n) to learn
 * whether any server of the tier is eligible, plus a clockwise walk to the next one. */
#include "upstream/balance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LB_CACHE_LINE 64
#define LB_RING_POINTS_PER_SERVER 1024 /* virtual nodes of a server of average weight */
#define LB_RING_MAX_POINTS 65536       /* bound on the points of both rings together */
#define LB_WEIGHT_MAX 256

/* One virtual node of the hash ring. */
struct lb_point {
    uint64_t pos;    /* position on the ring, lb_hash(hash_id, replica) */
    uint32_t server; /* index into pool->servers */
};

/* A ring sorted by position; one for primaries, one for backups. */
struct lb_ring {
    struct lb_point *pt;
    size_t n;
};

/* Per-worker balancing state. Lives at pool->slots + worker * pool->slot_stride. */
struct lb_slot {
    uint64_t rng; /* splitmix64 state for random_two */
    int64_t cw[]; /* smooth round-robin current weight per server */
};

struct lb_pool {
    enum cfg_balance algo;
    int workers;
    size_t n;
    struct lb_server_state **servers; /* copy of the caller's pointer array */
    unsigned char *slots;             /* `workers` slots, cache-line aligned */
    size_t slot_stride;               /* bytes per slot, a multiple of LB_CACHE_LINE */
    struct lb_ring ring[2];           /* consistent_hash: [0] primaries, [1] backups */
};

/* Arguments of one pick that every tier helper needs. */
struct lb_req {
    const struct lb_pool *pool;
    const int *tried;
    size_t n_tried;
    unsigned max_per_server;
};

/* splitmix64 finalizer: a bijective 64-bit mixer with good avalanche. */
static uint64_t lb_mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z;
}

uint64_t lb_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL; /* FNV-1a 64 prime */
    }
    return lb_mix64(h);
}

/* Next value of a worker's splitmix64 generator. */
static uint64_t lb_rand(struct lb_slot *slot)
{
    slot->rng += 0x9e3779b97f4a7c15ULL;
    return lb_mix64(slot->rng);
}

/* Uniform-enough integer in [0, bound), bound < 2^32 (bias below 2^-32 * bound). */
static uint64_t lb_rand_below(struct lb_slot *slot, uint64_t bound)
{
    return ((lb_rand(slot) >> 32) * bound) >> 32;
}

static struct lb_slot *lb_slot_of(const struct lb_pool *pool, int worker)
{
    /* Contract: 0 <= worker < workers. Map anything else into range rather than
     * write out of bounds. */
    size_t w = (size_t)(unsigned)worker % (size_t)pool->workers;
    return (struct lb_slot *)(void *)(pool->slots + w * pool->slot_stride);
}

static int lb_weight(const struct lb_server_state *s)
{
    return atomic_load_explicit(&s->weight, memory_order_relaxed);
}

static unsigned lb_active(const struct lb_server_state *s)
{
    return atomic_load_explicit(&s->active, memory_order_relaxed);
}

/* True when server `i` may take a new connection in tier `backup`: right tier, usable,
 * weight > 0, under max_per_server, not tried. Stores its weight in *w when true. */
static bool lb_eligible(const struct lb_req *rq, size_t i, bool backup, int *w)
{
    const struct lb_server_state *s = rq->pool->servers[i];
    if (s->backup != backup || !atomic_load_explicit(&s->usable, memory_order_relaxed))
        return false;
    int weight = lb_weight(s);
    if (weight <= 0)
        return false;
    if (rq->max_per_server && lb_active(s) >= rq->max_per_server)
        return false;
    for (size_t k = 0; k < rq->n_tried; k++)
        if (rq->tried[k] >= 0 && (size_t)rq->tried[k] == i)
            return false;
    *w = weight;
    return true;
}

/* Compares the loads active/weight of two servers without division:
 * <0 when a is less loaded than b, 0 when equal, >0 when more. */
static int lb_load_cmp(uint64_t act_a, int w_a, uint64_t act_b, int w_b)
{
    uint64_t l = act_a * (uint64_t)w_b, r = act_b * (uint64_t)w_a;
    return l < r ? -1 : l > r;
}

/* Smooth weighted round robin (nginx): every eligible server gains its weight, the one
 * with the highest current weight wins and loses the total. Ties go to the lowest
 * index. With `only_load` set, considers only servers whose load equals
 * only_act/only_w (least_connections ties). Returns an index or -1. */
static int lb_swrr(const struct lb_req *rq, struct lb_slot *slot, bool backup, bool only_load,
                   uint64_t only_act, int only_w)
{
    const struct lb_pool *pool = rq->pool;
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < pool->n; i++) {
        int w;
        if (!lb_eligible(rq, i, backup, &w))
            continue;
        if (only_load && lb_load_cmp(lb_active(pool->servers[i]), w, only_act, only_w) != 0)
            continue;
        slot->cw[i] += w;
        total += w;
        if (best < 0 || slot->cw[i] > slot->cw[best])
            best = (int)i;
    }
    if (best >= 0)
        slot->cw[best] -= total;
    return best;
}

/* Least connections: lowest active/weight; equally loaded servers share by smooth
 * weighted round robin among themselves, so they rotate and weights still count when
 * every server is idle. */
static int lb_lc_tier(const struct lb_req *rq, struct lb_slot *slot, bool backup)
{
    const struct lb_pool *pool = rq->pool;
    int best = -1, best_w = 0;
    uint64_t best_act = 0;
    size_t ties = 0;
    for (size_t i = 0; i < pool->n; i++) {
        int w;
        if (!lb_eligible(rq, i, backup, &w))
            continue;
        uint64_t act = lb_active(pool->servers[i]);
        int c = best < 0 ? -1 : lb_load_cmp(act, w, best_act, best_w);
        if (c < 0) {
            best = (int)i;
            best_act = act;
            best_w = w;
            ties = 1;
        } else if (c == 0) {
            ties++;
        }
    }
    if (ties <= 1)
        return best;
    int pick = lb_swrr(rq, slot, backup, true, best_act, best_w);
    return pick >= 0 ? pick : best; /* state changed between the passes */
}

/* Draws one eligible server of the tier with probability weight/total, skipping
 * `exclude`. `total` is the weight sum seen by the caller; if weights moved since,
 * falls back to the last eligible server. Returns an index or -1; *w_out its weight. */
static int lb_draw(const struct lb_req *rq, struct lb_slot *slot, bool backup, uint64_t total,
                   int exclude, int *w_out)
{
    uint64_t r = lb_rand_below(slot, total), acc = 0;
    int last = -1, last_w = 0;
    for (size_t i = 0; i < rq->pool->n; i++) {
        int w;
        if ((int)i == exclude || !lb_eligible(rq, i, backup, &w))
            continue;
        acc += (uint64_t)w;
        last = (int)i;
        last_w = w;
        if (r < acc)
            break;
    }
    *w_out = last_w;
    return last;
}

/* Power of two choices: two distinct servers drawn by weight, the less loaded (by
 * active/weight) wins; the first drawn wins a tie, so idle pools split by weight. */
static int lb_r2_tier(const struct lb_req *rq, struct lb_slot *slot, bool backup)
{
    uint64_t total = 0;
    size_t count = 0;
    int only = -1;
    for (size_t i = 0; i < rq->pool->n; i++) {
        int w;
        if (!lb_eligible(rq, i, backup, &w))
            continue;
        total += (uint64_t)w;
        count++;
        only = (int)i;
    }
    if (count <= 1)
        return only;
    int wa, wb;
    int a = lb_draw(rq, slot, backup, total, -1, &wa);
    if (a < 0)
        return only;
    if (total <= (uint64_t)wa) /* weights moved under us; keep going with what we have */
        return a;
    int b = lb_draw(rq, slot, backup, total - (uint64_t)wa, a, &wb);
    if (b < 0)
        return a;
    struct lb_server_state *sa = rq->pool->servers[a], *sb = rq->pool->servers[b];
    return lb_load_cmp(lb_active(sa), wa, lb_active(sb), wb) <= 0 ? a : b;
}

/* True when some server of the tier is eligible. */
static bool lb_tier_any(const struct lb_req *rq, bool backup)
{
    for (size_t i = 0; i < rq->pool->n; i++) {
        int w;
        if (lb_eligible(rq, i, backup, &w))
            return true;
    }
    return false;
}

/* Consistent hash: the first point at or clockwise after `key` whose server is
 * eligible. Returns an index or -1. */
static int lb_ring_tier(const struct lb_req *rq, bool backup, uint64_t key)
{
    const struct lb_ring *ring = &rq->pool->ring[backup];
    if (ring->n == 0)
        return -1;
    size_t lo = 0, hi = ring->n; /* lower bound: first pos >= key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring->pt[mid].pos < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ring->n)
        lo = 0;
    int w;
    uint32_t srv = ring->pt[lo].server;
    if (lb_eligible(rq, srv, backup, &w))
        return (int)srv;
    if (!lb_tier_any(rq, backup))
        return -1;
    uint32_t prev = srv;
    for (size_t k = 1, j = lo; k < ring->n; k++) {
        if (++j == ring->n)
            j = 0;
        srv = ring->pt[j].server;
        if (srv == prev) /* runs of the same server: checked already */
            continue;
        if (lb_eligible(rq, srv, backup, &w))
            return (int)srv;
        prev = srv;
    }
    return -1;
}

int lb_pick(struct lb_pool *pool, int worker, uint64_t key, const int *tried, size_t n_tried,
            unsigned max_per_server)
{
    if (!pool || pool->n == 0)
        return -1;
    struct lb_req rq = {pool, tried, tried ? n_tried : 0, max_per_server};
    struct lb_slot *slot = lb_slot_of(pool, worker);
    int pick = -1;
    for (int backup = 0; backup <= 1 && pick < 0; backup++) {
        switch (pool->algo) {
        case BAL_LEAST_CONNECTIONS:
            pick = lb_lc_tier(&rq, slot, backup);
            break;
        case BAL_RANDOM_TWO:
            pick = lb_r2_tier(&rq, slot, backup);
            break;
        case BAL_CONSISTENT_HASH:
            pick = lb_ring_tier(&rq, backup, key);
            break;
        case BAL_ROUND_ROBIN:
        default:
            pick = lb_swrr(&rq, slot, backup, false, 0, 0);
            break;
        }
    }
    return pick;
}

/* Ring point order: by position, then by server identity, so that two pools built from
 * different server lists order common points the same way. */
struct lb_build_point {
    uint64_t pos;
    uint64_t hash_id;
    uint32_t server;
};

static int lb_build_point_cmp(const void *pa, const void *pb)
{
    const struct lb_build_point *a = pa, *b = pb;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    if (a->hash_id != b->hash_id)
        return a->hash_id < b->hash_id ? -1 : 1;
    return (a->server > b->server) - (a->server < b->server);
}

/* Position of virtual node `replica` of a server: lb_hash of the little-endian bytes of
 * hash_id then replica, so it depends on the server's identity only. */
static uint64_t lb_point_pos(uint64_t hash_id, uint32_t replica)
{
    unsigned char b[12];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hash_id >> (8 * i));
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)(replica >> (8 * i));
    return lb_hash(b, sizeof b);
}

/* Build-time weight of a server for the ring: its weight clamped to 1..256 (a server
 * at weight 0 keeps its place, it is skipped at pick time). */
static uint64_t lb_ring_weight(const struct lb_server_state *s)
{
    int w = lb_weight(s);
    return w < 1 ? 1 : w > LB_WEIGHT_MAX ? LB_WEIGHT_MAX : (uint64_t)w;
}

/* Number of ring points of a server of build-time weight `w`; see lb_ring_build. */
static uint64_t lb_ring_points(uint64_t w, uint64_t per_server, size_t n, uint64_t sum_w)
{
    uint64_t pts = per_server * w * n / sum_w;
    return pts ? pts : 1;
}

/* Builds both rings. A server of average weight gets `per_server` points, others in
 * proportion to weight: per_server = LB_RING_POINTS_PER_SERVER (1024, enough for a
 * spread within a few percent) while n <= LB_RING_MAX_POINTS / 1024 = 64 servers, then
 * LB_RING_MAX_POINTS / n, so the rings together hold at most about 64k points.
 * Positions depend only on (hash_id, replica), so two pools whose servers get the same
 * point counts (same average weight, n <= 64) agree exactly on the keys of their common
 * servers: adding or removing a server moves only the keys it gains or owned. When the
 * average weight or a scaled count changes, the shift is about the relative change of
 * the count (e.g. ~1/n extra for one more server beyond 64). Returns 0 or -ENOMEM. */
static int lb_ring_build(struct lb_pool *pool)
{
    uint64_t sum_w = 0;
    for (size_t i = 0; i < pool->n; i++)
        sum_w += lb_ring_weight(pool->servers[i]);
    uint64_t per_server = LB_RING_MAX_POINTS / pool->n;
    if (per_server > LB_RING_POINTS_PER_SERVER)
        per_server = LB_RING_POINTS_PER_SERVER;
    size_t total = 0;
    for (size_t i = 0; i < pool->n; i++)
        total += lb_ring_points(lb_ring_weight(pool->servers[i]), per_server, pool->n, sum_w);
    struct lb_build_point *bp = calloc(total, sizeof *bp);
    if (!bp)
        return -ENOMEM;
    size_t counts[2] = {0, 0};
    /* Primaries first, then backups, so each tier is one contiguous run to sort. */
    size_t k = 0;
    for (int tier = 0; tier <= 1; tier++) {
        for (size_t i = 0; i < pool->n; i++) {
            const struct lb_server_state *s = pool->servers[i];
            if (s->backup != (tier == 1))
                continue;
            uint64_t pts = lb_ring_points(lb_ring_weight(s), per_server, pool->n, sum_w);
            for (uint32_t r = 0; r < pts; r++)
                bp[k++] =
                    (struct lb_build_point){lb_point_pos(s->hash_id, r), s->hash_id, (uint32_t)i};
            counts[tier] += pts;
        }
    }
    size_t off = 0;
    for (int tier = 0; tier <= 1; tier++) {
        struct lb_ring *ring = &pool->ring[tier];
        ring->n = counts[tier];
        if (ring->n) {
            qsort(bp + off, ring->n, sizeof *bp, lb_build_point_cmp);
            ring->pt = malloc(ring->n * sizeof *ring->pt);
            if (!ring->pt)
                goto fail;
            for (size_t j = 0; j < ring->n; j++)
                ring->pt[j] = (struct lb_point){bp[off + j].pos, bp[off + j].server};
        }
        off += counts[tier];
    }
    free(bp);
    return 0;
fail:
    free(bp);
    return -ENOMEM;
}

struct lb_pool *lb_pool_new(enum cfg_balance algo, struct lb_server_state *const *servers, size_t n,
                            int workers)
{
    if ((n && !servers) || n > UINT32_MAX) {
        errno = EINVAL;
        return NULL;
    }
    if (workers < 1)
        workers = 1;
    struct lb_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->algo = algo;
    pool->workers = workers;
    pool->n = n;
    if (n) {
        pool->servers = malloc(n * sizeof *pool->servers);
        if (!pool->servers)
            goto fail;
        memcpy(pool->servers, servers, n * sizeof *pool->servers);
    }
    if (n > (SIZE_MAX - sizeof(struct lb_slot) - LB_CACHE_LINE) / sizeof(int64_t))
        goto fail;
    size_t stride = sizeof(struct lb_slot) + n * sizeof(int64_t);
    stride = (stride + LB_CACHE_LINE - 1) / LB_CACHE_LINE * LB_CACHE_LINE;
    if (stride > SIZE_MAX / (size_t)workers)
        goto fail;
    pool->slot_stride = stride;
    pool->slots = aligned_alloc(LB_CACHE_LINE, stride * (size_t)workers);
    if (!pool->slots)
        goto fail;
    memset(pool->slots, 0, stride * (size_t)workers);
    for (int w = 0; w < workers; w++) {
        struct lb_slot *slot = lb_slot_of(pool, w);
        /* Deterministic, distinct per worker: reproducible tests, and the streams of
         * two workers are unrelated (different splitmix64 starting points). */
        slot->rng = lb_mix64(0x5851f42d4c957f2dULL ^ ((uint64_t)w + 1));
    }
    if (algo == BAL_CONSISTENT_HASH && n && lb_ring_build(pool) < 0)
        goto fail;
    return pool;
fail:
    lb_pool_free(pool);
    errno = ENOMEM;
    return NULL;
}

void lb_pool_free(struct lb_pool *pool)
{
    if (!pool)
        return;
    free(pool->ring[0].pt);
    free(pool->ring[1].pt);
    free(pool->slots);
    free(pool->servers);
    free(pool);
}
