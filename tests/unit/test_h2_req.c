/* Unit tests for h2_req (src/http/h2_req.c): HTTP/2 request fields to an HTTP/1.1 head,
 * byte for byte, every refusal of RFC 9113 section 8 that matters to an HTTP/1.1 server,
 * and every head written is one that the strict HTTP/1.1 parser accepts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/h2_req.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Feeds "name\0value" pairs (NULL-terminated list) to a fresh request; returns the index
 * of the field refused, or -1 when all were taken. */
static int feed(struct h2_req *r, uint32_t max, const char *const *kv)
{
    h2_req_init(r, max);
    for (int i = 0; kv[i]; i += 2)
        if (h2_req_field(r, kv[i], strlen(kv[i]), kv[i + 1], strlen(kv[i + 1])) < 0)
            return i / 2;
    return -1;
}

/* The head written must parse and check cleanly as an HTTP/1.1 request. */
static void parses(const char *head, int len)
{
    struct h1_header fields[64];
    struct h1_head h;
    struct h1_msg m;
    h1_head_init(&h, fields, 64);
    struct h1_limits lim = {65536, 64};
    assert_int_equal(h1_parse_request(head, (size_t)len, &lim, &h), len);
    assert_int_equal(h1_check_request(&h, 0, &m), H1_OK);
}

static void expect_head(const char *const *kv, bool body, const char *want)
{
    struct h2_req r;
    char out[4096];
    assert_int_equal(feed(&r, 65536, kv), -1);
    int n = h2_req_write_h1(&r, body, KEY, out, sizeof(out));
    if (n < 0)
        fail_msg("refused: %s", r.error);
    out[n] = '\0';
    assert_string_equal(out, want);
    parses(out, n);
    h2_req_free(&r);
}

static void test_get_and_fields(void **state)
{
    (void)state;
    const char *kv[] = {":method",        "GET",   ":scheme", "https",  ":authority",
                        "a.example:8443", ":path", "/x?y=1",  "accept", "*/*",
                        "x-empty",        "",      NULL};
    expect_head(kv, false,
                "GET /x?y=1 HTTP/1.1\r\nHost: a.example:8443\r\naccept: */*\r\nx-empty: \r\n\r\n");
}

static void test_body_framing(void **state)
{
    (void)state;
    const char *nolen[] = {":method", "POST",  ":scheme", "http", ":authority",
                           "a",       ":path", "/up",     NULL};
    expect_head(nolen, true, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_head(nolen, false, "POST /up HTTP/1.1\r\nHost: a\r\n\r\n");
    const char *len[] = {":method", "PUT", ":scheme",        "http", ":authority", "a",
                         ":path",   "/u",  "content-length", "5",    NULL};
    expect_head(len, true, "PUT /u HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\n");
}

static void test_cookie_crumbs_joined_te_dropped_host(void **state)
{
    (void)state;
    const char *kv[] = {":method", "GET",       ":scheme", "https", ":path",    "/",      "cookie",
                        "a=1",     "x",         "y",       "te",    "trailers", "cookie", "b=2",
                        "host",    "h.example", "cookie",  "c=3",   NULL};
    /* no :authority: the host field gives Host; TE is not sent to HTTP/1.1 servers */
    expect_head(kv, false,
                "GET / HTTP/1.1\r\nHost: h.example\r\ncookie: a=1; b=2; c=3\r\nx: y\r\n\r\n");
    const char *same[] = {":method", "GET", ":scheme", "https",     ":authority", "H.example",
                          ":path",   "/",   "host",    "h.EXAMPLE", NULL};
    expect_head(same, false, "GET / HTTP/1.1\r\nHost: H.example\r\n\r\n");
}

static void test_websocket_and_connect(void **state)
{
    (void)state;
    const char *ws[] = {":method",
                        "CONNECT",
                        ":protocol",
                        "websocket",
                        ":scheme",
                        "https",
                        ":path",
                        "/chat",
                        ":authority",
                        "a",
                        "sec-websocket-version",
                        "13",
                        NULL};
    expect_head(ws, true,
                "GET /chat HTTP/1.1\r\nHost: a\r\nsec-websocket-version: 13\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n\r\n");
    struct h2_req r;
    char out[512];
    assert_int_equal(feed(&r, 65536, ws), -1);
    assert_true(h2_req_is_websocket(&r));
    assert_int_equal(h2_req_write_h1(&r, true, NULL, out, sizeof(out)), -1); /* no key */
    h2_req_free(&r);
    /* plain CONNECT: authority-form, which the engine answers 501 */
    const char *c[] = {":method", "CONNECT", ":authority", "a:443", NULL};
    assert_int_equal(feed(&r, 65536, c), -1);
    int n = h2_req_write_h1(&r, true, NULL, out, sizeof(out));
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n");
    h2_req_free(&r);
}

/* Each list is refused at field index `at` (or at write time when at == -1). */
static void refused(const char *const *kv, int at, const char *why)
{
    struct h2_req r;
    char out[1024];
    int got = feed(&r, 65536, kv);
    if (at >= 0) {
        if (got != at)
            fail_msg("expected \"%s\" at field %d, got %d", why, at, got);
    } else {
        assert_int_equal(got, -1);
        assert_int_equal(h2_req_write_h1(&r, false, KEY, out, sizeof(out)), -1);
    }
    assert_non_null(r.error);
    if (!strstr(r.error, why))
        fail_msg("error \"%s\" does not say \"%s\"", r.error, why);
    h2_req_free(&r);
}

#define BASE ":method", "GET", ":scheme", "https", ":authority", "a", ":path", "/"

static void test_refusals(void **state)
{
    (void)state;
    refused((const char *[]){BASE, "X-Up", "1", NULL}, 4, "lowercase token");
    refused((const char *[]){BASE, "bad name", "1", NULL}, 4, "lowercase token");
    refused((const char *[]){BASE, "connection", "close", NULL}, 4, "connection-specific");
    refused((const char *[]){BASE, "transfer-encoding", "chunked", NULL}, 4, "connection-specific");
    refused((const char *[]){BASE, "upgrade", "websocket", NULL}, 4, "connection-specific");
    refused((const char *[]){BASE, "keep-alive", "1", NULL}, 4, "connection-specific");
    refused((const char *[]){BASE, "proxy-connection", "1", NULL}, 4, "connection-specific");
    refused((const char *[]){BASE, "te", "gzip", NULL}, 4, "TE other than trailers");
    refused((const char *[]){BASE, "x", "a\r\nInjected: 1", NULL}, 4, "invalid character");
    refused((const char *[]){BASE, "x", "a\nb", NULL}, 4, "invalid character");
    refused((const char *[]){BASE, "x", " lead", NULL}, 4, "whitespace");
    refused((const char *[]){BASE, "x", "trail\t", NULL}, 4, "whitespace");
    refused((const char *[]){BASE, "x", "\x7f", NULL}, 4, "invalid character");
    refused((const char *[]){":method", "GET", "x", "1", ":path", "/", NULL}, 2,
            "after a regular field");
    refused((const char *[]){":method", "GET", ":status", "200", NULL}, 1, "unknown pseudo");
    refused((const char *[]){":method", "GET", ":path", "/", ":path", "/b", NULL}, 2,
            "repeated pseudo");
    refused((const char *[]){":method", "", NULL}, 0, "empty pseudo");
    refused((const char *[]){BASE, "host", "a", "host", "a", NULL}, 5, "repeated host");
    refused((const char *[]){":scheme", "https", ":path", "/", ":authority", "a", NULL}, -1,
            "missing :method");
    refused((const char *[]){":method", "GET", ":authority", "a", ":path", "/", NULL}, -1,
            "missing :scheme or :path");
    refused((const char *[]){":method", "GET", ":scheme", "https", ":path", "/", NULL}, -1,
            "no :authority and no host");
    refused((const char *[]){BASE, "host", "b", NULL}, -1, "differ");
    refused((const char *[]){BASE, "x", "1", ":protocol", "websocket", NULL}, 5, "after a regular");
    refused((const char *[]){":method", "GET", ":protocol", "websocket", ":scheme", "https",
                             ":path", "/", ":authority", "a", NULL},
            -1, ":protocol without CONNECT");
    refused((const char *[]){":method", "CONNECT", ":protocol", "h3", ":scheme", "https", ":path",
                             "/", ":authority", "a", NULL},
            -1, "other than websocket");
    refused((const char *[]){":method", "CONNECT", ":authority", "a:1", ":path", "/", NULL}, -1,
            "CONNECT needs");
}

static void test_limits(void **state)
{
    (void)state;
    struct h2_req r;
    const char *kv[] = {BASE, "x", "0123456789", NULL};
    /* counted like SETTINGS_MAX_HEADER_LIST_SIZE: names + values + 32 per field */
    uint32_t need = (7 + 3 + 32) + (7 + 5 + 32) + (10 + 1 + 32) + (5 + 1 + 32) + (1 + 10 + 32);
    assert_int_equal(feed(&r, need * 4, kv), -1); /* records also hold lengths: generous */
    h2_req_free(&r);
    assert_int_equal(feed(&r, 60, kv), 1);
    assert_non_null(strstr(r.error, "header list"));
    h2_req_free(&r);
    assert_int_equal(feed(&r, 65536, kv), -1);
    char small[20];
    assert_int_equal(h2_req_write_h1(&r, false, NULL, small, sizeof(small)), -1);
    assert_non_null(strstr(r.error, "larger than the buffer"));
    h2_req_free(&r);
}

static void test_trailer_fields(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(h2_req_trailer_ok("x-checksum", 10, "abc", 3, &why), 0);
    assert_int_equal(h2_req_trailer_ok("grpc-status", 11, "0", 1, &why), 0);
    static const struct {
        const char *n, *v;
        size_t vlen; /* 0: strlen */
    } bad[] = {{"content-length", "5", 0},
               {"host", "a", 0},
               {"te", "trailers", 0},
               {"connection", "close", 0},
               {"upgrade", "x", 0},
               {"keep-alive", "1", 0},
               {"transfer-encoding", "chunked", 0},
               {"proxy-connection", "x", 0},
               {":path", "/", 0},
               {"X-Upper", "1", 0},
               {"x y", "1", 0},
               {"x-v", "a\r\nx: y", 0},
               {"x-v", " lead", 0},
               {"x-v", "a\0b", 3}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t vlen = bad[i].vlen ? bad[i].vlen : strlen(bad[i].v);
        why = NULL;
        assert_int_equal(h2_req_trailer_ok(bad[i].n, strlen(bad[i].n), bad[i].v, vlen, &why), -1);
        assert_non_null(why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_fields),
        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_cookie_crumbs_joined_te_dropped_host),
        cmocka_unit_test(test_websocket_and_connect),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_trailer_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
