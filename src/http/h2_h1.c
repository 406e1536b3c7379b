#include "http/h2_h1.h"

#include <string.h>
#include <strings.h>

bool h2_h1_hop_by_hop(const struct h1_str n)
{
    static const char *const hop[] = {"connection",        "keep-alive", "proxy-connection",
                                      "transfer-encoding", "upgrade",    "te"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (n.len == strlen(hop[i]) && strncasecmp(n.p, hop[i], n.len) == 0)
            return true;
    return false;
}

size_t h2_h1_to_nv(const struct h1_header *fields, size_t n, nghttp2_nv *nv, size_t max, char *lc,
                   size_t lc_cap, bool websocket)
{
    size_t k = 0, used = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        const struct h1_header *f = &fields[i];
        if (h2_h1_hop_by_hop(f->name))
            continue;
        if (websocket && f->name.len == 20 &&
            strncasecmp(f->name.p, "sec-websocket-accept", 20) == 0)
            continue;
        if (used + f->name.len > lc_cap)
            break;
        for (size_t j = 0; j < f->name.len; j++) {
            char ch = f->name.p[j];
            lc[used + j] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        nv[k++] = (nghttp2_nv){(uint8_t *)lc + used, (uint8_t *)f->value.p, f->name.len,
                               f->value.len, NGHTTP2_NV_FLAG_NONE};
        used += f->name.len;
    }
    return k;
}

int h2_h1_chunk_size(const char *p, const char *eol, uint64_t *size)
{
    *size = 0;
    for (const char *q = p; q < eol && *q != ';' && *q != ' ' && *q != '\t'; q++) {
        int d = *q >= '0' && *q <= '9'   ? *q - '0'
                : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
                                         : -1;
        if (d < 0 || *size >> 60)
            return -1;
        *size = *size * 16 + (uint64_t)d;
    }
    return 0;
}

/* Parses the trailer lines at p[0..n) (ending with the empty line) and submits them. */
static int submit_trailers(nghttp2_session *s, int32_t id, const char *p, size_t n)
{
    struct h1_header fields[H2_H1_FIELDS];
    size_t k = 0;
    for (size_t at = 0; at < n && k < H2_H1_FIELDS;) {
        const char *eol = memmem(p + at, n - at, "\r\n", 2);
        if (!eol || eol == p + at)
            break;
        const char *colon = memchr(p + at, ':', (size_t)(eol - (p + at)));
        if (colon) {
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            fields[k++] =
                (struct h1_header){{p + at, (size_t)(colon - (p + at))}, {v, (size_t)(e - v)}};
        }
        at = (size_t)(eol - p) + 2;
    }
    if (k == 0)
        return 0;
    nghttp2_nv nv[H2_H1_FIELDS];
    char lc[8192];
    size_t m = h2_h1_to_nv(fields, k, nv, H2_H1_FIELDS, lc, sizeof(lc), false);
    return m ? nghttp2_submit_trailer(s, id, nv, m) : 0;
}

ssize_t h2_h1_dechunk(struct h2_h1_dechunk *d, struct sock_mem_buf *o, nghttp2_session *s,
                      int32_t id, uint8_t *buf, size_t length, bool *ended, bool *trailers)
{
    size_t w = 0;
    while (w < length && sock_mem_pending(o) > 0) {
        const char *p = o->p + o->off;
        size_t have = sock_mem_pending(o);
        if (d->st == H2C_SIZE) {
            const char *eol = memmem(p, have, "\r\n", 2);
            if (!eol)
                break;
            uint64_t size;
            if (h2_h1_chunk_size(p, eol, &size) < 0)
                return -1;
            sock_mem_consume(o, (size_t)(eol - p) + 2);
            d->left = size;
            d->st = size ? H2C_DATA : H2C_TRAILER;
        } else if (d->st == H2C_DATA) {
            size_t n = have < d->left ? have : (size_t)d->left;
            if (n > length - w)
                n = length - w;
            memcpy(buf + w, p, n);
            w += n;
            d->left -= n;
            sock_mem_consume(o, n);
            if (d->left == 0)
                d->st = H2C_DATA_END;
        } else if (d->st == H2C_DATA_END) {
            if (have < 2)
                break;
            if (p[0] != '\r' || p[1] != '\n')
                return -1;
            sock_mem_consume(o, 2);
            d->st = H2C_SIZE;
        } else { /* the trailer section, up to and with its empty line */
            size_t end;
            if (have >= 2 && p[0] == '\r' && p[1] == '\n') {
                end = 2;
            } else {
                const char *e = memmem(p, have, "\r\n\r\n", 4);
                if (!e)
                    break;
                end = (size_t)(e - p) + 4;
                if (submit_trailers(s, id, p, end) != 0)
                    return -1;
                *trailers = true;
            }
            sock_mem_consume(o, end);
            *ended = true;
            return (ssize_t)w;
        }
    }
    return (ssize_t)w;
}

ssize_t h2_h1_body_read(struct h2_h1_body *b, struct sock_mem *m, nghttp2_session *s, int32_t id,
                        uint8_t *buf, size_t length, uint32_t *flags, bool *deferred, bool *ended)
{
    struct sock_mem_buf *o = &m->out;
    if (m->out_reset)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ssize_t w;
    bool trailers = false;
    *ended = false;
    if (b->kind == H1_BODY_CHUNKED) {
        w = h2_h1_dechunk(&b->dc, o, s, id, buf, length, ended, &trailers);
        if (w < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    } else {
        size_t n = sock_mem_pending(o);
        if (b->kind == H1_BODY_LENGTH && n > b->left)
            n = (size_t)b->left;
        if (n > length)
            n = length;
        if (n) {
            memcpy(buf, o->p + o->off, n);
            sock_mem_consume(o, n);
        }
        w = (ssize_t)n;
        if (b->kind == H1_BODY_LENGTH) {
            b->left -= n;
            *ended = b->left == 0;
        } else {
            *ended = m->out_eof && sock_mem_pending(o) == 0;
        }
    }
    if (!*ended && w == 0) {
        if (m->out_eof) /* no more will come: the engine gave up mid-body */
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        *deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (*ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (trailers)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return w;
}
