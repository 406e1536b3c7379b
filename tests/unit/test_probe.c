/* Health check threshold state machine (upstream/probe_state.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "upstream/probe_state.h"

#define OK true
#define FAIL false

/* Feeds `n` identical results with thresholds (rise, fall); returns the last change. */
static enum probe_change feed(struct probe_state *st, bool ok, int n, int rise, int fall)
{
    enum probe_change last = PROBE_SAME;
    for (int i = 0; i < n; i++)
        last = probe_state_record(st, ok, rise, fall);
    return last;
}

static void test_starts_down(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    assert_false(st.up);
    assert_false(st.seen_success);
    assert_int_equal(st.successes, 0);
    assert_int_equal(st.failures, 0);
}

static void test_first_success_marks_up_at_once(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    /* healthy_threshold 2 does not delay the very first success */
    assert_int_equal(probe_state_record(&st, OK, 2, 3), PROBE_WENT_UP);
    assert_true(st.up);
    assert_int_equal(st.successes, 1);
    assert_int_equal(probe_state_record(&st, OK, 2, 3), PROBE_SAME);
    assert_int_equal(st.successes, 2);
}

static void test_failures_before_first_success_stay_down(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    assert_int_equal(feed(&st, FAIL, 10, 2, 3), PROBE_SAME);
    assert_false(st.up);
    assert_int_equal(st.failures, 10);
    /* the first success ever still counts as "first", even after failures */
    assert_int_equal(probe_state_record(&st, OK, 5, 3), PROBE_WENT_UP);
    assert_int_equal(st.failures, 0);
}

static void test_failures_below_threshold_keep_up(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    probe_state_record(&st, OK, 2, 3);
    assert_int_equal(feed(&st, FAIL, 2, 2, 3), PROBE_SAME);
    assert_true(st.up);
    assert_int_equal(st.failures, 2);
    /* a success in between resets the failure streak */
    assert_int_equal(probe_state_record(&st, OK, 2, 3), PROBE_SAME);
    assert_int_equal(st.failures, 0);
    assert_int_equal(feed(&st, FAIL, 2, 2, 3), PROBE_SAME);
    assert_true(st.up);
}

static void test_unhealthy_threshold_marks_down(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    probe_state_record(&st, OK, 2, 3);
    feed(&st, FAIL, 2, 2, 3);
    assert_int_equal(probe_state_record(&st, FAIL, 2, 3), PROBE_WENT_DOWN);
    assert_false(st.up);
    assert_int_equal(st.failures, 3);
    /* further failures are no new change */
    assert_int_equal(probe_state_record(&st, FAIL, 2, 3), PROBE_SAME);
    assert_int_equal(st.failures, 4);
}

static void test_successes_below_healthy_threshold_keep_down(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    probe_state_record(&st, OK, 3, 1);
    assert_int_equal(probe_state_record(&st, FAIL, 3, 1), PROBE_WENT_DOWN);
    assert_int_equal(feed(&st, OK, 2, 3, 1), PROBE_SAME);
    assert_false(st.up);
    assert_int_equal(st.successes, 2);
    /* a failure restarts the success streak */
    assert_int_equal(probe_state_record(&st, FAIL, 3, 1), PROBE_SAME);
    assert_int_equal(st.successes, 0);
    assert_int_equal(feed(&st, OK, 2, 3, 1), PROBE_SAME);
    assert_int_equal(probe_state_record(&st, OK, 3, 1), PROBE_WENT_UP);
    assert_true(st.up);
}

static void test_thresholds_of_one(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    assert_int_equal(probe_state_record(&st, OK, 1, 1), PROBE_WENT_UP);
    assert_int_equal(probe_state_record(&st, FAIL, 1, 1), PROBE_WENT_DOWN);
    assert_int_equal(probe_state_record(&st, OK, 1, 1), PROBE_WENT_UP);
    assert_int_equal(probe_state_record(&st, OK, 1, 1), PROBE_SAME);
}

static void test_bad_thresholds_count_as_one(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    assert_int_equal(probe_state_record(&st, OK, 0, -5), PROBE_WENT_UP);
    assert_int_equal(probe_state_record(&st, FAIL, 0, -5), PROBE_WENT_DOWN);
    assert_int_equal(probe_state_record(&st, OK, 0, 0), PROBE_WENT_UP);
}

static void test_force_down_needs_healthy_threshold(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    probe_state_record(&st, OK, 2, 3);
    probe_state_record(&st, OK, 2, 3);
    assert_true(probe_state_force_down(&st)); /* passive health took it down */
    assert_false(st.up);
    assert_int_equal(st.successes, 0);
    assert_false(probe_state_force_down(&st)); /* already down */
    /* not the first success any more: the healthy threshold applies */
    assert_int_equal(probe_state_record(&st, OK, 2, 3), PROBE_SAME);
    assert_int_equal(probe_state_record(&st, OK, 2, 3), PROBE_WENT_UP);
}

static void test_flapping_sequence(void **state)
{
    (void)state;
    /* rise 2, fall 2: a scripted sequence and the expected verdict after each step */
    static const bool seq[] = {FAIL, OK, FAIL, OK, FAIL, FAIL, OK, FAIL, OK, OK, FAIL, OK};
    static const bool up[] = {0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    struct probe_state st;
    probe_state_init(&st);
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        probe_state_record(&st, seq[i], 2, 2);
        assert_int_equal(st.up, up[i]);
    }
}

static void test_counters_saturate(void **state)
{
    (void)state;
    struct probe_state st;
    probe_state_init(&st);
    st.failures = INT32_MAX;
    assert_int_equal(probe_state_record(&st, FAIL, 2, 3), PROBE_SAME);
    assert_int_equal(st.failures, INT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_down),
        cmocka_unit_test(test_first_success_marks_up_at_once),
        cmocka_unit_test(test_failures_before_first_success_stay_down),
        cmocka_unit_test(test_failures_below_threshold_keep_up),
        cmocka_unit_test(test_unhealthy_threshold_marks_down),
        cmocka_unit_test(test_successes_below_healthy_threshold_keep_down),
        cmocka_unit_test(test_thresholds_of_one),
        cmocka_unit_test(test_bad_thresholds_count_as_one),
        cmocka_unit_test(test_force_down_needs_healthy_threshold),
        cmocka_unit_test(test_flapping_sequence),
        cmocka_unit_test(test_counters_saturate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
