/* Unit tests for the HTTP/1 request-head parser (src/http/h1_request.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_request.h"

static int parse(const char *s, struct h1_request *r)
{
    return h1_parse_request(s, strlen(s), 8192, r);
}

static int parse_code(const char *s)
{
    struct h1_request r;
    return parse(s, &r);
}

static bool str_is(struct h1_str s, const char *z)
{
    return s.len == strlen(z) && memcmp(s.p, z, s.len) == 0;
}

static void test_simple_get(void **state)
{
    (void)state;
    const char *req = "GET /api/v1/status?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9900\r\n"
                      "User-Agent:  curl/8 \t\r\nAccept: */*\r\n\r\nBODY";
    struct h1_request r;
    int n = parse(req, &r);
    assert_int_equal(n, (int)(strstr(req, "BODY") - req));
    assert_true(str_is(r.method, "GET"));
    assert_true(str_is(r.target, "/api/v1/status?x=1"));
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.n_headers, 3);
    assert_true(str_is(r.headers[0].name, "Host"));
    assert_true(str_is(r.headers[0].value, "127.0.0.1:9900"));
    assert_true(str_is(r.headers[1].value, "curl/8"));
    assert_true(str_is(h1_find_header(&r, "user-agent")->value, "curl/8"));
    assert_null(h1_find_header(&r, "cookie"));
    assert_true(h1_keep_alive(&r));
}

static void test_incremental(void **state)
{
    (void)state;
    const char *req = "PATCH /a HTTP/1.1\r\nContent-Length: 5\r\nX: y\r\n\r\n";
    size_t len = strlen(req);
    struct h1_request r;
    for (size_t i = 0; i < len; i++) {
        int n = h1_parse_request(req, i, 8192, &r);
        assert_int_equal(n, H1_NEED_MORE);
    }
    assert_int_equal(h1_parse_request(req, len, 8192, &r), (int)len);
    uint64_t cl;
    assert_int_equal(h1_body_length(&r, &cl), 0);
    assert_int_equal(cl, 5);
}

static void test_empty_lines_before_request(void **state)
{
    (void)state;
    struct h1_request r;
    assert_true(parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_int_equal(r.minor_version, 0);
    assert_false(h1_keep_alive(&r));
    assert_int_equal(r.n_headers, 0);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    const char *bad[] = {
        "GET /\r\n\r\n",                        /* no version */
        "GET  / HTTP/1.1\r\n\r\n",              /* double space */
        "GET / HTTP/1.1 \r\n\r\n",              /* trailing space */
        "G(T / HTTP/1.1\r\n\r\n",               /* bad method char */
        " GET / HTTP/1.1\r\n\r\n",              /* leading space */
        "GET /a b HTTP/1.1\r\n\r\n",            /* space in target */
        "GET /\x01 HTTP/1.1\r\n\r\n",           /* control in target */
        "GET / HTTP/1.1\nHost: x\n\n",          /* bare LF */
        "GET / HTTP/1.1\rHost: x\r\n\r\n",      /* bare CR */
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",   /* space before colon */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",        /* empty name */
        "GET / HTTP/1.1\r\nHost x\r\n\r\n",     /* no colon */
        "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",   /* control in value */
        "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",   /* DEL in value */
        "GET / HTTP/1.x\r\n\r\n",               /* bad version digit */
        "GET / HTTPS/1.1\r\n\r\n",
        "GET / HTTP/1.10\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n = parse_code(bad[i]);
        if (n != H1_ERR_SYNTAX)
            fail_msg("case %zu: got %d for %s", i, n, bad[i]);
    }
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(parse_code("GET / HTTP/2.0\r\n\r\n"), H1_ERR_VERSION);
    assert_int_equal(parse_code("GET / HTTP/1.2\r\n\r\n"), H1_ERR_VERSION);
    assert_int_equal(parse_code("GET / HTTP/0.9\r\n\r\n"), H1_ERR_VERSION);
}

static void test_tab_and_obs_text_in_value(void **state)
{
    (void)state;
    struct h1_request r;
    assert_true(parse("GET / HTTP/1.1\r\nA: x\ty \xc3\xa9\r\nB:\r\n\r\n", &r) > 0);
    assert_true(str_is(r.headers[0].value, "x\ty \xc3\xa9"));
    assert_int_equal(r.headers[1].value.len, 0);
}

static void test_limits(void **state)
{
    (void)state;
    struct h1_request r;
    char buf[9000];
    /* a head longer than the limit, incomplete: too large, not need-more */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    assert_int_equal(h1_parse_request(buf, 100, 8192, &r), H1_NEED_MORE);
    assert_int_equal(h1_parse_request(buf, sizeof(buf), 8192, &r), H1_ERR_TOO_LARGE);
    assert_int_equal(h1_parse_request(buf, 8192, 8192, &r), H1_ERR_TOO_LARGE);
    /* a head that fits exactly is fine; one byte less is too large */
    const char *req = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    size_t len = strlen(req);
    assert_int_equal(h1_parse_request(req, len, len, &r), (int)len);
    assert_int_equal(h1_parse_request(req, len, len - 1, &r), H1_ERR_TOO_LARGE);
    /* too many header lines */
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= H1_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "H%d: v\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    assert_int_equal(h1_parse_request(buf, n, 8192, &r), H1_ERR_TOO_MANY);
}

static void test_body_length(void **state)
{
    (void)state;
    struct h1_request r;
    uint64_t cl = 99;
    assert_true(parse("POST / HTTP/1.1\r\n\r\n", &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), 0);
    assert_int_equal(cl, 0);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n", &r) >
                0);
    assert_int_equal(h1_body_length(&r, &cl), 0);
    assert_int_equal(cl, 12);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 13\r\n\r\n", &r) >
                0);
    assert_int_equal(h1_body_length(&r, &cl), H1_ERR_SYNTAX);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: +12\r\n\r\n", &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), H1_ERR_SYNTAX);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n", &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), H1_ERR_SYNTAX);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), H1_ERR_SYNTAX);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), H1_ERR_SYNTAX);
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), 1);
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                      &r) > 0);
    assert_int_equal(h1_body_length(&r, &cl), H1_ERR_SYNTAX);
}

static void test_tokens(void **state)
{
    (void)state;
    struct h1_request r;
    assert_true(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", &r) > 0);
    assert_true(h1_header_has_token(&r, "connection", "close"));
    assert_false(h1_keep_alive(&r));
    assert_true(parse("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", &r) > 0);
    assert_false(h1_header_has_token(&r, "connection", "close"));
    assert_true(h1_keep_alive(&r));
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0);
    assert_true(h1_keep_alive(&r));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_empty_lines_before_request),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_tab_and_obs_text_in_value),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_body_length),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
