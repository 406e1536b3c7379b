/* Loading `backends`: servers, balancing, timeouts, upstream TLS, health checks,
 * affinity and keep-alive. The caller has pushed "backends" on the key path. */
#include "config/load_internal.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char *const backend_keys[] = {"http",
                                           "name",
                                           "protocol",
                                           "servers",
                                           "balance",
                                           "hash_key",
                                           "connect_timeout",
                                           "timeout",
                                           "retries",
                                           "drain_timeout",
                                           "max_connections_per_server",
                                           "proxy_protocol",
                                           "tls",
                                           "health",
                                           "affinity",
                                           "keepalive",
                                           NULL};
static const char *const server_keys[] = {"address", "weight", "backup", NULL};
static const char *const btls_keys[] = {"verify", "ca", "sni", "cert", "key", NULL};
static const char *const health_keys[] = {
    "type",   "interval", "timeout",       "healthy_threshold", "unhealthy_threshold",
    "path",   "host",     "expect_status", "expect_body",       "send",
    "expect", NULL};
static const char *const affinity_keys[] = {"cookie", "client_ip", "ttl", "same_site", NULL};
static const char *const keepalive_keys[] = {"max_idle", "idle_timeout", NULL};

/* Writes the identity of a parsed server address into key (ADDR_HOST_MAX + 32 bytes):
 * two servers are the same when their keys are equal, i.e. same DNS name (any case)
 * and port, or same family, IP, port (and IPv6 scope). Returns its length. */
static size_t ld_server_key(const struct net_addr *a, unsigned char *key)
{
    size_t n = 0;
    key[n++] = a->is_name ? 'N' : 'A';
    memcpy(key + n, &a->port, sizeof(a->port));
    n += sizeof(a->port);
    if (a->is_name) {
        for (const char *h = a->host; *h && n < ADDR_HOST_MAX + 3; h++)
            key[n++] = (unsigned char)tolower((unsigned char)*h);
        return n;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
        memcpy(key + n, &v6->sin6_addr, sizeof(v6->sin6_addr));
        n += sizeof(v6->sin6_addr);
        memcpy(key + n, &v6->sin6_scope_id, sizeof(v6->sin6_scope_id));
        return n + sizeof(v6->sin6_scope_id);
    }
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
    memcpy(key + n, &v4->sin_addr, sizeof(v4->sin_addr));
    return n + sizeof(v4->sin_addr);
}

/* Reports server i as a duplicate when an earlier one of the backend has its identity. */
static void ld_check_server_dup(struct ld *ld, yaml_node_t *an, struct ld_index *seen,
                                const struct cfg_server *s, size_t i)
{
    unsigned char key[ADDR_HOST_MAX + 32];
    uint64_t j;
    if (!ld_index_add(ld, seen, key, ld_server_key(&s->addr, key), i, &j))
        ld_error(ld, an, "duplicate server address '%s' (same as servers[%zu])", s->address,
                 (size_t)j);
}

/* Reads one `servers[i]` entry: a mapping, or just the address as a string. */
static void ld_load_server(struct ld *ld, yaml_node_t *n, struct cfg_backend *b, size_t i,
                           struct ld_index *seen)
{
    struct cfg_server *s = &b->servers[i];
    yaml_node_t *an = n;
    const char *err = NULL;

    s->weight = 1;
    s->line = (int)ld_line(n);
    if (ld_scalar(n) == NULL || ld_is_null(n)) {
        if (!ld_check_map(ld, n, server_keys))
            return;
        an = ld_get(ld, n, "address");
        if (an == NULL) {
            ld_error(ld, n, "missing required key 'address'");
        }
        ld_int(ld, n, "weight", 1, 256, &s->weight);
        ld_bool(ld, n, "backup", &s->backup);
        if (an == NULL)
            return;
    }
    size_t mark = an != n ? ld_push_key(ld, "address") : ld->path_len;
    if (ld_node_str(ld, an, &s->address) < 0)
        goto out;
    if (addr_parse(s->address, &s->addr, &err) < 0) {
        ld_error(ld, an, "%s", err);
        goto out;
    }
    if (s->addr.is_wildcard) {
        ld_error(ld, an, "a server address cannot be a wildcard");
        goto out;
    }
    ld_check_server_dup(ld, an, seen, s, i);
out:
    ld_pop(ld, mark);
}

static void ld_load_servers(struct ld *ld, yaml_node_t *seq, struct cfg_backend *b)
{
    long n = ld_seq_len(ld, seq);
    if (n < 0)
        return;
    if (n == 0) {
        ld_error(ld, seq, "at least one server is required");
        return;
    }
    b->servers = ld_calloc(ld, (size_t)n, sizeof(*b->servers));
    if (b->servers == NULL)
        return;
    b->n_servers = (size_t)n;
    struct ld_index seen = {0};
    for (size_t i = 0; i < b->n_servers; i++) {
        yaml_node_t *item = ld_seq_item(ld, seq, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        ld_load_server(ld, item, b, i, &seen);
        ld_pop(ld, mark);
    }
    ld_index_free(&seen);
}

/* hash_key: client_ip | host | path | header:NAME | cookie:NAME. */
static void ld_load_hash_key(struct ld *ld, yaml_node_t *map, struct cfg_backend *b)
{
    static const struct {
        const char *name;
        enum cfg_hash_key key;
        bool needs_name;
    } keys[] = {{"client_ip", HASH_CLIENT_IP, false},
                {"host", HASH_HOST, false},
                {"path", HASH_PATH, false},
                {"header:", HASH_HEADER, true},
                {"cookie:", HASH_COOKIE, true}};
    char *s = NULL;
    yaml_node_t *n = ld_get(ld, map, "hash_key");

    if (ld_str(ld, map, "hash_key", &s) <= 0)
        return;
    size_t mark = ld_push_key(ld, "hash_key");
    size_t i;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        size_t l = strlen(keys[i].name);
        if (keys[i].needs_name ? strncmp(s, keys[i].name, l) == 0 : strcmp(s, keys[i].name) == 0)
            break;
    }
    if (i == sizeof(keys) / sizeof(keys[0])) {
        ld_error(ld, n,
                 "invalid value '%s' (expected one of: client_ip, host, path, header:NAME, "
                 "cookie:NAME)",
                 s);
        goto out;
    }
    b->hash_key = keys[i].key;
    if (keys[i].needs_name) {
        const char *name = s + strlen(keys[i].name);
        if (!ld_valid_token(name)) {
            ld_error(ld, n, "invalid %.*s name '%s'", (int)strlen(keys[i].name) - 1, s, name);
            goto out;
        }
        b->hash_key_name = ld_strdup(ld, name);
    }
    if (b->balance != BAL_CONSISTENT_HASH)
        ld_error(ld, n, "hash_key is only used with balance: consistent_hash");
    else if (b->hash_key != HASH_CLIENT_IP && !ld_is_http(b->protocol))
        ld_error(ld, n, "hash_key '%s' needs an http or https backend", s);
out:
    ld_pop(ld, mark);
    free(s);
}

static void ld_load_backend_tls(struct ld *ld, yaml_node_t *n, struct cfg_backend *b)
{
    if (!ld_check_map(ld, n, btls_keys))
        return;
    b->has_tls = true;
    if (b->protocol != PROTO_TLS && b->protocol != PROTO_HTTPS)
        ld_error(ld, n, "tls settings need protocol tls or https (protocol is %s)",
                 cfg_protocol_name(b->protocol));
    ld_bool(ld, n, "verify", &b->tls.verify);
    ld_path(ld, n, "ca", &b->tls.ca);
    if (ld_str(ld, n, "sni", &b->tls.sni) == 1 &&
        (strchr(b->tls.sni, '*') != NULL || !ld_valid_host_pattern(b->tls.sni)))
        ld_error_key(ld, ld_get(ld, n, "sni"), "sni", "invalid host name '%s'", b->tls.sni);
    ld_path(ld, n, "cert", &b->tls.cert);
    ld_path(ld, n, "key", &b->tls.key);
    if ((ld_get(ld, n, "cert") == NULL) != (ld_get(ld, n, "key") == NULL))
        ld_error(ld, n, "cert and key must be given together");
}

/* expect_status: "200-399", "200" or 200; each code 100-599. */
static void ld_load_expect_status(struct ld *ld, yaml_node_t *map, struct cfg_health *h)
{
    yaml_node_t *n = ld_get(ld, map, "expect_status");
    const char *s = ld_scalar(n);
    if (n == NULL)
        return;
    size_t mark = ld_push_key(ld, "expect_status");
    char *end;
    long lo, hi;
    if (s == NULL || ld_is_null(n) || s[0] < '0' || s[0] > '9')
        goto bad;
    lo = strtol(s, &end, 10);
    hi = lo;
    if (*end == '-') {
        const char *p = end + 1;
        if (*p < '0' || *p > '9')
            goto bad;
        hi = strtol(p, &end, 10);
    }
    if (*end != '\0')
        goto bad;
    if (lo < 100 || lo > 599 || hi < 100 || hi > 599) {
        ld_error(ld, n, "status %s out of range (100-599)", s);
        goto out;
    }
    if (lo > hi) {
        ld_error(ld, n, "empty status range '%s'", s);
        goto out;
    }
    h->expect_status_lo = (int)lo;
    h->expect_status_hi = (int)hi;
    goto out;
bad:
    ld_error(ld, n, "expected a status code or range like 200-399");
out:
    ld_pop(ld, mark);
}

/* health.send keeps the exact bytes (YAML escapes such as "\0" are already decoded). */
static void ld_load_send(struct ld *ld, yaml_node_t *map, struct cfg_health *h)
{
    yaml_node_t *n = ld_get(ld, map, "send");
    if (n == NULL)
        return;
    if (ld_scalar(n) == NULL || ld_is_null(n)) {
        ld_error_key(ld, n, "send", "expected a string");
        return;
    }
    char *p = ld_strndup(ld, (const char *)n->data.scalar.value, n->data.scalar.length);
    if (p == NULL)
        return;
    free(h->send);
    h->send = p;
    h->send_len = n->data.scalar.length;
}

static void ld_health_only(struct ld *ld, yaml_node_t *map, const char *key, bool ok,
                           const char *which)
{
    yaml_node_t *k = ld_get_keynode(ld, map, key);
    if (k != NULL && !ok)
        ld_error_key(ld, k, key, "only used by %s health checks", which);
}

static void ld_load_health(struct ld *ld, yaml_node_t *n, struct cfg_backend *b)
{
    struct cfg_health *h = &b->health;
    if (!ld_check_map(ld, n, health_keys))
        return;
    h->enabled = true;
    ld_protocol(ld, n, "type", &h->type);
    ld_duration(ld, n, "interval", 100, LD_DURATION_MAX, &h->interval_ms);
    ld_duration(ld, n, "timeout", 1, LD_DURATION_MAX, &h->timeout_ms);
    ld_int(ld, n, "healthy_threshold", 1, 100, &h->healthy_threshold);
    ld_int(ld, n, "unhealthy_threshold", 1, 100, &h->unhealthy_threshold);
    if (ld_str(ld, n, "path", &h->path) == 1 && h->path[0] != '/')
        ld_error_key(ld, ld_get(ld, n, "path"), "path", "must start with '/'");
    else if (h->path && h->path[strcspn(h->path, " \t\r\n#")] != '\0')
        ld_error_key(ld, ld_get(ld, n, "path"), "path",
                     "must not contain whitespace, control characters or '#'");
    if (ld_str(ld, n, "host", &h->host) == 1 &&
        (strchr(h->host, '*') != NULL || !ld_valid_host_pattern(h->host)))
        ld_error_key(ld, ld_get(ld, n, "host"), "host", "invalid host name '%s'", h->host);
    ld_load_expect_status(ld, n, h);
    ld_str(ld, n, "expect_body", &h->expect_body);
    ld_load_send(ld, n, h);
    ld_str(ld, n, "expect", &h->expect);

    bool http = ld_is_http(h->type);
    ld_health_only(ld, n, "path", http, "http and https");
    ld_health_only(ld, n, "expect_status", http, "http and https");
    ld_health_only(ld, n, "expect_body", http, "http and https");
    ld_health_only(ld, n, "host", h->type != PROTO_TCP, "tls, http and https");
    ld_health_only(ld, n, "send", !http, "tcp and tls");
    ld_health_only(ld, n, "expect", !http, "tcp and tls");
}

static void ld_load_affinity(struct ld *ld, yaml_node_t *n, struct cfg_backend *b)
{
    if (!ld_check_map(ld, n, affinity_keys))
        return;
    if (ld_str(ld, n, "cookie", &b->affinity_cookie) == 1) {
        yaml_node_t *c = ld_get(ld, n, "cookie");
        if (!ld_valid_token(b->affinity_cookie))
            ld_error_key(ld, c, "cookie", "invalid cookie name '%s'", b->affinity_cookie);
        else if (!ld_is_http(b->protocol))
            ld_error_key(ld, c, "cookie", "cookie affinity needs an http or https backend");
    }
    ld_bool(ld, n, "client_ip", &b->affinity_client_ip);
    if (b->affinity_cookie != NULL && b->affinity_client_ip)
        ld_error(ld, n, "choose one of cookie or client_ip");
    /* cookie attributes: Max-Age (default: a session cookie) and SameSite (default Lax) */
    static const char *const same_site[] = {"Lax", "Strict", "None", NULL};
    int v;
    b->affinity_same_site = "Lax";
    if (ld_enum(ld, n, "same_site", same_site, &v) == 1)
        b->affinity_same_site = same_site[v];
    ld_duration(ld, n, "ttl", 1000, 3650ULL * 24 * 3600 * 1000, &b->affinity_ttl_ms);
    static const char *const cookie_only[] = {"ttl", "same_site"};
    for (size_t i = 0; i < 2; i++)
        if (b->affinity_cookie == NULL && ld_get(ld, n, cookie_only[i]) != NULL)
            ld_error_key(ld, ld_get(ld, n, cookie_only[i]), cookie_only[i],
                         "%s is only used with affinity.cookie", cookie_only[i]);
}

static void ld_load_keepalive(struct ld *ld, yaml_node_t *n, struct cfg_backend *b)
{
    if (!ld_check_map(ld, n, keepalive_keys))
        return;
    if (!ld_is_http(b->protocol))
        ld_error(ld, n, "keepalive needs an http or https backend");
    ld_int(ld, n, "max_idle", 0, 65536, &b->keepalive_max_idle);
    ld_duration(ld, n, "idle_timeout", 1, LD_DURATION_MAX, &b->keepalive_idle_timeout_ms);
}

/* Calls fn on the value of `key` with the key pushed on the path, when present. */
static void ld_section(struct ld *ld, yaml_node_t *map, const char *key,
                       void (*fn)(struct ld *, yaml_node_t *, struct cfg_backend *),
                       struct cfg_backend *b)
{
    yaml_node_t *v = ld_get(ld, map, key);
    if (v == NULL)
        return;
    size_t mark = ld_push_key(ld, key);
    fn(ld, v, b);
    ld_pop(ld, mark);
}

static void ld_backend_defaults(struct cfg_backend *b, yaml_node_t *n)
{
    b->protocol = PROTO_TCP;
    b->balance = BAL_ROUND_ROBIN;
    b->hash_key = HASH_CLIENT_IP;
    b->connect_timeout_ms = 5000;
    b->timeout_ms = 60000;
    b->retries = 2;
    b->drain_timeout_ms = 30000;
    b->proxy_protocol = PP_NONE;
    b->tls.verify = true;
    b->health.interval_ms = 5000;
    b->health.timeout_ms = 2000;
    b->health.healthy_threshold = 2;
    b->health.unhealthy_threshold = 3;
    b->health.expect_status_lo = 200;
    b->health.expect_status_hi = 399;
    b->keepalive_max_idle = 64;
    b->http.version = 1;
    b->keepalive_idle_timeout_ms = 60000;
    b->line = (int)ld_line(n);
}

/* The backend `http` block. */
static void ld_load_backend_http(struct ld *ld, yaml_node_t *n, struct cfg_backend *b)
{
    static const char *const keys[] = {"version", "host", "response_timeout",
                                       "max_requests_per_connection", NULL};
    static const char *const versions[] = {"1.1", "2", NULL};
    if (!ld_check_map(ld, n, keys))
        return;
    if (!ld_is_http(b->protocol))
        ld_error(ld, n, "http settings need protocol http or https (protocol is %s)",
                 cfg_protocol_name(b->protocol));
    int v;
    if (ld_enum(ld, n, "version", versions, &v) == 1)
        b->http.version = v + 1;
    if (ld_str(ld, n, "host", &b->http.host) == 1 && b->http.host[0] == '\0') {
        free(b->http.host);
        b->http.host = NULL;
    } else if (b->http.host && strpbrk(b->http.host, " \t\r\n,") != NULL) {
        ld_error_key(ld, ld_get(ld, n, "host"), "host", "invalid host '%s'", b->http.host);
    }
    ld_duration(ld, n, "response_timeout", 1, LD_DURATION_MAX, &b->http.response_timeout_ms);
    ld_int(ld, n, "max_requests_per_connection", 0, 2147483647,
           &b->http.max_requests_per_connection);
}

/* Checks backend idx's name and indexes it for ld_backend_ref: the first backend of a
 * name is the one references resolve to, invalid names included (they are reported
 * here, not again as unknown backends). */
static void ld_backend_name(struct ld *ld, yaml_node_t *nn, struct cfg_backend *b, size_t idx)
{
    uint64_t j;
    bool valid = ld_valid_name(b->name);

    if (!valid)
        ld_error_key(ld, nn, "name", "invalid name '%s' (use 1-64 of A-Z a-z 0-9 _ . -)", b->name);
    if (!ld_index_add(ld, &ld->backend_names, b->name, strlen(b->name), idx, &j) && valid)
        ld_error_key(ld, nn, "name", "duplicate backend name '%s' (first defined on line %d)",
                     b->name, ld->cfg->backends[j].line);
}

static void ld_load_backend(struct ld *ld, yaml_node_t *n, size_t idx)
{
    static const char *const balances[] = {"round_robin", "least_connections", "random_two",
                                           "consistent_hash", NULL};
    static const char *const pps[] = {"none", "v1", "v2", NULL};
    struct cfg_backend *b = &ld->cfg->backends[idx];
    int v;

    ld_backend_defaults(b, n);
    if (!ld_check_map(ld, n, backend_keys))
        return;
    if (ld_str(ld, n, "name", &b->name) == 0)
        ld_error(ld, n, "missing required key 'name'");
    else if (b->name != NULL)
        ld_backend_name(ld, ld_get(ld, n, "name"), b, idx);
    ld_protocol(ld, n, "protocol", &b->protocol);
    b->health.type = b->protocol;
    b->health.path = ld_strdup(ld, "/");

    yaml_node_t *servers = ld_get(ld, n, "servers");
    if (servers == NULL) {
        ld_error(ld, n, "missing required key 'servers'");
    } else {
        size_t mark = ld_push_key(ld, "servers");
        ld_load_servers(ld, servers, b);
        ld_pop(ld, mark);
    }
    if (ld_enum(ld, n, "balance", balances, &v) == 1)
        b->balance = (enum cfg_balance)v;
    ld_load_hash_key(ld, n, b);
    ld_duration(ld, n, "connect_timeout", 1, LD_DURATION_MAX, &b->connect_timeout_ms);
    ld_duration(ld, n, "timeout", 1, LD_DURATION_MAX, &b->timeout_ms);
    ld_int(ld, n, "retries", 0, 16, &b->retries);
    ld_duration(ld, n, "drain_timeout", 1000, 24ULL * 3600 * 1000, &b->drain_timeout_ms);
    ld_int(ld, n, "max_connections_per_server", 0, 2147483647, &b->max_connections_per_server);
    if (ld_enum(ld, n, "proxy_protocol", pps, &v) == 1)
        b->proxy_protocol = v == 0 ? PP_NONE : v == 1 ? PP_V1 : PP_V2;
    ld_section(ld, n, "tls", ld_load_backend_tls, b);
    ld_section(ld, n, "health", ld_load_health, b);
    ld_section(ld, n, "affinity", ld_load_affinity, b);
    ld_section(ld, n, "keepalive", ld_load_keepalive, b);
    b->http.response_timeout_ms = b->timeout_ms;
    ld_section(ld, n, "http", ld_load_backend_http, b);
    if (b->http.version == 2 && b->proxy_protocol != PP_NONE)
        ld_error_key(ld, ld_get(ld, n, "proxy_protocol"), "proxy_protocol",
                     "proxy_protocol cannot be used with http.version 2 (one connection "
                     "carries the requests of many clients)");
    ld_refuse_http(ld, n, b->protocol);
}

void ld_load_backends(struct ld *ld, yaml_node_t *seq)
{
    long n = ld_seq_len(ld, seq);
    if (n <= 0)
        return;
    ld->cfg->backends = ld_calloc(ld, (size_t)n, sizeof(*ld->cfg->backends));
    if (ld->cfg->backends == NULL)
        return;
    ld->cfg->n_backends = (size_t)n;
    for (size_t i = 0; i < ld->cfg->n_backends; i++) {
        yaml_node_t *item = ld_seq_item(ld, seq, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        ld_load_backend(ld, item, i);
        ld_pop(ld, mark);
    }
}
