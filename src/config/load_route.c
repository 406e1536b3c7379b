/* Loading a listener's `routes`: match conditions, the action (backend, redirect,
 * respond) and HTTP rewrites / header operations. Keys that only make sense for the
 * other protocol family are refused with a message saying which listener they need. */
#include "config/load_internal.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/uri.h"

static const char *const route_keys[] = {
    "match",    "backend", "rewrite",    "request_headers", "response_headers",
    "redirect", "respond", "rate_limit", "timeout",         NULL};
static const char *const match_keys[] = {"sni",        "alpn",    "host",    "path_prefix", "path",
                                         "path_regex", "methods", "headers", "query",       NULL};
static const char *const rewrite_keys[] = {"strip_prefix", "replace_prefix", "regex",
                                           "replace",      "host",           NULL};
static const char *const replace_keys[] = {"from", "to", NULL};
static const char *const hdr_keys[] = {"set", "add", "remove", NULL};
static const char *const redirect_keys[] = {"to", "status", "keep_path", "keep_query", NULL};
static const char *const respond_keys[] = {"status", "body", "content_type", NULL};

/* Refuses `key` of `map` unless the listener is of the right family. */
static void ld_family_only(struct ld *ld, yaml_node_t *map, const char *key,
                           const struct cfg_listener *l, bool want_http)
{
    yaml_node_t *k = ld_get_keynode(ld, map, key);
    if (k == NULL || ld_is_http(l->protocol) == want_http)
        return;
    if (want_http)
        ld_error_key(ld, k, key, "%s needs an http or https listener (this one is %s)", key,
                     cfg_protocol_name(l->protocol));
    else
        ld_error_key(ld, k, key, "%s needs a tcp or tls listener (this one is %s)", key,
                     cfg_protocol_name(l->protocol));
}

/* Reads a URL path at `key` that must start with '/'. */
static void ld_url_path(struct ld *ld, yaml_node_t *map, const char *key, char **out)
{
    if (ld_str(ld, map, key, out) == 1 && (*out)[0] != '/')
        ld_error_key(ld, ld_get(ld, map, key), key, "must start with '/'");
}

static void ld_check_header_names(struct ld *ld, yaml_node_t *map, const char *key,
                                  const struct cfg_pairs *p)
{
    yaml_node_t *at = p->count ? ld_get(ld, map, key) : NULL;
    for (size_t i = 0; i < p->count; i++)
        if (!ld_valid_token(p->items[i].name))
            ld_error_key(ld, at, key, "invalid header name '%s'", p->items[i].name);
}

static void ld_load_match(struct ld *ld, yaml_node_t *n, struct cfg_route *r,
                          const struct cfg_listener *l)
{
    if (!ld_check_map(ld, n, match_keys))
        return;
    ld_host_pattern(ld, n, "sni", &r->sni);
    if (ld_str(ld, n, "alpn", &r->alpn) == 1 && (r->alpn[0] == '\0' || strlen(r->alpn) > 255))
        ld_error_key(ld, ld_get(ld, n, "alpn"), "alpn", "expected a protocol name (1-255 bytes)");
    ld_host_pattern(ld, n, "host", &r->host);
    ld_url_path(ld, n, "path_prefix", &r->path_prefix);
    ld_url_path(ld, n, "path", &r->path);
    r->path_prefix_len = r->path_prefix ? strlen(r->path_prefix) : 0;
    r->path_len = r->path ? strlen(r->path) : 0;
    if (ld_str(ld, n, "path_regex", &r->path_regex) == 1) /* matched in src/http/route.c */
        r->path_re =
            ld_regex(ld, ld_get(ld, n, "path_regex"), "path_regex", r->path_regex, REG_NOSUB);
    int paths = (r->path_prefix != NULL) + (r->path != NULL) + (r->path_regex != NULL);
    if (paths > 1)
        ld_error(ld, n, "use only one of path, path_prefix, path_regex");
    if (ld_strings(ld, n, "methods", &r->methods) == 1) {
        for (size_t i = 0; i < r->methods.count; i++)
            if (!ld_valid_token(r->methods.items[i]))
                ld_error_key(ld, ld_get(ld, n, "methods"), "methods", "invalid method '%s'",
                             r->methods.items[i]);
    }
    ld_kv_matches(ld, n, "headers", true, &r->headers);
    ld_kv_matches(ld, n, "query", false, &r->query);

    ld_family_only(ld, n, "sni", l, false);
    ld_family_only(ld, n, "alpn", l, false);
    static const char *const http_keys[] = {"host",    "path_prefix", "path", "path_regex",
                                            "methods", "headers",     "query"};
    for (size_t i = 0; i < sizeof(http_keys) / sizeof(http_keys[0]); i++)
        ld_family_only(ld, n, http_keys[i], l, true);
}

static void ld_load_rewrite(struct ld *ld, yaml_node_t *n, struct cfg_route *r)
{
    yaml_node_t *rp;
    if (!ld_check_map(ld, n, rewrite_keys))
        return;
    ld_url_path(ld, n, "strip_prefix", &r->rewrite.strip_prefix);
    if ((rp = ld_get(ld, n, "replace_prefix")) != NULL) {
        size_t mark = ld_push_key(ld, "replace_prefix");
        if (ld_check_map(ld, rp, replace_keys)) {
            if (ld_get(ld, rp, "from") == NULL)
                ld_error(ld, rp, "missing required key 'from'");
            if (ld_get(ld, rp, "to") == NULL)
                ld_error(ld, rp, "missing required key 'to'");
            ld_url_path(ld, rp, "from", &r->rewrite.replace_from);
            ld_url_path(ld, rp, "to", &r->rewrite.replace_to);
        }
        ld_pop(ld, mark);
    }
    if (ld_str(ld, n, "regex", &r->rewrite.regex) == 1)
        r->rewrite.re = ld_regex(ld, ld_get(ld, n, "regex"), "regex", r->rewrite.regex, 0);
    if (ld_str(ld, n, "replace", &r->rewrite.replace) == 1) {
        for (const char *p = r->rewrite.replace; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#' || *p == '?') {
                ld_error_key(ld, ld_get(ld, n, "replace"), "replace",
                             "a path holds no spaces, control characters, '#' or '?'");
                break;
            }
    }
    if ((r->rewrite.regex != NULL) != (r->rewrite.replace != NULL))
        ld_error(ld, n, "regex and replace go together");
    if (ld_str(ld, n, "host", &r->rewrite.host) == 1) {
        struct uri_authority a;
        if (uri_parse_authority(r->rewrite.host, strlen(r->rewrite.host), false, &a) < 0)
            ld_error_key(ld, ld_get(ld, n, "host"), "host", "expected host or host:port");
    }
    int paths =
        (ld_get(ld, n, "strip_prefix") != NULL) + (rp != NULL) + (ld_get(ld, n, "regex") != NULL);
    if (paths > 1)
        ld_error(ld, n, "use only one of strip_prefix, replace_prefix, regex");
    r->rewrite.path = paths > 0;
}

/* Fields that frame or address a message: header operations may not touch them. */
static bool is_framing_field(const char *name)
{
    static const char *const f[] = {"host",       "content-length",  "transfer-encoding",
                                    "connection", "upgrade",         "te",
                                    "keep-alive", "proxy-connection"};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (strcasecmp(name, f[i]) == 0)
            return true;
    return false;
}

/* Compiles the template `src` found at `key` of `map` into *out (flags: TMPL_*). */
static void ld_template(struct ld *ld, yaml_node_t *map, const char *key, const char *src,
                        unsigned flags, struct cfg_template *out)
{
    char err[160];
    int rc = cfg_template_compile(src, flags, out, err, sizeof(err));
    if (rc == -2)
        ld->oom = true;
    else if (rc < 0)
        ld_error_key(ld, ld_get(ld, map, key), key, "%s", err);
}

/* The values of header pairs at `key` compiled into a new array *out. */
static void ld_pair_templates(struct ld *ld, yaml_node_t *n, const char *key,
                              const struct cfg_pairs *p, unsigned flags, struct cfg_template **out)
{
    if (p->count == 0)
        return;
    *out = ld_calloc(ld, p->count, sizeof(**out));
    yaml_node_t *m = ld_get(ld, n, key);
    size_t mark = ld_push_key(ld, key);
    for (size_t i = 0; *out && i < p->count; i++)
        ld_template(ld, m, p->items[i].name, p->items[i].value, flags, &(*out)[i]);
    ld_pop(ld, mark);
}

static void ld_load_header_ops(struct ld *ld, yaml_node_t *n, struct cfg_header_ops *h,
                               unsigned flags)
{
    if (!ld_check_map(ld, n, hdr_keys))
        return;
    if (ld_pairs(ld, n, "set", &h->set) == 1) {
        ld_check_header_names(ld, n, "set", &h->set);
        ld_pair_templates(ld, n, "set", &h->set, flags, &h->set_t);
    }
    if (ld_pairs(ld, n, "add", &h->add) == 1) {
        ld_check_header_names(ld, n, "add", &h->add);
        ld_pair_templates(ld, n, "add", &h->add, flags, &h->add_t);
    }
    if (ld_strings(ld, n, "remove", &h->remove) == 1) {
        for (size_t i = 0; i < h->remove.count; i++)
            if (!ld_valid_token(h->remove.items[i]))
                ld_error_key(ld, ld_get(ld, n, "remove"), "remove", "invalid header name '%s'",
                             h->remove.items[i]);
    }
    for (int k = 0; k < 3; k++) {
        static const char *const keys[] = {"set", "add", "remove"};
        for (size_t i = 0;; i++) {
            const char *name = k == 2 ? (i < h->remove.count ? h->remove.items[i] : NULL)
                               : i < (k ? h->add.count : h->set.count)
                                   ? (k ? h->add.items[i].name : h->set.items[i].name)
                                   : NULL;
            if (name == NULL)
                break;
            if (is_framing_field(name))
                ld_error_key(ld, ld_get(ld, n, keys[k]), keys[k],
                             "%s is sluice's to write (it frames the message%s)", name,
                             strcasecmp(name, "host") == 0 ? "; use rewrite.host" : "");
        }
    }
    h->any = h->set.count || h->add.count || h->remove.count;
}

static void ld_load_redirect(struct ld *ld, yaml_node_t *n, struct cfg_route *r)
{
    if (!ld_check_map(ld, n, redirect_keys))
        return;
    if (ld_str(ld, n, "to", &r->redirect.to) == 0)
        ld_error(ld, n, "missing required key 'to'");
    else if (r->redirect.to != NULL && r->redirect.to[0] == '\0')
        ld_error_key(ld, ld_get(ld, n, "to"), "to", "must not be empty");
    else if (r->redirect.to != NULL)
        ld_template(ld, n, "to", r->redirect.to, 0, &r->redirect.to_t);
    int st = r->redirect.status;
    if (ld_int(ld, n, "status", 100, 599, &st) == 1) {
        if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308)
            r->redirect.status = st;
        else
            ld_error_key(ld, ld_get(ld, n, "status"), "status",
                         "invalid redirect status %d (expected one of: 301, 302, 303, 307, 308)",
                         st);
    }
    ld_bool(ld, n, "keep_path", &r->redirect.keep_path);
    ld_bool(ld, n, "keep_query", &r->redirect.keep_query);
}

static void ld_load_respond(struct ld *ld, yaml_node_t *n, struct cfg_route *r)
{
    if (!ld_check_map(ld, n, respond_keys))
        return;
    ld_int(ld, n, "status", 100, 599, &r->respond.status);
    if (ld_str(ld, n, "body", &r->respond.body) == 1)
        ld_template(ld, n, "body", r->respond.body, TMPL_MULTILINE, &r->respond.body_t);
    ld_str(ld, n, "content_type", &r->respond.content_type);
}

/* Runs fn on `key`'s value with the key pushed on the path. */
#define LD_SUB(key, call)                                                                          \
    do {                                                                                           \
        yaml_node_t *v_ = ld_get(ld, n, key);                                                      \
        if (v_ != NULL) {                                                                          \
            size_t m_ = ld_push_key(ld, key);                                                      \
            call;                                                                                  \
            ld_pop(ld, m_);                                                                        \
        }                                                                                          \
    } while (0)

static void ld_load_route(struct ld *ld, yaml_node_t *n, struct cfg_route *r,
                          const struct cfg_listener *l)
{
    r->backend_index = -1;
    r->redirect.status = 302;
    r->respond.status = 200;
    r->line = (int)ld_line(n);
    if (!ld_check_map(ld, n, route_keys))
        return;
    LD_SUB("match", ld_load_match(ld, v_, r, l));

    bool has_backend = ld_get(ld, n, "backend") != NULL;
    bool has_redirect = ld_get(ld, n, "redirect") != NULL;
    bool has_respond = ld_get(ld, n, "respond") != NULL;
    if (has_backend + has_redirect + has_respond != 1)
        ld_error(ld, n, "a route needs exactly one of backend, redirect, respond");
    r->action = has_backend ? ROUTE_BACKEND : has_redirect ? ROUTE_REDIRECT : ROUTE_RESPOND;
    if (ld_str(ld, n, "backend", &r->backend) == 1)
        LD_SUB("backend", r->backend_index = ld_backend_ref(ld, v_, r->backend, l->protocol));
    LD_SUB("redirect", ld_load_redirect(ld, v_, r));
    LD_SUB("respond", ld_load_respond(ld, v_, r));
    LD_SUB("rewrite", ld_load_rewrite(ld, v_, r));
    LD_SUB("request_headers", ld_load_header_ops(ld, v_, &r->request_headers, 0));
    LD_SUB("response_headers", ld_load_header_ops(ld, v_, &r->response_headers, TMPL_RESPONSE));
    LD_SUB("rate_limit", ld_load_rate_limit(ld, v_, &r->rate_limit));

    static const char *const http_keys[] = {"redirect",        "respond",          "rewrite",
                                            "request_headers", "response_headers", "rate_limit"};
    for (size_t i = 0; i < sizeof(http_keys) / sizeof(http_keys[0]); i++)
        ld_family_only(ld, n, http_keys[i], l, true);
    if (ld_duration(ld, n, "timeout", 1, 720ull * 3600 * 1000, &r->timeout_ms) == 1 && !has_backend)
        ld_error_key(ld, ld_get_keynode(ld, n, "timeout"), "timeout",
                     "timeout only applies to routes with a backend");
    ld_family_only(ld, n, "timeout", l, true);
    yaml_node_t *rw = ld_get_keynode(ld, n, "rewrite");
    if (rw != NULL && has_backend + has_redirect + has_respond == 1 && !has_backend)
        ld_error_key(ld, rw, "rewrite", "rewrite only applies to routes with a backend");
}

void ld_load_routes(struct ld *ld, yaml_node_t *seq, struct cfg_listener *l)
{
    long n = ld_seq_len(ld, seq);
    if (n <= 0)
        return;
    l->routes = ld_calloc(ld, (size_t)n, sizeof(*l->routes));
    if (l->routes == NULL)
        return;
    l->n_routes = (size_t)n;
    for (size_t i = 0; i < l->n_routes; i++) {
        yaml_node_t *item = ld_seq_item(ld, seq, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        ld_load_route(ld, item, &l->routes[i], l);
        ld_pop(ld, mark);
    }
}
