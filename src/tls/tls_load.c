/* Loading certificates, keys, CA bundles and CRLs from files, for listeners and backends.
 *
 * Every file is read whole into memory first (bounded size) so that a missing or
 * unreadable file gets the system's reason, and so that its content can be hashed into
 * the session id context (a CA or CRL change on reload then invalidates old sessions).
 * Each failure message names the file and carries OpenSSL's reason. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls_info.h"
#include "tls/tls_internal.h"

#define TLS_FILE_MAX (16u << 20) /* no certificate bundle or CRL is bigger than this */

void tls_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        ERR_clear_error();
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n + 3 < errlen && ERR_peek_error() != 0) {
        memcpy(err + n, ": ", 3);
        tls_last_error(err + n + 2, errlen - (size_t)n - 2);
    }
    ERR_clear_error();
}

/* Reads the whole file into a malloc'ed buffer. Returns 0 or -1 with `err` set to
 * "<what> <path>: <strerror>". */
static int read_file(const char *what, const char *path, char **buf, size_t *len, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    char *b = NULL;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > TLS_FILE_MAX) {
        snprintf(err, errlen, "%s %s: not a regular file of at most 16 MiB", what, path);
        goto fail;
    }
    size_t size = (size_t)st.st_size, got = 0;
    b = malloc(size + 1);
    if (b == NULL) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        goto fail;
    }
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    b[got] = '\0';
    close(fd);
    *buf = b;
    *len = got;
    return 0;
fail:
    free(b);
    close(fd);
    return -1;
}

/* Never prompt for a pass phrase: encrypted keys are refused. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static bool is_pem_eof(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

static int digest_buf(const char *buf, size_t len, unsigned char digest[32])
{
    unsigned int dlen = 32;
    if (digest == NULL)
        return 0;
    return EVP_Digest(buf, len, digest, &dlen, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* Reads file `path` whole (`what` names it in messages, e.g. "CA file") and opens a memory
 * BIO over its content; when `digest` is not NULL, also stores the content's SHA-256 there.
 * Returns 0 with *buf (malloc'ed, NUL-terminated), *len and *bio set, for the caller to free
 * with file_close; or -1 with `err` set, *buf and *bio NULL. */
static int file_open(const char *what, const char *path, char **buf, size_t *len, BIO **bio,
                     unsigned char *digest, char *err, size_t errlen)
{
    *bio = NULL;
    *buf = NULL;
    if (read_file(what, path, buf, len, err, errlen) < 0)
        return -1;
    *bio = BIO_new_mem_buf(*buf, (int)*len);
    if (*bio == NULL || digest_buf(*buf, *len, digest) < 0) {
        tls_errf(err, errlen, "%s %s", what, path);
        BIO_free(*bio);
        free(*buf);
        *bio = NULL;
        *buf = NULL;
        return -1;
    }
    return 0;
}

/* Frees what file_open returned and sets both pointers to NULL (either may be NULL). */
static void file_close(BIO **bio, char **buf)
{
    BIO_free(*bio);
    free(*buf);
    *bio = NULL;
    *buf = NULL;
}

/* Parses every PEM object left in `bio` into *infos (the caller frees it). Returns 0, or -1
 * with `err` set to "<what> <path>: bad PEM". */
static int pem_infos(const char *what, const char *path, BIO *bio, STACK_OF(X509_INFO) * *infos,
                     char *err, size_t errlen)
{
    *infos = PEM_X509_INFO_read_bio(bio, NULL, no_password, NULL);
    if (*infos == NULL) {
        tls_errf(err, errlen, "%s %s: bad PEM", what, path);
        return -1;
    }
    return 0;
}

void tls_cert_clear(struct tls_cert *c)
{
    X509_free(c->leaf);
    EVP_PKEY_free(c->key);
    sk_X509_pop_free(c->chain, X509_free);
    for (size_t i = 0; i < c->n_names; i++)
        free(c->names[i]);
    free(c->names);
    memset(c, 0, sizeof(*c));
}

int tls_load_cert(struct tls_cert *out, const char *cert_path, const char *key_path, char *err,
                  size_t errlen)
{
    char *buf = NULL;
    size_t len;
    BIO *bio = NULL;
    memset(out, 0, sizeof(*out));

    if (cert_path == NULL || key_path == NULL) {
        snprintf(err, errlen, "a certificate needs both a cert and a key file");
        return -1;
    }
    ERR_clear_error();
    if (file_open("certificate file", cert_path, &buf, &len, &bio, NULL, err, errlen) < 0)
        goto fail;
    out->leaf = PEM_read_bio_X509_AUX(bio, NULL, no_password, NULL);
    if (out->leaf == NULL) {
        tls_errf(err, errlen, "certificate file %s: no PEM certificate", cert_path);
        goto fail;
    }
    out->chain = sk_X509_new_null();
    if (out->chain == NULL) {
        tls_errf(err, errlen, "certificate file %s", cert_path);
        goto fail;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (x == NULL) {
            if (is_pem_eof())
                break;
            tls_errf(err, errlen, "certificate file %s: bad chain certificate", cert_path);
            goto fail;
        }
        if (!sk_X509_push(out->chain, x)) {
            X509_free(x);
            tls_errf(err, errlen, "certificate file %s", cert_path);
            goto fail;
        }
    }
    ERR_clear_error();
    file_close(&bio, &buf);

    if (file_open("key file", key_path, &buf, &len, &bio, NULL, err, errlen) < 0)
        goto fail;
    out->key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    OPENSSL_cleanse(buf, len);
    if (out->key == NULL) {
        tls_errf(err, errlen,
                 "key file %s: no usable PEM private key (encrypted keys are "
                 "not supported)",
                 key_path);
        goto fail;
    }
    file_close(&bio, &buf);

    if (X509_check_private_key(out->leaf, out->key) != 1) {
        tls_errf(err, errlen, "certificate %s and key %s do not match", cert_path, key_path);
        goto fail;
    }
    out->key_type = EVP_PKEY_get_base_id(out->key);
    unsigned int fplen = sizeof(out->fp);
    if (X509_digest(out->leaf, EVP_sha256(), out->fp, &fplen) != 1 || tls_cert_names(out) < 0) {
        tls_errf(err, errlen, "certificate file %s", cert_path);
        goto fail;
    }
    return 0;
fail:
    file_close(&bio, &buf);
    tls_cert_clear(out);
    return -1;
}

int tls_load_ca(const char *path, X509_STORE *store, STACK_OF(X509_NAME) * *names,
                unsigned char digest[32], char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len;
    BIO *bio = NULL;
    STACK_OF(X509_INFO) *infos = NULL;
    int count = 0, rc = -1;

    ERR_clear_error();
    if (file_open("CA file", path, &buf, &len, &bio, digest, err, errlen) < 0)
        return -1;
    if (pem_infos("CA file", path, bio, &infos, err, errlen) < 0)
        goto out;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *inf = sk_X509_INFO_value(infos, i);
        if (inf->x509 == NULL)
            continue;
        if (X509_STORE_add_cert(store, inf->x509) != 1) {
            tls_errf(err, errlen, "CA file %s", path);
            goto out;
        }
        if (names != NULL) {
            if (*names == NULL)
                *names = sk_X509_NAME_new_null();
            X509_NAME *n = X509_NAME_dup(X509_get_subject_name(inf->x509));
            if (*names == NULL || n == NULL || !sk_X509_NAME_push(*names, n)) {
                X509_NAME_free(n);
                tls_errf(err, errlen, "CA file %s", path);
                goto out;
            }
        }
        count++;
    }
    if (count == 0) {
        snprintf(err, errlen, "CA file %s: no PEM certificate found", path);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    file_close(&bio, &buf);
    return rc;
}

int tls_load_crl(const char *path, X509_STORE *store, unsigned char digest[32], char *err,
                 size_t errlen)
{
    char *buf = NULL;
    size_t len;
    BIO *bio = NULL;
    STACK_OF(X509_INFO) *infos = NULL;
    int count = 0, rc = -1;

    ERR_clear_error();
    if (file_open("CRL file", path, &buf, &len, &bio, digest, err, errlen) < 0)
        return -1;
    if (strstr(buf, "-----BEGIN") != NULL) {
        if (pem_infos("CRL file", path, bio, &infos, err, errlen) < 0)
            goto out;
        for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
            X509_INFO *inf = sk_X509_INFO_value(infos, i);
            if (inf->crl == NULL)
                continue;
            if (X509_STORE_add_crl(store, inf->crl) != 1) {
                tls_errf(err, errlen, "CRL file %s", path);
                goto out;
            }
            count++;
        }
    } else {
        X509_CRL *crl = d2i_X509_CRL_bio(bio, NULL);
        if (crl == NULL) {
            tls_errf(err, errlen, "CRL file %s: neither PEM nor DER", path);
            goto out;
        }
        int ok = X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (ok != 1) {
            tls_errf(err, errlen, "CRL file %s", path);
            goto out;
        }
        count = 1;
    }
    if (count == 0) {
        snprintf(err, errlen, "CRL file %s: no CRL found", path);
        goto out;
    }
    if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1) {
        tls_errf(err, errlen, "CRL file %s", path);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    file_close(&bio, &buf);
    return rc;
}
