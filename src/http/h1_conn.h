/* An HTTP/1.x client connection on an http listener, and the one exchange (request and
 * response) it serves at a time. Private to src/http/: h1_conn.c is the client side
 * (conn_ops, reading request heads, keep-alive, pipelining, deadlines, close),
 * h1_upstream.c the server side (connect or reuse a pooled connection, send the request,
 * read and forward the response), h1_body.c the body forwarding both ways, h1_reply.c
 * the responses sluice generates, http_log.c the access-log line and the metrics of an
 * exchange.
 *
 * Memory: the struct is all an idle keep-alive connection holds. The request head buffer
 * (with its field array) is allocated on a request's first byte and freed when the
 * exchange ends with nothing pipelined behind it; the exchange buffer (response head,
 * outgoing heads) lives for one exchange. Bodies move through the pump's one buffer or
 * pipe per direction (Content-Length, close-delimited, tunnels) or the exchange buffer
 * (chunked, validated by h1_chunked and forwarded verbatim), so memory per request is
 * bounded whatever the body size. */
#ifndef SLUICE_HTTP_H1_CONN_H
#define SLUICE_HTTP_H1_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/runtime.h"
#include "http/h1_chunked.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "net/addr.h"
#include "proxy/conn.h"
#include "proxy/pump.h"
#include "proxy/sock.h"
#include "proxy/tls_step.h"
#include "upstream/connect.h"
#include "upstream/pool.h"

extern const struct conn_ops h1_conn_ops;

enum h1_state {
    H1_PROXY,    /* reading the PROXY protocol header (listener proxy_protocol: accept) */
    H1_TLS,      /* https: the TLS handshake with the client */
    H1_IDLE,     /* between requests: no buffer held */
    H1_HEAD,     /* reading a request head */
    H1_QUEUED,   /* every usable server is at max_connections_per_server: waiting */
    H1_CONNECT,  /* connecting to a server */
    H1_EXCHANGE, /* request out, response in (bodies both ways) */
    H1_REPLY,    /* writing a response sluice generated */
    H1_TUNNEL,   /* WebSocket after a 101 */
};

/* One body being forwarded (h1_body.c). */
struct h1_bodyfwd {
    enum h1_body kind;
    bool done;
    bool ended;    /* chunked: the validator saw the end (bytes may still wait) */
    uint64_t left; /* length: bytes still to forward */
    uint64_t sent; /* chunked: stream bytes forwarded */
    struct h1_chunked ck;
};

/* A byte range [off, len) of a buffer waiting to be written. */
struct h1_span {
    char *buf;
    uint32_t off, len, cap;
};

#define H1_RESP_FIELDS 128

/* One request/response exchange. Zeroed between requests (h1_txn_reset). */
struct h1_txn {
    struct runtime *rt; /* snapshot the request routes with (reference) */
    const struct cfg_listener *lcfg;
    struct rt_backend *backend;
    int route;                   /* index, HTTP_ROUTE_DEFAULT or HTTP_ROUTE_NONE */
    const struct cfg_route *rp;  /* the route when route >= 0, else NULL */
    struct h1_str rpath, rquery; /* the routed (normalised) path and the query */
    struct h1_head req;
    struct h1_msg m;
    uint32_t head_len;
    uint32_t body_off;        /* request body bytes still in the head buffer start here */
    bool body_spilled;        /* the request body went past the head buffer (no replay) */
    struct h1_bodyfwd rb, sb; /* request body (client -> server), response body */
    struct up_attempt at;
    struct upconn *up;
    bool reused, retried, head_out, resp_head, resp_started, close_after, counted_active;
    bool tunnel_seeded, in_tunnel, logged, connected;
    uint8_t first_fin; /* tunnel: enum term of the side that ended first */
    struct h1_head resp;
    struct h1_msg rm;
    int status;
    /* exchange buffer: response fields, then `out` (outgoing heads, generated replies),
       then `x` (response head and body bytes from the server) */
    char *xmem;
    struct h1_span out, x;
    struct h1_span cb; /* a chunked request body past the head buffer (allocated then) */
    struct pump_dir req_dir, resp_dir; /* client -> server, server -> client */
    bool use_splice;
    uint64_t start_ms, send_ms, sent_ms, resp_ms, connect_ms;
    uint64_t bytes_in, bytes_out;
    uint64_t last_client_ms, last_io_ms;
    uint64_t queued_until; /* H1_QUEUED: when the wait for a free server ends (0: not yet) */
    char rid[36];
    struct h1_str request_id;
    enum term term;
    const char *error;
    char tls_error[128];  /* OpenSSL's reason for a failed handshake or read (server) */
    int err_kind;         /* 1 + enum http_err of a generated reply; 0 when forwarded */
    uint64_t affinity_id; /* the server the request's affinity cookie named, or 0 */
    unsigned retry_after; /* a 429's Retry-After (seconds), 0: none */
};

struct h1_conn {
    struct conn conn; /* first */
    struct sock client;
    struct timer timer;
    enum h1_state st;
    struct h1_conn *wait_prev, *wait_next; /* the worker's waiters (h1_queue.c) */
    bool waiting;                          /* linked there */
    bool stopping;
    bool have_local;
    unsigned requests;
    uint64_t phase_deadline;
    uint64_t idle_since;
    union sockaddr_any client_addr, local_addr;
    /* request head buffer and the exchange's state: both NULL while idle, so that an
       idle keep-alive connection holds only this struct */
    char *in;
    uint32_t in_off, in_len, in_cap;
    struct h1_header *fields;
    struct h1_txn *t;
    struct tls_conn_info *tls;     /* https: what the handshake negotiated (NULL on http) */
    struct h1_stream_link *stream; /* an HTTP/2 stream (see h1_stream_open), else NULL */
};

/* The link between an HTTP/2 stream (h2_conn.c) and the client connection that serves
 * its one request: `gone` runs when that connection has closed (from inside h1_close). */
struct h1_stream_link {
    void (*gone)(struct h1_stream_link *link);
};

/* Opens a client connection on the in-memory stream `mem` for one request of the HTTP/2
 * connection `parent` (same listener, client and TLS details; `tls` stays the parent's).
 * The request head and body come through mem->in; the response leaves through mem->out.
 * Returns NULL when out of memory. */
struct h1_conn *h1_stream_open(struct conn *parent, struct sock_mem *mem,
                               struct h1_stream_link *link, const union sockaddr_any *client,
                               const union sockaddr_any *local, bool have_local,
                               struct tls_conn_info *tls);
/* The owner changed what the stream can read or write: lets the engine go on. */
void h1_stream_event(struct h1_conn *c);

/* h1_conn.c */
void h1_close(struct h1_conn *c, enum term why);
bool h1_dead(const struct h1_conn *c);
void h1_rearm(struct h1_conn *c);
void h1_exchange_done(struct h1_conn *c);
int h1_xmem(struct h1_conn *c);
void h1_count_in(struct h1_conn *c, uint64_t n);

/* h1_upstream.c */
void h1_up_start(struct h1_conn *c);        /* pick a server and connect or reuse */
void h1_up_step(struct h1_conn *c);         /* CONNECT / EXCHANGE / TUNNEL progress */
void h1_up_timeout(struct h1_conn *c);      /* the deadline of those states passed */
uint64_t h1_up_deadline(struct h1_conn *c); /* their deadline */
void h1_up_release(struct h1_conn *c, bool reusable);
/* conn_ops.step: runs the TLS handshake step with the server (https backend) that the
 * worker's budget deferred, when c is still in H1_CONNECT; no-op otherwise. */
void h1_up_tls_resume(struct h1_conn *c);

/* h1_queue.c */
/* No server could be picked: when a usable server of the backend is only full
 * (max_connections_per_server) and the request has not waited its connect_timeout yet,
 * enters H1_QUEUED until the next poll and returns true; else false (answer 503). */
bool h1_queue_wait(struct h1_conn *c);
/* H1_QUEUED: the client closed or reset its connection; closes it (logged) and returns true. */
bool h1_queue_client_gone(struct h1_conn *c);
/* Takes c off its worker's waiters (no-op when not on it); the next one polls at once. */
void h1_queue_leave(struct h1_conn *c);
/* A server slot was freed on this worker: the first waiter asks at once. */
void h1_queue_kick(struct worker *w);

/* h1_body.c */
void h1_body_init(struct h1_bodyfwd *b, enum h1_body kind, uint64_t length, uint64_t max_body);
/* Forwards body bytes from s->buf[s->off, s->len) to dst: 1 when the body is done, 0 when
 * more is needed (s consumed as far as it can be, or dst full), -1 on a framing error
 * (b->ck.error), or a negative errno (< -1) from the write, as -errno - 1... see below */
int h1_body_from_span(struct h1_bodyfwd *b, struct h1_span *s, struct sock *dst,
                      uint64_t *sent_bytes, int *werr);
/* Writes `head` (a message head), and with it in the same send the body bytes at the
 * front of s that the framing b allows: 1 once the head is all out (body bytes may remain
 * in s), 0 when dst is full, -1 on a framing error, -2 on a write error. Bytes written
 * are added to *head_bytes (may be NULL) and *body_bytes. */
int h1_head_and_body(struct h1_bodyfwd *b, struct h1_span *head, struct h1_span *s,
                     struct sock *dst, uint64_t *head_bytes, uint64_t *body_bytes);

/* h1_reply.c */
/* Answers the current request with a generated `status` (then closes when `close`). */
void h1_reply(struct h1_conn *c, int status, bool close, enum term term, const char *error);
void h1_reply_step(struct h1_conn *c);
/* Sends the n bytes the caller wrote at t->out.buf as the whole response. */
void h1_reply_send(struct h1_conn *c, size_t n);
/* The reason phrase sluice writes for `status`. */
const char *h1_reason(int status);
int h1_err_kind(int status);

/* ratelimit_req.c */
/* The request's route has a rate_limit and its key is over budget: answers 429 with
 * Retry-After (logged rate_limited) and returns true. */
bool h1_rate_limited(struct h1_conn *c, bool has_body);
/* h1_policy.c: route actions (redirect, respond, rewrite, header operations) */
struct tmpl_ctx;
/* Fills x with the current request's variables (the client address is formatted only if
 * a template uses it). */
void h1_policy_ctx(struct h1_conn *c, struct tmpl_ctx *x);
/* Answers the request with route r's redirect or respond (then closes when `close`). */
void h1_policy_answer(struct h1_conn *c, const struct cfg_route *r, bool close);
/* Applies r's path rewrite to path into out[0..cap): returns 1 with *res set when
 * rewritten, 0 when r leaves the path alone, -1 when the result does not fit. */
int h1_policy_rewrite(const struct cfg_route *r, struct h1_str path, char *out, size_t cap,
                      struct h1_str *res);

/* http_log.c */
void http_log_exchange(struct h1_conn *c);

#endif
