/* Chunked-framing validator. See h1_chunked.h for the contract and the strictness. */
#include "http/h1_chunked.h"

#include <stdbool.h>
#include <string.h>

#include "http/h1_chars.h"

enum {
    S_SIZE_FIRST,   /* first HEXDIG of a chunk-size */
    S_SIZE,         /* more HEXDIG, or what ends the size */
    S_EXT_BWS,      /* BWS that must lead to ';' */
    S_EXT_NAME0,    /* after ';': BWS, then the first name char */
    S_EXT_NAME,     /* in a name */
    S_EXT_NAME_BWS, /* BWS after a name: '=' or ';' must follow */
    S_EXT_VAL0,     /* after '=': BWS, then a token or a quoted-string */
    S_EXT_TOKEN,    /* in a token value */
    S_EXT_QUOTED,   /* in a quoted-string */
    S_EXT_QPAIR,    /* after a backslash in a quoted-string */
    S_EXT_QEND,     /* after the closing quote */
    S_SIZE_LF,      /* the LF of the chunk-size line */
    S_DATA,         /* chunk data */
    S_DATA_CR,      /* the CR after chunk data */
    S_DATA_LF,      /* the LF after chunk data */
    S_TR_START,     /* the start of a trailer line, or of the final CRLF */
    S_TR_NAME,      /* in a trailer field name */
    S_TR_VALUE,     /* in a trailer field value */
    S_TR_LF,        /* the LF of a trailer line */
    S_END_LF,       /* the LF of the final empty line */
    S_DONE,
    S_FAILED,
};

void h1_chunked_init(struct h1_chunked *c, const struct h1_chunked_limits *lim)
{
    memset(c, 0, sizeof(*c));
    c->lim = *lim;
    c->state = S_SIZE_FIRST;
}

static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* One byte of a chunk-size line (states S_SIZE_FIRST..S_SIZE_LF): the next state, or
 * S_FAILED with c->error set. */
static int size_line_byte(struct h1_chunked *c, unsigned char b)
{
    int st = c->state;
    if (b == '\r' && (st == S_SIZE || st == S_EXT_NAME || st == S_EXT_TOKEN || st == S_EXT_QEND))
        return S_SIZE_LF;
    switch (st) {
    case S_SIZE_FIRST:
    case S_SIZE: {
        int v = h1_hex_value(b);
        if (v >= 0) {
            if (c->left > (UINT64_MAX >> 4))
                break;
            c->left = c->left << 4 | (uint64_t)v;
            return S_SIZE;
        }
        if (st == S_SIZE && h1_is_ows(b))
            return S_EXT_BWS;
        if (st == S_SIZE && b == ';')
            return S_EXT_NAME0;
        break;
    }
    case S_EXT_BWS:
        if (h1_is_ows(b))
            return st;
        if (b == ';')
            return S_EXT_NAME0;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_EXT_NAME0:
        if (h1_is_ows(b))
            return st;
        if (h1_is_tchar(b))
            return S_EXT_NAME;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_EXT_NAME:
    case S_EXT_NAME_BWS:
        if (st == S_EXT_NAME && h1_is_tchar(b))
            return st;
        if (h1_is_ows(b))
            return S_EXT_NAME_BWS;
        if (b == '=')
            return S_EXT_VAL0;
        if (b == ';')
            return S_EXT_NAME0;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_EXT_VAL0:
        if (h1_is_ows(b))
            return st;
        if (h1_is_tchar(b))
            return S_EXT_TOKEN;
        if (b == '"')
            return S_EXT_QUOTED;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_EXT_TOKEN:
    case S_EXT_QEND:
        if (st == S_EXT_TOKEN && h1_is_tchar(b))
            return st;
        if (h1_is_ows(b))
            return S_EXT_BWS;
        if (b == ';')
            return S_EXT_NAME0;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_EXT_QUOTED:
        if (b == '"')
            return S_EXT_QEND;
        if (b == '\\')
            return S_EXT_QPAIR;
        if (is_qdtext(b))
            return st;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_EXT_QPAIR:
        if (b == '\t' || (b >= 0x20 && b != 0x7f))
            return S_EXT_QUOTED;
        c->error = H1_E_CHUNK_EXT;
        return S_FAILED;
    case S_SIZE_LF:
        if (b == '\n')
            return S_DATA; /* the caller turns a zero size into the trailer section */
        break;
    }
    c->error = H1_E_CHUNK_SIZE;
    return S_FAILED;
}

/* One byte of the trailer section (states S_TR_START..S_END_LF). */
static int trailer_byte(struct h1_chunked *c, unsigned char b)
{
    switch (c->state) {
    case S_TR_START:
        if (b == '\r')
            return S_END_LF;
        if (h1_is_tchar(b)) {
            if (++c->trailers > c->lim.max_trailers) {
                c->error = H1_E_TRAILER_TOO_LARGE;
                return S_FAILED;
            }
            return S_TR_NAME;
        }
        break; /* obs-fold, empty name, bare LF, junk */
    case S_TR_NAME:
        if (h1_is_tchar(b))
            return S_TR_NAME;
        if (b == ':')
            return S_TR_VALUE;
        break;
    case S_TR_VALUE:
        if (b == '\r')
            return S_TR_LF;
        if (h1_is_value_char(b))
            return S_TR_VALUE;
        break;
    case S_TR_LF:
        if (b == '\n')
            return S_TR_START;
        break;
    case S_END_LF:
        if (b == '\n')
            return S_DONE;
        break;
    }
    c->error = H1_E_TRAILER;
    return S_FAILED;
}

/* Fails the body at the current byte. */
static void refuse(struct h1_chunked *c, enum h1_error e)
{
    c->error = e;
    c->state = S_FAILED;
}

long h1_chunked_feed(struct h1_chunked *c, const char *buf, size_t len)
{
    if (c->state == S_DONE)
        return 0;
    if (c->state == S_FAILED)
        return H1_ERROR;
    size_t i = 0;
    while (i < len && c->state != S_DONE && c->state != S_FAILED) {
        unsigned char b = (unsigned char)buf[i];
        int st = c->state, next;
        if (st == S_DATA) {
            size_t n = len - i;
            if (n > c->left)
                n = (size_t)c->left;
            i += n;
            c->left -= n;
            c->data += n;
            c->safe = c->consumed + i;
            if (c->left == 0)
                c->state = S_DATA_CR;
            continue;
        }
        if (st == S_DATA_CR || st == S_DATA_LF) {
            if (b != (st == S_DATA_CR ? '\r' : '\n')) {
                refuse(c, H1_E_CHUNK_DATA_END);
                break;
            }
            i++;
            if (st == S_DATA_LF)
                c->safe = c->consumed + i;
            c->state = st == S_DATA_CR ? S_DATA_LF : S_SIZE_FIRST;
            continue;
        }
        if (st <= S_SIZE_LF) {
            if (++c->line > c->lim.max_line) {
                refuse(c, H1_E_CHUNK_LINE);
                break;
            }
            next = size_line_byte(c, b);
            if (next == S_FAILED) {
                c->state = S_FAILED;
                break;
            }
            if (st == S_SIZE_LF) { /* the line is complete: its size decides */
                if (c->left > UINT64_MAX - c->data) {
                    refuse(c, H1_E_CHUNK_SIZE);
                    break;
                }
                if (c->lim.max_body && c->data + c->left > c->lim.max_body) {
                    refuse(c, H1_E_BODY_TOO_LARGE);
                    break;
                }
                next = c->left ? S_DATA : S_TR_START;
                c->line = 0;
                c->safe = c->consumed + i + 1;
            }
            c->state = next;
            i++;
            continue;
        }
        bool counted = st != S_END_LF && !(st == S_TR_START && b == '\r');
        if (counted && ++c->line > c->lim.max_trailer) {
            refuse(c, H1_E_TRAILER_TOO_LARGE);
            break;
        }
        next = trailer_byte(c, b);
        if (next == S_FAILED) {
            c->state = S_FAILED;
            break;
        }
        c->state = next;
        i++;
        if (st == S_TR_LF || st == S_END_LF)
            c->safe = c->consumed + i;
    }
    c->consumed += i;
    if (c->state == S_FAILED)
        return H1_ERROR;
    if (c->state == S_DONE)
        return (long)i;
    return H1_NEED_MORE;
}
