/* TLS ClientHello peek. See client_hello.h for the contract.
 * Two passes over the stream: ch_frame() walks the record layer until the whole handshake
 * message is present, then a forward-only cursor reads the message across record
 * boundaries in place (RFC 8446 section 4.1.2, RFC 6066 section 3, RFC 7301). */
#include "tls/client_hello.h"

#include <string.h>

#define REC_HDR 5
#define REC_MAX 16384 /* TLSPlaintext.length limit, 2^14 */
#define HS_HDR 4
#define HS_CLIENT_HELLO 1

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0

static int fail(const char **reason, const char *msg, int rc)
{
    if (reason)
        *reason = msg;
    return rc;
}

/* Walks the records in buf[0..len) until the ClientHello message is complete. On CH_OK
 * sets *msg_len to its length (4 + body). Validates every record header and the handshake
 * header as soon as their bytes are there. */
static int ch_frame(const uint8_t *buf, size_t len, size_t max_len, size_t *msg_len,
                    struct ch_info *out, const char **reason)
{
    size_t pos = 0;  /* stream offset of the next record header */
    size_t have = 0; /* handshake message bytes seen so far */
    size_t need = 0; /* message length once the handshake header is in */
    uint8_t hs[HS_HDR];

    for (;;) {
        size_t avail = len - pos;
        bool first = pos == 0;
        if (avail >= 1 && buf[pos] != 0x16)
            return first ? fail(reason, "not a TLS handshake record", CH_NOT_TLS)
                         : fail(reason, "unexpected record type in ClientHello", CH_MALFORMED);
        if ((avail >= 2 && buf[pos + 1] != 0x03) || (avail >= 3 && buf[pos + 2] > 0x04))
            return first ? fail(reason, "bad TLS record version", CH_NOT_TLS)
                         : fail(reason, "bad TLS record version", CH_MALFORMED);
        if (avail < REC_HDR)
            break;
        size_t rlen = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
        if (rlen == 0 || rlen > REC_MAX)
            return fail(reason, "bad TLS record length", CH_MALFORMED);
        pos += REC_HDR;

        size_t take = len - pos < rlen ? len - pos : rlen;
        for (size_t i = 0; i < take && have + i < HS_HDR; i++) {
            hs[have + i] = buf[pos + i];
            if (have + i == 0 && hs[0] != HS_CLIENT_HELLO)
                return fail(reason, "not a ClientHello", CH_MALFORMED);
        }
        if (need == 0 && have + take >= HS_HDR) {
            need = HS_HDR + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
            if (need > max_len)
                return fail(reason, "ClientHello too large", CH_TOO_LARGE);
        }
        if (need && have + take >= need) {
            *msg_len = need;
            return CH_OK;
        }
        if (take < rlen) { /* this record is cut short */
            if (need && need - have <= rlen)
                out->bytes_needed = pos + (need - have);
            return CH_NEED_MORE;
        }
        have += take;
        pos += rlen;
    }
    return CH_NEED_MORE;
}

/* Forward-only reader over the handshake message, hopping over record headers that
 * ch_frame() has already checked. off is the offset within the message. */
struct ch_cur {
    const uint8_t *buf;
    size_t pos;      /* stream offset of the next byte (or record header) */
    size_t rec_left; /* bytes left in the current record */
    size_t off;
};

static void cur_hop(struct ch_cur *c)
{
    if (c->rec_left == 0) {
        c->rec_left = (size_t)c->buf[c->pos + 3] << 8 | c->buf[c->pos + 4];
        c->pos += REC_HDR;
    }
}

/* Reads an n-byte (n <= 3) big-endian integer; false when it would cross end. */
static bool cur_int(struct ch_cur *c, size_t end, size_t n, size_t *v)
{
    if (end - c->off < n)
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        cur_hop(c);
        *v = *v << 8 | c->buf[c->pos++];
        c->rec_left--;
        c->off++;
    }
    return true;
}

/* Skips n bytes, copying them into dst when dst != NULL; false when it would cross end. */
static bool cur_take(struct ch_cur *c, size_t end, size_t n, uint8_t *dst)
{
    if (end - c->off < n)
        return false;
    c->off += n;
    while (n) {
        cur_hop(c);
        size_t k = n < c->rec_left ? n : c->rec_left;
        if (dst) {
            memcpy(dst, c->buf + c->pos, k);
            dst += k;
        }
        c->pos += k;
        c->rec_left -= k;
        n -= k;
    }
    return true;
}

/* Lowercases and checks a host name in place (see ch_parse's contract). */
static bool host_name_ok(char *s, size_t n)
{
    size_t label = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (ch >= 'A' && ch <= 'Z')
            s[i] = (char)(ch - 'A' + 'a');
        else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0; /* not empty, no trailing dot */
}

/* server_name: ServerNameList server_name_list<1..2^16-1>. Exactly one entry, of type
 * host_name, as OpenSSL and BoringSSL require: RFC 6066 forbids two names of one type,
 * and no other type exists. A router that picked one name out of several (or skipped an
 * unknown type) could route by a name the server behind it never sees. */
static int ext_sni(struct ch_cur *c, size_t end, struct ch_info *out, const char **reason)
{
    size_t list, type, n;

    if (!cur_int(c, end, 2, &list) || list == 0 || list != end - c->off)
        return fail(reason, "bad server_name list length", CH_MALFORMED);
    while (c->off < end) {
        if (!cur_int(c, end, 1, &type) || !cur_int(c, end, 2, &n) || end - c->off < n)
            return fail(reason, "bad server_name entry length", CH_MALFORMED);
        if (out->has_sni)
            return fail(reason, "more than one name in server_name", CH_MALFORMED);
        if (type != SNI_HOST_NAME)
            return fail(reason, "server_name entry of unknown type", CH_MALFORMED);
        if (n == 0 || n > CH_SNI_MAX)
            return fail(reason, "bad server name length", CH_MALFORMED);
        cur_take(c, end, n, (uint8_t *)out->sni);
        out->sni[n] = '\0';
        if (memchr(out->sni, '\0', n) || !host_name_ok(out->sni, n))
            return fail(reason, "invalid server name", CH_MALFORMED);
        out->has_sni = true;
    }
    return CH_OK;
}

/* application_layer_protocol_negotiation: ProtocolName protocol_name_list<2..2^16-1>,
 * ProtocolName <1..2^8-1>. */
static int ext_alpn(struct ch_cur *c, size_t end, struct ch_info *out, const char **reason)
{
    size_t list, n;

    if (!cur_int(c, end, 2, &list) || list < 2 || list != end - c->off)
        return fail(reason, "bad ALPN list length", CH_MALFORMED);
    while (c->off < end) {
        if (!cur_int(c, end, 1, &n) || n == 0 || end - c->off < n)
            return fail(reason, "bad ALPN protocol length", CH_MALFORMED);
        if (out->n_alpn < CH_ALPN_MAX && n <= CH_ALPN_NAME_MAX) {
            char *name = out->alpn[out->n_alpn];
            cur_take(c, end, n, (uint8_t *)name);
            name[n] = '\0';
            if (!memchr(name, '\0', n))
                out->n_alpn++;
            else
                memset(name, 0, n); /* not representable as a C string: skipped */
        } else {
            cur_take(c, end, n, NULL);
        }
    }
    return CH_OK;
}

/* supported_versions (ClientHello form): ProtocolVersion versions<2..254>. */
static int ext_versions(struct ch_cur *c, size_t end, struct ch_info *out, const char **reason)
{
    size_t list, v;

    if (!cur_int(c, end, 1, &list) || list < 2 || list % 2 || list != end - c->off)
        return fail(reason, "bad supported_versions length", CH_MALFORMED);
    while (c->off < end) {
        cur_int(c, end, 2, &v);
        if (v == 0x0304)
            out->tls13_offered = true;
    }
    return CH_OK;
}

/* Reads the ClientHello body once ch_frame() has found all msg_len bytes of it. */
static int ch_body(const uint8_t *buf, size_t msg_len, struct ch_info *out, const char **reason)
{
    struct ch_cur c = {.buf = buf};
    size_t end = msg_len, v, n;
    bool seen_sni = false, seen_alpn = false, seen_vers = false;

    cur_take(&c, end, HS_HDR, NULL); /* type and length: checked by ch_frame() */
    if (!cur_int(&c, end, 2, &v) || !cur_take(&c, end, 32, NULL))
        return fail(reason, "ClientHello too short", CH_MALFORMED);
    out->legacy_version = (uint16_t)v;
    if (!cur_int(&c, end, 1, &n) || n > 32 || !cur_take(&c, end, n, NULL))
        return fail(reason, "bad session id length", CH_MALFORMED);
    if (!cur_int(&c, end, 2, &n) || n < 2 || n % 2 || !cur_take(&c, end, n, NULL))
        return fail(reason, "bad cipher suites length", CH_MALFORMED);
    if (!cur_int(&c, end, 1, &n) || n < 1 || !cur_take(&c, end, n, NULL))
        return fail(reason, "bad compression methods length", CH_MALFORMED);
    if (c.off == end)
        return CH_OK; /* no extensions (SSL 3.0 style) */
    if (!cur_int(&c, end, 2, &n) || n != end - c.off)
        return fail(reason, "bad extensions length", CH_MALFORMED);

    while (c.off < end) {
        size_t type, elen, eend;
        int rc = CH_OK;
        if (!cur_int(&c, end, 2, &type) || !cur_int(&c, end, 2, &elen) || end - c.off < elen)
            return fail(reason, "bad extension length", CH_MALFORMED);
        eend = c.off + elen;
        bool *seen = type == EXT_SERVER_NAME          ? &seen_sni
                     : type == EXT_ALPN               ? &seen_alpn
                     : type == EXT_SUPPORTED_VERSIONS ? &seen_vers
                                                      : NULL;
        if (seen) {
            if (*seen)
                return fail(reason, "duplicate extension", CH_MALFORMED);
            *seen = true;
        }
        if (type == EXT_SERVER_NAME)
            rc = ext_sni(&c, eend, out, reason);
        else if (type == EXT_ALPN)
            rc = ext_alpn(&c, eend, out, reason);
        else if (type == EXT_SUPPORTED_VERSIONS)
            rc = ext_versions(&c, eend, out, reason);
        else
            cur_take(&c, eend, elen, NULL);
        if (rc != CH_OK)
            return rc;
    }
    return CH_OK;
}

int ch_parse(const uint8_t *buf, size_t len, size_t max_len, struct ch_info *out,
             const char **reason)
{
    size_t msg_len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ch_frame(buf, len, max_len, &msg_len, out, reason);
    if (rc != CH_OK)
        return rc;
    return ch_body(buf, msg_len, out, reason);
}
