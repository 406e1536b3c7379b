/* HTTP/2 to clients (see h2_conn.h).
 *
 * The socket is read into nghttp2_session_mem_recv and written from
 * nghttp2_session_mem_send through one output buffer. Each request stream gets:
 *   - an h2_req that collects and checks its header fields, then writes them as an
 *     HTTP/1.1 head (h2_req.h) into the stream's in-memory `in`;
 *   - a client connection of the HTTP/1.1 engine on that in-memory stream
 *     (h1_stream_open), which parses, routes and forwards the request as for HTTP/1.1 and
 *     writes the response into `out`;
 *   - request DATA appended to `in` (chunk-encoded when no content-length was given),
 *     the stream's flow-control window given back only once the engine has taken the
 *     bytes (backpressure: a slow server closes the client's window);
 *   - the response head parsed from `out` with the strict HTTP/1.1 parser and submitted
 *     as HEADERS; the body decoded from its HTTP/1.1 framing by a data provider that
 *     defers while `out` is empty; chunked trailers become HTTP/2 trailers. The engine's
 *     writes block while `out` holds `OUT_MAX` bytes: memory per stream is bounded.
 * The engine calls back (sock_mem_ops) only to record news; the work runs in the
 * connection's soon() handler, after the current batch of events, so that nghttp2 and
 * the engine never call into each other re-entrantly. */
#include "http/h2_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/h1_conn.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/h2_h1.h"
#include "http/h2_io.h"
#include "http/h2_req.h"
#include "net/addr.h"
#include "proxy/sock_mem.h"

#define OUT_MAX (64 * 1024) /* a stream's response bytes waiting for the client */
#define RESP_FIELDS 128     /* response head fields converted */

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum resp_state { R_HEAD, R_LENGTH, R_CHUNKED, R_CLOSE, R_DONE };

struct h2_stream {
    struct h1_stream_link link; /* first: the engine's connection reports its end here */
    struct h2_conn *h;
    struct h2_stream *prev, *next;
    int32_t id;
    struct h2_req req;
    struct sock_mem mem;
    struct h1_conn *h1; /* the engine's connection, NULL once it has closed */
    bool bad;           /* refused while its fields came: reset, no request */
    bool chunked_in;    /* the request body goes to the engine chunk-encoded */
    bool in_ended;
    bool head_method;
    bool websocket;
    bool dirty; /* on the connection's list of streams to look at */
    struct h2_stream *dirty_next;
    bool deferred;  /* the data provider is waiting for bytes */
    char *trailers; /* request trailer lines for the engine (chunked_in only) */
    uint32_t tr_len, tr_n;
    bool submitted;      /* response HEADERS submitted */
    uint32_t unconsumed; /* DATA bytes taken from the client's window, not given back */
    enum resp_state rs;
    struct h2_h1_body body; /* R_LENGTH, R_CHUNKED, R_CLOSE */
};

struct h2_conn {
    struct conn conn; /* first */
    struct sock client;
    struct timer timer;
    nghttp2_session *s;
    union sockaddr_any client_addr, local_addr;
    bool have_local;
    bool closing;
    struct tls_conn_info *tls;
    struct h2_stream *streams;
    struct h2_stream *dirty; /* streams the engine did something on (streams_step) */
    unsigned n_streams;
    unsigned glitches;     /* stream errors and resets in the current window */
    unsigned empty;        /* empty DATA frames in the current window */
    uint64_t glitch_start; /* when that window began */
    bool err_counted;      /* why the connection ends is counted in http_errors already */
    bool failed;           /* nghttp2_session_mem_recv failed: the session takes no more */
    uint64_t idle_since;
    struct h2_out out;
};

static const struct conn_ops h2_conn_ops;
static void h2_close(struct h2_conn *h, enum term why);
static void h2_flush(struct h2_conn *h);

int h2_preface_match(const char *p, size_t n)
{
    size_t k = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
    return memcmp(p, PREFACE, k) == 0;
}

static const struct cfg_listener_http *lh_of(const struct h2_conn *h)
{
    return &h->conn.listener->cfg->http;
}

/* Acknowledgements of SETTINGS and PING that may wait for a client that does not read:
 * past it the client floods (CVE-2019-9512, -9515) and the session ends. */

static size_t max_continuations(const struct h2_conn *h)
{
    size_t n = lh_of(h)->h2_max_header_list / 16384 + 1;
    return n < 8 ? 8 : n;
}

static void rearm(struct h2_conn *h)
{
    if (h->n_streams > 0) {
        timer_cancel(&h->conn.w->loop, &h->timer);
        return;
    }
    timer_arm(&h->conn.w->loop, &h->timer, h->idle_since + h->conn.listener->cfg->idle_timeout_ms);
}

/* ---- the engine's news (sock_mem_ops: record only) ---- */

/* Puts st on its connection's list of streams to look at, and the connection's look on
 * the worker's queue: only streams with news are visited, however many are open. */
static void mark(struct h2_stream *st)
{
    if (!st->dirty) {
        st->dirty = true;
        st->dirty_next = st->h->dirty;
        st->h->dirty = st;
    }
    worker_soon(st->h->conn.w, &st->h->conn);
}

static void mem_took(void *owner)
{
    struct h2_stream *st = owner;
    if (st->unconsumed && sock_mem_pending(&st->mem.in) == 0)
        mark(st);
}

static void mem_wrote(void *owner)
{
    mark(owner);
}

static const struct sock_mem_ops mem_ops = {mem_took, mem_wrote};

static void stream_gone(struct h1_stream_link *link)
{
    struct h2_stream *st = (struct h2_stream *)link;
    st->h1 = NULL;
    mark(st);
}

/* Lets the engine run on stream st after its input or room changed. */
static void poke(struct h2_stream *st)
{
    if (!st->h1)
        return;
    st->h1->client.readable = true;
    if (sock_mem_pending(&st->mem.out) < OUT_MAX)
        st->h1->client.writable = true;
    h1_stream_event(st->h1);
}

/* ---- streams ---- */

static struct h2_stream *stream_new(struct h2_conn *h, int32_t id)
{
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->link.gone = stream_gone;
    st->h = h;
    st->id = id;
    h2_req_init(&st->req, lh_of(h)->h2_max_header_list);
    st->mem.out_max = OUT_MAX;
    st->mem.ops = &mem_ops;
    st->mem.owner = st;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->n_streams++;
    counter_add(&h->conn.listener->stats->slots[h->conn.w->index].h2_streams, 1);
    rearm(h);
    return st;
}

/* Ends stream st's life on our side: the engine's connection (aborted with `why` if it
 * still runs), the buffers. */
static void stream_free(struct h2_stream *st, enum term why)
{
    struct h2_conn *h = st->h;
    if (st->h1)
        h1_close(st->h1, why); /* calls stream_gone */
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->n_streams--;
    for (struct h2_stream **p = &h->dirty; st->dirty && *p; p = &(*p)->dirty_next)
        if (*p == st) {
            *p = st->dirty_next;
            break;
        }
    counter_add(&h->conn.listener->stats->slots[h->conn.w->index].h2_streams, (unsigned long)-1);
    h2_req_free(&st->req);
    free(st->trailers);
    sock_mem_free(&st->mem);
    free(st);
    if (h->n_streams == 0)
        h->idle_since = loop_now(&h->conn.w->loop);
    rearm(h);
}

/* Streams a client may reset or get reset (refused requests, protocol errors) per
 * GLITCH_WINDOW_MS: twice the concurrent-stream limit, at least 100. Past it the
 * connection ends with GOAWAY ENHANCE_YOUR_CALM: a rapid-reset flood (CVE-2023-44487)
 * or its server-provoked variant costs the client its connection, not sluice its CPU. */
#define GLITCH_WINDOW_MS 10000

static void count_error(struct h2_conn *h, enum http_err kind)
{
    counter_add(&h->conn.listener->stats->slots[h->conn.w->index].http_errors[kind], 1);
}

/* Ends connection h for abuse: logged, counted as `kind`, GOAWAY ENHANCE_YOUR_CALM. */
__attribute__((format(printf, 3, 4))) static void calm_down(struct h2_conn *h, enum http_err kind,
                                                            const char *fmt, ...)
{
    char client[ADDR_TEXT_MAX], why[256];
    addr_format(&h->client_addr.sa, client, sizeof(client));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_warn("listener %s: HTTP/2 client %s: %s; closing the connection",
             h->conn.listener->cfg->name, client, why);
    count_error(h, kind);
    h->err_counted = true;
    h->closing = true;
    if (!h->failed)
        nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* Starts a new budget window when the current one is over. */
static void budget_window(struct h2_conn *h)
{
    uint64_t now = loop_now(&h->conn.w->loop);
    if (now - h->glitch_start > GLITCH_WINDOW_MS) {
        h->glitch_start = now;
        h->glitches = 0;
        h->empty = 0;
    }
}

/* Counts one stream reset or stream error against h's budget. */
static void glitch(struct h2_conn *h, const char *what)
{
    budget_window(h);
    unsigned limit = 2u * (unsigned)lh_of(h)->h2_max_streams;
    if (limit < 100)
        limit = 100;
    if (++h->glitches <= limit || h->closing)
        return;
    calm_down(h, HTTP_ERR_H2_ABUSE, "more than %u stream resets and errors in %d s (last: %s)",
              limit, GLITCH_WINDOW_MS / 1000, what);
}

/* Empty DATA frames (no byte, no END_STREAM) carry nothing and cost nothing to send:
 * a flood of them (CVE-2019-9518) only burns sluice's CPU. EMPTY_FRAMES_MAX per
 * GLITCH_WINDOW_MS, then GOAWAY ENHANCE_YOUR_CALM. */
#define EMPTY_FRAMES_MAX 100

static void empty_frame(struct h2_conn *h)
{
    budget_window(h);
    if (++h->empty <= EMPTY_FRAMES_MAX || h->closing)
        return;
    calm_down(h, HTTP_ERR_H2_EMPTY_FRAMES, "more than %d empty DATA frames in %d s",
              EMPTY_FRAMES_MAX, GLITCH_WINDOW_MS / 1000);
}

static void reset_stream(struct h2_conn *h, struct h2_stream *st, uint32_t code)
{
    nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, code);
    st->bad = true;
    glitch(h, "a stream refused");
}

/* Appends request body bytes for the engine (chunk-encoded when chunked_in). */
static int push_body(struct h2_stream *st, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (st->chunked_in) {
        char size[24];
        int k = snprintf(size, sizeof(size), "%zx\r\n", n);
        if (sock_mem_append(&st->mem.in, size, (size_t)k) < 0)
            return -1;
    }
    if (sock_mem_append(&st->mem.in, (const char *)p, n) < 0)
        return -1;
    return st->chunked_in ? sock_mem_append(&st->mem.in, "\r\n", 2) : 0;
}

static void end_request(struct h2_stream *st)
{
    if (st->in_ended)
        return;
    st->in_ended = true;
    if (st->chunked_in) { /* the last chunk, the trailer fields, the empty line */
        (void)sock_mem_append(&st->mem.in, "0\r\n", 3);
        if (st->tr_len)
            (void)sock_mem_append(&st->mem.in, st->trailers, st->tr_len);
        (void)sock_mem_append(&st->mem.in, "\r\n", 2);
    }
    st->mem.in_eof = true;
    poke(st);
}

/* The request's HEADERS are complete: hand the request to the engine. */
static void start_request(struct h2_conn *h, struct h2_stream *st, bool end_stream)
{
    size_t cap = lh_of(h)->max_header_size + 4096;
    char *head = malloc(cap);
    char key[25] = "";
    if (h2_req_is_websocket(&st->req)) {
        unsigned char raw[18];
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            free(head);
            reset_stream(h, st, NGHTTP2_INTERNAL_ERROR);
            return;
        }
        EVP_EncodeBlock((unsigned char *)key, raw, 16); /* 24 characters with padding */
        key[24] = '\0';
    }
    int n = head ? h2_req_write_h1(&st->req, !end_stream, key, head, cap) : -1;
    if (n < 0) {
        log_debug("listener %s: HTTP/2 stream %d refused: %s", h->conn.listener->cfg->name, st->id,
                  head ? st->req.error : "out of memory");
        counter_add(
            &h->conn.listener->stats->slots[h->conn.w->index].http_errors[HTTP_ERR_BAD_REQUEST], 1);
        free(head);
        reset_stream(h, st, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    st->websocket = h2_req_is_websocket(&st->req);
    st->chunked_in = !end_stream && !st->req.has_length && !st->websocket &&
                     memmem(head, (size_t)n, "\r\nTransfer-Encoding: chunked\r\n", 30) != NULL;
    st->head_method =
        st->req.method_len == 4 && memcmp(st->req.mem + st->req.method, "HEAD", 4) == 0;
    int r = sock_mem_append(&st->mem.in, head, (size_t)n);
    free(head);
    h2_req_free(&st->req); /* the fields are in the head now */
    st->h1 = r < 0 ? NULL
                   : h1_stream_open(&h->conn, &st->mem, &st->link, &h->client_addr, &h->local_addr,
                                    h->have_local, h->tls);
    if (!st->h1) {
        reset_stream(h, st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    if (end_stream) {
        end_request(st);
        return;
    }
    poke(st);
}

/* ---- nghttp2 callbacks (receiving) ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2_conn *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h->closing) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct h2_stream *st = stream_new(h, f->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

/* Trailer limits: those of the HTTP/1.1 engine's chunked reader (h1_body.c), which
 * reads them again. */
#define TRAILER_MAX_BYTES 8192
#define TRAILER_MAX_FIELDS 64

/* One field of a request's trailer section (nghttp2 has checked that the section ends
 * the stream and has no pseudo-header). Kept for the engine as a chunked trailer line
 * when the body goes chunked; dropped when the request had a content-length (the body
 * is not chunked: as HAProxy and nginx do). Returns -1 when the stream was refused. */
static int trailer_field(struct h2_conn *h, struct h2_stream *st, const uint8_t *name, size_t nlen,
                         const uint8_t *value, size_t vlen)
{
    const char *why = NULL;
    if (h2_req_trailer_ok((const char *)name, nlen, (const char *)value, vlen, &why) == 0 &&
        (!st->chunked_in || !st->h1))
        return 0; /* not forwarded: content-length body, or the engine is gone */
    size_t line = nlen + 2 + vlen + 2;
    if (!why && (st->tr_n >= TRAILER_MAX_FIELDS || st->tr_len + line > TRAILER_MAX_BYTES))
        why = "request trailer section too large";
    char *t = why ? NULL : realloc(st->trailers, st->tr_len + line);
    if (!why && !t)
        why = "out of memory";
    if (why) {
        log_debug("listener %s: HTTP/2 stream %d refused: %s", h->conn.listener->cfg->name, st->id,
                  why);
        count_error(h, HTTP_ERR_BAD_REQUEST);
        reset_stream(h, st, NGHTTP2_PROTOCOL_ERROR);
        return -1;
    }
    st->trailers = t;
    memcpy(t + st->tr_len, name, nlen);
    memcpy(t + st->tr_len + nlen, ": ", 2);
    memcpy(t + st->tr_len + nlen + 2, value, vlen);
    memcpy(t + st->tr_len + nlen + 2 + vlen, "\r\n", 2);
    st->tr_len += (uint32_t)line;
    st->tr_n++;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    struct h2_conn *h = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || st->bad)
        return 0;
    if (f->headers.cat == NGHTTP2_HCAT_HEADERS && !st->websocket) {
        (void)trailer_field(h, st, name, nlen, value, vlen);
        return 0;
    }
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h2_req_field(&st->req, (const char *)name, nlen, (const char *)value, vlen) < 0) {
        /* a header list over max_header_list_size (an HPACK bomb, many tiny fields) is
         * worth a line at info: the budget of refused streams bounds how many */
        bool big = strncmp(st->req.error, "header list", 11) == 0;
        char client[ADDR_TEXT_MAX];
        addr_format(&h->client_addr.sa, client, sizeof(client));
        log_msg(big ? LOG_INFO : LOG_DEBUG, "listener %s: HTTP/2 client %s: stream %d refused: %s",
                h->conn.listener->cfg->name, client, st->id, st->req.error);
        count_error(h, big ? HTTP_ERR_HEADERS_TOO_LARGE : HTTP_ERR_BAD_REQUEST);
        reset_stream(h, st, NGHTTP2_PROTOCOL_ERROR);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2_conn *h = ud;
    if (f->hd.type == NGHTTP2_RST_STREAM)
        glitch(h, "RST_STREAM from the client");
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_DATA && !end && f->hd.length <= f->data.padlen)
        empty_frame(h);
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || st->bad)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        start_request(h, st, end);
    else if (end)
        end_request(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    struct h2_conn *h = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->bad || !st->h1) {
        nghttp2_session_consume(h->s, id, len); /* nobody reads it: give the window back */
        return 0;
    }
    if (push_body(st, data, len) < 0) {
        reset_stream(h, st, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    st->unconsumed += (uint32_t)len;
    poke(st);
    return 0;
}

/* A GOAWAY with an error code that nghttp2 sent on its own (a connection error of the
 * client's: bad frame, HPACK, flow control, SETTINGS...): counted and logged once. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    struct h2_conn *h = ud;
    if (f->hd.type != NGHTTP2_GOAWAY || f->goaway.error_code == NGHTTP2_NO_ERROR || h->err_counted)
        return 0;
    h->err_counted = true;
    char client[ADDR_TEXT_MAX];
    addr_format(&h->client_addr.sa, client, sizeof(client));
    bool calm = f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM;
    log_msg(calm ? LOG_WARN : LOG_INFO,
            "listener %s: HTTP/2 client %s: connection error %s%s%.*s; closing the connection",
            h->conn.listener->cfg->name, client, nghttp2_http2_strerror(f->goaway.error_code),
            f->goaway.opaque_data_len ? ": " : "",
            (int)(f->goaway.opaque_data_len > 200 ? 200 : f->goaway.opaque_data_len),
            f->goaway.opaque_data ? (const char *)f->goaway.opaque_data : "");
    count_error(h, calm ? HTTP_ERR_H2_FLOOD : HTTP_ERR_H2_PROTOCOL);
    return 0;
}

/* HEADERS on a client stream id at or below the last one processed that nghttp2 has no
 * record of (a skipped id, or a stream closed or reset earlier): nghttp2 ignores the
 * block (late trailers of a reset stream must be ignored), but decodes it. A glitch, so
 * that a flood of them costs the client its connection. */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
    if (hd->type == NGHTTP2_HEADERS && (hd->stream_id & 1) &&
        hd->stream_id <= nghttp2_session_get_last_proc_stream_id(s) &&
        !nghttp2_session_find_stream(s, hd->stream_id))
        glitch(ud, "HEADERS on a closed stream");
    return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    (void)s;
    (void)f;
    glitch(ud, nghttp2_strerror(err));
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    if (code == NGHTTP2_PROTOCOL_ERROR && !st->bad && !st->h1 && st->rs == R_HEAD) {
        /* nghttp2's own checks of HTTP messaging refused the request */
        struct h2_conn *h = ud;
        counter_add(
            &h->conn.listener->stats->slots[h->conn.w->index].http_errors[HTTP_ERR_BAD_REQUEST], 1);
        log_debug("listener %s: HTTP/2 stream %d refused by HTTP messaging rules",
                  h->conn.listener->cfg->name, id);
        glitch(h, "a malformed request");
    }
    stream_free(st,
                code == NGHTTP2_NO_ERROR && st->rs == R_DONE ? TERM_COMPLETE : TERM_CLIENT_ABORTED);
    return 0;
}

/* ---- the response: HTTP/1.1 bytes from the engine to HTTP/2 frames ---- */

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud);

/* Parses the response head at the front of `out` and submits it. Returns 1 done, 0 to
 * wait for more bytes, -1 on a broken response (the stream is reset). */
static int submit_head(struct h2_conn *h, struct h2_stream *st)
{
    struct sock_mem_buf *o = &st->mem.out;
    for (;;) {
        struct h1_header fields[RESP_FIELDS];
        struct h1_head head;
        h1_head_init(&head, fields, RESP_FIELDS);
        struct h1_limits lim = {OUT_MAX, RESP_FIELDS};
        size_t have = sock_mem_pending(o);
        int n = have ? h1_parse_response(o->p + o->off, have, &lim, &head) : H1_NEED_MORE;
        if (n == H1_NEED_MORE)
            return st->mem.out_eof ? -1 : 0;
        if (n < 0)
            return -1;
        if (head.status >= 100 && head.status < 200 && head.status != 101) {
            sock_mem_consume(o, (size_t)n); /* interim responses are not passed on */
            continue;
        }
        struct h1_exchange x = {st->head_method, false, st->websocket};
        struct h1_msg m;
        if (h1_check_response(&head, &x, &m) != H1_OK)
            return -1;
        nghttp2_nv nv[RESP_FIELDS + 1];
        char lc[8192], status[4];
        int code = head.status == 101 && st->websocket ? 200 : head.status;
        snprintf(status, sizeof(status), "%03d", code);
        nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
        size_t k = 1 + h2_h1_to_nv(head.headers, head.n_headers, nv + 1, RESP_FIELDS, lc,
                                   sizeof(lc), st->websocket);
        if (head.status == 101)
            st->rs = R_CLOSE; /* the tunnel: bytes both ways until one side ends */
        else if (m.body == H1_BODY_NONE)
            st->rs = R_DONE;
        else if (m.body == H1_BODY_LENGTH)
            st->rs = m.length ? R_LENGTH : R_DONE;
        else if (m.body == H1_BODY_CHUNKED)
            st->rs = R_CHUNKED;
        else
            st->rs = R_CLOSE;
        st->body = (struct h2_h1_body){.kind = st->rs == R_LENGTH    ? H1_BODY_LENGTH
                                               : st->rs == R_CHUNKED ? H1_BODY_CHUNKED
                                                                     : H1_BODY_CLOSE,
                                       .left = m.length};
        nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
        int r = nghttp2_submit_response(h->s, st->id, nv, k, st->rs == R_DONE ? NULL : &dp);
        sock_mem_consume(o, (size_t)n);
        if (r != 0)
            return -1;
        st->submitted = true;
        return 1;
    }
}

/* True when `out` holds the whole rest of the response body (the engine has gone: what
 * is there is all there will be). */
static bool response_complete(const struct h2_stream *st)
{
    const struct sock_mem_buf *o = &st->mem.out;
    const char *p = o->p + o->off, *end = p + sock_mem_pending(o);
    if (st->rs == R_LENGTH)
        return (uint64_t)(end - p) >= st->body.left;
    if (st->rs == R_CLOSE)
        return !st->mem.out_reset;
    if (st->rs != R_CHUNKED)
        return true;
    struct h2_h1_dechunk d = st->body.dc;
    for (;;) {
        if (d.st == H2C_DATA) {
            if ((uint64_t)(end - p) < d.left)
                return false;
            p += d.left;
            d.st = H2C_DATA_END;
        } else if (d.st == H2C_DATA_END) {
            if (end - p < 2)
                return false;
            p += 2;
            d.st = H2C_SIZE;
        } else if (d.st == H2C_SIZE) {
            const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!eol || h2_h1_chunk_size(p, eol, &d.left) < 0)
                return false;
            p = eol + 2;
            d.st = d.left ? H2C_DATA : H2C_TRAILER;
        } else {
            return (end - p >= 2 && p[0] == '\r' && p[1] == '\n') ||
                   memmem(p, (size_t)(end - p), "\r\n\r\n", 4) != NULL;
        }
    }
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)id;
    (void)ud;
    struct h2_stream *st = src->ptr;
    bool ended;
    ssize_t w =
        h2_h1_body_read(&st->body, &st->mem, s, st->id, buf, length, flags, &st->deferred, &ended);
    if (ended)
        st->rs = R_DONE;
    if (w >= 0)
        mark(st); /* room in `out`: the engine may write again */
    return w;
}

/* Looks at what the engine did on each stream: submits heads, resumes bodies, gives
 * window back, lets blocked engines write again. */
static void streams_step(struct h2_conn *h)
{
    struct h2_stream *list = h->dirty;
    h->dirty = NULL; /* what this look does may mark streams again: the next look */
    for (struct h2_stream *st = list, *next; st; st = next) {
        next = st->dirty_next;
        st->dirty = false;
        if (st->unconsumed && sock_mem_pending(&st->mem.in) == 0) {
            nghttp2_session_consume(h->s, st->id, st->unconsumed);
            st->unconsumed = 0;
        }
        if (st->bad)
            continue;
        if (!st->h1 && st->submitted && st->rs != R_DONE && !response_complete(st)) {
            /* the engine gave up mid-body (a timeout, the server gone): the stream
             * cannot complete, whether or not the client's window is open */
            reset_stream(h, st, NGHTTP2_INTERNAL_ERROR);
            continue;
        }
        if (!st->submitted && st->rs == R_HEAD) {
            int r = submit_head(h, st);
            if (r < 0) {
                reset_stream(h, st, NGHTTP2_INTERNAL_ERROR);
                continue;
            }
        }
        if (st->submitted && st->deferred) {
            st->deferred = false;
            nghttp2_session_resume_data(h->s, st->id);
        }
        if (st->h1 && !st->h1->client.writable && sock_mem_pending(&st->mem.out) < OUT_MAX)
            poke(st);
    }
}

/* ---- the socket ---- */

/* Writes what nghttp2 has to send; closes h when the session is over. */
static void h2_flush(struct h2_conn *h)
{
    if (h->closing && !h->s)
        return;
    streams_step(h);
    enum h2_out_result r = h2_out_flush(&h->out, h->s, &h->client, &h->conn.w->xbufs);
    if (r == H2_OUT_WRITE_ERROR || r == H2_OUT_NOMEM) {
        h2_close(h, r == H2_OUT_NOMEM ? TERM_INTERNAL_ERROR : TERM_CLIENT_RESET);
        return;
    }
    streams_step(h); /* sending may have made room in streams' buffers */
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) && r == H2_OUT_DONE)
        h2_close(h, TERM_NONE);
}

/* nghttp2_session_mem_recv failed: the session is unusable (nghttp2 queued no GOAWAY).
 * What was already gathered goes out, then a GOAWAY of our own, then the connection
 * closes. Floods are logged and counted by kind, other failures as protocol errors. */
static void session_failed(struct h2_conn *h, int err)
{
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    h->failed = true;
    if (err == NGHTTP2_ERR_FLOODED) {
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        calm_down(h, HTTP_ERR_H2_FLOOD,
                  "more than %d SETTINGS/PING acknowledgements it does not read",
                  H2_OUTBOUND_ACK_MAX);
    } else if (err == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        calm_down(h, HTTP_ERR_H2_CONTINUATION,
                  "more than %zu CONTINUATION frames in a header block", max_continuations(h));
    } else if (!h->err_counted) {
        log_info("listener %s: HTTP/2 session error: %s", h->conn.listener->cfg->name,
                 nghttp2_strerror(err));
        count_error(h, HTTP_ERR_H2_PROTOCOL);
        h->err_counted = true;
        if (err == NGHTTP2_ERR_NOMEM || err == NGHTTP2_ERR_CALLBACK_FAILURE)
            code = NGHTTP2_INTERNAL_ERROR;
    }
    /* the bytes already gathered are whole frames: the GOAWAY can follow them */
    struct h2_out *o = &h->out;
    if (o->off < o->len && h->client.writable) {
        ssize_t n = sock_write(&h->client, o->buf + o->off, o->len - o->off, false, false);
        if (n > 0)
            o->off += (size_t)n;
    }
    if (o->off >= o->len && h->client.writable) {
        uint8_t g[17] = {0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0};
        uint32_t last = (uint32_t)nghttp2_session_get_last_proc_stream_id(h->s);
        for (int i = 0; i < 4; i++) {
            g[9 + i] = (uint8_t)(last >> (24 - 8 * i));
            g[13 + i] = (uint8_t)(code >> (24 - 8 * i));
        }
        (void)sock_write(&h->client, (const char *)g, sizeof(g), false, false);
    }
    h2_close(h, TERM_BAD_REQUEST);
}

static void on_readable(struct h2_conn *h)
{
    int err = 0;
    switch (h2_in_read(h->s, &h->client, &err)) {
    case H2_IN_DRAINED:
        return;
    case H2_IN_EOF:
        h2_close(h, TERM_CLIENT_CLOSED);
        return;
    case H2_IN_FAILED:
        h2_close(h, TERM_CLIENT_RESET);
        return;
    case H2_IN_SESSION:
        session_failed(h, err);
        return;
    }
}

static void on_event(struct loop *loop, struct io_handler *ioh, uint32_t events)
{
    (void)loop;
    struct h2_conn *h = (struct h2_conn *)((char *)ioh - offsetof(struct h2_conn, client.h));
    if (!sock_open(&h->client))
        return;
    sock_on_events(&h->client, events);
    on_readable(h);
    if (sock_open(&h->client))
        h2_flush(h);
    if (sock_open(&h->client) && h->client.out_armed && h->client.writable && !(events & EPOLLIN))
        sock_set_out(&h->client, false);
}

static void on_timer(struct loop *loop, struct timer *t)
{
    struct h2_conn *h = (struct h2_conn *)((char *)t - offsetof(struct h2_conn, timer));
    if (h->n_streams > 0)
        return;
    if (loop_now(loop) < h->idle_since + h->conn.listener->cfg->idle_timeout_ms) {
        rearm(h);
        return;
    }
    nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
    h2_flush(h);
    h2_close(h, TERM_IDLE_TIMEOUT);
}

static void h2_close(struct h2_conn *h, enum term why)
{
    if (!sock_open(&h->client))
        return;
    h->closing = true;
    while (h->streams)
        stream_free(h->streams, why == TERM_NONE ? TERM_CLIENT_ABORTED : why);
    timer_cancel(&h->conn.w->loop, &h->timer);
    nghttp2_session_del(h->s);
    h->s = NULL;
    h2_out_release(&h->out, &h->conn.w->xbufs);
    sock_close(&h->client, true);
    free(h->tls);
    h->tls = NULL;
    conn_release(&h->conn);
}

/* ---- conn_ops ---- */

static void op_close(struct conn *c, enum term why)
{
    h2_close((struct h2_conn *)c, why);
}

static void op_rearm(struct conn *c)
{
    struct h2_conn *h = (struct h2_conn *)c;
    for (struct h2_stream *st = h->streams; st; st = st->next)
        if (st->h1)
            h1_rearm(st->h1);
}

static void op_step(struct conn *c)
{
    (void)c;
}

/* Graceful stop: GOAWAY; the streams in progress finish, then the connection closes. */
static void op_stop(struct conn *c)
{
    struct h2_conn *h = (struct h2_conn *)c;
    h->closing = true;
    nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_flush(h);
    if (sock_open(&h->client) && h->n_streams == 0)
        h2_close(h, TERM_SHUTDOWN);
}

static void op_soon(struct conn *c)
{
    struct h2_conn *h = (struct h2_conn *)c;
    if (sock_open(&h->client))
        h2_flush(h);
    if (sock_open(&h->client) && h->closing && h->n_streams == 0)
        h2_close(h, TERM_SHUTDOWN);
}

static const struct conn_ops h2_conn_ops = {
    .name = "http2",
    .close = op_close,
    .rearm = op_rearm,
    .step = op_step,
    .stop = op_stop,
    .soon = op_soon,
};

/* ---- adoption ---- */

static nghttp2_session *session_new(struct h2_conn *h)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_option *opt;
    nghttp2_session *s = NULL;
    if (nghttp2_option_new(&opt) == 0) {
        h2_io_options(opt);
        /* a header block of max_header_list_size fits (HPACK never makes it bigger),
         * nothing longer: a CONTINUATION flood (CVE-2024-27316 and kin) ends the session */
        nghttp2_option_set_max_continuations(opt, max_continuations(h));
        /* nghttp2's own RST_STREAM bucket, behind the glitch budget (which acts first) */
        nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
        if (nghttp2_session_server_new2(&s, cb, h, opt) != 0)
            s = NULL;
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    if (!s)
        return NULL;
    const struct cfg_listener_http *lh = lh_of(h);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)lh->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lh->h2_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lh->h2_max_header_list},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0) {
        nghttp2_session_del(s);
        return NULL;
    }
    return s;
}

void h2_conn_adopt(struct h1_conn *c, const char *pre, size_t n)
{
    struct worker *w = c->conn.w;
    struct h2_conn *h = calloc(1, sizeof(*h));
    char *early = n ? malloc(n) : NULL; /* pre may point into c's buffer, freed below */
    if (!h || (n && !early)) {
        free(h);
        free(early);
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    if (n)
        memcpy(early, pre, n);
    conn_replace(&c->conn, &h->conn, &h2_conn_ops);
    h->client = c->client;
    h->client.h.cb = on_event;
    h->client_addr = c->client_addr;
    h->local_addr = c->local_addr;
    h->have_local = c->have_local;
    if (!h->have_local) {
        socklen_t len = sizeof(h->local_addr);
        if (getsockname(h->client.h.fd, &h->local_addr.sa, &len) < 0)
            memset(&h->local_addr, 0, sizeof(h->local_addr));
        h->have_local = true;
    }
    h->tls = c->tls;
    h->idle_since = loop_now(&w->loop);
    timer_init(&h->timer, on_timer);
    /* the h1 object is done: no log line, no slot (the h2 connection holds it now) */
    timer_cancel(&w->loop, &c->timer);
    free(c->in);
    free(c->fields);
    free(c->t);
    c->tls = NULL;
    c->client.h.fd = -1;
    c->client.ssl = NULL;
    if (loop_defer_free(&w->loop, c) < 0)
        log_error("out of memory: leaking one connection object");
    /* the handler moved: epoll must point at the new one */
    int mod = loop_mod(&w->loop, &h->client.h,
                       h->client.out_armed ? SOCK_EVENTS_IN | EPOLLOUT : SOCK_EVENTS_IN);
    h->s = mod < 0 ? NULL : session_new(h);
    if (!h->s) {
        free(early);
        h2_close(h, TERM_INTERNAL_ERROR);
        return;
    }
    ssize_t r = n ? nghttp2_session_mem_recv(h->s, (const uint8_t *)early, n) : 0;
    free(early);
    if (r < 0) {
        session_failed(h, (int)r);
        return;
    }
    h->client.readable = true;
    on_readable(h);
    if (sock_open(&h->client))
        h2_flush(h);
    if (sock_open(&h->client))
        rearm(h);
}
