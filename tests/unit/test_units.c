/* Unit tests for src/config/units.c: durations, sizes, protocol names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "config/config.h"

/* Runs `parse` (parse_duration_ms or parse_size) on `s`, asserts success, returns the value. */
static uint64_t parse_ok(int (*parse)(const char *, uint64_t *, const char **), const char *s)
{
    uint64_t v = 12345;
    const char *err = NULL;
    assert_int_equal(parse(s, &v, &err), 0);
    return v;
}

/* Asserts that `parse` rejects `s` with -EINVAL and message `msg`, leaving the output alone. */
static void parse_err(int (*parse)(const char *, uint64_t *, const char **), const char *s,
                      const char *msg)
{
    uint64_t v = 7;
    const char *err = NULL;
    assert_int_equal(parse(s, &v, &err), -EINVAL);
    assert_string_equal(err, msg);
    assert_int_equal(v, 7);
}

#define dur(s) parse_ok(parse_duration_ms, (s))
#define dur_err(s, msg) parse_err(parse_duration_ms, (s), (msg))
#define size(s) parse_ok(parse_size, (s))
#define size_err(s, msg) parse_err(parse_size, (s), (msg))

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(dur("250ms"), 250);
    assert_int_equal(dur("5s"), 5000);
    assert_int_equal(dur("4m"), 240000);
    assert_int_equal(dur("1h"), 3600000);
    assert_int_equal(dur("1h30m"), 5400000);
    assert_int_equal(dur("1m30s500ms"), 90500);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur("90m"), 5400000);
    assert_int_equal(dur("1h1ms"), 3600001);
}

static void test_duration_errors(void **state)
{
    (void)state;
    dur_err("5", "duration needs a unit (ms, s, m, h)");
    dur_err("1h30", "duration needs a unit (ms, s, m, h)");
    dur_err("", "empty duration");
    dur_err(NULL, "empty duration");
    dur_err("5x", "unknown duration unit (use ms, s, m, h)");
    dur_err("5sec", "unknown duration unit (use ms, s, m, h)");
    dur_err("5S", "unknown duration unit (use ms, s, m, h)");
    dur_err("-5s", "invalid duration (expected e.g. 250ms, 5s, 4m, 1h30m)");
    dur_err("s", "invalid duration (expected e.g. 250ms, 5s, 4m, 1h30m)");
    dur_err(" 5s", "invalid duration (expected e.g. 250ms, 5s, 4m, 1h30m)");
    dur_err("1.5s", "fractions are not allowed in durations (write 1s500ms, not 1.5s)");
    dur_err("30m1h", "duration units must go from largest to smallest (h, m, s, ms)");
    dur_err("1s1s", "duration units must go from largest to smallest (h, m, s, ms)");
    dur_err("99999999999999999999999ms", "duration too large");
    dur_err("9999999999999999h", "duration too large");
    dur_err("5124095576030h99999999999999999ms", "duration too large");
}

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(size("512"), 512);
    assert_int_equal(size("0"), 0);
    assert_int_equal(size("16k"), 16384);
    assert_int_equal(size("16K"), 16384);
    assert_int_equal(size("16kb"), 16384);
    assert_int_equal(size("16KiB"), 16384);
    assert_int_equal(size("1m"), 1048576);
    assert_int_equal(size("1M"), 1048576);
    assert_int_equal(size("1g"), 1073741824ULL);
    assert_int_equal(size("2G"), 2147483648ULL);
    assert_int_equal(size("100b"), 100);
}

static void test_size_errors(void **state)
{
    (void)state;
    size_err("", "empty size");
    size_err("k", "invalid size (expected e.g. 512, 16k, 1m)");
    size_err("-1", "invalid size (expected e.g. 512, 16k, 1m)");
    size_err("16x", "unknown size unit (use k, m, g)");
    size_err("16kk", "unknown size unit (use k, m, g)");
    size_err("1.5m", "unknown size unit (use k, m, g)");
    size_err("99999999999999999999999", "size too large");
    size_err("99999999999999g", "size too large");
}

static void test_protocol_names(void **state)
{
    (void)state;
    assert_string_equal(cfg_protocol_name(PROTO_TCP), "tcp");
    assert_string_equal(cfg_protocol_name(PROTO_TLS), "tls");
    assert_string_equal(cfg_protocol_name(PROTO_HTTP), "http");
    assert_string_equal(cfg_protocol_name(PROTO_HTTPS), "https");
    assert_string_equal(cfg_protocol_name((enum cfg_protocol)42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),      cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_sizes),          cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_protocol_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
