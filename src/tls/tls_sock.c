/* The socket under a proxied TLS side.
 *
 * Behaves like OpenSSL's socket BIO (non-blocking read/write on the descriptor, retry
 * flags on EAGAIN/EINTR, end of file reported through BIO_eof, the descriptor is never
 * closed by the BIO), with one addition: once tls_sock_fin_follows() says that the FIN is
 * sent right after the next writes, those writes carry MSG_MORE. The kernel then holds
 * the last records and the close_notify until shutdown()/close() adds the FIN to the same
 * segment: one packet (and one wakeup of the peer) fewer for every connection that ends
 * with data, such as a response followed by a close. */
#include "tls/tls_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>

/* BIO data: the descriptor shifted left by one, the low bit set while the FIN follows. */
#define SOCK_MORE 1

static BIO_METHOD *sock_method;
static int sock_type;
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;

static int sock_fd(BIO *b)
{
    return (int)((intptr_t)BIO_get_data(b) >> 1);
}

static int retryable(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static int sock_read(BIO *b, char *out, int len)
{
    if (out == NULL || len <= 0)
        return 0;
    errno = 0;
    ssize_t n = read(sock_fd(b), out, (size_t)len);
    BIO_clear_retry_flags(b);
    if (n < 0 && retryable(errno))
        BIO_set_retry_read(b);
    else if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return (int)n;
}

static int sock_write(BIO *b, const char *in, int len)
{
    if (in == NULL || len <= 0)
        return 0;
    int flags = MSG_NOSIGNAL | (((intptr_t)BIO_get_data(b) & SOCK_MORE) ? MSG_MORE : 0);
    errno = 0;
    ssize_t n = send(sock_fd(b), in, (size_t)len, flags);
    BIO_clear_retry_flags(b);
    if (n < 0 && retryable(errno))
        BIO_set_retry_write(b);
    return (int)n;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    switch (cmd) {
    case BIO_C_GET_FD:
        if (ptr != NULL)
            *(int *)ptr = sock_fd(b);
        return sock_fd(b);
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
        return 1;
    default:
        return 0;
    }
}

static void sock_method_init(void)
{
    int index = BIO_get_new_index();
    if (index < 0)
        return;
    int type = index | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
    BIO_METHOD *m = BIO_meth_new(type, "sluice socket");
    if (m == NULL)
        return;
    if (BIO_meth_set_read(m, sock_read) != 1 || BIO_meth_set_write(m, sock_write) != 1 ||
        BIO_meth_set_ctrl(m, sock_ctrl) != 1) {
        BIO_meth_free(m);
        return;
    }
    sock_type = type;
    sock_method = m;
}

int tls_sock_attach(SSL *ssl, int fd)
{
    pthread_once(&sock_once, sock_method_init);
    if (sock_method == NULL || fd < 0)
        return -1;
    BIO *b = BIO_new(sock_method);
    if (b == NULL)
        return -1;
    BIO_set_data(b, (void *)((intptr_t)fd << 1));
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b); /* one BIO for both directions: SSL takes our one reference */
    return 0;
}

/* Finds the socket BIO: the write BIO itself, or the one under the write buffer. */
static BIO *sock_of(SSL *ssl)
{
    for (BIO *b = SSL_get_wbio(ssl); b != NULL; b = BIO_next(b))
        if (sock_method != NULL && BIO_method_type(b) == sock_type)
            return b;
    return NULL;
}

void tls_sock_fin_follows(SSL *ssl)
{
    BIO *b = sock_of(ssl);
    if (b != NULL)
        BIO_set_data(b, (void *)((intptr_t)BIO_get_data(b) | SOCK_MORE));
}
