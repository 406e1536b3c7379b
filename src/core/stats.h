/* Counters and histograms with one slot per worker thread.
 *
 * Each worker writes only its own cache-line-aligned slot (relaxed atomics, so readers on
 * other threads see torn-free values without locks); readers sum the slots. Stats objects
 * are keyed by name and outlive configuration reloads so Prometheus counters never reset. */
#ifndef SLUICE_CORE_STATS_H
#define SLUICE_CORE_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Bucket upper bounds in seconds; the last bucket is +Inf. */
#define HIST_BOUNDS 14
extern const double hist_bounds[HIST_BOUNDS];

struct histogram {
    atomic_ulong buckets[HIST_BOUNDS + 1]; /* per bucket (not cumulative); last = +Inf */
    atomic_ulong count;
    atomic_ulong sum_us;
};

/* Records one observation of `usec` microseconds. Single writer per histogram. */
void hist_observe(struct histogram *h, uint64_t usec);
/* Adds src into the plain (non-shared) accumulator dst. */
void hist_sum_into(struct histogram *dst, const struct histogram *src);

static inline void counter_add(atomic_ulong *c, unsigned long v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}
static inline unsigned long counter_get(const atomic_ulong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct upconn;

#define TLS_VERSIONS 4 /* TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 */

/* HTTP responses that sluice generates, by reason (sluice_http_errors_total). */
enum http_err {
    HTTP_ERR_BAD_REQUEST,       /* 400 */
    HTTP_ERR_NO_ROUTE,          /* 404 */
    HTTP_ERR_TIMEOUT,           /* 408 */
    HTTP_ERR_BODY_TOO_LARGE,    /* 413 */
    HTTP_ERR_URI_TOO_LONG,      /* 414 */
    HTTP_ERR_EXPECTATION,       /* 417 */
    HTTP_ERR_HEADERS_TOO_LARGE, /* 431 */
    HTTP_ERR_NOT_IMPLEMENTED,   /* 501 */
    HTTP_ERR_BAD_GATEWAY,       /* 502 */
    HTTP_ERR_NO_SERVER,         /* 503 */
    HTTP_ERR_GATEWAY_TIMEOUT,   /* 504 */
    HTTP_ERR_VERSION,           /* 505 */
    HTTP_ERR_RATE_LIMITED,      /* 429 */
    HTTP_ERR_MISDIRECTED,       /* 421 (https sni_host_check) */
    HTTP_ERR_H2_ABUSE,          /* an HTTP/2 connection closed for too many resets/errors */
    HTTP_ERR_H2_PROTOCOL,       /* an HTTP/2 connection closed for a protocol error (GOAWAY) */
    HTTP_ERR_H2_FLOOD,          /* HTTP/2 control frames whose acknowledgements pile up */
    HTTP_ERR_H2_CONTINUATION,   /* HTTP/2 CONTINUATION frames past the limit */
    HTTP_ERR_H2_EMPTY_FRAMES,   /* HTTP/2 empty DATA frames past the budget */
    HTTP_ERR_COUNT
};
extern const char *const http_err_names[HTTP_ERR_COUNT];

/* The protocol of an HTTP request (sluice_http_requests_by_protocol_total and the access
 * log's `protocol`): HTTP/1.x by the request line's version, HTTP/2 for a stream. */
enum http_proto { HTTP_PROTO_10, HTTP_PROTO_11, HTTP_PROTO_2, HTTP_PROTO_COUNT };
extern const char *const http_proto_names[HTTP_PROTO_COUNT]; /* "HTTP/1.0", ... */

/* Requests of one listener to one backend on one worker (sluice_requests_total by status
 * class, sluice_request_duration_seconds). backend NULL: answered by sluice without one. */
#define HTTP_BACKENDS_PER_LISTENER 16
struct http_by_backend {
    _Atomic(struct backend_stats *) backend; /* set once by the worker; [0] stays NULL */
    atomic_ulong codes[5];                   /* 1xx .. 5xx */
    struct histogram duration;
};

#define LISTENER_ROUTE_COUNTERS 64

struct listener_slot {
    _Alignas(64) atomic_ulong connections;
    atomic_ulong bytes_in, bytes_out;
    atomic_ulong tls_handshakes[TLS_VERSIONS];
    atomic_ulong tls_handshake_errors; /* with clients: failed or timed out */
    atomic_ulong refused; /* declined without trying a server: no route, no usable server,
                             bad PROXY header, unreadable ClientHello (see l4_conn.c) */
    struct histogram duration;
    struct histogram tls_handshake;
    /* http listeners */
    atomic_ulong http_active; /* requests in progress (sluice_http_requests_active) */
    atomic_ulong ws_active;   /* WebSocket tunnels open (sluice_websocket_tunnels_active) */
    atomic_ulong h2_streams;  /* HTTP/2 streams open (sluice_http2_streams_active) */
    atomic_ulong http_errors[HTTP_ERR_COUNT];
    atomic_ulong http_protocols[HTTP_PROTO_COUNT];           /* requests by protocol, as they end */
    struct http_by_backend http[HTTP_BACKENDS_PER_LISTENER]; /* [0]: no backend */
    /* requests that took route i of the listener (by position, since start; routes past
       LISTENER_ROUTE_COUNTERS are not counted) */
    atomic_ulong route_requests[LISTENER_ROUTE_COUNTERS];
};

struct listener_stats {
    char *name;
    atomic_uint active; /* open client connections (shared: used for max_connections) */
    int workers;
    struct listener_slot slots[];
};

struct backend_slot {
    _Alignas(64) struct histogram connect;
    struct histogram upstream_response; /* http: request sent -> response head */
    atomic_ulong pool_reused;           /* http: requests sent on a pooled connection */
};

struct backend_stats {
    char *name;
    int workers;
    struct backend_slot slots[];
};

struct server_slot {
    _Alignas(64) atomic_ulong connections; /* established (after TLS for TLS backends) */
    atomic_ulong connect_failures;         /* attempts refused, timed out or failed in TLS */
    atomic_ulong bytes_in, bytes_out;
    /* Not a statistic: this worker's idle keep-alive connections to the server (http
     * backends, upstream/pool.h), written only by this worker; pool_idle is their count. */
    struct upconn *pool_head;
    atomic_ulong pool_idle;
};

struct server_stats {
    char *name; /* "BACKEND\nADDRESS" */
    int workers;
    struct server_slot slots[];
};

/* The stats object for the listener/backend called `name` (the server `address` of
 * backend `backend`), created on first use and kept for the life of the process (main
 * thread only), so that a name removed by a reload and added again continues its
 * counters. NULL on allocation failure. */
struct listener_stats *listener_stats_get(const char *name, int workers);
struct backend_stats *backend_stats_get(const char *name, int workers);
struct server_stats *server_stats_get(const char *backend, const char *address, int workers);
/* Frees every stats object (at exit). */
void stats_registry_free(void);

#endif
