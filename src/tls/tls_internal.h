/* Private helpers shared by the files of src/tls/ (not for other modules).
 *
 * tls_load.c: reading certificates, keys, CA bundles and CRLs with messages that name the
 * file and give OpenSSL's reason. tls_sni.c: certificate names, the SNI -> context table,
 * the `hosts` filter and the server_name extension parser. tls_tickets.c: the process-wide
 * session ticket key ring. */
#ifndef SLUICE_TLS_INTERNAL_H
#define SLUICE_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ---- tls_load.c ---- */

/* One certificate entry of a listener (or the client certificate of a backend). */
struct tls_cert {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) * chain; /* intermediates after the leaf in the PEM file; may be empty */
    char **names;           /* lowercase SAN DNS names ("*.x.y" kept), else the subject CN */
    size_t n_names;
    int key_type;         /* EVP_PKEY_get_base_id(key): EVP_PKEY_RSA, EVP_PKEY_EC, ... */
    unsigned char fp[32]; /* SHA-256 of the leaf's DER encoding */
};

/* Reads `cert_path` (PEM: leaf first, then its chain) and `key_path` (PEM private key, not
 * encrypted), checks that they match and fills `out` (release with tls_cert_clear).
 * Returns 0, or -1 with a message naming the file and OpenSSL's reason in `err`. */
int tls_load_cert(struct tls_cert *out, const char *cert_path, const char *key_path, char *err,
                  size_t errlen);
void tls_cert_clear(struct tls_cert *c);

/* Adds every certificate of the PEM bundle `path` to `store`, appends their subjects to
 * `*names` when `names` is not NULL (the list is created on first use) and hashes the file
 * into `digest` when not NULL. A file with no certificate is an error. Returns 0 or -1
 * with `err` set. */
int tls_load_ca(const char *path, X509_STORE *store, STACK_OF(X509_NAME) * *names,
                unsigned char digest[32], char *err, size_t errlen);

/* Adds every CRL of `path` (PEM, several allowed, or one DER CRL) to `store`, sets
 * X509_V_FLAG_CRL_CHECK on it, hashes the file into `digest` when not NULL. Returns 0 or
 * -1 with `err` set. */
int tls_load_crl(const char *path, X509_STORE *store, unsigned char digest[32], char *err,
                 size_t errlen);

/* snprintf into err, then ": <OpenSSL reason>" from the error queue (which is cleared). */
void tls_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- tls_sni.c ---- */

/* Fills c->names from the leaf: subjectAltName DNS entries, or the last subject CN when
 * the certificate has no DNS SAN. Names are lowercased. Returns 0 or -ENOMEM. */
int tls_cert_names(struct tls_cert *c);

/* Name -> context-group table: entries are exact names ("www.example.com") or wildcard
 * patterns ("*.example.com"), sorted for binary search. */
struct tls_name_ent {
    char *name;
    int group;
};
struct tls_name_table {
    struct tls_name_ent *v;
    size_t n;
};

/* Adds `name` -> `group` unless `name` is already present. Returns 0 or -ENOMEM.
 * tls_names_sort must be called after the last add and before any lookup. */
int tls_names_add(struct tls_name_table *t, const char *name, int group);
void tls_names_sort(struct tls_name_table *t);
/* Group of the exact name if present (or of the pattern "*.rest" itself), else -1. */
int tls_names_find(const struct tls_name_table *t, const char *name);
/* Lookup for a lowercase SNI: exact entry first, then the wildcard covering its first
 * label only ("*.example.com" matches "a.example.com", not "a.b.example.com"). -1: none. */
int tls_names_lookup(const struct tls_name_table *t, const char *sni);
void tls_names_free(struct tls_name_table *t);

/* Parses the body of a server_name extension (RFC 6066). On finding a host_name entry,
 * writes it lowercased, without a trailing dot and NUL-terminated to `out` and returns 0;
 * returns 1 when the list holds no host_name; -1 when malformed or the name is empty,
 * holds a NUL byte or does not fit in `outlen` (at least 256 is enough). */
int tls_sni_parse(const unsigned char *ext, size_t len, char *out, size_t outlen);

/* ---- tls_tickets.c ---- */

/* Creates the process-wide ticket key ring on first call (thread-safe). Returns 0 or -EIO
 * when the random generator fails. */
int tls_tickets_init(void);

/* The SSL_CTX_set_tlsext_ticket_key_evp_cb callback: encrypts new tickets with the current
 * key (AES-256-CBC + HMAC-SHA256, both keys from RAND_bytes), accepts tickets of the
 * current and the previous key (asking for a renewal for the previous one). */
int tls_tickets_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                   EVP_MAC_CTX *hctx, int enc);

/* Lifetime of a session issued by a listener with tickets: equal to the rotation interval,
 * so a ticket always outlives neither its key nor its session. */
#define TLS_TICKET_ROTATE_SECONDS (12 * 3600)

/* ---- shared by server and client contexts ---- */

/* Applies the I/O settings every sluice TLS context uses: partial writes, moving write
 * buffers, buffers released when empty, read-ahead. */
void tls_ctx_io_settings(SSL_CTX *ctx);

#endif
