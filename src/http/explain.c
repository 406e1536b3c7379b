/* See explain.h. */
#include "http/explain.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/route.h"
#include "http/uri.h"

#define EXPLAIN_HEAD_MAX 16384
#define EXPLAIN_FIELDS 64

static void describe_action(const struct config *cfg, const struct cfg_route *r, FILE *out)
{
    switch (r->action) {
    case ROUTE_BACKEND:
        fprintf(out, "backend %s", cfg->backends[r->backend_index].name);
        if (r->rewrite.strip_prefix)
            fprintf(out, ", rewrite strip_prefix %s", r->rewrite.strip_prefix);
        if (r->rewrite.replace_from)
            fprintf(out, ", rewrite replace_prefix %s -> %s", r->rewrite.replace_from,
                    r->rewrite.replace_to);
        if (r->rewrite.regex)
            fprintf(out, ", rewrite regex %s -> %s", r->rewrite.regex, r->rewrite.replace);
        if (r->rewrite.host)
            fprintf(out, ", Host %s", r->rewrite.host);
        if (r->timeout_ms)
            fprintf(out, ", timeout %llums", (unsigned long long)r->timeout_ms);
        break;
    case ROUTE_REDIRECT:
        fprintf(out, "redirect %d to %s%s%s", r->redirect.status, r->redirect.to,
                r->redirect.keep_path ? " +path" : "", r->redirect.keep_query ? " +query" : "");
        break;
    case ROUTE_RESPOND:
        fprintf(out, "respond %d", r->respond.status);
        break;
    }
    if (r->request_headers.any)
        fprintf(out, ", request_headers");
    if (r->response_headers.any)
        fprintf(out, ", response_headers");
}

/* The value a route condition wanted, for the "no:" lines. */
static void describe_want(const struct cfg_route *r, const char *what, const char *name, FILE *out)
{
    if (strcmp(what, "host") == 0)
        fprintf(out, "host %s", r->host);
    else if (strcmp(what, "path") == 0)
        fprintf(out, "path %s", r->path);
    else if (strcmp(what, "path_prefix") == 0)
        fprintf(out, "path_prefix %s", r->path_prefix);
    else if (strcmp(what, "path_regex") == 0)
        fprintf(out, "path_regex %s", r->path_regex);
    else if (strcmp(what, "methods") == 0) {
        fprintf(out, "methods");
        for (size_t i = 0; i < r->methods.count; i++)
            fprintf(out, "%s%s", i ? "," : " ", r->methods.items[i]);
    } else {
        fprintf(out, "%s.%s", what, name);
    }
}

static void explain_listener(const struct config *cfg, const struct cfg_listener *l,
                             const struct http_route_in *in, FILE *out)
{
    fprintf(out, "listener %s (%s, port %u):\n", l->name, cfg_protocol_name(l->protocol),
            (unsigned)l->binds[0].port);
    if (!http_listener_admits(l, in->host)) {
        fprintf(out, "  hosts: %.*s is not one of the listener's hosts -> 404 (no route)\n",
                (int)in->host.len, in->host.p ? in->host.p : "");
        return;
    }
    for (size_t i = 0; i < l->n_routes; i++) {
        const struct cfg_route *r = &l->routes[i];
        const char *name, *what = http_route_mismatch(r, in, &name);
        fprintf(out, "  route %zu (line %d): ", i, r->line);
        if (what) {
            fprintf(out, "no: ");
            describe_want(r, what, name, out);
            fprintf(out, " does not hold\n");
            continue;
        }
        fprintf(out, "MATCH -> ");
        describe_action(cfg, r, out);
        fprintf(out, "\n");
        return;
    }
    if (l->backend_index >= 0)
        fprintf(out, "  no route matched -> default backend %s\n", l->backend);
    else
        fprintf(out, "  no route matched and no default backend -> 404 (no route)\n");
}

int http_explain(const struct config *cfg, const char *request, const char *const *headers,
                 size_t n_headers, FILE *out, FILE *err)
{
    /* "[METHOD ]URL" -> a request head the proxy's parser reads */
    const char *sp = strchr(request, ' ');
    const char *url = sp ? sp + 1 : request;
    int mlen = sp ? (int)(sp - request) : 3;
    const char *method = sp ? request : "GET";
    bool https = strncasecmp(url, "https://", 8) == 0;
    if (!https && strncasecmp(url, "http://", 7) != 0) {
        fprintf(err, "sluice: --explain wants 'METHOD http(s)://host[:port]/path?query'\n");
        return 2;
    }
    static char head[EXPLAIN_HEAD_MAX];
    const char *auth = url + (https ? 8 : 7);
    size_t alen = strcspn(auth, "/?");
    int n = snprintf(head, sizeof(head), "%.*s %s%s HTTP/1.1\r\nHost: %.*s\r\n", mlen, method,
                     auth[alen] == '/' ? "" : "/", auth + alen, (int)alen, auth);
    for (size_t i = 0; i < n_headers && n > 0 && (size_t)n < sizeof(head); i++)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", headers[i]);
    if (n <= 0 || (size_t)n + 2 >= sizeof(head)) {
        fprintf(err, "sluice: --explain request too long\n");
        return 2;
    }
    memcpy(head + n, "\r\n", 3);
    struct h1_header fields[EXPLAIN_FIELDS];
    struct h1_head h;
    h1_head_init(&h, fields, EXPLAIN_FIELDS);
    struct h1_limits lim = {EXPLAIN_HEAD_MAX, EXPLAIN_FIELDS};
    struct h1_msg m;
    if (h1_parse_request(head, strlen(head), &lim, &h) <= 0 ||
        h1_check_request(&h, 0, &m) != H1_OK) {
        fprintf(err, "sluice: --explain: the request is refused by the parser: %s\n",
                h1_error_reason(h.error));
        return 2;
    }
    struct uri_authority a;
    int port = https ? 443 : 80;
    if (uri_parse_authority(auth, alen, false, &a) == 0 && a.port >= 0)
        port = a.port;
    struct http_route_in in;
    if (http_route_input(&h, &m, &in) < 0) {
        fprintf(out, "request: %.*s %.*s -> 400 (the path climbs above the root)\n", mlen, method,
                (int)strcspn(auth + alen, " "), auth + alen);
        return 0;
    }
    fprintf(out, "request: %.*s host=%.*s path=%.*s query=%.*s port=%d\n", (int)in.method.len,
            in.method.p, (int)in.host.len, in.host.p ? in.host.p : "", (int)in.path.len, in.path.p,
            (int)in.query.len, in.query.p, port);
    size_t shown = 0;
    for (int pass = 0; pass < 2 && shown == 0; pass++) {
        if (pass == 1)
            fprintf(out, "no http listener on port %d; every http listener:\n", port);
        for (size_t i = 0; i < cfg->n_listeners; i++) {
            const struct cfg_listener *l = &cfg->listeners[i];
            bool on_port = false;
            for (size_t b = 0; b < l->n_binds; b++)
                on_port = on_port || l->binds[b].port == port;
            if ((l->protocol != PROTO_HTTP && l->protocol != PROTO_HTTPS) || (!pass && !on_port))
                continue;
            explain_listener(cfg, l, &in, out);
            shown++;
        }
    }
    if (shown == 0)
        fprintf(out, "no http listener in the configuration\n");
    return 0;
}
