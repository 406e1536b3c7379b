/* One health check attempt (see probe_check.h): connect, PROXY LOCAL header, TLS handshake,
 * send/expect, each step driven by level-triggered epoll events on one socket, the whole
 * attempt bounded by one timer. */
#include "upstream/probe_check.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/proxy_proto.h"
#include "tls/tls_client.h"

enum pc_phase { PC_CONNECT, PC_TLS, PC_EXCHANGE };

struct probe_check {
    struct io_handler h; /* first: the epoll cookie is the check itself */
    struct timer timer;
    struct loop *loop;
    enum pc_phase phase;
    bool finished;
    uint64_t start_ms, timeout_ms;
    uint32_t events; /* currently registered */
    int pp_version;
    SSL *ssl;
    const char *send;
    size_t send_len, sent;
    const char *expect;
    size_t expect_len;
    char *in; /* PROBE_READ_CAP bytes, taken when the first reply byte is read */
    size_t in_len;
    char *req; /* http: the request (owned; send points at it) */
    const struct probe_http_expect *http_x;
    struct probe_http_eval *http; /* http: taken at the first response byte */
    probe_check_done_cb cb;
    void *arg;
};

/* strerror(err) with a lower-case first letter ("connection refused"). */
static void pc_errtext(int err, char *buf, size_t len)
{
    char tmp[128];
    const char *s = strerror_r(err, tmp, sizeof(tmp));
    snprintf(buf, len, "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
}

/* Frees everything the check holds. The object itself is freed at the end of the loop
 * turn, since an event for it may already have been fetched. */
static void pc_release(struct probe_check *c)
{
    c->finished = true;
    timer_cancel(c->loop, &c->timer);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->h.fd >= 0) {
        loop_del(c->loop, &c->h);
        close(c->h.fd);
        c->h.fd = -1;
    }
    free(c->in);
    c->in = NULL;
    free(c->req);
    c->req = NULL;
    free(c->http);
    c->http = NULL;
    if (loop_defer_free(c->loop, c) < 0) {
        /* out of memory: leaking one small object beats a use-after-free */
    }
}

__attribute__((format(printf, 3, 4))) static void pc_finish(struct probe_check *c, bool ok,
                                                            const char *fmt, ...)
{
    if (c->finished)
        return;
    char detail[PROBE_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    probe_check_done_cb cb = c->cb;
    void *arg = c->arg;
    pc_release(c);
    cb(arg, ok, detail);
}

static void pc_ok(struct probe_check *c)
{
    uint64_t ms = loop_now(c->loop) - c->start_ms;
    char status[32] = "";
    if (c->http)
        snprintf(status, sizeof(status), "status %d", c->http->status);
    if (c->ssl) {
        const char *version = SSL_get_version(c->ssl);
        (void)SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
        ERR_clear_error();
        pc_finish(c, true, "ok in %llu ms (%s%s%s)", (unsigned long long)ms, status,
                  status[0] ? ", " : "", version);
    } else if (status[0]) {
        pc_finish(c, true, "ok in %llu ms (%s)", (unsigned long long)ms, status);
    } else {
        pc_finish(c, true, "ok in %llu ms", (unsigned long long)ms);
    }
}

static void pc_want(struct probe_check *c, uint32_t events)
{
    if (c->events == events)
        return;
    if (loop_mod(c->loop, &c->h, events) < 0) {
        pc_finish(c, false, "epoll registration failed");
        return;
    }
    c->events = events;
}

/* Turns a failed SSL_* call into: -EAGAIN with *want set, 0 for a clean close, or -EIO
 * with a reason in err. */
static int pc_tls_result(struct probe_check *c, int ret, uint32_t *want, char *err, size_t len)
{
    int sys = errno;
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
        return -EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    long vr = SSL_get_verify_result(c->ssl);
    unsigned long ec = ERR_peek_last_error();
    if (vr != X509_V_OK) {
        snprintf(err, len, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else if (ec != 0) {
        const char *r = ERR_reason_error_string(ec);
        snprintf(err, len, "%s", r ? r : "TLS error");
    } else if (e == SSL_ERROR_SYSCALL && sys != 0 && ret < 0) {
        pc_errtext(sys, err, len);
    } else {
        snprintf(err, len, "connection closed by the server");
    }
    ERR_clear_error();
    return -EIO;
}

/* Writes up to len bytes: > 0 written, -EAGAIN (*want set) or -EIO (reason in err). */
static ssize_t pc_write(struct probe_check *c, const char *buf, size_t len, uint32_t *want,
                        char *err, size_t errlen)
{
    if (c->ssl) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len);
        if (n > 0)
            return n;
        int r = pc_tls_result(c, n, want, err, errlen);
        if (r == 0)
            snprintf(err, errlen, "connection closed by the server");
        return r == -EAGAIN ? -EAGAIN : -EIO;
    }
    ssize_t n = send(c->h.fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *want = EPOLLOUT;
        return -EAGAIN;
    }
    pc_errtext(errno, err, errlen);
    return -EIO;
}

/* Reads up to len bytes: > 0 read, 0 end of stream, -EAGAIN (*want set) or -EIO. */
static ssize_t pc_read(struct probe_check *c, char *buf, size_t len, uint32_t *want, char *err,
                       size_t errlen)
{
    if (c->ssl) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, (int)len);
        return n > 0 ? n : pc_tls_result(c, n, want, err, errlen);
    }
    ssize_t n = recv(c->h.fd, buf, len, 0);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *want = EPOLLIN;
        return -EAGAIN;
    }
    pc_errtext(errno, err, errlen);
    return -EIO;
}

static bool pc_matched(const struct probe_check *c)
{
    return memmem(c->in, c->in_len, c->expect, c->expect_len) != NULL;
}

/* http: reads the response until probe_http.h has a verdict. */
static void pc_http_read(struct probe_check *c)
{
    char err[96], detail[PROBE_DETAIL_MAX], buf[4096];
    uint32_t want = 0;
    for (;;) {
        enum probe_http_result r;
        ssize_t n = pc_read(c, buf, sizeof(buf), &want, err, sizeof(err));
        if (n == -EAGAIN) {
            pc_want(c, want);
            return;
        }
        if (n < 0) {
            pc_finish(c, false, "receive failed: %s", err);
            return;
        }
        /* the evaluator (about 84 KiB) only while a response is being read */
        if (!c->http) {
            if (!(c->http = malloc(sizeof(*c->http)))) {
                pc_finish(c, false, "out of memory");
                return;
            }
            probe_http_init(c->http, c->http_x);
        }
        if (n == 0)
            r = probe_http_eof(c->http, detail, sizeof(detail));
        else
            r = probe_http_feed(c->http, buf, (size_t)n, detail, sizeof(detail));
        if (r == PROBE_HTTP_OK) {
            pc_ok(c);
            return;
        }
        if (r == PROBE_HTTP_FAIL) {
            pc_finish(c, false, "%s", detail);
            return;
        }
    }
}

/* Sends what is left of `send`, then reads until `expect` shows up. */
static void pc_exchange(struct probe_check *c)
{
    char err[96], q[192];
    uint32_t want = 0;
    while (c->sent < c->send_len) {
        ssize_t n = pc_write(c, c->send + c->sent, c->send_len - c->sent, &want, err, sizeof(err));
        if (n == -EAGAIN) {
            pc_want(c, want);
            return;
        }
        if (n < 0) {
            pc_finish(c, false, "send failed: %s", err);
            return;
        }
        c->sent += (size_t)n;
    }
    if (c->http_x) {
        pc_http_read(c);
        return;
    }
    if (c->expect_len == 0) {
        pc_ok(c);
        return;
    }
    if (!c->in && !(c->in = malloc(PROBE_READ_CAP))) {
        pc_finish(c, false, "out of memory");
        return;
    }
    probe_quote(c->expect, c->expect_len, q, sizeof(q));
    for (;;) {
        ssize_t n =
            pc_read(c, c->in + c->in_len, PROBE_READ_CAP - c->in_len, &want, err, sizeof(err));
        if (n == -EAGAIN) {
            pc_want(c, want);
            return;
        }
        if (n == 0) {
            if (c->in_len == 0)
                pc_finish(c, false, "connection closed without a reply");
            else
                pc_finish(c, false, "reply did not contain '%s' (connection closed)", q);
            return;
        }
        if (n < 0) {
            pc_finish(c, false, "receive failed: %s", err);
            return;
        }
        c->in_len += (size_t)n;
        if (pc_matched(c)) {
            pc_ok(c);
            return;
        }
        if (c->in_len == PROBE_READ_CAP) {
            pc_finish(c, false, "reply did not contain '%s' (in the first %d bytes)", q,
                      PROBE_READ_CAP);
            return;
        }
    }
}

static void pc_begin_exchange(struct probe_check *c)
{
    if (c->send_len == 0 && c->expect_len == 0) {
        pc_ok(c);
        return;
    }
    c->phase = PC_EXCHANGE;
    pc_exchange(c);
}

static void pc_handshake(struct probe_check *c)
{
    char err[128];
    uint32_t want = 0;
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        pc_begin_exchange(c);
        return;
    }
    int r = pc_tls_result(c, ret, &want, err, sizeof(err));
    if (r == -EAGAIN)
        pc_want(c, want);
    else if (r == 0)
        pc_finish(c, false, "TLS handshake failed: connection closed by the server");
    else
        pc_finish(c, false, "TLS handshake failed: %s", err);
}

/* The connection is established: PROXY header first, then TLS or the exchange. */
static void pc_connected(struct probe_check *c)
{
    if (c->pp_version) {
        uint8_t hdr[32];
        int n = pp_build_local(c->pp_version, hdr, sizeof(hdr));
        if (n < 0 || send(c->h.fd, hdr, (size_t)n, MSG_NOSIGNAL) != n) {
            pc_finish(c, false, "cannot send PROXY header");
            return;
        }
    }
    if (c->ssl) {
        c->phase = PC_TLS;
        pc_handshake(c);
    } else {
        pc_begin_exchange(c);
    }
}

static void pc_on_io(struct loop *l, struct io_handler *h, uint32_t events)
{
    (void)l;
    struct probe_check *c = (struct probe_check *)h;
    if (c->finished)
        return;
    switch (c->phase) {
    case PC_CONNECT: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0 && !(events & EPOLLOUT))
            err = (events & (EPOLLERR | EPOLLHUP)) ? ECONNABORTED : 0;
        if (err) {
            char text[96];
            pc_errtext(err, text, sizeof(text));
            pc_finish(c, false, "%s", text);
            return;
        }
        if (events & EPOLLOUT)
            pc_connected(c);
        return;
    }
    case PC_TLS:
        pc_handshake(c);
        return;
    case PC_EXCHANGE:
        pc_exchange(c);
        return;
    }
}

static void pc_on_timeout(struct loop *l, struct timer *t)
{
    (void)l;
    struct probe_check *c = (struct probe_check *)((char *)t - offsetof(struct probe_check, timer));
    unsigned long long ms = (unsigned long long)c->timeout_ms;
    char q[192];
    switch (c->phase) {
    case PC_CONNECT:
        pc_finish(c, false, "connect timeout after %llu ms", ms);
        return;
    case PC_TLS:
        pc_finish(c, false, "TLS handshake timeout after %llu ms", ms);
        return;
    case PC_EXCHANGE:
        if (c->sent < c->send_len) {
            pc_finish(c, false, "send timeout after %llu ms", ms);
        } else if (c->http_x) {
            if (!c->http || c->http->got == 0)
                pc_finish(c, false, "timeout after %llu ms waiting for a response", ms);
            else if (!c->http->in_body)
                pc_finish(c, false, "timeout after %llu ms reading the response head", ms);
            else
                pc_finish(c, false, "timeout after %llu ms reading the body (status %d)", ms,
                          c->http->status);
        } else if (c->in_len == 0) {
            pc_finish(c, false, "timeout after %llu ms waiting for a reply", ms);
        } else {
            probe_quote(c->expect, c->expect_len, q, sizeof(q));
            pc_finish(c, false, "reply did not contain '%s' (timeout after %llu ms)", q, ms);
        }
        return;
    }
}

/* http: the GET request, into c->req, and the exchange set up to send it. */
static int pc_build_request(struct probe_check *c, const char *path, const char *host)
{
    static const char fmt[] = "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: sluice-health\r\n"
                              "Connection: close\r\n\r\n";
    bool v6 = host && strchr(host, ':') && host[0] != '[';
    if (!path || !*path)
        path = "/";
    if (!host)
        host = "";
    int n = asprintf(&c->req, fmt, path, v6 ? "[" : "", host, v6 ? "]" : "");
    if (n < 0) {
        c->req = NULL;
        return -ENOMEM;
    }
    c->send = c->req;
    c->send_len = (size_t)n;
    c->expect = NULL;
    c->expect_len = 0;
    return 0;
}

int probe_check_start(struct loop *loop, const struct probe_check_params *prm,
                      probe_check_done_cb cb, void *arg, struct probe_check **out, char *detail,
                      size_t detail_len)
{
    int rc;
    struct probe_check *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(detail, detail_len, "out of memory");
        return -ENOMEM;
    }
    c->h.fd = -1;
    c->h.cb = pc_on_io;
    c->loop = loop;
    c->phase = PC_CONNECT;
    c->start_ms = loop_now(loop);
    c->timeout_ms = prm->timeout_ms;
    c->pp_version = prm->pp_version;
    c->send = prm->send;
    c->send_len = prm->send ? prm->send_len : 0;
    c->expect = prm->expect;
    c->expect_len = prm->expect ? strlen(prm->expect) : 0;
    c->cb = cb;
    c->arg = arg;
    if (prm->http) {
        c->http_x = prm->http;
        rc = pc_build_request(c, prm->http_path, prm->http_host);
        if (rc < 0) {
            snprintf(detail, detail_len, "out of memory");
            goto fail;
        }
    }
    timer_init(&c->timer, pc_on_timeout);
    if (prm->tls) {
        c->ssl = prm->tls_sni ? tls_client_ssl_new_sni(prm->tls, prm->tls_host, prm->tls_sni)
                              : tls_client_ssl_new(prm->tls, prm->tls_host);
        if (!c->ssl) {
            snprintf(detail, detail_len, "cannot create a TLS session");
            rc = -ENOMEM;
            goto fail;
        }
    }
    c->h.fd = socket(prm->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->h.fd < 0) {
        rc = -errno;
        pc_errtext(errno, detail, detail_len);
        goto fail;
    }
    int one = 1;
    (void)setsockopt(c->h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->h.fd, prm->addr, prm->addr_len) < 0 && errno != EINPROGRESS) {
        rc = -errno;
        pc_errtext(errno, detail, detail_len);
        goto fail;
    }
    if (c->ssl && SSL_set_fd(c->ssl, c->h.fd) != 1) {
        ERR_clear_error();
        snprintf(detail, detail_len, "cannot attach the TLS session");
        rc = -ENOMEM;
        goto fail;
    }
    c->events = EPOLLOUT;
    rc = loop_add(loop, &c->h, c->events);
    if (rc < 0) {
        snprintf(detail, detail_len, "epoll registration failed");
        goto fail;
    }
    rc = timer_arm(loop, &c->timer, loop_now(loop) + prm->timeout_ms);
    if (rc < 0) {
        loop_del(loop, &c->h);
        snprintf(detail, detail_len, "out of memory");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    /* never registered (or just removed): nothing can refer to c, free it now */
    SSL_free(c->ssl);
    if (c->h.fd >= 0)
        close(c->h.fd);
    free(c->req);
    free(c);
    return rc;
}

void probe_check_cancel(struct probe_check *c)
{
    if (c && !c->finished)
        pc_release(c);
}
