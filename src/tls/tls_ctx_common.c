/* Settings shared by every TLS context sluice creates (listeners and backends). */
#include <openssl/ssl.h>

#include "tls/tls_internal.h"

void tls_ctx_io_settings(SSL_CTX *ctx)
{
    /* Partial writes and a moving buffer: the pump retries writes from its own buffer,
     * which may have moved. Buffers are released when empty, so an idle connection
     * holds none. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Read-ahead: OpenSSL may then hold whole records that the socket no longer shows;
     * the pump keeps a side readable until SSL_read answers WANT_READ (a real EAGAIN). */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_AHEAD_BYTES);
}
