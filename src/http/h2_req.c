/* HTTP/2 request fields to an HTTP/1.1 request head (see h2_req.h).
 *
 * mem holds one record per field: a 4-byte name length, a 4-byte value length, the name,
 * the value. Pseudo-header values are found again by their offsets. */
#include "http/h2_req.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/h1_chars.h"
#include "http/out.h"

#define REC_HDR 8u

void h2_req_init(struct h2_req *r, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
}

void h2_req_free(struct h2_req *r)
{
    free(r->mem);
    r->mem = NULL;
    r->len = r->cap = 0;
}

static bool name_is(const char *n, size_t nlen, const char *want)
{
    return nlen == strlen(want) && memcmp(n, want, nlen) == 0;
}

static int refuse(struct h2_req *r, const char *why)
{
    r->error = why;
    return -1;
}

/* Appends a record; returns the offset of its value, or -1 (r->error) when over max. */
static int64_t append(struct h2_req *r, const char *n, size_t nlen, const char *v, size_t vlen)
{
    /* what SETTINGS_MAX_HEADER_LIST_SIZE counts: name + value + 32 per field */
    uint64_t counted = (uint64_t)r->len + nlen + vlen + 32;
    if (counted > r->max) {
        r->error = "header list larger than max_header_list_size";
        return -1;
    }
    size_t need = r->len + REC_HDR + nlen + vlen;
    if (need > r->cap) {
        size_t cap = r->cap ? r->cap : 512;
        while (cap < need)
            cap *= 2;
        char *m = realloc(r->mem, cap);
        if (!m) {
            r->error = "out of memory";
            return -1;
        }
        r->mem = m;
        r->cap = (uint32_t)cap;
    }
    uint32_t nl = (uint32_t)nlen, vl = (uint32_t)vlen;
    memcpy(r->mem + r->len, &nl, 4);
    memcpy(r->mem + r->len + 4, &vl, 4);
    memcpy(r->mem + r->len + REC_HDR, n, nlen);
    memcpy(r->mem + r->len + REC_HDR + nlen, v, vlen);
    int64_t off = r->len + REC_HDR + nlen;
    r->len = (uint32_t)need;
    return off;
}

/* A field value that HTTP/1.1 reads the same way: field-vchar, SP and HTAB only inside,
 * no leading or trailing whitespace (RFC 9113 8.2.1). */
static bool value_ok(const char *v, size_t vlen)
{
    if (vlen && (h1_is_ows((unsigned char)v[0]) || h1_is_ows((unsigned char)v[vlen - 1])))
        return false;
    for (size_t i = 0; i < vlen; i++)
        if (!h1_is_value_char((unsigned char)v[i]))
            return false;
    return true;
}

static bool lowercase_token(const char *n, size_t nlen)
{
    if (!h1_is_token(n, nlen))
        return false;
    for (size_t i = 0; i < nlen; i++)
        if (n[i] >= 'A' && n[i] <= 'Z')
            return false;
    return true;
}

static int pseudo(struct h2_req *r, const char *n, size_t nlen, const char *v, size_t vlen)
{
    static const char *const names[] = {":method", ":scheme", ":authority", ":path", ":protocol"};
    uint32_t *slots[][2] = {{&r->method, &r->method_len},
                            {&r->scheme, &r->scheme_len},
                            {&r->authority, &r->authority_len},
                            {&r->path, &r->path_len},
                            {&r->protocol, &r->protocol_len}};
    if (r->regular_seen)
        return refuse(r, "pseudo-header field after a regular field");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!name_is(n, nlen, names[i]))
            continue;
        if (*slots[i][1])
            return refuse(r, "repeated pseudo-header field");
        if (vlen == 0)
            return refuse(r, "empty pseudo-header field");
        int64_t off = append(r, n, nlen, v, vlen);
        if (off < 0)
            return -1;
        *slots[i][0] = (uint32_t)off;
        *slots[i][1] = (uint32_t)vlen;
        return 0;
    }
    return refuse(r, "unknown pseudo-header field");
}

int h2_req_trailer_ok(const char *name, size_t nlen, const char *value, size_t vlen,
                      const char **why)
{
    static const char *const framing[] = {"connection", "keep-alive",        "proxy-connection",
                                          "upgrade",    "transfer-encoding", "te",
                                          "host",       "content-length"};
    *why = NULL;
    if (!value_ok(value, vlen))
        *why = "invalid character or surrounding whitespace in a trailer field value";
    else if (nlen > 0 && name[0] == ':')
        *why = "pseudo-header field in a trailer section";
    else if (!lowercase_token(name, nlen))
        *why = "trailer field name is not a lowercase token";
    for (size_t i = 0; !*why && i < sizeof(framing) / sizeof(framing[0]); i++)
        if (name_is(name, nlen, framing[i]))
            *why = "framing, routing or connection-specific field in a trailer section";
    return *why ? -1 : 0;
}

int h2_req_field(struct h2_req *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (!value_ok(value, vlen))
        return refuse(r, "invalid character or surrounding whitespace in a field value");
    if (nlen > 0 && name[0] == ':')
        return pseudo(r, name, nlen, value, vlen);
    r->regular_seen = true;
    if (!lowercase_token(name, nlen))
        return refuse(r, "field name is not a lowercase token");
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (name_is(name, nlen, hop[i]))
            return refuse(r, "connection-specific field in HTTP/2");
    if (name_is(name, nlen, "te")) {
        if (!(vlen == 8 && memcmp(value, "trailers", 8) == 0))
            return refuse(r, "TE other than trailers");
        return append(r, name, nlen, value, vlen) < 0 ? -1 : 0;
    }
    if (name_is(name, nlen, "host")) {
        if (r->host_len)
            return refuse(r, "repeated host field");
        int64_t off = append(r, name, nlen, value, vlen);
        if (off < 0)
            return -1;
        r->host = (uint32_t)off;
        r->host_len = (uint32_t)vlen;
        return 0;
    }
    if (name_is(name, nlen, "content-length"))
        r->has_length = true; /* nghttp2 checks it against the DATA; the parser its syntax */
    if (name_is(name, nlen, "cookie"))
        r->cookies += (uint32_t)vlen + 2;
    return append(r, name, nlen, value, vlen) < 0 ? -1 : 0;
}

bool h2_req_is_websocket(const struct h2_req *r)
{
    return r->protocol_len == 9 && memcmp(r->mem + r->protocol, "websocket", 9) == 0;
}

/* ---- writing ---- */

/* Checks the pseudo-header fields once the block is complete (RFC 9113 8.3, RFC 8441). */
static int check_complete(struct h2_req *r)
{
    if (!r->method_len)
        return refuse(r, "missing :method");
    bool connect = r->method_len == 7 && memcmp(r->mem + r->method, "CONNECT", 7) == 0;
    if (r->protocol_len && !connect)
        return refuse(r, ":protocol without CONNECT");
    if (connect && r->protocol_len && !h2_req_is_websocket(r))
        return refuse(r, "extended CONNECT for a protocol other than websocket");
    if (connect && !r->protocol_len) {
        if (!r->authority_len || r->scheme_len || r->path_len)
            return refuse(r, "CONNECT needs :authority and no :scheme or :path");
        return 0;
    }
    if (!r->scheme_len || !r->path_len)
        return refuse(r, "missing :scheme or :path");
    if (r->authority_len && r->host_len &&
        !(r->authority_len == r->host_len &&
          strncasecmp(r->mem + r->authority, r->mem + r->host, r->host_len) == 0))
        return refuse(r, "host field and :authority differ");
    if (!r->authority_len && !r->host_len)
        return refuse(r, "no :authority and no host field");
    return 0;
}

int h2_req_write_h1(struct h2_req *r, bool body, const char *ws_key, char *out, size_t cap)
{
    if (check_complete(r) < 0)
        return -1;
    bool ws = h2_req_is_websocket(r);
    if (ws && (!ws_key || strlen(ws_key) != 24))
        return refuse(r, "no Sec-WebSocket-Key for the upgrade");
    struct out o = {out, 0, cap, false};
    bool connect = !ws && r->method_len == 7 && memcmp(r->mem + r->method, "CONNECT", 7) == 0;
    if (ws)
        puts_(&o, "GET");
    else
        put(&o, r->mem + r->method, r->method_len);
    put(&o, " ", 1);
    if (connect)
        put(&o, r->mem + r->authority, r->authority_len);
    else
        put(&o, r->mem + r->path, r->path_len);
    puts_(&o, " HTTP/1.1\r\nHost: ");
    if (r->authority_len)
        put(&o, r->mem + r->authority, r->authority_len);
    else
        put(&o, r->mem + r->host, r->host_len);
    put(&o, "\r\n", 2);
    bool cookie_done = false;
    for (uint32_t at = 0; at < r->len;) {
        uint32_t nl, vl;
        memcpy(&nl, r->mem + at, 4);
        memcpy(&vl, r->mem + at + 4, 4);
        const char *n = r->mem + at + REC_HDR, *v = n + nl;
        at += REC_HDR + nl + vl;
        if (n[0] == ':' || name_is(n, nl, "host") || name_is(n, nl, "te"))
            continue;
        if (name_is(n, nl, "cookie")) {
            if (cookie_done)
                continue;
            cookie_done = true; /* every crumb, in order, on this first one's line */
            puts_(&o, "cookie: ");
            bool first = true;
            for (uint32_t c = at - REC_HDR - nl - vl; c < r->len;) {
                uint32_t cnl, cvl;
                memcpy(&cnl, r->mem + c, 4);
                memcpy(&cvl, r->mem + c + 4, 4);
                const char *cn = r->mem + c + REC_HDR;
                if (name_is(cn, cnl, "cookie")) {
                    if (!first)
                        put(&o, "; ", 2);
                    put(&o, cn + cnl, cvl);
                    first = false;
                }
                c += REC_HDR + cnl + cvl;
            }
            put(&o, "\r\n", 2);
            continue;
        }
        put(&o, n, nl);
        put(&o, ": ", 2);
        put(&o, v, vl);
        put(&o, "\r\n", 2);
    }
    if (ws) {
        puts_(&o, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
        puts_(&o, ws_key);
        put(&o, "\r\n", 2);
    } else if (body && !r->has_length && !connect) {
        puts_(&o, "Transfer-Encoding: chunked\r\n");
    }
    put(&o, "\r\n", 2);
    if (o.over)
        return refuse(r, "request head larger than the buffer");
    return (int)o.len;
}
