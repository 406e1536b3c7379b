/* Connection life cycle: accept, optional PROXY header / ClientHello peek / TLS handshake,
 * routing, connect with retries, established pumping, deadlines and close. */
#include "l4/l4_conn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"
#include "l4/l4_route.h"
#include "l4/l4_tls.h"
#include "net/proxy_proto.h"

#define PASSIVE_FAILURE_THRESHOLD 3

static void on_client_event(struct loop *loop, struct io_handler *h, uint32_t events);
static void on_server_event(struct loop *loop, struct io_handler *h, uint32_t events);
static void on_timer(struct loop *loop, struct timer *t);
static void advance(struct l4_conn *c);

static struct l4_conn *conn_of_timer(struct timer *t)
{
    return (struct l4_conn *)((char *)t - offsetof(struct l4_conn, timer));
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void l4_conn_rearm(struct l4_conn *c)
{
    uint64_t deadline = c->state == L4_ESTABLISHED ? c->last_io_ms + c->idle_ms : c->phase_deadline;
    if (c->server) {
        uint64_t drain = atomic_load_explicit(&c->server->drain_deadline, memory_order_relaxed);
        if (drain && drain < deadline)
            deadline = drain;
    }
    timer_arm(&c->conn.w->loop, &c->timer, deadline);
}

static void enter_phase(struct l4_conn *c, enum l4_state st, uint64_t timeout_ms)
{
    c->state = st;
    c->phase_deadline = loop_now(&c->conn.w->loop) + timeout_ms;
    l4_conn_rearm(c);
}

/* conn_ops.start: see conn.h. */
static void l4_conn_start(struct worker *w, struct rt_listener *l, int fd,
                          const struct sockaddr *peer, socklen_t peer_len)
{
    struct l4_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        conn_release_slot(l);
        return;
    }
    conn_init(&c->conn, &l4_conn_ops, w, l);
    c->last_io_ms = c->conn.start_ms;
    c->client.h.fd = fd;
    c->client.h.cb = on_client_event;
    c->client.loop = &w->loop;
    c->srv.h.fd = -1;
    c->srv.h.cb = on_server_event;
    c->srv.loop = &w->loop;
    c->use_splice = l->cfg->protocol == PROTO_TCP;
    memcpy(&c->client_addr, peer,
           peer_len < sizeof(c->client_addr) ? peer_len : sizeof(c->client_addr));
    timer_init(&c->timer, on_timer); /* TCP_NODELAY: inherited from the listener */

    if (loop_add(&w->loop, &c->client.h, SOCK_EVENTS_IN) < 0) {
        c->error = "epoll registration failed";
        l4_conn_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    c->client.writable = true; /* a fresh socket: its send buffer is empty */
    const struct cfg_listener *cl = l->cfg;
    if (cl->proxy_protocol_accept)
        enter_phase(c, L4_PROXY_HDR, cl->proxy_protocol_timeout_ms);
    else if (l->tls) {
        enter_phase(c, L4_TLS_ACCEPT, cl->tls.handshake_timeout_ms);
        /* The ClientHello usually arrived before the accept: try the first step now
         * instead of one more loop turn (if it has not, OpenSSL's read says EAGAIN and
         * the readiness event comes later). */
        c->client.readable = c->client.writable = true;
        l4_tls_accept_step(c);
    } else if (l->peek_hello)
        enter_phase(c, L4_HELLO, cl->client_hello_timeout_ms);
    else
        l4_route_and_connect(c, NULL, NULL, 0);
}

/* ---- PROXY protocol from a load balancer in front ---- */

static void read_proxy_header(struct l4_conn *c)
{
    uint8_t buf[PP_V2_MAX_DEFAULT];
    ssize_t n = recv(c->client.h.fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        c->error = strerror(errno);
        l4_conn_close(c, TERM_CLIENT_RESET);
        return;
    }
    if (n == 0) {
        c->error = "closed before sending a PROXY header";
        l4_conn_close(c, TERM_CLIENT_CLOSED);
        return;
    }
    struct pp_result res;
    const char *reason = NULL;
    int r = pp_parse(buf, (size_t)n, sizeof(buf), &res, &reason);
    if (r == 0) {
        if ((size_t)n == sizeof(buf)) {
            c->error = "PROXY header too long";
            l4_conn_close(c, TERM_BAD_PROXY_HEADER);
        }
        return; /* wait for more bytes */
    }
    if (r < 0) {
        c->error = reason ? reason : "malformed PROXY header";
        l4_conn_close(c, TERM_BAD_PROXY_HEADER);
        return;
    }
    /* consume exactly the header; what follows stays in the socket */
    if (recv(c->client.h.fd, buf, res.header_len, 0) != (ssize_t)res.header_len) {
        c->error = "short read consuming PROXY header";
        l4_conn_close(c, TERM_CLIENT_ERROR);
        return;
    }
    if (!res.local) {
        memcpy(&c->client_addr, &res.src, res.src_len);
        memcpy(&c->local_addr, &res.dst, res.dst_len);
        c->have_local_addr = true;
    }
    const struct cfg_listener *cl = c->conn.listener->cfg;
    if (c->conn.listener->tls)
        enter_phase(c, L4_TLS_ACCEPT, cl->tls.handshake_timeout_ms);
    else if (c->conn.listener->peek_hello)
        enter_phase(c, L4_HELLO, cl->client_hello_timeout_ms);
    else
        l4_route_and_connect(c, NULL, NULL, 0); /* may have closed c: touch it no more */
    if (c->state == L4_TLS_ACCEPT || c->state == L4_HELLO) {
        c->client.readable = c->client.writable = true; /* bytes may follow the header */
        advance(c);
    }
}

/* ---- connecting to a server ---- */

static void release_server(struct l4_conn *c)
{
    sock_close(&c->srv, c->state == L4_ESTABLISHED && !c->srv.shut);
    if (c->server) {
        if (c->counted_server)
            atomic_fetch_sub(&c->server->lb.active, 1);
        c->counted_server = false;
        server_unref(c->server);
        c->server = NULL;
    }
}

/* Tries the next server; closes the client when none is left. */
void l4_connect_next(struct l4_conn *c)
{
    struct rt_backend *b = c->backend;
    for (;;) {
        if (c->n_tried > (unsigned)b->cfg->retries || c->n_tried >= L4_MAX_TRIES) {
            l4_conn_close(c, TERM_CONNECT_FAILED);
            return;
        }
        uint64_t key = 0;
        if (b->cfg->balance == BAL_CONSISTENT_HASH || b->cfg->affinity_client_ip) {
            char ip[ADDR_TEXT_MAX];
            addr_format_ip(&c->client_addr.sa, ip, sizeof(ip));
            key = lb_hash(ip, strlen(ip));
        }
        struct lb_pool *pool = b->affinity_pool ? b->affinity_pool : b->pool;
        int idx = lb_pick(pool, c->conn.w->index, key, c->tried, c->n_tried,
                          (unsigned)b->cfg->max_connections_per_server);
        if (idx < 0) {
            if (c->n_tried == 0) {
                c->error = "no usable server";
                l4_conn_close(c, TERM_NO_SERVER);
            } else {
                l4_conn_close(c, TERM_CONNECT_FAILED);
            }
            return;
        }
        c->tried[c->n_tried++] = idx;
        struct server *s = b->servers[idx];
        c->server = server_ref(s);
        atomic_fetch_add(&s->lb.active, 1);
        c->counted_server = true;
        if (l4_connect_server(c) == 0)
            return;
        /* immediate failure: count it and try the next one */
        counter_add(&s->slots[c->conn.w->index].connect_failures, 1);
        if (server_passive_failure(s, PASSIVE_FAILURE_THRESHOLD))
            log_warn("server %s of backend %s marked down: %d consecutive connect failures (%s)",
                     s->address, s->backend, PASSIVE_FAILURE_THRESHOLD, c->error);
        release_server(c);
    }
}

static void finish_connect(struct l4_conn *c);

/* True when the socket's TCP connection is already established (a loopback or very near
 * server often is by the time connect() returns EINPROGRESS). One getsockopt. */
static bool connected_now(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_ESTABLISHED;
}

int l4_connect_server(struct l4_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (server_next_addr(c->server, &ss, &len) < 0) {
        c->error = "server name not resolved";
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->error = strerror(errno);
        return -1;
    }
    set_nodelay(fd);
    c->srv.h.fd = fd;
    c->srv.readable = c->srv.writable = c->srv.eof = c->srv.shut = false;
    c->srv.rdhup = c->srv.error_event = false;
    if (!c->connect_start_ms)
        c->connect_start_ms = loop_now(&c->conn.w->loop);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        c->error = strerror(errno);
        return -1;
    }
    /* Worth a getsockopt only when there is something to send at once: a TLS client's
     * first bytes (often read with its Finished), a PROXY header, a TLS ClientHello.
     * Plain TCP waits for the event, which a busy loop batches with others anyway. A
     * socket already connected needs no EPOLLOUT; one still connecting waits for it. */
    bool eager = c->client.ssl || c->backend->tls || c->backend->cfg->proxy_protocol != PP_NONE;
    bool now = eager && connected_now(fd);
    if (loop_add(&c->conn.w->loop, &c->srv.h, now ? SOCK_EVENTS_IN : SOCK_EVENTS_IN | EPOLLOUT) <
        0) {
        c->error = "epoll registration failed";
        return -1;
    }
    c->srv.out_armed = !now;
    enter_phase(c, L4_CONNECTING, c->backend->cfg->connect_timeout_ms);
    if (now) {
        c->srv.writable = true; /* a fresh socket: its send buffer is empty */
        finish_connect(c);      /* may close c: the caller returns at once on 0 */
    }
    return 0;
}

/* A connect attempt failed after starting (refused, unreachable, timed out). */
static void connect_failed(struct l4_conn *c, const char *why)
{
    struct server *s = c->server;
    c->error = why;
    counter_add(&s->slots[c->conn.w->index].connect_failures, 1);
    if (server_passive_failure(s, PASSIVE_FAILURE_THRESHOLD))
        log_warn("server %s of backend %s marked down: %d consecutive connect failures (%s)",
                 s->address, s->backend, PASSIVE_FAILURE_THRESHOLD, why);
    release_server(c);
    l4_connect_next(c);
}

static int send_proxy_header(struct l4_conn *c)
{
    uint8_t hdr[512];
    if (!c->have_local_addr) {
        socklen_t len = sizeof(c->local_addr);
        if (getsockname(c->client.h.fd, &c->local_addr.sa, &len) < 0)
            memset(&c->local_addr, 0, sizeof(c->local_addr)); /* -> UNKNOWN / LOCAL */
        c->have_local_addr = true;
    }
    int version = c->backend->cfg->proxy_protocol == PP_V1 ? 1 : 2;
    const char *sni = c->tls && c->tls->sni[0] ? c->tls->sni : NULL;
    const char *alpn = c->tls && c->tls->alpn[0] ? c->tls->alpn : NULL;
    int n = pp_build(version, &c->client_addr.sa, &c->local_addr.sa, alpn, sni, hdr, sizeof(hdr));
    if (n < 0 || send(c->srv.h.fd, hdr, (size_t)n, MSG_NOSIGNAL) != n) {
        c->error = "cannot send PROXY header";
        return -1;
    }
    return 0;
}

/* The server socket became writable while connecting: check the result. */
static void finish_connect(struct l4_conn *c)
{
    /* Writable without an error event means connected; only a failure needs SO_ERROR. */
    int err = 0;
    socklen_t len = sizeof(err);
    if (c->srv.error_event && getsockopt(c->srv.h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (c->srv.error_event && !err)
        err = ECONNREFUSED;
    if (err) {
        connect_failed(c, strerror(err));
        return;
    }
    server_passive_success(c->server);
    if (c->srv.out_armed)
        sock_set_out(&c->srv, false); /* connected: input only until a write blocks */
    if (c->backend->cfg->proxy_protocol != PP_NONE && send_proxy_header(c) < 0) {
        l4_conn_close(c, TERM_SERVER_ERROR);
        return;
    }
    if (c->backend->tls) {
        if (l4_tls_start_server(c) < 0) {
            l4_conn_close(c, TERM_TLS_ERROR);
            return;
        }
        enter_phase(c, L4_TLS_CONNECT, c->backend->cfg->connect_timeout_ms);
        l4_tls_connect_step(c);
        return;
    }
    l4_established(c);
}

void l4_established(struct l4_conn *c)
{
    uint64_t now = loop_now(&c->conn.w->loop);
    c->connect_ms = now - c->connect_start_ms;
    hist_observe(&c->backend->stats->slots[c->conn.w->index].connect, c->connect_ms * 1000);
    counter_add(&c->server->slots[c->conn.w->index].connections, 1);
    c->state = L4_ESTABLISHED;
    c->last_io_ms = now;
    if (c->client.ssl || c->srv.ssl)
        c->use_splice = false;
    l4_conn_rearm(c);
    l4_pump(c);
}

/* ---- events and deadlines ---- */

/* An EPOLLOUT edge with nothing waiting to be written to s (the ACKs of what was sent
 * raise them): drops EPOLLOUT until the next EAGAIN, instead of a wakeup per ACK. */
static void maybe_disarm(struct l4_conn *c, struct sock *s, uint32_t events)
{
    const struct l4_dir *to = s == &c->client ? &c->down : &c->up;
    if (events == EPOLLOUT && s->out_armed && c->state == L4_ESTABLISHED && to->pending == 0 &&
        !s->unflushed)
        sock_set_out(s, false);
}

static void advance(struct l4_conn *c)
{
    switch (c->state) {
    case L4_PROXY_HDR:
        if (c->client.readable)
            read_proxy_header(c);
        break;
    case L4_HELLO:
        if (c->client.readable)
            l4_route_peek_hello(c);
        break;
    case L4_TLS_ACCEPT:
        l4_tls_accept_step(c);
        break;
    case L4_CONNECTING:
        if (c->srv.writable)
            finish_connect(c);
        break;
    case L4_TLS_CONNECT:
        l4_tls_connect_step(c);
        break;
    case L4_ESTABLISHED:
        l4_pump(c);
        break;
    }
}

static void on_client_event(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    struct l4_conn *c = (struct l4_conn *)((char *)h - offsetof(struct l4_conn, client.h));
    if (c->client.h.fd < 0)
        return; /* closed earlier in this turn */
    sock_on_events(&c->client, events);
    maybe_disarm(c, &c->client, events);
    if (c->state == L4_CONNECTING || c->state == L4_TLS_CONNECT) {
        /* A client that gives up while we connect: notice it now, not after connecting. */
        if ((events & (EPOLLHUP | EPOLLERR)) || ((events & EPOLLRDHUP) && !(events & EPOLLIN))) {
            char probe;
            ssize_t n = recv(c->client.h.fd, &probe, 1, MSG_PEEK);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                c->error = "client went away while connecting";
                l4_conn_close(c, n == 0 ? TERM_CLIENT_CLOSED : TERM_CLIENT_RESET);
            }
        }
        return;
    }
    advance(c);
}

static void on_server_event(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    struct l4_conn *c = (struct l4_conn *)((char *)h - offsetof(struct l4_conn, srv.h));
    if (c->srv.h.fd < 0 || h->fd != c->srv.h.fd)
        return;
    sock_on_events(&c->srv, events);
    maybe_disarm(c, &c->srv, events);
    advance(c);
}

static void on_timer(struct loop *loop, struct timer *t)
{
    struct l4_conn *c = conn_of_timer(t);
    uint64_t now = loop_now(loop);
    if (c->server) {
        uint64_t drain = atomic_load(&c->server->drain_deadline);
        if (drain && now >= drain) {
            c->error = "server removed or drained";
            l4_conn_close(c, TERM_DRAINED);
            return;
        }
    }
    switch (c->state) {
    case L4_ESTABLISHED:
        if (now >= c->last_io_ms + c->idle_ms) {
            l4_conn_close(c, TERM_IDLE_TIMEOUT);
            return;
        }
        break;
    case L4_CONNECTING:
        if (now >= c->phase_deadline) {
            connect_failed(c, "connect timeout");
            return;
        }
        break;
    case L4_TLS_CONNECT:
        if (now >= c->phase_deadline) {
            c->error = "TLS handshake with server timed out";
            l4_conn_close(c, TERM_TLS_ERROR);
            return;
        }
        break;
    default:
        if (now >= c->phase_deadline) {
            c->error = c->state == L4_PROXY_HDR ? "no PROXY header in time"
                       : c->state == L4_HELLO   ? "no ClientHello in time"
                                                : "TLS handshake timed out";
            l4_conn_close(c, c->state == L4_PROXY_HDR ? TERM_BAD_PROXY_HEADER
                             : c->state == L4_HELLO   ? TERM_HELLO_TIMEOUT
                                                      : TERM_TLS_ERROR);
            return;
        }
    }
    l4_conn_rearm(c);
}

/* ---- close ---- */

/* Counts how c ended in the counters that classify failures: a refusal; a TLS handshake
 * with the client that failed or timed out (state TLS_ACCEPT); a TLS handshake with the
 * server that failed or timed out, which is a failed connection attempt to that server. */
static void count_outcome(struct l4_conn *c, struct listener_slot *ls, enum term termination)
{
    bool tls_error = termination == TERM_TLS_ERROR;
    if (term_is_refusal(termination))
        counter_add(&ls->refused, 1);
    else if (tls_error && c->state == L4_TLS_ACCEPT)
        counter_add(&ls->tls_handshake_errors, 1);
    else if (tls_error && c->state == L4_TLS_CONNECT && c->server)
        counter_add(&c->server->slots[c->conn.w->index].connect_failures, 1);
}

void l4_conn_close(struct l4_conn *c, enum term termination)
{
    struct worker *w = c->conn.w;
    if (c->client.h.fd < 0)
        return;
    timer_cancel(&w->loop, &c->timer);
    uint64_t now = loop_now(&w->loop);
    struct listener_slot *ls = &c->conn.listener->stats->slots[w->index];
    counter_add(&ls->bytes_in, c->bytes_in);
    counter_add(&ls->bytes_out, c->bytes_out);
    hist_observe(&ls->duration, (now - c->conn.start_ms) * 1000);
    if (c->server) {
        struct server_slot *ss = &c->server->slots[w->index];
        counter_add(&ss->bytes_in, c->bytes_in);
        counter_add(&ss->bytes_out, c->bytes_out);
    }
    count_outcome(c, ls, termination);
    l4_log_access(c, termination);

    /* a reset on one side is passed on as a reset to the other */
    bool reset = termination == TERM_CLIENT_RESET || termination == TERM_SERVER_RESET;
    if (termination == TERM_CLIENT_RESET)
        sock_reset_on_close(&c->srv);
    if (termination == TERM_SERVER_RESET)
        sock_reset_on_close(&c->client);
    sock_close(&c->client, !reset && !c->client.shut);
    release_server(c);
    l4_dir_release(c, &c->up);
    l4_dir_release(c, &c->down);
    free(c->tls);
    c->tls = NULL;
    free(c->peek);
    c->peek = NULL;

    conn_release(&c->conn);
}

/* conn_ops.close. */
static void l4_close_op(struct conn *c, enum term why)
{
    l4_conn_close((struct l4_conn *)c, why);
}

/* conn_ops.rearm: only a connection to a draining server has a new deadline. */
static void l4_rearm_op(struct conn *base)
{
    struct l4_conn *c = (struct l4_conn *)base;
    if (c->server && atomic_load(&c->server->drain_deadline))
        l4_conn_rearm(c);
}

/* conn_ops.step: a TLS handshake step the worker's budget deferred. */
static void l4_step_op(struct conn *c)
{
    l4_tls_run_step((struct l4_conn *)c);
}

const struct conn_ops l4_conn_ops = {
    .name = "l4",
    .start = l4_conn_start,
    .close = l4_close_op,
    .rearm = l4_rearm_op,
    .step = l4_step_op,
};
