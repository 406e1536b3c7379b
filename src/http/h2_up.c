/* HTTP/2 to servers (see h2_up.h).
 *
 * A session is one connection to a server: its socket (connected and, on https
 * backends, TLS-handshaken by the session itself, with ALPN h2), an nghttp2 client
 * session, and its streams. A stream is the in-memory sock of one engine exchange:
 *   - `out` (the engine writes): the HTTP/1.1 request head, parsed with the strict
 *     parser and submitted as HEADERS; then its body, decoded from its HTTP/1.1 framing
 *     by a data provider that defers while `out` is empty;
 *   - `in` (the engine reads): the response head built from the server's HEADERS, then
 *     DATA (chunk-encoded when the server gave no content-length), then the trailers.
 * A stream lives until both sides are done with it: nghttp2 closed it (or the session
 * died) and the engine closed its sock (sock_mem `closed`). The engine is told of news
 * through its upconn's on_io, from the session's own handler or its soon() work. */
#include "http/h2_up.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/h1_conn.h"
#include "http/h1_fields.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/h2_h1.h"
#include "http/h2_io.h"
#include "proxy/sock_mem.h"
#include "proxy/tls_step.h"
#include "upstream/connect.h"
#include "upstream/server.h"

#define OUT_MAX (64 * 1024)           /* request bytes the engine may write ahead */
#define STREAM_WINDOW (256 * 1024)    /* response bytes a server may send ahead, per stream */
#define CONN_WINDOW (1024 * 1024)     /* ... per connection */
#define HEAD_MAX (64 * 1024)          /* a response head or trailer section, as HTTP/1.1 */
#define REQ_HEAD_FIELDS H2_H1_FIELDS  /* request fields converted */
#define MAX_STREAMS_PER_SESSION 1000u /* whatever the server allows */

enum sess_state { S_CONNECTING, S_TLS, S_READY, S_DEAD };
enum req_state { Q_HEAD, Q_LENGTH, Q_CHUNKED, Q_DONE };

struct h2up_sess;

struct h2up_stream {
    struct h2up_sess *sess; /* NULL once the session is gone */
    struct h2up_stream *prev, *next;
    struct h2up_stream *dirty_next;
    bool dirty;
    struct upconn *u; /* the engine's side; NULL once it closed its sock */
    struct sock_mem mem;
    int32_t id;   /* 0 until submitted */
    bool h2_done; /* nghttp2 closed the stream, or it never opened and never will */
    enum req_state rq;
    struct h2_h1_body body; /* Q_LENGTH, Q_CHUNKED */
    bool deferred;          /* the data provider waits for request bytes */
    bool head_req;          /* HEAD: a response without a body */
    bool http10;            /* the client spoke HTTP/1.0: no chunked response, close-delimited */
    bool final;             /* the final response head went to the engine */
    bool chunked;           /* ... and its body goes chunk-encoded */
    bool resp_done;
    bool told_ready; /* the engine was told the session is up (or failed) */
    bool cancelled;  /* RST_STREAM sent after the engine gave up on it */
    int status;
    struct sock_mem_buf hb; /* the head or trailer section being received */
    char error[128];        /* why the session failed before it was up */
    uint32_t unconsumed;    /* DATA bytes in `in`, not yet given back to the server */
};

struct h2up_sess {
    struct conn work; /* first; only its worker_soon() fields are used */
    struct sock sock;
    struct timer timer;
    struct worker *w;
    struct server *server; /* reference */
    struct h2up_sess *prev, *next;
    nghttp2_session *s;
    enum sess_state st;
    bool goaway;       /* no new streams (server's GOAWAY, drain, max requests) */
    bool got_settings; /* the server's SETTINGS arrived */
    uint32_t peer_max; /* streams assumed allowed until then (known_max_streams) */
    bool closing;
    int max_idle;
    unsigned requests, max_requests;
    uint64_t connect_deadline, idle_timeout_ms, idle_since;
    struct h2up_stream *streams, *dirty;
    unsigned n_streams;
    char error[128]; /* why it failed (connect, handshake) */
    struct h2_out out;
};

static void sess_end(struct h2up_sess *ss, const char *why);
static void sess_run(struct h2up_sess *ss);
static uint32_t known_max_streams(struct worker *w, struct server *s);

static uint64_t now_of(struct h2up_sess *ss)
{
    return loop_now(&ss->w->loop);
}

static const char *server_name(const struct h2up_sess *ss)
{
    return ss->server->address;
}

/* ---- streams ---- */

/* Queues st for a look in the session's next run. */
static void mark(struct h2up_stream *st)
{
    if (!st->sess)
        return;
    if (!st->dirty) {
        st->dirty = true;
        st->dirty_next = st->sess->dirty;
        st->sess->dirty = st;
    }
    worker_soon(st->sess->w, &st->sess->work);
}

static void stream_free(struct h2up_stream *st)
{
    struct h2up_sess *ss = st->sess;
    if (ss) {
        if (st->prev)
            st->prev->next = st->next;
        else
            ss->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        for (struct h2up_stream **p = &ss->dirty; st->dirty && *p; p = &(*p)->dirty_next)
            if (*p == st) {
                *p = st->dirty_next;
                break;
            }
        ss->n_streams--;
        if (ss->n_streams == 0 && ss->st == S_READY) {
            ss->idle_since = now_of(ss);
            if (ss->max_idle == 0)
                ss->goaway = true; /* keepalive.max_idle 0: no connection kept idle */
            else
                timer_arm(&ss->w->loop, &ss->timer, ss->idle_since + ss->idle_timeout_ms);
        }
    }
    sock_mem_free(&st->mem);
    free(st->hb.p);
    free(st);
}

/* The engine's news (sock_mem_ops): only recorded; the session's soon() work acts. */
static void mem_took(void *owner)
{
    struct h2up_stream *st = owner;
    if (st->unconsumed && sock_mem_pending(&st->mem.in) == 0)
        mark(st);
}

static void mem_wrote(void *owner)
{
    struct h2up_stream *st = owner;
    if (st->mem.closed) {
        st->u = NULL;
        if (!st->sess) { /* the session is gone already: nobody else holds st */
            stream_free(st);
            return;
        }
    }
    mark(st);
}

static const struct sock_mem_ops mem_ops = {mem_took, mem_wrote};

/* Tells the engine of st about `events` (EPOLLIN: `in` has news; EPOLLOUT: room in
 * `out`, or the session is up; EPOLLERR: the session failed). */
static void notify(struct h2up_stream *st, uint32_t events)
{
    struct upconn *u = st->u;
    if (u && u->on_io)
        u->on_io(u, events);
}

/* The session failed or closed under st: the engine reads a reset after what it has
 * (or, not connected yet, learns the connect failed). */
static void stream_orphan(struct h2up_stream *st)
{
    st->h2_done = true;
    if (!st->resp_done)
        st->mem.in_reset = true;
    st->mem.in_eof = true;
}

/* ---- the request: HTTP/1.1 from the engine to HEADERS and DATA ---- */

static ssize_t read_req_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)id;
    (void)ud;
    struct h2up_stream *st = src->ptr;
    bool ended;
    ssize_t w =
        h2_h1_body_read(&st->body, &st->mem, s, st->id, buf, length, flags, &st->deferred, &ended);
    if (ended)
        st->rq = Q_DONE;
    if (w >= 0)
        mark(st); /* room in `out`: the engine may write again */
    return w;
}

/* Parses the request head at the front of `out` and submits it. Returns 1 submitted,
 * 0 to wait for more bytes, -1 when it cannot go over HTTP/2 (the stream fails). */
static int submit_request(struct h2up_sess *ss, struct h2up_stream *st)
{
    struct sock_mem_buf *o = &st->mem.out;
    struct h1_header fields[REQ_HEAD_FIELDS];
    struct h1_head head;
    h1_head_init(&head, fields, REQ_HEAD_FIELDS);
    struct h1_limits lim = {OUT_MAX, REQ_HEAD_FIELDS};
    size_t have = sock_mem_pending(o);
    int n = have ? h1_parse_request(o->p + o->off, have, &lim, &head) : H1_NEED_MORE;
    if (n == H1_NEED_MORE)
        return st->mem.out_eof ? -1 : 0;
    struct h1_msg m;
    if (n < 0 || h1_check_request(&head, UINT64_MAX, &m) != H1_OK)
        return -1;
    if (m.upgrade || m.body == H1_BODY_TUNNEL) {
        log_info("HTTP/2 server %s: a WebSocket or upgrade request needs an HTTP/1.1 backend",
                 server_name(ss));
        return -1;
    }
    st->head_req = h1_str_ieq(head.method, "HEAD") && head.method.len == 4;
    st->http10 = head.minor_version == 0;
    nghttp2_nv nv[REQ_HEAD_FIELDS + 5];
    char lc[8192];
    size_t k = 0;
    struct h1_str authority = m.authority;
    const char *scheme = ss->sock.ssl ? "https" : "http";
#define NV(n, v, vl) (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vl), 0}
    nv[k++] = NV(":method", head.method.p, head.method.len);
    nv[k++] = NV(":scheme", scheme, strlen(scheme));
    nv[k++] = NV(":authority", authority.p, authority.len);
    nv[k++] = NV(":path", head.target.p, head.target.len);
    nv[k++] = NV("te", "trailers", 8); /* gRPC servers want it; sluice passes trailers */
#undef NV
    /* Host becomes :authority; cookies and the rest go as they are */
    struct h1_header kept[REQ_HEAD_FIELDS];
    size_t nk = 0;
    for (size_t i = 0; i < head.n_headers; i++)
        if (!(head.headers[i].name.len == 4 && h1_str_ieq(head.headers[i].name, "host")))
            kept[nk++] = head.headers[i];
    k += h2_h1_to_nv(kept, nk, nv + k, REQ_HEAD_FIELDS, lc, sizeof(lc), false);
    bool body = m.body == H1_BODY_CHUNKED || (m.body == H1_BODY_LENGTH && m.length > 0);
    st->rq = !body ? Q_DONE : m.body == H1_BODY_CHUNKED ? Q_CHUNKED : Q_LENGTH;
    st->body = (struct h2_h1_body){.kind = m.body, .left = m.length};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_req_body};
    int32_t id = nghttp2_submit_request(ss->s, NULL, nv, k, body ? &dp : NULL, st);
    sock_mem_consume(o, (size_t)n);
    if (id < 0)
        return -1;
    st->id = id;
    ss->requests++;
    if (ss->max_requests && ss->requests >= ss->max_requests)
        ss->goaway = true; /* this session takes no more; a new one will */
    return 1;
}

/* ---- the response: HEADERS, DATA and trailers to HTTP/1.1 for the engine ---- */

static int in_append(struct h2up_stream *st, const char *p, size_t n)
{
    return sock_mem_append(&st->mem.in, p, n);
}

/* The final or interim head collected in st->hb is complete: writes it for the engine.
 * `end`: the server ended the stream with it (no body follows). */
static int emit_head(struct h2up_stream *st, bool end)
{
    char line[64];
    int s = st->status;
    int k = snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n", s, h1_reason(s));
    if (in_append(st, line, (size_t)k) < 0 || in_append(st, st->hb.p, st->hb.len) < 0)
        return -1;
    bool interim = s < 200;
    bool bodyless = interim || s == 204 || s == 304 || st->head_req;
    bool has_length = st->hb.len && (memmem(st->hb.p, st->hb.len, "\r\ncontent-length:", 17) ||
                                     strncmp(st->hb.p, "content-length:", 15) == 0);
    const char *framing = "";
    if (!bodyless && !has_length) {
        if (end)
            framing = "content-length: 0\r\n";
        else if (!st->http10) {
            framing = "transfer-encoding: chunked\r\n";
            st->chunked = true;
        } /* else close-delimited: the end of `in` ends the body */
    }
    if (in_append(st, framing, strlen(framing)) < 0 || in_append(st, "\r\n", 2) < 0)
        return -1;
    free(st->hb.p);
    st->hb = (struct sock_mem_buf){0};
    if (!interim)
        st->final = true;
    return 0;
}

/* The response ended (END_STREAM): the last chunk and the trailers in st->hb. */
static int emit_end(struct h2up_stream *st)
{
    if (st->chunked) {
        if (in_append(st, "0\r\n", 3) < 0 || in_append(st, st->hb.p, st->hb.len) < 0 ||
            in_append(st, "\r\n", 2) < 0)
            return -1;
    }
    free(st->hb.p);
    st->hb = (struct sock_mem_buf){0};
    st->resp_done = true;
    st->mem.in_eof = true;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    struct h2up_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        st->status = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st->status = st->status * 10 + (value[i] - '0');
        return 0;
    }
    if (st->hb.len + nlen + vlen + 4 > HEAD_MAX)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (sock_mem_append(&st->hb, (const char *)name, nlen) < 0 ||
        sock_mem_append(&st->hb, ": ", 2) < 0 ||
        sock_mem_append(&st->hb, (const char *)value, vlen) < 0 ||
        sock_mem_append(&st->hb, "\r\n", 2) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2up_sess *ss = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        ss->goaway = true;
        return 0;
    }
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        ss->got_settings = true;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2up_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    int r = 0;
    if (f->hd.type == NGHTTP2_HEADERS && !st->final)
        r = emit_head(st, end);
    if (r == 0 && end)
        r = emit_end(st);
    if (r < 0)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    mark(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    struct h2up_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || !st->u) {
        nghttp2_session_consume(s, id, len); /* nobody reads it: give the window back */
        return 0;
    }
    int r = 0;
    if (st->chunked && len) {
        char size[24];
        int k = snprintf(size, sizeof(size), "%zx\r\n", len);
        r = in_append(st, size, (size_t)k);
    }
    if (r == 0)
        r = in_append(st, (const char *)data, len);
    if (r == 0 && st->chunked && len)
        r = in_append(st, "\r\n", 2);
    if (r < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->unconsumed += (uint32_t)len;
    mark(st);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)ud;
    struct h2up_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    if (!st->resp_done && code != NGHTTP2_NO_ERROR)
        log_debug("HTTP/2 server %s: stream %d reset: %s", server_name(st->sess), id,
                  nghttp2_http2_strerror(code));
    stream_orphan(st);
    mark(st);
    return 0;
}

/* ---- the session's run: streams, output ---- */

/* The engine took st's DATA bytes: the server may send as much again. After the stream
 * closed, nghttp2 credits the connection's window only (the bytes still count there). */
static void give_back(struct h2up_sess *ss, struct h2up_stream *st)
{
    nghttp2_session_consume(ss->s, st->id, st->unconsumed);
    st->unconsumed = 0;
}

/* Looks at what happened on each stream with news. */
static void streams_step(struct h2up_sess *ss)
{
    struct h2up_stream *list = ss->dirty;
    ss->dirty = NULL;
    for (struct h2up_stream *st = list, *next; st; st = next) {
        next = st->dirty_next;
        st->dirty = false;
        if (!st->u) { /* the engine is done with it */
            if (!st->h2_done && st->id > 0 && (!st->resp_done || st->rq != Q_DONE)) {
                if (!st->cancelled)
                    nghttp2_submit_rst_stream(ss->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
                st->cancelled = true;
                continue; /* freed when nghttp2 closes it */
            }
            if (st->unconsumed) /* what the engine left unread still counts */
                give_back(ss, st);
            if (st->h2_done || st->id == 0)
                stream_free(st);
            continue;
        }
        if (ss->st != S_READY && !st->h2_done)
            continue;
        uint32_t ev = 0;
        if (!st->told_ready) {
            st->told_ready = true;
            ev |= EPOLLOUT;
        }
        if (st->id == 0 && !st->h2_done) {
            int r = submit_request(ss, st);
            if (r < 0) {
                stream_orphan(st);
                ev |= EPOLLIN;
            }
        }
        if (st->deferred && sock_mem_pending(&st->mem.out) > 0) {
            st->deferred = false;
            nghttp2_session_resume_data(ss->s, st->id);
        } else if (st->deferred && st->mem.out_eof) {
            st->deferred = false;
            nghttp2_session_resume_data(ss->s, st->id); /* the provider resets the stream */
        }
        if (st->unconsumed && sock_mem_pending(&st->mem.in) == 0)
            give_back(ss, st);
        if (sock_mem_pending(&st->mem.in) > 0 || st->mem.in_eof)
            ev |= EPOLLIN;
        if (!st->u->sock.writable && sock_mem_pending(&st->mem.out) < OUT_MAX)
            ev |= EPOLLOUT;
        if (ev)
            notify(st, ev); /* may close the engine's side: st is looked at again then */
    }
}

/* Writes what nghttp2 has to send. Returns -1 when the session ended. */
static int sess_flush(struct h2up_sess *ss)
{
    enum h2_out_result r = h2_out_flush(&ss->out, ss->s, &ss->sock, &ss->w->xbufs);
    if (r == H2_OUT_WRITE_ERROR || r == H2_OUT_NOMEM) {
        sess_end(ss, r == H2_OUT_NOMEM ? "out of memory" : "write to server failed");
        return -1;
    }
    return 0;
}

/* A session that takes no new streams (ss->goaway) closes once its last stream is done:
 * GOAWAY (unless the server ended it already), then the socket. */
static void sess_maybe_close(struct h2up_sess *ss)
{
    if (ss->n_streams > 0 || ss->out.len > 0)
        return;
    if (nghttp2_session_want_read(ss->s) || nghttp2_session_want_write(ss->s)) {
        nghttp2_session_terminate_session(ss->s, NGHTTP2_NO_ERROR);
        if (sess_flush(ss) < 0)
            return;
    }
    sess_end(ss, NULL);
}

static void sess_run(struct h2up_sess *ss)
{
    if (ss->st != S_READY)
        return;
    for (int rounds = 0; rounds < 4 && ss->dirty; rounds++)
        streams_step(ss);
    if (ss->st != S_READY || sess_flush(ss) < 0)
        return;
    streams_step(ss); /* sending made room in streams' `out` */
    if (ss->st == S_READY && ss->dirty)
        worker_soon(ss->w, &ss->work);
    if (ss->st == S_READY && ss->goaway)
        sess_maybe_close(ss);
}

/* ---- the socket ---- */

static void on_readable(struct h2up_sess *ss)
{
    int err = 0;
    switch (h2_in_read(ss->s, &ss->sock, &err)) {
    case H2_IN_DRAINED:
        return;
    case H2_IN_EOF:
        sess_end(ss, "server closed the connection");
        return;
    case H2_IN_FAILED:
        sess_end(ss, "server connection failed");
        return;
    case H2_IN_SESSION:
        log_warn("HTTP/2 server %s: session error: %s", server_name(ss), nghttp2_strerror(err));
        sess_flush(ss); /* the GOAWAY nghttp2 queued */
        if (ss->st == S_READY)
            sess_end(ss, "HTTP/2 protocol error from the server");
        return;
    }
}

static nghttp2_session *session_new(struct h2up_sess *ss);

/* The connection (and TLS) is up: start HTTP/2 and let the waiting streams go. */
static void sess_ready(struct h2up_sess *ss)
{
    if (ss->sock.ssl) {
        const unsigned char *alpn = NULL;
        unsigned len = 0;
        SSL_get0_alpn_selected(ss->sock.ssl, &alpn, &len);
        if (len != 2 || memcmp(alpn, "h2", 2) != 0) {
            sess_end(ss, "the server did not accept HTTP/2 (ALPN h2)");
            return;
        }
    }
    ss->s = session_new(ss);
    if (!ss->s) {
        sess_end(ss, "out of memory");
        return;
    }
    ss->st = S_READY;
    server_passive_success(ss->server);
    counter_add(&ss->server->slots[ss->w->index].connections, 1);
    timer_cancel(&ss->w->loop, &ss->timer);
    for (struct h2up_stream *st = ss->streams; st; st = st->next)
        mark(st);
    if (ss->n_streams == 0) {
        ss->idle_since = now_of(ss);
        timer_arm(&ss->w->loop, &ss->timer, ss->idle_since + ss->idle_timeout_ms);
    }
    worker_soon(ss->w, &ss->work); /* the preface and SETTINGS leave after this turn */
}

static void on_event(struct loop *loop, struct io_handler *ioh, uint32_t events)
{
    (void)loop;
    struct h2up_sess *ss = (struct h2up_sess *)((char *)ioh - offsetof(struct h2up_sess, sock.h));
    if (ss->st == S_DEAD)
        return;
    sock_on_events(&ss->sock, events);
    if (ss->st == S_CONNECTING) {
        if (!ss->sock.writable)
            return;
        struct up_attempt a = {.server = ss->server};
        int err = up_connect_result(&a, &ss->sock);
        if (err) {
            sess_end(ss, strerror(err));
            return;
        }
        if (!ss->sock.ssl) {
            sess_ready(ss);
            return;
        }
        ss->st = S_TLS;
    }
    if (ss->st == S_TLS) {
        if (!tls_step_ready(&ss->sock))
            return;
        char err[128];
        int r = tls_step_run(&ss->sock, err, sizeof(err));
        if (r < 0) {
            sess_end(ss, err);
        } else if (r > 0) {
            sess_ready(ss);
        }
        return;
    }
    on_readable(ss);
    if (ss->st == S_READY)
        sess_run(ss);
    if (ss->st == S_READY && ss->sock.out_armed && ss->sock.writable && ss->out.len == 0)
        sock_set_out(&ss->sock, false);
}

static void on_timer(struct loop *loop, struct timer *t)
{
    struct h2up_sess *ss = (struct h2up_sess *)((char *)t - offsetof(struct h2up_sess, timer));
    if (ss->st == S_CONNECTING || ss->st == S_TLS) {
        if (loop_now(loop) >= ss->connect_deadline)
            sess_end(ss,
                     ss->st == S_TLS ? "TLS handshake with server timed out" : "connect timeout");
        return;
    }
    if (ss->st == S_READY && ss->n_streams == 0 &&
        loop_now(loop) >= ss->idle_since + ss->idle_timeout_ms) {
        ss->goaway = true;
        sess_maybe_close(ss);
    }
}

/* Ends the session: its streams are orphaned (the engines read a reset, or learn that
 * the connect failed: `why`), the socket closed, the object freed after this turn. */
static void sess_end(struct h2up_sess *ss, const char *why)
{
    if (ss->st == S_DEAD)
        return;
    bool was_ready = ss->st == S_READY;
    ss->st = S_DEAD;
    snprintf(ss->error, sizeof(ss->error), "%s", why ? why : "HTTP/2 session closed");
    if (why && !was_ready)
        log_warn("HTTP/2 server %s: cannot connect: %s", server_name(ss), why);
    struct worker *w = ss->w;
    worker_unsoon(w, &ss->work);
    timer_cancel(&w->loop, &ss->timer);
    /* streams first: the engines' reactions may free some of them */
    while (ss->streams) {
        struct h2up_stream *st = ss->streams;
        ss->streams = st->next;
        st->prev = st->next = NULL;
        st->dirty = false;
        st->sess = NULL;
        ss->n_streams--;
        stream_orphan(st);
        if (!st->u) {
            stream_free(st);
            continue;
        }
        if (!was_ready)
            snprintf(st->error, sizeof(st->error), "%s", ss->error);
        st->told_ready = true;
        notify(st, EPOLLIN | EPOLLOUT | (was_ready ? 0 : EPOLLERR));
    }
    ss->dirty = NULL;
    if (ss->s) {
        nghttp2_session_del(ss->s);
        ss->s = NULL;
    }
    h2_out_release(&ss->out, &w->xbufs);
    sock_close(&ss->sock, was_ready && !why);
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        w->h2up_all = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    server_unref(ss->server);
    loop_defer_free(&w->loop, ss); /* events of this turn may still name it */
}

static void op_soon(struct conn *c)
{
    sess_run((struct h2up_sess *)c);
}

static const struct conn_ops sess_work_ops = {.name = "http2-upstream", .soon = op_soon};

static nghttp2_session *session_new(struct h2up_sess *ss)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    nghttp2_session *s = NULL;
    if (nghttp2_option_new(&opt) == 0) {
        h2_io_options(opt);
        nghttp2_option_set_peer_max_concurrent_streams(opt, ss->peer_max);
        if (nghttp2_session_client_new2(&s, cb, ss, opt) != 0)
            s = NULL;
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    if (!s)
        return NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEAD_MAX},
    };
    if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
        nghttp2_session_del(s);
        return NULL;
    }
    return s;
}

/* A new session to s, connecting (or failed at once: S_DEAD, the caller reads its
 * error). NULL when out of memory. */
static struct h2up_sess *sess_new(struct worker *w, struct rt_backend *b, struct server *s)
{
    struct h2up_sess *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->work.ops = &sess_work_ops;
    ss->work.w = w;
    ss->w = w;
    ss->sock.h.fd = -1;
    ss->sock.h.cb = on_event;
    ss->sock.loop = &w->loop;
    timer_init(&ss->timer, on_timer);
    ss->server = server_ref(s);
    const struct cfg_backend *bc = b->cfg;
    ss->max_idle = bc->keepalive_max_idle;
    ss->idle_timeout_ms = bc->keepalive_idle_timeout_ms;
    ss->max_requests = (unsigned)bc->http.max_requests_per_connection;
    ss->connect_deadline = loop_now(&w->loop) + bc->connect_timeout_ms;
    ss->peer_max = known_max_streams(w, s);
    w->upstream_drain_check = h2up_drain_check; /* the worker's hooks (core/worker.h) */
    w->upstream_close_all = h2up_close_all;
    ss->next = w->h2up_all;
    if (ss->next)
        ss->next->prev = ss;
    w->h2up_all = ss;
    struct up_attempt a = {.backend = b, .server = s};
    bool done;
    const char *why = NULL;
    if (up_connect(&a, &ss->sock, true, &done, &why, loop_now(&w->loop)) < 0) {
        sess_end(ss, why);
        return ss;
    }
    if (b->tls && tls_step_client_init(&ss->sock, b->tls, s->addr.host) < 0) {
        sess_end(ss, "cannot create TLS session to the server");
        return ss;
    }
    timer_arm(&w->loop, &ss->timer, ss->connect_deadline);
    if (done) /* connected at once (loopback): the ClientHello or the preface leaves now */
        on_event(&w->loop, &ss->sock.h, EPOLLOUT);
    return ss;
}

/* The concurrent streams the server allows, as far as this worker knows: the smallest
 * SETTINGS_MAX_CONCURRENT_STREAMS of its connections that got the server's SETTINGS,
 * else nghttp2's assumption before SETTINGS (100). A new connection starts with it, so
 * that requests piling up while it connects do not exceed what the server takes. */
static uint32_t known_max_streams(struct worker *w, struct server *s)
{
    uint32_t max = 0;
    for (struct h2up_sess *ss = w->h2up_all; ss; ss = ss->next)
        if (ss->server == s && ss->s && ss->got_settings) {
            uint32_t r =
                nghttp2_session_get_remote_settings(ss->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
            if (max == 0 || r < max)
                max = r;
        }
    return max ? max : 100;
}

/* True when ss may take one more stream. */
static bool sess_has_room(struct h2up_sess *ss)
{
    if (ss->st == S_DEAD || ss->goaway || ss->closing)
        return false;
    uint32_t max = MAX_STREAMS_PER_SESSION, known = ss->peer_max;
    if (ss->got_settings)
        known = nghttp2_session_get_remote_settings(ss->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (known < max)
        max = known;
    if (ss->max_requests && ss->requests + ss->n_streams >= ss->max_requests)
        return false;
    return ss->n_streams < max;
}

struct upconn *h2up_open(struct worker *w, struct rt_backend *b, struct server *s, bool *ready,
                         bool *reused, char *err, size_t errlen)
{
    struct h2up_sess *ss = w->h2up_all;
    for (; ss; ss = ss->next)
        if (ss->server == s && sess_has_room(ss))
            break;
    *reused = ss != NULL;
    if (!ss && !(ss = sess_new(w, b, s))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ss->st == S_DEAD) { /* failed at once (freed after this turn) */
        snprintf(err, errlen, "%s", ss->error);
        return NULL;
    }
    struct h2up_stream *st = calloc(1, sizeof(*st));
    struct upconn *u = st ? upconn_new(w, s) : NULL;
    if (!u) {
        free(st);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->sess = ss;
    st->u = u;
    st->mem.out_max = OUT_MAX;
    st->mem.ops = &mem_ops;
    st->mem.owner = st;
    st->next = ss->streams;
    if (ss->streams)
        ss->streams->prev = st;
    ss->streams = st;
    ss->n_streams++;
    if (ss->st == S_READY)
        timer_cancel(&w->loop, &ss->timer); /* busy: no idle deadline */
    u->sock.mem = &st->mem;
    *ready = ss->st == S_READY;
    u->sock.writable = *ready;
    st->told_ready = *ready;
    return u;
}

int h2up_connect_result(struct upconn *u, char *err, size_t errlen)
{
    struct h2up_stream *st = u->sock.mem ? u->sock.mem->owner : NULL;
    if (st && st->sess && st->sess->st == S_READY)
        return 0;
    snprintf(err, errlen, "%s", st && st->error[0] ? st->error : "HTTP/2 connection failed");
    return -1;
}

static bool server_leaving(struct server *s)
{
    return atomic_load(&s->removed) || atomic_load(&s->admin) != SERVER_ENABLED ||
           atomic_load(&s->drain_deadline) != 0;
}

void h2up_drain_check(struct worker *w)
{
    for (struct h2up_sess *ss = w->h2up_all, *next; ss; ss = next) {
        next = ss->next;
        if (!server_leaving(ss->server) || ss->st == S_DEAD)
            continue;
        ss->goaway = true;
        if (ss->st != S_READY) {
            if (ss->n_streams == 0)
                sess_end(ss, NULL);
            continue;
        }
        sess_maybe_close(ss);
    }
}

void h2up_close_all(struct worker *w)
{
    while (w->h2up_all)
        sess_end(w->h2up_all, NULL);
}
