/* The JSON API: GET /api/v1/status, POST /api/v1/reload and
 * GET|PATCH /api/v1/backends/{backend}/servers/{address}. Runs on the main thread, which
 * owns the current snapshot (the_control->rt) and writes the health detail fields of
 * the servers, so everything read here is stable during a call. Request bodies are read
 * with jansson; responses are written with the strbuf JSON helpers. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_http.h"
#include "core/control.h"
#include "core/log.h"
#include "core/runtime.h"
#include "upstream/server.h"
#include "version.h"

static const char *balance_name(enum cfg_balance b)
{
    switch (b) {
    case BAL_LEAST_CONNECTIONS:
        return "least_connections";
    case BAL_RANDOM_TWO:
        return "random_two";
    case BAL_CONSISTENT_HASH:
        return "consistent_hash";
    default:
        return "round_robin";
    }
}

static void kv_u(struct strbuf *sb, const char *key, unsigned long long v)
{
    sb_printf(sb, ",\"%s\":%llu", key, v);
}

static void kv_bool(struct strbuf *sb, const char *key, bool v)
{
    sb_printf(sb, ",\"%s\":%s", key, v ? "true" : "false");
}

void api_server_json(struct strbuf *sb, const struct server *s, uint64_t now_ms)
{
    unsigned long long conns = 0, fails = 0, in = 0, out = 0;
    for (int i = 0; i < s->workers; i++) {
        conns += counter_get(&s->slots[i].connections);
        fails += counter_get(&s->slots[i].connect_failures);
        in += counter_get(&s->slots[i].bytes_in);
        out += counter_get(&s->slots[i].bytes_out);
    }
    int admin = atomic_load(&s->admin);
    uint64_t drain = atomic_load(&s->drain_deadline);
    sb_puts(sb, "{");
    sb_json_kv_str(sb, "address", s->address);
    sb_json_kv_str(sb, "state", server_admin_name(admin));
    sb_printf(sb, ",\"weight\":%d,\"config_weight\":%d", atomic_load(&s->lb.weight),
              s->config_weight);
    kv_bool(sb, "backup", s->lb.backup);
    kv_bool(sb, "healthy", atomic_load(&s->healthy));
    kv_bool(sb, "usable", atomic_load(&s->lb.usable));
    kv_u(sb, "active_connections", atomic_load(&s->lb.active));
    kv_u(sb, "connections_total", conns);
    kv_u(sb, "connect_failures_total", fails);
    kv_u(sb, "bytes_received", in);
    kv_u(sb, "bytes_sent", out);
    if (drain)
        kv_u(sb, "drain_ms_left", drain > now_ms ? drain - now_ms : 0);
    sb_puts(sb, ",\"health\":{");
    sb_printf(sb, "\"checked\":%s", atomic_load(&s->has_probe) ? "true" : "false");
    sb_json_kv_str(sb, "last_check", s->last_check);
    if (s->last_change_ms && s->last_change_ms <= now_ms)
        sb_printf(sb, ",\"last_change_seconds_ago\":%.3f",
                  (double)(now_ms - s->last_change_ms) / 1000.0);
    else
        sb_puts(sb, ",\"last_change_seconds_ago\":null");
    sb_printf(sb, ",\"probe_successes\":%d,\"probe_failures\":%d", s->probe_successes,
              s->probe_failures);
    kv_u(sb, "passive_failures", atomic_load(&s->passive_failures));
    sb_puts(sb, "}}");
}

static void listener_json(struct strbuf *sb, const struct rt_listener *l)
{
    const struct cfg_listener *cfg = l->cfg;
    unsigned long long conns = 0, in = 0, out = 0, refused = 0;
    for (int i = 0; i < l->stats->workers; i++) {
        const struct listener_slot *ls = &l->stats->slots[i];
        conns += counter_get(&ls->connections);
        in += counter_get(&ls->bytes_in);
        out += counter_get(&ls->bytes_out);
        refused += counter_get(&ls->refused);
    }
    sb_puts(sb, "{");
    sb_json_kv_str(sb, "name", cfg->name);
    sb_json_kv_str(sb, "protocol", cfg_protocol_name(cfg->protocol));
    sb_puts(sb, ",\"binds\":[");
    for (size_t i = 0; i < cfg->n_binds; i++) {
        char addr[ADDR_TEXT_MAX];
        addr_format((const struct sockaddr *)&cfg->binds[i].ss, addr, sizeof(addr));
        if (i)
            sb_puts(sb, ",");
        sb_json_str(sb, addr);
    }
    sb_puts(sb, "]");
    sb_json_kv_str(sb, "backend", cfg->backend);
    kv_bool(sb, "tls", cfg->has_tls);
    kv_bool(sb, "tls_passthrough", l->peek_hello);
    sb_printf(sb, ",\"routes\":%zu,\"max_connections\":%d", cfg->n_routes, cfg->max_connections);
    kv_u(sb, "active_connections", atomic_load(&l->stats->active));
    kv_u(sb, "connections_total", conns);
    kv_u(sb, "bytes_received", in);
    kv_u(sb, "bytes_sent", out);
    kv_u(sb, "refused_total", refused);
    sb_puts(sb, "}");
}

static void backend_json(struct strbuf *sb, const struct rt_backend *b, uint64_t now_ms)
{
    const struct cfg_backend *cfg = b->cfg;
    size_t usable = 0;
    for (size_t i = 0; i < b->n_servers; i++)
        usable += atomic_load(&b->servers[i]->lb.usable) ? 1 : 0;
    sb_puts(sb, "{");
    sb_json_kv_str(sb, "name", cfg->name);
    sb_json_kv_str(sb, "protocol", cfg_protocol_name(cfg->protocol));
    sb_json_kv_str(sb, "balance", balance_name(cfg->balance));
    kv_bool(sb, "health_checks", cfg->health.enabled);
    kv_u(sb, "drain_timeout_ms", cfg->drain_timeout_ms);
    kv_u(sb, "connect_timeout_ms", cfg->connect_timeout_ms);
    kv_u(sb, "servers_usable", usable);
    sb_puts(sb, ",\"servers\":[");
    for (size_t i = 0; i < b->n_servers; i++) {
        if (i)
            sb_puts(sb, ",");
        api_server_json(sb, b->servers[i], now_ms);
    }
    sb_puts(sb, "]}");
}

void api_status(struct control *c, struct ah_response *resp)
{
    struct strbuf *sb = &resp->body;
    const struct runtime *rt = c->rt;
    uint64_t now = loop_now(&c->loop);
    resp->status = 200;
    sb_puts(sb, "{");
    sb_json_kv_str(sb, "version", SLUICE_VERSION);
    sb_printf(sb, ",\"pid\":%ld,\"generation\":%u,\"workers\":%d", (long)getpid(), rt->generation,
              c->n_workers);
    sb_json_kv_str(sb, "config", c->config_path);
    sb_json_kv_str(sb, "state", c->stopping ? "stopping" : "running");
    kv_u(sb, "active_connections", atomic_load(&runtime_active_connections));
    sb_printf(sb, ",\"reloads\":{\"success\":%lu,\"failure\":%lu}",
              atomic_load(&runtime_reloads_ok), atomic_load(&runtime_reloads_failed));
    sb_puts(sb, ",\"listeners\":[");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        if (i)
            sb_puts(sb, ",");
        listener_json(sb, &rt->listeners[i]);
    }
    sb_puts(sb, "],\"backends\":[");
    for (size_t i = 0; i < rt->n_backends; i++) {
        if (i)
            sb_puts(sb, ",");
        backend_json(sb, &rt->backends[i], now);
    }
    sb_puts(sb, "]}\n");
}

void api_reload(struct control *c, struct ah_response *resp)
{
    struct cfg_errors errs = {0};
    log_info("admin API: reloading %s", c->config_path);
    int r = control_reload(c, &errs);
    struct strbuf *sb = &resp->body;
    if (r == 0) {
        resp->status = 200;
        sb_printf(sb, "{\"ok\":true,\"generation\":%u}\n", c->rt->generation);
    } else {
        resp->status = c->stopping ? 503 : 422;
        sb_puts(sb, "{\"ok\":false,\"errors\":[");
        for (size_t i = 0; i < errs.count; i++) {
            if (i)
                sb_puts(sb, ",");
            sb_json_str(sb, errs.items[i] ? errs.items[i] : "(out of memory)");
        }
        if (errs.count == 0)
            sb_json_str(sb,
                        c->stopping ? "sluice is stopping" : "reload failed (see the process log)");
        sb_puts(sb, "]}\n");
    }
    cfg_errors_free(&errs);
}

/* At most `max` bytes of s, not splitting a UTF-8 sequence (for quoting input in a message). */
static int clip(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

#define QUOTE_MAX 64 /* bytes of a key or value quoted in an error message */

__attribute__((format(printf, 3, 4))) static int patch_error(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads "state" of a PATCH body into out->state. Returns 0 or -1 with err set. */
static int patch_state(const json_t *v, struct api_patch *out, char *err, size_t errlen)
{
    static const char *const names[] = {
        [SERVER_ENABLED] = "enabled", [SERVER_DRAIN] = "drain", [SERVER_DISABLED] = "disabled"};
    if (!json_is_string(v))
        return patch_error(err, errlen,
                           "\"state\" must be one of \"enabled\", \"drain\", \"disabled\"");
    const char *s = json_string_value(v);
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (strcmp(s, names[i]) == 0) {
            out->state = i;
            return 0;
        }
    }
    int n = clip(s, QUOTE_MAX);
    return patch_error(
        err, errlen,
        "\"state\" must be one of \"enabled\", \"drain\", \"disabled\", not \"%.*s%s\"", n, s,
        s[n] ? "..." : "");
}

/* Reads "weight" of a PATCH body into out->weight. Returns 0 or -1 with err set. */
static int patch_weight(const json_t *v, struct api_patch *out, char *err, size_t errlen)
{
    if (json_is_real(v))
        return patch_error(err, errlen,
                           "\"weight\" must be an integer from 0 to 256 (only integers are "
                           "accepted, not fractions or exponents)");
    json_int_t w = json_is_integer(v) ? json_integer_value(v) : -1;
    if (w < 0 || w > 256)
        return patch_error(err, errlen, "\"weight\" must be an integer from 0 to 256");
    out->weight = (int)w;
    return 0;
}

int api_parse_patch(const char *body, size_t len, struct api_patch *out, char *err, size_t errlen)
{
    out->state = out->weight = -1;
    size_t i = 0;
    while (i < len && body[i] && strchr(" \t\r\n", body[i]))
        i++;
    if (i == len)
        return patch_error(err, errlen, "bad JSON body: empty body: expected a JSON object");
    /* jansson refuses invalid UTF-8, control characters and \u0000 in strings, trailing
     * bytes and nesting deeper than 2048 (JSON_PARSER_MAX_DEPTH); ADMIN_MAX_BODY bounds
     * the size and so the memory it allocates */
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return patch_error(err, errlen, "bad JSON body: %s (at byte %d)", je.text, je.position);
    int r = 0;
    json_t *v;
    if (!json_is_object(root)) {
        r = patch_error(err, errlen, "bad JSON body: expected a JSON object '{...}'");
        goto done;
    }
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        if (strcmp(key, "state") != 0 && strcmp(key, "weight") != 0) {
            int n = clip(key, QUOTE_MAX);
            r = patch_error(err, errlen,
                            "unknown field \"%.*s%s\" (expected \"state\" and/or \"weight\")", n,
                            key, key[n] ? "..." : "");
            goto done;
        }
    }
    if ((v = json_object_get(root, "state")) && (r = patch_state(v, out, err, errlen)) < 0)
        goto done;
    if ((v = json_object_get(root, "weight")) && (r = patch_weight(v, out, err, errlen)) < 0)
        goto done;
    if (out->state < 0 && out->weight < 0)
        r = patch_error(err, errlen, "nothing to change: give \"state\" and/or \"weight\"");
done:
    json_decref(root);
    if (r < 0)
        out->state = out->weight = -1;
    return r;
}

void api_patch_server(struct control *c, const char *backend, const char *address, const char *body,
                      size_t len, struct ah_response *resp)
{
    struct api_patch p;
    char err[256];
    if (api_parse_patch(body, len, &p, err, sizeof(err)) < 0) {
        ah_error(resp, 400, "%s", err);
        return;
    }
    int state = p.state, weight = p.weight;
    if (!runtime_find_backend(c->rt, backend)) {
        ah_error(resp, 404, "no backend called \"%s\"", backend);
        return;
    }
    struct server *s = runtime_find_server(c->rt, backend, address);
    if (!s || control_set_server(c, backend, address, state, weight) == -ENOENT) {
        ah_error(resp, 404, "backend \"%s\" has no server \"%s\"", backend, address);
        return;
    }
    if (weight >= 0)
        log_info("admin API: weight of server %s of backend %s set to %d", address, backend,
                 weight);
    resp->status = 200;
    api_server_json(&resp->body, s, loop_now(&c->loop));
    sb_puts(&resp->body, "\n");
}
