/* Route actions on the HTTP/1 engine (docs/http.md "Routing cookbook"): answering with a
 * redirect or a direct response, rewriting the path, and the variables header operations
 * and those answers are rendered with. Only requests whose route has an action get here:
 * a route without one costs nothing. */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/h1_conn.h"
#include "http/head.h"
#include "http/route.h"
#include "http/tmpl.h"
#include "net/addr.h"

#define HS(z) ((struct h1_str){z, sizeof(z) - 1})

void h1_policy_ctx(struct h1_conn *c, struct tmpl_ctx *x)
{
    struct h1_txn *t = c->t;
    x->client_ip = x->client_port = (struct h1_str){NULL, 0}; /* formatted on first use */
    x->client = &c->client_addr.sa;
    x->host = t->m.host;
    x->method = t->req.method;
    x->path = t->rpath;
    x->query = t->rquery;
    if (t->req.form == H1_ABSOLUTE_FORM && t->req.path.len == 0)
        x->request_uri = HS("/");
    else
        x->request_uri = t->req.path; /* path and query, as forwarded */
    x->scheme = c->client.ssl ? HS("https") : HS("http");
    x->request_id = t->request_id;
    x->listener = (struct h1_str){c->conn.listener->cfg->name, strlen(c->conn.listener->cfg->name)};
    x->sni = x->tls_version = x->cert_subject = x->cert_fingerprint = x->cert_verify = HS("");
    if (c->tls) {
        x->sni = (struct h1_str){c->tls->sni, strlen(c->tls->sni)};
        x->tls_version = (struct h1_str){c->tls->version, strlen(c->tls->version)};
        x->cert_subject = (struct h1_str){c->tls->client_subject, strlen(c->tls->client_subject)};
        x->cert_fingerprint =
            (struct h1_str){c->tls->client_fingerprint, strlen(c->tls->client_fingerprint)};
        x->cert_verify = (struct h1_str){c->tls->client_verify, strlen(c->tls->client_verify)};
    }
    x->status = x->server = HS("");
    x->req = &t->req;
}

/* The redirect target: `to` rendered, then the path and query when kept. */
static size_t location(const struct cfg_redirect *rd, struct tmpl_ctx *x, char *out, size_t cap,
                       bool *unsafe)
{
    size_t n = tmpl_render(&rd->to_t, x, out, cap, unsafe);
    if (n == TMPL_TOO_LONG)
        return n;
    if (rd->keep_path) {
        struct h1_str p = x->path;
        if (n && out[n - 1] == '/' && p.len && p.p[0] == '/')
            p.p++, p.len--; /* "https://x/" + "/a" is "https://x/a" */
        if (p.len > cap - n)
            return TMPL_TOO_LONG;
        memcpy(out + n, p.p, p.len);
        n += p.len;
    }
    if (rd->keep_query && x->query.len) {
        if (x->query.len + 1 > cap - n)
            return TMPL_TOO_LONG;
        char sep = memchr(out, '?', n) ? '&' : '?';
        out[n++] = sep;
        memcpy(out + n, x->query.p, x->query.len);
        n += x->query.len;
    }
    return n;
}

/* snprintf at o[*n .. lim), marking *over instead of running past lim. */
static void app(char *o, size_t *n, size_t lim, bool *over, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void app(char *o, size_t *n, size_t lim, bool *over, const char *fmt, ...)
{
    if (*over || *n >= lim) {
        *over = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o + *n, lim - *n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= lim - *n)
        *over = true;
    else
        *n += (size_t)k;
}

void h1_policy_answer(struct h1_conn *c, const struct cfg_route *r, bool close)
{
    struct h1_txn *t = c->t;
    bool redirect = r->action == ROUTE_REDIRECT;
    t->status = redirect ? r->redirect.status : r->respond.status;
    t->term = redirect ? TERM_REDIRECT : TERM_RESPOND;
    t->close_after = t->close_after || close;
    if (h1_xmem(c) < 0) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    struct tmpl_ctx x;
    h1_policy_ctx(c, &x);
    char code[6];
    x.status = (struct h1_str){code, tmpl_utoa((unsigned)t->status, code)};
    /* head first, the body right after it; Content-Length patched in once known */
    char *o = t->out.buf;
    size_t cap = t->out.cap, n = 0;
    bool unsafe = false, over = false;
    app(o, &n, cap, &over, "HTTP/1.1 %d %s\r\n", t->status, h1_reason(t->status));
    if (redirect) {
        memcpy(o + n, "Location: ", 10);
        n += 10;
        size_t l = location(&r->redirect, &x, o + n, cap - n - 2, &unsafe);
        if (l == TMPL_TOO_LONG || unsafe) {
            h1_reply(c, l == TMPL_TOO_LONG ? 414 : 400, true, TERM_BAD_REQUEST,
                     "redirect target too long or unsafe");
            return;
        }
        n += l;
        memcpy(o + n, "\r\n", 2);
        n += 2;
    }
    const char *ctype = redirect ? NULL : r->respond.content_type;
    if (!redirect && !ctype && r->respond.body)
        ctype = "text/plain";
    /* the body is rendered at the end of the buffer, then moved after the head */
    size_t blen = 0;
    char *body = NULL;
    if (!redirect && r->respond.body) {
        size_t room = cap - n;
        body = o + n + room / 2;
        blen = tmpl_render(&r->respond.body_t, &x, body, room - room / 2, NULL);
        if (blen == TMPL_TOO_LONG) {
            h1_reply(c, 500, t->close_after, TERM_INTERNAL_ERROR, "respond body too large");
            return;
        }
    }
    char *rid = c->conn.listener->cfg->http.request_id;
    bool no_body = t->status < 200 || t->status == 204 || t->status == 304;
    size_t lim = (size_t)((body ? body : o + cap) - o) - 2; /* room for the final CRLF */
    if (ctype)
        app(o, &n, lim, &over, "Content-Type: %s\r\n", ctype);
    if (!no_body)
        app(o, &n, lim, &over, "Content-Length: %zu\r\n", blen);
    if (t->close_after)
        app(o, &n, lim, &over, "Connection: close\r\n");
    if (rid && t->request_id.len)
        app(o, &n, lim, &over, "%s: %.*s\r\n", rid, (int)t->request_id.len, t->request_id.p);
    if (r->response_headers.any && !over)
        n += head_write_ops(&r->response_headers, &x, o + n, lim - n, &over);
    if (over) {
        h1_reply(c, 500, t->close_after, TERM_INTERNAL_ERROR, "response head too large");
        return;
    }
    memcpy(o + n, "\r\n", 2);
    n += 2;
    bool head_req = t->req.method.len == 4 && memcmp(t->req.method.p, "HEAD", 4) == 0;
    if (body && !head_req && !no_body) {
        memmove(o + n, body, blen);
        n += blen;
    }
    c->st = H1_REPLY;
    h1_reply_send(c, n);
}

/* Expands `rep` with \1..\9 from the match m of subject s (\\ is a backslash). */
static size_t expand(const char *rep, const char *s, const regmatch_t *m, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = rep; *p; p++) {
        const char *src = p;
        size_t len = 1;
        if (p[0] == '\\' && p[1] >= '1' && p[1] <= '9') {
            const regmatch_t *g = &m[p[1] - '0'];
            src = s + g->rm_so;
            len = g->rm_so < 0 ? 0 : (size_t)(g->rm_eo - g->rm_so);
            p++;
        } else if (p[0] == '\\' && p[1] == '\\') {
            p++;
        }
        if (len > cap - n)
            return TMPL_TOO_LONG;
        memcpy(out + n, src, len);
        n += len;
    }
    return n;
}

int h1_policy_rewrite(const struct cfg_route *r, struct h1_str path, char *out, size_t cap,
                      struct h1_str *res)
{
    const struct cfg_rewrite *rw = &r->rewrite;
    const char *from = rw->strip_prefix ? rw->strip_prefix : rw->replace_from;
    size_t n = 0;
    if (from) {
        size_t fl = strlen(from);
        /* segment-aware, like path_prefix: "/v1" takes "/v1" and "/v1/x", not "/v1x" */
        if (path.len < fl || memcmp(path.p, from, fl) != 0 ||
            !(path.len == fl || from[fl - 1] == '/' || path.p[fl] == '/'))
            return 0;
        const char *to = rw->strip_prefix ? "" : rw->replace_to;
        size_t tl = strlen(to), rest = path.len - fl;
        if (tl && to[tl - 1] == '/' && rest && path.p[fl] == '/')
            tl--; /* "/api/" + "/x": one slash */
        if (tl + rest + 1 > cap)
            return -1;
        memcpy(out, to, tl);
        memcpy(out + tl, path.p + fl, rest);
        n = tl + rest;
    } else if (rw->re) {
        regmatch_t m[10];
        if (http_regexec(rw->re, path, 10, m) != 0)
            return 0;
        if ((size_t)m[0].rm_so > cap)
            return -1;
        memcpy(out, path.p, (size_t)m[0].rm_so);
        n = (size_t)m[0].rm_so;
        size_t e = expand(rw->replace, path.p, m, out + n, cap - n);
        if (e == TMPL_TOO_LONG)
            return -1;
        n += e;
        size_t tail = path.len - (size_t)m[0].rm_eo;
        if (tail + 1 > cap - n)
            return -1;
        memcpy(out + n, path.p + m[0].rm_eo, tail);
        n += tail;
    } else {
        return 0;
    }
    if (n == 0 || out[0] != '/') { /* a path starts with '/' */
        if (n + 1 > cap)
            return -1;
        memmove(out + 1, out, n);
        out[0] = '/';
        n++;
    }
    *res = (struct h1_str){out, n};
    return 1;
}
