/* Loading `listeners`: bind addresses, protocol, TLS termination settings, hosts, the
 * default backend and routes. Backends are loaded first so references resolve here.
 * The caller has pushed "listeners" on the key path. */
#include "config/load_internal.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char *const listener_keys[] = {"name",
                                            "bind",
                                            "protocol",
                                            "idle_timeout",
                                            "max_connections",
                                            "proxy_protocol",
                                            "proxy_protocol_timeout",
                                            "tls",
                                            "hosts",
                                            "backend",
                                            "routes",
                                            "client_hello_timeout",
                                            "client_hello_max",
                                            "http",
                                            NULL};
static const char *const lhttp_keys[] = {"max_header_size",
                                         "max_headers",
                                         "max_body_size",
                                         "header_timeout",
                                         "body_timeout",
                                         "keepalive_requests",
                                         "forwarded",
                                         "trust_forwarded",
                                         "request_id",
                                         "error_pages",
                                         "h2c",
                                         "http2",
                                         "tunnel_idle_timeout",
                                         "sni_host_check",
                                         NULL};
static const char *const ltls_keys[] = {
    "certificates", "min_version",       "ciphers", "ciphersuites", "alpn", "session_tickets",
    "client_auth",  "handshake_timeout", NULL};
static const char *const cert_keys[] = {"cert", "key", NULL};
static const char *const client_auth_keys[] = {"mode", "ca", "crl", NULL};

int ld_backend_ref(struct ld *ld, yaml_node_t *at, const char *name, enum cfg_protocol lproto)
{
    uint64_t found;
    if (!ld_index_find(&ld->backend_names, name, strlen(name), &found)) {
        ld_error(ld, at, "unknown backend '%s'", name);
        return -1;
    }
    int idx = (int)found;
    enum cfg_protocol bp = ld->cfg->backends[idx].protocol;
    if (ld_is_http(lproto) != ld_is_http(bp)) {
        ld_error(ld, at, "backend '%s' has protocol %s; a %s listener needs %s backends", name,
                 cfg_protocol_name(bp), cfg_protocol_name(lproto),
                 ld_is_http(lproto) ? "http or https" : "tcp or tls");
        return -1;
    }
    return idx;
}

/* Has bind bi of listener li been bound by an earlier listener or bind entry? Indexes
 * it when not. */
static void ld_check_bind_dup(struct ld *ld, yaml_node_t *at, struct cfg_listener *l, size_t li,
                              size_t bi)
{
    const struct net_addr *a = &l->binds[bi];
    unsigned char key[sizeof(struct sockaddr_in6) + 1];
    size_t len = 0;
    uint64_t first;

    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
        key[len++] = 6;
        memcpy(key + len, &v6->sin6_addr, sizeof(v6->sin6_addr));
        len += sizeof(v6->sin6_addr);
        memcpy(key + len, &v6->sin6_scope_id, sizeof(v6->sin6_scope_id));
        len += sizeof(v6->sin6_scope_id);
        memcpy(key + len, &v6->sin6_port, sizeof(v6->sin6_port));
        len += sizeof(v6->sin6_port);
    } else if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
        key[len++] = 4;
        memcpy(key + len, &v4->sin_addr, sizeof(v4->sin_addr));
        len += sizeof(v4->sin_addr);
        memcpy(key + len, &v4->sin_port, sizeof(v4->sin_port));
        len += sizeof(v4->sin_port);
    } else {
        return; /* addr_equal() matches no other family */
    }
    if (ld_index_add(ld, &ld->binds, key, len, (uint64_t)li << 32 | bi, &first))
        return;
    size_t j = (size_t)(first >> 32), k = (size_t)(first & 0xffffffffu);
    const struct net_addr *o = &ld->cfg->listeners[j].binds[k];
    ld_error(ld, at, "address '%s:%u' is already bound by listeners[%zu]", o->host,
             (unsigned)o->port, j);
}

static void ld_load_bind_one(struct ld *ld, yaml_node_t *n, struct cfg_listener *l, size_t li,
                             size_t bi)
{
    char *s = NULL;
    const char *err = NULL;
    if (ld_node_str(ld, n, &s) < 0)
        return;
    if (addr_parse(s, &l->binds[bi], &err) < 0)
        ld_error(ld, n, "%s", err);
    else if (l->binds[bi].is_name)
        ld_error(ld, n, "bind needs an IP address or '*', not a host name");
    else
        ld_check_bind_dup(ld, n, l, li, bi);
    if (l->binds[bi].is_name)
        memset(&l->binds[bi], 0, sizeof(l->binds[bi]));
    free(s);
}

/* bind: one address or a list of them; never DNS names. */
static void ld_load_bind(struct ld *ld, yaml_node_t *n, struct cfg_listener *l, size_t li)
{
    if (ld_scalar(n) != NULL && !ld_is_null(n)) {
        l->binds = ld_calloc(ld, 1, sizeof(*l->binds));
        if (l->binds == NULL)
            return;
        l->n_binds = 1;
        ld_load_bind_one(ld, n, l, li, 0);
        return;
    }
    long len = ld_seq_len(ld, n);
    if (len < 0)
        return;
    if (len == 0) {
        ld_error(ld, n, "at least one address is required");
        return;
    }
    l->binds = ld_calloc(ld, (size_t)len, sizeof(*l->binds));
    if (l->binds == NULL)
        return;
    l->n_binds = (size_t)len;
    for (size_t i = 0; i < l->n_binds; i++) {
        yaml_node_t *item = ld_seq_item(ld, n, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        ld_load_bind_one(ld, item, l, li, i);
        ld_pop(ld, mark);
    }
}

static void ld_load_certificates(struct ld *ld, yaml_node_t *n, struct cfg_listener_tls *t)
{
    long len = ld_seq_len(ld, n);
    if (len < 0)
        return;
    if (len == 0) {
        ld_error(ld, n, "at least one certificate is required");
        return;
    }
    t->certificates = ld_calloc(ld, (size_t)len, sizeof(*t->certificates));
    if (t->certificates == NULL)
        return;
    t->n_certificates = (size_t)len;
    for (size_t i = 0; i < t->n_certificates; i++) {
        yaml_node_t *item = ld_seq_item(ld, n, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        if (ld_check_map(ld, item, cert_keys)) {
            if (ld_path(ld, item, "cert", &t->certificates[i].cert) == 0)
                ld_error(ld, item, "missing required key 'cert'");
            if (ld_path(ld, item, "key", &t->certificates[i].key) == 0)
                ld_error(ld, item, "missing required key 'key'");
        }
        ld_pop(ld, mark);
    }
}

static void ld_load_client_auth(struct ld *ld, yaml_node_t *n, struct cfg_listener_tls *t)
{
    static const char *const modes[] = {"none", "optional", "required", NULL};
    int v = 0;
    if (!ld_check_map(ld, n, client_auth_keys))
        return;
    if (ld_enum(ld, n, "mode", modes, &v) == 1)
        t->client_auth = (enum cfg_client_auth)v;
    ld_path(ld, n, "ca", &t->client_ca);
    ld_path(ld, n, "crl", &t->client_crl);
    if (t->client_auth != CLIENT_AUTH_NONE && ld_get(ld, n, "ca") == NULL)
        ld_error(ld, n, "missing required key 'ca' (client_auth mode is %s)",
                 modes[t->client_auth]);
}

static void ld_load_listener_tls(struct ld *ld, yaml_node_t *n, struct cfg_listener *l)
{
    static const char *const versions[] = {"1.2", "1.3", NULL};
    struct cfg_listener_tls *t = &l->tls;
    yaml_node_t *v;
    int ver;

    if (!ld_check_map(ld, n, ltls_keys))
        return;
    l->has_tls = true;
    if (l->protocol != PROTO_TLS && l->protocol != PROTO_HTTPS)
        ld_error(ld, n, "tls settings need protocol tls or https (protocol is %s)",
                 cfg_protocol_name(l->protocol));
    if ((v = ld_get(ld, n, "certificates")) != NULL) {
        size_t mark = ld_push_key(ld, "certificates");
        ld_load_certificates(ld, v, t);
        ld_pop(ld, mark);
    } else if (l->protocol == PROTO_TLS || l->protocol == PROTO_HTTPS) {
        ld_error(ld, n, "missing required key 'certificates'");
    }
    if (ld_enum(ld, n, "min_version", versions, &ver) == 1)
        t->min_version = ver == 0 ? 0x0303 : 0x0304;
    ld_str(ld, n, "ciphers", &t->ciphers);
    ld_str(ld, n, "ciphersuites", &t->ciphersuites);
    if (ld_strings(ld, n, "alpn", &t->alpn) == 1) {
        yaml_node_t *an = ld_get(ld, n, "alpn");
        for (size_t i = 0; i < t->alpn.count; i++) {
            if (strlen(t->alpn.items[i]) > 255)
                ld_error_key(ld, an, "alpn", "protocol names are at most 255 bytes");
            else if (l->protocol == PROTO_HTTPS && strcmp(t->alpn.items[i], "http/1.1") != 0 &&
                     strcmp(t->alpn.items[i], "h2") != 0)
                ld_error_key(ld, an, "alpn", "an https listener speaks h2 and http/1.1, not %s",
                             t->alpn.items[i]);
        }
    } else if (ld_get(ld, n, "alpn") == NULL && l->protocol == PROTO_HTTPS) {
        t->alpn.items = ld_calloc(ld, 2, sizeof(char *));
        if (t->alpn.items != NULL) {
            t->alpn.items[0] = ld_strdup(ld, "h2");
            t->alpn.items[1] = ld_strdup(ld, "http/1.1");
            t->alpn.count = 2;
        }
    }
    ld_bool(ld, n, "session_tickets", &t->session_tickets);
    if ((v = ld_get(ld, n, "client_auth")) != NULL) {
        size_t mark = ld_push_key(ld, "client_auth");
        ld_load_client_auth(ld, v, t);
        ld_pop(ld, mark);
    }
    ld_duration(ld, n, "handshake_timeout", 1, LD_DURATION_MAX, &t->handshake_timeout_ms);
}

static void ld_load_hosts(struct ld *ld, yaml_node_t *map, struct cfg_listener *l)
{
    yaml_node_t *n = ld_get(ld, map, "hosts");
    if (ld_strings(ld, map, "hosts", &l->hosts) != 1)
        return;
    size_t mark = ld_push_key(ld, "hosts");
    if (l->protocol == PROTO_TCP)
        ld_error(ld, n,
                 "hosts needs a tls, http or https listener (on tcp, use routes with "
                 "match.sni)");
    for (size_t i = 0; i < l->hosts.count; i++) {
        char *h = l->hosts.items[i];
        if (!ld_valid_host_pattern(h)) {
            ld_error(ld, n, "invalid host name '%s' (expected a name or *.suffix)", h);
            continue;
        }
        for (char *p = h; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    ld_pop(ld, mark);
}

static void ld_listener_defaults(struct cfg_listener *l, yaml_node_t *n)
{
    l->protocol = PROTO_TCP;
    l->idle_timeout_ms = 4 * 60000;
    l->proxy_protocol_timeout_ms = 5000;
    l->backend_index = -1;
    l->client_hello_timeout_ms = 5000;
    l->client_hello_max = 16 * 1024;
    l->tls.min_version = 0x0303;
    l->tls.session_tickets = true;
    l->tls.client_auth = CLIENT_AUTH_NONE;
    l->tls.handshake_timeout_ms = 10000;
    l->http.max_header_size = 32 * 1024;
    l->http.max_headers = 100;
    l->http.header_timeout_ms = 10000;
    l->http.body_timeout_ms = 60000;
    l->http.keepalive_requests = 1000;
    l->http.forwarded = FWD_X_FORWARDED;
    l->http.tunnel_idle_timeout_ms = 3600 * 1000;
    l->http.sni_host_check = true;
    l->http.h2_max_streams = 100;
    l->http.h2_window = 64 * 1024;
    l->http.h2_max_header_list = 32 * 1024;
    l->line = (int)ld_line(n);
}

/* The listener `http` block (shared/spec/http.md). Keys of later issues (HTTP/2, the
 * SNI/Host check of https) are refused with "not supported yet". */
static void ld_load_listener_http(struct ld *ld, yaml_node_t *n, struct cfg_listener *l)
{
    static const char *const fwds[] = {"x_forwarded", "forwarded", "none", NULL};
    static const char *const h2_keys[] = {"max_concurrent_streams", "initial_window_size",
                                          "max_header_list_size", NULL};
    if (!ld_check_map(ld, n, lhttp_keys))
        return;
    if (!ld_is_http(l->protocol))
        ld_error(ld, n, "http settings need protocol http or https (protocol is %s)",
                 cfg_protocol_name(l->protocol));
    uint64_t v = l->http.max_header_size;
    if (ld_size(ld, n, "max_header_size", 1024, 1024 * 1024, &v) == 1)
        l->http.max_header_size = (size_t)v;
    ld_int(ld, n, "max_headers", 1, 1000, &l->http.max_headers);
    ld_size(ld, n, "max_body_size", 0, UINT64_MAX, &l->http.max_body_size);
    ld_duration(ld, n, "header_timeout", 1, LD_DURATION_MAX, &l->http.header_timeout_ms);
    ld_duration(ld, n, "body_timeout", 1, LD_DURATION_MAX, &l->http.body_timeout_ms);
    ld_int(ld, n, "keepalive_requests", 1, 2147483647, &l->http.keepalive_requests);
    int e;
    if (ld_enum(ld, n, "forwarded", fwds, &e) == 1)
        l->http.forwarded = (enum cfg_forwarded)e;
    ld_bool(ld, n, "trust_forwarded", &l->http.trust_forwarded);
    char *rid = NULL;
    if (ld_str(ld, n, "request_id", &rid) == 1) {
        free(l->http.request_id);
        l->http.request_id = NULL;
        if (rid[0] && !ld_valid_token(rid))
            ld_error_key(ld, ld_get(ld, n, "request_id"), "request_id", "invalid header name '%s'",
                         rid);
        if (rid[0])
            l->http.request_id = rid;
        else
            free(rid);
    }
    ld_duration(ld, n, "tunnel_idle_timeout", 1, LD_DURATION_MAX, &l->http.tunnel_idle_timeout_ms);
    ld_load_error_pages(ld, n, "error_pages", &l->http);
    if (ld_bool(ld, n, "sni_host_check", &l->http.sni_host_check) == 1 &&
        l->protocol != PROTO_HTTPS)
        ld_error_key(ld, ld_get_keynode(ld, n, "sni_host_check"), "sni_host_check",
                     "sni_host_check needs an https listener (protocol is %s)",
                     cfg_protocol_name(l->protocol));
    if (ld_bool(ld, n, "h2c", &l->http.h2c) == 1 && l->protocol != PROTO_HTTP)
        ld_error_key(ld, ld_get_keynode(ld, n, "h2c"), "h2c",
                     "h2c needs an http listener (https negotiates h2 by ALPN)");
    yaml_node_t *h2 = ld_get(ld, n, "http2");
    size_t mark = h2 ? ld_push_key(ld, "http2") : 0;
    if (h2 && ld_check_map(ld, h2, h2_keys)) {
        uint64_t v;
        ld_int(ld, h2, "max_concurrent_streams", 1, 10000, &l->http.h2_max_streams);
        v = l->http.h2_window;
        if (ld_size(ld, h2, "initial_window_size", 1024, 2147483647, &v) == 1)
            l->http.h2_window = (uint32_t)v;
        v = l->http.h2_max_header_list;
        if (ld_size(ld, h2, "max_header_list_size", 1024, 16 * 1024 * 1024, &v) == 1)
            l->http.h2_max_header_list = (uint32_t)v;
    }
    if (h2)
        ld_pop(ld, mark);
}

static void ld_load_name(struct ld *ld, yaml_node_t *n, struct cfg_listener *l, size_t idx)
{
    if (ld_str(ld, n, "name", &l->name) == 0) {
        ld_error(ld, n, "missing required key 'name'");
        return;
    }
    if (l->name == NULL)
        return;
    yaml_node_t *nn = ld_get(ld, n, "name");
    if (!ld_valid_name(l->name)) {
        ld_error_key(ld, nn, "name", "invalid name '%s' (use 1-64 of A-Z a-z 0-9 _ . -)", l->name);
        return;
    }
    uint64_t j;
    if (!ld_index_add(ld, &ld->listener_names, l->name, strlen(l->name), idx, &j))
        ld_error_key(ld, nn, "name", "duplicate listener name '%s' (first defined on line %d)",
                     l->name, ld->cfg->listeners[j].line);
}

static void ld_load_listener(struct ld *ld, yaml_node_t *n, size_t idx)
{
    static const char *const pps[] = {"none", "accept", NULL};
    struct cfg_listener *l = &ld->cfg->listeners[idx];
    yaml_node_t *v;
    size_t mark;
    int e;

    ld_listener_defaults(l, n);
    if (!ld_check_map(ld, n, listener_keys))
        return;
    ld_load_name(ld, n, l, idx);
    ld_protocol(ld, n, "protocol", &l->protocol);
    if ((v = ld_get(ld, n, "bind")) == NULL) {
        ld_error(ld, n, "missing required key 'bind'");
    } else {
        mark = ld_push_key(ld, "bind");
        ld_load_bind(ld, v, l, idx);
        ld_pop(ld, mark);
    }
    ld_duration(ld, n, "idle_timeout", 1, LD_DURATION_MAX, &l->idle_timeout_ms);
    ld_int(ld, n, "max_connections", 0, 2147483647, &l->max_connections);
    if (ld_enum(ld, n, "proxy_protocol", pps, &e) == 1)
        l->proxy_protocol_accept = e == 1;
    ld_duration(ld, n, "proxy_protocol_timeout", 1, LD_DURATION_MAX, &l->proxy_protocol_timeout_ms);
    ld_duration(ld, n, "client_hello_timeout", 1, LD_DURATION_MAX, &l->client_hello_timeout_ms);
    uint64_t chm = l->client_hello_max;
    if (ld_size(ld, n, "client_hello_max", 1024, 1024 * 1024, &chm) == 1)
        l->client_hello_max = (size_t)chm;
    if ((v = ld_get(ld, n, "tls")) != NULL) {
        mark = ld_push_key(ld, "tls");
        ld_load_listener_tls(ld, v, l);
        ld_pop(ld, mark);
    } else if (l->protocol == PROTO_TLS || l->protocol == PROTO_HTTPS) {
        ld_error(ld, n, "protocol %s needs tls.certificates", cfg_protocol_name(l->protocol));
    }
    ld_load_hosts(ld, n, l);
    if (ld_str(ld, n, "backend", &l->backend) == 1) {
        mark = ld_push_key(ld, "backend");
        l->backend_index = ld_backend_ref(ld, ld_get(ld, n, "backend"), l->backend, l->protocol);
        ld_pop(ld, mark);
    }
    if ((v = ld_get(ld, n, "routes")) != NULL) {
        mark = ld_push_key(ld, "routes");
        ld_load_routes(ld, v, l);
        ld_pop(ld, mark);
    }
    if (ld_get(ld, n, "backend") == NULL && (v == NULL || ld_seq_len_quiet(v) == 0))
        ld_error(ld, n, "a listener needs a backend or routes");
    if (ld_is_http(l->protocol))
        l->http.request_id = ld_strdup(ld, "X-Request-Id");
    if ((v = ld_get(ld, n, "http")) != NULL) {
        mark = ld_push_key(ld, "http");
        ld_load_listener_http(ld, v, l);
        ld_pop(ld, mark);
    }
    ld_refuse_http(ld, n, l->protocol);
}

void ld_load_listeners(struct ld *ld, yaml_node_t *seq)
{
    long n = ld_seq_len(ld, seq);
    if (n <= 0) /* none is valid: sluice then serves the admin API only */
        return;
    ld->cfg->listeners = ld_calloc(ld, (size_t)n, sizeof(*ld->cfg->listeners));
    if (ld->cfg->listeners == NULL)
        return;
    ld->cfg->n_listeners = (size_t)n;
    for (size_t i = 0; i < ld->cfg->n_listeners; i++) {
        yaml_node_t *item = ld_seq_item(ld, seq, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        ld_load_listener(ld, item, i);
        ld_pop(ld, mark);
    }
}
