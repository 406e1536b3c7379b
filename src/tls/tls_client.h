/* TLS backends: the OpenSSL 3 client context used to reach the servers of a `tls` or
 * `https` backend (and by tls/https health probes).
 *
 * One struct tls_client per backend and configuration snapshot; immutable once built,
 * usable from every worker thread at once. It keeps a small cache of sessions per
 * (server, SNI) so that new connections to a backend server resume their TLS session. */
#ifndef SLUICE_TLS_CLIENT_H
#define SLUICE_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config/config.h"

struct tls_client;

/* Builds the context from b->tls: minimum TLS 1.2, ALPN http/1.1 for an https backend
 * (none for tls), chain and host-name verification unless verify is false, trust from
 * `ca` or the system store, optional client certificate (cert + key). When b->has_tls
 * is false the defaults apply (verify against the system store, no client certificate).
 * Returns NULL with a message naming the file and OpenSSL's reason in `err` on any
 * failure. Nothing in `b` is referenced after the call. */
struct tls_client *tls_client_new(const struct cfg_backend *b, char *err, size_t errlen);

/* A new client-side SSL object (connect state) for a connection to `server_host`, the host
 * part of the server's address: a DNS name, an IPv4 address or an IPv6 address (with or
 * without brackets). SNI is the backend's configured `sni`, else `server_host` when it is
 * a DNS name (never an IP). The peer certificate must match the configured `sni`, else
 * the DNS name, else the IP address. A cached session for (server_host, SNI) is offered
 * for resumption. Returns NULL when out of memory. The SSL keeps the context alive:
 * tls_client_free() may be called while it runs. */
SSL *tls_client_ssl_new(struct tls_client *c, const char *server_host);

/* Same, with `sni` (when not NULL) replacing the configured SNI and the name checked:
 * used by health probes with `health.host`. */
SSL *tls_client_ssl_new_sni(struct tls_client *c, const char *server_host, const char *sni);

/* Drops the caller's reference. NULL is ignored. */
void tls_client_free(struct tls_client *c);

#endif
