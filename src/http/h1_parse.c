/* HTTP/1.x head parser. See h1_parse.h for the contract and the strictness policy. */
#include "http/h1_parse.h"

#include <string.h>
#include <strings.h>

#include "http/h1_chars.h"
#include "http/uri.h"

void h1_head_init(struct h1_head *h, struct h1_header *headers, size_t capacity)
{
    memset(h, 0, sizeof(*h));
    h->headers = headers;
    h->cap_headers = capacity;
}

static bool str_is(const char *p, size_t len, const char *z)
{
    return len == strlen(z) && memcmp(p, z, len) == 0;
}

/* "HTTP/" DIGIT "." DIGIT at p[0..8): H1_OK with *minor set, H1_E_VERSION for a
 * well-formed version other than 1.0 and 1.1, H1_E_VERSION_SYNTAX otherwise. */
static enum h1_error parse_version(const char *p, int *minor)
{
    if (memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' || p[7] < '0' ||
        p[7] > '9')
        return H1_E_VERSION_SYNTAX;
    if (p[5] != '1' || p[7] > '1')
        return H1_E_VERSION;
    *minor = p[7] - '0';
    return H1_OK;
}

/* Classifies and checks the request-target t[0..n) against the method. */
static enum h1_error parse_target(const char *t, size_t n, struct h1_head *h)
{
    bool connect = str_is(h->method.p, h->method.len, "CONNECT");
    h->scheme = h->authority = (struct h1_str){t, 0};
    h->path = (struct h1_str){t, n};
    if (n == 1 && t[0] == '*') {
        h->form = H1_ASTERISK_FORM;
        return str_is(h->method.p, h->method.len, "OPTIONS") ? H1_OK : H1_E_TARGET_FORM;
    }
    if (t[0] == '/') {
        h->form = H1_ORIGIN_FORM;
        if (!uri_valid_path(t, n))
            return H1_E_TARGET;
        return connect ? H1_E_TARGET_FORM : H1_OK;
    }
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" for absolute-form */
    size_t s = 0;
    while (s < n &&
           ((t[s] >= 'a' && t[s] <= 'z') || (t[s] >= 'A' && t[s] <= 'Z') ||
            (s > 0 && ((t[s] >= '0' && t[s] <= '9') || t[s] == '+' || t[s] == '-' || t[s] == '.'))))
        s++;
    struct uri_authority a;
    if (s > 0 && n - s >= 3 && memcmp(t + s, "://", 3) == 0) {
        h->form = H1_ABSOLUTE_FORM;
        if (connect)
            return H1_E_TARGET_FORM;
        if (!(s == 4 && strncasecmp(t, "http", 4) == 0) &&
            !(s == 5 && strncasecmp(t, "https", 5) == 0))
            return H1_E_TARGET_SCHEME;
        size_t as = s + 3, ae = as;
        while (ae < n && t[ae] != '/' && t[ae] != '?')
            ae++;
        if (uri_parse_authority(t + as, ae - as, false, &a) < 0)
            return H1_E_TARGET_AUTHORITY;
        h->scheme = (struct h1_str){t, s};
        h->authority = (struct h1_str){t + as, ae - as};
        h->path = (struct h1_str){t + ae, n - ae};
        return uri_valid_path(t + ae, n - ae) ? H1_OK : H1_E_TARGET;
    }
    h->form = H1_AUTHORITY_FORM;
    if (!connect)
        return uri_valid_path(t, n) ? H1_E_TARGET_FORM : H1_E_TARGET;
    if (uri_parse_authority(t, n, true, &a) < 0)
        return H1_E_TARGET_AUTHORITY;
    h->authority = (struct h1_str){t, n};
    h->path = (struct h1_str){t + n, 0};
    return H1_OK;
}

/* "method SP request-target SP HTTP-version" in [p, eol). */
static enum h1_error parse_request_line(const char *p, const char *eol, struct h1_head *h)
{
    const char *m = p;
    while (p < eol && h1_is_tchar((unsigned char)*p))
        p++;
    if (p == m)
        return H1_E_REQUEST_LINE;
    if (p == eol || *p != ' ')
        return H1_E_METHOD;
    h->method = (struct h1_str){m, (size_t)(p - m)};
    const char *t = ++p;
    while (p < eol && *p != ' ')
        p++;
    if (p == t || p == eol)
        return H1_E_REQUEST_LINE;
    h->target = (struct h1_str){t, (size_t)(p - t)};
    p++;
    if (eol - p != 8)
        return eol - p > 5 && memcmp(p, "HTTP/", 5) == 0 ? H1_E_VERSION_SYNTAX : H1_E_REQUEST_LINE;
    enum h1_error e = parse_version(p, &h->minor_version);
    if (e != H1_OK)
        return e;
    return parse_target(t, h->target.len, h);
}

/* "HTTP-version SP 3DIGIT [SP reason-phrase]" in [p, eol). */
static enum h1_error parse_status_line(const char *p, const char *eol, struct h1_head *h)
{
    if (eol - p < 12 || p[8] != ' ')
        return H1_E_STATUS_LINE;
    enum h1_error e = parse_version(p, &h->minor_version);
    if (e != H1_OK)
        return e == H1_E_VERSION ? e : H1_E_STATUS_LINE;
    const char *c = p + 9;
    for (int i = 0; i < 3; i++)
        if (c[i] < '0' || c[i] > '9')
            return H1_E_STATUS_LINE;
    h->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    if (h->status < 100 || h->status > 599)
        return H1_E_STATUS_CODE;
    const char *r = c + 3;
    if (r < eol && *r++ != ' ')
        return H1_E_STATUS_LINE;
    for (const char *q = r; q < eol; q++)
        if (!h1_is_value_char((unsigned char)*q))
            return H1_E_STATUS_LINE;
    h->reason = (struct h1_str){r, (size_t)(eol - r)};
    return H1_OK;
}

/* "name: value" in [p, eol) into f. */
static enum h1_error parse_field_line(const char *p, const char *eol, struct h1_header *f)
{
    if (h1_is_ows((unsigned char)*p))
        return H1_E_OBS_FOLD;
    const char *n = p;
    while (p < eol && h1_is_tchar((unsigned char)*p))
        p++;
    if (p == n || p == eol || *p != ':')
        return H1_E_FIELD_NAME; /* empty name, no colon, space before it or a bad char */
    f->name = (struct h1_str){n, (size_t)(p - n)};
    p++;
    while (p < eol && h1_is_ows((unsigned char)*p))
        p++;
    for (const char *q = p; q < eol; q++)
        if (!h1_is_value_char((unsigned char)*q))
            return H1_E_FIELD_VALUE;
    const char *ve = eol;
    while (ve > p && h1_is_ows((unsigned char)ve[-1]))
        ve--;
    f->value = (struct h1_str){p, (size_t)(ve - p)};
    return H1_OK;
}

static int fail(struct h1_head *h, enum h1_error e)
{
    h->error = e;
    h->st.result = H1_ERROR;
    return H1_ERROR;
}

/* The parse loop shared by requests and responses: one complete line at a time, from
 * where the previous call stopped. */
static int parse_head(const char *buf, size_t len, const struct h1_limits *lim, struct h1_head *h,
                      bool response)
{
    if (h->st.result != 0)
        return h->st.result;
    if (len < h->st.scan) /* the caller broke the contract: start again */
        h1_head_init(h, h->headers, h->cap_headers);
    size_t max_head = lim->max_head < H1_MAX_HEAD_LIMIT ? lim->max_head : H1_MAX_HEAD_LIMIT;
    size_t max_fields = lim->max_fields < h->cap_headers ? lim->max_fields : h->cap_headers;
    size_t end = len < max_head ? len : max_head;
    for (;;) {
        size_t off = h->st.off;
        if (!h->st.in_fields && !response) {
            while (end - off >= 2 && buf[off] == '\r' && buf[off + 1] == '\n')
                off += 2; /* empty lines before the request line */
            h->st.off = off;
        }
        size_t i = off > h->st.scan ? off : h->st.scan;
        while (i < end && buf[i] != '\r' && buf[i] != '\n')
            i++;
        if (i < end && buf[i] == '\n')
            return fail(h, H1_E_BARE_LF);
        if (i + 1 >= end) { /* no CR yet, or a CR as the last byte: more is needed */
            h->st.scan = i;
            break;
        }
        if (buf[i + 1] != '\n')
            return fail(h, H1_E_BARE_CR);
        enum h1_error e;
        if (!h->st.in_fields) {
            e = response ? parse_status_line(buf + off, buf + i, h)
                         : parse_request_line(buf + off, buf + i, h);
            h->st.in_fields = true;
        } else if (i == off) {
            h->st.result = (int)(i + 2);
            return h->st.result;
        } else if (h->n_headers == max_fields) {
            e = H1_E_TOO_MANY_FIELDS;
        } else {
            e = parse_field_line(buf + off, buf + i, &h->headers[h->n_headers++]);
        }
        if (e != H1_OK)
            return fail(h, e);
        h->st.off = h->st.scan = i + 2;
    }
    if (len >= max_head)
        return fail(h, h->st.in_fields ? H1_E_HEAD_TOO_LARGE : H1_E_LINE_TOO_LONG);
    return H1_NEED_MORE;
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim, struct h1_head *h)
{
    return parse_head(buf, len, lim, h, false);
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim, struct h1_head *h)
{
    return parse_head(buf, len, lim, h, true);
}
