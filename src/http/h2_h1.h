/* HTTP/1.1 messages in and out of HTTP/2, what both directions share: HTTP/2 to clients
 * (h2_conn.c: HTTP/1.1 responses from the engine become HTTP/2 frames) and HTTP/2 to
 * servers (h2_up.c: HTTP/1.1 requests from the engine become HTTP/2 frames). The engine
 * always speaks HTTP/1.1 on its in-memory streams; these turn its field lines into
 * nghttp2 name/value pairs and decode its chunked bodies into DATA and trailers. */
#ifndef SLUICE_HTTP_H2_H1_H
#define SLUICE_HTTP_H2_H1_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "proxy/sock_mem.h"

#define H2_H1_FIELDS 128 /* field lines converted per head or trailer section */

/* Connection-specific fields, which HTTP/2 forbids (RFC 9113 section 8.2.2). */
bool h2_h1_hop_by_hop(struct h1_str name);

/* Fields of a head (or trailer section) as nghttp2 name/value pairs, hop-by-hop ones left
 * out (and, for `websocket`, Sec-WebSocket-Accept), names lowercased into lc (nghttp2
 * copies them on submit). Returns the count. */
size_t h2_h1_to_nv(const struct h1_header *fields, size_t n, nghttp2_nv *nv, size_t max, char *lc,
                   size_t lc_cap, bool websocket);

/* Decoding a chunked body (already validated by the engine's parser) on its way out. */
struct h2_h1_dechunk {
    enum { H2C_SIZE, H2C_DATA, H2C_DATA_END, H2C_TRAILER } st;
    uint64_t left; /* H2C_DATA: bytes left in this chunk */
};

/* The size of the chunk-size line p[0, eol) (extensions ignored: the engine checked
 * them) into *size. Returns 0, or -1 when it is not hex or too large. */
int h2_h1_chunk_size(const char *p, const char *eol, uint64_t *size);

/* Decodes chunked bytes from the front of o into buf[0, length), consuming them. When the
 * body ends, sets *ended, and submits its trailer fields (if any) on stream id of s and
 * sets *trailers. Returns the bytes written to buf, or -1 on broken framing. */
ssize_t h2_h1_dechunk(struct h2_h1_dechunk *d, struct sock_mem_buf *o, nghttp2_session *s,
                      int32_t id, uint8_t *buf, size_t length, bool *ended, bool *trailers);

/* An HTTP/1.1 body on its way out of the engine's `out` as DATA frames. */
struct h2_h1_body {
    enum h1_body kind;       /* H1_BODY_LENGTH, H1_BODY_CHUNKED or H1_BODY_CLOSE */
    uint64_t left;           /* LENGTH: bytes still to come */
    struct h2_h1_dechunk dc; /* CHUNKED */
};

/* The work of an nghttp2 data provider reading body b from m->out for stream id of s:
 * fills buf, and at the body's end sets *ended and NGHTTP2_DATA_FLAG_EOF in *flags
 * (with NO_END_STREAM when trailers were submitted). Returns the bytes written,
 * NGHTTP2_ERR_DEFERRED when nothing is there yet (*deferred set: resume the data when
 * more comes), or NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE, which resets the stream, when
 * the engine reset `out`, ended it mid-body, or wrote broken framing. */
ssize_t h2_h1_body_read(struct h2_h1_body *b, struct sock_mem *m, nghttp2_session *s, int32_t id,
                        uint8_t *buf, size_t length, uint32_t *flags, bool *deferred, bool *ended);

#endif
