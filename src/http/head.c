#include "http/head.h"

#include <string.h>
#include <strings.h>

#include "http/h1_fields.h"
#include "http/out.h"

static void field(struct out *o, const char *name, struct h1_str value)
{
    puts_(o, name);
    put(o, ": ", 2);
    put_str(o, value);
    put(o, "\r\n", 2);
}

static bool name_is(struct h1_str n, const char *z)
{
    return h1_str_ieq(n, z);
}

/* A field that is hop-by-hop by its name alone. */
static bool hop_by_name(struct h1_str n)
{
    switch (n.len) {
    case 2:
        if (name_is(n, "te"))
            return true;
        break;
    case 7:
        if (name_is(n, "upgrade"))
            return true;
        break;
    case 10:
        if (name_is(n, "connection") || name_is(n, "keep-alive"))
            return true;
        break;
    case 16:
        if (name_is(n, "proxy-connection"))
            return true;
        break;
    case 17:
        if (name_is(n, "transfer-encoding"))
            return true;
        break;
    }
    return false;
}

bool head_is_hop_by_hop(const struct h1_head *h, struct h1_str n)
{
    return hop_by_name(n) || h1_connection_lists(h, n);
}

/* head_is_hop_by_hop for each field of a head: the Connection field is looked for once
 * per head (has_connection), not once per field. */
static bool hop_in(const struct h1_head *h, struct h1_str n, bool has_connection)
{
    return hop_by_name(n) || (has_connection && h1_connection_lists(h, n));
}

/* Same name (case-insensitive); the first letters are compared before the whole. */
static bool same_name(struct h1_str n, const char *z)
{
    return n.len && (n.p[0] | 0x20) == (z[0] | 0x20) && name_is(n, z);
}

bool head_ops_drop(const struct cfg_header_ops *ops, struct h1_str name)
{
    for (size_t i = 0; i < ops->remove.count; i++)
        if (same_name(name, ops->remove.items[i]))
            return true;
    for (size_t i = 0; i < ops->set.count; i++)
        if (same_name(name, ops->set.items[i].name))
            return true;
    return false;
}

/* set and add fields, rendered in place. */
static void put_ops(struct out *o, const struct cfg_header_ops *ops, struct tmpl_ctx *tx)
{
    for (int k = 0; k < 2; k++) {
        const struct cfg_pairs *p = k ? &ops->add : &ops->set;
        const struct cfg_template *tt = k ? ops->add_t : ops->set_t;
        for (size_t i = 0; i < p->count && !o->over; i++) {
            size_t mark = o->len;
            puts_(o, p->items[i].name);
            put(o, ": ", 2);
            if (o->over)
                return;
            bool unsafe = false;
            size_t n = tmpl_render(&tt[i], tx, o->p + o->len, o->cap - o->len, &unsafe);
            if (n == TMPL_TOO_LONG) {
                o->over = true;
                return;
            }
            o->len += n;
            put(o, "\r\n", 2);
            if (unsafe)
                o->len = mark; /* never a header that would split the head */
        }
    }
}

size_t head_write_ops(const struct cfg_header_ops *ops, struct tmpl_ctx *tx, char *buf, size_t cap,
                      bool *over)
{
    struct out w = {buf, 0, cap, false};
    put_ops(&w, ops, tx);
    *over = w.over;
    return w.len;
}

static bool is_forwarding_field(struct h1_str n)
{
    return name_is(n, "x-forwarded-for") || name_is(n, "x-forwarded-proto") ||
           name_is(n, "x-forwarded-host") || name_is(n, "forwarded");
}

/* Forwarded fields, per the listener's policy. */
static void forwarded(struct out *w, const struct h1_head *h, const struct h1_msg *m,
                      const struct head_req_opts *o)
{
    const struct cfg_listener_http *lh = o->lh;
    bool trust = lh->trust_forwarded;
    if (lh->forwarded == FWD_X_FORWARDED) {
        const struct h1_header *xff = trust ? h1_find_header(h, "x-forwarded-for") : NULL;
        puts_(w, "X-Forwarded-For: ");
        if (xff && xff->value.len) {
            /* several lines are one list: join them */
            for (size_t i = 0, first = 1; i < h->n_headers; i++)
                if (name_is(h->headers[i].name, "x-forwarded-for") && h->headers[i].value.len) {
                    if (!first)
                        put(w, ", ", 2);
                    put_str(w, h->headers[i].value);
                    first = 0;
                }
            put(w, ", ", 2);
        }
        puts_(w, o->client_ip);
        put(w, "\r\n", 2);
        const struct h1_header *xp = trust ? h1_find_header(h, "x-forwarded-proto") : NULL;
        const struct h1_header *xh = trust ? h1_find_header(h, "x-forwarded-host") : NULL;
        if (xp)
            field(w, "X-Forwarded-Proto", xp->value);
        else
            puts_(w, o->https ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
        if (xh)
            field(w, "X-Forwarded-Host", xh->value);
        else if (m->authority.p)
            field(w, "X-Forwarded-Host", m->authority);
    } else if (lh->forwarded == FWD_FORWARDED) {
        puts_(w, "Forwarded: ");
        if (trust)
            for (size_t i = 0; i < h->n_headers; i++)
                if (name_is(h->headers[i].name, "forwarded") && h->headers[i].value.len) {
                    put_str(w, h->headers[i].value);
                    put(w, ", ", 2);
                }
        puts_(w, o->client_v6 ? "for=\"[" : "for=");
        puts_(w, o->client_ip);
        puts_(w, o->client_v6 ? "]\"" : "");
        if (m->authority.p) {
            puts_(w, ";host=\"");
            put_str(w, m->authority);
            puts_(w, "\"");
        }
        puts_(w, o->https ? ";proto=https\r\n" : ";proto=http\r\n");
    }
}

size_t head_write_request(const struct h1_head *h, const struct h1_msg *m,
                          const struct head_req_opts *o, char *buf, size_t cap)
{
    struct out w = {buf, 0, cap, false};
    put_str(&w, h->method);
    put(&w, " ", 1);
    if (o->path.p) {
        put_str(&w, o->path);
        if (o->query.len) {
            put(&w, "?", 1);
            put_str(&w, o->query);
        }
    } else if (h->form == H1_ABSOLUTE_FORM) {
        if (h->path.len == 0 || h->path.p[0] != '/')
            put(&w, "/", 1);
        put_str(&w, h->path);
    } else {
        put_str(&w, h->target);
    }
    puts_(&w, h->minor_version ? " HTTP/1.1\r\nHost: " : " HTTP/1.0\r\nHost: ");
    if (o->host)
        puts_(&w, o->host);
    else if (o->backend_host)
        puts_(&w, o->backend_host);
    else
        put_str(&w, m->authority);
    put(&w, "\r\n", 2);
    bool drop_fwd = !o->lh->trust_forwarded || o->lh->forwarded != FWD_NONE;
    bool has_conn = h1_find_header(h, "connection") != NULL;
    for (size_t i = 0; i < h->n_headers; i++) {
        struct h1_str n = h->headers[i].name;
        if (hop_in(h, n, has_conn) || name_is(n, "host"))
            continue;
        /* untrusted incoming forwarding fields are replaced; trusted ones are rewritten
           (appended to) below, so the old lines go either way, unless forwarded: none
           with trust, which passes them on untouched */
        if (drop_fwd && is_forwarding_field(n))
            continue;
        if (o->ops && head_ops_drop(o->ops, n))
            continue;
        put_str(&w, n);
        put(&w, ": ", 2);
        put_str(&w, h->headers[i].value);
        put(&w, "\r\n", 2);
    }
    if (m->body == H1_BODY_CHUNKED)
        puts_(&w, "Transfer-Encoding: chunked\r\n");
    if (m->websocket) {
        const struct h1_header *up = h1_find_header(h, "upgrade");
        if (up)
            field(&w, "Upgrade", up->value);
        puts_(&w, "Connection: upgrade\r\n");
    } else if (h->minor_version == 0) {
        puts_(&w, "Connection: keep-alive\r\n");
    }
    forwarded(&w, h, m, o);
    if (o->ops)
        put_ops(&w, o->ops, o->tx);
    if (o->request_id && o->lh->request_id) {
        puts_(&w, o->lh->request_id);
        put(&w, ": ", 2);
        put(&w, o->request_id, o->request_id_len);
        put(&w, "\r\n", 2);
    }
    put(&w, "\r\n", 2);
    return w.over ? 0 : w.len;
}

size_t head_write_response(const struct h1_head *h, const struct head_resp_opts *o, char *buf,
                           size_t cap)
{
    struct out w = {buf, 0, cap, false};
    char code[4] = {(char)('0' + h->status / 100), (char)('0' + h->status / 10 % 10),
                    (char)('0' + h->status % 10), 0};
    puts_(&w, "HTTP/1.1 ");
    puts_(&w, code);
    put(&w, " ", 1);
    put_str(&w, h->reason);
    put(&w, "\r\n", 2);
    bool has_conn = h1_find_header(h, "connection") != NULL;
    for (size_t i = 0; i < h->n_headers; i++) {
        struct h1_str n = h->headers[i].name;
        if (hop_in(h, n, has_conn)) {
            bool keep = (o->keep_te && name_is(n, "transfer-encoding")) ||
                        (o->upgrade && name_is(n, "upgrade"));
            if (!keep)
                continue;
        }
        if (o->ops && head_ops_drop(o->ops, n))
            continue;
        put_str(&w, n);
        put(&w, ": ", 2);
        put_str(&w, h->headers[i].value);
        put(&w, "\r\n", 2);
    }
    if (o->ops)
        put_ops(&w, o->ops, o->tx);
    if (o->upgrade)
        puts_(&w, "Connection: upgrade\r\n");
    else if (o->close)
        puts_(&w, "Connection: close\r\n");
    else if (o->client_10_ka)
        puts_(&w, "Connection: keep-alive\r\n");
    put(&w, "\r\n", 2);
    return w.over ? 0 : w.len;
}
