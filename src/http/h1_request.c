/* HTTP/1.x request-head parser. See h1_request.h for the contract. */
#include "http/h1_request.h"

#include <string.h>
#include <strings.h>

/* tchar from RFC 9110 section 5.6.2: the characters of a method or a header name. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value octets: visible ASCII, obs-text (>= 0x80), space and tab. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Characters allowed in a request-target: visible ASCII (no spaces or controls). */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Finds the end of the line that starts at `p` (before `end`). Returns the position of
 * the CR of its CRLF, NULL when the line is not complete yet, and sets *bad on a bare CR
 * or LF. */
static const char *line_end(const char *p, const char *end, bool *bad)
{
    for (; p < end; p++) {
        if (*p == '\n') {
            *bad = true;
            return NULL;
        }
        if (*p == '\r') {
            if (p + 1 == end)
                return NULL;
            if (p[1] != '\n') {
                *bad = true;
                return NULL;
            }
            return p;
        }
    }
    return NULL;
}

/* Parses "METHOD SP TARGET SP HTTP/1.x" in [p, eol). */
static int parse_request_line(const char *p, const char *eol, struct h1_request *req)
{
    const char *m = p;
    while (p < eol && is_tchar((unsigned char)*p))
        p++;
    if (p == m || p == eol || *p != ' ')
        return H1_ERR_SYNTAX;
    req->method = (struct h1_str){m, (size_t)(p - m)};
    p++;
    const char *t = p;
    while (p < eol && is_target_char((unsigned char)*p))
        p++;
    if (p == t || p == eol || *p != ' ')
        return H1_ERR_SYNTAX;
    req->target = (struct h1_str){t, (size_t)(p - t)};
    p++;
    if (eol - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
        return H1_ERR_SYNTAX;
    if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return H1_ERR_SYNTAX;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return H1_ERR_VERSION;
    req->minor_version = p[7] - '0';
    return 0;
}

/* Parses "name: value" in [p, eol) into h. */
static int parse_header_line(const char *p, const char *eol, struct h1_header *h)
{
    const char *n = p;
    while (p < eol && is_tchar((unsigned char)*p))
        p++;
    if (p == n || p == eol || *p != ':')
        return H1_ERR_SYNTAX; /* empty name, obs-fold, space before ':' or a bad char */
    h->name = (struct h1_str){n, (size_t)(p - n)};
    p++;
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    const char *v = p;
    for (const char *q = p; q < eol; q++)
        if (!is_value_char((unsigned char)*q))
            return H1_ERR_SYNTAX;
    const char *ve = eol;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    h->value = (struct h1_str){v, (size_t)(ve - v)};
    return 0;
}

int h1_parse_request(const char *buf, size_t len, size_t max_head, struct h1_request *req)
{
    bool capped = len > max_head;
    const char *p = buf, *end = buf + (capped ? max_head : len);
    bool bad = false;
    req->n_headers = 0;

    /* skip empty lines before the request line (RFC 9112 section 2.2) */
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    const char *eol = line_end(p, end, &bad);
    if (bad)
        return H1_ERR_SYNTAX;
    if (!eol)
        return capped || len == max_head ? H1_ERR_TOO_LARGE : H1_NEED_MORE;
    int r = parse_request_line(p, eol, req);
    if (r < 0)
        return r;
    p = eol + 2;
    for (;;) {
        eol = line_end(p, end, &bad);
        if (bad)
            return H1_ERR_SYNTAX;
        if (!eol)
            return capped || len == max_head ? H1_ERR_TOO_LARGE : H1_NEED_MORE;
        if (eol == p)
            return (int)(eol + 2 - buf);
        if (req->n_headers == H1_MAX_HEADERS)
            return H1_ERR_TOO_MANY;
        r = parse_header_line(p, eol, &req->headers[req->n_headers]);
        if (r < 0)
            return r;
        req->n_headers++;
        p = eol + 2;
    }
}

static bool str_ieq(struct h1_str s, const char *z)
{
    size_t n = strlen(z);
    return s.len == n && strncasecmp(s.p, z, n) == 0;
}

const struct h1_header *h1_find_header(const struct h1_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (str_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

bool h1_header_has_token(const struct h1_request *req, const char *name, const char *token)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct h1_header *h = &req->headers[i];
        if (!str_ieq(h->name, name))
            continue;
        const char *p = h->value.p, *end = p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > s && str_ieq((struct h1_str){s, (size_t)(e - s)}, token))
                return true;
        }
    }
    return false;
}

int h1_body_length(const struct h1_request *req, uint64_t *length)
{
    bool seen = false;
    uint64_t value = 0;
    *length = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct h1_header *h = &req->headers[i];
        if (str_ieq(h->name, "transfer-encoding"))
            return h1_find_header(req, "content-length") ? H1_ERR_SYNTAX : 1;
        if (!str_ieq(h->name, "content-length"))
            continue;
        if (h->value.len == 0 || h->value.len > 19)
            return H1_ERR_SYNTAX; /* 19 digits always fit in 64 bits */
        uint64_t v = 0;
        for (size_t k = 0; k < h->value.len; k++) {
            char c = h->value.p[k];
            if (c < '0' || c > '9')
                return H1_ERR_SYNTAX;
            v = v * 10 + (uint64_t)(c - '0');
        }
        if (seen && v != value)
            return H1_ERR_SYNTAX;
        seen = true;
        value = v;
    }
    *length = value;
    return 0;
}

bool h1_keep_alive(const struct h1_request *req)
{
    if (req->minor_version == 0)
        return h1_header_has_token(req, "connection", "keep-alive");
    return !h1_header_has_token(req, "connection", "close");
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int h1_percent_decode(const char *src, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
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
