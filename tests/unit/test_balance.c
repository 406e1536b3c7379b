/* Unit tests for upstream/balance.c: round robin, least connections, random_two,
 * consistent hash and lb_hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "upstream/balance.h"

#define MAX_SRV 8

/* A set of servers and the pointer array lb_pool_new wants. */
struct srvs {
    struct lb_server_state st[MAX_SRV];
    struct lb_server_state *p[MAX_SRV];
    size_t n;
};

/* Adds a usable, idle server of weight `w` whose hash_id is the hash of "10.0.0.<id>:80". */
static int add(struct srvs *s, int w, bool backup, int id)
{
    char addr[32];
    int i = (int)s->n++;
    snprintf(addr, sizeof addr, "10.0.0.%d:80", id);
    atomic_init(&s->st[i].weight, w);
    atomic_init(&s->st[i].usable, true);
    atomic_init(&s->st[i].active, 0u);
    s->st[i].backup = backup;
    s->st[i].hash_id = lb_hash(addr, strlen(addr));
    s->p[i] = &s->st[i];
    return i;
}

static struct lb_pool *pool_of(struct srvs *s, enum cfg_balance algo, int workers)
{
    struct lb_pool *pool = lb_pool_new(algo, s->p, s->n, workers);
    assert_non_null(pool);
    return pool;
}

static void set_usable(struct srvs *s, int i, bool u)
{
    atomic_store(&s->st[i].usable, u);
}

static int pick(struct lb_pool *pool)
{
    return lb_pick(pool, 0, 0, NULL, 0, 0);
}

static uint64_t key_of(uint32_t i)
{
    return lb_hash(&i, sizeof i);
}

/* ---- lb_hash ---- */

static void test_hash_vectors(void **state)
{
    (void)state;
    /* FNV-1a 64 then the splitmix64 finalizer; pinned because hash_id must stay stable. */
    assert_true(lb_hash("", 0) == 0xf52a15e9a9b5e89bULL);
    assert_true(lb_hash("a", 1) == 0x02c0bdbf481420f8ULL);
    assert_true(lb_hash("10.0.0.1:8080", 13) == 0xe6be330c3d44a2e2ULL);
}

/* ---- round robin ---- */

static void test_rr_smooth_sequence(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 5, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 1);
    const int want[7] = {0, 0, 1, 0, 2, 0, 0};
    int count[3] = {0};
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 7; i++) {
            int got = pick(pool);
            assert_int_equal(got, want[i]);
            count[got]++;
        }
    }
    assert_int_equal(count[0], 50);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    lb_pool_free(pool);
}

static void test_rr_equal_alternate(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 1);
    for (int i = 0; i < 30; i++)
        assert_int_equal(pick(pool), i % 3);
    lb_pool_free(pool);

    struct srvs t = {0};
    add(&t, 7, false, 1);
    add(&t, 7, false, 2);
    pool = pool_of(&t, BAL_ROUND_ROBIN, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(pool), i % 2);
    lb_pool_free(pool);
}

static void test_rr_skips_unusable_and_weight0(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    add(&s, 0, false, 4);
    set_usable(&s, 1, false);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 1);
    for (int i = 0; i < 20; i++)
        assert_int_equal(pick(pool), i % 2 ? 2 : 0);
    /* Weights are read at pick time: weight 0 -> 3 makes server 3 take 3 of 5. */
    atomic_store(&s.st[3].weight, 3);
    int count[4] = {0};
    for (int i = 0; i < 50; i++)
        count[pick(pool)]++;
    assert_int_equal(count[1], 0);
    assert_in_range(count[3], 29, 31);
    assert_in_range(count[0], 9, 11);
    /* and back to 0: never again */
    atomic_store(&s.st[3].weight, 0);
    for (int i = 0; i < 20; i++)
        assert_int_not_equal(pick(pool), 3);
    lb_pool_free(pool);
}

static void test_rr_tried(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    add(&s, 1, true, 4);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 1);
    const int t0[] = {0};
    for (int i = 0; i < 10; i++) {
        int got = lb_pick(pool, 0, 0, t0, 1, 0);
        assert_true(got == 1 || got == 2);
    }
    const int t012[] = {2, 0, 1};
    for (int i = 0; i < 5; i++)
        assert_int_equal(lb_pick(pool, 0, 0, t012, 3, 0), 3);
    const int all[] = {3, 2, 0, 1};
    assert_int_equal(lb_pick(pool, 0, 0, all, 4, 0), -1);
    /* out-of-range tried entries are harmless */
    const int junk[] = {-1, 99};
    assert_in_range(lb_pick(pool, 0, 0, junk, 2, 0), 0, 2);
    lb_pool_free(pool);
}

static void test_rr_backup(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, true, 1);
    add(&s, 1, false, 2);
    add(&s, 1, true, 3);
    add(&s, 1, false, 4);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 1);
    for (int i = 0; i < 10; i++) {
        int got = pick(pool);
        assert_true(got == 1 || got == 3);
    }
    set_usable(&s, 1, false);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick(pool), 3);
    atomic_store(&s.st[3].weight, 0);
    int count[4] = {0};
    for (int i = 0; i < 10; i++)
        count[pick(pool)]++;
    assert_int_equal(count[0], 5);
    assert_int_equal(count[2], 5);
    set_usable(&s, 1, true);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick(pool), 1);
    lb_pool_free(pool);
}

static void test_rr_max_per_server(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, true, 3);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 1);
    atomic_store(&s.st[0].active, 10u);
    atomic_store(&s.st[1].active, 9u);
    for (int i = 0; i < 4; i++)
        assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 10), 1);
    atomic_store(&s.st[1].active, 10u);
    assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 10), 2); /* primaries full: backup */
    atomic_store(&s.st[2].active, 10u);
    assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 10), -1);
    assert_int_not_equal(lb_pick(pool, 0, 0, NULL, 0, 0), -1); /* 0 = no limit */
    lb_pool_free(pool);
}

static void test_rr_none(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, true, 2);
    set_usable(&s, 0, false);
    set_usable(&s, 1, false);
    for (int algo = BAL_ROUND_ROBIN; algo <= BAL_CONSISTENT_HASH; algo++) {
        struct lb_pool *pool = pool_of(&s, (enum cfg_balance)algo, 2);
        assert_int_equal(lb_pick(pool, 1, 42, NULL, 0, 0), -1);
        lb_pool_free(pool);
        struct lb_pool *empty = lb_pool_new((enum cfg_balance)algo, NULL, 0, 2);
        assert_non_null(empty);
        assert_int_equal(lb_pick(empty, 0, 42, NULL, 0, 0), -1);
        lb_pool_free(empty);
    }
    lb_pool_free(NULL);
}

static void test_rr_workers_independent(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 5, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 3);
    const int want[7] = {0, 0, 1, 0, 2, 0, 0};
    /* Worker 1 picks twice as often as worker 0; worker 2 not at all. Each follows
     * its own smooth sequence. */
    int i0 = 0, i1 = 0;
    for (int round = 0; round < 14; round++) {
        assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 0), want[i0++ % 7]);
        assert_int_equal(lb_pick(pool, 1, 0, NULL, 0, 0), want[i1++ % 7]);
        assert_int_equal(lb_pick(pool, 1, 0, NULL, 0, 0), want[i1++ % 7]);
    }
    assert_int_equal(lb_pick(pool, 2, 0, NULL, 0, 0), 0);
    assert_int_equal(lb_pick(pool, 2, 0, NULL, 0, 0), 0);
    assert_int_equal(lb_pick(pool, 2, 0, NULL, 0, 0), 1);
    lb_pool_free(pool);
}

struct thr_arg {
    struct lb_pool *pool;
    int worker;
    int count[3];
};

static void *rr_thread(void *p)
{
    struct thr_arg *a = p;
    for (int i = 0; i < 70000; i++)
        a->count[lb_pick(a->pool, a->worker, 0, NULL, 0, 0)]++;
    return NULL;
}

static void test_rr_threads(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 5, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    struct lb_pool *pool = pool_of(&s, BAL_ROUND_ROBIN, 4);
    pthread_t th[4];
    struct thr_arg arg[4];
    for (int i = 0; i < 4; i++) {
        arg[i] = (struct thr_arg){pool, i, {0}};
        assert_int_equal(pthread_create(&th[i], NULL, rr_thread, &arg[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(arg[i].count[0], 50000);
        assert_int_equal(arg[i].count[1], 10000);
        assert_int_equal(arg[i].count[2], 10000);
    }
    lb_pool_free(pool);
}

/* ---- least connections ---- */

static void test_lc_least_loaded(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    atomic_store(&s.st[0].active, 5u);
    atomic_store(&s.st[1].active, 2u);
    atomic_store(&s.st[2].active, 7u);
    struct lb_pool *pool = pool_of(&s, BAL_LEAST_CONNECTIONS, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pick(pool), 1);
    const int t1[] = {1};
    assert_int_equal(lb_pick(pool, 0, 0, t1, 1, 0), 0);
    set_usable(&s, 1, false);
    assert_int_equal(pick(pool), 0);
    assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 6), 0);
    atomic_store(&s.st[0].active, 6u); /* 0 at the limit: 2 is busier but takes it */
    assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 6), -1);
    assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 8), 0);
    atomic_store(&s.st[0].active, 8u);
    assert_int_equal(lb_pick(pool, 0, 0, NULL, 0, 8), 2);
    lb_pool_free(pool);
}

static void test_lc_weighted(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 4, false, 1);
    add(&s, 1, false, 2);
    struct lb_pool *pool = pool_of(&s, BAL_LEAST_CONNECTIONS, 1);
    atomic_store(&s.st[0].active, 7u); /* 7/4 < 2/1 */
    atomic_store(&s.st[1].active, 2u);
    assert_int_equal(pick(pool), 0);
    atomic_store(&s.st[0].active, 9u); /* 9/4 > 2/1 */
    assert_int_equal(pick(pool), 1);
    /* Simulate connections that never close: actives end up in the weight ratio. */
    atomic_store(&s.st[0].active, 0u);
    atomic_store(&s.st[1].active, 0u);
    for (int i = 0; i < 500; i++)
        atomic_fetch_add(&s.st[pick(pool)].active, 1u);
    assert_int_equal(atomic_load(&s.st[0].active), 400u);
    assert_int_equal(atomic_load(&s.st[1].active), 100u);
    lb_pool_free(pool);
}

static void test_lc_ties_rotate(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, false, 3);
    struct lb_pool *pool = pool_of(&s, BAL_LEAST_CONNECTIONS, 2);
    for (int i = 0; i < 12; i++)
        assert_int_equal(pick(pool), i % 3);
    atomic_store(&s.st[1].active, 3u); /* 0 and 2 tie */
    for (int i = 0; i < 12; i++)
        assert_int_equal(pick(pool), i % 2 ? 2 : 0);
    /* each worker rotates on its own */
    for (int i = 0; i < 4; i++)
        assert_int_equal(lb_pick(pool, 1, 0, NULL, 0, 0), i % 2 ? 2 : 0);
    lb_pool_free(pool);

    /* idle servers of unequal weight share by weight */
    struct srvs t = {0};
    add(&t, 3, false, 1);
    add(&t, 1, false, 2);
    pool = pool_of(&t, BAL_LEAST_CONNECTIONS, 1);
    int count[2] = {0};
    for (int i = 0; i < 400; i++)
        count[pick(pool)]++;
    assert_int_equal(count[0], 300);
    assert_int_equal(count[1], 100);
    lb_pool_free(pool);
}

static void test_lc_backup(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, true, 2);
    atomic_store(&s.st[0].active, 100u);
    struct lb_pool *pool = pool_of(&s, BAL_LEAST_CONNECTIONS, 1);
    assert_int_equal(pick(pool), 0); /* busy primary still beats an idle backup */
    atomic_store(&s.st[0].weight, 0);
    assert_int_equal(pick(pool), 1);
    lb_pool_free(pool);
}

/* ---- random_two ---- */

static void test_r2_weights(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 3, false, 1);
    add(&s, 1, false, 2);
    struct lb_pool *pool = pool_of(&s, BAL_RANDOM_TWO, 1);
    int count[2] = {0};
    for (int i = 0; i < 100000; i++)
        count[pick(pool)]++;
    assert_in_range(count[0], 73000, 77000);
    lb_pool_free(pool);

    /* four servers 3:1:3:1, one more unusable and one at weight 0 */
    struct srvs t = {0};
    add(&t, 3, false, 1);
    add(&t, 1, false, 2);
    add(&t, 3, false, 3);
    add(&t, 1, false, 4);
    add(&t, 5, false, 5);
    add(&t, 0, false, 6);
    set_usable(&t, 4, false);
    pool = pool_of(&t, BAL_RANDOM_TWO, 1);
    int c[6] = {0};
    for (int i = 0; i < 100000; i++)
        c[pick(pool)]++;
    assert_int_equal(c[4], 0);
    assert_int_equal(c[5], 0);
    assert_in_range(c[0], 35500, 39500);
    assert_in_range(c[2], 35500, 39500);
    assert_in_range(c[1], 10500, 14500);
    assert_in_range(c[3], 10500, 14500);
    lb_pool_free(pool);
}

static void test_r2_least_loaded(void **state)
{
    (void)state;
    struct srvs s = {0};
    for (int i = 0; i < 4; i++) {
        add(&s, 1, false, i + 1);
        atomic_store(&s.st[i].active, (unsigned)i);
    }
    struct lb_pool *pool = pool_of(&s, BAL_RANDOM_TWO, 1);
    /* a server wins when drawn with a busier one: 3/6, 2/6, 1/6, 0 of the pairs */
    int c[4] = {0};
    for (int i = 0; i < 60000; i++)
        c[pick(pool)]++;
    assert_in_range(c[0], 28500, 31500);
    assert_in_range(c[1], 18500, 21500);
    assert_in_range(c[2], 8500, 11500);
    assert_int_equal(c[3], 0);
    lb_pool_free(pool);

    /* two candidates: always the less loaded (by active/weight) */
    struct srvs t = {0};
    add(&t, 4, false, 1);
    add(&t, 1, false, 2);
    atomic_store(&t.st[0].active, 6u);
    atomic_store(&t.st[1].active, 2u);
    pool = pool_of(&t, BAL_RANDOM_TWO, 1);
    for (int i = 0; i < 100; i++)
        assert_int_equal(pick(pool), 0);
    lb_pool_free(pool);
}

static void test_r2_single_and_workers(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, false, 2);
    add(&s, 1, true, 3);
    struct lb_pool *pool = pool_of(&s, BAL_RANDOM_TWO, 2);
    atomic_store(&s.st[1].active, 50u);
    const int t0[] = {0};
    for (int i = 0; i < 20; i++)
        assert_int_equal(lb_pick(pool, 0, 0, t0, 1, 0), 1);
    const int t01[] = {0, 1};
    assert_int_equal(lb_pick(pool, 0, 0, t01, 2, 0), 2);
    atomic_store(&s.st[1].active, 0u);
    /* the two workers draw from different streams */
    int same = 0;
    for (int i = 0; i < 64; i++)
        same += lb_pick(pool, 0, 0, NULL, 0, 0) == lb_pick(pool, 1, 0, NULL, 0, 0);
    assert_in_range(same, 10, 54);
    lb_pool_free(pool);
}

/* ---- consistent hash ---- */

#define NKEYS 100000

static void test_ch_stable(void **state)
{
    (void)state;
    struct srvs s = {0};
    for (int i = 0; i < 4; i++)
        add(&s, 1, false, i + 1);
    struct lb_pool *pool = pool_of(&s, BAL_CONSISTENT_HASH, 2);
    for (uint32_t k = 0; k < 1000; k++) {
        int a = lb_pick(pool, 0, key_of(k), NULL, 0, 0);
        assert_in_range(a, 0, 3);
        assert_int_equal(lb_pick(pool, 1, key_of(k), NULL, 0, 0), a);
        assert_int_equal(lb_pick(pool, 0, key_of(k), NULL, 0, 0), a);
    }
    /* extreme keys wrap around the ring */
    assert_in_range(lb_pick(pool, 0, 0, NULL, 0, 0), 0, 3);
    assert_in_range(lb_pick(pool, 0, UINT64_MAX, NULL, 0, 0), 0, 3);
    lb_pool_free(pool);
}

static void test_ch_spread(void **state)
{
    (void)state;
    struct srvs s = {0};
    for (int i = 0; i < 4; i++)
        add(&s, 1, false, i + 1);
    struct lb_pool *pool = pool_of(&s, BAL_CONSISTENT_HASH, 1);
    int c[4] = {0};
    for (uint32_t k = 0; k < NKEYS; k++)
        c[lb_pick(pool, 0, key_of(k), NULL, 0, 0)]++;
    for (int i = 0; i < 4; i++)
        assert_in_range(c[i], 22500, 27500);
    lb_pool_free(pool);

    /* weights 1:2:3:4 -> 10%, 20%, 30%, 40% (each within 15% of its share) */
    struct srvs t = {0};
    for (int i = 0; i < 4; i++)
        add(&t, i + 1, false, i + 1);
    pool = pool_of(&t, BAL_CONSISTENT_HASH, 1);
    int d[4] = {0};
    for (uint32_t k = 0; k < NKEYS; k++)
        d[lb_pick(pool, 0, key_of(k), NULL, 0, 0)]++;
    for (int i = 0; i < 4; i++) {
        int expect = NKEYS / 10 * (i + 1);
        assert_in_range(d[i], expect * 85 / 100, expect * 115 / 100);
    }
    lb_pool_free(pool);
}

static void test_ch_add_server(void **state)
{
    (void)state;
    struct srvs s = {0};
    for (int i = 0; i < 5; i++)
        add(&s, 2, false, i + 1);
    s.n = 4;
    struct lb_pool *four = pool_of(&s, BAL_CONSISTENT_HASH, 1);
    s.n = 5;
    struct lb_pool *five = pool_of(&s, BAL_CONSISTENT_HASH, 1);
    int moved = 0;
    for (uint32_t k = 0; k < NKEYS; k++) {
        int a = lb_pick(four, 0, key_of(k), NULL, 0, 0);
        int b = lb_pick(five, 0, key_of(k), NULL, 0, 0);
        if (a != b) {
            assert_int_equal(b, 4);
            moved++;
        }
    }
    assert_in_range(moved, 15000, 25000);
    lb_pool_free(four);
    lb_pool_free(five);
}

static void test_ch_remove_server(void **state)
{
    (void)state;
    struct srvs s = {0};
    for (int i = 0; i < 5; i++)
        add(&s, 1, false, i + 1);
    struct lb_pool *five = pool_of(&s, BAL_CONSISTENT_HASH, 1);
    /* same servers without #2, in another order: indexes differ, identities agree */
    struct lb_server_state *rest[4] = {s.p[4], s.p[0], s.p[3], s.p[1]};
    struct lb_pool *four = lb_pool_new(BAL_CONSISTENT_HASH, rest, 4, 1);
    assert_non_null(four);
    int moved = 0;
    for (uint32_t k = 0; k < NKEYS; k++) {
        int a = lb_pick(five, 0, key_of(k), NULL, 0, 0);
        int b = lb_pick(four, 0, key_of(k), NULL, 0, 0);
        assert_in_range(b, 0, 3);
        if (a == 2)
            moved++;
        else
            assert_ptr_equal(s.p[a], rest[b]);
    }
    assert_in_range(moved, 15000, 25000);
    lb_pool_free(five);
    lb_pool_free(four);
}

static void test_ch_fallthrough(void **state)
{
    (void)state;
    struct srvs s = {0};
    for (int i = 0; i < 5; i++)
        add(&s, 1, false, i + 1);
    struct lb_pool *five = pool_of(&s, BAL_CONSISTENT_HASH, 1);
    struct lb_server_state *rest[4] = {s.p[0], s.p[1], s.p[3], s.p[4]};
    struct lb_pool *four = lb_pool_new(BAL_CONSISTENT_HASH, rest, 4, 1);
    assert_non_null(four);
    const int t2[] = {2};
    int hits = 0;
    for (uint32_t k = 0; k < 20000; k++) {
        uint64_t key = key_of(k);
        if (lb_pick(five, 0, key, NULL, 0, 0) != 2)
            continue;
        hits++;
        /* down, tried or full: the next server clockwise, as if #2 were not there */
        struct lb_server_state *want = rest[lb_pick(four, 0, key, NULL, 0, 0)];
        int got = lb_pick(five, 0, key, t2, 1, 0);
        assert_ptr_equal(s.p[got], want);
        set_usable(&s, 2, false);
        assert_int_equal(lb_pick(five, 0, key, NULL, 0, 0), got);
        set_usable(&s, 2, true);
        atomic_store(&s.st[2].weight, 0);
        assert_int_equal(lb_pick(five, 0, key, NULL, 0, 0), got);
        atomic_store(&s.st[2].weight, 1);
        atomic_store(&s.st[2].active, 3u);
        assert_int_equal(lb_pick(five, 0, key, NULL, 0, 3), got);
        atomic_store(&s.st[2].active, 0u);
    }
    assert_in_range(hits, 3000, 5000);
    lb_pool_free(five);
    lb_pool_free(four);
}

static void test_ch_backup(void **state)
{
    (void)state;
    struct srvs s = {0};
    add(&s, 1, false, 1);
    add(&s, 1, true, 2);
    add(&s, 1, false, 3);
    add(&s, 1, true, 4);
    struct lb_pool *pool = pool_of(&s, BAL_CONSISTENT_HASH, 1);
    int c[4] = {0};
    for (uint32_t k = 0; k < 10000; k++)
        c[lb_pick(pool, 0, key_of(k), NULL, 0, 0)]++;
    assert_int_equal(c[1] + c[3], 0);
    assert_in_range(c[0], 4000, 6000);
    set_usable(&s, 0, false);
    set_usable(&s, 2, false);
    int first[100];
    for (uint32_t k = 0; k < 100; k++) {
        first[k] = lb_pick(pool, 0, key_of(k), NULL, 0, 0);
        assert_true(first[k] == 1 || first[k] == 3);
    }
    memset(c, 0, sizeof c);
    for (uint32_t k = 0; k < 10000; k++)
        c[lb_pick(pool, 0, key_of(k), NULL, 0, 0)]++;
    assert_in_range(c[1], 4000, 6000);
    assert_int_equal(c[0] + c[2], 0);
    for (uint32_t k = 0; k < 100; k++)
        assert_int_equal(lb_pick(pool, 0, key_of(k), NULL, 0, 0), first[k]);
    set_usable(&s, 1, false);
    assert_int_equal(lb_pick(pool, 0, key_of(7), NULL, 0, 0), 3);
    const int t3[] = {3};
    assert_int_equal(lb_pick(pool, 0, key_of(7), t3, 1, 0), -1);
    lb_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_rr_smooth_sequence),
        cmocka_unit_test(test_rr_equal_alternate),
        cmocka_unit_test(test_rr_skips_unusable_and_weight0),
        cmocka_unit_test(test_rr_tried),
        cmocka_unit_test(test_rr_backup),
        cmocka_unit_test(test_rr_max_per_server),
        cmocka_unit_test(test_rr_none),
        cmocka_unit_test(test_rr_workers_independent),
        cmocka_unit_test(test_rr_threads),
        cmocka_unit_test(test_lc_least_loaded),
        cmocka_unit_test(test_lc_weighted),
        cmocka_unit_test(test_lc_ties_rotate),
        cmocka_unit_test(test_lc_backup),
        cmocka_unit_test(test_r2_weights),
        cmocka_unit_test(test_r2_least_loaded),
        cmocka_unit_test(test_r2_single_and_workers),
        cmocka_unit_test(test_ch_stable),
        cmocka_unit_test(test_ch_spread),
        cmocka_unit_test(test_ch_add_server),
        cmocka_unit_test(test_ch_remove_server),
        cmocka_unit_test(test_ch_fallthrough),
        cmocka_unit_test(test_ch_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
