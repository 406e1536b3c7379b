/* Helpers shared by the HTTP/1 parser tests: every head is parsed whole, then fed one byte
 * at a time, then split in two at every position, and all ways must agree (the
 * incremental contract of h1_parse.h). Include after cmocka.h. */
#ifndef SLUICE_TESTS_H1_TEST_UTIL_H
#define SLUICE_TESTS_H1_TEST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http/h1_parse.h"

#define T_FIELDS 128

static const struct h1_limits T_LIMITS = {8192, 100};

static inline bool t_str_is(struct h1_str s, const char *z)
{
    return s.len == strlen(z) && memcmp(s.p, z, s.len) == 0;
}

static inline bool t_same_str(struct h1_str a, struct h1_str b)
{
    return a.len == b.len && (a.len == 0 || a.p == b.p);
}

/* The two parses of the same buffer produced the same result and head. */
static inline void t_same_head(int ra, const struct h1_head *a, int rb, const struct h1_head *b,
                               const char *what)
{
    if (ra != rb || (ra == H1_ERROR && a->error != b->error))
        fail_msg("%s: result %d (error %d) vs %d (error %d)", what, ra, a->error, rb, b->error);
    if (ra <= 0)
        return;
    assert_true(t_same_str(a->method, b->method) && t_same_str(a->target, b->target));
    assert_true(t_same_str(a->path, b->path) && t_same_str(a->authority, b->authority));
    assert_true(t_same_str(a->scheme, b->scheme) && t_same_str(a->reason, b->reason));
    assert_true(a->form == b->form && a->status == b->status);
    assert_int_equal(a->minor_version, b->minor_version);
    assert_int_equal(a->n_headers, b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++)
        assert_true(t_same_str(a->headers[i].name, b->headers[i].name) &&
                    t_same_str(a->headers[i].value, b->headers[i].value));
}

static inline int t_parse_once(const char *s, size_t len, const struct h1_limits *lim,
                               bool response, struct h1_head *h)
{
    return response ? h1_parse_response(s, len, lim, h) : h1_parse_request(s, len, lim, h);
}

/* Parses s[0..len) every way (see above); returns the result, *h holding the whole parse
 * into fields[0..T_FIELDS). all_splits = false skips the two-piece splits (long input). */
static inline int t_parse_ways(const char *s, size_t len, const struct h1_limits *lim,
                               bool response, struct h1_head *h, struct h1_header *fields,
                               bool all_splits)
{
    h1_head_init(h, fields, T_FIELDS);
    int whole = t_parse_once(s, len, lim, response, h);

    struct h1_header f2[T_FIELDS];
    struct h1_head h2;
    h1_head_init(&h2, f2, T_FIELDS);
    int r = H1_NEED_MORE;
    for (size_t k = 0; k <= len; k++) {
        r = t_parse_once(s, k, lim, response, &h2);
        if (k < len && r > 0 && (size_t)r > k)
            fail_msg("byte by byte: done at %zu with head length %d", k, r);
    }
    t_same_head(whole, h, r, &h2, "byte by byte");
    if (!all_splits)
        return whole;
    for (size_t k = 1; k < len; k++) {
        h1_head_init(&h2, f2, T_FIELDS);
        (void)t_parse_once(s, k, lim, response, &h2);
        r = t_parse_once(s, len, lim, response, &h2);
        char what[64];
        snprintf(what, sizeof(what), "split at %zu", k);
        t_same_head(whole, h, r, &h2, what);
    }
    return whole;
}

/* Parses the NUL-terminated request s every way with T_LIMITS. */
static inline int t_req(const char *s, struct h1_head *h, struct h1_header *fields)
{
    return t_parse_ways(s, strlen(s), &T_LIMITS, false, h, fields, true);
}

static inline int t_resp(const char *s, struct h1_head *h, struct h1_header *fields)
{
    return t_parse_ways(s, strlen(s), &T_LIMITS, true, h, fields, true);
}

/* The error a request is refused with by the head parser (H1_OK when it is accepted). */
static inline enum h1_error t_req_error(const char *s)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    int r = t_req(s, &h, f);
    if (r == H1_NEED_MORE)
        fail_msg("incomplete: %s", s);
    return r == H1_ERROR ? h.error : H1_OK;
}

static inline enum h1_error t_resp_error(const char *s)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    int r = t_resp(s, &h, f);
    if (r == H1_NEED_MORE)
        fail_msg("incomplete: %s", s);
    return r == H1_ERROR ? h.error : H1_OK;
}

#endif
