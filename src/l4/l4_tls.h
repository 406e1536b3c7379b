/* TLS on either side of a Layer 4 connection: handshakes driven by socket events. */
#ifndef SLUICE_L4_TLS_H
#define SLUICE_L4_TLS_H

#include <openssl/ssl.h>

struct l4_conn;

/* Runs c's handshake step that the worker's budget deferred in an earlier turn. */
void l4_tls_run_step(struct l4_conn *c);

/* TLS_ACCEPT state: advances the client handshake; on success routes by SNI and starts
 * connecting; on failure closes with tls_error. */
void l4_tls_accept_step(struct l4_conn *c);
/* After TCP connect to a TLS backend: creates the client SSL. Returns 0 or -1. */
int l4_tls_start_server(struct l4_conn *c);
/* TLS_CONNECT state: advances the server handshake; on success the connection is
 * established. */
void l4_tls_connect_step(struct l4_conn *c);

/* The reason for a failed read or write on an established TLS side (OpenSSL's error queue,
 * e.g. an alert the peer sent after the handshake), kept in c's TLS details for the log
 * and cleared from the queue. Never NULL. */
const char *l4_tls_io_error(struct l4_conn *c, SSL *ssl);

#endif
