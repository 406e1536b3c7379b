/* Unit tests for authorities, paths and percent-decoding (src/http/uri.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/uri.h"

static int auth(const char *s, bool port_required, struct uri_authority *a)
{
    return uri_parse_authority(s, strlen(s), port_required, a);
}

static void test_authority(void **state)
{
    (void)state;
    struct uri_authority a;
    assert_int_equal(auth("Example.COM", false, &a), 0);
    assert_true(a.host_len == 11 && a.port == -1);
    assert_int_equal(auth("a-b_c~d.e.:0", false, &a), 0);
    assert_int_equal(a.port, 0);
    assert_int_equal(auth("10.0.0.1:65535", true, &a), 0);
    assert_true(a.host_len == 8 && a.port == 65535);
    assert_int_equal(auth("[2001:db8::1]:443", true, &a), 0);
    assert_true(a.host_len == 13 && a.port == 443);
    assert_int_equal(auth("[::ffff:1.2.3.4]", false, &a), 0);
    const char *bad[] = {"",    ":80",    "a:",   "a:65536",   "a:123456", "a:+1",    "a:1a", "u@a",
                         "a b", "a,b",    "a%41", "[::1",      "[::1]x",   "[::1]:",  "[zz]", "[]",
                         "::1", "[v1.a]", "a/b",  "[::1%25e]", "a:1:2",    "\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (auth(bad[i], false, &a) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(auth("a", true, &a), -1);
    /* an embedded NUL must not end the address early (found by fuzz_h1_request) */
    assert_int_equal(uri_parse_authority("[::\0001]:443", 11, true, &a), -1);
}

static void test_same_authority(void **state)
{
    (void)state;
    struct uri_authority a, b;
    assert_int_equal(auth("EXAMPLE.com", false, &a), 0);
    assert_int_equal(auth("example.COM:80", false, &b), 0);
    assert_true(uri_same_authority(&a, &b, 80));
    assert_false(uri_same_authority(&a, &b, 443));
    assert_int_equal(auth("example.co", false, &b), 0);
    assert_false(uri_same_authority(&a, &b, 80));
}

static void test_valid_path(void **state)
{
    (void)state;
    const char *good[] = {
        "/", "/a/b?c=d&e", "/%41%2f", "?q", "", "/!$&'()*+,;=:@-._~", "/\"<>\\^`{|}", "/%", "/%zz"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(uri_valid_path(good[i], strlen(good[i])));
    const char *bad[] = {"/a b", "/#", "/\x7f", "/\x01", "/\xc3\xa9", "/\t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (uri_valid_path(bad[i], strlen(bad[i])))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_percent_decode(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(h1_percent_decode("127.0.0.1%3A9001", 16, out, sizeof(out)), 14);
    assert_string_equal(out, "127.0.0.1:9001");
    assert_int_equal(h1_percent_decode("%5b%3A%3a1%5D:80", 16, out, sizeof(out)), 8);
    assert_string_equal(out, "[::1]:80");
    assert_int_equal(h1_percent_decode("a+b", 3, out, sizeof(out)), 3);
    assert_string_equal(out, "a+b");
    assert_int_equal(h1_percent_decode("%", 1, out, sizeof(out)), -1);
    assert_int_equal(h1_percent_decode("%4", 2, out, sizeof(out)), -1);
    assert_int_equal(h1_percent_decode("%zz", 3, out, sizeof(out)), -1);
    assert_int_equal(h1_percent_decode("%00", 3, out, sizeof(out)), -1);
    assert_int_equal(h1_percent_decode("abcd", 4, out, 4), -1);
    assert_int_equal(h1_percent_decode("abc", 3, out, 4), 3);
    assert_int_equal(h1_percent_decode("", 0, out, 1), 0);
    assert_int_equal(h1_percent_decode("", 0, out, 0), -1);
}

/* Normalises `in` and checks the result: `want` NULL means refused (above the root). */
static void norm(const char *in, const char *want)
{
    char buf[256];
    size_t len = strlen(in);
    memcpy(buf, in, len);
    long n = uri_normalize_path(buf, len);
    if (want == NULL) {
        assert_int_equal(n, -1);
        return;
    }
    assert_true(n >= 0);
    buf[n] = 0;
    assert_string_equal(buf, want);
}

static void test_normalize_path(void **state)
{
    (void)state;
    norm("/", "/");
    norm("/a/b", "/a/b");
    norm("/a.b/.c/x..", "/a.b/.c/x.."); /* dots inside names are names */
    norm("/a/../admin", "/admin");      /* the classic */
    norm("/a/./b", "/a/b");
    norm("/a/.", "/a/");
    norm("/a/b/..", "/a/");
    norm("/a/..", "/");
    norm("/.", "/");
    norm("/a/b/../../c", "/c");
    norm("/%61dmin", "/admin"); /* unreserved escapes decode */
    norm("/%7Euser/%2d%2E%5f", "/~user/-._");
    norm("/a/%2e%2E/admin", "/admin"); /* an escaped dot-segment is one */
    norm("/a/.%2e/admin", "/admin");
    norm("/a%2Fb", "/a%2Fb");                   /* a reserved escape stays, a separator it is not */
    norm("/a%2F..%2Fadmin", "/a%2F..%2Fadmin"); /* one segment, not a dot-segment */
    norm("/%20x%zz%4", "/%20x%zz%4");           /* other and malformed escapes stay as sent */
    norm("//a//../b", "//a/b");                 /* empty segments are kept */
    norm("//..", "/");
    norm("/..", NULL); /* above the root: refused */
    norm("/a/../..", NULL);
    norm("/a/../../b", NULL);
    norm("/%2e%2e/x", NULL);
    norm("*", "*"); /* not a path: left alone */
    norm("", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authority),      cmocka_unit_test(test_same_authority),
        cmocka_unit_test(test_valid_path),     cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_normalize_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
