/* Unit tests for the flat JSON object reader (src/admin/json_min.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>

#include <cmocka.h>

#include "admin/json_min.h"

static int parse(const char *s, struct jm_object *o, char *err, size_t errlen)
{
    return jm_parse_object(s, strlen(s), o, err, errlen);
}

static void test_patch_body(void **state)
{
    (void)state;
    struct jm_object o;
    char err[128];
    assert_int_equal(parse(" {\"state\" : \"drain\",\n\t\"weight\":5 } \n", &o, err, sizeof(err)),
                     0);
    assert_int_equal(o.n, 2);
    const struct jm_field *f = jm_get(&o, "state");
    assert_non_null(f);
    assert_int_equal(f->type, JM_STRING);
    char v[32];
    assert_int_equal(jm_string(f->str, f->str_len, v, sizeof(v)), 5);
    assert_string_equal(v, "drain");
    f = jm_get(&o, "weight");
    assert_non_null(f);
    assert_int_equal(f->type, JM_INT);
    assert_int_equal(f->num, 5);
    assert_null(jm_get(&o, "other"));
}

static void test_empty_object(void **state)
{
    (void)state;
    struct jm_object o;
    char err[128];
    assert_int_equal(parse("{}", &o, err, sizeof(err)), 0);
    assert_int_equal(o.n, 0);
    assert_int_equal(parse(" { } ", &o, err, sizeof(err)), 0);
}

static void test_escapes(void **state)
{
    (void)state;
    struct jm_object o;
    char err[128], v[64];
    assert_int_equal(parse("{\"\\u0073tate\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"}", &o, err,
                           sizeof(err)),
                     0);
    const struct jm_field *f = jm_get(&o, "state");
    assert_non_null(f);
    int n = jm_string(f->str, f->str_len, v, sizeof(v));
    assert_int_equal(n, 14);
    assert_string_equal(v, "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
    /* too small an output buffer */
    assert_int_equal(jm_string(f->str, f->str_len, v, 5), -1);
    /* \u0000 parses but cannot be decoded to a C string */
    assert_int_equal(parse("{\"a\":\"x\\u0000\"}", &o, err, sizeof(err)), 0);
    f = jm_get(&o, "a");
    assert_int_equal(jm_string(f->str, f->str_len, v, sizeof(v)), -1);
}

static void test_integers(void **state)
{
    (void)state;
    struct jm_object o;
    char err[128];
    assert_int_equal(parse("{\"a\":0,\"b\":-7,\"c\":9223372036854775807,"
                           "\"d\":-9223372036854775808}",
                           &o, err, sizeof(err)),
                     0);
    assert_int_equal(jm_get(&o, "a")->num, 0);
    assert_int_equal(jm_get(&o, "b")->num, -7);
    assert_true(jm_get(&o, "c")->num == LLONG_MAX);
    assert_true(jm_get(&o, "d")->num == LLONG_MIN);
}

static void expect_error(const char *text, const char *fragment)
{
    struct jm_object o;
    char err[128];
    int r = parse(text, &o, err, sizeof(err));
    if (r != -1)
        fail_msg("accepted: %s", text);
    if (!strstr(err, fragment))
        fail_msg("for %s: message \"%s\" lacks \"%s\"", text, err, fragment);
}

static void test_rejections(void **state)
{
    (void)state;
    expect_error("", "empty body");
    expect_error("   ", "empty body");
    expect_error("[1]", "expected a JSON object");
    expect_error("\"x\"", "expected a JSON object");
    expect_error("{", "expected a quoted key");
    expect_error("{\"a\"", "expected ':'");
    expect_error("{\"a\":", "expected a value");
    expect_error("{\"a\":1", "unterminated object");
    expect_error("{\"a\":1,}", "expected a quoted key");
    expect_error("{\"a\":1 \"b\":2}", "expected ',' or '}'");
    expect_error("{a:1}", "expected a quoted key");
    expect_error("{\"a\":true}", "expected a string or an integer");
    expect_error("{\"a\":null}", "expected a string or an integer");
    expect_error("{\"a\":{}}", "nested");
    expect_error("{\"a\":[1]}", "nested");
    expect_error("{\"a\":1.5}", "only integers");
    expect_error("{\"a\":1e3}", "only integers");
    expect_error("{\"a\":01}", "leading zeros");
    expect_error("{\"a\":-}", "expected a digit");
    expect_error("{\"a\":9223372036854775808}", "out of range");
    expect_error("{\"a\":-9223372036854775809}", "out of range");
    expect_error("{\"a\":1,\"a\":2}", "duplicate key \"a\"");
    expect_error("{\"a\":1,\"\\u0061\":2}", "duplicate key");
    expect_error("{\"a\":\"x\ny\"}", "control character");
    expect_error("{\"a\":\"\\x\"}", "unknown escape");
    expect_error("{\"a\":\"\\u12\"}", "bad \\u escape");
    expect_error("{\"a\":\"\\ud800\"}", "unpaired high surrogate");
    expect_error("{\"a\":\"\\udc00\"}", "unpaired low surrogate");
    expect_error("{\"a\":\"\xc3\"}", "invalid UTF-8");
    expect_error("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8");
    expect_error("{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8");
    expect_error("{\"a\":\"abc", "unterminated string");
    expect_error("{\"a\":1} x", "unexpected data");
    expect_error("{\"a\":1}{}", "unexpected data");
    expect_error("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
                 "key too long");
}

static void test_too_many_fields(void **state)
{
    (void)state;
    char buf[512];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "{");
    for (int i = 0; i <= JM_MAX_FIELDS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(buf + n, sizeof(buf) - n, "}");
    expect_error(buf, "too many members");
}

static void test_error_position(void **state)
{
    (void)state;
    struct jm_object o;
    char err[128];
    assert_int_equal(parse("{\"a\": tru}", &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at byte 6:"));
    /* a tiny error buffer is never overrun */
    char small[4];
    assert_int_equal(parse("{\"a\": tru}", &o, small, sizeof(small)), -1);
    assert_true(strlen(small) < sizeof(small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch_body),     cmocka_unit_test(test_empty_object),
        cmocka_unit_test(test_escapes),        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_rejections),     cmocka_unit_test(test_too_many_fields),
        cmocka_unit_test(test_error_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
