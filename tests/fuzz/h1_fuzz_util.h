/* Checks shared by the HTTP/1 head harnesses (fuzz_h1_request.c, fuzz_h1_response.c):
 * whole-versus-split feeding, the invariants of a parsed head, and the differential
 * round trip through h1_write_head. */
#ifndef SLUICE_FUZZ_H1_FUZZ_UTIL_H
#define SLUICE_FUZZ_H1_FUZZ_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/h1_write.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define FZ_FIELDS 160

typedef int (*fz_parse_fn)(const char *, size_t, const struct h1_limits *, struct h1_head *);

static inline uint32_t fz_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static inline bool fz_str_eq(struct h1_str a, struct h1_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Same result, error and head content (byte-wise, the buffers may differ). */
static inline void fz_same_head(int ra, const struct h1_head *a, int rb, const struct h1_head *b)
{
    CHECK(ra == rb);
    if (ra == H1_ERROR)
        CHECK(a->error == b->error);
    if (ra <= 0)
        return;
    CHECK(fz_str_eq(a->method, b->method) && fz_str_eq(a->target, b->target));
    CHECK(fz_str_eq(a->scheme, b->scheme) && fz_str_eq(a->authority, b->authority));
    CHECK(fz_str_eq(a->path, b->path) && fz_str_eq(a->reason, b->reason));
    CHECK(a->form == b->form && a->status == b->status && a->minor_version == b->minor_version);
    CHECK(a->n_headers == b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++)
        CHECK(fz_str_eq(a->headers[i].name, b->headers[i].name) &&
              fz_str_eq(a->headers[i].value, b->headers[i].value));
}

/* Feeds buf[0..len) in pieces whose sizes come from seed (byte by byte when seed is 0)
 * and checks the outcome equals the whole parse (ra, a). */
static inline void fz_split_feed(fz_parse_fn parse, const char *buf, size_t len,
                                 const struct h1_limits *lim, uint32_t seed, int ra,
                                 const struct h1_head *a)
{
    struct h1_header f[FZ_FIELDS];
    struct h1_head h;
    h1_head_init(&h, f, FZ_FIELDS);
    int r = H1_NEED_MORE;
    size_t at = 0;
    uint32_t s = seed | 1;
    while (at < len) {
        at += seed ? 1 + fz_next(&s) % 97 : 1;
        if (at > len)
            at = len;
        r = parse(buf, at, lim, &h);
        if (r == H1_ERROR) /* sticky, and the whole parse must agree */
            break;
        if (r > 0) {
            CHECK((size_t)r <= at);
            break;
        }
    }
    if (len == 0)
        r = parse(buf, 0, lim, &h);
    fz_same_head(ra, a, r, &h);
}

static inline bool fz_no_ctl(struct h1_str s, bool allow_ws)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == 0x7f || (c < 0x20 && c != '\t') || (!allow_ws && (c == ' ' || c == '\t')))
            return false;
    }
    return true;
}

static inline bool fz_inside(struct h1_str s, const char *buf, size_t n)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + n);
}

/* The invariants of an accepted head of length n. */
static inline void fz_check_head(const char *buf, int n, const struct h1_head *h,
                                 const struct h1_limits *lim, bool response)
{
    size_t head = (size_t)n;
    CHECK(head <= lim->max_head && head >= (response ? 14 : 16));
    CHECK(memcmp(buf + head - 4, "\r\n\r\n", 4) == 0 || memcmp(buf + head - 2, "\r\n", 2) == 0);
    CHECK(h->minor_version == 0 || h->minor_version == 1);
    CHECK(h->n_headers <= lim->max_fields);
    if (response) {
        CHECK(h->status >= 100 && h->status <= 599);
        CHECK(fz_inside(h->reason, buf, head) && fz_no_ctl(h->reason, true));
    } else {
        CHECK(h->method.len > 0 && fz_inside(h->method, buf, head) && fz_no_ctl(h->method, false));
        CHECK(h->target.len > 0 && fz_inside(h->target, buf, head) && fz_no_ctl(h->target, false));
        CHECK(memchr(h->target.p, '#', h->target.len) == NULL);
        CHECK(fz_inside(h->path, buf, head) && fz_inside(h->authority, buf, head));
        if (h->form == H1_AUTHORITY_FORM)
            CHECK(h->method.len == 7 && memcmp(h->method.p, "CONNECT", 7) == 0);
        if (h->form == H1_ASTERISK_FORM)
            CHECK(h->method.len == 7 && memcmp(h->method.p, "OPTIONS", 7) == 0);
        if (h->form == H1_ABSOLUTE_FORM)
            CHECK(h->authority.len > 0 && (h->scheme.len == 4 || h->scheme.len == 5));
    }
    for (size_t i = 0; i < h->n_headers; i++) {
        struct h1_str nm = h->headers[i].name, v = h->headers[i].value;
        CHECK(nm.len > 0 && fz_inside(nm, buf, head) && fz_inside(v, buf, head));
        CHECK(fz_no_ctl(nm, false) && memchr(nm.p, ':', nm.len) == NULL);
        CHECK(fz_no_ctl(v, true));
        if (v.len)
            CHECK(v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.len - 1] != ' ' &&
                  v.p[v.len - 1] != '\t');
    }
    /* every shorter prefix asks for more: nothing is judged on bytes not yet seen */
    struct h1_header f[FZ_FIELDS];
    struct h1_head p;
    for (size_t cut = head > 48 ? head - 48 : 0; cut < head; cut++) {
        h1_head_init(&p, f, FZ_FIELDS);
        int r =
            response ? h1_parse_response(buf, cut, lim, &p) : h1_parse_request(buf, cut, lim, &p);
        CHECK(r == H1_NEED_MORE);
    }
}

static inline void fz_same_msg(enum h1_error ea, const struct h1_msg *a, enum h1_error eb,
                               const struct h1_msg *b)
{
    CHECK(ea == eb);
    if (ea != H1_OK)
        return;
    CHECK(a->body == b->body && a->length == b->length && a->keep_alive == b->keep_alive);
    CHECK(a->conn_close == b->conn_close && a->conn_upgrade == b->conn_upgrade);
    CHECK(a->expect_continue == b->expect_continue && a->upgrade == b->upgrade);
    CHECK(a->websocket == b->websocket && a->interim == b->interim && a->port == b->port);
    CHECK(fz_str_eq(a->authority, b->authority) && fz_str_eq(a->host, b->host));
}

/* Writes the accepted head h back out and parses the copy with a limit of exactly its
 * length: it must come back as the same head. Returns the copy's length in out. */
static inline size_t fz_round_trip(const struct h1_head *h, bool response, char *out, size_t cap,
                                   struct h1_head *copy, struct h1_header *fields)
{
    size_t len = h1_write_head(h, response, out, cap);
    CHECK(len <= cap);
    struct h1_limits lim = {len, h->n_headers};
    h1_head_init(copy, fields, FZ_FIELDS);
    int r =
        response ? h1_parse_response(out, len, &lim, copy) : h1_parse_request(out, len, &lim, copy);
    CHECK(r == (int)len);
    fz_same_head(1, h, 1, copy);
    /* and writing the copy gives the same bytes */
    char again[16384 + 2048];
    CHECK(len <= sizeof(again));
    CHECK(h1_write_head(copy, response, again, sizeof(again)) == len);
    CHECK(memcmp(again, out, len) == 0);
    return len;
}

#endif
