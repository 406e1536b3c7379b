/* TLS on a struct sock, for every protocol (L4 tls listeners and backends, HTTPS): the
 * handshake driven by socket events, what a finished handshake negotiated, and its
 * counters. Each step runs SSL_do_handshake until it completes or wants I/O; the
 * edge-triggered readiness flag of the kind of I/O OpenSSL wants is cleared. */
#ifndef SLUICE_PROXY_TLS_STEP_H
#define SLUICE_PROXY_TLS_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/sock.h"

struct listener_slot;
struct strbuf;
struct tls_server;
struct tls_client;

/* What a connection's TLS negotiated (allocated by the protocol when first needed). */
struct tls_conn_info {
    char sni[256]; /* lowercased */
    char alpn[256];
    char version[16];
    char cipher[64];
    char client_subject[512]; /* mTLS: a verified client certificate's subject, else "" */
    char client_fingerprint[96];
    char client_verify[96]; /* SUCCESS, NONE or FAILED:<reason> */
    char error[160];        /* OpenSSL's reason for a failed handshake or I/O */
};

/* Puts a server-side session for listener TLS context `srv` on accepted socket s.
 * Returns 0, or -1 when out of memory. */
int tls_step_server_init(struct sock *s, struct tls_server *srv);
/* Puts a client-side session towards server `host` (verification name and SNI per the
 * backend's settings) on connected socket s. Returns 0, or -1 when out of memory. */
int tls_step_client_init(struct sock *s, struct tls_client *cl, const char *host);

/* True when s has the readiness its handshake waits for (a step for a write-only event
 * while OpenSSL waits for bytes would only cost a read that says EAGAIN). */
bool tls_step_ready(const struct sock *s);

/* Runs one handshake step on s. Returns 1 done, 0 wants I/O (s's flags say which), -1
 * failed, with OpenSSL's reason written to err (never empty). */
int tls_step_run(struct sock *s, char *err, size_t errlen);

/* A server-side handshake on s completed `elapsed_ms` after accept: fills *ti (when not
 * NULL; SNI lowercased) and counts the handshake by version and its duration in ls. */
void tls_step_accepted(struct sock *s, struct listener_slot *ls, uint64_t elapsed_ms,
                       struct tls_conn_info *ti);

/* Appends ti's non-empty fields to a JSON access-log object (sni, alpn, tls_version,
 * tls_cipher, client_subject, client_fingerprint). No-op when ti is NULL. */
void tls_conn_info_log(struct strbuf *sb, const struct tls_conn_info *ti);

#endif
