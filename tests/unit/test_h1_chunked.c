/* Unit tests for the chunked-framing validator (src/http/h1_chunked.c). Every body is fed
 * whole, one byte at a time and split in two at every position; all ways must agree on
 * the result, the error, the decoded size and where the body ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_chunked.h"

static const struct h1_chunked_limits LIM = {64, 256, 8, 0};

struct outcome {
    long r;              /* the last feed's result */
    size_t end;          /* body length in the stream when done */
    enum h1_error error; /* when refused */
    uint64_t consumed, data;
};

/* Feeds s in pieces ending at cuts[0..n) (the last cut is its length) and checks the
 * invariants of every step: safe never decreases, never passes consumed, and the bytes held
 * back are at most one line. */
static struct outcome feed_pieces(const char *s, const size_t *cuts, size_t n,
                                  const struct h1_chunked_limits *lim)
{
    struct h1_chunked c;
    h1_chunked_init(&c, lim);
    struct outcome o = {H1_NEED_MORE, 0, H1_OK, 0, 0};
    size_t at = 0;
    uint64_t safe = 0;
    for (size_t i = 0; i < n && o.r == H1_NEED_MORE; i++) {
        o.r = h1_chunked_feed(&c, s + at, cuts[i] - at);
        assert_true(c.safe >= safe && c.safe <= c.consumed);
        assert_true(c.consumed - c.safe <= lim->max_line + lim->max_trailer + 2);
        safe = c.safe;
        if (o.r >= 0) {
            o.end = at + (size_t)o.r;
            assert_int_equal(c.safe, c.consumed);
            assert_int_equal(c.consumed, o.end);
            assert_int_equal(h1_chunked_feed(&c, "x", 1), 0); /* done stays done */
        } else if (o.r == H1_ERROR) {
            o.error = c.error;
            assert_int_equal(h1_chunked_feed(&c, "0\r\n\r\n", 5), H1_ERROR);
        } else {
            assert_int_equal(c.consumed, cuts[i]);
        }
        at = cuts[i];
    }
    o.consumed = c.consumed;
    o.data = c.data;
    return o;
}

static void same_outcome(struct outcome a, struct outcome b, const char *what, const char *s)
{
    bool done = a.r >= 0;
    if (done != (b.r >= 0) || (!done && a.r != b.r) || a.error != b.error ||
        a.consumed != b.consumed || a.data != b.data || (done && a.end != b.end))
        fail_msg("%s differs for \"%s\": r %ld/%ld error %d/%d consumed %llu/%llu", what, s, a.r,
                 b.r, a.error, b.error, (unsigned long long)a.consumed,
                 (unsigned long long)b.consumed);
}

/* Feeds s[0..len) every way; returns the whole-buffer outcome. */
static struct outcome feed_ways(const char *s, size_t len, const struct h1_chunked_limits *lim)
{
    size_t whole_cut[1] = {len};
    struct outcome whole = feed_pieces(s, whole_cut, 1, lim);
    size_t *bytes = malloc((len + 1) * sizeof(size_t));
    assert_non_null(bytes);
    for (size_t i = 0; i < len; i++)
        bytes[i] = i + 1;
    if (len)
        same_outcome(whole, feed_pieces(s, bytes, len, lim), "byte by byte", s);
    free(bytes);
    for (size_t k = 1; k < len; k++) {
        size_t two[2] = {k, len};
        same_outcome(whole, feed_pieces(s, two, 2, lim), "split", s);
    }
    return whole;
}

static struct outcome feed_str(const char *s)
{
    return feed_ways(s, strlen(s), &LIM);
}

static void test_valid_bodies(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        uint64_t data;
    } cases[] = {
        {"0\r\n\r\n", 0},
        {"5\r\nhello\r\n0\r\n\r\n", 5},
        {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11},
        {"A\r\n0123456789\r\n0\r\n\r\n", 10},
        {"a\r\n0123456789\r\n000\r\n\r\n", 10},
        {"0001\r\nx\r\n0\r\n\r\n", 1},
        {"1;a\r\nx\r\n0\r\n\r\n", 1},
        {"1;a=b\r\nx\r\n0;last\r\n\r\n", 1},
        {"1;a=\"q \\\" ;,x\"\r\nx\r\n0\r\n\r\n", 1},
        {"1 ;a\r\nx\r\n0\r\n\r\n", 1},        /* BWS before ';' */
        {"1; a = b ;c\r\nx\r\n0\r\n\r\n", 1}, /* BWS around '=' and ';' */
        {"1;a;b=c;d=\"\"\r\nx\r\n0\r\n\r\n", 1},
        {"1;a=\"\xc3\xa9\"\r\nx\r\n0\r\n\r\n", 1}, /* obs-text in a quoted value */
        {"1\r\n\r\r\n0\r\n\r\n", 1},               /* data is opaque, CR included */
        {"0\r\nX-Sum: abc\r\nY:\r\n\r\n", 0},      /* trailers */
        {"0\r\nX: a\tb \xc3\xa9\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct outcome o = feed_str(cases[i].body);
        if (o.r < 0 || o.end != strlen(cases[i].body) || o.data != cases[i].data)
            fail_msg("case %zu (%s): r %ld error %s end %zu data %llu", i, cases[i].body, o.r,
                     h1_error_reason(o.error), o.end, (unsigned long long)o.data);
    }
}

static void test_pipelined_bytes_left_alone(void **state)
{
    (void)state;
    const char *s = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    struct outcome o = feed_str(s);
    assert_int_equal(o.end, strlen("3\r\nabc\r\n0\r\n\r\n"));
    assert_int_equal(o.data, 3);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        enum h1_error error;
    } cases[] = {
        {"\r\n", H1_E_CHUNK_SIZE}, /* empty size */
        {"x\r\n", H1_E_CHUNK_SIZE},
        {"-5\r\n", H1_E_CHUNK_SIZE},
        {"+5\r\n", H1_E_CHUNK_SIZE},
        {"0x5\r\n", H1_E_CHUNK_SIZE},
        {" 5\r\n", H1_E_CHUNK_SIZE}, /* leading space */
        {"5 \r\n", H1_E_CHUNK_EXT},  /* trailing space, no extension */
        {"5\t\r\n", H1_E_CHUNK_EXT},
        {"5\n", H1_E_CHUNK_SIZE},  /* bare LF */
        {"5\rX", H1_E_CHUNK_SIZE}, /* bare CR */
        {"5\r\r\n", H1_E_CHUNK_SIZE},
        {"5;\r\n", H1_E_CHUNK_EXT}, /* empty extension name */
        {"5;=a\r\n", H1_E_CHUNK_EXT},
        {"5;a=\r\n", H1_E_CHUNK_EXT}, /* empty value */
        {"5;a =\r\n", H1_E_CHUNK_EXT},
        {"5;a \r\n", H1_E_CHUNK_EXT}, /* BWS not followed by = or ; */
        {"5;a=b c\r\n", H1_E_CHUNK_EXT},
        {"5;a=\"x\r\n", H1_E_CHUNK_EXT}, /* unterminated quote */
        {"5;a=\"x\"y\r\n", H1_E_CHUNK_EXT},
        {"5;a=\"\x01\"\r\n", H1_E_CHUNK_EXT},
        {"5;a=\"\\\x7f\"\r\n", H1_E_CHUNK_EXT},
        {"5;a\x01\r\n", H1_E_CHUNK_EXT},
        {"5;a=b\n", H1_E_CHUNK_EXT},
        {"5;a(b\r\n", H1_E_CHUNK_EXT},
        {"5,6\r\n", H1_E_CHUNK_SIZE},
        {"5\r\nhelloX", H1_E_CHUNK_DATA_END}, /* data not followed by CRLF */
        {"5\r\nhello\n", H1_E_CHUNK_DATA_END},
        {"5\r\nhello\rX", H1_E_CHUNK_DATA_END},
        {"5\r\nhello world\r\n", H1_E_CHUNK_DATA_END}, /* more data than announced */
        {"10000000000000000\r\n", H1_E_CHUNK_SIZE},    /* 2^64: overflow */
        {"0\r\n X: y\r\n\r\n", H1_E_TRAILER},          /* obs-fold in trailers */
        {"0\r\nX : y\r\n\r\n", H1_E_TRAILER},
        {"0\r\nX y\r\n\r\n", H1_E_TRAILER},
        {"0\r\n: y\r\n\r\n", H1_E_TRAILER},
        {"0\r\nX: \x01\r\n\r\n", H1_E_TRAILER},
        {"0\r\nX: y\n\r\n", H1_E_TRAILER},
        {"0\r\nX: y\r\n\n", H1_E_TRAILER},
        {"0\r\n\n", H1_E_TRAILER},
        {"0\r\n\rX", H1_E_TRAILER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct outcome o = feed_str(cases[i].body);
        if (o.r != H1_ERROR || o.error != cases[i].error)
            fail_msg("case %zu (%s): r %ld error %d (%s), want %d", i, cases[i].body, o.r, o.error,
                     h1_error_reason(o.error), cases[i].error);
    }
    /* the largest size is fine (it just needs that much data) */
    struct outcome o = feed_str("ffffffffffffffff\r\n");
    assert_int_equal(o.r, H1_NEED_MORE);
    /* NUL bytes are not hex digits, nor field characters */
    o = feed_ways("5\0\r\n", 4, &LIM);
    assert_int_equal(o.error, H1_E_CHUNK_SIZE);
    o = feed_ways("0\r\nX: \0\r\n\r\n", 11, &LIM);
    assert_int_equal(o.error, H1_E_TRAILER);
}

static void test_error_offset(void **state)
{
    (void)state;
    struct h1_chunked c;
    h1_chunked_init(&c, &LIM);
    assert_int_equal(h1_chunked_feed(&c, "3\r\nabc\r\n5\r\nhelloX", 17), H1_ERROR);
    assert_int_equal(c.error, H1_E_CHUNK_DATA_END);
    assert_int_equal(c.consumed, 16); /* the X */
    assert_int_equal(c.safe, 16);     /* the chunks before it were fine */
}

static void test_safe_to_forward(void **state)
{
    (void)state;
    struct h1_chunked c;
    h1_chunked_init(&c, &LIM);
    /* an incomplete size line is held back */
    assert_int_equal(h1_chunked_feed(&c, "5;a=b", 5), H1_NEED_MORE);
    assert_true(c.consumed == 5 && c.safe == 0);
    assert_int_equal(h1_chunked_feed(&c, "\r", 1), H1_NEED_MORE);
    assert_int_equal(c.safe, 0);
    assert_int_equal(h1_chunked_feed(&c, "\n", 1), H1_NEED_MORE);
    assert_int_equal(c.safe, 7);
    /* data is safe as it arrives */
    assert_int_equal(h1_chunked_feed(&c, "hel", 3), H1_NEED_MORE);
    assert_int_equal(c.safe, 10);
    assert_int_equal(h1_chunked_feed(&c, "lo\r", 3), H1_NEED_MORE);
    assert_int_equal(c.safe, 12); /* not the CR */
    assert_int_equal(h1_chunked_feed(&c, "\n0\r\nX: ", 7), H1_NEED_MORE);
    assert_int_equal(c.safe, 17); /* through the last-chunk line, not the partial trailer */
    assert_int_equal(c.data, 5);
    assert_int_equal(h1_chunked_feed(&c, "y\r\n", 3), H1_NEED_MORE);
    assert_int_equal(c.safe, 23);
    assert_int_equal(c.trailers, 1);
    assert_int_equal(h1_chunked_feed(&c, "\r\nNEXT", 6), 2);
    assert_true(c.safe == 25 && c.consumed == 25);
}

static void test_line_limit(void **state)
{
    (void)state;
    /* the size line with its CRLF at exactly max_line bytes passes, one more fails */
    struct h1_chunked_limits lim = {8, 0, 0, 0};
    assert_true(feed_ways("1;abcd\r\nx\r\n0\r\n\r\n", 17, &lim).r >= 0);
    struct outcome o = feed_ways("1;abcde\r\nx\r\n0\r\n\r\n", 18, &lim);
    assert_int_equal(o.error, H1_E_CHUNK_LINE);
    /* leading zeros count */
    o = feed_ways("000000001\r\n", 11, &lim);
    assert_int_equal(o.error, H1_E_CHUNK_LINE);
}

static void test_trailer_limits(void **state)
{
    (void)state;
    /* bytes: "A: b\r\n" is 6 */
    struct h1_chunked_limits bytes6 = {64, 6, 10, 0}, bytes5 = {64, 5, 10, 0};
    const char *one = "0\r\nA: b\r\n\r\n";
    assert_true(feed_ways(one, strlen(one), &bytes6).r >= 0);
    assert_int_equal(feed_ways(one, strlen(one), &bytes5).error, H1_E_TRAILER_TOO_LARGE);
    /* no trailer allowed */
    struct h1_chunked_limits none = {64, 0, 0, 0};
    assert_true(feed_ways("0\r\n\r\n", 5, &none).r >= 0);
    assert_int_equal(feed_ways(one, strlen(one), &none).error, H1_E_TRAILER_TOO_LARGE);
    /* count */
    struct h1_chunked_limits two = {64, 256, 2, 0};
    const char *t2 = "0\r\nA: 1\r\nB: 2\r\n\r\n", *t3 = "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    struct outcome o = feed_ways(t2, strlen(t2), &two);
    assert_true(o.r >= 0);
    assert_int_equal(feed_ways(t3, strlen(t3), &two).error, H1_E_TRAILER_TOO_LARGE);
}

static void test_max_body(void **state)
{
    (void)state;
    struct h1_chunked_limits lim = {64, 0, 0, 10};
    const char *ten = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    const char *eleven = "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
    struct outcome o = feed_ways(ten, strlen(ten), &lim);
    assert_true(o.r >= 0 && o.data == 10);
    o = feed_ways(eleven, strlen(eleven), &lim);
    assert_int_equal(o.error, H1_E_BODY_TOO_LARGE);
    assert_int_equal(o.consumed, 12); /* refused at the LF of the size line announcing it */
    assert_int_equal(h1_error_status(H1_E_BODY_TOO_LARGE), 413);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_bodies),    cmocka_unit_test(test_pipelined_bytes_left_alone),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_error_offset),
        cmocka_unit_test(test_safe_to_forward), cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_trailer_limits),  cmocka_unit_test(test_max_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
