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
    /* Read-ahead: one read() per burst instead of a 5-byte header and then the body of
     * each record. OpenSSL may then hold whole records that the socket no longer shows:
     * a side stays readable until SSL_read answers WANT_READ (a real EAGAIN), and a
     * finished handshake checks SSL_has_pending (l4_tls.c). A bulk flow gets a bigger
     * read buffer (proxy/pump.c). */
    SSL_CTX_set_read_ahead(ctx, 1);
}
