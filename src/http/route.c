#include "http/route.h"

#include <regex.h>
#include <string.h>
#include <strings.h>

#include "http/h1_fields.h"
#include "http/uri.h"

bool http_host_matches(const char *pattern, const char *name, size_t len)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t pl = strlen(pattern + 1);
        return len > pl && strncasecmp(name + len - pl, pattern + 1, pl) == 0;
    }
    return strlen(pattern) == len && strncasecmp(pattern, name, len) == 0;
}

static bool prefix_matches(const char *prefix, struct h1_str path)
{
    size_t pl = strlen(prefix);
    if (path.len < pl || memcmp(path.p, prefix, pl) != 0)
        return false;
    return path.len == pl || prefix[pl - 1] == '/' || path.p[pl] == '/';
}

static bool regex_matches(const void *re, struct h1_str path)
{
    char buf[4096];
    if (path.len >= sizeof(buf))
        return false; /* longer than any path a route regex is meant for */
    if (path.len)
        memcpy(buf, path.p, path.len);
    buf[path.len] = '\0';
    return regexec(re, buf, 0, NULL, 0) == 0;
}

static bool route_matches(const struct cfg_route *r, const struct http_route_in *in)
{
    if (r->host && !http_host_matches(r->host, in->host.p ? in->host.p : "", in->host.len))
        return false;
    if (r->path &&
        !(strlen(r->path) == in->path.len && memcmp(r->path, in->path.p, in->path.len) == 0))
        return false;
    if (r->path_prefix && !prefix_matches(r->path_prefix, in->path))
        return false;
    if (r->path_re && !regex_matches(r->path_re, in->path))
        return false;
    if (r->methods.count) {
        bool ok = false;
        for (size_t i = 0; i < r->methods.count && !ok; i++)
            ok = strlen(r->methods.items[i]) == in->method.len &&
                 memcmp(r->methods.items[i], in->method.p, in->method.len) == 0;
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < r->headers.count; i++) {
        const struct h1_header *h = h1_find_header(in->head, r->headers.items[i].name);
        const char *v = r->headers.items[i].value;
        if (!h || strlen(v) != h->value.len || memcmp(v, h->value.p, h->value.len) != 0)
            return false;
    }
    return true;
}

int http_route_pick(const struct cfg_listener *l, const struct http_route_in *in)
{
    if (l->hosts.count) {
        bool ok = false;
        for (size_t i = 0; i < l->hosts.count && !ok; i++)
            ok = in->host.len && http_host_matches(l->hosts.items[i], in->host.p, in->host.len);
        if (!ok)
            return HTTP_ROUTE_NONE;
    }
    struct http_route_in x = *in;
    char decoded[4096];
    if (memchr(in->path.p, '%', in->path.len)) {
        int n = h1_percent_decode(in->path.p, in->path.len, decoded, sizeof(decoded));
        if (n >= 0) {
            x.path.p = decoded;
            x.path.len = (size_t)n;
        }
    }
    for (size_t i = 0; i < l->n_routes; i++)
        if (route_matches(&l->routes[i], &x))
            return (int)i;
    return l->backend_index >= 0 ? HTTP_ROUTE_DEFAULT : HTTP_ROUTE_NONE;
}
