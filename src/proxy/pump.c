#include "proxy/pump.h"
#include "proxy/sock_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/tls_io.h"

#define COPY_BUF_SIZE (16 * 1024)
/* A bulk direction with TLS on either side (one that filled the 16 KiB buffer) copies
 * through a bigger one: several decrypted records leave in one send(), a plain source is
 * read in fewer calls, and a TLS source's read-ahead buffer grows to the same size so
 * that one read() fetches several records. Short exchanges never pay for it. */
#define TLS_COPY_BUF_SIZE (64 * 1024)

void pump_release(struct pipe_pool *pipes, struct pump_dir *d)
{
    if (d->has_pipe) {
        if (d->pending == 0)
            pipe_pool_put(pipes, d->pipe);
        else
            pipe_pool_discard(pipes, d->pipe);
        d->has_pipe = false;
    }
    free(d->buf);
    d->buf = NULL;
    d->off = d->len = 0;
    d->pending = 0;
}

static void count_read(struct pump_ctx *x, struct pump_dir *d, size_t n)
{
    if (x->src_bytes)
        *x->src_bytes += n;
    if (d->limited)
        d->budget -= n;
    *x->last_io_ms = x->now;
}

static void count_write(struct pump_ctx *x, size_t n)
{
    if (x->dst_bytes)
        *x->dst_bytes += n;
    *x->last_io_ms = x->now;
}

/* Bytes the next read may take: `room`, or less when a budget is nearly used up. */
static size_t read_cap(const struct pump_dir *d, size_t room)
{
    return d->limited && d->budget < room ? (size_t)d->budget : room;
}

/* True when the source has nothing more to give this direction: EOF, or budget used. */
static bool src_done(const struct pump_dir *d, const struct sock *src)
{
    return src->eof || (d->limited && d->budget == 0);
}

/* Splice path for one direction. */
static enum pump_result pump_splice(struct pump_ctx *x, struct pump_dir *d, struct sock *src,
                                    struct sock *dst, int *err)
{
    struct pipe_pool *pool = x->pipes;
    for (;;) {
        bool progress = false;
        if (!src_done(d, src) && src->readable && d->pending < pool->capacity) {
            if (!d->has_pipe) {
                int r = pipe_pool_get(pool, &d->pipe);
                if (r < 0) {
                    *err = r;
                    return PUMP_SRC_ERR;
                }
                d->has_pipe = true;
            }
            ssize_t n =
                splice(src->h.fd, NULL, d->pipe.wfd, NULL, read_cap(d, pool->capacity - d->pending),
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->pending += (uint32_t)n;
                count_read(x, d, (size_t)n);
                progress = true;
            } else if (n == 0) {
                src->eof = true;
                progress = true;
            } else if (errno == EAGAIN) {
                /* With bytes in the pipe this may mean "pipe full", not "socket empty". */
                if (d->pending == 0)
                    src->readable = false;
            } else if (errno != EINTR) {
                *err = -errno;
                return PUMP_SRC_ERR;
            }
        }
        if (d->pending > 0 && dst->writable) {
            ssize_t n = splice(d->pipe.rfd, NULL, dst->h.fd, NULL, d->pending,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->pending -= (uint32_t)n;
                count_write(x, (size_t)n);
                progress = true;
            } else if (n < 0 && errno == EAGAIN) {
                sock_blocked(dst);
            } else if (n < 0 && errno != EINTR) {
                *err = -errno;
                return PUMP_DST_ERR;
            }
        }
        if (!progress)
            break;
    }
    if (d->has_pipe && d->pending == 0) {
        pipe_pool_put(pool, d->pipe);
        d->has_pipe = false;
    }
    return PUMP_OK;
}

/* Moves direction d (TLS on a side, bulk seen) to the big buffer (and so a TLS
 * destination to coalesced writes). Returns 0 or -ENOMEM. */
static int grow_buffer(struct pump_dir *d, struct sock *src)
{
    char *bigger = realloc(d->buf, TLS_COPY_BUF_SIZE);
    if (!bigger)
        return -ENOMEM;
    d->buf = bigger;
    d->big = true;
    if (src->ssl)
        SSL_set_default_read_buffer_len(src->ssl, TLS_COPY_BUF_SIZE);
    return 0;
}

/* Reads from src into d's buffer until the buffer is full or src has nothing more now
 * (so that several TLS records leave in one write). Sets *progress when it read bytes or
 * saw EOF. Returns 0, or a negative errno. */
static int fill_buffer(struct pump_ctx *x, struct pump_dir *d, struct sock *src, struct sock *dst,
                       bool *progress)
{
    size_t size = d->big ? TLS_COPY_BUF_SIZE : COPY_BUF_SIZE;
    while (!src_done(d, src) && src->readable && d->len < size && !d->spliced) {
        if (!d->buf) {
            d->buf = malloc(size);
            if (!d->buf)
                return -ENOMEM;
            d->off = d->len = 0;
        }
        if (d->len == 0)
            d->off = 0;
        size_t room = size - d->off - d->len;
        if (room == 0) {
            memmove(d->buf, d->buf + d->off, d->len);
            d->off = 0;
            room = size - d->len;
        }
        size_t want = read_cap(d, room);
        ssize_t n = sock_read(src, d->buf + d->off + d->len, want);
        if (n > 0) {
            d->len += (uint32_t)n;
            d->pending = d->len;
            count_read(x, d, (size_t)n);
            *progress = true;
            if (!src->ssl && (size_t)n < want && !src->rdhup)
                src->readable = false; /* drained; the next bytes raise a new edge */
            if (*x->use_splice && d->len == COPY_BUF_SIZE)
                d->spliced = true; /* bulk: splice once this buffer is written out */
            if (!d->big && (src->ssl || dst->ssl) && d->len == COPY_BUF_SIZE) {
                int r = grow_buffer(d, src);
                if (r < 0)
                    return r;
                size = TLS_COPY_BUF_SIZE;
            }
        } else if (n == 0) {
            src->eof = true;
            *progress = true;
        } else if (n == -EAGAIN) {
            src->readable = false;
        } else if (n == SOCK_WANTS_OTHER_IO) {
            sock_blocked(src); /* bytes may sit in OpenSSL: keep `readable` */
            return 0;
        } else {
            return (int)n;
        }
    }
    return 0;
}

/* Copy path for one direction (TLS on either side, or splice unavailable). */
static enum pump_result pump_copy(struct pump_ctx *x, struct pump_dir *d, struct sock *src,
                                  struct sock *dst, bool hold_last, int *err)
{
    if (dst->unflushed && dst->writable) {
        int f = sock_flush(dst);
        if (f < 0) {
            *err = f;
            return PUMP_DST_ERR;
        }
    }
    for (;;) {
        bool progress = false;
        int r = fill_buffer(x, d, src, dst, &progress);
        if (r < 0) {
            *err = r;
            return PUMP_SRC_ERR;
        }
        if (d->len > 0 && dst->writable) {
            /* the source ended: these are the last bytes, close_notify follows */
            bool last = hold_last && src->eof && !dst->shut;
            ssize_t n = sock_write(dst, d->buf + d->off, d->len, d->big, last);
            if (n > 0) {
                d->off += (uint32_t)n;
                d->len -= (uint32_t)n;
                d->pending = d->len;
                count_write(x, (size_t)n);
                progress = true;
            } else if (n == -EAGAIN) {
                sock_blocked(dst);
            } else if (n == SOCK_WANTS_OTHER_IO) {
                dst->readable = false;
            } else {
                *err = (int)n;
                return PUMP_DST_ERR;
            }
        }
        if (!progress)
            break;
    }
    if (d->buf && d->len == 0) {
        free(d->buf);
        d->buf = NULL;
        d->off = 0;
    }
    return PUMP_OK;
}

void pump_forward_fin(struct pump_dir *d, struct sock *src, struct sock *dst)
{
    if (!src->eof || d->pending > 0 || dst->shut)
        return;
    dst->shut = true;
    if (dst->mem) {
        sock_mem_shut(dst->mem, false);
        return;
    }
    if (dst->ssl) {
        tls_sock_fin_follows(dst->ssl);
        SSL_shutdown(dst->ssl); /* appends the alert and flushes (OpenSSL does) */
        dst->unflushed = true;
        if (sock_flush(dst) == 0) {
            dst->fin_pending = true; /* side_flush sends it once the buffer is out */
            return;
        }
    }
    /* When the other direction already finished, both sockets are closed right after this
     * and close() sends the FIN: no shutdown() call needed. */
    if (!src->shut)
        shutdown(dst->h.fd, SHUT_WR);
}

enum pump_result pump_run(struct pump_ctx *x, struct pump_dir *d, struct sock *src,
                          struct sock *dst, bool hold_last, int *err)
{
    for (;;) {
        bool splice_path = *x->use_splice && d->spliced && !d->buf;
        enum pump_result r = splice_path ? pump_splice(x, d, src, dst, err)
                                         : pump_copy(x, d, src, dst, hold_last, err);
        if (r == PUMP_OK && !splice_path && *x->use_splice && d->spliced && !d->buf &&
            src->readable && !src_done(d, src))
            r = pump_splice(x, d, src, dst, err); /* the buffer just emptied: go on spliced */
        if (r != PUMP_OK && *err == -EINVAL && *x->use_splice && d->spliced) {
            /* splice() unsupported for this pair: fall back to copying */
            *x->use_splice = false;
            d->spliced = false;
            continue;
        }
        return r;
    }
}
