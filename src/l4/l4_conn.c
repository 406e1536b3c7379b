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
#include "proxy/front.h"
#include "proxy/tunnel.h"

static void on_client_event(struct loop *loop, struct io_handler *h, uint32_t events);
static void on_server_event(struct loop *loop, struct io_handler *h, uint32_t events);
static void on_timer(struct loop *loop, struct timer *t);
int l4_pump(struct l4_conn *c)
{
    struct worker *w = c->conn.w;
    uint64_t now = loop_now(&w->loop);
    struct pump_ctx up = {w->pipes, now, &c->last_io_ms, &c->bytes_in, NULL, &c->use_splice};
    struct pump_ctx down = {w->pipes, now, &c->last_io_ms, NULL, &c->bytes_out, &c->use_splice};
    const struct tunnel t = {&c->client, &c->srv, &c->up, &c->down};
    enum term why;
    struct sock *failed = NULL;
    int err = 0;
    if (tunnel_run(&t, &up, &down, &c->first_fin, &why, &failed, &err) == TUNNEL_OPEN)
        return 0;
    if (failed)
        c->error = err == -EPROTO && failed->ssl ? l4_tls_io_error(c, failed->ssl) : strerror(-err);
    l4_conn_close(c, why);
    return 1;
}

static void advance(struct l4_conn *c);

static struct l4_conn *conn_of_timer(struct timer *t)
{
    return (struct l4_conn *)((char *)t - offsetof(struct l4_conn, timer));
}

void l4_conn_rearm(struct l4_conn *c)
{
    uint64_t deadline = c->state == L4_ESTABLISHED ? c->last_io_ms + c->idle_ms : c->phase_deadline;
    if (c->at.server) {
        uint64_t drain = atomic_load_explicit(&c->at.server->drain_deadline, memory_order_relaxed);
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
    enum term why;
    switch (front_proxy_header(c->client.h.fd, &c->client_addr, &c->local_addr, &c->have_local_addr,
                               &why, &c->error)) {
    case FRONT_MORE:
        c->client.readable = false;
        return;
    case FRONT_FAIL:
        l4_conn_close(c, why);
        return;
    case FRONT_DONE:
        break;
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
    up_release(&c->at);
}

/* Tries the next server; closes the client when none is left. */
void l4_connect_next(struct l4_conn *c)
{
    uint64_t key = up_client_key(c->at.backend, &c->client_addr.sa);
    for (;;) {
        enum up_pick_result r = up_pick(&c->at, c->conn.w->index, key);
        if (r == UP_NO_SERVER) {
            c->error = "no usable server";
            l4_conn_close(c, TERM_NO_SERVER);
            return;
        }
        if (r == UP_GIVE_UP) {
            l4_conn_close(c, TERM_CONNECT_FAILED);
            return;
        }
        if (l4_connect_server(c) == 0)
            return;
        /* immediate failure: count it and try the next one */
        sock_close(&c->srv, false);
        up_failed(&c->at, c->conn.w->index, c->error);
    }
}

static void finish_connect(struct l4_conn *c);

int l4_connect_server(struct l4_conn *c)
{
    /* Something to send at once: a TLS client's first bytes (often read with its
     * Finished), a PROXY header, a TLS ClientHello. */
    bool eager =
        c->client.ssl || c->at.backend->tls || c->at.backend->cfg->proxy_protocol != PP_NONE;
    bool done;
    if (up_connect(&c->at, &c->srv, eager, &done, &c->error, loop_now(&c->conn.w->loop)) < 0)
        return -1;
    enter_phase(c, L4_CONNECTING, c->at.backend->cfg->connect_timeout_ms);
    if (done)
        finish_connect(c); /* may close c: the caller returns at once on 0 */
    return 0;
}

/* A connect attempt failed after starting (refused, unreachable, timed out). */
static void connect_failed(struct l4_conn *c, const char *why)
{
    c->error = why;
    sock_close(&c->srv, false);
    up_failed(&c->at, c->conn.w->index, why);
    l4_connect_next(c);
}

/* The server socket became writable while connecting: check the result. */
static void finish_connect(struct l4_conn *c)
{
    int err = up_connect_result(&c->at, &c->srv);
    if (err) {
        connect_failed(c, strerror(err));
        return;
    }
    const struct cfg_backend *b = c->at.backend->cfg;
    if (b->proxy_protocol != PP_NONE) {
        if (!c->have_local_addr) {
            socklen_t len = sizeof(c->local_addr);
            if (getsockname(c->client.h.fd, &c->local_addr.sa, &len) < 0)
                memset(&c->local_addr, 0, sizeof(c->local_addr)); /* -> UNKNOWN / LOCAL */
            c->have_local_addr = true;
        }
        const char *sni = c->tls && c->tls->sni[0] ? c->tls->sni : NULL;
        const char *alpn = c->tls && c->tls->alpn[0] ? c->tls->alpn : NULL;
        if (up_send_proxy_header(&c->srv, b->proxy_protocol == PP_V1 ? 1 : 2, &c->client_addr.sa,
                                 &c->local_addr.sa, alpn, sni) < 0) {
            c->error = "cannot send PROXY header";
            l4_conn_close(c, TERM_SERVER_ERROR);
            return;
        }
    }
    if (c->at.backend->tls) {
        if (l4_tls_start_server(c) < 0) {
            l4_conn_close(c, TERM_TLS_ERROR);
            return;
        }
        enter_phase(c, L4_TLS_CONNECT, b->connect_timeout_ms);
        l4_tls_connect_step(c);
        return;
    }
    l4_established(c);
}

void l4_established(struct l4_conn *c)
{
    uint64_t now = loop_now(&c->conn.w->loop);
    c->connect_ms = now - c->at.start_ms;
    hist_observe(&c->at.backend->stats->slots[c->conn.w->index].connect, c->connect_ms * 1000);
    counter_add(&c->at.server->slots[c->conn.w->index].connections, 1);
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
    const struct pump_dir *to = s == &c->client ? &c->down : &c->up;
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
    if (c->at.server) {
        uint64_t drain = atomic_load(&c->at.server->drain_deadline);
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
    else if (tls_error && c->state == L4_TLS_CONNECT && c->at.server)
        counter_add(&c->at.server->slots[c->conn.w->index].connect_failures, 1);
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
    if (c->at.server) {
        struct server_slot *ss = &c->at.server->slots[w->index];
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
    pump_release(w->pipes, &c->up);
    pump_release(w->pipes, &c->down);
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
    if (c->at.server && atomic_load(&c->at.server->drain_deadline))
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
