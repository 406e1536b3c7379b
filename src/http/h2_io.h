/* The socket side of an HTTP/2 connection, the same for both directions (h2_conn.c:
 * clients, h2_up.c: servers): nghttp2's frames gathered into one buffer and written, the
 * socket's bytes fed to nghttp2, and the session options both use. */
#ifndef SLUICE_HTTP_H2_IO_H
#define SLUICE_HTTP_H2_IO_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#include "core/bufcache.h"
#include "proxy/sock.h"

#define H2_OUTBOUND_ACK_MAX 1000 /* SETTINGS/PING acknowledgements a peer may leave unread */

/* Output gathered before a write: taken from the worker's buffer cache while there is
 * some, NULL otherwise (an idle connection holds no output buffer). */
struct h2_out {
    char *buf;
    size_t off, len, cap;
};

enum h2_out_result {
    H2_OUT_DONE,        /* nghttp2 has nothing more and everything is on the socket */
    H2_OUT_BLOCKED,     /* the socket is full (sock_blocked) or a TLS step waits */
    H2_OUT_WRITE_ERROR, /* the socket failed */
    H2_OUT_NOMEM,
};

/* Writes what nghttp2 has to send: gathers frames into o (about 64 KiB at a time; a
 * larger frame whole), writes, repeats until nothing is left or the socket is full. */
enum h2_out_result h2_out_flush(struct h2_out *o, nghttp2_session *s, struct sock *sock,
                                struct bufcache *bc);
/* Gives o's buffer back (what was not written is dropped). */
void h2_out_release(struct h2_out *o, struct bufcache *bc);

enum h2_in_result {
    H2_IN_DRAINED, /* the socket has nothing more now */
    H2_IN_EOF,     /* the peer closed */
    H2_IN_FAILED,  /* the read failed (reset, TLS error) */
    H2_IN_SESSION, /* nghttp2 refused the bytes: *err is its error code */
};

/* Feeds the socket's bytes to nghttp2 until the socket would block. */
enum h2_in_result h2_in_read(nghttp2_session *s, struct sock *sock, int *err);

/* The options both directions set: window updates by hand (given back as the engine
 * takes the bytes), bounded SETTINGS entries and unread acknowledgements, a bounded
 * header block to send. */
void h2_io_options(nghttp2_option *opt);

#endif
