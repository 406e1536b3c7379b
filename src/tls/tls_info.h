/* What a TLS connection negotiated, and OpenSSL's error reasons, for logs and metrics. */
#ifndef SLUICE_TLS_INFO_H
#define SLUICE_TLS_INFO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_peer_info {
    const char *version;       /* "TLSv1.3", "TLSv1.2" (static string), "" before the hs */
    const char *cipher;        /* e.g. "TLS_AES_128_GCM_SHA256" (static), "" when none */
    char alpn[256];            /* negotiated protocol, "" when none */
    char sni[256];             /* server name sent by the client, "" when none */
    bool resumed;              /* the session was resumed (ticket or cache) */
    bool peer_verified;        /* the peer sent a certificate and it verified */
    char peer_subject[512];    /* when peer_verified: subject, RFC 2253 one line ("" else) */
    char peer_fingerprint[65]; /* when peer_verified: SHA-256 of the DER, lowercase hex */
};

/* Fills `out` for a connection whose handshake is complete (server or client side).
 * Allocation-free except for the subject formatting. */
void tls_peer_info(SSL *ssl, struct tls_peer_info *out);

/* Writes OpenSSL's reasons for the latest failure into buf ("outer: root cause", e.g.
 * "certificate verify failed"), or "unknown error" when the queue is empty, and clears
 * the thread's error queue. Returns buf. */
const char *tls_last_error(char *buf, size_t len);

/* Same for a failed handshake or I/O on `ssl`, followed by the certificate verification
 * result when it failed, e.g. "certificate verify failed (certificate has expired)". */
const char *tls_ssl_error(SSL *ssl, char *buf, size_t len);

#endif
