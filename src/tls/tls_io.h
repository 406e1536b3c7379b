/* Write coalescing for bulk TLS: records that SSL_write produces collect in a buffer and
 * leave in one write() on tls_flush, instead of one write() (one segment, one wakeup of
 * the peer) per 16 KiB record. */
#ifndef SLUICE_TLS_IO_H
#define SLUICE_TLS_IO_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Puts a write buffer of `size` bytes between ssl and its socket (no-op when there is
 * one). Until tls_flush empties it, bytes accepted by SSL_write may still be in it.
 * Returns 0 or -ENOMEM. */
int tls_buffer_writes(SSL *ssl, size_t size);

/* Writes out what the buffer holds and, once it is empty, removes it (an idle connection
 * keeps no buffer). Returns 1 when nothing is left (or ssl had no buffer), 0 when the
 * socket would block with bytes left (flush again once it is writable), or a negative
 * errno. */
int tls_flush(SSL *ssl);

/* Puts ssl on socket fd, for both directions (instead of SSL_set_fd). Returns 0, or -1
 * when out of memory. */
int tls_sock_attach(SSL *ssl, int fd);

/* Says that shutdown() or close() follows the next writes on ssl's socket: they go out
 * with MSG_MORE, so that the FIN shares their last segment. */
void tls_sock_fin_follows(SSL *ssl);

#endif
