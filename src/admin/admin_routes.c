/* The `http_routes` list of an http listener in GET /api/v1/status: each route's match
 * conditions, its action and the requests that took it (summed over the workers). */
#include <stdio.h>

#include "admin/admin_http.h"
#include "core/runtime.h"
#include "core/stats.h"

/* A comma unless the object was just opened. */
static void sep(struct strbuf *sb)
{
    if (sb->len > 0 && sb->data[sb->len - 1] != '{')
        sb_puts(sb, ",");
}

static void kv_matches(struct strbuf *sb, const char *key, const struct cfg_kv_matches *m)
{
    if (m->count == 0)
        return;
    sep(sb);
    sb_printf(sb, "\"%s\":{", key);
    for (size_t i = 0; i < m->count; i++) {
        const struct cfg_kv_match *x = &m->items[i];
        if (i)
            sb_puts(sb, ",");
        sb_json_str(sb, x->name);
        sb_puts(sb, ":");
        if (x->kind == KV_EXACT) {
            sb_json_str(sb, x->value);
        } else if (x->kind == KV_REGEX) {
            sb_puts(sb, "{\"regex\":");
            sb_json_str(sb, x->value);
            sb_puts(sb, "}");
        } else {
            sb_printf(sb, "{\"present\":%s}", x->kind == KV_PRESENT ? "true" : "false");
        }
    }
    sb_puts(sb, "}");
}

static void match_json(struct strbuf *sb, const struct cfg_route *r)
{
    sb_puts(sb, "{");
    if (r->host)
        sb_json_kv_str(sb, "host", r->host);
    if (r->path)
        sb_json_kv_str(sb, "path", r->path);
    if (r->path_prefix)
        sb_json_kv_str(sb, "path_prefix", r->path_prefix);
    if (r->path_regex)
        sb_json_kv_str(sb, "path_regex", r->path_regex);
    if (r->methods.count) {
        sep(sb);
        sb_puts(sb, "\"methods\":[");
        for (size_t i = 0; i < r->methods.count; i++) {
            if (i)
                sb_puts(sb, ",");
            sb_json_str(sb, r->methods.items[i]);
        }
        sb_puts(sb, "]");
    }
    kv_matches(sb, "headers", &r->headers);
    kv_matches(sb, "query", &r->query);
    sb_puts(sb, "}");
}

void admin_routes_json(struct strbuf *sb, const struct rt_listener *l)
{
    const struct cfg_listener *cfg = l->cfg;
    sb_puts(sb, ",\"http_routes\":[");
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct cfg_route *r = &cfg->routes[i];
        if (i)
            sb_puts(sb, ",");
        sb_printf(sb, "{\"index\":%zu,\"line\":%d,\"match\":", i, r->line);
        match_json(sb, r);
        static const char *const actions[] = {"backend", "redirect", "respond"};
        sb_json_kv_str(sb, "action", actions[r->action]);
        if (r->action == ROUTE_BACKEND)
            sb_json_kv_str(sb, "backend", r->backend);
        else if (r->action == ROUTE_REDIRECT) {
            sb_json_kv_str(sb, "to", r->redirect.to);
            sb_printf(sb, ",\"status\":%d", r->redirect.status);
        } else
            sb_printf(sb, ",\"status\":%d", r->respond.status);
        sb_printf(sb, ",\"rewrite\":%s,\"request_headers\":%s,\"response_headers\":%s",
                  r->rewrite.path || r->rewrite.host ? "true" : "false",
                  r->request_headers.any ? "true" : "false",
                  r->response_headers.any ? "true" : "false");
        if (i < LISTENER_ROUTE_COUNTERS) {
            unsigned long long n = 0;
            for (int w = 0; w < l->stats->workers; w++)
                n += counter_get(&l->stats->slots[w].route_requests[i]);
            sb_printf(sb, ",\"requests\":%llu}", n);
        } else {
            sb_puts(sb, ",\"requests\":null}");
        }
    }
    sb_puts(sb, "]");
}
