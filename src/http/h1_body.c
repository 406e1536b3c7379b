/* Forwarding the body bytes that sit in a buffer: those read with a head (the start of a
 * request body after the request head, of a response body after the response head) and
 * chunked bodies, which always go through a buffer so that h1_chunked validates every
 * byte before it leaves (chunk data as it arrives, each framing line once complete). The
 * framing is forwarded verbatim: no re-chunking, no copy beyond the one buffer.
 * Content-Length bodies past their first buffer go through the pump (h1_upstream.c). */
#include <errno.h>
#include <string.h>

#include "http/h1_conn.h"

/* Trailer limits of chunked bodies: what a server or client may send after the last
 * chunk (forwarded verbatim). */
#define TRAILER_MAX_BYTES 8192
#define TRAILER_MAX_FIELDS 64

void h1_body_init(struct h1_bodyfwd *b, enum h1_body kind, uint64_t length, uint64_t max_body)
{
    memset(b, 0, sizeof(*b));
    b->kind = kind;
    if (kind == H1_BODY_LENGTH) {
        b->left = length;
        b->done = length == 0;
    } else if (kind == H1_BODY_CHUNKED) {
        struct h1_chunked_limits lim = {H1_CHUNK_LINE_MAX, TRAILER_MAX_BYTES, TRAILER_MAX_FIELDS,
                                        max_body};
        h1_chunked_init(&b->ck, &lim);
    } else if (kind == H1_BODY_NONE) {
        b->done = true;
    }
}

/* Bytes at the front of s that may be written now (*n); -1 on a framing error. The span
 * starts at body stream offset b->sent. */
static int sendable(struct h1_bodyfwd *b, struct h1_span *s, size_t *n)
{
    size_t avail = s->len - s->off;
    switch (b->kind) {
    case H1_BODY_LENGTH:
        *n = b->left < avail ? (size_t)b->left : avail;
        return 0;
    case H1_BODY_CHUNKED:
        if (!b->ended) {
            size_t fed = (size_t)(b->ck.consumed - b->sent);
            if (fed < avail) {
                long r = h1_chunked_feed(&b->ck, s->buf + s->off + fed, avail - fed);
                if (r == H1_ERROR)
                    return -1;
                if (r >= 0)
                    b->ended = true;
            }
        }
        *n = (size_t)(b->ck.safe - b->sent);
        return 0;
    default:
        *n = avail;
        return 0;
    }
}

static bool finished(struct h1_bodyfwd *b)
{
    if (b->kind == H1_BODY_LENGTH && b->left == 0)
        b->done = true;
    if (b->kind == H1_BODY_CHUNKED && b->ended && b->sent == b->ck.consumed)
        b->done = true;
    return b->done;
}

int h1_body_from_span(struct h1_bodyfwd *b, struct h1_span *s, struct sock *dst,
                      uint64_t *sent_bytes, int *werr)
{
    for (;;) {
        if (finished(b))
            return 1;
        size_t n;
        if (sendable(b, s, &n) < 0)
            return -1;
        if (n == 0 || !dst->writable)
            return finished(b) ? 1 : 0;
        ssize_t w = sock_write(dst, s->buf + s->off, n, false, false);
        if (w == -EAGAIN) {
            sock_blocked(dst);
            return 0;
        }
        if (w <= 0) {
            *werr = w < 0 ? (int)w : -EIO;
            return -2;
        }
        s->off += (uint32_t)w;
        *sent_bytes += (uint64_t)w;
        if (b->kind == H1_BODY_LENGTH)
            b->left -= (uint64_t)w;
        else if (b->kind == H1_BODY_CHUNKED)
            b->sent += (uint64_t)w;
    }
}

int h1_head_and_body(struct h1_bodyfwd *b, struct h1_span *head, struct h1_span *s,
                     struct sock *dst, uint64_t *head_bytes, uint64_t *body_bytes)
{
    while (head->off < head->len) {
        if (!dst->writable)
            return 0;
        size_t n = 0;
        if (s->off < s->len && !finished(b) && sendable(b, s, &n) < 0)
            return -1;
        size_t hlen = head->len - head->off;
        ssize_t w = sock_write2(dst, head->buf + head->off, hlen, n ? s->buf + s->off : NULL, n);
        if (w == -EAGAIN) {
            sock_blocked(dst);
            return 0;
        }
        if (w <= 0)
            return -2;
        size_t from_head = (size_t)w < hlen ? (size_t)w : hlen;
        head->off += (uint32_t)from_head;
        size_t body = (size_t)w - from_head;
        if (head_bytes)
            *head_bytes += from_head;
        *body_bytes += body;
        s->off += (uint32_t)body;
        if (b->kind == H1_BODY_LENGTH)
            b->left -= (uint64_t)body;
        else if (b->kind == H1_BODY_CHUNKED)
            b->sent += (uint64_t)body;
    }
    return 1;
}
