/* Unit tests for the HTTP/1 head parser (src/http/h1_parse.c) and the canonical writer
 * (h1_write.c): one test per rule of the grammar in h1_parse.h. Every input is also fed
 * byte by byte and split at every position (h1_test_util.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_fields.h"
#include "http/h1_parse.h"
#include "http/h1_write.h"

#include "h1_test_util.h"

struct bad_case {
    const char *msg;
    enum h1_error error;
};

static void expect_errors(const struct bad_case *cases, size_t n, bool response)
{
    for (size_t i = 0; i < n; i++) {
        enum h1_error e = response ? t_resp_error(cases[i].msg) : t_req_error(cases[i].msg);
        if (e != cases[i].error)
            fail_msg("case %zu: got %d (%s), want %d for \"%s\"", i, e, h1_error_reason(e),
                     cases[i].error, cases[i].msg);
    }
}

static void test_simple_get(void **state)
{
    (void)state;
    const char *req = "GET /api/v1/status?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9900\r\n"
                      "User-Agent:  curl/8 \t\r\nAccept: */*\r\n\r\nBODY";
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    int n = t_req(req, &r, f);
    assert_int_equal(n, (int)(strstr(req, "BODY") - req));
    assert_true(t_str_is(r.method, "GET"));
    assert_true(t_str_is(r.target, "/api/v1/status?x=1"));
    assert_true(t_str_is(r.path, "/api/v1/status?x=1"));
    assert_int_equal(r.form, H1_ORIGIN_FORM);
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.n_headers, 3);
    assert_true(t_str_is(r.headers[0].name, "Host"));
    assert_true(t_str_is(r.headers[0].value, "127.0.0.1:9900"));
    assert_true(t_str_is(r.headers[1].value, "curl/8"));
    assert_true(t_str_is(h1_find_header(&r, "user-agent")->value, "curl/8"));
    assert_null(h1_find_header(&r, "cookie"));
    assert_true(h1_keep_alive(&r));
}

static void test_need_more_then_done(void **state)
{
    (void)state;
    const char *req = "PATCH /a HTTP/1.1\r\nContent-Length: 5\r\nX: y\r\n\r\n";
    size_t len = strlen(req);
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    for (size_t i = 0; i < len; i++) {
        h1_head_init(&r, f, T_FIELDS);
        assert_int_equal(h1_parse_request(req, i, &T_LIMITS, &r), H1_NEED_MORE);
    }
    assert_int_equal(t_req(req, &r, f), (int)len);
    /* once done, the same answer whatever follows */
    assert_int_equal(h1_parse_request(req, len, &T_LIMITS, &r), (int)len);
}

static void test_resume_does_not_rescan(void **state)
{
    (void)state;
    /* a complete line is not parsed twice: the parser resumes after it */
    const char *req = "GET / HTTP/1.1\r\nA: b\r\nLong: xxxxxxxxxx";
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    h1_head_init(&r, f, T_FIELDS);
    assert_int_equal(h1_parse_request(req, strlen(req), &T_LIMITS, &r), H1_NEED_MORE);
    assert_int_equal(r.n_headers, 1);
    assert_int_equal(r.st.off, strlen("GET / HTTP/1.1\r\nA: b\r\n"));
    assert_int_equal(r.st.scan, strlen(req));
    /* a buffer that shrank (the caller moved it) restarts from the beginning */
    assert_int_equal(h1_parse_request(req, 10, &T_LIMITS, &r), H1_NEED_MORE);
    assert_int_equal(r.n_headers, 0);
}

static void test_empty_lines_before_request(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    assert_int_equal(t_req("\r\n\r\nGET / HTTP/1.0\r\n\r\n", &r, f), 22);
    assert_int_equal(r.minor_version, 0);
    assert_false(h1_keep_alive(&r));
    assert_int_equal(r.n_headers, 0);
    /* never before a status line */
    assert_int_equal(t_resp_error("\r\nHTTP/1.1 200 OK\r\n\r\n"), H1_E_STATUS_LINE);
}

static void test_request_line_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"GET /\r\n\r\n", H1_E_REQUEST_LINE},             /* no version */
        {"GET  / HTTP/1.1\r\n\r\n", H1_E_REQUEST_LINE},   /* double space */
        {"GET / HTTP/1.1 \r\n\r\n", H1_E_VERSION_SYNTAX}, /* trailing space */
        {"GET /  HTTP/1.1\r\n\r\n", H1_E_REQUEST_LINE},   /* double space after */
        {"G(T / HTTP/1.1\r\n\r\n", H1_E_METHOD},          /* bad method char */
        {"GET\t/ HTTP/1.1\r\n\r\n", H1_E_METHOD},         /* tab separator */
        {" GET / HTTP/1.1\r\n\r\n", H1_E_REQUEST_LINE},   /* leading space */
        {"GET /a b HTTP/1.1\r\n\r\n", H1_E_REQUEST_LINE}, /* space in target */
        {"GET /\x01 HTTP/1.1\r\n\r\n", H1_E_TARGET},      /* control in target */
        {"GET /\t HTTP/1.1\r\n\r\n", H1_E_TARGET},        /* tab in target */
        {"GET /\x7f HTTP/1.1\r\n\r\n", H1_E_TARGET},      /* DEL in target */
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", H1_E_TARGET},  /* non-ASCII in target */
        {"GET /a#frag HTTP/1.1\r\n\r\n", H1_E_TARGET},    /* fragment */
        {"GET /%zz HTTP/1.1\r\n\r\n", H1_OK},             /* bad escape: verbatim */
        {"GET /%4 HTTP/1.1\r\n\r\n", H1_OK},
        {"GET /? HTTP/1.1\r\n\r\n", H1_OK},               /* empty query */
        {"GET /a?b=%41&c=d/e?f HTTP/1.1\r\n\r\n", H1_OK}, /* query chars */
        {"GET /{a}|b^ HTTP/1.1\r\n\r\n", H1_OK},          /* raw but visible */
        {"GET / HTTP/1.x\r\n\r\n", H1_E_VERSION_SYNTAX},  /* bad version digit */
        {"GET / HTTPS/1.1\r\n\r\n", H1_E_REQUEST_LINE},   /* not HTTP/ */
        {"GET / http/1.1\r\n\r\n", H1_E_VERSION_SYNTAX},  /* case-sensitive */
        {"GET / HTTP/1.10\r\n\r\n", H1_E_VERSION_SYNTAX}, /* two minor digits */
        {"GET / HTTP/1\r\n\r\n", H1_E_VERSION_SYNTAX},    /* no minor */
        {"GET / HTTP/11\r\n\r\n", H1_E_VERSION_SYNTAX},   /* no dot */
        {"GET / HTTP/1.1\rX\r\n\r\n", H1_E_BARE_CR},      /* bare CR in line */
        {"GET / HTTP/1.1\n\r\n", H1_E_BARE_LF},           /* bare LF ends line */
        {"\nGET / HTTP/1.1\r\n\r\n", H1_E_BARE_LF},       /* bare LF before */
        {"\r\rGET / HTTP/1.1\r\n\r\n", H1_E_BARE_CR},     /* CR CR before */
    };
    expect_errors(cases, sizeof(cases) / sizeof(cases[0]), false);
    /* a NUL anywhere: the method, target and field tests of a NUL need explicit lengths */
    static const char nul_target[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    static const char nul_value[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    static const char nul_name[] = "GET / HTTP/1.1\r\nA\0: b\r\n\r\n";
    static const char nul_method[] = "GE\0T / HTTP/1.1\r\n\r\n";
    static const char nul_authority[] = "CONNECT [::\0001]:443 HTTP/1.1\r\n\r\n";
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    assert_int_equal(
        t_parse_ways(nul_target, sizeof(nul_target) - 1, &T_LIMITS, false, &h, f, true), H1_ERROR);
    assert_int_equal(h.error, H1_E_TARGET);
    assert_int_equal(t_parse_ways(nul_value, sizeof(nul_value) - 1, &T_LIMITS, false, &h, f, true),
                     H1_ERROR);
    assert_int_equal(h.error, H1_E_FIELD_VALUE);
    assert_int_equal(t_parse_ways(nul_name, sizeof(nul_name) - 1, &T_LIMITS, false, &h, f, true),
                     H1_ERROR);
    assert_int_equal(h.error, H1_E_FIELD_NAME);
    assert_int_equal(
        t_parse_ways(nul_method, sizeof(nul_method) - 1, &T_LIMITS, false, &h, f, true), H1_ERROR);
    assert_int_equal(h.error, H1_E_METHOD);
    assert_int_equal(
        t_parse_ways(nul_authority, sizeof(nul_authority) - 1, &T_LIMITS, false, &h, f, true),
        H1_ERROR);
    assert_int_equal(h.error, H1_E_TARGET_AUTHORITY);
}

static void test_versions(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"GET / HTTP/2.0\r\n\r\n", H1_E_VERSION}, {"GET / HTTP/1.2\r\n\r\n", H1_E_VERSION},
        {"GET / HTTP/0.9\r\n\r\n", H1_E_VERSION}, {"GET / HTTP/3.0\r\n\r\n", H1_E_VERSION},
        {"GET / HTTP/1.0\r\n\r\n", H1_OK},        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", H1_OK},
    };
    expect_errors(cases, sizeof(cases) / sizeof(cases[0]), false);
    assert_int_equal(h1_error_status(H1_E_VERSION), 505);
}

static void test_field_errors(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"GET / HTTP/1.1\nHost: x\n\n", H1_E_BARE_LF},               /* LF line ends */
        {"GET / HTTP/1.1\r\nHost: x\n\r\n", H1_E_BARE_LF},           /* one bare LF */
        {"GET / HTTP/1.1\r\nHost: x\r\n\n", H1_E_BARE_LF},           /* LF final line */
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", H1_E_BARE_CR},         /* CR in a value */
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", H1_E_BARE_CR},       /* CR CR LF */
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", H1_E_FIELD_NAME},     /* space before colon */
        {"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", H1_E_FIELD_NAME},    /* tab before colon */
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", H1_E_FIELD_NAME},          /* empty name */
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", H1_E_FIELD_NAME},       /* no colon */
        {"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", H1_E_FIELD_NAME},     /* separator in name */
        {"GET / HTTP/1.1\r\nH\xc3\xa9: x\r\n\r\n", H1_E_FIELD_NAME}, /* non-ASCII name */
        {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", H1_E_OBS_FOLD},     /* obs-fold, SP */
        {"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", H1_E_OBS_FOLD},    /* obs-fold, HTAB */
        {"GET / HTTP/1.1\r\n Host: x\r\n\r\n", H1_E_OBS_FOLD},       /* space after start line */
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", H1_E_FIELD_VALUE},    /* control in value */
        {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", H1_E_FIELD_VALUE},    /* DEL in value */
        {"GET / HTTP/1.1\r\nA: \x0b\r\n\r\n", H1_E_FIELD_VALUE},     /* VT in value */
        {"GET / HTTP/1.1\r\nA: b\x1b[0m\r\n\r\n", H1_E_FIELD_VALUE}, /* ESC in value */
    };
    expect_errors(cases, sizeof(cases) / sizeof(cases[0]), false);
}

static void test_values(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    assert_true(t_req("GET / HTTP/1.1\r\nA: x\ty \xc3\xa9\r\nB:\r\nC: \t \r\nD:e\r\n\r\n", &r, f) >
                0);
    assert_int_equal(r.n_headers, 4);
    assert_true(t_str_is(r.headers[0].value, "x\ty \xc3\xa9")); /* obs-text kept */
    assert_int_equal(r.headers[1].value.len, 0);
    assert_int_equal(r.headers[2].value.len, 0); /* only OWS */
    assert_true(t_str_is(r.headers[3].value, "e"));
    /* every tchar is allowed in a name */
    assert_true(t_req("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", &r, f) > 0);
}

static void test_target_forms(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    assert_true(t_req("GET http://Example.com:8080/a/b?c HTTP/1.1\r\nHost: x\r\n\r\n", &r, f) > 0);
    assert_int_equal(r.form, H1_ABSOLUTE_FORM);
    assert_true(t_str_is(r.scheme, "http"));
    assert_true(t_str_is(r.authority, "Example.com:8080"));
    assert_true(t_str_is(r.path, "/a/b?c"));
    assert_true(t_req("GET HTTPS://[::1]?q HTTP/1.1\r\n\r\n", &r, f) > 0);
    assert_true(t_str_is(r.scheme, "HTTPS") && t_str_is(r.authority, "[::1]"));
    assert_true(t_str_is(r.path, "?q"));
    assert_true(t_req("GET http://a HTTP/1.1\r\n\r\n", &r, f) > 0);
    assert_true(t_str_is(r.authority, "a") && r.path.len == 0);
    assert_true(t_req("CONNECT example.com:443 HTTP/1.1\r\n\r\n", &r, f) > 0);
    assert_int_equal(r.form, H1_AUTHORITY_FORM);
    assert_true(t_str_is(r.authority, "example.com:443") && r.path.len == 0);
    assert_true(t_req("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n", &r, f) > 0);
    assert_true(t_req("OPTIONS * HTTP/1.1\r\n\r\n", &r, f) > 0);
    assert_int_equal(r.form, H1_ASTERISK_FORM);
    assert_true(t_str_is(r.path, "*"));

    static const struct bad_case cases[] = {
        {"GET * HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM}, /* '*' not OPTIONS */
        {"CONNECT * HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM},
        {"GET example.com:443 HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM}, /* authority, GET */
        {"GET a HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM},               /* no slash */
        {"GET \x01 HTTP/1.1\r\n\r\n", H1_E_TARGET},
        {"CONNECT /x HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM},               /* CONNECT, origin */
        {"CONNECT http://a/ HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM},        /* CONNECT, absolute */
        {"CONNECT example.com HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY}, /* no port */
        {"CONNECT example.com: HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},
        {"CONNECT a:65536 HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},
        {"CONNECT u@a:1 HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},
        {"GET ftp://a/ HTTP/1.1\r\n\r\n", H1_E_TARGET_SCHEME},
        {"GET httpx://a/ HTTP/1.1\r\n\r\n", H1_E_TARGET_SCHEME},
        {"GET http:/a/ HTTP/1.1\r\n\r\n", H1_E_TARGET_FORM},            /* not "://" */
        {"GET http:///a HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},      /* empty host */
        {"GET http://user@a/ HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY}, /* userinfo */
        {"GET http://a:b/ HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},
        {"GET http://a:/ HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY}, /* empty port */
        {"GET http://[::1/ HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},
        {"GET http://[v1.x]/ HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY}, /* IPvFuture */
        {"GET http://a%41/ HTTP/1.1\r\n\r\n", H1_E_TARGET_AUTHORITY},   /* escape in host */
        {"GET http://a/#x HTTP/1.1\r\n\r\n", H1_E_TARGET},
    };
    expect_errors(cases, sizeof(cases) / sizeof(cases[0]), false);
}

static void test_head_limit(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    const char *req = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    size_t len = strlen(req);
    /* exactly at the limit: accepted; one byte over: 431 (the request line fits) */
    struct h1_limits at = {len, 10}, under = {len - 1, 10};
    assert_int_equal(t_parse_ways(req, len, &at, false, &r, f, true), (int)len);
    assert_int_equal(t_parse_ways(req, len, &under, false, &r, f, true), H1_ERROR);
    assert_int_equal(r.error, H1_E_HEAD_TOO_LARGE);
    assert_int_equal(h1_error_status(r.error), 431);
    /* the request line (with its CRLF) exactly at the limit: the head is over it, 431;
     * the request line one byte over the limit: 414 */
    struct h1_limits line = {16, 10}, line_under = {15, 10};
    assert_int_equal(t_parse_ways(req, len, &line, false, &r, f, true), H1_ERROR);
    assert_int_equal(r.error, H1_E_HEAD_TOO_LARGE);
    assert_int_equal(t_parse_ways(req, len, &line_under, false, &r, f, true), H1_ERROR);
    assert_int_equal(r.error, H1_E_LINE_TOO_LONG);
    assert_int_equal(h1_error_status(r.error), 414);
    /* an incomplete head under the limit asks for more; at the limit it is too large */
    char buf[9000];
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    struct h1_limits big = {8192, 100};
    h1_head_init(&r, f, T_FIELDS);
    assert_int_equal(h1_parse_request(buf, 8191, &big, &r), H1_NEED_MORE);
    assert_int_equal(h1_parse_request(buf, 8192, &big, &r), H1_ERROR);
    assert_int_equal(r.error, H1_E_LINE_TOO_LONG);
    h1_head_init(&r, f, T_FIELDS);
    assert_int_equal(h1_parse_request(buf, sizeof(buf), &big, &r), H1_ERROR);
    assert_int_equal(r.error, H1_E_LINE_TOO_LONG);
    /* a long header line: 431, fed in one piece or byte by byte */
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX-Big: ");
    memset(buf + n, 'b', sizeof(buf) - n);
    assert_int_equal(t_parse_ways(buf, sizeof(buf), &big, false, &r, f, false), H1_ERROR);
    assert_int_equal(r.error, H1_E_HEAD_TOO_LARGE);
    /* a head of exactly 8192 bytes passes; 8193 does not */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX-Big: ");
    memset(buf + n, 'b', 8192 - 4 - n);
    memcpy(buf + 8192 - 4, "\r\n\r\n", 4);
    assert_int_equal(t_parse_ways(buf, 8192, &big, false, &r, f, false), 8192);
    memmove(buf + n + 1, buf + n, 8192 - n);
    assert_int_equal(t_parse_ways(buf, 8193, &big, false, &r, f, false), H1_ERROR);
    assert_int_equal(r.error, H1_E_HEAD_TOO_LARGE);
    /* empty lines before the request line count */
    struct h1_limits tiny = {19, 10};
    assert_int_equal(t_parse_ways("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22, &tiny, false, &r, f, true),
                     H1_ERROR);
    assert_int_equal(r.error, H1_E_LINE_TOO_LONG);
}

/* "GET / HTTP/1.1\r\n" + n field lines + "\r\n" into buf. */
static size_t head_with_fields(char *buf, size_t cap, int n)
{
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "H%d: v\r\n", i);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    return len;
}

static void test_field_count_limit(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    char buf[4096];
    struct h1_limits lim = {8192, 100};
    size_t len = head_with_fields(buf, sizeof(buf), 100);
    assert_int_equal(t_parse_ways(buf, len, &lim, false, &r, f, false), (int)len);
    assert_int_equal(r.n_headers, 100);
    len = head_with_fields(buf, sizeof(buf), 101);
    assert_int_equal(t_parse_ways(buf, len, &lim, false, &r, f, false), H1_ERROR);
    assert_int_equal(r.error, H1_E_TOO_MANY_FIELDS);
    assert_int_equal(h1_error_status(r.error), 431);
    /* no field allowed at all */
    struct h1_limits none = {8192, 0};
    assert_int_equal(t_parse_ways("GET / HTTP/1.1\r\n\r\n", 18, &none, false, &r, f, true), 18);
    assert_int_equal(t_parse_ways("GET / HTTP/1.1\r\nA: b\r\n\r\n", 24, &none, false, &r, f, true),
                     H1_ERROR);
    assert_int_equal(r.error, H1_E_TOO_MANY_FIELDS);
    /* a limit above the array's capacity is capped to it */
    struct h1_header small[3];
    struct h1_limits many = {8192, 1000};
    len = head_with_fields(buf, sizeof(buf), 4);
    h1_head_init(&r, small, 3);
    assert_int_equal(h1_parse_request(buf, len, &many, &r), H1_ERROR);
    assert_int_equal(r.error, H1_E_TOO_MANY_FIELDS);
    len = head_with_fields(buf, sizeof(buf), 3);
    h1_head_init(&r, small, 3);
    assert_int_equal(h1_parse_request(buf, len, &many, &r), (int)len);
}

static void test_status_line(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    assert_int_equal(t_resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &r, f), 38);
    assert_int_equal(r.status, 200);
    assert_true(t_str_is(r.reason, "OK"));
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.n_headers, 1);
    assert_true(t_resp("HTTP/1.0 404 Not \tFound \xc3\xa9\r\n\r\n", &r, f) > 0);
    assert_true(t_str_is(r.reason, "Not \tFound \xc3\xa9"));
    assert_int_equal(r.minor_version, 0);
    assert_true(t_resp("HTTP/1.1 204 \r\n\r\n", &r, f) > 0); /* empty reason */
    assert_int_equal(r.reason.len, 0);
    assert_true(t_resp("HTTP/1.1 599\r\n\r\n", &r, f) > 0); /* the SP may be missing */
    assert_int_equal(r.status, 599);
    assert_true(t_resp("HTTP/1.1 100 Continue\r\n\r\n", &r, f) > 0);
    assert_int_equal(r.status, 100);

    static const struct bad_case cases[] = {
        {"HTTP/1.1 099 X\r\n\r\n", H1_E_STATUS_CODE},
        {"HTTP/1.1 600 X\r\n\r\n", H1_E_STATUS_CODE},
        {"HTTP/1.1 20 OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1 2000 OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1 20x OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1 200OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1  200 OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1 200 O\x7fK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/2.0 200 OK\r\n\r\n", H1_E_VERSION},
        {"HTTP/1.2 200 OK\r\n\r\n", H1_E_VERSION},
        {"http/1.1 200 OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1\r\n\r\n", H1_E_STATUS_LINE},
        {"ICY 200 OK\r\n\r\n", H1_E_STATUS_LINE},
        {"HTTP/1.1 200 OK\nA: b\r\n\r\n", H1_E_BARE_LF},
        {"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", H1_E_FIELD_NAME},
        {"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", H1_E_OBS_FOLD},
        {"HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", H1_E_FIELD_VALUE},
    };
    expect_errors(cases, sizeof(cases) / sizeof(cases[0]), true);
}

static void test_response_limits(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    const char *resp = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
    size_t len = strlen(resp);
    struct h1_limits at = {len, 1}, under = {len - 1, 1}, one_field = {len, 0};
    assert_int_equal(t_parse_ways(resp, len, &at, true, &r, f, true), (int)len);
    assert_int_equal(t_parse_ways(resp, len, &under, true, &r, f, true), H1_ERROR);
    assert_int_equal(r.error, H1_E_HEAD_TOO_LARGE);
    assert_int_equal(t_parse_ways(resp, len, &one_field, true, &r, f, true), H1_ERROR);
    assert_int_equal(r.error, H1_E_TOO_MANY_FIELDS);
}

static void test_sticky_results(void **state)
{
    (void)state;
    struct h1_header f[T_FIELDS];
    struct h1_head r;
    const char *bad = "GET / HTTP/1.1\r\nA : b\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    h1_head_init(&r, f, T_FIELDS);
    assert_int_equal(h1_parse_request(bad, strlen(bad), &T_LIMITS, &r), H1_ERROR);
    assert_int_equal(h1_parse_request(bad, strlen(bad), &T_LIMITS, &r), H1_ERROR);
    assert_int_equal(r.error, H1_E_FIELD_NAME);
    assert_string_equal(h1_error_reason(r.error), "invalid field name");
}

/* Parses msg, writes it back canonically, and checks the copy parses to the same head. */
static void round_trip(const char *msg, bool response, const char *canonical)
{
    struct h1_header f1[T_FIELDS], f2[T_FIELDS];
    struct h1_head a, b;
    int n = t_parse_ways(msg, strlen(msg), &T_LIMITS, response, &a, f1, true);
    assert_true(n > 0);
    char out[1024];
    size_t len = h1_write_head(&a, response, out, sizeof(out));
    assert_true(len <= sizeof(out));
    if (canonical && (len != strlen(canonical) || memcmp(out, canonical, len) != 0))
        fail_msg("wrote \"%.*s\", want \"%s\"", (int)len, out, canonical);
    assert_int_equal(t_parse_ways(out, len, &T_LIMITS, response, &b, f2, true), (int)len);
    assert_true(a.status == b.status && a.minor_version == b.minor_version);
    assert_int_equal(a.n_headers, b.n_headers);
    struct h1_str pairs[][2] = {{a.method, b.method}, {a.target, b.target}, {a.reason, b.reason}};
    for (size_t i = 0; i < 3; i++) /* a response has no method: {NULL, 0} */
        assert_true(
            pairs[i][0].len == pairs[i][1].len &&
            (pairs[i][0].len == 0 || memcmp(pairs[i][0].p, pairs[i][1].p, pairs[i][0].len) == 0));
    for (size_t i = 0; i < a.n_headers; i++) {
        assert_true(a.headers[i].name.len == b.headers[i].name.len &&
                    memcmp(a.headers[i].name.p, b.headers[i].name.p, a.headers[i].name.len) == 0);
        assert_true(a.headers[i].value.len == b.headers[i].value.len &&
                    memcmp(a.headers[i].value.p, b.headers[i].value.p, a.headers[i].value.len) ==
                        0);
    }
    /* a short buffer gets a prefix and the full length */
    char small[8];
    assert_int_equal(h1_write_head(&a, response, small, sizeof(small)), len);
    assert_memory_equal(small, out, sizeof(small));
}

static void test_write_round_trip(void **state)
{
    (void)state;
    round_trip("\r\nGET /a?b HTTP/1.0\r\nHost:x\r\nEmpty:\r\nSp:  a b \t\r\n\r\n", false,
               "GET /a?b HTTP/1.0\r\nHost: x\r\nEmpty:\r\nSp: a b\r\n\r\n");
    round_trip("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false, NULL);
    round_trip("HTTP/1.1 200\r\nA: \xc3\xa9\r\n\r\n", true, "HTTP/1.1 200 \r\nA: \xc3\xa9\r\n\r\n");
    round_trip("HTTP/1.0 404 Not Found\r\n\r\n", true, "HTTP/1.0 404 Not Found\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_need_more_then_done),
        cmocka_unit_test(test_resume_does_not_rescan),
        cmocka_unit_test(test_empty_lines_before_request),
        cmocka_unit_test(test_request_line_errors),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_field_count_limit),
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_sticky_results),
        cmocka_unit_test(test_write_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
