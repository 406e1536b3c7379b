/* The client side of an HTTP/1.x connection: conn_ops, reading and checking request
 * heads, routing with the current snapshot, keep-alive and pipelining (one exchange at a
 * time; pipelined bytes wait in the head buffer), deadlines and close. See h1_conn.h. */
#include "http/h1_conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/h1_error.h"
#include "http/h1_fields.h"
#include "http/h2_conn.h"
#include "http/route.h"
#include "proxy/front.h"
#include "tls/tls_server.h"

#define HEAD_BUF_START 4096
#define XBUF_MIN (16 * 1024)

static void on_client_event(struct loop *loop, struct io_handler *h, uint32_t events);
static void on_timer(struct loop *loop, struct timer *t);
static void advance(struct h1_conn *c);

bool h1_dead(const struct h1_conn *c)
{
    return !sock_open(&c->client);
}

static const struct cfg_listener_http *lh_of(const struct h1_conn *c)
{
    return &c->conn.listener->cfg->http;
}

/* ---- buffers ---- */

static void free_head_buffer(struct h1_conn *c)
{
    free(c->in);
    free(c->fields);
    c->in = NULL;
    c->fields = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
}

/* Idle with nothing buffered: frees the head buffer and the exchange state (released
 * already), so that the connection holds only its struct h1_conn. */
static void go_bare(struct h1_conn *c)
{
    free_head_buffer(c);
    free(c->t);
    c->t = NULL;
}

/* Gives c its exchange state (zeroed) if it has none. Returns 0, or -1 out of memory. */
static int need_txn(struct h1_conn *c)
{
    if (!c->t)
        c->t = calloc(1, sizeof(*c->t));
    return c->t ? 0 : -1;
}

/* The exchange buffer's parts for c's listener: x (response bytes), out (outgoing heads,
 * a head plus the fields sluice adds), the response field array. */
static size_t xmem_parts(const struct h1_conn *c, size_t *x, size_t *out)
{
    *x = lh_of(c)->max_header_size > XBUF_MIN ? lh_of(c)->max_header_size : XBUF_MIN;
    *out = *x + 4096;
    return H1_RESP_FIELDS * sizeof(struct h1_header) + *out + *x;
}

/* The exchange buffer: response fields, outgoing heads, response bytes. Taken from (and
 * given back to) the worker's buffer cache. */
int h1_xmem(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    if (t->xmem)
        return 0;
    size_t x, out, fields = H1_RESP_FIELDS * sizeof(struct h1_header);
    t->xmem = bufcache_get(&c->conn.w->xbufs, xmem_parts(c, &x, &out));
    if (!t->xmem)
        return -1;
    t->out = (struct h1_span){t->xmem + fields, 0, 0, (uint32_t)out};
    t->x = (struct h1_span){t->xmem + fields + out, 0, 0, (uint32_t)x};
    h1_head_init(&t->resp, (struct h1_header *)(void *)t->xmem, H1_RESP_FIELDS);
    return 0;
}

void h1_count_in(struct h1_conn *c, uint64_t n)
{
    c->t->bytes_in += n;
    c->t->last_client_ms = loop_now(&c->conn.w->loop);
}

/* ---- deadlines: one timer, re-armed lazily ---- */

static uint64_t deadline(struct h1_conn *c)
{
    const struct cfg_listener *l = c->conn.listener->cfg;
    switch (c->st) {
    case H1_PROXY:
        return c->conn.start_ms + l->proxy_protocol_timeout_ms;
    case H1_TLS:
        return c->idle_since + l->tls.handshake_timeout_ms;
    case H1_IDLE: /* the first request's header_timeout starts when TLS (if any) is up */
        return c->idle_since + (c->requests == 0 ? l->http.header_timeout_ms : l->idle_timeout_ms);
    case H1_HEAD:
        return c->t->start_ms + l->http.header_timeout_ms;
    case H1_REPLY:
        return c->phase_deadline;
    default:
        return h1_up_deadline(c);
    }
}

void h1_rearm(struct h1_conn *c)
{
    timer_arm(&c->conn.w->loop, &c->timer, deadline(c));
}

/* The connection ends before its first request: a missing or malformed PROXY header, or
 * a failed TLS handshake. Logged (one line, no request fields); a PROXY failure is
 * counted as a refusal, as on L4 listeners. */
static void proxy_header_failed(struct h1_conn *c, enum term why, const char *error)
{
    struct listener_slot *ls = &c->conn.listener->stats->slots[c->conn.w->index];
    if (term_is_refusal(why))
        counter_add(&ls->refused, 1);
    if (need_txn(c) < 0) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    c->t->start_ms = c->conn.start_ms;
    c->t->term = why;
    c->t->error = error;
    h1_close(c, why);
}

/* After accept (and the PROXY header): the TLS handshake on https, else the first
 * request; each with its own deadline from now. */
static void enter_first_state(struct h1_conn *c)
{
    c->st = c->conn.listener->tls ? H1_TLS : H1_IDLE;
    c->idle_since = loop_now(&c->conn.w->loop);
    h1_rearm(c);
}

/* The TLS handshake failed or timed out: one log line (no request fields), counted. */
static void tls_failed(struct h1_conn *c, const char *error)
{
    struct listener_slot *ls = &c->conn.listener->stats->slots[c->conn.w->index];
    counter_add(&ls->tls_handshake_errors, 1);
    log_debug("listener %s: TLS handshake failed: %s", c->conn.listener->cfg->name, error);
    proxy_header_failed(c, TERM_TLS_ERROR, error);
}

/* H1_PROXY: reads the PROXY header (proxy/front.c); then the first request. */
static void read_proxy_header(struct h1_conn *c)
{
    enum term why;
    const char *error = NULL;
    switch (front_proxy_header(c->client.h.fd, &c->client_addr, &c->local_addr, &c->have_local,
                               &why, &error)) {
    case FRONT_MORE:
        c->client.readable = false;
        return;
    case FRONT_FAIL:
        proxy_header_failed(c, why, error);
        return;
    case FRONT_DONE:
        enter_first_state(c);
        return;
    }
}

/* H1_TLS: one step of the handshake (under the worker's handshake budget); once it is
 * done, the first request. A failure or timeout closes the connection, logged with
 * termination tls_error and counted in sluice_tls_handshake_errors_total. */
static void tls_accept(struct h1_conn *c)
{
    struct worker *w = c->conn.w;
    if (!c->client.ssl && tls_step_server_init(&c->client, c->conn.listener->tls) < 0) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    if (!tls_step_ready(&c->client) || !worker_budget_take(w, &c->conn))
        return;
    if (!c->tls && !(c->tls = calloc(1, sizeof(*c->tls)))) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    int r = tls_step_run(&c->client, c->tls->error, sizeof(c->tls->error));
    if (r == 0)
        return;
    if (r < 0) {
        tls_failed(c, c->tls->error);
        return;
    }
    struct listener_slot *ls = &c->conn.listener->stats->slots[w->index];
    tls_step_accepted(&c->client, ls, loop_now(&w->loop) - c->idle_since, c->tls);
    if (strcmp(c->tls->alpn, "h2") == 0) {
        h2_conn_adopt(c, NULL, 0); /* c is gone */
        return;
    }
    c->st = H1_IDLE;
    c->idle_since = loop_now(&w->loop);
    h1_rearm(c);
}

static void on_timer(struct loop *loop, struct timer *tm)
{
    struct h1_conn *c = (struct h1_conn *)((char *)tm - offsetof(struct h1_conn, timer));
    if (loop_now(loop) < deadline(c)) {
        h1_rearm(c); /* activity moved the deadline since it was armed */
        return;
    }
    switch (c->st) {
    case H1_PROXY:
        proxy_header_failed(c, TERM_BAD_PROXY_HEADER, "no PROXY header in time");
        return;
    case H1_TLS:
        tls_failed(c, "TLS handshake not complete in time");
        return;
    case H1_IDLE:
        h1_close(c, TERM_IDLE_TIMEOUT);
        return;
    case H1_HEAD:
        h1_reply(c, 408, true, TERM_HEADER_TIMEOUT, "request head not complete in time");
        break;
    case H1_REPLY:
        c->t->term = TERM_CLIENT_ABORTED;
        h1_close(c, TERM_CLIENT_ABORTED);
        return;
    default:
        h1_up_timeout(c);
        break;
    }
    if (!h1_dead(c))
        advance(c);
}

/* ---- the request head ---- */

/* Makes room in the head buffer: moves pending bytes to the front or grows the buffer
 * (up to max_header_size and a little more, so that the parser can tell "too large").
 * The parser restarts, since its views point into the buffer. Returns 0 or -1. */
static int make_room(struct h1_conn *c)
{
    size_t limit = lh_of(c)->max_header_size + 1;
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    } else if (c->in_cap < limit) {
        size_t cap = c->in_cap * 2 < limit ? c->in_cap * 2 : limit;
        char *p = realloc(c->in, cap);
        if (!p)
            return -1;
        c->in = p;
        c->in_cap = (uint32_t)cap;
    } else {
        return 0; /* full: the parser has answered 431/414 already */
    }
    h1_head_init(&c->t->req, c->fields, (size_t)lh_of(c)->max_headers);
    return 0;
}

static void make_request_id(struct h1_conn *c)
{
    static _Thread_local uint64_t seq;
    static _Thread_local uint64_t seed;
    if (!seed)
        seed = ((uint64_t)getpid() << 32) ^ clock_monotonic_ms() ^ (uint64_t)(uintptr_t)&seq;
    uint64_t a = seed + ++seq * 0x9e3779b97f4a7c15ull;
    a ^= a >> 31;
    a *= 0xbf58476d1ce4e5b9ull;
    a ^= a >> 29;
    /* 16 + 8 hex digits ("%016llx%08llx", written by hand: snprintf costs more than the
       rest of the id) */
    static const char hex[] = "0123456789abcdef";
    char *r = c->t->rid;
    for (int i = 0; i < 16; i++)
        r[i] = hex[(a >> (60 - 4 * i)) & 0xf];
    uint32_t low = (uint32_t)seq;
    for (int i = 0; i < 8; i++)
        r[16 + i] = hex[(low >> (28 - 4 * i)) & 0xf];
    r[24] = '\0';
    c->t->request_id = (struct h1_str){r, 24};
}

static const struct cfg_listener *find_listener(const struct runtime *rt, const char *name)
{
    for (size_t i = 0; i < rt->cfg->n_listeners; i++)
        if (strcmp(rt->cfg->listeners[i].name, name) == 0)
            return &rt->cfg->listeners[i];
    return NULL;
}

/* A complete head of head_len bytes: check, route, start the exchange. */
static void on_head(struct h1_conn *c, int head_len)
{
    struct h1_txn *t = c->t;
    const struct cfg_listener_http *lh = lh_of(c);
    t->head_len = (uint32_t)head_len;
    t->body_off = c->in_off + (uint32_t)head_len;
    h1_count_in(c, (uint64_t)head_len);
    c->requests++;
    enum h1_error e = h1_check_request(&t->req, lh->max_body_size, &t->m);
    if (lh->request_id) {
        const struct h1_header *h = h1_find_header(&t->req, lh->request_id);
        if (h && h->value.len)
            t->request_id = h->value;
        else
            make_request_id(c);
    }
    if (e != H1_OK) {
        h1_reply(c, h1_error_status(e), true, TERM_BAD_REQUEST, h1_error_reason(e));
        return;
    }
    if (t->req.form == H1_AUTHORITY_FORM) {
        h1_reply(c, 501, true, TERM_BAD_REQUEST, "CONNECT is not served");
        return;
    }
    if (c->client.ssl && lh->sni_host_check &&
        !tls_server_host_served(c->client.ssl, t->m.host.p, t->m.host.len)) {
        h1_reply(c, 421, false, TERM_BAD_REQUEST,
                 "Host is served by another certificate than the SNI's");
        return;
    }
    t->close_after = !t->m.keep_alive || c->stopping || c->stream ||
                     c->requests >= (unsigned)lh->keepalive_requests;
    /* route with the snapshot current now: a reload takes effect at request boundaries */
    struct runtime *rt = c->conn.w->rt;
    t->lcfg = find_listener(rt, c->conn.listener->cfg->name);
    if (!t->lcfg) { /* the listener is gone from the new configuration: keep the old one */
        rt = c->conn.rt;
        t->lcfg = c->conn.listener->cfg;
    }
    t->rt = runtime_ref(rt);
    struct http_route_in in;
    if (http_route_input(&t->req, &t->m, &in) < 0) {
        h1_reply(c, 400, true, TERM_BAD_REQUEST, "path climbs above the root");
        return;
    }
    t->route = http_route_pick(t->lcfg, &in);
    t->rpath = in.path;
    t->rquery = in.query;
    bool has_body = t->m.body != H1_BODY_NONE && !(t->m.body == H1_BODY_LENGTH && t->m.length == 0);
    if (t->route == HTTP_ROUTE_NONE) {
        h1_reply(c, 404, has_body, TERM_NO_ROUTE, "no route");
        return;
    }
    if (t->route >= 0) {
        t->rp = &t->lcfg->routes[t->route];
        if (t->route < LISTENER_ROUTE_COUNTERS)
            counter_add(&c->conn.listener->stats->slots[c->conn.w->index].route_requests[t->route],
                        1);
        if (t->rp->limiter && h1_rate_limited(c, has_body))
            return; /* before any action: redirects and responds are limited too */
        if (t->rp->action != ROUTE_BACKEND) {
            h1_policy_answer(c, t->rp, has_body);
            return;
        }
    }
    int bi = t->route >= 0 ? t->rp->backend_index : t->lcfg->backend_index;
    t->backend = &t->rt->backends[bi];
    h1_up_start(c);
}

static void read_head(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    const struct cfg_listener_http *lh = lh_of(c);
    struct h1_limits lim = {lh->max_header_size, (size_t)lh->max_headers};
    for (;;) {
        if (c->requests == 0 && lh->h2c && c->in && c->in_len > c->in_off &&
            h2_preface_match(c->in + c->in_off, c->in_len - c->in_off)) {
            if (c->in_len - c->in_off >= H2_PREFACE_LEN) { /* HTTP/2 prior knowledge */
                h2_conn_adopt(c, c->in + c->in_off, c->in_len - c->in_off); /* c is gone */
                return;
            }
        } else if (c->in && c->in_len > c->in_off) {
            if (c->st == H1_IDLE) {
                c->st = H1_HEAD;
                t->start_ms = loop_now(&c->conn.w->loop);
                h1_rearm(c);
            }
            int r = h1_parse_request(c->in + c->in_off, c->in_len - c->in_off, &lim, &t->req);
            if (r > 0) {
                on_head(c, r);
                return;
            }
            if (r == H1_ERROR) {
                h1_count_in(c, c->in_len - c->in_off);
                if (lh->request_id)
                    make_request_id(c);
                h1_reply(c, h1_error_status(t->req.error), true, TERM_BAD_REQUEST,
                         h1_error_reason(t->req.error));
                return;
            }
        }
        if (!c->client.readable) {
            if (c->st == H1_IDLE && c->in && c->in_len == c->in_off)
                go_bare(c); /* idle: hold nothing */
            return;
        }
        if (!c->in) {
            size_t cap =
                lh->max_header_size + 1 < HEAD_BUF_START ? lh->max_header_size + 1 : HEAD_BUF_START;
            c->in = malloc(cap);
            c->fields = malloc((size_t)lh->max_headers * sizeof(*c->fields));
            if (!c->in || !c->fields || need_txn(c) < 0) {
                h1_close(c, TERM_INTERNAL_ERROR);
                return;
            }
            t = c->t;
            c->in_cap = (uint32_t)cap;
            c->in_off = c->in_len = 0;
            h1_head_init(&t->req, c->fields, (size_t)lh->max_headers);
        }
        if (c->in_len == c->in_cap && make_room(c) < 0) {
            h1_close(c, TERM_INTERNAL_ERROR);
            return;
        }
        size_t room = c->in_cap - c->in_len;
        if (room == 0)
            return; /* cannot happen: the parser refuses a full buffer */
        ssize_t n = sock_read(&c->client, c->in + c->in_len, room);
        if (n > 0) {
            c->in_len += (uint32_t)n;
            if ((size_t)n < room && !c->client.rdhup)
                c->client.readable = false;
            continue;
        }
        if (n == -EAGAIN || n == SOCK_WANTS_OTHER_IO) {
            c->client.readable = false;
            continue; /* parse what there is, free the buffer if idle */
        }
        /* the client closed (or failed) between requests or within a head */
        if (c->st == H1_HEAD) {
            t->term = TERM_CLIENT_ABORTED;
            t->error = n == 0 ? "client closed within a request head" : "client read error";
        }
        h1_close(c, n == 0 ? TERM_CLIENT_CLOSED : TERM_CLIENT_RESET);
        return;
    }
}

/* ---- the end of an exchange ---- */

static void txn_release(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct worker *w = c->conn.w;
    if (!t)
        return;
    if (t->up)
        h1_up_release(c, false);
    bool slot = t->at.counted;
    up_release(&t->at);
    h1_queue_leave(c);
    if (slot)
        h1_queue_kick(w);
    pump_release(w->pipes, &t->req_dir);
    pump_release(w->pipes, &t->resp_dir);
    if (t->counted_active)
        counter_add(&c->conn.listener->stats->slots[w->index].http_active, (unsigned long)-1);
    runtime_unref(t->rt);
    size_t x, out;
    bufcache_put(&w->xbufs, t->xmem, xmem_parts(c, &x, &out));
    free(t->cb.buf);
    memset(t, 0, sizeof(*t));
}

/* Moves the bytes read past a chunked request body (a pipelined request) from the body
 * buffer into the head buffer, which the body emptied. Returns 0 or -1. */
static int keep_pipelined(struct h1_conn *c)
{
    struct h1_span *cb = &c->t->cb;
    size_t n = cb->len - cb->off;
    const struct cfg_listener_http *lh = lh_of(c);
    if (!c->in || c->in_cap < n) {
        char *p = realloc(c->in, n > HEAD_BUF_START ? n : HEAD_BUF_START);
        if (!p)
            return -1;
        c->in = p;
        c->in_cap = (uint32_t)(n > HEAD_BUF_START ? n : HEAD_BUF_START);
    }
    if (!c->fields && !(c->fields = malloc((size_t)lh->max_headers * sizeof(*c->fields))))
        return -1;
    memcpy(c->in, cb->buf + cb->off, n);
    c->in_off = 0;
    c->in_len = (uint32_t)n;
    return 0;
}

void h1_exchange_done(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    if (!t->term)
        t->term = TERM_COMPLETE;
    http_log_exchange(c);
    /* the next request starts after this one's body, if all of it was read */
    bool body_read = t->rb.done || t->m.body == H1_BODY_NONE;
    bool close = t->close_after || !body_read || t->head_len == 0;
    if (!close && c->in)
        c->in_off = t->body_off <= c->in_len ? t->body_off : c->in_len;
    if (!close && t->cb.buf && t->cb.off < t->cb.len && keep_pipelined(c) < 0)
        close = true;
    txn_release(c);
    if (close) {
        h1_close(c, TERM_NONE);
        return;
    }
    if (c->in) {
        if (c->in_off == c->in_len)
            go_bare(c);
        else
            h1_head_init(&c->t->req, c->fields, (size_t)lh_of(c)->max_headers);
    }
    c->st = H1_IDLE;
    c->idle_since = loop_now(&c->conn.w->loop);
    if (c->stopping && !c->in) {
        h1_close(c, TERM_SHUTDOWN);
        return;
    }
    h1_rearm(c);
}

/* Closes the client connection. An exchange in progress gets its log line. The FIN is
 * sent after reading what the client already sent, so that unread request bytes do not
 * make the kernel reset the connection under our last response. */
void h1_close(struct h1_conn *c, enum term why)
{
    struct worker *w = c->conn.w;
    if (h1_dead(c))
        return;
    if (c->t && c->t->start_ms) {
        if (!c->t->term && c->stream && c->t->in_tunnel) { /* the stream ended the tunnel */
            c->t->term = TERM_UPGRADED;
            c->t->error = c->t->error ? c->t->error : term_name(why);
        }
        if (!c->t->term)
            c->t->term = why;
        http_log_exchange(c);
    }
    timer_cancel(&w->loop, &c->timer);
    txn_release(c);
    go_bare(c);
    if (c->stream) { /* an HTTP/2 stream: the owner is told; no slot, not listed */
        struct h1_stream_link *link = c->stream;
        sock_close(&c->client, false);
        runtime_unref(c->conn.rt);
        if (loop_defer_free(&w->loop, c) < 0)
            log_error("out of memory: leaking one stream object");
        link->gone(link);
        return;
    }
    if (why == TERM_NONE || why == TERM_SHUTDOWN || why == TERM_IDLE_TIMEOUT) {
        char sink[4096];
        sock_free_ssl(&c->client, true); /* close_notify, in the FIN's segment */
        shutdown(c->client.h.fd, SHUT_WR);
        for (int i = 0; i < 16 && recv(c->client.h.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++) {
        }
    }
    sock_close(&c->client, true);
    free(c->tls);
    c->tls = NULL;
    conn_release(&c->conn);
}

/* ---- events ---- */

static void advance(struct h1_conn *c)
{
    for (int guard = 0; guard < 1000 && !h1_dead(c); guard++) {
        enum h1_state st = c->st;
        unsigned reqs = c->requests;
        switch (st) {
        case H1_PROXY:
            read_proxy_header(c);
            if (c->st == H1_PROXY)
                return;
            continue; /* the request may have come with the header */
        case H1_TLS:
            tls_accept(c);
            if (c->st == H1_TLS)
                return;
            continue; /* the request may have come with the Finished */
        case H1_IDLE:
        case H1_HEAD:
            read_head(c);
            break;
        case H1_REPLY:
            h1_reply_step(c);
            break;
        default:
            h1_up_step(c);
            break;
        }
        /* go on while an exchange ended and pipelined bytes wait (no recursion) */
        if (h1_dead(c) || c->st != H1_IDLE || (st == H1_IDLE && reqs == c->requests))
            return;
        if (!(c->in && c->in_len > c->in_off) && !c->client.readable)
            return;
    }
}

static void on_client_event(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    struct h1_conn *c = (struct h1_conn *)((char *)h - offsetof(struct h1_conn, client.h));
    if (h1_dead(c))
        return;
    sock_on_events(&c->client, events);
    advance(c);
    /* an EPOLLOUT edge with nothing left to write: drop EPOLLOUT until the next EAGAIN */
    if (!h1_dead(c) && c->client.out_armed && c->client.writable && !(events & EPOLLIN))
        sock_set_out(&c->client, false);
}

void h1_up_event(struct h1_conn *c); /* h1_upstream.c: an upconn event for c */

void h1_up_event(struct h1_conn *c)
{
    advance(c);
}

/* ---- conn_ops ---- */

static void h1_start(struct worker *w, struct rt_listener *l, int fd, const struct sockaddr *peer,
                     socklen_t peer_len)
{
    struct h1_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        conn_release_slot(l);
        return;
    }
    conn_init(&c->conn, &h1_conn_ops, w, l);
    c->client.h.fd = fd;
    c->client.h.cb = on_client_event;
    c->client.loop = &w->loop;
    memcpy(&c->client_addr, peer,
           peer_len < sizeof(c->client_addr) ? peer_len : sizeof(c->client_addr));
    timer_init(&c->timer, on_timer);
    if (loop_add(&w->loop, &c->client.h, SOCK_EVENTS_IN) < 0) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    c->client.writable = true;
    if (l->cfg->proxy_protocol_accept) {
        c->st = H1_PROXY;
        c->idle_since = c->conn.start_ms;
        h1_rearm(c);
    } else {
        enter_first_state(c);
    }
    /* the request often came with the handshake's last ACK: read it now */
    c->client.readable = true;
    advance(c);
}

struct h1_conn *h1_stream_open(struct conn *parent, struct sock_mem *mem,
                               struct h1_stream_link *link, const union sockaddr_any *client,
                               const union sockaddr_any *local, bool have_local,
                               struct tls_conn_info *tls)
{
    struct worker *w = parent->w;
    struct h1_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->conn.ops = &h1_conn_ops;
    c->conn.w = w;
    c->conn.rt = runtime_ref(parent->rt);
    c->conn.listener = parent->listener;
    c->conn.start_ms = loop_now(&w->loop);
    c->stream = link;
    c->client.h.fd = -1;
    c->client.mem = mem;
    c->client.loop = &w->loop;
    c->client.readable = c->client.writable = true;
    c->client_addr = *client;
    c->local_addr = *local;
    c->have_local = have_local;
    c->tls = tls;
    timer_init(&c->timer, on_timer);
    c->st = H1_IDLE;
    c->idle_since = c->conn.start_ms;
    h1_rearm(c);
    return c;
}

void h1_stream_event(struct h1_conn *c)
{
    if (h1_dead(c))
        return;
    advance(c);
}

static void h1_close_op(struct conn *base, enum term why)
{
    h1_close((struct h1_conn *)base, why);
}

static void h1_rearm_op(struct conn *base)
{
    struct h1_conn *c = (struct h1_conn *)base;
    h1_rearm(c);
}

/* A handshake step that the worker's budget deferred. */
static void h1_step_op(struct conn *base)
{
    struct h1_conn *c = (struct h1_conn *)base;
    if (c->st == H1_TLS)
        advance(c); /* the client's handshake */
    else
        h1_up_tls_resume(c); /* a handshake with an https server */
}

/* Graceful stop: an idle connection closes now, a busy one after its response. */
static void h1_stop_op(struct conn *base)
{
    struct h1_conn *c = (struct h1_conn *)base;
    c->stopping = true;
    if (c->t)
        c->t->close_after = true;
    if (c->st == H1_IDLE && !(c->in && c->in_len > c->in_off))
        h1_close(c, TERM_SHUTDOWN);
}

const struct conn_ops h1_conn_ops = {
    .name = "http",
    .start = h1_start,
    .close = h1_close_op,
    .rearm = h1_rearm_op,
    .step = h1_step_op,
    .stop = h1_stop_op,
};
