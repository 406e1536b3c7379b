/* TLS ClientHello peek, for SNI/ALPN routing of TLS passthrough (`tcp` listeners whose
 * routes match `sni` or `alpn`): reads the server name and ALPN protocols a client offers
 * from the raw bytes it sent, without terminating TLS and without changing the bytes, which
 * are then forwarded untouched. A pure, bounded, allocation-free and copy-free parser: no I/O,
 * no global state, callable from any thread. */
#ifndef SLUICE_TLS_CLIENT_HELLO_H
#define SLUICE_TLS_CLIENT_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CH_MAX_DEFAULT 16384 /* suggested cap on the ClientHello message (4 + body) */
#define CH_SNI_MAX 255       /* longest host name we accept */
#define CH_ALPN_MAX 8        /* protocols kept, in offer order */
#define CH_ALPN_NAME_MAX 63  /* longest protocol name kept */

struct ch_info {
    char sni[CH_SNI_MAX + 1]; /* host_name from server_name, lowercased, NUL-terminated */
    bool has_sni;
    char alpn[CH_ALPN_MAX][CH_ALPN_NAME_MAX + 1]; /* ALPN protocols offered, in order */
    int n_alpn;
    uint16_t legacy_version; /* ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3) */
    bool tls13_offered;      /* supported_versions contains 0x0304 */
    size_t bytes_needed;     /* on CH_NEED_MORE: total stream bytes needed when known, else 0 */
};

enum { CH_OK = 1, CH_NEED_MORE = 0, CH_NOT_TLS = -1, CH_MALFORMED = -2, CH_TOO_LARGE = -3 };

/* Parses the ClientHello at the start of the stream bytes buf[0..len) as a client sends
 * them: one or more TLS records of content type 22 (handshake) carrying the ClientHello
 * handshake message, possibly split over many records (of any size down to 1 byte).
 * Fragments are read in place, never copied. Call again with the whole buffer once more
 * bytes have arrived.
 * max_len caps the ClientHello handshake message (4-byte header + body), not the raw
 * stream: the record headers add 5 bytes per record, so the caller also bounds how many
 * stream bytes it buffers (and for how long) while this returns CH_NEED_MORE.
 * Returns:
 *   CH_OK         the whole ClientHello was read and *out describes it;
 *   CH_NEED_MORE  what we have is a valid prefix; out->bytes_needed is the total stream
 *                 length that will complete it, when the record framing already tells;
 *   CH_NOT_TLS    the stream does not start with a TLS handshake record; decided on the
 *                 first 3 bytes (0x16, 0x03, 0x00-0x04), e.g. plain text or an SSLv2 hello;
 *   CH_MALFORMED  a bad record framing, not a ClientHello, or a bad length anywhere inside it;
 *                 an invalid host name (characters other than letters, digits, '-', '_'
 *                 and '.', an empty label or one longer than 63, a trailing dot, or longer
 *                 than 255); a repeated server_name, ALPN or supported_versions extension;
 *   CH_TOO_LARGE  the ClientHello message is longer than max_len.
 * On errors *reason (if reason != NULL) points at a static message.
 * Only the first host_name of server_name is kept; ALPN names longer than
 * CH_ALPN_NAME_MAX or containing a NUL byte are skipped (they could never equal a configured
 * name), and the list is cut after CH_ALPN_MAX. Bytes after the ClientHello (in its last
 * record or later) are not looked at. *out is meaningful only on CH_OK, except
 * out->bytes_needed on CH_NEED_MORE. */
int ch_parse(const uint8_t *buf, size_t len, size_t max_len, struct ch_info *out,
             const char **reason);

#endif
