/* TLS listeners: the OpenSSL 3 contexts that terminate TLS for `tls` and `https`
 * listeners, chosen per connection by SNI.
 *
 * Build one struct tls_server per listener and per configuration snapshot (a reload builds
 * new ones and frees the old ones). It is immutable once built and may be used from every
 * worker thread at once. Each connection gets its SSL object from tls_server_ssl_new();
 * the caller then does SSL_set_fd() and drives SSL_do_handshake/SSL_read/SSL_write. */
#ifndef SLUICE_TLS_SERVER_H
#define SLUICE_TLS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config/config.h"

struct tls_server;

/* Loads every file named by l->tls (certificates, keys, client CA, CRL) and builds the
 * contexts. Returns NULL on any failure with a message in `err` naming the file and
 * OpenSSL's reason (e.g. "certificate /etc/x.pem and key /etc/x.key do not match: key
 * values mismatch"); the caller then rejects the whole configuration. Nothing in `l` is
 * referenced after the call. Thread-safe; typically called by the reload thread. */
struct tls_server *tls_server_new(const struct cfg_listener *l, char *err, size_t errlen);

/* A new server-side SSL object for one accepted connection, in accept state, or NULL when
 * out of memory. The caller owns it (SSL_free). It keeps `s` alive by itself, so
 * tls_server_free() may be called while such connections still run. */
SSL *tls_server_ssl_new(struct tls_server *s);

/* sni_host_check: true when the certificate that the connection's SNI chose is the one
 * that `host` (a Host field's name, without port, any case) would choose, or when host
 * is empty; false when another certificate serves that name (domain fronting). */
bool tls_server_host_served(SSL *ssl, const char *host, size_t len);

/* Drops the caller's reference; contexts are freed when the last SSL made from `s` is
 * freed too. NULL is ignored. */
void tls_server_free(struct tls_server *s);

/* Makes a new session ticket key at once; the previous key keeps decrypting until the
 * next rotation. Keys otherwise rotate every 12 hours by themselves. Thread-safe. */
void tls_tickets_rotate(void);

#endif
