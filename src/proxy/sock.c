#include "proxy/sock.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/sock_mem.h"
#include "tls/tls_io.h"

/* Room the records of `len` plaintext bytes need in a write buffer (tls_io.h): each 16 KiB
 * record adds a header, a tag and padding room (under 64 bytes), plus a close_notify. */
static size_t tls_records_size(size_t len)
{
    return len + (len / (16 * 1024) + 2) * 64;
}

void sock_on_events(struct sock *s, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->rdhup = true;
    if (events & (EPOLLHUP | EPOLLERR))
        s->error_event = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        s->writable = true;
}

ssize_t sock_read(struct sock *s, char *buf, size_t len)
{
    if (s->mem)
        return sock_mem_read(s->mem, buf, len);
    if (s->ssl) {
        size_t got = 0;
        int r = SSL_read_ex(s->ssl, buf, len, &got);
        if (r == 1)
            return (ssize_t)got;
        switch (SSL_get_error(s->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            return -EAGAIN;
        case SSL_ERROR_WANT_WRITE:
            return SOCK_WANTS_OTHER_IO;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        case SSL_ERROR_SYSCALL:
            return errno ? -errno : 0; /* EOF without close_notify: treat as FIN */
        case SSL_ERROR_SSL:
            /* A peer that closes TCP without close_notify ends its stream, like a FIN. */
            if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                ERR_clear_error();
                return 0;
            }
            return -EPROTO; /* the reason stays queued for the caller's log */
        default:
            return -EPROTO;
        }
    }
    for (;;) {
        ssize_t n = recv(s->h.fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int sock_flush(struct sock *s)
{
    if (!s->unflushed)
        return 1;
    int r = tls_flush(s->ssl);
    if (r == 0) {
        sock_blocked(s);
        return 0;
    }
    s->unflushed = false;
    if (s->fin_pending) {
        s->fin_pending = false;
        shutdown(s->h.fd, SHUT_WR);
    }
    return r;
}

ssize_t sock_write(struct sock *s, const char *buf, size_t len, bool coalesce, bool hold)
{
    if (s->mem)
        return sock_mem_write(s->mem, buf, len);
    if (s->ssl) {
        if ((coalesce || hold) && tls_buffer_writes(s->ssl, tls_records_size(len)) < 0)
            return -ENOMEM;
        /* With partial writes on, SSL_write_ex takes one record per call: loop so that
         * the records of the whole batch reach the write buffer before one flush. */
        size_t total = 0, put = 0;
        int r;
        while ((r = SSL_write_ex(s->ssl, buf + total, len - total, &put)) == 1) {
            total += put;
            if (total == len)
                break;
        }
        if (total > 0) {
            /* a failure after some records shows again on the next call, same bytes */
            s->unflushed = true; /* cheap to clear: tls_flush on an empty buffer */
            if (hold && total == len)
                return (ssize_t)total;
            int f = sock_flush(s);
            return f < 0 ? f : (ssize_t)total;
        }
        switch (SSL_get_error(s->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
            return -EAGAIN;
        case SSL_ERROR_WANT_READ:
            return SOCK_WANTS_OTHER_IO;
        case SSL_ERROR_SYSCALL:
            return errno ? -errno : -EPIPE;
        default:
            return -EPROTO;
        }
    }
    for (;;) {
        /* the last bytes: the FIN follows at once and joins their segment */
        ssize_t n = send(s->h.fd, buf, len, MSG_NOSIGNAL | (hold ? MSG_MORE : 0));
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

void sock_set_out(struct sock *s, bool on)
{
    if (s->mem) { /* the owner makes it writable again when `out` drains */
        s->out_armed = on;
        return;
    }
    int r = loop_mod(s->loop, &s->h, on ? SOCK_EVENTS_IN | EPOLLOUT : SOCK_EVENTS_IN);
    if (r < 0) {
        log_warn("epoll_ctl on fd %d failed: %s", s->h.fd, strerror(-r));
        return;
    }
    s->out_armed = on;
}

void sock_blocked(struct sock *s)
{
    s->writable = false;
    if (!s->out_armed)
        sock_set_out(s, true);
}

void sock_free_ssl(struct sock *s, bool notify)
{
    SSL *ssl = s->ssl;
    if (!ssl)
        return;
    if (SSL_is_init_finished(ssl)) {
        if (notify) {
            tls_sock_fin_follows(ssl); /* close() follows: alert and FIN in one segment */
            SSL_shutdown(ssl);
        }
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    SSL_free(ssl);
    s->ssl = NULL;
}

void sock_reset_on_close(struct sock *s)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (s->mem)
        s->mem->out_reset = true; /* sock_close reports it */
    else if (s->h.fd >= 0)
        setsockopt(s->h.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void sock_close(struct sock *s, bool notify)
{
    if (s->mem) {
        struct sock_mem *m = s->mem;
        s->mem = NULL;
        sock_mem_close(m, m->out_reset);
        return;
    }
    sock_free_ssl(s, notify);
    if (s->h.fd < 0)
        return;
    close(s->h.fd);
    s->h.fd = -1;
}

ssize_t sock_write2(struct sock *s, const char *a, size_t alen, const char *b, size_t blen)
{
    if (s->ssl && blen > 0 && alen + blen <= 16 * 1024) {
        /* one TLS record (and one send) for a head and a small body, not two */
        char one[16 * 1024];
        memcpy(one, a, alen);
        memcpy(one + alen, b, blen);
        return sock_write(s, one, alen + blen, false, false);
    }
    if (s->ssl || s->mem || blen == 0) {
        ssize_t n = sock_write(s, a, alen, false, false);
        if (n < (ssize_t)alen || blen == 0)
            return n;
        ssize_t m = sock_write(s, b, blen, false, false);
        return m > 0 ? n + m : n;
    }
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    for (;;) {
        ssize_t n = sendmsg(s->h.fd, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}
