/* A non-blocking stream socket, plain or TLS, as every protocol's connections use it:
 * the fd registered with the loop, readiness flags, and the read/write/flush calls that
 * hide whether OpenSSL is in between (the nginx c->recv / c->send seam).
 *
 * Sockets are registered edge-triggered for input only (SOCK_EVENTS_IN), plus EPOLLOUT
 * while a write is blocked (sock_blocked) or a connect() is in progress: registered for
 * output all the time, every ACK of bytes sent would raise an edge and wake the worker
 * for nothing. `readable`/`writable` are set by events (sock_on_events) and cleared only
 * when a call answers EAGAIN. */
#ifndef SLUICE_PROXY_SOCK_H
#define SLUICE_PROXY_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include "core/loop.h"

typedef struct ssl_st SSL;
struct sock_mem;

#define SOCK_EVENTS_IN (EPOLLIN | EPOLLRDHUP | EPOLLET)

/* A read that must first write (or a write that must first read) on the same TLS socket,
 * e.g. session tickets still to be flushed: wait for the other kind of readiness. */
#define SOCK_WANTS_OTHER_IO (-EINPROGRESS)

struct sock {
    struct io_handler h; /* first: the epoll cookie; h.fd = -1 when closed */
    struct loop *loop;
    SSL *ssl;
    struct sock_mem *mem; /* an in-memory stream (proxy/sock_mem.h) instead of h.fd */
    /* one bit each: two sockets per connection, and every idle connection holds them */
    bool readable : 1, writable : 1;
    bool out_armed : 1;   /* EPOLLOUT is in the epoll interest set (see sock_blocked) */
    bool rdhup : 1;       /* epoll reported the peer's FIN: read until EOF after a short read */
    bool error_event : 1; /* epoll reported EPOLLERR/EPOLLHUP */
    bool eof : 1;         /* the peer sent FIN (or TLS close_notify) */
    bool shut : 1;        /* we sent FIN towards this peer */
    bool unflushed : 1;   /* TLS records accepted by SSL_write still in the write buffer */
    bool fin_pending : 1; /* FIN to send once those records are out */
};

/* Records the readiness an epoll event reports (an error or hang-up makes the socket
 * readable and writable, so that the next call reports it, and sets error_event, which
 * tells a pending connect() to ask SO_ERROR). */
void sock_on_events(struct sock *s, uint32_t events);

/* Reads up to len bytes. Returns >0 bytes, 0 on EOF (FIN, close_notify, or a TLS peer that
 * closed TCP without close_notify), -EAGAIN when nothing is available now,
 * SOCK_WANTS_OTHER_IO, -EPROTO on a TLS error (the reason stays in OpenSSL's error
 * queue), or another negative errno. */
ssize_t sock_read(struct sock *s, char *buf, size_t len);

/* Writes up to len bytes. With `coalesce` (a bulk batch, or the last bytes before a FIN)
 * a TLS socket's records gather in a write buffer that leaves in one write(); with `hold`
 * that buffer is not flushed here, so that the close_notify that follows joins it, and a
 * plain socket sends with MSG_MORE so that the FIN that follows joins the segment.
 * Returns >0 bytes written (for TLS: accepted, and on the socket unless s->unflushed),
 * -EAGAIN (s is then blocked, see sock_blocked), SOCK_WANTS_OTHER_IO or -errno. */
ssize_t sock_write(struct sock *s, const char *buf, size_t len, bool coalesce, bool hold);
/* Writes a[0, alen) then b[0, blen) with one send on a plain socket (a head and the
 * first body bytes leave in one segment); on TLS, a then, once a is all out, b. Returns
 * the bytes written from the front of a+b, or what sock_write returns on failure. */
ssize_t sock_write2(struct sock *s, const char *a, size_t alen, const char *b, size_t blen);

/* Flushes TLS records still buffered, then sends a FIN that waited for them. Returns 1
 * when none are left, 0 when the socket is full (s is then blocked), or -errno. */
int sock_flush(struct sock *s);

/* s answered EAGAIN to a write: clears `writable` and, the first time, adds EPOLLOUT to
 * its interest. */
void sock_blocked(struct sock *s);
/* Adds or drops EPOLLOUT in s's interest (on: while a write or a connect waits). */
void sock_set_out(struct sock *s, bool on);

/* Frees s's TLS session. One whose handshake completed is marked cleanly shut down first
 * (as nginx does): OpenSSL otherwise drops it from the session cache when the peer's EOF
 * or a reset came first, and resumption quietly stops working. `notify` sends our
 * close_notify first (the stream ended normally), in the segment of the FIN that the
 * close() after it sends. */
void sock_free_ssl(struct sock *s, bool notify);

/* Makes the coming close() of s send an RST instead of a FIN (SO_LINGER 0): a reset on
 * one side is passed on as a reset to the other. */
/* True while s is open: a socket, or an in-memory stream. */
static inline bool sock_open(const struct sock *s)
{
    return s->h.fd >= 0 || s->mem != NULL;
}

void sock_reset_on_close(struct sock *s);

/* Closes s: its TLS session (see sock_free_ssl for `notify`), then the fd. Leaves
 * h.fd = -1 (closing the fd also drops it from epoll). Safe on a closed socket. An
 * in-memory stream is ended (reset when sock_reset_on_close came first) and detached. */
void sock_close(struct sock *s, bool notify);

#endif
