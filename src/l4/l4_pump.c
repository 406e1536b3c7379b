/* The byte pump: moves bytes between the client and server sockets with backpressure.
 *
 * Sockets are registered edge-triggered (for output only while a write is blocked, see
 * sock_blocked), so each side keeps `readable`/`writable` flags that are set by events
 * and cleared when a call answers EAGAIN, or, on a plain socket, when recv() returns less
 * than asked and epoll has not reported the peer's FIN (the socket was emptied; new bytes
 * bring a new edge). That saves one EAGAIN call per burst.
 *
 * Every direction starts on the copy path (recv/send through a 16 KiB buffer, 64 KiB for a
 * bulk flow with TLS on a side), cheapest for the small exchanges of short connections.
 * When a read fills the whole buffer on a plain TCP pair, the flow is bulk and the
 * direction moves to splice() through a pooled pipe (zero copy) for the rest of its life.
 * A direction holds at most one pipe or one buffer, taken when bytes arrive and given back
 * as soon as they are written out: an idle connection holds neither, and a slow reader
 * stops us reading from its peer once that one pipe/buffer is full, so memory per
 * connection is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/worker.h"
#include "l4/l4_conn.h"
#include "l4/l4_tls.h"
#include "tls/tls_io.h"

#define COPY_BUF_SIZE (16 * 1024)
/* A bulk direction with TLS on either side (one that filled the 16 KiB buffer) copies
 * through a bigger one: several decrypted records leave in one send(), a plain source is
 * read in fewer calls, and a TLS source's read-ahead buffer grows to the same size so
 * that one read() fetches several records. Short exchanges never pay for it. */
#define TLS_COPY_BUF_SIZE (64 * 1024)
enum pump_result { PUMP_OK, PUMP_SRC_ERR, PUMP_DST_ERR };

void l4_dir_release(struct l4_conn *c, struct l4_dir *d)
{
    if (d->has_pipe) {
        if (d->pending == 0)
            pipe_pool_put(c->conn.w->pipes, d->pipe);
        else
            pipe_pool_discard(c->conn.w->pipes, d->pipe);
        d->has_pipe = false;
    }
    free(d->buf);
    d->buf = NULL;
    d->off = d->len = 0;
    d->pending = 0;
}

static void count_read(struct l4_conn *c, struct sock *src, size_t n)
{
    if (src == &c->client)
        c->bytes_in += n;
    c->last_io_ms = loop_now(&c->conn.w->loop);
}

static void count_write(struct l4_conn *c, struct sock *dst, size_t n)
{
    if (dst == &c->client)
        c->bytes_out += n;
    c->last_io_ms = loop_now(&c->conn.w->loop);
}

/* Splice path for one direction. */
static enum pump_result pump_splice(struct l4_conn *c, struct l4_dir *d, struct sock *src,
                                    struct sock *dst, int *err)
{
    struct pipe_pool *pool = c->conn.w->pipes;
    for (;;) {
        bool progress = false;
        if (!src->eof && src->readable && d->pending < pool->capacity) {
            if (!d->has_pipe) {
                int r = pipe_pool_get(pool, &d->pipe);
                if (r < 0) {
                    *err = r;
                    return PUMP_SRC_ERR;
                }
                d->has_pipe = true;
            }
            ssize_t n = splice(src->h.fd, NULL, d->pipe.wfd, NULL, pool->capacity - d->pending,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->pending += (size_t)n;
                count_read(c, src, (size_t)n);
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
                d->pending -= (size_t)n;
                count_write(c, dst, (size_t)n);
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
static int grow_buffer(struct l4_dir *d, struct sock *src)
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
static int fill_buffer(struct l4_conn *c, struct l4_dir *d, struct sock *src, struct sock *dst,
                       bool *progress)
{
    size_t size = d->big ? TLS_COPY_BUF_SIZE : COPY_BUF_SIZE;
    while (!src->eof && src->readable && d->len < size && !d->spliced) {
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
        ssize_t n = sock_read(src, d->buf + d->off + d->len, room);
        if (n > 0) {
            d->len += (uint32_t)n;
            d->pending = d->len;
            count_read(c, src, (size_t)n);
            *progress = true;
            if (!src->ssl && (size_t)n < room && !src->rdhup)
                src->readable = false; /* drained; the next bytes raise a new edge */
            if (c->use_splice && d->len == COPY_BUF_SIZE)
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
static enum pump_result pump_copy(struct l4_conn *c, struct l4_dir *d, struct sock *src,
                                  struct sock *dst, int *err)
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
        int r = fill_buffer(c, d, src, dst, &progress);
        if (r < 0) {
            *err = r;
            return PUMP_SRC_ERR;
        }
        if (d->len > 0 && dst->writable) {
            /* the source ended: these are the last bytes, close_notify follows */
            bool last = src->eof && !dst->shut;
            ssize_t n = sock_write(dst, d->buf + d->off, d->len, d->big, last);
            if (n > 0) {
                d->off += (uint32_t)n;
                d->len -= (uint32_t)n;
                d->pending = d->len;
                count_write(c, dst, (size_t)n);
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

/* Sends FIN (and TLS close_notify) to `dst` once its source ended and all was written
 * (for TLS: accepted; the close_notify goes behind the records still buffered, often in
 * the same write, and the FIN waits until they are out). */
static void forward_fin(struct l4_dir *d, struct sock *src, struct sock *dst)
{
    if (!src->eof || d->pending > 0 || dst->shut)
        return;
    dst->shut = true;
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

static enum term reset_reason(int err, bool client_side)
{
    if (err == -ECONNRESET || err == -EPIPE)
        return client_side ? TERM_CLIENT_RESET : TERM_SERVER_RESET;
    return client_side ? TERM_CLIENT_ERROR : TERM_SERVER_ERROR;
}

/* Runs one direction; on failure closes the connection and returns 1. */
static int pump_dir(struct l4_conn *c, struct l4_dir *d, struct sock *src, struct sock *dst)
{
    int err = 0;
    enum pump_result r = c->use_splice && d->spliced && !d->buf ? pump_splice(c, d, src, dst, &err)
                                                                : pump_copy(c, d, src, dst, &err);
    if (r == PUMP_OK && c->use_splice && d->spliced && !d->buf && src->readable && !src->eof)
        r = pump_splice(c, d, src, dst, &err); /* the buffer just emptied: go on spliced */
    if (r == PUMP_OK) {
        if (src->eof && c->first_fin == TERM_NONE)
            c->first_fin = src == &c->client ? TERM_CLIENT_CLOSED : TERM_SERVER_CLOSED;
        forward_fin(d, src, dst);
        return 0;
    }
    struct sock *failed = r == PUMP_SRC_ERR ? src : dst;
    bool client_side = failed == &c->client;
    if (err == -EINVAL && c->use_splice && d->spliced) {
        /* splice() unsupported for this pair: fall back to copying. */
        c->use_splice = false;
        d->spliced = false;
        return pump_dir(c, d, src, dst);
    }
    c->error = err == -EPROTO && failed->ssl ? l4_tls_io_error(c, failed->ssl) : strerror(-err);
    /* A reset after that side already finished cleanly is the normal end of the flow. */
    if (c->first_fin != TERM_NONE &&
        ((client_side && c->client.eof) || (!client_side && c->srv.eof)))
        l4_conn_close(c, c->first_fin);
    else
        l4_conn_close(c, reset_reason(err, client_side));
    return 1;
}

int l4_pump(struct l4_conn *c)
{
    if (pump_dir(c, &c->up, &c->client, &c->srv))
        return 1;
    if (pump_dir(c, &c->down, &c->srv, &c->client))
        return 1;
    if (c->client.shut && c->srv.shut && !c->client.unflushed && !c->srv.unflushed) {
        l4_conn_close(c, c->first_fin != TERM_NONE ? c->first_fin : TERM_CLIENT_CLOSED);
        return 1;
    }
    return 0;
}
