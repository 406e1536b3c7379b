/* HTTP/2 to servers (backend `http.version: 2`; h2c on `http` backends, ALPN h2 on
 * `https`): one multiplexed connection per server per worker, more when a server's
 * concurrent-stream limit (or the backend's max_requests_per_connection) is reached.
 *
 * The engine does not change: each exchange gets a struct upconn whose sock is an
 * in-memory stream (proxy/sock_mem.h) instead of a socket. The engine writes its HTTP/1.1
 * request into it and reads an HTTP/1.1 response from it; the session (h2_up.c) turns
 * the request head into HEADERS (`:authority` from Host, `te: trailers` added for gRPC),
 * its body (Content-Length or chunked, with trailers) into DATA, and the server's
 * HEADERS, DATA and trailers back into an HTTP/1.1 response (chunk-encoded, trailers
 * included, when the server gave no content-length), which the engine then parses with
 * its strict parser like any server's. Flow control follows the engine: a stream's
 * window is given back only as the engine takes the bytes.
 *
 * Worker thread only. The session calls the engine (upconn on_io) only from its own
 * event handler or its worker_soon work, never from inside an engine call. */
#ifndef SLUICE_HTTP_H2_UP_H
#define SLUICE_HTTP_H2_UP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/runtime.h"
#include "upstream/pool.h"

struct worker;

/* A stream to server s of backend b for one exchange, on a session of worker w with
 * room (*reused), or on a new one (connecting; on loopback often connected at once).
 * *ready: the session is up, the engine may write its request at once; else the upconn's on_io
 * reports EPOLLOUT once it is (then h2up_connect_result tells how it went). Returns NULL, the
 * reason in err, when no connection could even be started. */
struct upconn *h2up_open(struct worker *w, struct rt_backend *b, struct server *s, bool *ready,
                         bool *reused, char *err, size_t errlen);

/* For a stream opened not ready: 0 once its session is up, -1 with the reason in err
 * when the session's connect or handshake failed. */
int h2up_connect_result(struct upconn *u, char *err, size_t errlen);

/* Sessions to servers that are leaving (drained, disabled, removed) take no new streams
 * (GOAWAY) and close once their streams are done. */
void h2up_drain_check(struct worker *w);

/* Closes every session of w (at exit). */
void h2up_close_all(struct worker *w);

#endif
