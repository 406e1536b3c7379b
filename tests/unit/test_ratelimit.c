/* Unit tests for http/ratelimit.c: the GCRA budget (burst, refill, Retry-After wait), keys
 * kept apart, one budget shared exactly by concurrent threads, the bounded key table and
 * its eviction (a flood of new keys does not free a limited one), and the limiter kept
 * across a reload with the same settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "config/config.h"
#include "http/ratelimit.h"

#define SEC 1000000000ULL
#define T0 (1000 * SEC) /* an arbitrary monotonic time */

/* 10 per second, 3 at once: the 4th is refused for 100 ms, then one more is allowed. */
static void test_burst_then_refill(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(10, SEC, 3, 64);
    assert_non_null(rl);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ratelimit_take(rl, 42, T0), 0);
    assert_int_equal(ratelimit_take(rl, 42, T0), SEC / 10);
    assert_int_equal(ratelimit_take(rl, 42, T0 + SEC / 20), SEC / 20);
    assert_int_equal(ratelimit_take(rl, 42, T0 + SEC / 10), 0);
    assert_true(ratelimit_take(rl, 42, T0 + SEC / 10) > 0);
    /* idle for a second: a full burst again, no more */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ratelimit_take(rl, 42, T0 + 2 * SEC), 0);
    assert_true(ratelimit_take(rl, 42, T0 + 2 * SEC) > 0);
    ratelimit_unref(rl);
}

/* The average rate holds over a long run: 5 per second for 10 s at 100 tries a second. */
static void test_average_rate(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(5, SEC, 1, 64);
    int allowed = 0;
    for (uint64_t t = 0; t < 10 * SEC; t += SEC / 100)
        allowed += ratelimit_take(rl, 7, T0 + t) == 0;
    assert_int_equal(allowed, 50);
    ratelimit_unref(rl);
}

static void test_keys_are_separate(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(1, 60 * SEC, 1, 64);
    assert_int_equal(ratelimit_take(rl, 1, T0), 0);
    assert_true(ratelimit_take(rl, 1, T0) > 0);
    assert_int_equal(ratelimit_take(rl, 2, T0), 0);
    assert_true(ratelimit_take(rl, 2, T0) > 0);
    assert_true(ratelimit_take(rl, 1, T0 + SEC) > 0);
    ratelimit_unref(rl);
}

/* The table never grows: max_keys rounds up to whole sets of 8. A limited key survives a
 * flood of 100000 distinct fresh keys in its set: they evict one another (their buckets
 * are fuller), not it. */
static void test_bounded_table_keeps_limited_keys(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(1, 60 * SEC, 2, 1);
    assert_int_equal(ratelimit_slots(rl), RATELIMIT_SET);
    ratelimit_unref(rl);
    rl = ratelimit_new(1, 60 * SEC, 2, 8);
    assert_int_equal(ratelimit_slots(rl), 8);
    assert_int_equal(ratelimit_take(rl, 99, T0), 0);
    assert_int_equal(ratelimit_take(rl, 99, T0), 0);
    assert_true(ratelimit_take(rl, 99, T0) > 0);
    for (uint64_t k = 1000; k < 101000; k++)
        assert_int_equal(ratelimit_take(rl, k, T0 + 1), 0);
    assert_true(ratelimit_take(rl, 99, T0 + 2) > 0);
    /* with every slot limited, a new key evicts the fullest bucket and is served */
    ratelimit_unref(rl);
    rl = ratelimit_new(1, 60 * SEC, 1, 8);
    for (uint64_t k = 1; k <= 8; k++)
        assert_int_equal(ratelimit_take(rl, k, T0 + k), 0);
    assert_int_equal(ratelimit_take(rl, 9, T0 + 9), 0);
    assert_int_equal(ratelimit_take(rl, 1, T0 + 10), 0); /* key 1 was evicted: fresh */
    assert_true(ratelimit_take(rl, 8, T0 + 10) > 0);     /* key 8 kept */
    ratelimit_unref(rl);
}

struct race {
    struct ratelimit *rl;
    int allowed;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    /* every thread walks the same 0.2 s in 1 us steps: the budget refills as they go, so
       they keep contending for it */
    for (uint64_t i = 0; i < 200000; i++)
        r->allowed += ratelimit_take(r->rl, 5, T0 + i * 1000) == 0;
    return NULL;
}

/* Four threads on one key: exactly the burst plus the refill of the time walked pass in
 * all (1000, plus one per 1 ms walked after the first: 199), whatever the interleaving. */
static void test_one_budget_across_threads(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(1000, SEC, 1000, 64);
    struct race r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){rl, 0};
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += r[i].allowed;
    }
    assert_int_equal(total, 1199);
    ratelimit_unref(rl);
}

/* A reload with the same settings keeps the budget; changed settings start afresh. */
static void test_attach_keeps_budget_over_reload(void **state)
{
    (void)state;
    struct cfg_route r1[2] = {0}, r2[2] = {0};
    struct cfg_rate_limit lim = {true, 1, 60000, 1, RL_KEY_ROUTE, NULL, 16};
    r1[1].rate_limit = lim;
    r2[1].rate_limit = lim;
    struct cfg_listener old = {.routes = r1, .n_routes = 2};
    struct cfg_listener next = {.routes = r2, .n_routes = 2};
    assert_int_equal(ratelimit_attach(&old, NULL), 0);
    assert_null(r1[0].limiter);
    assert_non_null(r1[1].limiter);
    assert_int_equal(ratelimit_take(r1[1].limiter, 1, T0), 0);
    assert_int_equal(ratelimit_attach(&next, &old), 0);
    assert_ptr_equal(r2[1].limiter, r1[1].limiter);
    ratelimit_detach(&old);
    assert_true(ratelimit_take(r2[1].limiter, 1, T0) > 0);
    ratelimit_detach(&next);
    r2[1].rate_limit.requests = 2;
    assert_int_equal(ratelimit_attach(&next, &old), 0);
    assert_int_equal(ratelimit_take(r2[1].limiter, 1, T0), 0);
    ratelimit_detach(&next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_average_rate),
        cmocka_unit_test(test_keys_are_separate),
        cmocka_unit_test(test_bounded_table_keeps_limited_keys),
        cmocka_unit_test(test_one_budget_across_threads),
        cmocka_unit_test(test_attach_keeps_budget_over_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
