/* Write coalescing for bulk TLS (see tls_io.h).
 *
 * The buffer is OpenSSL's BIO_f_buffer pushed on top of the socket BIO that SSL_set_fd
 * made; the socket BIO is shared with the read side, so the chain takes a reference of
 * its own. OpenSSL flushes the write BIO itself after handshake messages and alerts.
 * The buffer lives only from tls_buffer_writes to the flush that empties it (it holds
 * its full size while it exists): an idle connection keeps none. */
#include "tls/tls_io.h"

#include <errno.h>

#include <openssl/bio.h>

int tls_buffer_writes(SSL *ssl, size_t size)
{
    BIO *sock = SSL_get_wbio(ssl);
    if (sock == NULL || BIO_method_type(sock) == BIO_TYPE_BUFFER)
        return 0; /* nothing to put it on, or already buffered */
    BIO *buf = BIO_new(BIO_f_buffer());
    if (buf == NULL)
        return -ENOMEM;
    if (BIO_set_write_buffer_size(buf, (long)size) != 1 || BIO_up_ref(sock) != 1) {
        BIO_free(buf);
        return -ENOMEM;
    }
    BIO_push(buf, sock);
    SSL_set0_wbio(ssl, buf); /* drops the SSL's own reference to sock */
    return 0;
}

/* Takes the (empty) buffer out: the socket BIO is the write BIO again. */
static void unbuffer(SSL *ssl, BIO *buf)
{
    BIO *sock = BIO_next(buf);
    if (sock == NULL || BIO_up_ref(sock) != 1)
        return;               /* keep the buffer: still correct, only bigger */
    SSL_set0_wbio(ssl, sock); /* frees buf and the chain's reference to sock */
}

int tls_flush(SSL *ssl)
{
    BIO *wbio = SSL_get_wbio(ssl);
    if (wbio == NULL || BIO_method_type(wbio) != BIO_TYPE_BUFFER)
        return 1;
    if (BIO_wpending(wbio) > 0) {
        errno = 0;
        if (BIO_flush(wbio) <= 0) {
            if (BIO_should_retry(wbio))
                return 0;
            return errno ? -errno : -EIO;
        }
    }
    unbuffer(ssl, wbio);
    return 1;
}
