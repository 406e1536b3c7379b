/* Authorities, paths and percent-decoding. See uri.h for the contract. */
#include "http/uri.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "http/h1_chars.h"

static bool is_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* "[" IPv6address "]" at p[0..len): inet_pton decides, on a NUL-terminated copy of what
 * is made of IPv6 characters only (an embedded NUL would end the copy early). */
static bool valid_ipv6_literal(const char *p, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr addr;
    if (len < 3 || p[0] != '[' || p[len - 1] != ']' || len - 2 >= sizeof(tmp))
        return false;
    for (size_t i = 1; i < len - 1; i++)
        if (p[i] != ':' && p[i] != '.' && h1_hex_value((unsigned char)p[i]) < 0)
            return false;
    memcpy(tmp, p + 1, len - 2);
    tmp[len - 2] = 0;
    return inet_pton(AF_INET6, tmp, &addr) == 1;
}

int uri_parse_authority(const char *p, size_t len, bool port_required, struct uri_authority *a)
{
    size_t h = 0;
    if (len > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close)
            return -1;
        h = (size_t)(close - p) + 1;
        if (!valid_ipv6_literal(p, h))
            return -1;
    } else {
        while (h < len && is_host_char((unsigned char)p[h]))
            h++;
        if (h == 0)
            return -1;
    }
    a->host = p;
    a->host_len = h;
    a->port = -1;
    if (h == len)
        return port_required ? -1 : 0;
    if (p[h] != ':' || len - h - 1 == 0 || len - h - 1 > 5)
        return -1;
    int port = 0;
    for (size_t i = h + 1; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        port = port * 10 + (p[i] - '0');
    }
    if (port > 65535)
        return -1;
    a->port = port;
    return 0;
}

bool uri_same_authority(const struct uri_authority *a, const struct uri_authority *b,
                        int default_port)
{
    int pa = a->port < 0 ? default_port : a->port;
    int pb = b->port < 0 ? default_port : b->port;
    return pa == pb && a->host_len == b->host_len &&
           strncasecmp(a->host, b->host, a->host_len) == 0;
}

bool uri_valid_path(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return false;
    }
    return true;
}

int h1_percent_decode(const char *src, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = h1_hex_value((unsigned char)src[i + 1]);
            int lo = h1_hex_value((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            if (c == 0)
                return -1;
            i += 2;
        }
        if (n + 1 >= outlen)
            return -1;
        out[n++] = c;
    }
    if (outlen == 0)
        return -1;
    out[n] = 0;
    return (int)n;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Nothing to normalise: no escape and no segment starting with '.'. */
static bool path_is_normal(const char *p, size_t len)
{
    for (size_t i = 1; i < len; i++) /* p[0] is '/' */
        if (p[i] == '%' || (p[i] == '.' && p[i - 1] == '/'))
            return false;
    return true;
}

/* Decodes the escapes of unreserved characters in place; returns the new length. */
static size_t decode_unreserved(char *p, size_t len)
{
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        if (p[r] == '%' && r + 2 < len) {
            int hi = h1_hex_value((unsigned char)p[r + 1]);
            int lo = h1_hex_value((unsigned char)p[r + 2]);
            if (hi >= 0 && lo >= 0 && is_unreserved((unsigned char)(hi * 16 + lo))) {
                p[w++] = (char)(hi * 16 + lo);
                r += 2;
                continue;
            }
        }
        p[w++] = p[r];
    }
    return w;
}

long uri_normalize_path(char *p, size_t len)
{
    if (len == 0 || p[0] != '/' || path_is_normal(p, len))
        return (long)len;
    len = decode_unreserved(p, len);
    /* p[0] is '/'; each input segment is the text after a '/' up to the next '/' or the
       end. w: bytes of output (w <= r: the output never overtakes the input). */
    size_t w = 0, r = 0;
    while (r < len) {
        size_t s = r + 1, e = s; /* segment [s, e) */
        while (e < len && p[e] != '/')
            e++;
        size_t sl = e - s;
        bool last = e == len;
        if (sl == 1 && p[s] == '.') {
            if (last)
                p[w++] = '/';
        } else if (sl == 2 && p[s] == '.' && p[s + 1] == '.') {
            if (w == 0)
                return -1; /* above the root */
            while (w > 0 && p[w - 1] != '/')
                w--; /* drop the last segment's text ... */
            w--;     /* ... and its '/' */
            if (last)
                p[w++] = '/';
        } else {
            memmove(p + w, p + r, sl + 1); /* '/' and the segment */
            w += sl + 1;
        }
        r = e;
    }
    return (long)w;
}
