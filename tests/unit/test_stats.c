/* Unit tests for src/core/stats.c: histogram buckets (Prometheus `le` semantics: an
 * observation equal to a bound belongs to that bound's bucket), the microsecond sum, the
 * summing of per-worker histograms, and the registry that keeps stats objects by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/stats.h"

/* The bucket index that holds exactly one observation in h (asserts there is one). */
static size_t only_bucket(const struct histogram *h)
{
    size_t found = HIST_BOUNDS + 1;
    for (size_t i = 0; i <= HIST_BOUNDS; i++) {
        if (counter_get(&h->buckets[i]) == 0)
            continue;
        assert_int_equal(counter_get(&h->buckets[i]), 1);
        assert_int_equal(found, HIST_BOUNDS + 1);
        found = i;
    }
    assert_true(found <= HIST_BOUNDS);
    return found;
}

/* The bucket one observation of `usec` lands in. */
static size_t bucket_of(uint64_t usec)
{
    struct histogram h;
    memset(&h, 0, sizeof(h));
    hist_observe(&h, usec);
    assert_int_equal(counter_get(&h.count), 1);
    assert_int_equal(counter_get(&h.sum_us), usec);
    return only_bucket(&h);
}

static void test_bounds_are_the_documented_ones(void **state)
{
    (void)state;
    static const double documented[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    assert_int_equal(HIST_BOUNDS, sizeof(documented) / sizeof(documented[0]));
    for (size_t i = 0; i < HIST_BOUNDS; i++)
        assert_true(hist_bounds[i] == documented[i]);
}

static void test_observation_lands_in_its_le_bucket(void **state)
{
    (void)state;
    assert_int_equal(bucket_of(0), 0);
    assert_int_equal(bucket_of(500), 0);     /* 0.0005 s: on the bound */
    assert_int_equal(bucket_of(501), 1);     /* just above it */
    assert_int_equal(bucket_of(1000), 1);    /* 1 ms */
    assert_int_equal(bucket_of(300000), 9);  /* 0.3 s: le="0.5" */
    assert_int_equal(bucket_of(500000), 9);  /* 0.5 s: le="0.5" */
    assert_int_equal(bucket_of(700000), 10); /* 0.7 s: le="1" */
    assert_int_equal(bucket_of(1000000), 10);
    assert_int_equal(bucket_of(10000000), 13);          /* 10 s: le="10" */
    assert_int_equal(bucket_of(10000001), HIST_BOUNDS); /* +Inf */
    assert_int_equal(bucket_of(UINT64_C(86400) * 1000000), HIST_BOUNDS);
    for (size_t i = 0; i < HIST_BOUNDS; i++) {
        uint64_t us = (uint64_t)(hist_bounds[i] * 1e6 + 0.5);
        assert_int_equal(bucket_of(us), i);
        assert_int_equal(bucket_of(us + 1), i + 1);
    }
}

static void test_sum_and_count_accumulate(void **state)
{
    (void)state;
    struct histogram a, b, total;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&total, 0, sizeof(total));
    hist_observe(&a, 1500);    /* le="0.0025" */
    hist_observe(&a, 250000);  /* le="0.25" */
    hist_observe(&b, 3000000); /* le="5" */
    hist_sum_into(&total, &a);
    hist_sum_into(&total, &b);
    assert_int_equal(counter_get(&total.count), 3);
    assert_int_equal(counter_get(&total.sum_us), 1500 + 250000 + 3000000);
    unsigned long want[HIST_BOUNDS + 1] = {0};
    want[2] = want[8] = want[12] = 1;
    for (size_t i = 0; i <= HIST_BOUNDS; i++)
        assert_int_equal(counter_get(&total.buckets[i]), want[i]);
}

static void test_registry_keeps_objects_by_name(void **state)
{
    (void)state;
    struct listener_stats *a = listener_stats_get("front", 2);
    assert_non_null(a);
    assert_string_equal(a->name, "front");
    assert_int_equal(a->workers, 2);
    counter_add(&a->slots[1].refused, 3);
    assert_ptr_equal(listener_stats_get("front", 2), a); /* a reload finds the same one */
    assert_int_equal(counter_get(&listener_stats_get("front", 2)->slots[1].refused), 3);
    struct listener_stats *b = listener_stats_get("back", 2);
    assert_ptr_not_equal(a, b);
    assert_int_equal(counter_get(&b->slots[1].refused), 0);
    assert_int_equal((uintptr_t)&a->slots[0] % 64, 0);
    assert_int_equal((uintptr_t)&a->slots[1] % 64, 0);
    struct backend_stats *be = backend_stats_get("front", 1); /* another kind, same name */
    assert_non_null(be);
    assert_ptr_not_equal((void *)be, (void *)a);
    stats_registry_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_are_the_documented_ones),
        cmocka_unit_test(test_observation_lands_in_its_le_bucket),
        cmocka_unit_test(test_sum_and_count_accumulate),
        cmocka_unit_test(test_registry_keeps_objects_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
