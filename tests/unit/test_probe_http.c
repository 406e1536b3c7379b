/* The verdict of an HTTP health probe over a response (upstream/probe_http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/probe_http.h"

static struct probe_http_eval *ev;
static char detail[200];

static int setup(void **state)
{
    (void)state;
    ev = malloc(sizeof(*ev));
    return ev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(ev);
    return 0;
}

/* The whole response in one segment, closed after it when `closed`. */
static enum probe_http_result judge(const char *resp, bool closed, int lo, int hi, const char *body)
{
    struct probe_http_expect x = {.status_lo = lo, .status_hi = hi, .body = body};
    detail[0] = '\0';
    return probe_http_verdict(ev, resp, strlen(resp), closed, &x, detail, sizeof(detail));
}

/* The same response one byte per segment: the result must not depend on the split. */
static enum probe_http_result judge_bytes(const char *resp, bool closed, int lo, int hi,
                                          const char *body)
{
    struct probe_http_expect x = {.status_lo = lo, .status_hi = hi, .body = body};
    enum probe_http_result r = PROBE_HTTP_MORE;
    detail[0] = '\0';
    probe_http_init(ev, &x);
    for (size_t i = 0; resp[i] && r == PROBE_HTTP_MORE; i++)
        r = probe_http_feed(ev, resp + i, 1, detail, sizeof(detail));
    if (r == PROBE_HTTP_MORE && closed)
        r = probe_http_eof(ev, detail, sizeof(detail));
    return r;
}

#define BOTH(expr_r, resp, closed, lo, hi, body, want_detail)                                      \
    do {                                                                                           \
        assert_int_equal(judge(resp, closed, lo, hi, body), expr_r);                               \
        assert_string_equal(detail, want_detail);                                                  \
        assert_int_equal(judge_bytes(resp, closed, lo, hi, body), expr_r);                         \
        assert_string_equal(detail, want_detail);                                                  \
    } while (0)

static void test_status_in_range(void **state)
{
    (void)state;
    BOTH(PROBE_HTTP_OK, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, 399, NULL, "");
    assert_int_equal(ev->status, 200);
    BOTH(PROBE_HTTP_OK, "HTTP/1.1 399 X\r\n\r\n", false, 200, 399, "", "");
    BOTH(PROBE_HTTP_OK, "HTTP/1.0 204 No Content\r\n\r\n", false, 204, 204, NULL, "");
}

static void test_status_out_of_range(void **state)
{
    (void)state;
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nok", false, 200, 399, "ok",
         "status 503 not in 200-399");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", false, 200, 299, NULL,
         "status 302 not in 200-299");
    /* an interim response alone decides nothing */
    assert_int_equal(judge("HTTP/1.1 199 X\r\n\r\n", false, 100, 599, NULL), PROBE_HTTP_MORE);
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 201 Created\r\n\r\n", false, 200, 200, NULL,
         "status 201 not in 200");
}

static void test_interim_skipped(void **state)
{
    (void)state;
    BOTH(PROBE_HTTP_OK, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", false, 200, 399,
         NULL, "");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 103 Hints\r\nLink: x\r\n\r\nHTTP/1.1 500 E\r\n\r\n", false, 200,
         399, NULL, "status 500 not in 200-399");
}

static void test_body_content_length(void **state)
{
    (void)state;
    BOTH(PROBE_HTTP_OK, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nstatus: ok\n", false, 200,
         399, "ok", "");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nstarted", false, 200, 399,
         "ok", "body does not contain 'ok'");
    /* bytes past Content-Length are not the body */
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcok", false, 200, 399,
         "ok", "body does not contain 'ok'");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, 399, "ok",
         "body does not contain 'ok'");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 204 No Content\r\n\r\n", false, 200, 399, "ok",
         "body does not contain 'ok'");
    /* cut short: undecided until the close, then malformed */
    assert_int_equal(
        judge("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false, 200, 399, "ok"),
        PROBE_HTTP_MORE);
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", true, 200, 399, "ok",
         "malformed response: body cut short (connection closed)");
}

static void test_body_until_close(void **state)
{
    (void)state;
    BOTH(PROBE_HTTP_OK, "HTTP/1.1 200 OK\r\n\r\nall ok here", false, 200, 399, "ok here", "");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\n\r\nall good", true, 200, 399, "ok",
         "body does not contain 'ok'");
}

static void test_body_chunked(void **state)
{
    (void)state;
    /* the text spans two chunks: found in the decoded body */
    BOTH(PROBE_HTTP_OK,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nall\r\n4\r\n o\r\n\r\n"
         "2\r\nk!\r\n0\r\n\r\n",
         false, 200, 399, "o\r\nk", "");
    BOTH(PROBE_HTTP_OK,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n",
         false, 200, 399, "ok", "");
    /* the framing holds the text, the data does not */
    BOTH(PROBE_HTTP_FAIL,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;ok=1\r\nno\r\n0\r\n\r\n", false,
         200, 399, "ok", "body does not contain 'ok'");
    BOTH(PROBE_HTTP_FAIL,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", false, 200,
         399, "ok", "malformed response: invalid chunk size");
}

static void test_malformed(void **state)
{
    (void)state;
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, 200, 399, NULL,
         "malformed response: bare lf");
    assert_int_equal(judge("SSH-2.0-OpenSSH_9\r\n", false, 200, 399, NULL), PROBE_HTTP_FAIL);
    assert_non_null(strstr(detail, "malformed response: "));
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
         false, 200, 399, NULL, "malformed response: conflicting content-length values");
    BOTH(PROBE_HTTP_FAIL, "HTTP/1.1 200 OK\r\nContent-Le", true, 200, 399, NULL,
         "malformed response: incomplete head (connection closed)");
    BOTH(PROBE_HTTP_FAIL, "", true, 200, 399, NULL, "connection closed without a response");
}

static void test_head_too_large(void **state)
{
    (void)state;
    size_t n = PROBE_HTTP_HEAD_MAX + 100;
    char *resp = malloc(n + 1);
    assert_non_null(resp);
    memset(resp, 'a', n);
    memcpy(resp, "HTTP/1.1 200 OK\r\nX: ", 20);
    resp[n] = '\0';
    assert_int_equal(judge(resp, false, 200, 399, NULL), PROBE_HTTP_FAIL);
    assert_non_null(strstr(detail, "malformed response: "));
    free(resp);
}

static void test_body_cap(void **state)
{
    (void)state;
    size_t n = PROBE_HTTP_BODY_MAX + 10;
    const char *head = "HTTP/1.1 200 OK\r\n\r\n";
    char *resp = malloc(strlen(head) + n + 3);
    assert_non_null(resp);
    strcpy(resp, head);
    memset(resp + strlen(head), 'x', n);
    strcpy(resp + strlen(head) + n, "ok");
    assert_int_equal(judge(resp, false, 200, 399, "ok"), PROBE_HTTP_FAIL);
    assert_string_equal(detail, "body does not contain 'ok' in its first 65536 bytes");
    /* at the very end of the window it is found */
    resp[strlen(head) + PROBE_HTTP_BODY_MAX - 2] = 'o';
    resp[strlen(head) + PROBE_HTTP_BODY_MAX - 1] = 'k';
    assert_int_equal(judge(resp, false, 200, 399, "ok"), PROBE_HTTP_OK);
    free(resp);
}

static void test_final_is_sticky(void **state)
{
    (void)state;
    struct probe_http_expect x = {.status_lo = 200, .status_hi = 399, .body = NULL};
    probe_http_init(ev, &x);
    const char *r = "HTTP/1.1 500 E\r\n\r\n";
    assert_int_equal(probe_http_feed(ev, r, strlen(r), detail, sizeof(detail)), PROBE_HTTP_FAIL);
    strcpy(detail, "kept");
    assert_int_equal(probe_http_feed(ev, "x", 1, detail, sizeof(detail)), PROBE_HTTP_FAIL);
    assert_int_equal(probe_http_eof(ev, detail, sizeof(detail)), PROBE_HTTP_FAIL);
    assert_string_equal(detail, "kept");
}

static void test_quote(void **state)
{
    (void)state;
    char q[200];
    probe_quote("a'b\r\n\x01", 6, q, sizeof(q));
    assert_string_equal(q, "a\\x27b\\r\\n\\x01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_in_range),
        cmocka_unit_test(test_status_out_of_range),
        cmocka_unit_test(test_interim_skipped),
        cmocka_unit_test(test_body_content_length),
        cmocka_unit_test(test_body_until_close),
        cmocka_unit_test(test_body_chunked),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_final_is_sticky),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
