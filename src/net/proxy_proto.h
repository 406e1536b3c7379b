/* PROXY protocol v1 (text) and v2 (binary) headers, as specified by HAProxy's
 * "proxy-protocol.txt": a pure, bounded, allocation-free parser for the header a load
 * balancer in front of us sends (listener `proxy_protocol: accept`), and a builder for the
 * header we send to servers (backend `proxy_protocol: v1 | v2`). No I/O, no global state:
 * every function is safe to call from any thread. */
#ifndef SLUICE_NET_PROXY_PROTO_H
#define SLUICE_NET_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP_V1_MAX 107          /* longest v1 line, "PROXY ... \r\n" included */
#define PP_V2_MAX_DEFAULT 4096 /* default cap on a v2 header (16 + len) */
#define PP_V2_HDR_LEN 16       /* v2 fixed part: signature, ver/cmd, fam, len */

#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02 /* the host name the client asked for (SNI) */

struct pp_result {
    int version;                      /* 1 or 2 */
    bool local;                       /* v2 LOCAL or v1 UNKNOWN: no address carried; use the
                                         real connection endpoints */
    struct sockaddr_storage src, dst; /* valid when !local: AF_INET or AF_INET6 */
    socklen_t src_len, dst_len;
    size_t header_len; /* bytes consumed from the stream */
    /* v2 TLVs seen (first occurrence of each); pointers into the caller's input buffer,
     * valid while it lives; NULL/0 when absent. Not NUL-terminated, not validated. */
    const uint8_t *alpn;
    size_t alpn_len;
    const uint8_t *authority;
    size_t authority_len;
};

/* Parses a PROXY header (v1 or v2, told apart by the first byte) at the start of
 * buf[0..len). Never reads outside buf, never allocates.
 * Returns:
 *   > 0        a complete valid header was parsed; the value is out->header_len, the
 *              number of bytes to drop from the stream before the client's data;
 *   0          the bytes so far are a valid prefix of a header: read more and call again
 *              with the whole buffer (a stream that cannot become a header is rejected as
 *              soon as the first wrong byte arrives);
 *   -EINVAL    malformed, or not a PROXY header at all;
 *   -EMSGSIZE  the header is (or would be) longer than max_len bytes. max_len is a plain
 *              cap (use PP_V2_MAX_DEFAULT); v1 lines are also capped at PP_V1_MAX.
 * On error *reason (if reason != NULL) points at a static message such as
 * "bad v1 signature", "v2 header too long", "unsupported family". *out is fully written
 * only when the return value is > 0.
 * Strictness: v1 needs single spaces, "TCP4"/"TCP6" addresses valid for inet_pton of that
 * family, ports 0-65535 in decimal without sign or leading zero, and CRLF; "UNKNOWN" may be
 * followed by a space and any bytes but CR/LF. v2 needs version 2, command LOCAL or PROXY;
 * PROXY needs AF_INET or AF_INET6 over STREAM; LOCAL accepts any family and ignores the
 * addresses. TLVs after the address block are walked and must tile the rest exactly. The
 * CRC32C TLV is not verified. */
int pp_parse(const uint8_t *buf, size_t len, size_t max_len, struct pp_result *out,
             const char **reason);

/* Builds a header describing the connection src -> dst into out[0..cap).
 * version: 1 or 2 (else -EINVAL).
 * Addresses: AF_INET and AF_INET6 only. An IPv4-mapped IPv6 address is written as IPv4
 * when the other one is IPv4 or IPv4-mapped too. Mixed families (one IPv4, one non-mapped
 * IPv6 address) cannot be described by one header, and neither can a NULL or non-IP
 * address: v1 then writes "PROXY UNKNOWN\r\n" and v2 a LOCAL command with AF_UNSPEC.
 * v2 only: appends TLVs PP2_TYPE_ALPN and PP2_TYPE_AUTHORITY (in that order) for each of
 * alpn / authority that is non-NULL and non-empty (also to a LOCAL header); v1 ignores them.
 * Returns the number of bytes written, -ENOSPC when cap is too small (out's content is then
 * unspecified), -EINVAL on a bad version or a TLV value longer than 65535 bytes. */
int pp_build(int version, const struct sockaddr *src, const struct sockaddr *dst, const char *alpn,
             const char *authority, uint8_t *out, size_t cap);

/* A header carrying no address, for health probes: v1 "PROXY UNKNOWN\r\n" (15 bytes) or a
 * v2 LOCAL command with AF_UNSPEC and no TLV (16 bytes). Returns bytes written, -ENOSPC or
 * -EINVAL (bad version). */
int pp_build_local(int version, uint8_t *out, size_t cap);

#endif
