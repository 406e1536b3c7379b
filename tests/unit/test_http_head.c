/* Unit tests for the request head sluice sends to servers (src/http/head.c): hop-by-hop
 * fields dropped (including those Connection names), Host first and the backend's
 * http.host, X-Forwarded-For/-Proto/-Host with and without trust_forwarded, `forwarded:
 * forwarded` (RFC 7239) and `none`, the request id added or the client's kept, the target
 * and version, and the response head's hop-by-hop handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/head.h"

#include "h1_test_util.h"

static struct cfg_listener_http lh_x = {.forwarded = FWD_X_FORWARDED, .request_id = "X-Request-Id"};

static struct head_req_opts opts(const struct cfg_listener_http *lh)
{
    return (struct head_req_opts){.lh = lh, .client_ip = "192.0.2.7"};
}

/* The head written for the raw request `req` with options o, NUL-terminated in out. */
static const char *req_out(const char *req, const struct head_req_opts *o, char *out, size_t cap)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    h1_head_init(&h, f, T_FIELDS);
    if (h1_parse_request(req, strlen(req), &T_LIMITS, &h) <= 0)
        fail_msg("head refused: %s", req);
    struct h1_msg m;
    if (h1_check_request(&h, 0, &m) != H1_OK)
        fail_msg("request refused: %s", req);
    size_t n = head_write_request(&h, &m, o, out, cap - 1);
    out[n] = '\0';
    return out;
}

#define EXPECT_REQ(req, o, want)                                                                   \
    do {                                                                                           \
        char out_[4096];                                                                           \
        assert_string_equal(req_out(req, o, out_, sizeof(out_)), want);                            \
    } while (0)

#define XF(host)                                                                                   \
    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: " host "\r\n"

static void test_hop_by_hop(void **state)
{
    (void)state;
    struct head_req_opts o = opts(&lh_x);
    EXPECT_REQ(
        "GET /p?q=1 HTTP/1.1\r\nX-A: 1\r\nhost: h.example\r\n"
        "Connection: keep-alive, X-Hop, x-other\r\nX-Hop: secret\r\nX-Other: o\r\n"
        "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
        "Upgrade: h2c\r\nX-B: 2\r\n\r\n",
        &o,
        "GET /p?q=1 HTTP/1.1\r\nHost: h.example\r\nX-A: 1\r\nX-B: 2\r\n" XF("h.example") "\r\n");
    /* a chunked body is forwarded chunked: Transfer-Encoding is said again, once */
    EXPECT_REQ(
        "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", &o,
        "POST /u HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n" XF("h") "\r\n");
    /* Content-Length stays */
    EXPECT_REQ("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", &o,
               "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n" XF("h") "\r\n");
    /* a WebSocket handshake keeps its Upgrade and says Connection: upgrade */
    EXPECT_REQ("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: k\r\n\r\n",
               &o,
               "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nUpgrade: websocket\r\n"
               "Connection: upgrade\r\n" XF("h") "\r\n");
    /* HTTP/1.0 stays 1.0 and asks for keep-alive; absolute-form becomes origin-form */
    EXPECT_REQ("GET http://h:81/a?b HTTP/1.0\r\n\r\n", &o,
               "GET /a?b HTTP/1.0\r\nHost: h:81\r\nConnection: keep-alive\r\n" XF("h:81") "\r\n");

    struct h1_header f[T_FIELDS];
    struct h1_head h;
    h1_head_init(&h, f, T_FIELDS);
    const char *r = "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\n\r\n";
    assert_true(h1_parse_request(r, strlen(r), &T_LIMITS, &h) > 0);
    assert_true(head_is_hop_by_hop(&h, (struct h1_str){"FOO", 3}));
    assert_true(head_is_hop_by_hop(&h, (struct h1_str){"Te", 2}));
    assert_false(head_is_hop_by_hop(&h, (struct h1_str){"foox", 4}));
    assert_false(head_is_hop_by_hop(&h, (struct h1_str){"Trailer", 7}));
}

static void test_host_override(void **state)
{
    (void)state;
    struct head_req_opts o = opts(&lh_x);
    o.backend_host = "internal.svc";
    EXPECT_REQ(
        "GET / HTTP/1.1\r\nX-A: 1\r\nHost: public.example:8080\r\n\r\n", &o,
        "GET / HTTP/1.1\r\nHost: internal.svc\r\nX-A: 1\r\n" XF("public.example:8080") "\r\n");
}

static void test_x_forwarded(void **state)
{
    (void)state;
    const char *in = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.1\r\n"
                     "X-Forwarded-Proto: https\r\nx-forwarded-for: 203.0.113.2, 10.0.0.1\r\n"
                     "X-Forwarded-Host: orig.example\r\nForwarded: for=1.2.3.4\r\n\r\n";
    /* untrusted: all incoming forwarding fields dropped and replaced */
    struct head_req_opts o = opts(&lh_x);
    EXPECT_REQ(in, &o, "GET / HTTP/1.1\r\nHost: h\r\n" XF("h") "\r\n");
    /* trusted: the lines are joined and the client appended; proto and host kept */
    struct cfg_listener_http lt = lh_x;
    lt.trust_forwarded = true;
    o = opts(&lt);
    EXPECT_REQ(in, &o,
               "GET / HTTP/1.1\r\nHost: h\r\n"
               "X-Forwarded-For: 203.0.113.1, 203.0.113.2, 10.0.0.1, 192.0.2.7\r\n"
               "X-Forwarded-Proto: https\r\nX-Forwarded-Host: orig.example\r\n\r\n");
    /* trusted but none incoming */
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o,
               "GET / HTTP/1.1\r\nHost: h\r\n" XF("h") "\r\n");
    /* IPv6 client: plain text */
    o = opts(&lh_x);
    o.client_ip = "2001:db8::1";
    o.client_v6 = true;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 2001:db8::1\r\n"
               "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n");
    /* HTTP/1.0 without Host: no X-Forwarded-Host */
    o = opts(&lh_x);
    EXPECT_REQ("GET / HTTP/1.0\r\n\r\n", &o,
               "GET / HTTP/1.0\r\nHost: \r\nConnection: keep-alive\r\n"
               "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\r\n");
}

static void test_forwarded_rfc7239(void **state)
{
    (void)state;
    const char *in = "GET / HTTP/1.1\r\nHost: h.example\r\nForwarded: for=203.0.113.1\r\n"
                     "X-Forwarded-For: 1.2.3.4\r\nforwarded: for=10.0.0.1;proto=https\r\n\r\n";
    struct cfg_listener_http lf = lh_x;
    lf.forwarded = FWD_FORWARDED;
    struct head_req_opts o = opts(&lf);
    EXPECT_REQ(in, &o,
               "GET / HTTP/1.1\r\nHost: h.example\r\n"
               "Forwarded: for=192.0.2.7;host=\"h.example\";proto=http\r\n\r\n");
    lf.trust_forwarded = true;
    EXPECT_REQ(in, &o,
               "GET / HTTP/1.1\r\nHost: h.example\r\n"
               "Forwarded: for=203.0.113.1, for=10.0.0.1;proto=https, "
               "for=192.0.2.7;host=\"h.example\";proto=http\r\n\r\n");
    /* IPv6: quoted and bracketed */
    lf.trust_forwarded = false;
    o.client_ip = "2001:db8::1";
    o.client_v6 = true;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o,
               "GET / HTTP/1.1\r\nHost: h\r\n"
               "Forwarded: for=\"[2001:db8::1]\";host=\"h\";proto=http\r\n\r\n");
}

static void test_forwarded_none(void **state)
{
    (void)state;
    const char *in = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n"
                     "Forwarded: for=1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n";
    struct cfg_listener_http ln = lh_x;
    ln.forwarded = FWD_NONE;
    struct head_req_opts o = opts(&ln);
    /* untrusted: dropped, nothing added */
    EXPECT_REQ(in, &o, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    /* trusted: passed on untouched */
    ln.trust_forwarded = true;
    EXPECT_REQ(in, &o,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n"
               "Forwarded: for=1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n");
}

static void test_request_id(void **state)
{
    (void)state;
    struct cfg_listener_http ln = lh_x;
    ln.forwarded = FWD_NONE;
    struct head_req_opts o = opts(&ln);
    /* sluice made the id: added */
    o.request_id = "abc123";
    o.request_id_len = 6;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc123\r\n\r\n");
    /* the client's id is kept (sluice made none) */
    o.request_id = NULL;
    o.request_id_len = 0;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\nx-request-id: client-id\r\n\r\n", &o,
               "GET / HTTP/1.1\r\nHost: h\r\nx-request-id: client-id\r\n\r\n");
    /* request_id: "" (off): never added */
    ln.request_id = NULL;
    o.request_id = "abc123";
    o.request_id_len = 6;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    /* a custom field name */
    ln.request_id = "X-Trace";
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Trace: abc123\r\n\r\n");
}

static void test_does_not_fit(void **state)
{
    (void)state;
    struct head_req_opts o = opts(&lh_x);
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *want = "GET / HTTP/1.1\r\nHost: h\r\n" XF("h") "\r\n";
    char out[4096];
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    h1_head_init(&h, f, T_FIELDS);
    assert_true(h1_parse_request(req, strlen(req), &T_LIMITS, &h) > 0);
    struct h1_msg m;
    assert_int_equal(h1_check_request(&h, 0, &m), H1_OK);
    assert_int_equal(head_write_request(&h, &m, &o, out, strlen(want)), strlen(want));
    assert_int_equal(head_write_request(&h, &m, &o, out, strlen(want) - 1), 0);
}

static void test_response_head(void **state)
{
    (void)state;
    const char *resp = "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n"
                       "Transfer-Encoding: chunked\r\nX-A: a\r\n\r\n";
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    h1_head_init(&h, f, T_FIELDS);
    assert_true(h1_parse_response(resp, strlen(resp), &T_LIMITS, &h) > 0);
    char out[1024];
    struct head_resp_opts o = {.keep_te = true};
    size_t n = head_write_response(&h, &o, out, sizeof(out) - 1);
    out[n] = '\0';
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: a\r\n\r\n");
    o = (struct head_resp_opts){.close = true};
    n = head_write_response(&h, &o, out, sizeof(out) - 1);
    out[n] = '\0';
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nX-A: a\r\nConnection: close\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hop_by_hop),     cmocka_unit_test(test_host_override),
        cmocka_unit_test(test_x_forwarded),    cmocka_unit_test(test_forwarded_rfc7239),
        cmocka_unit_test(test_forwarded_none), cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_does_not_fit),   cmocka_unit_test(test_response_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
