/* Message semantics of HTTP/1 heads. See h1_message.h for the contract and the policy. */
#include "http/h1_message.h"

#include <string.h>

#include "http/h1_chars.h"
#include "http/h1_fields.h"
#include "http/uri.h"

/* Connection: every option a token; notes close and upgrade. */
static enum h1_error check_connection(const struct h1_head *h, struct h1_msg *m)
{
    struct h1_list it = {0};
    struct h1_str e;
    while (h1_list_next(h, "connection", &it, &e)) {
        if (e.len == 0)
            continue;
        if (!h1_is_token(e.p, e.len))
            return H1_E_CONNECTION;
        m->conn_close |= h1_str_ieq(e, "close");
        m->conn_upgrade |= h1_str_ieq(e, "upgrade");
    }
    m->keep_alive = h1_keep_alive(h);
    return H1_OK;
}

/* The codings registered besides chunked (IANA HTTP Transfer Coding Registry). */
static bool registered_coding(struct h1_str c)
{
    static const char *const known[] = {"compress", "deflate", "gzip", "x-compress", "x-gzip"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (h1_str_ieq(c, known[i]))
            return true;
    return false;
}

/* The Transfer-Encoding list of a message that has one: H1_OK only for exactly one
 * "chunked" element overall. */
static enum h1_error check_codings(const struct h1_head *h)
{
    struct h1_list it = {0};
    struct h1_str e;
    size_t chunked = 0;
    bool last_chunked = false, unknown = false, other = false;
    while (h1_list_next(h, "transfer-encoding", &it, &e)) {
        if (!h1_is_token(e.p, e.len)) /* empty element or line, parameter, junk */
            return H1_E_TE_SYNTAX;
        last_chunked = h1_str_ieq(e, "chunked");
        if (last_chunked)
            chunked++;
        else if (registered_coding(e))
            other = true;
        else
            unknown = true;
    }
    if (unknown)
        return H1_E_TE_UNKNOWN;
    if (chunked > 1)
        return H1_E_TE_CHUNKED_TWICE;
    if (!last_chunked)
        return H1_E_TE_NOT_CHUNKED;
    return other ? H1_E_TE_UNSUPPORTED : H1_OK;
}

/* Content-Length and Transfer-Encoding: the body a message announces, before the
 * status-based rules of responses. */
static enum h1_error check_framing(const struct h1_head *h, struct h1_msg *m)
{
    bool has_cl;
    uint64_t cl;
    enum h1_error e = h1_content_length(h, &has_cl, &cl);
    if (e != H1_OK)
        return e;
    if (h1_find_header(h, "transfer-encoding")) {
        if (h->minor_version == 0)
            return H1_E_TE_HTTP10;
        if (has_cl)
            return H1_E_CL_AND_TE;
        e = check_codings(h);
        if (e != H1_OK)
            return e;
        m->body = H1_BODY_CHUNKED;
    } else if (has_cl) {
        m->body = H1_BODY_LENGTH;
        m->length = cl;
    } else {
        m->body = H1_BODY_NONE;
    }
    return H1_OK;
}

/* Upgrade: every protocol token[/token]. Returns the error or H1_OK with *count protocols
 * and *websocket when one of them is named "websocket". */
static enum h1_error check_upgrade(const struct h1_head *h, size_t *count, bool *websocket)
{
    struct h1_list it = {0};
    struct h1_str e;
    *count = 0;
    *websocket = false;
    while (h1_list_next(h, "upgrade", &it, &e)) {
        if (e.len == 0)
            continue;
        const char *slash = memchr(e.p, '/', e.len);
        size_t nlen = slash ? (size_t)(slash - e.p) : e.len;
        if (!h1_is_token(e.p, nlen) || (slash && !h1_is_token(slash + 1, e.len - nlen - 1)))
            return H1_E_UPGRADE;
        (*count)++;
        *websocket |= h1_str_ieq((struct h1_str){e.p, nlen}, "websocket");
    }
    return H1_OK;
}

/* Host, and the target's authority against it; sets m->authority, host and port. */
static enum h1_error check_host(const struct h1_head *h, struct h1_msg *m)
{
    size_t n = h1_count_headers(h, "host");
    if (n > 1)
        return H1_E_HOST_REPEATED;
    if (n == 0 && h->minor_version >= 1)
        return H1_E_HOST_MISSING;
    struct uri_authority host = {0}, target;
    const struct h1_header *f = h1_find_header(h, "host");
    if (f && uri_parse_authority(f->value.p, f->value.len, false, &host) < 0)
        return H1_E_HOST_INVALID;
    m->port = -1;
    if (h->form == H1_ABSOLUTE_FORM || h->form == H1_AUTHORITY_FORM) {
        bool connect = h->form == H1_AUTHORITY_FORM;
        if (uri_parse_authority(h->authority.p, h->authority.len, connect, &target) < 0)
            return H1_E_TARGET_AUTHORITY; /* h1_parse_request checked it already */
        /* an absent port: the scheme's default; for CONNECT, Host may omit the target's
           port (RFC 9110 section 9.3.6 has "CONNECT server.example.com:80" with
           "Host: server.example.com") */
        int dflt = connect ? target.port : h->scheme.len == 5 ? 443 : 80;
        if (f && !uri_same_authority(&host, &target, dflt))
            return H1_E_HOST_MISMATCH;
        m->authority = h->authority;
        host = target;
    } else if (f) {
        m->authority = f->value;
    } else {
        return H1_OK; /* HTTP/1.0 without Host */
    }
    m->host = (struct h1_str){host.host, host.host_len};
    m->port = host.port;
    return H1_OK;
}

/* Expect: only 100-continue; sets m->expect_continue once the body is known. */
static enum h1_error check_expect(const struct h1_head *h, struct h1_msg *m)
{
    struct h1_list it = {0};
    struct h1_str e;
    bool cont = false;
    while (h1_list_next(h, "expect", &it, &e)) {
        if (e.len == 0)
            continue;
        if (!h1_str_ieq(e, "100-continue"))
            return H1_E_EXPECTATION;
        cont = true;
    }
    bool body = m->body == H1_BODY_CHUNKED || (m->body == H1_BODY_LENGTH && m->length > 0);
    m->expect_continue = cont && h->minor_version >= 1 && body;
    return H1_OK;
}

enum h1_error h1_check_request(const struct h1_head *h, uint64_t max_body, struct h1_msg *m)
{
    memset(m, 0, sizeof(*m));
    enum h1_error e = check_connection(h, m);
    if (e == H1_OK)
        e = check_host(h, m);
    if (e == H1_OK)
        e = check_framing(h, m);
    if (e != H1_OK)
        return e;
    size_t protocols;
    bool websocket;
    e = check_upgrade(h, &protocols, &websocket);
    if (e != H1_OK)
        return e;
    m->upgrade = h->minor_version >= 1 && m->conn_upgrade && protocols > 0;
    m->websocket =
        m->upgrade && websocket && h->method.len == 3 && memcmp(h->method.p, "GET", 3) == 0;
    e = check_expect(h, m);
    if (e != H1_OK)
        return e;
    if (max_body && m->body == H1_BODY_LENGTH && m->length > max_body)
        return H1_E_BODY_TOO_LARGE;
    return H1_OK;
}

enum h1_error h1_check_response(const struct h1_head *h, const struct h1_exchange *x,
                                struct h1_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->port = -1;
    enum h1_error e = check_connection(h, m);
    if (e != H1_OK)
        return e;
    int s = h->status;
    if ((x->connect && s >= 200 && s < 300) || s == 101) {
        if (s == 101) {
            size_t protocols;
            bool websocket;
            e = check_upgrade(h, &protocols, &websocket);
            if (e != H1_OK)
                return e;
            if (!x->upgrade || h->minor_version == 0 || !m->conn_upgrade || protocols == 0)
                return H1_E_UNEXPECTED_101;
            m->upgrade = true;
            m->websocket = websocket;
        }
        m->body = H1_BODY_TUNNEL;
        m->keep_alive = false;
        return H1_OK;
    }
    e = check_framing(h, m);
    if (e != H1_OK)
        return e;
    if (x->head || s < 200 || s == 204 || s == 304) {
        m->body = H1_BODY_NONE;
        m->length = 0;
        m->interim = s < 200;
    } else if (m->body == H1_BODY_NONE) {
        m->body = H1_BODY_CLOSE;
        m->keep_alive = false;
    }
    return H1_OK;
}
