/* Connection facts and error reasons from OpenSSL, formatted for logs. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/tls_info.h"

static void copy_bounded(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    if (dstlen == 0)
        return;
    if (srclen >= dstlen)
        srclen = dstlen - 1;
    memcpy(dst, src, srclen);
    dst[srclen] = '\0';
}

void tls_peer_info(SSL *ssl, struct tls_peer_info *out)
{
    memset(out, 0, sizeof(*out));
    out->version = "";
    out->cipher = "";
    if (ssl == NULL)
        return;

    if (SSL_is_init_finished(ssl))
        out->version = SSL_get_version(ssl);
    const char *c = SSL_get_cipher_name(ssl);
    if (c != NULL && strcmp(c, "(NONE)") != 0)
        out->cipher = c;

    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn != NULL)
        copy_bounded(out->alpn, sizeof(out->alpn), (const char *)alpn, alpn_len);

    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni != NULL)
        copy_bounded(out->sni, sizeof(out->sni), sni, strlen(sni));
    out->resumed = SSL_session_reused(ssl) == 1;

    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL || (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0 ||
        SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    out->peer_verified = true;

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(peer, EVP_sha256(), md, &mdlen) == 1) {
        static const char hex[] = "0123456789abcdef";
        for (unsigned int i = 0; i < mdlen && 2 * i + 2 < sizeof(out->peer_fingerprint); i++) {
            out->peer_fingerprint[2 * i] = hex[md[i] >> 4];
            out->peer_fingerprint[2 * i + 1] = hex[md[i] & 15];
        }
    }
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0)
            copy_bounded(out->peer_subject, sizeof(out->peer_subject), data, (size_t)n);
    }
    BIO_free(bio);
    ERR_clear_error();
}

const char *tls_last_error(char *buf, size_t len)
{
    /* Queue order is root cause first; print the most recent (outermost) first. */
    enum { MAX_REASONS = 4 };
    char parts[MAX_REASONS][160];
    int n = 0;
    unsigned long e;
    const char *data = NULL;
    int flags = 0;

    if (len == 0) {
        ERR_clear_error();
        return buf;
    }
    /* reason strings of libssl are registered by its initialisation (run once) */
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char one[160];
        const char *r = ERR_reason_error_string(e);
        if (r == NULL) {
            ERR_error_string_n(e, one, sizeof(one));
        } else if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0') {
            snprintf(one, sizeof(one), "%s (%s)", r, data);
        } else {
            snprintf(one, sizeof(one), "%s", r);
        }
        /* keep the first (root cause) and the latest ones, drop repeats */
        if (n > 0 && strcmp(parts[n - 1], one) == 0)
            continue;
        if (n == MAX_REASONS)
            n = MAX_REASONS - 1;
        memcpy(parts[n++], one, sizeof(one));
    }
    if (n == 0) {
        snprintf(buf, len, "unknown error");
        return buf;
    }
    size_t off = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= 0 && off + 1 < len; i--) {
        int w = snprintf(buf + off, len - off, "%s%s", i == n - 1 ? "" : ": ", parts[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return buf;
}

const char *tls_ssl_error(SSL *ssl, char *buf, size_t len)
{
    tls_last_error(buf, len);
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        size_t off = strlen(buf);
        if (off + 4 < len)
            snprintf(buf + off, len - off, " (%s)", X509_verify_cert_error_string(v));
    }
    return buf;
}
