/* The server side of an HTTP exchange: pick a server (balancing, retries, passive health
 * through upstream/connect.h), take an idle pooled connection to it or connect a new
 * one, send the request head and body, read and check the response head, forward the
 * response, and give the connection back to the pool when the exchange ended cleanly
 * and both sides allow keep-alive. A 101 to a WebSocket request turns the exchange into
 * a tunnel.
 *
 * Retries (shared/spec/http.md): a connect failure moves on to the next untried server
 * (up to the backend's retries); a reused connection that fails before any response
 * byte is retried once on a new connection to the same server when the request can be
 * replayed (idempotent method or no body, and the whole body still in the head buffer);
 * once a byte of a non-replayable request reached a server it is never retried: 502. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/affinity.h"
#include "http/h1_conn.h"
#include "http/h1_fields.h"
#include "http/h2_up.h"
#include "http/head.h"
#include "proxy/tls_step.h"
#include "proxy/tunnel.h"
#include "tls/tls_info.h"

void h1_up_event(struct h1_conn *c);

static int pick_and_go(struct h1_conn *c);
static void exchange_step(struct h1_conn *c);

static uint64_t now_ms(struct h1_conn *c)
{
    return loop_now(&c->conn.w->loop);
}

static bool has_body(const struct h1_txn *t)
{
    return t->m.body != H1_BODY_NONE && !(t->m.body == H1_BODY_LENGTH && t->m.length == 0);
}

static bool replayable(const struct h1_txn *t)
{
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    if (t->body_spilled)
        return false;
    if (!has_body(t))
        return true;
    for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
        if (h1_str_ieq(t->req.method, idem[i]) && strlen(idem[i]) == t->req.method.len)
            return true;
    return false;
}

static void on_up_io(struct upconn *u, uint32_t events)
{
    struct h1_conn *c = u->owner;
    sock_on_events(&u->sock, events);
    h1_up_event(c);
    if (!h1_dead(c) && c->t && c->t->up == u && c->st != H1_CONNECT && u->sock.out_armed &&
        u->sock.writable && !u->sock.unflushed && !(events & EPOLLIN))
        sock_set_out(&u->sock, false);
}

static void attach(struct h1_conn *c, struct upconn *u)
{
    c->t->up = u;
    u->owner = c;
    u->on_io = on_up_io;
}

void h1_up_release(struct h1_conn *c, bool reusable)
{
    struct h1_txn *t = c->t;
    struct upconn *u = t->up;
    if (!u)
        return;
    t->up = NULL;
    const struct cfg_backend *b = t->backend ? t->backend->cfg : NULL;
    if (reusable && b && !u->sock.mem && t->req_dir.pending == 0 && t->resp_dir.pending == 0)
        upool_put(u, b->keepalive_max_idle, b->keepalive_idle_timeout_ms);
    else /* after a complete exchange, a TLS connection ends with close_notify */
        upconn_close(u, !t->in_tunnel && t->resp_head && t->sb.done && t->rb.done);
}

/* Writes s[off, len) to dst. Returns 1 when all is written, 0 when dst is full, or a
 * negative errno. */
static int write_span(struct sock *dst, struct h1_span *s, uint64_t *count)
{
    while (s->off < s->len) {
        if (!dst->writable)
            return 0;
        ssize_t w = sock_write(dst, s->buf + s->off, s->len - s->off, false, false);
        if (w == -EAGAIN) {
            sock_blocked(dst);
            return 0;
        }
        if (w <= 0)
            return w < 0 ? (int)w : -EIO;
        s->off += (uint32_t)w;
        if (count)
            *count += (uint64_t)w;
    }
    return 1;
}

/* ---- connecting ---- */

static void send_start(struct h1_conn *c);

static void connect_failed(struct h1_conn *c, const char *why)
{
    struct h1_txn *t = c->t;
    t->error = why;
    upconn_free(t->up);
    t->up = NULL;
    up_failed(&t->at, c->conn.w->index, why);
    pick_and_go(c);
}

/* Fills c->local_addr (the address the client reached) when no PROXY header gave it. */
static void know_local(struct h1_conn *c)
{
    if (c->have_local)
        return;
    socklen_t len = sizeof(c->local_addr);
    if (getsockname(c->client.h.fd, &c->local_addr.sa, &len) < 0)
        memset(&c->local_addr, 0, sizeof(c->local_addr));
    c->have_local = true;
}

/* The connection to t->at.server is up (TCP, and TLS on an https backend): counts it
 * and sends the request. connect_ms covers both. */
static void connected(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct worker *w = c->conn.w;
    if (!t->up->sock.mem) /* an HTTP/2 session counts its own connection */
        counter_add(&t->at.server->slots[w->index].connections, 1);
    t->connect_ms = now_ms(c) - t->at.start_ms;
    t->connected = true;
    hist_observe(&t->backend->stats->slots[w->index].connect, t->connect_ms * 1000);
    send_start(c);
}

/* H1_CONNECT on an https backend: one step of the TLS handshake with the server, under
 * the worker's handshake budget (a deferred step comes back through h1_up_tls_resume).
 * A failed handshake is a failed connect: counted, logged, and the next server tried. */
static void tls_connect_step(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct sock *srv = &t->up->sock;
    if (!tls_step_ready(srv) || !worker_budget_take(c->conn.w, &c->conn))
        return;
    int r = tls_step_run(srv, t->tls_error, sizeof(t->tls_error));
    if (r == 0)
        return;
    if (r < 0) {
        log_warn("backend %s: TLS handshake with server %s failed: %s", t->backend->cfg->name,
                 t->at.server->address, t->tls_error);
        connect_failed(c, t->tls_error);
        return;
    }
    connected(c);
}

void h1_up_tls_resume(struct h1_conn *c)
{
    if (c->st == H1_CONNECT && c->t && c->t->up && c->t->up->sock.ssl)
        h1_up_event(c);
}

static void finish_connect(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct upconn *u = t->up;
    if (u->sock.mem) { /* a stream of an HTTP/2 session (h2_up.h), which connected */
        if (h2up_connect_result(u, t->tls_error, sizeof(t->tls_error)) < 0)
            connect_failed(c, t->tls_error);
        else
            connected(c);
        return;
    }
    int err = up_connect_result(&t->at, &u->sock);
    if (err) {
        connect_failed(c, strerror(err));
        return;
    }
    const struct cfg_backend *b = t->backend->cfg;
    if (b->proxy_protocol != PP_NONE) { /* in clear, before any TLS byte */
        know_local(c);
        if (up_send_proxy_header(&u->sock, b->proxy_protocol == PP_V1 ? 1 : 2, &c->client_addr.sa,
                                 &c->local_addr.sa, NULL, NULL) < 0) {
            h1_reply(c, 502, true, TERM_SERVER_ERROR, "cannot send PROXY header");
            return;
        }
        u->has_peer = true; /* the server attributes all it gets here to this client */
        u->peer_client = c->client_addr;
        u->peer_local = c->local_addr;
    }
    if (t->backend->tls) {
        /* SNI and the name verified: the backend's tls.sni, else the server's DNS name */
        if (tls_step_client_init(&u->sock, t->backend->tls, t->at.server->addr.host) < 0) {
            connect_failed(c, "cannot create TLS session to the server");
            return;
        }
        tls_connect_step(c); /* the ClientHello leaves now */
        return;
    }
    connected(c);
}

/* http.version 2: a stream on an HTTP/2 session to t->at.server (h2_up.h), sent at
 * once when the session is up, else H1_CONNECT until it is. Returns 0, or -1 after an
 * immediate failure (counted; the server let go). */
static int open_h2_stream(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    bool ready, reused;
    struct upconn *u = h2up_open(c->conn.w, t->backend, t->at.server, &ready, &reused, t->tls_error,
                                 sizeof(t->tls_error));
    if (!t->at.start_ms)
        t->at.start_ms = now_ms(c);
    if (!u) {
        t->error = t->tls_error;
        up_failed(&t->at, c->conn.w->index, t->tls_error);
        return -1;
    }
    attach(c, u);
    if (ready && reused) { /* a connection in use already: like a pooled one */
        t->reused = true;
        counter_add(&t->backend->stats->slots[c->conn.w->index].pool_reused, 1);
        send_start(c);
        return 0;
    }
    if (ready) { /* a new connection, up at once */
        connected(c);
        return 0;
    }
    c->st = H1_CONNECT;
    c->phase_deadline = now_ms(c) + t->backend->cfg->connect_timeout_ms;
    h1_rearm(c);
    return 0;
}

/* Connects a new connection to t->at.server. Returns 0 (connecting or sent), -1 after an
 * immediate failure (counted; the server let go). */
static int connect_new(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    if (t->backend->cfg->http.version == 2)
        return open_h2_stream(c);
    struct upconn *u = upconn_new(c->conn.w, t->at.server);
    if (!u) {
        up_release(&t->at);
        t->error = "out of memory";
        return -1;
    }
    attach(c, u);
    bool done;
    const char *why = NULL;
    if (up_connect(&t->at, &u->sock, true, &done, &why, now_ms(c)) < 0) {
        t->error = why;
        upconn_free(u);
        t->up = NULL;
        up_failed(&t->at, c->conn.w->index, why);
        return -1;
    }
    c->st = H1_CONNECT;
    c->phase_deadline = now_ms(c) + t->backend->cfg->connect_timeout_ms;
    h1_rearm(c);
    if (done)
        finish_connect(c);
    return 0;
}

/* Picks the next server and reuses or connects. Returns 0, or -1 when it answered. */
static int pick_and_go(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct worker *w = c->conn.w;
    uint64_t key = http_balance_key(c);
    for (;;) {
        enum up_pick_result r = http_affinity_pick(c) ? UP_PICKED : up_pick(&t->at, w->index, key);
        if (r == UP_NO_SERVER) {
            if (h1_queue_wait(c))
                return 0;
            h1_queue_leave(c);
            h1_reply(c, 503, has_body(t), TERM_NO_SERVER,
                     t->queued_until ? "every server at max_connections_per_server"
                                     : "no usable server");
            return -1;
        }
        h1_queue_leave(c);
        if (r == UP_GIVE_UP) {
            h1_reply(c, 502, has_body(t), TERM_CONNECT_FAILED,
                     t->error ? t->error : "no server could be reached");
            return -1;
        }
        bool pp = t->backend->cfg->proxy_protocol != PP_NONE;
        if (pp)
            know_local(c);
        struct upconn *u = t->backend->cfg->http.version == 2
                               ? NULL
                               : upool_take(w, t->at.server, pp ? &c->client_addr.sa : NULL,
                                            pp ? &c->local_addr.sa : NULL);
        if (u) {
            attach(c, u);
            t->reused = true;
            counter_add(&t->backend->stats->slots[w->index].pool_reused, 1);
            send_start(c);
            return 0;
        }
        if (connect_new(c) == 0)
            return 0;
    }
}

void h1_up_start(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    t->at.backend = t->backend;
    t->use_splice = !c->client.ssl && !c->client.mem; /* a socket, in clear, both ends */
    t->counted_active = true;
    counter_add(&c->conn.listener->stats->slots[c->conn.w->index].http_active, 1);
    pick_and_go(c);
}

/* ---- the request ---- */

static void send_start(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    const struct cfg_listener_http *lh = &c->conn.listener->cfg->http;
    if (h1_xmem(c) < 0) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    char ip[ADDR_TEXT_MAX];
    addr_format_ip(&c->client_addr.sa, ip, sizeof(ip));
    struct head_req_opts o = {.lh = lh,
                              .backend_host = t->backend->cfg->http.host,
                              .client_ip = ip,
                              .client_v6 = c->client_addr.sa.sa_family == AF_INET6,
                              .https = c->client.ssl != NULL};
    const struct cfg_route *r = t->rp;
    struct tmpl_ctx x;
    if (r && (r->request_headers.any || r->rewrite.path || r->rewrite.host)) {
        o.host = r->rewrite.host;
        if (r->request_headers.any) {
            h1_policy_ctx(c, &x);
            x.client_ip = (struct h1_str){ip, strlen(ip)}; /* formatted above already */
            o.ops = &r->request_headers;
            o.tx = &x;
        }
        if (r->rewrite.path && h1_policy_rewrite(r, t->rpath, t->x.buf, t->x.cap, &o.path) < 0) {
            h1_reply(c, 414, true, TERM_BAD_REQUEST, "rewritten path too long");
            return;
        }
        o.query = t->rquery;
    }
    if (t->request_id.p == t->rid) {
        o.request_id = t->rid;
        o.request_id_len = t->request_id.len;
    }
    size_t n = head_write_request(&t->req, &t->m, &o, t->out.buf, t->out.cap);
    if (n == 0) {
        h1_reply(c, 431, true, TERM_BAD_REQUEST, "request head too large to forward");
        return;
    }
    t->out.off = 0;
    t->out.len = (uint32_t)n;
    t->x.off = t->x.len = 0;
    h1_head_init(&t->resp, (struct h1_header *)(void *)t->xmem, H1_RESP_FIELDS);
    t->head_out = t->resp_head = false;
    t->body_off = c->in_off + t->head_len;
    h1_body_init(&t->rb, t->m.body, t->m.length, lh->max_body_size);
    t->up->requests++;
    if (t->up->sock.ssl || t->up->sock.mem)
        t->use_splice = false; /* splice() would move the raw TLS records */
    t->send_ms = t->last_io_ms = t->last_client_ms = now_ms(c);
    t->sent_ms = 0;
    c->st = H1_EXCHANGE;
    h1_rearm(c);
    exchange_step(c);
}

/* The server failed before any response byte reached the client. */
static void fail_before_response(struct h1_conn *c, enum term term, const char *why)
{
    struct h1_txn *t = c->t;
    bool retry = t->reused && !t->retried && !t->resp_head && replayable(t);
    upconn_free(t->up);
    t->up = NULL;
    if (retry) {
        t->retried = true;
        t->reused = false;
        if (connect_new(c) == 0 || pick_and_go(c) == 0)
            return;
        return;
    }
    if (t->resp_started) {
        t->term = TERM_SERVER_ABORTED;
        t->error = why;
        h1_close(c, TERM_SERVER_ABORTED);
        return;
    }
    h1_reply(c, 502, !t->rb.done, term, why);
}

/* Ends the exchange and the client connection now, logged with `term` and `why`. */
static void abort_exchange(struct h1_conn *c, enum term term, const char *why)
{
    c->t->term = term;
    c->t->error = why;
    h1_close(c, term);
}

static void client_gone(struct h1_conn *c, const char *why)
{
    abort_exchange(c, TERM_CLIENT_ABORTED, why);
}

/* Request body framing error (chunked): 400 when nothing was answered yet. */
static void bad_request_body(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    const char *why = h1_error_reason(t->rb.ck.error);
    if (t->resp_started) {
        client_gone(c, why);
        return;
    }
    h1_reply(c, h1_error_status(t->rb.ck.error), true, TERM_BAD_REQUEST, why);
}

/* Moves request body bytes. Returns 0 to go on, -1 when c was answered or closed. */
static int req_body_step(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct sock *srv = &t->up->sock;
    int werr = 0;
    uint64_t sent = 0;
    if (!t->body_spilled) {
        struct h1_span s = {c->in, t->body_off, c->in ? c->in_len : 0, c->in_cap};
        int r = s.off < s.len ? h1_body_from_span(&t->rb, &s, srv, &sent, &werr) : 0;
        t->body_off = s.off;
        h1_count_in(c, sent);
        if (r == -1) {
            bad_request_body(c);
            return -1;
        }
        if (r == -2) {
            fail_before_response(c, TERM_SERVER_ABORTED, "write to server failed");
            return -1;
        }
        if (t->rb.done || (s.off < s.len && !srv->writable))
            goto done;
        /* the head buffer is used up (a chunked body may leave an incomplete line in it):
           the rest comes from the socket */
        t->body_spilled = true;
        if (t->rb.kind == H1_BODY_CHUNKED) {
            t->cb.cap = 16 * 1024;
            t->cb.buf = malloc(t->cb.cap);
            if (!t->cb.buf) {
                h1_close(c, TERM_INTERNAL_ERROR);
                return -1;
            }
            t->cb.off = 0;
            t->cb.len = s.len - s.off;
            memcpy(t->cb.buf, s.buf + s.off, t->cb.len);
            t->body_off = s.len;
        } else {
            t->req_dir.limited = true;
            t->req_dir.budget = t->rb.left;
        }
    }
    if (t->rb.kind == H1_BODY_LENGTH) {
        struct pump_ctx x = {c->conn.w->pipes, now_ms(c), &t->last_client_ms,
                             &t->bytes_in,     NULL,      &t->use_splice};
        int err = 0;
        enum pump_result r = pump_run(&x, &t->req_dir, &c->client, srv, false, &err);
        if (r == PUMP_SRC_ERR) {
            client_gone(c, "client failed sending the body");
            return -1;
        }
        if (r == PUMP_DST_ERR) {
            fail_before_response(c, TERM_SERVER_ABORTED, "write to server failed");
            return -1;
        }
        t->rb.left = t->req_dir.budget + t->req_dir.pending;
        if (t->rb.left == 0) {
            /* done once the last bytes left OpenSSL's write buffer too (TLS server) */
            int f = sock_flush(srv);
            if (f < 0) {
                fail_before_response(c, TERM_SERVER_ABORTED, "write to server failed");
                return -1;
            }
            t->rb.done = f == 1;
        } else if (c->client.eof) {
            client_gone(c, "client closed within the body");
            return -1;
        }
    } else {
        for (;;) {
            sent = 0;
            int r = h1_body_from_span(&t->rb, &t->cb, srv, &sent, &werr);
            h1_count_in(c, sent);
            if (r == -1) {
                bad_request_body(c);
                return -1;
            }
            if (r == -2) {
                fail_before_response(c, TERM_SERVER_ABORTED, "write to server failed");
                return -1;
            }
            if (r == 1)
                break;
            if (t->cb.off < t->cb.len && !srv->writable)
                break;
            if (t->cb.off > 0) {
                memmove(t->cb.buf, t->cb.buf + t->cb.off, t->cb.len - t->cb.off);
                t->cb.len -= t->cb.off;
                t->cb.off = 0;
            }
            if (!c->client.readable || t->cb.len == t->cb.cap)
                break;
            ssize_t n = sock_read(&c->client, t->cb.buf + t->cb.len, t->cb.cap - t->cb.len);
            if (n > 0) {
                t->cb.len += (uint32_t)n;
                t->last_client_ms = now_ms(c);
            } else if (n == -EAGAIN || n == SOCK_WANTS_OTHER_IO) {
                c->client.readable = false;
            } else {
                client_gone(c, n == 0 ? "client closed within the body" : "client read error");
                return -1;
            }
        }
    }
done:
    if (t->rb.done && !t->sent_ms) {
        t->sent_ms = now_ms(c);
        h1_rearm(c);
    }
    return 0;
}

/* ---- the response ---- */

static void bad_response(struct h1_conn *c, const char *why)
{
    struct h1_txn *t = c->t;
    upconn_free(t->up);
    t->up = NULL;
    h1_reply(c, 502, !t->rb.done, TERM_BAD_RESPONSE, why);
}

/* Reads and checks the response head. Returns 1 once a final head is ready to go to the
 * client (in t->out), 0 while waiting, -1 when c was answered or closed. */
static int read_resp_head(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct sock *srv = &t->up->sock;
    struct h1_limits lim = {t->x.cap, H1_RESP_FIELDS};
    for (;;) {
        if (t->x.len > 0) {
            int r = h1_parse_response(t->x.buf, t->x.len, &lim, &t->resp);
            if (r == H1_ERROR) {
                bad_response(c, h1_error_reason(t->resp.error));
                return -1;
            }
            if (r > 0) {
                struct h1_exchange xe = {h1_str_ieq(t->req.method, "HEAD"), false, t->m.websocket};
                enum h1_error e = h1_check_response(&t->resp, &xe, &t->rm);
                if (e != H1_OK) {
                    bad_response(c, h1_error_reason(e));
                    return -1;
                }
                if (t->rm.interim) {
                    /* 1xx (100 Continue, 103): passed on to HTTP/1.1 clients when the
                       socket takes it at once, then the final response follows */
                    if (t->req.minor_version == 1 && c->client.writable) {
                        struct head_resp_opts o = {.close = false};
                        size_t n = head_write_response(&t->resp, &o, t->out.buf, t->out.cap);
                        if (n)
                            (void)sock_write(&c->client, t->out.buf, n, false, false);
                    }
                    memmove(t->x.buf, t->x.buf + r, t->x.len - (uint32_t)r);
                    t->x.len -= (uint32_t)r;
                    h1_head_init(&t->resp, (struct h1_header *)(void *)t->xmem, H1_RESP_FIELDS);
                    continue;
                }
                if (t->req.minor_version == 0 && t->rm.body == H1_BODY_CHUNKED) {
                    bad_response(c, "chunked response to an HTTP/1.0 request");
                    return -1;
                }
                struct worker *w = c->conn.w;
                t->status = t->resp.status;
                t->resp_head = true;
                t->resp_ms = now_ms(c);
                hist_observe(&t->backend->stats->slots[w->index].upstream_response,
                             (t->resp_ms - t->send_ms) * 1000);
                bool tunnel = t->rm.body == H1_BODY_TUNNEL;
                if (t->rm.body == H1_BODY_CLOSE || !t->rb.done)
                    t->close_after = true;
                struct head_resp_opts o = {.close = t->close_after,
                                           .client_10_ka = t->req.minor_version == 0,
                                           .upgrade = tunnel,
                                           .keep_te = t->rm.body == H1_BODY_CHUNKED};
                struct tmpl_ctx x;
                char code[6];
                if (t->rp && t->rp->response_headers.any) {
                    h1_policy_ctx(c, &x);
                    x.status = (struct h1_str){code, tmpl_utoa((unsigned)t->status, code)};
                    if (t->at.server)
                        x.server =
                            (struct h1_str){t->at.server->address, strlen(t->at.server->address)};
                    o.ops = &t->rp->response_headers;
                    o.tx = &x;
                }
                size_t n = head_write_response(&t->resp, &o, t->out.buf, t->out.cap);
                if (n)
                    n = http_affinity_set_cookie(c, t->out.buf, n, t->out.cap);
                if (n == 0) {
                    bad_response(c, "response head too large");
                    return -1;
                }
                t->out.off = 0;
                t->out.len = (uint32_t)n;
                h1_body_init(&t->sb, tunnel ? H1_BODY_NONE : t->rm.body, t->rm.length, 0);
                t->x.off = (uint32_t)r;
                h1_rearm(c);
                return 1;
            }
            if (t->x.len == t->x.cap) {
                bad_response(c, "response head too large");
                return -1;
            }
        }
        if (!srv->readable)
            return 0;
        size_t room = t->x.cap - t->x.len;
        ssize_t n = sock_read(srv, t->x.buf + t->x.len, room);
        if (n > 0) {
            t->x.len += (uint32_t)n;
            t->last_io_ms = now_ms(c);
            if (!srv->ssl && (size_t)n < room && !srv->rdhup)
                srv->readable = false; /* drained; the next bytes raise a new edge */
            continue;
        }
        if (n == -EAGAIN || n == SOCK_WANTS_OTHER_IO) {
            srv->readable = false;
            return 0;
        }
        const char *why = n == 0 ? "server closed before a complete response head"
                                 : "server reset before a complete response head";
        if (n == -EPROTO && srv->ssl) /* e.g. a TLS 1.3 server refusing our certificate */
            why = tls_ssl_error(srv->ssl, t->tls_error, sizeof(t->tls_error));
        fail_before_response(c, t->x.len ? TERM_BAD_RESPONSE : TERM_SERVER_ABORTED, why);
        return -1;
    }
}

static void server_gone(struct h1_conn *c, const char *why)
{
    abort_exchange(c, TERM_SERVER_ABORTED, why);
}

/* All response body bytes were handed to the client socket: the body is done once the
 * last of them left OpenSSL's write buffer too (https listeners coalesce bulk records).
 * Returns 1 done, 0 to wait for writability, -1 when c was closed. */
static int resp_body_flushed(struct h1_conn *c)
{
    int f = sock_flush(&c->client);
    if (f < 0) {
        client_gone(c, "client went away");
        return -1;
    }
    c->t->sb.done = f == 1;
    return f;
}

/* Moves response body bytes. Returns 1 when the response ended, 0 to wait, -1 when c
 * was closed. */
static int resp_body_step(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct sock *srv = &t->up->sock;
    struct h1_bodyfwd *b = &t->sb;
    if (b->done)
        return 1;
    int werr = 0;
    if (b->kind == H1_BODY_CHUNKED || t->x.off < t->x.len) {
        for (;;) {
            int r = h1_body_from_span(b, &t->x, &c->client, &t->bytes_out, &werr);
            if (r == -1) {
                server_gone(c, h1_error_reason(b->ck.error));
                return -1;
            }
            if (r == -2) {
                client_gone(c, "client went away");
                return -1;
            }
            if (r == 1)
                return 1;
            if (t->x.off < t->x.len && !c->client.writable)
                return 0;
            if (t->x.off == t->x.len)
                t->x.off = t->x.len = 0;
            if (b->kind != H1_BODY_CHUNKED)
                break; /* the rest goes through the pump */
            if (t->x.off > 0) {
                memmove(t->x.buf, t->x.buf + t->x.off, t->x.len - t->x.off);
                t->x.len -= t->x.off;
                t->x.off = 0;
            }
            if (!srv->readable)
                return 0;
            ssize_t n = sock_read(srv, t->x.buf + t->x.len, t->x.cap - t->x.len);
            if (n > 0) {
                t->x.len += (uint32_t)n;
                t->last_io_ms = now_ms(c);
            } else if (n == -EAGAIN || n == SOCK_WANTS_OTHER_IO) {
                srv->readable = false;
                return 0;
            } else {
                server_gone(c, "server closed within a chunked body");
                return -1;
            }
        }
    }
    if (!t->resp_dir.limited && b->kind == H1_BODY_LENGTH) {
        t->resp_dir.limited = true;
        t->resp_dir.budget = b->left;
    }
    struct pump_ctx x = {c->conn.w->pipes, now_ms(c),     &t->last_io_ms, NULL,
                         &t->bytes_out,    &t->use_splice};
    int err = 0;
    enum pump_result r =
        pump_run(&x, &t->resp_dir, srv, &c->client, b->kind == H1_BODY_CLOSE, &err);
    if (r == PUMP_SRC_ERR) {
        server_gone(c, "server failed within the body");
        return -1;
    }
    if (r == PUMP_DST_ERR) {
        client_gone(c, "client went away");
        return -1;
    }
    if (b->kind == H1_BODY_LENGTH) {
        b->left = t->resp_dir.budget + t->resp_dir.pending;
        if (b->left == 0)
            return resp_body_flushed(c);
        if (srv->eof) {
            server_gone(c, "server closed within the body");
            return -1;
        }
        return 0;
    }
    if (srv->eof && t->resp_dir.pending == 0) /* close-delimited: the end of the body */
        return resp_body_flushed(c);
    return 0;
}

/* ---- WebSocket tunnel ---- */

static void tunnel_step(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct sock *srv = &t->up->sock;
    if (!t->tunnel_seeded) {
        /* bytes read past the two heads go first */
        struct h1_span s = {c->in, t->body_off, c->in ? c->in_len : 0, c->in_cap};
        int r1 = write_span(&c->client, &t->x, &t->bytes_out);
        int r2 = s.off < s.len ? write_span(srv, &s, &t->bytes_in) : 1;
        t->body_off = s.off;
        if (r1 < 0 || r2 < 0) {
            t->error = "tunnel write failed";
            h1_close(c, TERM_UPGRADED);
            return;
        }
        if (r1 == 0 || r2 == 0)
            return;
        t->tunnel_seeded = true;
    }
    struct pump_ctx up = {c->conn.w->pipes, now_ms(c), &t->last_io_ms,
                          &t->bytes_in,     NULL,      &t->use_splice};
    struct pump_ctx down = {c->conn.w->pipes, now_ms(c),     &t->last_io_ms, NULL,
                            &t->bytes_out,    &t->use_splice};
    const struct tunnel tn = {&c->client, srv, &t->req_dir, &t->resp_dir};
    enum term why;
    struct sock *failed = NULL;
    int err = 0;
    if (tunnel_run(&tn, &up, &down, &t->first_fin, &why, &failed, &err) == TUNNEL_OPEN)
        return;
    t->term = TERM_UPGRADED;
    t->error = failed ? strerror(-err) : term_name(why);
    /* a reset on one side is passed on as a reset to the other (as at L4) */
    if (why == TERM_CLIENT_RESET)
        sock_reset_on_close(srv);
    else if (why == TERM_SERVER_RESET)
        sock_reset_on_close(&c->client);
    h1_close(c, TERM_UPGRADED);
}

static void enter_tunnel(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    c->st = H1_TUNNEL;
    t->in_tunnel = true;
    t->close_after = true;
    pump_release(c->conn.w->pipes, &t->req_dir);
    pump_release(c->conn.w->pipes, &t->resp_dir);
    memset(&t->req_dir, 0, sizeof(t->req_dir));
    memset(&t->resp_dir, 0, sizeof(t->resp_dir));
    counter_add(&c->conn.listener->stats->slots[c->conn.w->index].ws_active, 1);
    t->last_io_ms = now_ms(c);
    h1_rearm(c);
    tunnel_step(c);
}

/* ---- the exchange ---- */

static void exchange_step(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct upconn *u = t->up;
    if (!t->head_out) {
        /* the head, and the body bytes that came with it, in one send */
        int r;
        if (t->rb.done) {
            r = write_span(&u->sock, &t->out, NULL);
        } else {
            struct h1_span s = {c->in, t->body_off, c->in ? c->in_len : 0, c->in_cap};
            uint64_t sent = 0;
            r = h1_head_and_body(&t->rb, &t->out, &s, &u->sock, NULL, &sent);
            t->body_off = s.off;
            if (sent)
                h1_count_in(c, sent);
            if (r == -1) {
                bad_request_body(c);
                return;
            }
        }
        if (r < 0) {
            fail_before_response(c, TERM_SERVER_ABORTED, "write to server failed");
            return;
        }
        if (r == 0)
            return;
        t->head_out = true;
        t->out.off = t->out.len = 0;
    }
    if (!t->rb.done && req_body_step(c) < 0)
        return;
    /* TLS: the last records of the request may wait in the write buffer for a socket
       that was full (a coalesced batch); the body is done, so no pump run flushes them */
    if (u->sock.unflushed && u->sock.writable && sock_flush(&u->sock) < 0) {
        fail_before_response(c, TERM_SERVER_ABORTED, "write to server failed");
        return;
    }
    if (t->rb.done && !t->sent_ms) {
        t->sent_ms = now_ms(c);
        h1_rearm(c);
    }
    if (!t->resp_head && read_resp_head(c) <= 0)
        return;
    if (t->out.off < t->out.len) {
        t->resp_started = true;
        /* the head, and the body bytes read with it, in one send */
        bool body = t->rm.body != H1_BODY_TUNNEL && t->rm.body != H1_BODY_NONE;
        int r = body ? h1_head_and_body(&t->sb, &t->out, &t->x, &c->client, &t->bytes_out,
                                        &t->bytes_out)
                     : write_span(&c->client, &t->out, &t->bytes_out);
        if (r == -1) {
            server_gone(c, h1_error_reason(t->sb.ck.error));
            return;
        }
        if (r < 0) {
            client_gone(c, "client went away");
            return;
        }
        if (r == 0)
            return;
    }
    if (t->rm.body == H1_BODY_TUNNEL) {
        enter_tunnel(c);
        return;
    }
    int r = resp_body_step(c);
    if (r <= 0)
        return;
    /* the response ended: the server connection may serve another request */
    int maxr = t->backend->cfg->http.max_requests_per_connection;
    bool reusable = t->rm.keep_alive && t->rb.done && t->sb.kind != H1_BODY_CLOSE &&
                    t->x.off == t->x.len && (maxr == 0 || t->up->requests < (unsigned)maxr);
    h1_up_release(c, reusable);
    t->term = TERM_COMPLETE;
    h1_exchange_done(c);
}

void h1_up_step(struct h1_conn *c)
{
    switch (c->st) {
    case H1_QUEUED:
        h1_queue_client_gone(c);
        break;
    case H1_CONNECT:
        if (c->t->up && c->t->up->sock.ssl)
            tls_connect_step(c);
        else if (c->t->up && c->t->up->sock.writable)
            finish_connect(c);
        break;
    case H1_EXCHANGE:
        exchange_step(c);
        break;
    case H1_TUNNEL:
        tunnel_step(c);
        break;
    default:
        break;
    }
}

uint64_t h1_up_deadline(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    const struct cfg_listener *l = c->conn.listener->cfg;
    uint64_t d = UINT64_MAX;
    switch (c->st) {
    case H1_QUEUED:
    case H1_CONNECT:
        return c->phase_deadline;
    case H1_TUNNEL:
        d = t->last_io_ms + l->http.tunnel_idle_timeout_ms;
        if (t->at.server) { /* a drained or removed server: until its drain_timeout */
            uint64_t drain = atomic_load(&t->at.server->drain_deadline);
            if (drain && drain < d)
                d = drain;
        }
        return d;
    case H1_EXCHANGE:
        if (!t->rb.done)
            d = t->last_client_ms + l->http.body_timeout_ms;
        else if (!t->resp_head)
            d = t->sent_ms + (t->rp && t->rp->timeout_ms
                                  ? t->rp->timeout_ms
                                  : t->backend->cfg->http.response_timeout_ms);
        if (t->resp_head && t->last_io_ms + t->backend->cfg->timeout_ms < d)
            d = t->last_io_ms + t->backend->cfg->timeout_ms;
        if (t->at.server) { /* a drained, disabled or removed server: until drain_timeout */
            uint64_t drain = atomic_load(&t->at.server->drain_deadline);
            if (drain && drain < d)
                d = drain;
        }
        return d;
    default:
        return d;
    }
}

/* The exchange's server was drained, disabled or removed and its drain_timeout passed:
 * 503 when no response head came yet, else the client connection closes (logged drained,
 * "server removed or drained"). */
static void drain_cut(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    if (!t->resp_head && !t->resp_started) {
        h1_up_release(c, false);
        h1_reply(c, 503, true, TERM_DRAINED, "server removed or drained");
        return;
    }
    t->term = TERM_DRAINED;
    t->error = "server removed or drained";
    h1_close(c, TERM_DRAINED);
}

void h1_up_timeout(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    switch (c->st) {
    case H1_QUEUED:
        if (!h1_queue_client_gone(c))
            pick_and_go(c); /* a slot, another poll, or 503 once connect_timeout passed */
        return;
    case H1_CONNECT: /* connect_timeout covers the TLS handshake too */
        connect_failed(c, t->up && t->up->sock.ssl ? "TLS handshake with server timed out"
                                                   : "connect timeout");
        return;
    case H1_TUNNEL:
        t->term = TERM_UPGRADED;
        t->error = "tunnel idle timeout";
        if (t->at.server) {
            uint64_t drain = atomic_load(&t->at.server->drain_deadline);
            if (drain && loop_now(&c->conn.w->loop) >= drain)
                t->error = "server removed or drained";
        }
        h1_close(c, TERM_UPGRADED);
        return;
    case H1_EXCHANGE:
        if (t->at.server && atomic_load(&t->at.server->drain_deadline) &&
            loop_now(&c->conn.w->loop) >= atomic_load(&t->at.server->drain_deadline)) {
            drain_cut(c);
            return;
        }
        if (!t->rb.done) {
            if (t->resp_started) {
                t->term = TERM_BODY_TIMEOUT;
                h1_close(c, TERM_BODY_TIMEOUT);
            } else {
                h1_reply(c, 408, true, TERM_BODY_TIMEOUT, "no request body byte in time");
            }
        } else if (!t->resp_head) {
            h1_up_release(c, false);
            h1_reply(c, 504, false, TERM_RESPONSE_TIMEOUT, "no response head in time");
        } else {
            t->term = TERM_IDLE_TIMEOUT;
            t->error = "no response byte in time";
            h1_close(c, TERM_IDLE_TIMEOUT);
        }
        return;
    default:
        return;
    }
}
