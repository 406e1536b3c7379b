/* libFuzzer harness for the chunked-framing validator (src/http/h1_chunked.c).
 * Input: byte 0 picks the limits (line, trailer bytes and lines, max_body), byte 1 the
 * split pattern; the rest is a body stream.
 * Checks, besides memory safety:
 *   - whole versus split: the stream fed whole, byte by byte and in random pieces gives the
 *     same verdict, error, error offset, end of body, data size and trailer count; at every
 *     step `safe` never decreases, never passes `consumed`, and holds back at most one line;
 *   - differential against a reference written separately, as a plain recursive-descent
 *     reading of the RFC 9112 section 7.1 grammar over the whole buffer: same verdict,
 *     same error and offset, same end, data size and trailer count;
 *   - round trip: the data and trailers the reference found, re-framed canonically (other
 *     chunk sizes, no extensions, lowercase hex) and followed by pipelined bytes, are
 *     accepted with the same data size and trailer count, and end where they should. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_chunked.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

enum { R_MORE, R_DONE, R_ERROR, R_RUNNING };

struct result {
    int verdict;
    enum h1_error error;
    uint64_t at; /* R_DONE: body length; R_ERROR: offset of the offending byte */
    uint64_t data;
    size_t trailers;
};

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Feeds b[0..n) in pieces (1 byte each when seed is 0, random sizes otherwise). */
static struct result run_validator(const char *b, size_t n, const struct h1_chunked_limits *lim,
                                   uint32_t seed)
{
    struct h1_chunked c;
    h1_chunked_init(&c, lim);
    struct result r = {R_MORE, H1_OK, 0, 0, 0};
    size_t at = 0;
    uint64_t safe = 0;
    uint32_t s = seed | 1;
    size_t hold = (lim->max_line > lim->max_trailer ? lim->max_line : lim->max_trailer) + 2;
    do {
        size_t piece = seed ? 1 + next_rand(&s) % 61 : 1;
        if (seed == UINT32_MAX || piece > n - at)
            piece = n - at;
        long v = h1_chunked_feed(&c, b + at, piece);
        CHECK(c.safe >= safe && c.safe <= c.consumed && c.consumed - c.safe <= hold);
        safe = c.safe;
        if (v >= 0) {
            CHECK((size_t)v <= piece && c.safe == c.consumed && c.consumed == at + (size_t)v);
            r.verdict = R_DONE;
            r.at = c.consumed;
            CHECK(h1_chunked_feed(&c, "0\r\n\r\n", 5) == 0);
            break;
        }
        if (v == H1_ERROR) {
            CHECK(c.error != H1_OK && (unsigned)c.error < H1_E_COUNT);
            r.verdict = R_ERROR;
            r.error = c.error;
            r.at = c.consumed;
            CHECK(c.consumed >= at && c.consumed < at + piece);
            CHECK(h1_chunked_feed(&c, "\r\n", 2) == H1_ERROR);
            break;
        }
        CHECK(v == H1_NEED_MORE && c.consumed == at + piece);
        at += piece;
    } while (at < n);
    r.data = c.data;
    r.trailers = c.trailers;
    return r;
}

/* ---- the reference: the grammar read top-down over the whole buffer ---- */

struct ref {
    const char *b;
    size_t n, p;
    const struct h1_chunked_limits *lim;
    struct result r;
    /* what the round trip needs */
    size_t spans[64][2]; /* chunk data ranges */
    size_t n_spans;
    bool too_many_spans;
    size_t trailer_start, trailer_end;
};

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Fails at the current byte. Returns false for use in conditions. */
static bool ref_fail(struct ref *x, enum h1_error e)
{
    x->r.verdict = R_ERROR;
    x->r.error = e;
    x->r.at = x->p;
    return false;
}

/* A byte of the chunk-size line is available (and within the line limit), else the verdict
 * is set: more needed, or the line is too long. */
static bool line_byte(struct ref *x, size_t line_start)
{
    if (x->p >= x->n) {
        x->r.verdict = R_MORE;
        return false;
    }
    if (x->p - line_start + 1 > x->lim->max_line)
        return ref_fail(x, H1_E_CHUNK_LINE);
    return true;
}

#define BYTE(x) ((unsigned char)(x)->b[(x)->p])

/* The reference has reached a verdict (more needed, or an error). */
static bool stopped(const struct ref *x)
{
    return x->r.verdict != R_RUNNING;
}

/* Skips BWS; returns whether any was skipped (false with a verdict when input ran out). */
static bool ref_bws(struct ref *x, size_t ls, bool *skipped)
{
    *skipped = false;
    for (;;) {
        if (!line_byte(x, ls))
            return false;
        if (BYTE(x) != ' ' && BYTE(x) != '\t')
            return true;
        *skipped = true;
        x->p++;
    }
}

/* chunk-ext value: token or quoted-string. */
static bool ref_ext_value(struct ref *x, size_t ls)
{
    if (!line_byte(x, ls))
        return false;
    if (BYTE(x) == '"') {
        x->p++;
        for (;;) {
            if (!line_byte(x, ls))
                return false;
            unsigned char c = BYTE(x);
            if (c == '"') {
                x->p++;
                return true;
            }
            if (c == '\\') {
                x->p++;
                if (!line_byte(x, ls))
                    return false;
                c = BYTE(x);
                if (!(c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f)))
                    return ref_fail(x, H1_E_CHUNK_EXT);
                x->p++;
                continue;
            }
            bool qdtext = c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
                          (c >= 0x5d && c <= 0x7e) || c >= 0x80;
            if (!qdtext)
                return ref_fail(x, H1_E_CHUNK_EXT);
            x->p++;
        }
    }
    if (!is_tchar(BYTE(x)))
        return ref_fail(x, H1_E_CHUNK_EXT);
    while (line_byte(x, ls) && is_tchar(BYTE(x)))
        x->p++;
    return !stopped(x);
}

/* chunk-size [ chunk-ext ] CRLF; sets *size. */
static bool ref_size_line(struct ref *x, uint64_t *size)
{
    size_t ls = x->p;
    *size = 0;
    if (!line_byte(x, ls))
        return false;
    if (hexval(BYTE(x)) < 0)
        return ref_fail(x, H1_E_CHUNK_SIZE);
    while (line_byte(x, ls) && hexval(BYTE(x)) >= 0) {
        unsigned v = (unsigned)hexval(BYTE(x));
        if (*size > (UINT64_MAX - v) / 16)
            return ref_fail(x, H1_E_CHUNK_SIZE);
        *size = *size * 16 + v;
        x->p++;
    }
    if (stopped(x))
        return false;
    /* *( BWS ";" BWS name [ BWS "=" BWS value ] ) */
    bool ws, first = true;
    for (;;) {
        if (!ref_bws(x, ls, &ws))
            return false;
        unsigned char c = BYTE(x);
        if (c == ';') {
            x->p++;
            if (!ref_bws(x, ls, &ws))
                return false;
            if (!is_tchar(BYTE(x)))
                return ref_fail(x, H1_E_CHUNK_EXT);
            while (line_byte(x, ls) && is_tchar(BYTE(x)))
                x->p++;
            if (stopped(x))
                return false;
            if (!ref_bws(x, ls, &ws))
                return false;
            if (BYTE(x) == '=') {
                x->p++;
                if (!ref_bws(x, ls, &ws) || !ref_ext_value(x, ls))
                    return false;
            } else if (ws && BYTE(x) != ';') {
                return ref_fail(x, H1_E_CHUNK_EXT);
            }
            first = false;
            continue;
        }
        if (ws)
            return ref_fail(x, H1_E_CHUNK_EXT);
        if (c != '\r')
            return ref_fail(x, first ? H1_E_CHUNK_SIZE : H1_E_CHUNK_EXT);
        x->p++;
        if (!line_byte(x, ls))
            return false;
        if (BYTE(x) != '\n')
            return ref_fail(x, H1_E_CHUNK_SIZE);
        return true; /* p at the LF */
    }
}

/* trailer-section = *( field-line CRLF ) CRLF; counts against the trailer limits. */
static void ref_trailers(struct ref *x)
{
    size_t ts = x->p;
    x->trailer_start = ts;
    for (;;) {
        if (x->p >= x->n) {
            x->r.verdict = R_MORE;
            return;
        }
        if (BYTE(x) == '\r') {
            x->trailer_end = x->p;
            x->p++;
            if (x->p >= x->n) {
                x->r.verdict = R_MORE;
                return;
            }
            if (BYTE(x) != '\n') {
                ref_fail(x, H1_E_TRAILER);
                return;
            }
            x->p++;
            x->r.verdict = R_DONE;
            x->r.at = x->p;
            return;
        }
        /* a field line: every byte, its CRLF included, counts */
        int phase = 0; /* 0 first name char, 1 name, 2 value, 3 LF */
        for (;;) {
            if (x->p >= x->n) {
                x->r.verdict = R_MORE;
                return;
            }
            if (x->p - ts + 1 > x->lim->max_trailer) {
                ref_fail(x, H1_E_TRAILER_TOO_LARGE);
                return;
            }
            unsigned char c = BYTE(x);
            if (phase == 0) {
                if (!is_tchar(c)) {
                    ref_fail(x, H1_E_TRAILER);
                    return;
                }
                if (++x->r.trailers > x->lim->max_trailers) {
                    ref_fail(x, H1_E_TRAILER_TOO_LARGE);
                    return;
                }
                phase = 1;
            } else if (phase == 1) {
                if (c == ':')
                    phase = 2;
                else if (!is_tchar(c)) {
                    ref_fail(x, H1_E_TRAILER);
                    return;
                }
            } else if (phase == 2) {
                if (c == '\r')
                    phase = 3;
                else if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) {
                    ref_fail(x, H1_E_TRAILER);
                    return;
                }
            } else {
                if (c != '\n') {
                    ref_fail(x, H1_E_TRAILER);
                    return;
                }
                x->p++;
                break;
            }
            x->p++;
        }
    }
}

static void run_reference(struct ref *x)
{
    x->r = (struct result){R_RUNNING, H1_OK, 0, 0, 0};
    x->p = 0;
    for (;;) {
        uint64_t size;
        if (!ref_size_line(x, &size))
            return;
        if (size > UINT64_MAX - x->r.data) {
            ref_fail(x, H1_E_CHUNK_SIZE);
            return;
        }
        if (x->lim->max_body && x->r.data + size > x->lim->max_body) {
            ref_fail(x, H1_E_BODY_TOO_LARGE);
            return;
        }
        x->p++; /* the LF */
        if (size == 0) {
            ref_trailers(x);
            return;
        }
        uint64_t avail = x->n - x->p;
        if (avail < size) {
            x->r.data += avail;
            x->r.verdict = R_MORE;
            return;
        }
        if (x->n_spans < 64) {
            x->spans[x->n_spans][0] = x->p;
            x->spans[x->n_spans][1] = (size_t)size;
            x->n_spans++;
        } else {
            x->too_many_spans = true;
        }
        x->p += (size_t)size;
        x->r.data += size;
        for (int k = 0; k < 2; k++) {
            if (x->p >= x->n) {
                x->r.verdict = R_MORE;
                return;
            }
            if (BYTE(x) != (k ? '\n' : '\r')) {
                ref_fail(x, H1_E_CHUNK_DATA_END);
                return;
            }
            x->p++;
        }
    }
}

static void same_result(struct result a, struct result b)
{
    CHECK(a.verdict == b.verdict && a.data == b.data && a.trailers == b.trailers);
    if (a.verdict != R_MORE)
        CHECK(a.at == b.at);
    if (a.verdict == R_ERROR)
        CHECK(a.error == b.error);
}

/* Re-frames what the reference accepted and checks the validator takes it the same way. */
static void round_trip(const struct ref *x, uint32_t seed)
{
    static char out[1 << 17];
    size_t o = 0;
    uint32_t s = seed | 1;
    for (size_t i = 0; i < x->n_spans; i++) {
        size_t off = x->spans[i][0], left = x->spans[i][1];
        while (left) {
            size_t piece = 1 + next_rand(&s) % (left < 300 ? left : 300);
            if (o + piece + 32 > sizeof(out))
                return;
            o += (size_t)snprintf(out + o, 32, "%zx\r\n", piece);
            memcpy(out + o, x->b + off, piece);
            o += piece;
            memcpy(out + o, "\r\n", 2);
            o += 2;
            off += piece;
            left -= piece;
        }
    }
    size_t tlen = x->trailer_end - x->trailer_start;
    if (o + tlen + 16 > sizeof(out))
        return;
    memcpy(out + o, "0\r\n", 3);
    o += 3;
    memcpy(out + o, x->b + x->trailer_start, tlen);
    o += tlen;
    memcpy(out + o, "\r\n", 2);
    o += 2;
    memcpy(out + o, "GET /", 5); /* a pipelined request follows */
    struct h1_chunked_limits lim = *x->lim;
    lim.max_line = 32;
    struct result a = run_validator(out, o + 5, &lim, seed);
    CHECK(a.verdict == R_DONE && a.at == o);
    CHECK(a.data == x->r.data && a.trailers == x->r.trailers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t l = data[0];
    struct h1_chunked_limits lim = {
        (size_t)(l & 3) * 12 + 4,                   /* max_line: 4..40 */
        (l & 4) ? 0 : (size_t)((l >> 3) & 3) * 40,  /* max_trailer: 0..120 */
        (size_t)(l >> 5),                           /* max_trailers: 0..7 */
        (l & 0x80) ? (uint64_t)(l & 0x1f) * 17 : 0, /* max_body */
    };
    if (l == 0xff)
        lim = (struct h1_chunked_limits){H1_CHUNK_LINE_MAX, 8192, 100, 0};
    const char *b = (const char *)data + 2;
    size_t n = size - 2;

    struct result whole = run_validator(b, n, &lim, UINT32_MAX);
    same_result(whole, run_validator(b, n, &lim, 0));
    same_result(whole, run_validator(b, n, &lim, data[1] * 2654435761u + 1));

    static struct ref x;
    memset(&x, 0, sizeof(x));
    x.b = b;
    x.n = n;
    x.lim = &lim;
    run_reference(&x);
    same_result(whole, x.r);
    if (x.r.verdict == R_DONE && !x.too_many_spans)
        round_trip(&x, data[1] + 1u);
    return 0;
}
