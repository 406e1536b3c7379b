#include "http/h2_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX (64 * 1024)       /* output gathered before one write */
#define OUT_CAP (OUT_MAX + 16384) /* room for the frame that crosses OUT_MAX */
#define READ_CHUNK (16 * 1024)

/* Appends one frame (n bytes) to o, growing past OUT_CAP only for a frame that does not
 * fit. Returns 0 or -1 (out of memory). */
static int gather(struct h2_out *o, const uint8_t *data, size_t n, struct bufcache *bc)
{
    if (!o->buf) {
        o->buf = bufcache_get(bc, OUT_CAP);
        if (!o->buf)
            return -1;
        o->cap = OUT_CAP;
    }
    if (o->len + n > o->cap) { /* nghttp2 hands over whole frames: keep this one whole */
        char *bigger = realloc(o->buf, o->len + n);
        if (!bigger)
            return -1;
        o->buf = bigger;
        o->cap = o->len + n;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
    return 0;
}

enum h2_out_result h2_out_flush(struct h2_out *o, nghttp2_session *s, struct sock *sock,
                                struct bufcache *bc)
{
    for (;;) {
        while (o->off < o->len) {
            if (!sock->writable)
                return H2_OUT_BLOCKED;
            ssize_t n = sock_write(sock, o->buf + o->off, o->len - o->off, true, false);
            if (n == -EAGAIN) {
                sock_blocked(sock);
                return H2_OUT_BLOCKED;
            }
            if (n == SOCK_WANTS_OTHER_IO)
                return H2_OUT_BLOCKED;
            if (n < 0)
                return H2_OUT_WRITE_ERROR;
            o->off += (size_t)n;
        }
        o->off = o->len = 0;
        const uint8_t *data;
        ssize_t n;
        while (o->len < OUT_MAX && (n = nghttp2_session_mem_send(s, &data)) > 0)
            if (gather(o, data, (size_t)n, bc) < 0)
                return H2_OUT_NOMEM;
        if (o->len == 0)
            break;
    }
    if (sock->unflushed) { /* TLS records coalesced by the last write */
        int f = sock_flush(sock);
        if (f < 0)
            return H2_OUT_WRITE_ERROR;
        if (f == 0)
            return H2_OUT_BLOCKED;
    }
    h2_out_release(o, bc);
    return H2_OUT_DONE;
}

void h2_out_release(struct h2_out *o, struct bufcache *bc)
{
    if (o->buf)
        bufcache_put(bc, o->buf, o->cap);
    *o = (struct h2_out){0};
}

enum h2_in_result h2_in_read(nghttp2_session *s, struct sock *sock, int *err)
{
    char buf[READ_CHUNK];
    while (sock->readable && sock_open(sock)) {
        ssize_t n = sock_read(sock, buf, sizeof(buf));
        if (n == -EAGAIN || n == SOCK_WANTS_OTHER_IO) {
            sock->readable = false;
            break;
        }
        if (n <= 0)
            return n == 0 ? H2_IN_EOF : H2_IN_FAILED;
        ssize_t r = nghttp2_session_mem_recv(s, (const uint8_t *)buf, (size_t)n);
        if (r < 0) {
            *err = (int)r;
            return H2_IN_SESSION;
        }
    }
    return H2_IN_DRAINED;
}

void h2_io_options(nghttp2_option *opt)
{
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, H2_OUTBOUND_ACK_MAX);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
}
