/* The verdict of an HTTP health probe (see probe_http.h): head through the strict parser,
 * status range, then the decoded body searched for the expected text. */
#include "upstream/probe_http.h"

#include <stdio.h>
#include <string.h>

#include "http/h1_error.h"

void probe_quote(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i >= 40) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (ch == '\r' || ch == '\n' || ch == '\t') {
            out[o++] = '\\';
            out[o++] = ch == '\r' ? 'r' : ch == '\n' ? 'n' : 't';
        } else if (ch < 0x20 || ch >= 0x7f || ch == '\'' || ch == '\\') {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
}

void probe_http_init(struct probe_http_eval *e, const struct probe_http_expect *x)
{
    e->xbody = x->body;
    e->xbody_len = x->body ? strlen(x->body) : 0;
    e->status_lo = x->status_lo;
    e->status_hi = x->status_hi;
    e->result = PROBE_HTTP_MORE;
    e->status = 0;
    e->in_body = false;
    e->got = 0;
    e->head_len = 0;
    e->body_len = 0;
    e->body_left = 0;
    h1_head_init(&e->head, e->fields, PROBE_HTTP_FIELDS_MAX);
}

static enum probe_http_result pe_end(struct probe_http_eval *e, enum probe_http_result r,
                                     char *detail, size_t detail_len, const char *fmt,
                                     const char *a)
{
    e->result = r;
    if (detail_len)
        snprintf(detail, detail_len, fmt, a);
    return r;
}

static enum probe_http_result pe_malformed(struct probe_http_eval *e, const char *why, char *detail,
                                           size_t detail_len)
{
    return pe_end(e, PROBE_HTTP_FAIL, detail, detail_len, "malformed response: %s", why);
}

static enum probe_http_result pe_no_text(struct probe_http_eval *e, char *detail, size_t detail_len)
{
    char q[200], fmt[260];
    probe_quote(e->xbody, e->xbody_len, q, sizeof(q));
    if (e->body_len == PROBE_HTTP_BODY_MAX)
        snprintf(fmt, sizeof(fmt), "body does not contain '%%s' in its first %d bytes",
                 PROBE_HTTP_BODY_MAX);
    else
        snprintf(fmt, sizeof(fmt), "body does not contain '%%s'");
    return pe_end(e, PROBE_HTTP_FAIL, detail, detail_len, fmt, q);
}

/* n decoded body bytes: keep them (up to the cap) and look for the text across the seam. */
static void pe_data(struct probe_http_eval *e, const char *p, size_t n, char *detail,
                    size_t detail_len)
{
    if (e->result != PROBE_HTTP_MORE || n == 0)
        return;
    size_t room = PROBE_HTTP_BODY_MAX - e->body_len;
    if (n > room)
        n = room;
    size_t from = e->body_len >= e->xbody_len - 1 ? e->body_len - (e->xbody_len - 1) : 0;
    memcpy(e->body + e->body_len, p, n);
    e->body_len += n;
    if (memmem(e->body + from, e->body_len - from, e->xbody, e->xbody_len)) {
        pe_end(e, PROBE_HTTP_OK, detail, detail_len, "%s", "");
        return;
    }
    if (e->body_len == PROBE_HTTP_BODY_MAX)
        pe_no_text(e, detail, detail_len);
}

static void pe_chunked(struct probe_http_eval *e, const char *p, size_t n, char *detail,
                       size_t detail_len)
{
    /* one byte at a time, so the data bytes (between the framing) are known: runs of
       them go to pe_data together */
    size_t run = 0;
    for (size_t i = 0; i < n && e->result == PROBE_HTTP_MORE; i++) {
        unsigned long long before = e->chunked.data;
        long r = h1_chunked_feed(&e->chunked, p + i, 1);
        if (r == H1_ERROR) {
            pe_data(e, p + i - run, run, detail, detail_len);
            if (e->result == PROBE_HTTP_MORE)
                pe_malformed(e, h1_error_reason(e->chunked.error), detail, detail_len);
            return;
        }
        if (e->chunked.data > before) {
            run++;
            continue;
        }
        pe_data(e, p + i - run, run, detail, detail_len);
        run = 0;
        if (r >= 0 && e->result == PROBE_HTTP_MORE) {
            pe_no_text(e, detail, detail_len);
            return;
        }
    }
    pe_data(e, p + n - run, run, detail, detail_len);
}

static void pe_body(struct probe_http_eval *e, const char *p, size_t n, char *detail,
                    size_t detail_len)
{
    switch (e->msg.body) {
    case H1_BODY_LENGTH:
        if (n > e->body_left)
            n = (size_t)e->body_left;
        e->body_left -= n;
        pe_data(e, p, n, detail, detail_len);
        if (e->body_left == 0 && e->result == PROBE_HTTP_MORE)
            pe_no_text(e, detail, detail_len);
        return;
    case H1_BODY_CHUNKED:
        pe_chunked(e, p, n, detail, detail_len);
        return;
    case H1_BODY_CLOSE:
        pe_data(e, p, n, detail, detail_len);
        return;
    case H1_BODY_NONE:
    case H1_BODY_TUNNEL:
        return;
    }
}

/* The final head is parsed, `hlen` bytes long: status, then what the body must show. */
static void pe_final_head(struct probe_http_eval *e, size_t hlen, char *detail, size_t detail_len)
{
    e->status = e->head.status;
    if (e->status < e->status_lo || e->status > e->status_hi) {
        char want[32];
        if (e->status_lo == e->status_hi)
            snprintf(want, sizeof(want), "%d", e->status_lo);
        else
            snprintf(want, sizeof(want), "%d-%d", e->status_lo, e->status_hi);
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "status %d not in %%s", e->status);
        pe_end(e, PROBE_HTTP_FAIL, detail, detail_len, fmt, want);
        return;
    }
    if (e->xbody_len == 0) {
        pe_end(e, PROBE_HTTP_OK, detail, detail_len, "%s", "");
        return;
    }
    e->in_body = true;
    switch (e->msg.body) {
    case H1_BODY_NONE:
        pe_no_text(e, detail, detail_len);
        return;
    case H1_BODY_TUNNEL:
        pe_malformed(e, "a tunnel in answer to a GET", detail, detail_len);
        return;
    case H1_BODY_LENGTH:
        e->body_left = e->msg.length;
        if (e->body_left == 0) {
            pe_no_text(e, detail, detail_len);
            return;
        }
        break;
    case H1_BODY_CHUNKED: {
        struct h1_chunked_limits lim = {.max_line = H1_CHUNK_LINE_MAX,
                                        .max_trailer = PROBE_HTTP_HEAD_MAX,
                                        .max_trailers = PROBE_HTTP_FIELDS_MAX};
        h1_chunked_init(&e->chunked, &lim);
        break;
    }
    case H1_BODY_CLOSE:
        break;
    }
    pe_body(e, e->head_buf + hlen, e->head_len - hlen, detail, detail_len);
}

/* Parses what head_buf holds: skips interim responses, stops at the final head. */
static void pe_head(struct probe_http_eval *e, char *detail, size_t detail_len)
{
    const struct h1_limits lim = {.max_head = PROBE_HTTP_HEAD_MAX,
                                  .max_fields = PROBE_HTTP_FIELDS_MAX};
    for (;;) {
        int r = h1_parse_response(e->head_buf, e->head_len, &lim, &e->head);
        if (r == H1_NEED_MORE) {
            if (e->head_len == PROBE_HTTP_HEAD_MAX) /* the parser says so first; a guard */
                pe_malformed(e, h1_error_reason(H1_E_HEAD_TOO_LARGE), detail, detail_len);
            return;
        }
        if (r == H1_ERROR) {
            pe_malformed(e, h1_error_reason(e->head.error), detail, detail_len);
            return;
        }
        const struct h1_exchange x = {0}; /* a GET */
        enum h1_error err = h1_check_response(&e->head, &x, &e->msg);
        if (err != H1_OK) {
            pe_malformed(e, h1_error_reason(err), detail, detail_len);
            return;
        }
        if (!e->msg.interim) {
            pe_final_head(e, (size_t)r, detail, detail_len);
            return;
        }
        e->head_len -= (size_t)r;
        memmove(e->head_buf, e->head_buf + r, e->head_len);
        h1_head_init(&e->head, e->fields, PROBE_HTTP_FIELDS_MAX);
    }
}

enum probe_http_result probe_http_feed(struct probe_http_eval *e, const char *buf, size_t len,
                                       char *detail, size_t detail_len)
{
    e->got += len;
    while (len > 0 && e->result == PROBE_HTTP_MORE) {
        if (e->in_body) {
            pe_body(e, buf, len, detail, detail_len);
            break;
        }
        size_t n = PROBE_HTTP_HEAD_MAX - e->head_len;
        if (n > len)
            n = len;
        memcpy(e->head_buf + e->head_len, buf, n);
        e->head_len += n;
        buf += n;
        len -= n;
        pe_head(e, detail, detail_len);
    }
    return e->result;
}

enum probe_http_result probe_http_eof(struct probe_http_eval *e, char *detail, size_t detail_len)
{
    if (e->result != PROBE_HTTP_MORE)
        return e->result;
    if (!e->in_body) {
        if (e->got == 0)
            return pe_end(e, PROBE_HTTP_FAIL, detail, detail_len, "%s",
                          "connection closed without a response");
        return pe_malformed(e, "incomplete head (connection closed)", detail, detail_len);
    }
    if (e->msg.body == H1_BODY_CLOSE)
        return pe_no_text(e, detail, detail_len);
    return pe_malformed(e, "body cut short (connection closed)", detail, detail_len);
}

enum probe_http_result probe_http_verdict(struct probe_http_eval *e, const char *buf, size_t len,
                                          bool closed, const struct probe_http_expect *x,
                                          char *detail, size_t detail_len)
{
    probe_http_init(e, x);
    enum probe_http_result r = probe_http_feed(e, buf, len, detail, detail_len);
    if (r == PROBE_HTTP_MORE && closed)
        r = probe_http_eof(e, detail, detail_len);
    return r;
}
