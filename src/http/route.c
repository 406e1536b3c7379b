#include "http/route.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/h1_fields.h"
#include "http/uri.h"
#include "net/host_pattern.h"

int http_route_input(struct h1_head *h, const struct h1_msg *m, struct http_route_in *in)
{
    in->method = h->method;
    in->host = m->host;
    in->head = h;
    in->query = (struct h1_str){"", 0};
    if (h->form == H1_ASTERISK_FORM) {
        in->path = (struct h1_str){"*", 1};
        return 0;
    }
    struct h1_str path = h->path;
    const char *q = memchr(path.p, '?', path.len);
    size_t pl = q ? (size_t)(q - path.p) : path.len;
    /* the head buffer is the connection's own: writable */
    long nl = uri_normalize_path((char *)path.p, pl);
    if (nl < 0)
        return -1;
    if ((size_t)nl < pl) {
        size_t delta = pl - (size_t)nl;
        memmove((char *)path.p + nl, path.p + pl, path.len - pl);
        h->path.len -= delta;
        h->target.len -= delta;
        q = q ? q - delta : NULL;
    }
    in->path = (struct h1_str){h->path.p, (size_t)nl};
    if (q)
        in->query = (struct h1_str){q + 1, h->path.len - (size_t)nl - 1};
    if (h->form == H1_ABSOLUTE_FORM && nl == 0)
        in->path = (struct h1_str){"/", 1};
    return 0;
}

static bool prefix_matches(const char *prefix, size_t pl, struct h1_str path)
{
    if (path.len < pl || memcmp(path.p, prefix, pl) != 0)
        return false;
    return path.len == pl || prefix[pl - 1] == '/' || path.p[pl] == '/';
}

int http_regexec(const void *re, struct h1_str s, size_t nmatch, regmatch_t *m)
{
    /* a NUL-terminated copy (REG_STARTEND would avoid it, but sanitizers' regexec
       interceptors read up to a NUL whatever the flags) */
    char stack[1024], *buf = stack;
    if (s.len >= sizeof(stack) && (buf = malloc(s.len + 1)) == NULL)
        return REG_ESPACE;
    if (s.len)
        memcpy(buf, s.p, s.len);
    buf[s.len] = 0;
    int rc = regexec(re, buf, nmatch, m, 0);
    if (buf != stack)
        free(buf);
    return rc;
}

static bool regex_matches(const void *re, struct h1_str s)
{
    return http_regexec(re, s, 0, NULL) == 0;
}

/* Does `value` (NULL: no such field or parameter) satisfy m? */
static bool kv_holds(const struct cfg_kv_match *m, const struct h1_str *value)
{
    switch (m->kind) {
    case KV_PRESENT:
        return value != NULL;
    case KV_ABSENT:
        return value == NULL;
    case KV_EXACT:
        return value && strlen(m->value) == value->len &&
               memcmp(m->value, value->p, value->len) == 0;
    case KV_REGEX:
        return value && regex_matches(m->re, *value);
    }
    return false;
}

/* The value of the first parameter called `name` in query q, percent-decoded into
 * buf (cap bytes); false when there is none. A parameter whose name or value does not
 * decode (or is longer than buf) is compared as sent. */
static bool query_param(struct h1_str q, const char *name, char *buf, size_t cap,
                        struct h1_str *out)
{
    size_t nlen = strlen(name);
    const char *p = q.p, *end = q.p + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        int dn = h1_percent_decode(p, (size_t)(ne - p), buf, cap);
        bool same = dn >= 0 ? (size_t)dn == nlen && memcmp(buf, name, nlen) == 0
                            : (size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0;
        if (same) {
            const char *v = eq ? eq + 1 : pe;
            int dv = h1_percent_decode(v, (size_t)(pe - v), buf, cap);
            *out =
                dv >= 0 ? (struct h1_str){buf, (size_t)dv} : (struct h1_str){v, (size_t)(pe - v)};
            return true;
        }
        p = pe + 1;
    }
    return false;
}

/* The first kv condition of m that fails (its name), or NULL. */
static const char *kv_fails_headers(const struct cfg_kv_matches *m, const struct http_route_in *in)
{
    for (size_t i = 0; i < m->count; i++) {
        const struct h1_header *h = h1_find_header(in->head, m->items[i].name);
        if (!kv_holds(&m->items[i], h ? &h->value : NULL))
            return m->items[i].name;
    }
    return NULL;
}

static const char *kv_fails_query(const struct cfg_kv_matches *m, const struct http_route_in *in)
{
    for (size_t i = 0; i < m->count; i++) {
        char buf[1024];
        struct h1_str v;
        bool found = query_param(in->query, m->items[i].name, buf, sizeof(buf), &v);
        if (!kv_holds(&m->items[i], found ? &v : NULL))
            return m->items[i].name;
    }
    return NULL;
}

const char *http_route_mismatch(const struct cfg_route *r, const struct http_route_in *in,
                                const char **name)
{
    *name = NULL;
    if (r->host && !host_pattern_matches(r->host, in->host.p ? in->host.p : "", in->host.len))
        return "host";
    if (r->path && !(r->path_len == in->path.len && memcmp(r->path, in->path.p, in->path.len) == 0))
        return "path";
    if (r->path_prefix && !prefix_matches(r->path_prefix, r->path_prefix_len, in->path))
        return "path_prefix";
    if (r->path_re && !regex_matches(r->path_re, in->path))
        return "path_regex";
    if (r->methods.count) {
        bool ok = false;
        for (size_t i = 0; i < r->methods.count && !ok; i++)
            ok = strlen(r->methods.items[i]) == in->method.len &&
                 memcmp(r->methods.items[i], in->method.p, in->method.len) == 0;
        if (!ok)
            return "methods";
    }
    if (r->headers.count && (*name = kv_fails_headers(&r->headers, in)) != NULL)
        return "headers";
    if (r->query.count && (*name = kv_fails_query(&r->query, in)) != NULL)
        return "query";
    return NULL;
}

bool http_listener_admits(const struct cfg_listener *l, struct h1_str host)
{
    return l->hosts.count == 0 ||
           (host.len && host_patterns_match(l->hosts.items, l->hosts.count, host.p, host.len));
}

int http_route_pick(const struct cfg_listener *l, const struct http_route_in *in)
{
    if (!http_listener_admits(l, in->host))
        return HTTP_ROUTE_NONE;
    const char *name;
    for (size_t i = 0; i < l->n_routes; i++)
        if (http_route_mismatch(&l->routes[i], in, &name) == NULL)
            return (int)i;
    return l->backend_index >= 0 ? HTTP_ROUTE_DEFAULT : HTTP_ROUTE_NONE;
}
