/* Unit tests for the message semantics of HTTP/1 heads (src/http/h1_message.c,
 * h1_fields.c): framing, the request-smuggling classics, Host, Connection, Expect, Upgrade,
 * and response framing per RFC 9112 section 6.3. Every head goes through the incremental
 * checks of h1_test_util.h first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_fields.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"

#include "h1_test_util.h"

/* Parses the request head s (which must be valid syntax) and checks it. */
static enum h1_error check_req(const char *s, uint64_t max_body, struct h1_msg *m)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    int r = t_req(s, &h, f);
    if (r <= 0)
        fail_msg("head refused (%d, %s): %s", r, h1_error_reason(h.error), s);
    return h1_check_request(&h, max_body, m);
}

static enum h1_error check_resp(const char *s, const struct h1_exchange *x, struct h1_msg *m)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    int r = t_resp(s, &h, f);
    if (r <= 0)
        fail_msg("head refused (%d, %s): %s", r, h1_error_reason(h.error), s);
    return h1_check_response(&h, x, m);
}

struct req_case {
    const char *fields; /* after "POST / HTTP/1.1\r\nHost: a\r\n" */
    enum h1_error error;
    enum h1_body body;
    uint64_t length;
};

static void run_req_cases(const struct req_case *cases, size_t n, const char *start)
{
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s%s\r\n", start, cases[i].fields);
        struct h1_msg m;
        enum h1_error e = check_req(buf, 0, &m);
        if (e != cases[i].error)
            fail_msg("case %zu: got %d (%s), want %d for %s", i, e, h1_error_reason(e),
                     cases[i].error, cases[i].fields);
        if (e == H1_OK && (m.body != cases[i].body || m.length != cases[i].length))
            fail_msg("case %zu: body %d/%llu, want %d/%llu for %s", i, m.body,
                     (unsigned long long)m.length, cases[i].body,
                     (unsigned long long)cases[i].length, cases[i].fields);
    }
}

#define P11 "POST / HTTP/1.1\r\nHost: a\r\n"
#define P10 "POST / HTTP/1.0\r\n"
#define RUN(cases, start) run_req_cases(cases, sizeof(cases) / sizeof(cases[0]), start)

static void test_request_framing(void **state)
{
    (void)state;
    static const struct req_case cases[] = {
        {"", H1_OK, H1_BODY_NONE, 0},
        {"Content-Length: 12\r\n", H1_OK, H1_BODY_LENGTH, 12},
        {"Content-Length: 0\r\n", H1_OK, H1_BODY_LENGTH, 0},
        {"Content-Length:  7 \r\n", H1_OK, H1_BODY_LENGTH, 7}, /* OWS */
        {"Content-Length: 007\r\n", H1_OK, H1_BODY_LENGTH, 7},
        {"Transfer-Encoding: chunked\r\n", H1_OK, H1_BODY_CHUNKED, 0},
        {"Transfer-Encoding: CHUNKED\r\n", H1_OK, H1_BODY_CHUNKED, 0}, /* case-insensitive */
        {"Transfer-Encoding:\tchunked \r\n", H1_OK, H1_BODY_CHUNKED, 0},
        {"Content-Length: 18446744073709551615\r\n", H1_OK, H1_BODY_LENGTH, UINT64_MAX},
    };
    RUN(cases, P11);
}

/* RFC 9110 section 8.6: identical values merged, differing refused. */
static void test_content_length_rules(void **state)
{
    (void)state;
    static const struct req_case cases[] = {
        {"Content-Length: 12\r\ncontent-length: 12\r\n", H1_OK, H1_BODY_LENGTH, 12},
        {"Content-Length: 5, 5\r\n", H1_OK, H1_BODY_LENGTH, 5},
        {"Content-Length: 5,05\r\n", H1_OK, H1_BODY_LENGTH, 5},
        {"Content-Length: 12\r\ncontent-length: 13\r\n", H1_E_CL_CONFLICT, 0, 0},
        {"Content-Length: 5, 6\r\n", H1_E_CL_CONFLICT, 0, 0},
        {"Content-Length: +5\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: -5\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 1_0\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 0x10\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 1 0\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 1.0\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 5e2\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length:\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 5,\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: ,5\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: \"5\"\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 18446744073709551616\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 99999999999999999999\r\n", H1_E_CL_INVALID, 0, 0},
        {"Content-Length: 5\r\nContent-Length: x\r\n", H1_E_CL_INVALID, 0, 0},
    };
    RUN(cases, P11);
}

/* CL.TE, TE.CL, TE.TE: every way of making two implementations disagree on the body. */
static void test_smuggling_framing(void **state)
{
    (void)state;
    static const struct req_case cases[] = {
        {"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", H1_E_CL_AND_TE, 0, 0},
        {"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", H1_E_CL_AND_TE, 0, 0},
        {"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", H1_E_CL_AND_TE, 0, 0},
        {"Transfer-Encoding: xchunked\r\n", H1_E_TE_UNKNOWN, 0, 0},
        {"Transfer-Encoding: chunkedx\r\n", H1_E_TE_UNKNOWN, 0, 0},
        {"Transfer-Encoding: chunked, identity\r\n", H1_E_TE_UNKNOWN, 0, 0},
        {"Transfer-Encoding: identity\r\n", H1_E_TE_UNKNOWN, 0, 0},
        {"Transfer-Encoding: identity, chunked\r\n", H1_E_TE_UNKNOWN, 0, 0},
        {"Transfer-Encoding: gzip, chunked\r\n", H1_E_TE_UNSUPPORTED, 0, 0},
        {"Transfer-Encoding: x-gzip, chunked\r\n", H1_E_TE_UNSUPPORTED, 0, 0},
        {"Transfer-Encoding: chunked, gzip\r\n", H1_E_TE_NOT_CHUNKED, 0, 0},
        {"Transfer-Encoding: gzip\r\n", H1_E_TE_NOT_CHUNKED, 0, 0},
        {"Transfer-Encoding: chunked, chunked\r\n", H1_E_TE_CHUNKED_TWICE, 0, 0},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", H1_E_TE_CHUNKED_TWICE, 0,
         0},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", H1_E_TE_UNKNOWN, 0, 0},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", H1_E_TE_UNSUPPORTED, 0, 0},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding:\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: chunked,\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: ,chunked\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: chunked;q=1\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: chunked ;x\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: \"chunked\"\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: chun ked\r\n", H1_E_TE_SYNTAX, 0, 0},
        {"Transfer-Encoding: \xc3\xa9\r\n", H1_E_TE_SYNTAX, 0, 0},
        /* not Transfer-Encoding at all: an ordinary field, no body */
        {"Transfer_Encoding: chunked\r\n", H1_OK, H1_BODY_NONE, 0},
        {"X-Transfer-Encoding: chunked\r\n", H1_OK, H1_BODY_NONE, 0},
    };
    RUN(cases, P11);
    /* TE in HTTP/1.0: the framing is faulty, whatever else is there */
    static const struct req_case http10[] = {
        {"Transfer-Encoding: chunked\r\n", H1_E_TE_HTTP10, 0, 0},
        {"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", H1_E_TE_HTTP10, 0, 0},
        {"Content-Length: 3\r\n", H1_OK, H1_BODY_LENGTH, 3},
    };
    RUN(http10, P10);
}

/* Head-level smuggling tricks around Transfer-Encoding: the head parser refuses them. */
static void test_smuggling_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        enum h1_error error;
    } cases[] = {
        {P11 "Transfer-Encoding : chunked\r\n\r\n", H1_E_FIELD_NAME},
        {P11 "Transfer-Encoding\t: chunked\r\n\r\n", H1_E_FIELD_NAME},
        {P11 " Transfer-Encoding: chunked\r\n\r\n", H1_E_OBS_FOLD},
        {P11 "X: y\r\n Transfer-Encoding: chunked\r\n\r\n", H1_E_OBS_FOLD},
        {P11 "Transfer-Encoding:\r\n chunked\r\n\r\n", H1_E_OBS_FOLD},
        {P11 "Transfer-Encoding: chunked\x0b\r\n\r\n", H1_E_FIELD_VALUE},
        {P11 "Transfer-Encoding: chunked\r\nContent-Length: 5\n\r\n", H1_E_BARE_LF},
        {P11 "Transfer-Encoding: chunked\rContent-Length: 5\r\n\r\n", H1_E_BARE_CR},
        {P11 "Content-Length: 5\r\n\nTransfer-Encoding: chunked\r\n\r\n", H1_E_BARE_LF},
        {"POST / HTTP/1.1\nTransfer-Encoding: chunked\r\n\r\n", H1_E_BARE_LF},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum h1_error e = t_req_error(cases[i].msg);
        if (e != cases[i].error)
            fail_msg("case %zu: got %d, want %d: %s", i, e, cases[i].error, cases[i].msg);
    }
}

static void test_error_statuses(void **state)
{
    (void)state;
    assert_int_equal(h1_error_status(H1_E_CL_AND_TE), 400);
    assert_int_equal(h1_error_status(H1_E_TE_UNKNOWN), 501);
    assert_int_equal(h1_error_status(H1_E_TE_UNSUPPORTED), 501);
    assert_int_equal(h1_error_status(H1_E_TE_NOT_CHUNKED), 400);
    assert_int_equal(h1_error_status(H1_E_EXPECTATION), 417);
    assert_int_equal(h1_error_status(H1_E_BODY_TOO_LARGE), 413);
    assert_int_equal(h1_error_status(H1_E_LINE_TOO_LONG), 414);
    assert_int_equal(h1_error_status(H1_E_TOO_MANY_FIELDS), 431);
    assert_int_equal(h1_error_status(H1_E_VERSION), 505);
    assert_int_equal(h1_error_status(H1_OK), 0);
    for (int e = 1; e < H1_E_COUNT; e++) {
        int s = h1_error_status((enum h1_error)e);
        assert_true(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 ||
                    s == 505);
        const char *r = h1_error_reason((enum h1_error)e);
        assert_true(r && strlen(r) > 3 && strcmp(r, "invalid message") != 0);
    }
}

static void test_host(void **state)
{
    (void)state;
    struct h1_msg m;
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: Example.com:8080\r\n\r\n", 0, &m), H1_OK);
    assert_true(t_str_is(m.authority, "Example.com:8080") && t_str_is(m.host, "Example.com"));
    assert_int_equal(m.port, 8080);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", 0, &m), H1_OK);
    assert_true(t_str_is(m.host, "[::1]") && m.port == -1);
    assert_int_equal(check_req("GET / HTTP/1.0\r\n\r\n", 0, &m), H1_OK); /* 1.0: optional */
    assert_null(m.authority.p);
    assert_int_equal(check_req("GET / HTTP/1.0\r\nHost: a\r\n\r\n", 0, &m), H1_OK);

    static const struct {
        const char *msg;
        enum h1_error error;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", H1_E_HOST_MISSING},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", H1_E_HOST_REPEATED},
        {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", H1_E_HOST_REPEATED},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", H1_E_HOST_REPEATED},
        {"GET / HTTP/1.1\r\nHost:\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a:-1\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: [::1%25eth0]\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", H1_E_HOST_INVALID},
        {"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", H1_E_HOST_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum h1_error e = check_req(cases[i].msg, 0, &m);
        if (e != cases[i].error)
            fail_msg("case %zu: got %d, want %d: %s", i, e, cases[i].error, cases[i].msg);
    }
}

static void test_absolute_form_authority(void **state)
{
    (void)state;
    struct h1_msg m;
    static const struct {
        const char *msg;
        enum h1_error error;
    } cases[] = {
        {"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", H1_OK},
        {"GET http://a/x HTTP/1.1\r\nHost: A:80\r\n\r\n", H1_OK}, /* case, default port */
        {"GET http://a:80/x HTTP/1.1\r\nHost: a\r\n\r\n", H1_OK},
        {"GET https://a/x HTTP/1.1\r\nHost: a:443\r\n\r\n", H1_OK},
        {"GET http://[::1]:8/ HTTP/1.1\r\nHost: [::1]:8\r\n\r\n", H1_OK},
        {"GET http://a/x HTTP/1.0\r\n\r\n", H1_OK}, /* 1.0: Host optional */
        {"GET http://a/x HTTP/1.1\r\n\r\n", H1_E_HOST_MISSING},
        {"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n", H1_E_HOST_MISMATCH},
        {"GET http://a/x HTTP/1.0\r\nHost: b\r\n\r\n", H1_E_HOST_MISMATCH},
        {"GET http://a:8080/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_E_HOST_MISMATCH},
        {"GET http://a/ HTTP/1.1\r\nHost: a:443\r\n\r\n", H1_E_HOST_MISMATCH},
        {"GET https://a/ HTTP/1.1\r\nHost: a:80\r\n\r\n", H1_E_HOST_MISMATCH},
        {"GET http://a.b/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_E_HOST_MISMATCH},
        {"GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", H1_E_HOST_REPEATED},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", H1_OK},
        {"CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n", H1_OK}, /* RFC 9110 9.3.6's example */
        {"CONNECT a:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", H1_E_HOST_MISMATCH},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a:80\r\n\r\n", H1_E_HOST_MISMATCH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum h1_error e = check_req(cases[i].msg, 0, &m);
        if (e != cases[i].error)
            fail_msg("case %zu: got %d, want %d: %s", i, e, cases[i].error, cases[i].msg);
    }
    /* the request is for the target's authority */
    assert_int_equal(check_req("GET http://Target:81/x HTTP/1.1\r\nHost: target:81\r\n\r\n", 0, &m),
                     H1_OK);
    assert_true(t_str_is(m.authority, "Target:81") && t_str_is(m.host, "Target"));
    assert_int_equal(m.port, 81);
    assert_int_equal(check_req("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 0, &m), H1_OK);
    assert_true(t_str_is(m.authority, "a:443") && m.port == 443);
}

static void test_keep_alive(void **state)
{
    (void)state;
    struct h1_msg m;
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, &m), H1_OK);
    assert_true(m.keep_alive && !m.conn_close);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", 0, &m),
                     H1_OK);
    assert_true(!m.keep_alive && m.conn_close);
    assert_int_equal(
        check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", 0, &m),
        H1_OK);
    assert_false(m.keep_alive);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", 0, &m),
                     H1_OK);
    assert_true(m.keep_alive);
    /* HTTP/1.0: closes unless keep-alive is asked for */
    assert_int_equal(check_req("GET / HTTP/1.0\r\n\r\n", 0, &m), H1_OK);
    assert_false(m.keep_alive);
    assert_int_equal(check_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, &m), H1_OK);
    assert_true(m.keep_alive);
    assert_int_equal(check_req("GET / HTTP/1.0\r\nConnection: x, keep-alive\r\nConnection: close"
                               "\r\n\r\n",
                               0, &m),
                     H1_OK);
    assert_false(m.keep_alive);
    /* options are tokens; empty elements are allowed (RFC 9110 section 5.6.1) */
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: , close,\r\n\r\n", 0, &m),
                     H1_OK);
    assert_false(m.keep_alive);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close;\r\n\r\n", 0, &m),
                     H1_E_CONNECTION);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n", 0, &m),
                     H1_E_CONNECTION);
}

static void test_connection_lists(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    assert_true(
        t_req("GET / HTTP/1.1\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\n\r\n", &h, f) > 0);
    assert_true(h1_connection_lists(&h, h.headers[1].name));
    assert_false(h1_connection_lists(&h, (struct h1_str){"X-Secre", 7}));
    assert_true(h1_header_has_token(&h, "CONNECTION", "CLOSE"));
    /* list elements: quoted commas do not split, empty elements are returned */
    assert_true(t_req("GET / HTTP/1.1\r\nL: a, \"b,c\" ,,\r\nL: d\r\n\r\n", &h, f) > 0);
    struct h1_list it = {0};
    struct h1_str e;
    const char *want[] = {"a", "\"b,c\"", "", "", "d"};
    for (size_t i = 0; i < 5; i++) {
        assert_true(h1_list_next(&h, "l", &it, &e));
        assert_true(t_str_is(e, want[i]));
    }
    assert_false(h1_list_next(&h, "l", &it, &e));
}

static void test_expect(void **state)
{
    (void)state;
    struct h1_msg m;
    assert_int_equal(check_req(P11 "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", 0, &m),
                     H1_OK);
    assert_true(m.expect_continue);
    assert_int_equal(
        check_req(P11 "Expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &m), H1_OK);
    assert_true(m.expect_continue);
    /* nothing to wait for without a body */
    assert_int_equal(check_req(P11 "Expect: 100-continue\r\nContent-Length: 0\r\n\r\n", 0, &m),
                     H1_OK);
    assert_false(m.expect_continue);
    assert_int_equal(check_req(P11 "Expect: 100-continue\r\n\r\n", 0, &m), H1_OK);
    assert_false(m.expect_continue);
    /* HTTP/1.0: ignored (RFC 9110 section 10.1.1) */
    assert_int_equal(check_req(P10 "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", 0, &m),
                     H1_OK);
    assert_false(m.expect_continue);
    assert_int_equal(check_req(P11 "Expect:\r\nContent-Length: 5\r\n\r\n", 0, &m), H1_OK);
    assert_false(m.expect_continue);
    /* anything else: 417 */
    const char *bad[] = {
        P11 "Expect: foo\r\n\r\n",
        P11 "Expect: 100-continue, foo\r\n\r\n",
        P11 "Expect: 100-continue; a=b\r\n\r\n",
        P11 "Expect: 100-continue=1\r\n\r\n",
        P11 "Expect: 100-continued\r\n\r\n",
        P10 "Expect: foo\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(check_req(bad[i], 0, &m), H1_E_EXPECTATION);
}

static void test_upgrade(void **state)
{
    (void)state;
    struct h1_msg m;
    const char *ws = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(check_req(ws, 0, &m), H1_OK);
    assert_true(m.upgrade && m.websocket && m.conn_upgrade && m.body == H1_BODY_NONE);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket/13, h2c\r\n"
                               "Connection: keep-alive, upgrade\r\n\r\n",
                               0, &m),
                     H1_OK);
    assert_true(m.upgrade && m.websocket);
    /* no "Connection: upgrade": not an upgrade offer */
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 0, &m),
                     H1_OK);
    assert_false(m.upgrade || m.websocket);
    /* HTTP/1.0: Upgrade is ignored (RFC 9110 section 7.8) */
    assert_int_equal(
        check_req("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 0, &m),
        H1_OK);
    assert_false(m.upgrade || m.websocket);
    /* h2c: an upgrade offer, not a WebSocket */
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
                               "Connection: Upgrade, HTTP2-Settings\r\n\r\n",
                               0, &m),
                     H1_OK);
    assert_true(m.upgrade && !m.websocket);
    /* WebSocket only on GET */
    assert_int_equal(check_req("POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                               "Connection: upgrade\r\nContent-Length: 0\r\n\r\n",
                               0, &m),
                     H1_OK);
    assert_true(m.upgrade && !m.websocket);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: web socket\r\n\r\n", 0, &m),
                     H1_E_UPGRADE);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket/\r\n\r\n", 0, &m),
                     H1_E_UPGRADE);
}

static void test_max_body(void **state)
{
    (void)state;
    struct h1_msg m;
    assert_int_equal(check_req(P11 "Content-Length: 1000\r\n\r\n", 1000, &m), H1_OK);
    assert_int_equal(check_req(P11 "Content-Length: 1001\r\n\r\n", 1000, &m), H1_E_BODY_TOO_LARGE);
    assert_int_equal(check_req(P11 "Content-Length: 1001\r\n\r\n", 0, &m), H1_OK);
    /* chunked bodies are limited by h1_chunked as they stream */
    assert_int_equal(check_req(P11 "Transfer-Encoding: chunked\r\n\r\n", 1, &m), H1_OK);
}

static void test_response_framing(void **state)
{
    (void)state;
    struct h1_exchange get = {0}, head = {.head = true}, connect = {.connect = true},
                       upgrade = {.upgrade = true};
    struct h1_msg m;
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &get, &m), H1_OK);
    assert_true(m.body == H1_BODY_LENGTH && m.length == 5 && m.keep_alive);
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &get, &m),
                     H1_OK);
    assert_true(m.body == H1_BODY_CHUNKED && m.keep_alive);
    /* neither: close-delimited, and the connection cannot be reused */
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\n\r\n", &get, &m), H1_OK);
    assert_true(m.body == H1_BODY_CLOSE && !m.keep_alive);
    assert_int_equal(
        check_resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", &get, &m),
        H1_OK);
    assert_false(m.keep_alive);
    /* HTTP/1.0 responses: keep-alive only when announced */
    assert_int_equal(check_resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &get, &m), H1_OK);
    assert_false(m.keep_alive);
    assert_int_equal(check_resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1"
                                "\r\n\r\n",
                                &get, &m),
                     H1_OK);
    assert_true(m.keep_alive);
    /* no body: HEAD, 1xx, 204, 304, whatever the fields say */
    const char *cl = "Content-Length: 100\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%s", cl);
    assert_int_equal(check_resp(buf, &head, &m), H1_OK);
    assert_true(m.body == H1_BODY_NONE && m.keep_alive && !m.interim);
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &head, &m),
                     H1_OK);
    assert_int_equal(m.body, H1_BODY_NONE);
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\n\r\n", &head, &m), H1_OK);
    assert_true(m.body == H1_BODY_NONE && m.keep_alive);
    int no_body[] = {100, 102, 103, 204, 304};
    for (size_t i = 0; i < sizeof(no_body) / sizeof(no_body[0]); i++) {
        snprintf(buf, sizeof(buf), "HTTP/1.1 %d X\r\n%s", no_body[i], cl);
        assert_int_equal(check_resp(buf, &get, &m), H1_OK);
        assert_int_equal(m.body, H1_BODY_NONE);
        assert_int_equal(m.interim, no_body[i] < 200);
    }
    /* Content-Length is still validated when it does not frame */
    assert_int_equal(check_resp("HTTP/1.1 304 X\r\nContent-Length: x\r\n\r\n", &get, &m),
                     H1_E_CL_INVALID);
    assert_int_equal(check_resp("HTTP/1.1 200 X\r\nContent-Length: 1\r\nTransfer-Encoding: "
                                "chunked\r\n\r\n",
                                &head, &m),
                     H1_E_CL_AND_TE);
    /* CONNECT: 2xx is a tunnel, its framing fields ignored; other statuses frame normally */
    assert_int_equal(check_resp("HTTP/1.1 200 Connection established\r\n\r\n", &connect, &m),
                     H1_OK);
    assert_true(m.body == H1_BODY_TUNNEL && !m.keep_alive);
    assert_int_equal(check_resp("HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: y"
                                "\r\n\r\n",
                                &connect, &m),
                     H1_OK);
    assert_int_equal(m.body, H1_BODY_TUNNEL);
    assert_int_equal(check_resp("HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", &connect, &m),
                     H1_OK);
    assert_true(m.body == H1_BODY_LENGTH && m.length == 3);
    /* 101: only as the answer to an upgrade offer, with Upgrade and Connection: upgrade */
    const char *sw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n\r\n";
    assert_int_equal(check_resp(sw, &upgrade, &m), H1_OK);
    assert_true(m.body == H1_BODY_TUNNEL && m.upgrade && m.websocket && !m.keep_alive);
    assert_int_equal(
        check_resp("HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", &upgrade, &m),
        H1_OK);
    assert_true(m.upgrade && !m.websocket);
    assert_int_equal(check_resp(sw, &get, &m), H1_E_UNEXPECTED_101);
    assert_int_equal(check_resp("HTTP/1.1 101 S\r\nConnection: upgrade\r\n\r\n", &upgrade, &m),
                     H1_E_UNEXPECTED_101);
    assert_int_equal(check_resp("HTTP/1.1 101 S\r\nUpgrade: websocket\r\n\r\n", &upgrade, &m),
                     H1_E_UNEXPECTED_101);
    assert_int_equal(check_resp("HTTP/1.0 101 S\r\nUpgrade: websocket\r\nConnection: upgrade"
                                "\r\n\r\n",
                                &upgrade, &m),
                     H1_E_UNEXPECTED_101);
    assert_int_equal(
        check_resp("HTTP/1.1 101 S\r\nUpgrade: a b\r\nConnection: upgrade\r\n\r\n", &upgrade, &m),
        H1_E_UPGRADE);
}

/* A malformed or ambiguous response is refused (the proxy answers 502). */
static void test_response_errors(void **state)
{
    (void)state;
    struct h1_exchange get = {0};
    struct h1_msg m;
    static const struct {
        const char *fields;
        enum h1_error error;
    } cases[] = {
        {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", H1_E_CL_AND_TE},
        {"Content-Length: 5\r\nContent-Length: 6\r\n", H1_E_CL_CONFLICT},
        {"Content-Length: -1\r\n", H1_E_CL_INVALID},
        {"Transfer-Encoding: gzip\r\n", H1_E_TE_NOT_CHUNKED},
        {"Transfer-Encoding: gzip, chunked\r\n", H1_E_TE_UNSUPPORTED},
        {"Transfer-Encoding: chunked, chunked\r\n", H1_E_TE_CHUNKED_TWICE},
        {"Transfer-Encoding: identity\r\n", H1_E_TE_UNKNOWN},
        {"Transfer-Encoding: chunked;x=1\r\n", H1_E_TE_SYNTAX},
        {"Connection: close, \"x\"\r\n", H1_E_CONNECTION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%s\r\n", cases[i].fields);
        enum h1_error e = check_resp(buf, &get, &m);
        if (e != cases[i].error)
            fail_msg("case %zu: got %d, want %d: %s", i, e, cases[i].error, cases[i].fields);
    }
    assert_int_equal(check_resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &get, &m),
                     H1_E_TE_HTTP10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_framing),
        cmocka_unit_test(test_content_length_rules),
        cmocka_unit_test(test_smuggling_framing),
        cmocka_unit_test(test_smuggling_syntax),
        cmocka_unit_test(test_error_statuses),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_absolute_form_authority),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_connection_lists),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_max_body),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_response_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
