/* HTTP/2 client connections (https with ALPN h2, http with h2c prior knowledge): one
 * nghttp2 session per connection; each stream's request is served by the HTTP/1.1
 * engine through a client connection on an in-memory stream (h1_stream_open,
 * proxy/sock_mem.h), so routing, actions, balancing, pools, limits and the access log
 * are the same code for both protocols. See h2_conn.c. */
#ifndef SLUICE_HTTP_H2_CONN_H
#define SLUICE_HTTP_H2_CONN_H

#include <stddef.h>

struct h1_conn;

/* Takes over client connection c, which has just negotiated h2 (or sent the h2c
 * preface): its socket, TLS session, addresses and place in the worker continue as an
 * HTTP/2 connection. `pre` holds bytes already read from the client (the preface and
 * what followed), may be NULL. c is closed and freed; do not touch it afterwards. */
void h2_conn_adopt(struct h1_conn *c, const char *pre, size_t n);

/* True when p[0..n) is a prefix of (or the whole) HTTP/2 client preface. */
int h2_preface_match(const char *p, size_t n);
#define H2_PREFACE_LEN 24

#endif
