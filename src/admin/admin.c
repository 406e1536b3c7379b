/* The admin HTTP/1.1 server: one listening socket and at most ADMIN_MAX_CONNS connections
 * on the main thread's loop (never on a worker), so admin traffic never competes with
 * proxied traffic and every handler may read the main thread's state directly.
 *
 * A connection reads one request at a time: the head (at most ADMIN_MAX_HEAD bytes), then
 * the body it announced (at most ADMIN_MAX_BODY), then writes the whole response before
 * reading the next request (keep-alive; pipelined bytes wait in the buffer). Deadlines:
 * a request must arrive completely within ADMIN_REQUEST_MS of its first byte (else 408),
 * an idle keep-alive connection is closed after ADMIN_IDLE_MS, a response must be taken
 * within ADMIN_WRITE_MS. After an error response the connection is closed "lingering":
 * our side is shut down and what the client still sends is read and dropped for a moment,
 * so the client sees the response rather than a reset. */
#include "admin/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin_http.h"
#include "core/control.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/accept.h"

#define ADMIN_MAX_CONNS 64
#define ADMIN_REFUSING_MAX 16 /* extra connections that get a 503 before being closed */
#define ADMIN_REQUEST_MS 10000
#define ADMIN_IDLE_MS 30000
#define ADMIN_WRITE_MS 10000
#define ADMIN_LINGER_MS 2000
#define ADMIN_TOKEN_MAX 4096

enum conn_state { AC_HEAD, AC_BODY, AC_WRITE, AC_LINGER };

struct admin_conn {
    struct io_handler io; /* first member: the epoll cookie */
    struct timer timer;
    struct admin *a;
    struct admin_conn *prev, *next;
    enum conn_state state;
    uint32_t events; /* registered with epoll now */
    char *in;        /* request bytes: head, body, then any pipelined bytes */
    size_t in_len, in_cap;
    size_t head_len; /* AC_BODY/AC_WRITE: head length of the current request */
    uint64_t body_len;
    bool keep_alive; /* read the next request after this response */
    bool pipelined;  /* the timer fires now to handle bytes already buffered */
    struct ah_request rq;
    struct strbuf out; /* response bytes not yet written from out_off */
    size_t out_off;
};

struct admin {
    struct control *control;
    struct io_handler listen; /* fd -1 when the admin server is off */
    struct accept_episode episode;
    struct timer resume; /* armed while accepting is paused (out of descriptors) */
    struct net_addr bind;
    struct ah_auth auth;
    struct admin_conn *conns;
    unsigned n_conns;
};

/* ---------------------------------------------------------------------------------- */
/* token file */

/* Reads and trims the token file into auth. Returns 0 or -1 with a reason in err. */
static int load_token(const char *path, struct ah_auth *auth, char *err, size_t errlen)
{
    char buf[ADMIN_TOKEN_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "admin.token_file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("admin.token_file %s is readable by every user (chmod 600 it)", path);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "admin.token_file %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0 || (n += (size_t)r) == sizeof(buf))
            break;
    }
    close(fd);
    if (n > ADMIN_TOKEN_MAX) {
        snprintf(err, errlen, "admin.token_file %s: longer than %d bytes", path, ADMIN_TOKEN_MAX);
        return -1;
    }
    size_t s = 0, e = n;
    while (s < e && strchr(" \t\r\n\v\f", buf[s]))
        s++;
    while (e > s && strchr(" \t\r\n\v\f", buf[e - 1]))
        e--;
    if (e == s) {
        snprintf(err, errlen, "admin.token_file %s: the file is empty", path);
        return -1;
    }
    unsigned int dlen = 0;
    if (!EVP_Digest(buf + s, e - s, auth->digest, &dlen, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "admin.token_file %s: cannot hash the token", path);
        return -1;
    }
    auth->required = true;
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* connections */

static void conn_close(struct admin_conn *c)
{
    struct admin *a = c->a;
    loop_del(&a->control->loop, &c->io);
    close(c->io.fd);
    timer_cancel(&a->control->loop, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    free(c->in);
    sb_free(&c->out);
    /* events for this connection may still be pending in this loop turn */
    if (loop_defer_free(&a->control->loop, c) < 0)
        log_error("admin: cannot defer a free: leaking one connection object");
}

static void conn_events(struct admin_conn *c, uint32_t events)
{
    if (c->events != events && loop_mod(&c->a->control->loop, &c->io, events) == 0)
        c->events = events;
}

static void conn_deadline(struct admin_conn *c, uint64_t ms)
{
    struct loop *l = &c->a->control->loop;
    timer_arm(l, &c->timer, loop_now(l) + ms);
}

static void conn_process(struct admin_conn *c);

/* Writes what is pending. Returns 0 when all is written, 1 when waiting for EPOLLOUT and
 * -1 when the connection was closed. */
static int conn_flush(struct admin_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->io.fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_events(c, EPOLLOUT);
            return 1;
        }
        conn_close(c);
        return -1;
    }
    sb_reset(&c->out);
    c->out_off = 0;
    return 0;
}

/* The response is out: read the next request, or close lingering. */
static void conn_done_writing(struct admin_conn *c)
{
    if (!c->keep_alive) {
        shutdown(c->io.fd, SHUT_WR);
        c->state = AC_LINGER;
        conn_events(c, EPOLLIN);
        conn_deadline(c, ADMIN_LINGER_MS);
        return;
    }
    size_t used = c->head_len + (size_t)c->body_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->head_len = 0;
    c->body_len = 0;
    c->state = AC_HEAD;
    conn_events(c, EPOLLIN);
    /* bytes of a next request are already here: handle them in the next loop turn (not
     * recursively: a client may pipeline hundreds of tiny requests) */
    c->pipelined = c->in_len > 0;
    conn_deadline(c, c->pipelined ? 0 : ADMIN_IDLE_MS);
}

/* Queues resp (head and, unless HEAD, body) and starts writing it. */
static void conn_respond(struct admin_conn *c, struct ah_response *resp, bool close)
{
    if (close)
        c->keep_alive = false;
    const char *body = resp->static_body ? resp->static_body : resp->body.data;
    size_t len = resp->static_body ? resp->static_len : resp->body.len;
    ah_write_head(&c->out, resp, len, !c->keep_alive);
    if (!c->rq.head_only && len)
        sb_append(&c->out, body, len);
    ah_response_free(resp);
    if (c->out.failed) {
        conn_close(c);
        return;
    }
    c->state = AC_WRITE;
    conn_deadline(c, ADMIN_WRITE_MS);
    if (conn_flush(c) == 0)
        conn_done_writing(c);
}

/* An error before the request was understood: answer and close. */
static void conn_fail(struct admin_conn *c, int status, const char *message)
{
    struct ah_response resp = {0};
    ah_error(&resp, status, "%s", message);
    c->rq.head_only = false;
    conn_respond(c, &resp, true);
}

/* Tells a client that sent "Expect: 100-continue" to go on with its body. Best effort:
 * the socket is empty at this point, and a client that misses it sends anyway. */
static void send_continue(struct admin_conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (send(c->io.fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("admin: cannot send 100 Continue: %s", strerror(errno));
}

/* The request head is complete in c->in[0..head_len): route it. */
static void conn_head(struct admin_conn *c, const struct h1_head *req)
{
    struct ah_response resp = {0};
    c->keep_alive = h1_keep_alive(req);
    int status = ah_begin(req, &c->a->auth, &c->rq, &c->body_len, &resp);
    if (status) {
        /* close unless no body follows: a refused body is never read */
        uint64_t len = 0;
        bool body_follows = ah_body_length(req, &len) != 0 || len > 0;
        c->body_len = 0;
        conn_respond(c, &resp, body_follows);
        return;
    }
    size_t need = c->head_len + (size_t)c->body_len;
    if (need > c->in_cap) {
        char *p = realloc(c->in, need);
        if (!p) {
            conn_fail(c, 503, "out of memory");
            return;
        }
        c->in = p;
        c->in_cap = need;
    }
    if (c->in_len < need && h1_header_has_token(req, "expect", "100-continue"))
        send_continue(c);
    c->state = AC_BODY;
}

/* Makes progress on the bytes in c->in: parses the head, then handles the request once
 * its body is complete. */
static void conn_process(struct admin_conn *c)
{
    if (c->pipelined) {
        c->pipelined = false;
        conn_deadline(c, ADMIN_REQUEST_MS);
    }
    if (c->state == AC_HEAD) {
        static const struct h1_limits limits = {ADMIN_MAX_HEAD, ADMIN_MAX_FIELDS};
        struct h1_header fields[ADMIN_MAX_FIELDS];
        struct h1_head req;
        h1_head_init(&req, fields, ADMIN_MAX_FIELDS);
        int r = h1_parse_request(c->in, c->in_len, &limits, &req);
        if (r == H1_NEED_MORE)
            return;
        if (r < 0) {
            int status = h1_error_status(req.error);
            conn_fail(c, status,
                      status == 414   ? "request line too long (at most 8 KiB)"
                      : status == 431 ? "request headers too large (at most 8 KiB, 64 lines)"
                      : status == 505 ? "only HTTP/1.0 and HTTP/1.1 are supported"
                                      : "malformed HTTP request");
            return;
        }
        c->head_len = (size_t)r;
        conn_head(c, &req);
        if (c->state != AC_BODY)
            return;
    }
    if (c->state == AC_BODY && c->in_len >= c->head_len + c->body_len) {
        struct ah_response resp = {0};
        ah_handle(c->a->control, &c->rq, c->in + c->head_len, (size_t)c->body_len, &resp);
        conn_respond(c, &resp, false);
    }
}

static void conn_read(struct admin_conn *c)
{
    char drop[4096];
    if (c->state == AC_LINGER) {
        ssize_t n = recv(c->io.fd, drop, sizeof(drop), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    size_t want = c->state == AC_HEAD ? ADMIN_MAX_HEAD : c->head_len + (size_t)c->body_len;
    if (want > c->in_cap)
        want = c->in_cap;
    if (c->in_len >= want) {
        /* pipelined bytes fill the buffer: stop reading until this request is done */
        conn_events(c, 0);
        return;
    }
    ssize_t n = recv(c->io.fd, c->in + c->in_len, want - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    if (c->in_len == 0)
        conn_deadline(c, ADMIN_REQUEST_MS); /* the request must be complete in time */
    c->in_len += (size_t)n;
    conn_process(c);
}

static void on_conn_io(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    struct admin_conn *c = (struct admin_conn *)h;
    if (c->state == AC_WRITE) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            conn_close(c);
            return;
        }
        if (conn_flush(c) == 0)
            conn_done_writing(c);
        return;
    }
    if (events & EPOLLERR) {
        conn_close(c);
        return;
    }
    conn_read(c);
}

static void on_conn_timer(struct loop *loop, struct timer *t)
{
    (void)loop;
    struct admin_conn *c = (struct admin_conn *)((char *)t - offsetof(struct admin_conn, timer));
    if (c->pipelined) {
        conn_process(c);
    } else if (c->state == AC_HEAD && c->in_len == 0) {
        conn_close(c); /* idle keep-alive connection */
    } else if (c->state == AC_HEAD || c->state == AC_BODY) {
        c->in_len = 0;
        c->body_len = 0;
        c->head_len = 0;
        conn_fail(c, 408, "request not received in time");
    } else {
        conn_close(c); /* the client does not read its response, or lingering is over */
    }
}

static void accept_one(struct admin *a, int fd)
{
    bool refuse = a->n_conns >= ADMIN_MAX_CONNS;
    if (a->n_conns >= ADMIN_MAX_CONNS + ADMIN_REFUSING_MAX) {
        close(fd); /* flooded: not even a 503 */
        return;
    }
    struct admin_conn *c = calloc(1, sizeof(*c));
    char *in = malloc(ADMIN_MAX_HEAD);
    if (!c || !in) {
        free(c);
        free(in);
        close(fd);
        return;
    }
    c->io.fd = fd;
    c->io.cb = on_conn_io;
    c->a = a;
    c->in = in;
    c->in_cap = ADMIN_MAX_HEAD;
    c->state = AC_HEAD;
    c->events = EPOLLIN;
    timer_init(&c->timer, on_conn_timer);
    if (loop_add(&a->control->loop, &c->io, EPOLLIN) < 0) {
        free(in);
        free(c);
        close(fd);
        return;
    }
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    conn_deadline(c, ADMIN_IDLE_MS);
    if (refuse) {
        /* answered and closed lingering like any error, so the client reads the 503
         * instead of a reset caused by its unread request */
        log_warn("admin: refused a connection: %d admin connections open", ADMIN_MAX_CONNS);
        conn_fail(c, 503, "too many admin connections (at most 64)");
    }
}

static void on_accept(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    (void)events;
    struct admin *a = (struct admin *)((char *)h - offsetof(struct admin, listen));
    for (int i = 0; i < 64; i++) {
        int fd;
        enum accept_status st = accept_next(h->fd, NULL, NULL, &fd, &a->episode, "admin", NULL);
        if (st == ACCEPT_SKIP)
            continue;
        if (st == ACCEPT_PAUSE) {
            /* level-triggered: stop polling, or the loop spins until a descriptor frees */
            loop_mod(&a->control->loop, &a->listen, 0);
            timer_arm(&a->control->loop, &a->resume, loop_now(&a->control->loop) + ACCEPT_RETRY_MS);
        }
        if (st != ACCEPT_OK)
            return;
        accept_one(a, fd);
    }
    accept_batch_done(h->fd, &a->episode, "admin", NULL);
}

/* The pause after a failed accept is over: poll the listening socket again. */
static void on_resume(struct loop *loop, struct timer *t)
{
    struct admin *a = (struct admin *)((char *)t - offsetof(struct admin, resume));
    if (a->listen.fd >= 0)
        loop_mod(loop, &a->listen, EPOLLIN);
}

/* ---------------------------------------------------------------------------------- */
/* listening socket */

/* Opens the admin listening socket on `addr` (no SO_REUSEPORT: a second process must not
 * share the admin port). Returns the fd or -1 with a reason in err. */
static int open_listener(const struct net_addr *addr, char *err, size_t errlen)
{
    char text[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&addr->ss, text, sizeof(text));
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 || listen(fd, 64) < 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "admin.bind %s: %s", text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static bool is_loopback(const struct net_addr *addr)
{
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr->ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static void close_listener(struct admin *a)
{
    timer_cancel(&a->control->loop, &a->resume);
    if (a->listen.fd < 0)
        return;
    loop_del(&a->control->loop, &a->listen);
    close(a->listen.fd);
    a->listen.fd = -1;
}

/* Starts listening on cfg's admin.bind. Returns 0 or -1 with err set. */
static int start_listener(struct admin *a, const struct cfg_admin *cfg, char *err, size_t errlen)
{
    int fd = open_listener(&cfg->bind, err, errlen);
    if (fd < 0)
        return -1;
    close_listener(a);
    a->listen.fd = fd;
    a->listen.cb = on_accept;
    if (loop_add(&a->control->loop, &a->listen, EPOLLIN) < 0) {
        snprintf(err, errlen, "admin.bind: cannot watch the socket");
        close(fd);
        a->listen.fd = -1;
        return -1;
    }
    a->bind = cfg->bind;
    char text[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&cfg->bind.ss, text, sizeof(text));
    log_info("admin API listening on http://%s/", text);
    return 0;
}

/* ---------------------------------------------------------------------------------- */

struct admin *admin_new(struct control *c, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->control = c;
    a->listen.fd = -1;
    timer_init(&a->resume, on_resume);
    metrics_note_start();
    const struct cfg_admin *cfg = &c->rt->cfg->admin;
    if (!cfg->enabled)
        return a;
    if (cfg->token_file && load_token(cfg->token_file, &a->auth, err, errlen) < 0)
        goto fail;
    if (start_listener(a, cfg, err, errlen) < 0)
        goto fail;
    if (!cfg->token_file && !is_loopback(&cfg->bind))
        log_warn("admin API on a non-loopback address without admin.token_file: anyone who "
                 "can reach it can reload and drain");
    return a;
fail:
    free(a);
    return NULL;
}

/* The API moved or was turned off by a reload: connections accepted on the old socket
 * take no further request (a kept-alive client, such as the dashboard, would otherwise
 * keep using an API that is gone, with the old settings). The request being handled (the
 * API call that reloaded) and responses being written finish, then the connection
 * closes; every other connection closes now. */
static void retire_conns(struct admin *a)
{
    struct admin_conn *next;
    for (struct admin_conn *c = a->conns; c; c = next) {
        next = c->next;
        bool answering = c->state == AC_WRITE || c->state == AC_LINGER ||
                         (c->state == AC_BODY && c->in_len >= c->head_len + c->body_len);
        if (answering)
            c->keep_alive = false;
        else
            conn_close(c);
    }
}

void admin_reconfigure(struct admin *a, struct runtime *rt)
{
    if (!a)
        return;
    const struct cfg_admin *cfg = &rt->cfg->admin;
    char err[512];
    if (!cfg->enabled) {
        if (a->listen.fd >= 0)
            log_info("admin API turned off by the new configuration");
        close_listener(a);
        retire_conns(a);
        a->auth.required = false;
        return;
    }
    if (cfg->token_file) {
        struct ah_auth auth = {0};
        if (load_token(cfg->token_file, &auth, err, sizeof(err)) == 0) {
            a->auth = auth;
        } else if (a->auth.required) {
            log_error("%s; the admin API keeps its previous token", err);
        } else {
            /* fail closed: a token is wanted but unknown, so no token matches */
            log_error("%s; mutating admin calls are refused until the file can be read", err);
            a->auth.required = true;
            if (RAND_bytes(a->auth.digest, sizeof(a->auth.digest)) != 1)
                memset(a->auth.digest, 0xa5, sizeof(a->auth.digest));
        }
    } else {
        a->auth.required = false;
    }
    bool same = a->listen.fd >= 0 && addr_equal((const struct sockaddr *)&a->bind.ss,
                                                (const struct sockaddr *)&cfg->bind.ss);
    if (same)
        return;
    if (start_listener(a, cfg, err, sizeof(err)) < 0)
        log_error("%s; the admin API stays where it was", err);
    else
        retire_conns(a);
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    while (a->conns)
        conn_close(a->conns);
    close_listener(a);
    free(a);
}
