/* PROXY protocol v1/v2 parser and builder. See proxy_proto.h for the contracts.
 * Reference: HAProxy's doc/proxy-protocol.txt. */
#include "net/proxy_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21
#define V2_ADDR4_LEN 12   /* 2 x 4-byte address + 2 x port */
#define V2_ADDR6_LEN 36   /* 2 x 16-byte address + 2 x port */
#define V2_ADDRUN_LEN 216 /* 2 x 108-byte AF_UNIX path */

static int fail(const char **reason, const char *msg, int err)
{
    if (reason)
        *reason = msg;
    return err;
}

/* ---------------------------------------------------------------- v1 parser */

/* Reads a token from buf[*p..n) up to the first ' ', '\r' or '\n'. Sets *t and *tl to the
 * token. Returns the delimiter (and moves *p past it), or -1 when n was reached first (the
 * token is then partial and *p == n). */
static int v1_token(const uint8_t *buf, size_t n, size_t *p, const uint8_t **t, size_t *tl)
{
    size_t q = *p;

    while (q < n && buf[q] != ' ' && buf[q] != '\r' && buf[q] != '\n')
        q++;
    *t = buf + *p;
    *tl = q - *p;
    if (q == n) {
        *p = n;
        return -1;
    }
    *p = q + 1;
    return buf[q];
}

/* True when t[0..tl) is a prefix of (or equal to) word. */
static bool prefix_of(const uint8_t *t, size_t tl, const char *word)
{
    return tl <= strlen(word) && memcmp(t, word, tl) == 0;
}

/* Checks that t[0..tl) is (complete) or may still become (!complete) a dotted-quad IPv4
 * address in the form inet_pton accepts: 4 decimal octets <= 255 without leading zero. */
static bool v4_text_ok(const uint8_t *t, size_t tl, bool complete)
{
    unsigned dots = 0, digits = 0, val = 0;

    for (size_t i = 0; i < tl; i++) {
        if (t[i] == '.') {
            if (digits == 0 || ++dots > 3)
                return false;
            digits = val = 0;
        } else if (t[i] >= '0' && t[i] <= '9') {
            if (digits == 1 && val == 0)
                return false; /* leading zero */
            val = val * 10 + (unsigned)(t[i] - '0');
            if (++digits > 3 || val > 255)
                return false;
        } else {
            return false;
        }
    }
    return !complete || (dots == 3 && digits > 0);
}

/* Checks an address token of family fam; when complete, converts it into addr (a
 * struct in_addr or in6_addr) with inet_pton. Returns true when acceptable. */
static bool v1_addr(int fam, const uint8_t *t, size_t tl, bool complete, void *addr)
{
    char text[INET6_ADDRSTRLEN];

    if (fam == AF_INET) {
        if (!v4_text_ok(t, tl, complete))
            return false;
    } else {
        if (tl >= sizeof(text))
            return false;
        for (size_t i = 0; i < tl; i++) {
            uint8_t c = t[i];
            if (!(c == ':' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                  (c >= 'A' && c <= 'F')))
                return false;
        }
    }
    if (!complete)
        return true;
    if (tl == 0 || tl >= sizeof(text))
        return false;
    memcpy(text, t, tl);
    text[tl] = '\0';
    return inet_pton(fam, text, addr) == 1;
}

/* Checks a port token: 1-5 decimal digits, no leading zero (except "0"), <= 65535. */
static bool v1_port(const uint8_t *t, size_t tl, bool complete, uint16_t *port)
{
    unsigned val = 0;

    if (tl > 5 || (complete && tl == 0) || (tl > 1 && t[0] == '0'))
        return false;
    for (size_t i = 0; i < tl; i++) {
        if (t[i] < '0' || t[i] > '9')
            return false;
        val = val * 10 + (unsigned)(t[i] - '0');
    }
    if (val > 65535)
        return false;
    *port = (uint16_t)val;
    return true;
}

/* Parses a v1 line; buf[0] == 'P'. Same contract as pp_parse. */
static int v1_parse(const uint8_t *buf, size_t len, size_t max_len, struct pp_result *out,
                    const char **reason)
{
    static const char sig[] = "PROXY ";
    size_t cap = max_len < PP_V1_MAX ? max_len : PP_V1_MAX;
    size_t n = len < cap ? len : cap;
    size_t p, tl;
    const uint8_t *t;
    int d, fam;
    bool local;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } a[2];
    uint16_t port[2] = {0, 0};

    for (p = 0; p < sizeof(sig) - 1; p++) {
        if (p == n)
            goto out_of_bytes;
        if (buf[p] != (uint8_t)sig[p])
            return fail(reason, "bad v1 signature", -EINVAL);
    }

    d = v1_token(buf, n, &p, &t, &tl);
    if (d < 0) {
        if (!prefix_of(t, tl, "TCP4") && !prefix_of(t, tl, "TCP6") && !prefix_of(t, tl, "UNKNOWN"))
            return fail(reason, "bad v1 protocol", -EINVAL);
        goto out_of_bytes;
    }
    if (tl == 7 && memcmp(t, "UNKNOWN", 7) == 0) {
        local = true;
        fam = AF_UNSPEC;
        if (d == ' ') { /* anything up to CRLF is ignored */
            while (p < n && buf[p] != '\r' && buf[p] != '\n')
                p++;
            if (p == n)
                goto out_of_bytes;
            if (buf[p++] != '\r')
                return fail(reason, "bad v1 line ending", -EINVAL);
        } else if (d != '\r') {
            return fail(reason, "bad v1 line ending", -EINVAL);
        }
    } else if (tl == 4 && (memcmp(t, "TCP4", 4) == 0 || memcmp(t, "TCP6", 4) == 0)) {
        local = false;
        fam = t[3] == '4' ? AF_INET : AF_INET6;
        if (d != ' ')
            return fail(reason, "bad v1 separator", -EINVAL);
        for (int f = 0; f < 4; f++) {
            d = v1_token(buf, n, &p, &t, &tl);
            bool ok =
                f < 2 ? v1_addr(fam, t, tl, d >= 0, &a[f]) : v1_port(t, tl, d >= 0, &port[f - 2]);
            if (!ok)
                return fail(reason, f < 2 ? "bad v1 address" : "bad v1 port", -EINVAL);
            if (d < 0)
                goto out_of_bytes;
            if (f < 3 && d != ' ')
                return fail(reason, "bad v1 separator", -EINVAL);
            if (f == 3 && d != '\r')
                return fail(reason, "bad v1 line ending", -EINVAL);
        }
    } else {
        return fail(reason, "bad v1 protocol", -EINVAL);
    }
    if (p == n)
        goto out_of_bytes;
    if (buf[p++] != '\n')
        return fail(reason, "bad v1 line ending", -EINVAL);

    memset(out, 0, sizeof(*out));
    out->version = 1;
    out->local = local;
    out->header_len = p;
    if (fam == AF_INET) {
        for (int i = 0; i < 2; i++) {
            struct sockaddr_in *sin = (struct sockaddr_in *)(i ? &out->dst : &out->src);
            sin->sin_family = AF_INET;
            sin->sin_addr = a[i].v4;
            sin->sin_port = htons(port[i]);
        }
        out->src_len = out->dst_len = sizeof(struct sockaddr_in);
    } else if (fam == AF_INET6) {
        for (int i = 0; i < 2; i++) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(i ? &out->dst : &out->src);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr = a[i].v6;
            sin6->sin6_port = htons(port[i]);
        }
        out->src_len = out->dst_len = sizeof(struct sockaddr_in6);
    }
    return (int)p;

out_of_bytes:
    /* Everything seen is a valid prefix; n bytes are all we may look at. */
    if (len >= cap) {
        if (cap < PP_V1_MAX)
            return fail(reason, "header longer than max_len", -EMSGSIZE);
        return fail(reason, "v1 header too long", -EINVAL);
    }
    return 0;
}

/* ---------------------------------------------------------------- v2 parser */

/* Size of the address block for a v2 family byte, or -1 when unknown. */
static int v2_addr_len(uint8_t fam)
{
    switch (fam >> 4) {
    case 0x0:
        return 0;
    case 0x1:
        return V2_ADDR4_LEN;
    case 0x2:
        return V2_ADDR6_LEN;
    case 0x3:
        return V2_ADDRUN_LEN;
    default:
        return -1;
    }
}

/* Walks the TLVs in buf[p..end), recording ALPN and AUTHORITY (first occurrence). */
static int v2_tlvs(const uint8_t *buf, size_t p, size_t end, struct pp_result *out,
                   const char **reason)
{
    while (p < end) {
        if (end - p < 3)
            return fail(reason, "truncated v2 TLV", -EINVAL);
        uint8_t type = buf[p];
        size_t vlen = (size_t)buf[p + 1] << 8 | buf[p + 2];
        p += 3;
        if (vlen > end - p)
            return fail(reason, "truncated v2 TLV", -EINVAL);
        if (type == PP2_TYPE_ALPN && !out->alpn) {
            out->alpn = buf + p;
            out->alpn_len = vlen;
        } else if (type == PP2_TYPE_AUTHORITY && !out->authority) {
            out->authority = buf + p;
            out->authority_len = vlen;
        }
        p += vlen;
    }
    return 0;
}

/* Parses a v2 header; buf[0] == '\r'. Same contract as pp_parse. */
static int v2_parse(const uint8_t *buf, size_t len, size_t max_len, struct pp_result *out,
                    const char **reason)
{
    size_t i, hlen, total;
    int cmd = -1, alen = -1, rc;

    for (i = 0; i < sizeof(v2_sig) && i < len; i++)
        if (buf[i] != v2_sig[i])
            return fail(reason, "bad v2 signature", -EINVAL);
    if (len > 12) {
        if ((buf[12] >> 4) != 2)
            return fail(reason, "unsupported v2 version", -EINVAL);
        cmd = buf[12] & 0x0F;
        if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
            return fail(reason, "unknown v2 command", -EINVAL);
    }
    if (len > 13) {
        alen = v2_addr_len(buf[13]);
        if (cmd == V2_CMD_PROXY && buf[13] != V2_FAM_TCP4 && buf[13] != V2_FAM_TCP6)
            return fail(reason, "unsupported family", -EINVAL);
    }
    if (max_len < PP_V2_HDR_LEN)
        return fail(reason, "v2 header too long", -EMSGSIZE);
    if (len < PP_V2_HDR_LEN)
        return 0;

    hlen = (size_t)buf[14] << 8 | buf[15];
    total = PP_V2_HDR_LEN + hlen;
    if (total > max_len)
        return fail(reason, "v2 header too long", -EMSGSIZE);
    if (cmd == V2_CMD_PROXY && hlen < (size_t)alen)
        return fail(reason, "v2 address block truncated", -EINVAL);
    if (len < total)
        return 0;

    memset(out, 0, sizeof(*out));
    out->version = 2;
    out->header_len = total;
    out->local = cmd == V2_CMD_LOCAL;
    if (out->local && (alen < 0 || (size_t)alen > hlen))
        return (int)total; /* LOCAL: addresses are ignored, and so is what we can't walk */

    const uint8_t *a = buf + PP_V2_HDR_LEN;
    if (!out->local && buf[13] == V2_FAM_TCP4) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        out->src_len = out->dst_len = sizeof(struct sockaddr_in);
    } else if (!out->local) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        out->src_len = out->dst_len = sizeof(struct sockaddr_in6);
    }
    rc = v2_tlvs(buf, PP_V2_HDR_LEN + (size_t)alen, total, out, reason);
    if (rc < 0)
        return rc;
    return (int)total;
}

int pp_parse(const uint8_t *buf, size_t len, size_t max_len, struct pp_result *out,
             const char **reason)
{
    if (len == 0)
        return 0;
    if (buf[0] == 'P')
        return v1_parse(buf, len, max_len, out, reason);
    if (buf[0] == v2_sig[0])
        return v2_parse(buf, len, max_len, out, reason);
    return fail(reason, "not a PROXY protocol header", -EINVAL);
}

/* ---------------------------------------------------------------- builder */

/* One endpoint, normalised: fam is AF_INET (addr[0..4)) or AF_INET6 (addr[0..16)). */
struct pp_ep {
    int fam;
    uint8_t addr[16];
    uint16_t port_be; /* network order */
};

static bool ep_from(const struct sockaddr *sa, struct pp_ep *ep)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        ep->fam = AF_INET;
        memcpy(ep->addr, &sin.sin_addr, 4);
        ep->port_be = sin.sin_port;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        ep->fam = AF_INET6;
        memcpy(ep->addr, &sin6.sin6_addr, 16);
        ep->port_be = sin6.sin6_port;
        return true;
    }
    return false;
}

static bool ep_is_v4ish(const struct pp_ep *ep)
{
    return ep->fam == AF_INET ||
           IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)ep->addr);
}

/* Brings both endpoints to one family: IPv4-mapped IPv6 addresses become plain IPv4 when
 * the other side is IPv4 too. Returns false for genuinely mixed families (one IPv4, one
 * IPv6), which the header cannot describe: the caller then writes UNKNOWN / LOCAL. */
static bool ep_unify(struct pp_ep *a, struct pp_ep *b)
{
    struct pp_ep *e[2] = {a, b};

    if (a->fam == b->fam && !(a->fam == AF_INET6 && ep_is_v4ish(a) && ep_is_v4ish(b)))
        return true;
    if (!ep_is_v4ish(a) || !ep_is_v4ish(b))
        return false;
    for (int i = 0; i < 2; i++) { /* mapped -> plain IPv4 */
        if (e[i]->fam == AF_INET6) {
            memmove(e[i]->addr, e[i]->addr + 12, 4);
            e[i]->fam = AF_INET;
        }
    }
    return true;
}

static int build_v1(const struct pp_ep *s, const struct pp_ep *d, uint8_t *out, size_t cap)
{
    char line[PP_V1_MAX + 1], sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
    int n;

    if (!s) {
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    } else {
        if (!inet_ntop(s->fam, s->addr, sa, sizeof(sa)) ||
            !inet_ntop(d->fam, d->addr, da, sizeof(da)))
            return -EINVAL;
        n = snprintf(line, sizeof(line), "PROXY TCP%c %s %s %u %u\r\n",
                     s->fam == AF_INET ? '4' : '6', sa, da, (unsigned)ntohs(s->port_be),
                     (unsigned)ntohs(d->port_be));
    }
    if (n < 0 || (size_t)n >= sizeof(line))
        return -EINVAL; /* cannot happen: the longest TCP6 line is 104 bytes */
    if ((size_t)n > cap)
        return -ENOSPC;
    memcpy(out, line, (size_t)n);
    return n;
}

static size_t put_tlv(uint8_t *p, uint8_t type, const char *v, size_t vlen)
{
    p[0] = type;
    p[1] = (uint8_t)(vlen >> 8);
    p[2] = (uint8_t)vlen;
    memcpy(p + 3, v, vlen);
    return 3 + vlen;
}

static int build_v2(const struct pp_ep *s, const struct pp_ep *d, const char *alpn,
                    const char *authority, uint8_t *out, size_t cap)
{
    size_t alen = !s ? 0 : s->fam == AF_INET ? V2_ADDR4_LEN : V2_ADDR6_LEN;
    size_t alpn_len = alpn ? strlen(alpn) : 0, auth_len = authority ? strlen(authority) : 0;
    size_t total, p;

    if (alpn_len > 0xFFFF || auth_len > 0xFFFF)
        return -EINVAL;
    total = PP_V2_HDR_LEN + alen + (alpn_len ? 3 + alpn_len : 0) + (auth_len ? 3 + auth_len : 0);
    if (total - PP_V2_HDR_LEN > 0xFFFF)
        return -EINVAL;
    if (total > cap)
        return -ENOSPC;

    memcpy(out, v2_sig, sizeof(v2_sig));
    out[12] = 0x20 | (s ? V2_CMD_PROXY : V2_CMD_LOCAL);
    out[13] = !s ? V2_FAM_UNSPEC : s->fam == AF_INET ? V2_FAM_TCP4 : V2_FAM_TCP6;
    out[14] = (uint8_t)((total - PP_V2_HDR_LEN) >> 8);
    out[15] = (uint8_t)(total - PP_V2_HDR_LEN);
    p = PP_V2_HDR_LEN;
    if (s) {
        size_t al = s->fam == AF_INET ? 4 : 16;
        memcpy(out + p, s->addr, al);
        memcpy(out + p + al, d->addr, al);
        memcpy(out + p + 2 * al, &s->port_be, 2);
        memcpy(out + p + 2 * al + 2, &d->port_be, 2);
        p += alen;
    }
    if (alpn_len)
        p += put_tlv(out + p, PP2_TYPE_ALPN, alpn, alpn_len);
    if (auth_len)
        p += put_tlv(out + p, PP2_TYPE_AUTHORITY, authority, auth_len);
    return (int)p;
}

int pp_build(int version, const struct sockaddr *src, const struct sockaddr *dst, const char *alpn,
             const char *authority, uint8_t *out, size_t cap)
{
    struct pp_ep s, d;
    bool have = ep_from(src, &s) && ep_from(dst, &d);

    if (have && !ep_unify(&s, &d))
        have = false; /* mixed families: UNKNOWN (v1) / LOCAL (v2) */
    if (version == 1)
        return build_v1(have ? &s : NULL, have ? &d : NULL, out, cap);
    if (version == 2)
        return build_v2(have ? &s : NULL, have ? &d : NULL, alpn, authority, out, cap);
    return -EINVAL;
}

int pp_build_local(int version, uint8_t *out, size_t cap)
{
    return pp_build(version, NULL, NULL, NULL, NULL, out, cap);
}
