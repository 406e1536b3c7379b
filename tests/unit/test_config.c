/* Unit tests for the config loader (src/config/): a full valid file with every tcp/tls
 * key, defaults, each class of error with its exact message, error ordering,
 * did-you-mean hints, reference counting and loading from a file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

#define NAME "sluice.yaml"

static struct config *load_as(const char *name, const char *yaml, struct cfg_errors *e)
{
    return config_load_buffer(name, yaml, strlen(yaml), e);
}

/* Loads `yaml` and checks that it fails with exactly the messages in `want`. */
static void expect_errors(const char *yaml, const char *const *want)
{
    struct cfg_errors e = {0};
    struct config *c = load_as(NAME, yaml, &e);
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    if (e.count != n) {
        for (size_t i = 0; i < e.count; i++)
            print_error("got: %s\n", e.items[i]);
    }
    assert_null(c);
    assert_int_equal(e.count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(e.items[i], want[i]);
    cfg_errors_free(&e);
    assert_null(e.items);
    assert_int_equal(e.count, 0);
}

#define EXPECT_ERRORS(yaml, ...)                                                                   \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__, NULL};                                           \
        expect_errors(yaml, want_);                                                                \
    } while (0)

/* A valid tail so snippets under test only show what matters. */
#define BACKEND_B "backends:\n  - name: b\n    servers: [127.0.0.1:8080]\n"
#define LISTENER_L "listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"

static struct config *load_ok(const char *name, const char *yaml)
{
    struct cfg_errors e = {0};
    struct config *c = load_as(name, yaml, &e);
    for (size_t i = 0; i < e.count; i++)
        print_error("unexpected: %s\n", e.items[i]);
    assert_int_equal(e.count, 0);
    assert_non_null(c);
    cfg_errors_free(&e);
    return c;
}

/* Asserts a backend's connection timeouts and limits. */
static void expect_backend_limits(const struct cfg_backend *b, uint64_t connect_timeout_ms,
                                  uint64_t timeout_ms, int retries, uint64_t drain_timeout_ms,
                                  int max_connections_per_server,
                                  enum cfg_proxy_protocol proxy_protocol)
{
    assert_int_equal(b->connect_timeout_ms, connect_timeout_ms);
    assert_int_equal(b->timeout_ms, timeout_ms);
    assert_int_equal(b->retries, retries);
    assert_int_equal(b->drain_timeout_ms, drain_timeout_ms);
    assert_int_equal(b->max_connections_per_server, max_connections_per_server);
    assert_int_equal(b->proxy_protocol, proxy_protocol);
}

/* Asserts a backend's health check settings. */
static void expect_health(const struct cfg_health *h, bool enabled, enum cfg_protocol type,
                          uint64_t interval_ms, uint64_t timeout_ms, int healthy_threshold,
                          int unhealthy_threshold)
{
    assert_int_equal(h->enabled, enabled);
    assert_int_equal(h->type, type);
    assert_int_equal(h->interval_ms, interval_ms);
    assert_int_equal(h->timeout_ms, timeout_ms);
    assert_int_equal(h->healthy_threshold, healthy_threshold);
    assert_int_equal(h->unhealthy_threshold, unhealthy_threshold);
}

static const char full_yaml[] = "workers: 3\n"
                                "max_connections: 1000\n"
                                "shutdown_timeout: 1m30s\n"
                                "log:\n"
                                "  access: logs/access.log\n"
                                "  format: text\n"
                                "  level: debug\n"
                                "admin:\n"
                                "  bind: \"[::1]:9901\"\n"
                                "  token_file: admin.token\n"
                                "listeners:\n"
                                "  - name: tls-front\n"
                                "    bind: [\"*:8443\", \"[::1]:8443\"]\n"
                                "    protocol: tls\n"
                                "    idle_timeout: 10m\n"
                                "    max_connections: 500\n"
                                "    proxy_protocol: accept\n"
                                "    proxy_protocol_timeout: 3s\n"
                                "    tls:\n"
                                "      certificates:\n"
                                "        - cert: certs/site.pem\n"
                                "          key: certs/site.key\n"
                                "        - {cert: /abs/other.pem, key: /abs/other.key}\n"
                                "      min_version: \"1.3\"\n"
                                "      ciphers: ECDHE+AESGCM\n"
                                "      ciphersuites: TLS_AES_128_GCM_SHA256\n"
                                "      alpn: [redis, x-proto]\n"
                                "      session_tickets: false\n"
                                "      handshake_timeout: 7s\n"
                                "      client_auth:\n"
                                "        mode: required\n"
                                "        ca: certs/clients-ca.pem\n"
                                "        crl: certs/clients.crl\n"
                                "    hosts: [\"Example.com\", \"*.example.org\"]\n"
                                "    backend: db\n"
                                "  - name: passthrough\n"
                                "    bind: 127.0.0.1:9443\n"
                                "    protocol: tcp\n"
                                "    client_hello_timeout: 2s\n"
                                "    client_hello_max: 32k\n"
                                "    routes:\n"
                                "      - match: {sni: \"*.DB.example.com\"}\n"
                                "        backend: db\n"
                                "      - match: {alpn: h2}\n"
                                "        backend: secure\n"
                                "      - backend: secure\n"
                                "backends:\n"
                                "  - name: db\n"
                                "    protocol: tcp\n"
                                "    servers:\n"
                                "      - address: 10.0.0.5:5432\n"
                                "        weight: 10\n"
                                "      - address: db2.internal:5432\n"
                                "        backup: true\n"
                                "      - \"[::1]:5433\"\n"
                                "    balance: consistent_hash\n"
                                "    hash_key: client_ip\n"
                                "    connect_timeout: 1s\n"
                                "    timeout: 2m\n"
                                "    retries: 0\n"
                                "    drain_timeout: 1h\n"
                                "    max_connections_per_server: 100\n"
                                "    proxy_protocol: v2\n"
                                "    health:\n"
                                "      interval: 500ms\n"
                                "      timeout: 250ms\n"
                                "      healthy_threshold: 1\n"
                                "      unhealthy_threshold: 5\n"
                                "      send: \"PING\\r\\n\\0\"\n"
                                "      expect: \"+PONG\"\n"
                                "    affinity: {client_ip: true}\n"
                                "  - name: secure\n"
                                "    protocol: tls\n"
                                "    servers: [secure.internal:443]\n"
                                "    balance: least_connections\n"
                                "    proxy_protocol: v1\n"
                                "    tls:\n"
                                "      verify: false\n"
                                "      ca: ca/internal.pem\n"
                                "      sni: api.internal\n"
                                "      cert: client.pem\n"
                                "      key: client.key\n"
                                "    health: {type: tls, host: api.internal}\n";

static void test_full_example(void **state)
{
    (void)state;
    struct config *c = load_ok("/etc/sluice/sluice.yaml", full_yaml);
    char buf[ADDR_TEXT_MAX];

    assert_int_equal(c->refs, 1);
    assert_string_equal(c->path, "/etc/sluice/sluice.yaml");
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->max_connections, 1000);
    assert_int_equal(c->shutdown_timeout_ms, 90000);
    assert_string_equal(c->log.access, "/etc/sluice/logs/access.log");
    assert_int_equal(c->log.format, LOG_FORMAT_TEXT);
    assert_int_equal(c->log.level, LOG_DEBUG);
    assert_true(c->admin.enabled);
    addr_format((struct sockaddr *)&c->admin.bind.ss, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:9901");
    assert_string_equal(c->admin.token_file, "/etc/sluice/admin.token");

    assert_int_equal(c->n_listeners, 2);
    struct cfg_listener *l = &c->listeners[0];
    assert_string_equal(l->name, "tls-front");
    assert_int_equal(l->line, 12);
    assert_int_equal(l->n_binds, 2);
    assert_true(l->binds[0].is_wildcard);
    assert_int_equal(l->binds[0].port, 8443);
    addr_format((struct sockaddr *)&l->binds[1].ss, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:8443");
    assert_int_equal(l->protocol, PROTO_TLS);
    assert_int_equal(l->idle_timeout_ms, 600000);
    assert_int_equal(l->max_connections, 500);
    assert_true(l->proxy_protocol_accept);
    assert_int_equal(l->proxy_protocol_timeout_ms, 3000);
    assert_true(l->has_tls);
    assert_int_equal(l->tls.n_certificates, 2);
    assert_string_equal(l->tls.certificates[0].cert, "/etc/sluice/certs/site.pem");
    assert_string_equal(l->tls.certificates[0].key, "/etc/sluice/certs/site.key");
    assert_string_equal(l->tls.certificates[1].cert, "/abs/other.pem");
    assert_string_equal(l->tls.certificates[1].key, "/abs/other.key");
    assert_int_equal(l->tls.min_version, 0x0304);
    assert_string_equal(l->tls.ciphers, "ECDHE+AESGCM");
    assert_string_equal(l->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    assert_int_equal(l->tls.alpn.count, 2);
    assert_string_equal(l->tls.alpn.items[0], "redis");
    assert_string_equal(l->tls.alpn.items[1], "x-proto");
    assert_false(l->tls.session_tickets);
    assert_int_equal(l->tls.handshake_timeout_ms, 7000);
    assert_int_equal(l->tls.client_auth, CLIENT_AUTH_REQUIRED);
    assert_string_equal(l->tls.client_ca, "/etc/sluice/certs/clients-ca.pem");
    assert_string_equal(l->tls.client_crl, "/etc/sluice/certs/clients.crl");
    assert_int_equal(l->hosts.count, 2);
    assert_string_equal(l->hosts.items[0], "example.com");
    assert_string_equal(l->hosts.items[1], "*.example.org");
    assert_string_equal(l->backend, "db");
    assert_int_equal(l->backend_index, 0);
    assert_int_equal(l->n_routes, 0);

    l = &c->listeners[1];
    assert_string_equal(l->name, "passthrough");
    assert_int_equal(l->protocol, PROTO_TCP);
    assert_int_equal(l->n_binds, 1);
    assert_false(l->binds[0].is_wildcard);
    addr_format((struct sockaddr *)&l->binds[0].ss, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:9443");
    assert_false(l->has_tls);
    assert_int_equal(l->client_hello_timeout_ms, 2000);
    assert_int_equal(l->client_hello_max, 32768);
    assert_null(l->backend);
    assert_int_equal(l->backend_index, -1);
    assert_int_equal(l->n_routes, 3);
    assert_string_equal(l->routes[0].sni, "*.db.example.com");
    assert_int_equal(l->routes[0].action, ROUTE_BACKEND);
    assert_int_equal(l->routes[0].backend_index, 0);
    assert_int_equal(l->routes[0].line, 42);
    assert_null(l->routes[1].sni);
    assert_string_equal(l->routes[1].alpn, "h2");
    assert_string_equal(l->routes[1].backend, "secure");
    assert_int_equal(l->routes[1].backend_index, 1);
    assert_null(l->routes[2].sni);
    assert_null(l->routes[2].alpn);
    assert_int_equal(l->routes[2].backend_index, 1);

    assert_int_equal(c->n_backends, 2);
    struct cfg_backend *b = &c->backends[0];
    assert_string_equal(b->name, "db");
    assert_int_equal(b->line, 48);
    assert_int_equal(b->protocol, PROTO_TCP);
    assert_int_equal(b->n_servers, 3);
    assert_string_equal(b->servers[0].address, "10.0.0.5:5432");
    assert_int_equal(b->servers[0].weight, 10);
    assert_false(b->servers[0].backup);
    assert_false(b->servers[0].addr.is_name);
    assert_int_equal(b->servers[0].line, 51);
    assert_string_equal(b->servers[1].address, "db2.internal:5432");
    assert_true(b->servers[1].addr.is_name);
    assert_string_equal(b->servers[1].addr.host, "db2.internal");
    assert_int_equal(b->servers[1].addr.port, 5432);
    assert_int_equal(b->servers[1].weight, 1);
    assert_true(b->servers[1].backup);
    assert_string_equal(b->servers[2].address, "[::1]:5433");
    assert_int_equal(b->servers[2].addr.ss.ss_family, AF_INET6);
    assert_int_equal(b->balance, BAL_CONSISTENT_HASH);
    assert_int_equal(b->hash_key, HASH_CLIENT_IP);
    assert_null(b->hash_key_name);
    expect_backend_limits(b, 1000, 120000, 0, 3600000, 100, PP_V2);
    assert_false(b->has_tls);
    expect_health(&b->health, true, PROTO_TCP, 500, 250, 1, 5);
    assert_int_equal(b->health.send_len, 7);
    assert_memory_equal(b->health.send, "PING\r\n\0", 7);
    assert_string_equal(b->health.expect, "+PONG");
    assert_true(b->affinity_client_ip);
    assert_null(b->affinity_cookie);

    b = &c->backends[1];
    assert_string_equal(b->name, "secure");
    assert_int_equal(b->protocol, PROTO_TLS);
    assert_int_equal(b->balance, BAL_LEAST_CONNECTIONS);
    assert_int_equal(b->proxy_protocol, PP_V1);
    assert_true(b->has_tls);
    assert_false(b->tls.verify);
    assert_string_equal(b->tls.ca, "/etc/sluice/ca/internal.pem");
    assert_string_equal(b->tls.sni, "api.internal");
    assert_string_equal(b->tls.cert, "/etc/sluice/client.pem");
    assert_string_equal(b->tls.key, "/etc/sluice/client.key");
    assert_true(b->health.enabled);
    assert_int_equal(b->health.type, PROTO_TLS);
    assert_string_equal(b->health.host, "api.internal");

    assert_int_equal(config_backend_index(c, "db"), 0);
    assert_int_equal(config_backend_index(c, "secure"), 1);
    assert_int_equal(config_backend_index(c, "nope"), -1);
    assert_int_equal(config_backend_index(c, NULL), -1);
    config_unref(c);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok("/srv/gw/sluice.yaml", LISTENER_L BACKEND_B);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char buf[ADDR_TEXT_MAX];

    assert_int_equal(c->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(c->max_connections, 20000);
    assert_int_equal(c->shutdown_timeout_ms, 30000);
    assert_string_equal(c->log.access, "stdout");
    assert_int_equal(c->log.format, LOG_FORMAT_JSON);
    assert_int_equal(c->log.level, LOG_INFO);
    assert_false(c->admin.enabled);
    assert_null(c->admin.token_file);

    struct cfg_listener *l = &c->listeners[0];
    assert_int_equal(l->protocol, PROTO_TCP);
    assert_int_equal(l->idle_timeout_ms, 240000);
    assert_int_equal(l->max_connections, 0);
    assert_false(l->proxy_protocol_accept);
    assert_int_equal(l->proxy_protocol_timeout_ms, 5000);
    assert_int_equal(l->client_hello_timeout_ms, 5000);
    assert_int_equal(l->client_hello_max, 16384);
    assert_false(l->has_tls);
    assert_int_equal(l->tls.min_version, 0x0303);
    assert_true(l->tls.session_tickets);
    assert_int_equal(l->tls.client_auth, CLIENT_AUTH_NONE);
    assert_int_equal(l->tls.handshake_timeout_ms, 10000);
    assert_int_equal(l->tls.alpn.count, 0);
    assert_int_equal(l->hosts.count, 0);
    assert_int_equal(l->backend_index, 0);

    struct cfg_backend *b = &c->backends[0];
    assert_int_equal(b->protocol, PROTO_TCP);
    assert_int_equal(b->balance, BAL_ROUND_ROBIN);
    assert_int_equal(b->hash_key, HASH_CLIENT_IP);
    expect_backend_limits(b, 5000, 60000, 2, 30000, 0, PP_NONE);
    assert_false(b->has_tls);
    assert_true(b->tls.verify);
    assert_null(b->tls.ca);
    expect_health(&b->health, false, PROTO_TCP, 5000, 2000, 2, 3);
    assert_int_equal(b->health.expect_status_lo, 200);
    assert_int_equal(b->health.expect_status_hi, 399);
    assert_string_equal(b->health.path, "/");
    assert_int_equal(b->servers[0].weight, 1);
    assert_false(b->servers[0].backup);
    assert_false(b->affinity_client_ip);
    assert_int_equal(b->keepalive_max_idle, 64);
    assert_int_equal(b->keepalive_idle_timeout_ms, 60000);
    config_unref(c);

    /* admin present but empty: enabled on 127.0.0.1:9900; tls backend, health by type */
    c = load_ok(NAME, "admin: {}\nworkers: auto\nlog: {access: \"off\"}\n" LISTENER_L
                      "backends:\n  - name: b\n    protocol: tls\n    servers: [h.example:443]\n"
                      "    health: {interval: 1s}\n");
    assert_true(c->admin.enabled);
    addr_format((struct sockaddr *)&c->admin.bind.ss, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:9900");
    assert_string_equal(c->log.access, "off");
    assert_int_equal(c->backends[0].health.type, PROTO_TLS);
    assert_false(c->backends[0].has_tls);
    assert_true(c->backends[0].tls.verify);
    config_unref(c);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    EXPECT_ERRORS("max_conections: 10\nfoo: 1\n" LISTENER_L BACKEND_B,
                  NAME ":1:1: max_conections: unknown key 'max_conections' (did you mean "
                       "'max_connections'?)",
                  NAME ":2:1: foo: unknown key 'foo'");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bnid: \"*:80\"\n    backend: b\n" BACKEND_B,
                  NAME ":2:5: listeners[0]: missing required key 'bind'",
                  NAME ":3:5: listeners[0].bnid: unknown key 'bnid' (did you mean 'bind'?)");
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    servers:\n      - address: 1.2.3.4:1\n"
                             "        wieght: 2\n",
                  NAME ":9:9: backends[0].servers[0].wieght: unknown key 'wieght' (did you "
                       "mean 'weight'?)");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    health: {intervall: 1s}\n",
                  NAME ":8:14: backends[0].health.intervall: unknown key 'intervall' (did you "
                       "mean 'interval'?)");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    name: c\n",
                  NAME ":8:5: backends[0].name: duplicate key 'name'");
}

static void test_type_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS("log: 5\n" LISTENER_L BACKEND_B, NAME ":1:6: log: expected a mapping");
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    servers: {a: 1}\n",
                  NAME ":7:14: backends[0].servers: expected a list");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    retries: many\n",
                  NAME ":8:14: backends[0].retries: expected an integer");
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    servers:\n      - address: 1.2.3.4:1\n"
                             "        backup: maybe\n",
                  NAME ":9:17: backends[0].servers[0].backup: expected true or false");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    name: [x]\n",
                  NAME ":8:5: backends[0].name: duplicate key 'name'");
    EXPECT_ERRORS("listeners: {}\n" BACKEND_B, NAME ":1:12: listeners: expected a list");
    EXPECT_ERRORS("listeners:\n  - 5\n" BACKEND_B, NAME ":2:5: listeners[0]: expected a mapping");
    EXPECT_ERRORS("listeners:\n  - name: {a: b}\n    bind: \"*:80\"\n    backend: b\n" BACKEND_B,
                  NAME ":2:11: listeners[0].name: expected a string");
}

static void test_ranges(void **state)
{
    (void)state;
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    retries: 17\n    drain_timeout: 0s\n"
                             "    servers:\n      - address: 1.2.3.4:1\n        weight: 300\n"
                             "    health:\n      interval: 50ms\n      healthy_threshold: 0\n"
                             "      unhealthy_threshold: 101\n",
                  NAME ":7:14: backends[0].retries: 17 out of range (0-16)",
                  NAME ":8:20: backends[0].drain_timeout: 0s out of range (1s-24h)",
                  NAME ":11:17: backends[0].servers[0].weight: 300 out of range (1-256)",
                  NAME ":13:17: backends[0].health.interval: 50ms out of range (100ms-720h)",
                  NAME ":14:26: backends[0].health.healthy_threshold: 0 out of range (1-100)",
                  NAME ":15:28: backends[0].health.unhealthy_threshold: 101 out of range "
                       "(1-100)");
    EXPECT_ERRORS("max_connections: -1\nworkers: 0\n" LISTENER_L BACKEND_B
                  "    max_connections_per_server: -5\n    drain_timeout: 25h\n",
                  NAME ":1:18: max_connections: -1 out of range (0 or more)",
                  NAME ":2:10: workers: 0 out of range (1-256)",
                  NAME ":10:33: backends[0].max_connections_per_server: -5 out of range (0 or "
                       "more)",
                  NAME ":11:20: backends[0].drain_timeout: 25h out of range (1s-24h)");
    EXPECT_ERRORS("workers: 300\n" LISTENER_L BACKEND_B,
                  NAME ":1:10: workers: 300 out of range (1-256)");
    EXPECT_ERRORS("workers: many\n" LISTENER_L BACKEND_B,
                  NAME ":1:10: workers: expected an integer (1-256) or auto");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"
                  "    client_hello_max: 100\n" BACKEND_B,
                  NAME ":5:23: listeners[0].client_hello_max: 100 out of range (1k-1m)");
}

static void test_enums_units(void **state)
{
    (void)state;
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    balance: rond_robin\n    proxy_protocol: v3\n"
                                       "    protocol: udp\n",
                  NAME ":8:14: backends[0].balance: invalid value 'rond_robin' (expected one of: "
                       "round_robin, least_connections, random_two, consistent_hash)",
                  NAME ":9:21: backends[0].proxy_protocol: invalid value 'v3' (expected one of: "
                       "none, v1, v2)",
                  NAME ":10:15: backends[0].protocol: invalid value 'udp' (expected one of: tcp, "
                       "tls, http, https)");
    EXPECT_ERRORS("log: {format: xml, level: verbose, access: \"\"}\n" LISTENER_L BACKEND_B,
                  NAME ":1:15: log.format: invalid value 'xml' (expected one of: json, text)",
                  NAME ":1:27: log.level: invalid value 'verbose' (expected one of: error, warn, "
                       "info, debug)",
                  NAME ":1:44: log.access: expected stdout, stderr, off or a file path");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"
                  "    idle_timeout: 30\n    proxy_protocol_timeout: 1.5s\n"
                  "    client_hello_max: 16q\n" BACKEND_B "    timeout: 5 s\n",
                  NAME ":5:19: listeners[0].idle_timeout: duration needs a unit (ms, s, m, h)",
                  NAME ":6:29: listeners[0].proxy_protocol_timeout: fractions are not allowed in "
                       "durations (write 1s500ms, not 1.5s)",
                  NAME ":7:23: listeners[0].client_hello_max: unknown size unit (use k, m, g)",
                  NAME ":11:14: backends[0].timeout: unknown duration unit (use ms, s, m, h)");
}

static void test_addresses(void **state)
{
    (void)state;
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    servers:\n      - address: 1.2.3.4:1\n"
                             "      - address: 10.0.0.1:70000\n      - db.internal\n"
                             "      - address: \"*:80\"\n      - bad_host!:1\n",
                  NAME ":9:18: backends[0].servers[1].address: port 70000 out of range (1-65535)",
                  NAME ":10:9: backends[0].servers[2]: missing port",
                  NAME ":11:18: backends[0].servers[3].address: a server address cannot be a "
                       "wildcard",
                  NAME ":12:9: backends[0].servers[4]: invalid host name");
    EXPECT_ERRORS(
        "admin: {bind: \"localhost:9900\"}\nlisteners:\n  - name: l\n"
        "    bind: [\"*:80\", \"gw.example.com:81\", \"1.2.3.4\"]\n    backend: b\n" BACKEND_B,
        NAME ":1:15: admin.bind: bind needs an IP address or '*', not a host name",
        NAME ":4:20: listeners[0].bind[1]: bind needs an IP address or '*', not a host "
             "name",
        NAME ":4:41: listeners[0].bind[2]: missing port");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: []\n    backend: b\n" BACKEND_B,
                  NAME ":3:11: listeners[0].bind: at least one address is required");
}

static void test_duplicates_and_names(void **state)
{
    (void)state;
    EXPECT_ERRORS("listeners:\n"
                  "  - {name: a, bind: \"*:80\", backend: b}\n"
                  "  - {name: a, bind: \"*:81\", backend: b}\n"
                  "  - {name: \"bad name\", bind: [\"*:82\", \"0.0.0.0:80\"], backend: b}\n"
                  "backends:\n"
                  "  - name: b\n    servers: [1.2.3.4:1, db.internal:5, \"DB.internal:5\", "
                  "1.2.3.4:1]\n"
                  "  - name: b\n    servers: [1.2.3.4:2]\n"
                  "  - name: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
                  "    servers: [1.2.3.4:3]\n",
                  NAME ":3:12: listeners[1].name: duplicate listener name 'a' (first defined on "
                       "line 2)",
                  NAME ":4:12: listeners[2].name: invalid name 'bad name' (use 1-64 of A-Z a-z "
                       "0-9 _ . -)",
                  NAME ":4:39: listeners[2].bind[1]: address '*:80' is already bound by "
                       "listeners[0]",
                  NAME ":7:41: backends[0].servers[2]: duplicate server address 'DB.internal:5' "
                       "(same as servers[1])",
                  NAME ":7:58: backends[0].servers[3]: duplicate server address '1.2.3.4:1' "
                       "(same as servers[0])",
                  NAME ":8:11: backends[1].name: duplicate backend name 'b' (first defined on "
                       "line 6)",
                  NAME ":10:11: backends[2].name: invalid name "
                       "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' (use "
                       "1-64 of A-Z a-z 0-9 _ . -)");
}

static void test_references(void **state)
{
    (void)state;
    /* listeners come first in the file: errors are still in file order */
    EXPECT_ERRORS("listeners:\n"
                  "  - name: l\n    bind: \"*:80\"\n    backend: nope\n"
                  "  - name: m\n    bind: \"*:81\"\n    routes:\n"
                  "      - match: {sni: a.example}\n        backend: web\n"
                  "backends:\n"
                  "  - name: web\n    protocol: http\n    servers: [1.2.3.4:80]\n",
                  NAME ":4:14: listeners[0].backend: unknown backend 'nope'",
                  NAME ":9:18: listeners[1].routes[0].backend: backend 'web' has protocol http; "
                       "a tcp listener needs tcp or tls backends");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: \"*:80\"\n" BACKEND_B,
                  NAME ":2:5: listeners[0]: a listener needs a backend or routes");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: \"*:80\"\n    routes:\n"
                  "      - match: {sni: x.example}\n"
                  "      - {backend: b, respond: {status: 200}}\n" BACKEND_B,
                  NAME ":5:9: listeners[0].routes[0]: a route needs exactly one of backend, "
                       "redirect, respond",
                  NAME ":6:9: listeners[0].routes[1]: a route needs exactly one of backend, "
                       "redirect, respond",
                  NAME ":6:22: listeners[0].routes[1].respond: respond needs an http or https "
                       "listener (this one is tcp)");
    EXPECT_ERRORS("listeners: {}\n", NAME ":1:12: listeners: expected a list");
    /* no listeners is valid (admin API only), absent or empty */
    struct config *none = load_ok(NAME, "backends: []\n");
    assert_int_equal(none->n_listeners, 0);
    config_unref(none);
    none = load_ok(NAME, "listeners: []\nshutdown_delay: 10s\n");
    assert_int_equal(none->n_listeners, 0);
    assert_int_equal(none->shutdown_delay_ms, 10000);
    config_unref(none);
    EXPECT_ERRORS("shutdown_delay: soon\n", NAME
                  ":1:17: shutdown_delay: invalid duration (expected e.g. 250ms, 5s, 4m, 1h30m)");
}

static void test_tls_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS(
        "listeners:\n  - name: l\n    bind: \"*:443\"\n    protocol: tls\n    backend: b\n"
        "  - name: m\n    bind: \"*:444\"\n    protocol: tls\n    backend: b\n"
        "    tls:\n      min_version: \"1.1\"\n      client_auth: {mode: required}\n"
        "  - name: n\n    bind: \"*:445\"\n    backend: b\n"
        "    tls: {certificates: [{cert: a.pem}], session_tickets: 1}\n"
        "    hosts: [\"a.example\", \"bad host\"]\n" BACKEND_B,
        NAME ":2:5: listeners[0]: protocol tls needs tls.certificates",
        NAME ":11:7: listeners[1].tls: missing required key 'certificates'",
        NAME ":11:20: listeners[1].tls.min_version: invalid value '1.1' (expected one "
             "of: 1.2, 1.3)",
        NAME ":12:20: listeners[1].tls.client_auth: missing required key 'ca' "
             "(client_auth mode is required)",
        NAME ":16:10: listeners[2].tls: tls settings need protocol tls or https "
             "(protocol is tcp)",
        NAME ":16:26: listeners[2].tls.certificates[0]: missing required key 'key'",
        NAME ":16:59: listeners[2].tls.session_tickets: expected true or false",
        NAME ":17:12: listeners[2].hosts: hosts needs a tls, http or https listener "
             "(on tcp, use routes with match.sni)",
        NAME ":17:12: listeners[2].hosts: invalid host name 'bad host' (expected a "
             "name or *.suffix)");
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    servers: [1.2.3.4:1]\n"
                             "    tls: {cert: c.pem, sni: \"*.x\"}\n",
                  NAME ":8:10: backends[0].tls: tls settings need protocol tls or https "
                       "(protocol is tcp)",
                  NAME ":8:10: backends[0].tls: cert and key must be given together",
                  NAME ":8:29: backends[0].tls.sni: invalid host name '*.x'");
}

static void test_backend_options(void **state)
{
    (void)state;
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    hash_key: header:X-User\n"
                                       "    affinity: {cookie: SID}\n    keepalive: {max_idle: 1}\n"
                                       "    health: {path: /h, expect_status: \"200-600\", "
                                       "send: x}\n",
                  NAME ":8:15: backends[0].hash_key: hash_key is only used with balance: "
                       "consistent_hash",
                  NAME ":9:24: backends[0].affinity.cookie: cookie affinity needs an http or "
                       "https backend",
                  NAME ":10:16: backends[0].keepalive: keepalive needs an http or https backend",
                  NAME ":11:14: backends[0].health.path: only used by http and https health "
                       "checks",
                  NAME ":11:24: backends[0].health.expect_status: only used by http and https "
                       "health checks",
                  NAME ":11:39: backends[0].health.expect_status: status 200-600 out of range "
                       "(100-599)");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    balance: consistent_hash\n    hash_key: host\n",
                  NAME ":9:15: backends[0].hash_key: hash_key 'host' needs an http or https "
                       "backend");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    balance: consistent_hash\n    hash_key: ip\n",
                  NAME ":9:15: backends[0].hash_key: invalid value 'ip' (expected one of: "
                       "client_ip, host, path, header:NAME, cookie:NAME)");
    EXPECT_ERRORS(LISTENER_L "backends:\n  - name: b\n    servers: []\n",
                  NAME ":7:14: backends[0].servers: at least one server is required");
    EXPECT_ERRORS(LISTENER_L "backends:\n  - servers: [1.2.3.4:1]\n",
                  NAME ":4:14: listeners[0].backend: unknown backend 'b'",
                  NAME ":6:5: backends[0]: missing required key 'name'");
}

/* An http listener may route to an https backend (HTTP/1.1 over TLS, with the backend's
 * tls block and health probes over TLS by default); HTTP/2 to servers stays refused. */
static void test_https_backend_served(void **state)
{
    (void)state;
    static const char head[] = "listeners:\n"
                               "  - name: web\n"
                               "    bind: \"*:80\"\n"
                               "    protocol: http\n"
                               "    backend: api\n"
                               "backends:\n"
                               "  - name: api\n"
                               "    protocol: https\n"
                               "    servers: [10.0.0.5:443]\n"
                               "    tls: {verify: false, sni: api.internal}\n"
                               "    health: {path: /healthz}\n";
    struct config *c = load_ok(NAME, head);
    const struct cfg_backend *b = &c->backends[0];
    assert_int_equal(b->protocol, PROTO_HTTPS);
    assert_true(b->has_tls);
    assert_false(b->tls.verify);
    assert_string_equal(b->tls.sni, "api.internal");
    assert_int_equal(b->health.type, PROTO_HTTPS);
    config_unref(c);
    char yaml[sizeof(head) + 64];
    snprintf(yaml, sizeof(yaml), "%s    http: {version: \"2\"}\n", head);
    c = load_ok(NAME, yaml);
    assert_int_equal(c->backends[0].http.version, 2);
    config_unref(c);
    snprintf(yaml, sizeof(yaml), "%s    http: {version: \"1.1\"}\n", head);
    c = load_ok(NAME, yaml);
    assert_int_equal(c->backends[0].http.version, 1);
    config_unref(c);
    /* one HTTP/2 connection carries many clients: no PROXY header can speak for them */
    snprintf(yaml, sizeof(yaml), "%s    proxy_protocol: v2\n    http: {version: \"2\"}\n", head);
    EXPECT_ERRORS(yaml, NAME ":12:21: backends[0].proxy_protocol: proxy_protocol cannot be used "
                             "with http.version 2 (one connection carries the requests of many "
                             "clients)");
}

/* https and the route policy of later issues are parsed fully but refused; http is served. */
static void test_http_parsed_then_refused(void **state)
{
    (void)state;
    static const char yaml[] =
        "listeners:\n"
        "  - name: web\n"
        "    bind: \"*:8443\"\n"
        "    protocol: https\n"
        "    tls: {certificates: [{cert: a.pem, key: a.key}]}\n"
        "    hosts: [example.com]\n"
        "    backend: api\n"
        "    routes:\n"
        "      - match:\n"
        "          host: api.example.com\n"
        "          path_prefix: /v1/\n"
        "          methods: [GET, POST]\n"
        "          headers: {X-Canary: \"1\"}\n"
        "        backend: api\n"
        "        rewrite: {replace_prefix: {from: /v1, to: /api}}\n"
        "        request_headers: {set: {X-Env: prod}, add: {}, remove: [X-Debug]}\n"
        "        response_headers: {set: {Strict-Transport-Security: \"max-age=1\"}}\n"
        "      - match: {path_prefix: /old/}\n"
        "        redirect: {to: \"https://example.com/new/\", status: 301, keep_path: true}\n"
        "      - match: {path: /ping}\n"
        "        respond: {status: 200, body: \"pong\\n\", content_type: text/plain}\n"
        "backends:\n"
        "  - name: api\n"
        "    protocol: http\n"
        "    servers: [10.0.0.5:8080]\n"
        "    balance: consistent_hash\n"
        "    hash_key: cookie:SID\n"
        "    health: {path: /healthz, expect_status: \"200-399\", expect_body: ok}\n"
        "    affinity: {cookie: SLUICE_AFFINITY}\n"
        "    keepalive: {max_idle: 64, idle_timeout: 60s}\n";
    struct config *c = load_ok(NAME, yaml); /* https listeners are served now */
    assert_int_equal(c->listeners[0].protocol, PROTO_HTTPS);
    assert_true(c->listeners[0].http.sni_host_check);    /* default on */
    assert_int_equal(c->listeners[0].tls.alpn.count, 2); /* [h2, http/1.1] */
    assert_string_equal(c->listeners[0].tls.alpn.items[0], "h2");
    assert_string_equal(c->listeners[0].tls.alpn.items[1], "http/1.1");
    config_unref(c);
    EXPECT_ERRORS("listeners:\n  - name: web\n    bind: \"*:80\"\n    protocol: http\n"
                  "    backend: api\n    http: {sni_host_check: true}\n"
                  "backends:\n  - name: api\n    protocol: http\n    servers: [10.0.0.5:8080]\n",
                  NAME ":6:12: listeners[0].http.sni_host_check: sni_host_check needs an https "
                       "listener (protocol is http)");
    EXPECT_ERRORS("listeners:\n  - name: web\n    bind: \"*:443\"\n    protocol: https\n"
                  "    backend: api\n"
                  "    tls: {certificates: [{cert: a.pem, key: a.key}], alpn: [h2, spdy/3]}\n"
                  "backends:\n  - name: api\n    protocol: http\n    servers: [10.0.0.5:8080]\n",
                  NAME ":6:60: listeners[0].tls.alpn: an https listener speaks h2 and http/1.1, "
                       "not spdy/3");
    EXPECT_ERRORS("listeners:\n  - name: web\n    bind: \"*:443\"\n    protocol: https\n"
                  "    backend: api\n"
                  "    tls: {certificates: [{cert: a.pem, key: a.key}]}\n"
                  "    http: {h2c: true, http2: {max_concurrent_streams: 0, window: 1}}\n"
                  "backends:\n  - name: api\n    protocol: http\n    servers: [10.0.0.5:8080]\n",
                  NAME ":7:12: listeners[0].http.h2c: h2c needs an http listener (https "
                       "negotiates h2 by ALPN)",
                  NAME ":7:55: listeners[0].http.http2.max_concurrent_streams: 0 out of range "
                       "(1-10000)",
                  NAME ":7:58: listeners[0].http.http2.window: unknown key 'window'");

    EXPECT_ERRORS("listeners:\n  - name: web\n    bind: \"*:80\"\n    protocol: http\n"
                  "    routes:\n"
                  "      - match: {sni: a.example, path: /a, path_prefix: /b, path_regex: \"(\"}\n"
                  "        redirect: {status: 200}\n"
                  "      - respond: {status: 600}\n        rewrite: {strip_prefix: x}\n",
                  NAME ":6:16: listeners[0].routes[0].match: use only one of path, path_prefix, "
                       "path_regex",
                  NAME ":6:17: listeners[0].routes[0].match.sni: sni needs a tcp or tls listener "
                       "(this one is http)",
                  NAME ":6:72: listeners[0].routes[0].match.path_regex: invalid regular "
                       "expression: Unmatched ( or \\(",
                  NAME ":7:19: listeners[0].routes[0].redirect: missing required key 'to'",
                  NAME ":7:28: listeners[0].routes[0].redirect.status: invalid redirect status "
                       "200 (expected one of: 301, 302, 303, 307, 308)",
                  NAME ":8:27: listeners[0].routes[1].respond.status: 600 out of range (100-599)",
                  NAME ":9:9: listeners[0].routes[1].rewrite: rewrite only applies to routes with "
                       "a backend",
                  NAME ":9:33: listeners[0].routes[1].rewrite.strip_prefix: must start with '/'");
}

/* health.path is the probe's request target: nothing that would break the request line. */
static void test_health_http_path(void **state)
{
    (void)state;
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    health: {type: http, path: \"/a b\"}\n",
                  NAME ":8:32: backends[0].health.path: must not contain whitespace, control "
                       "characters or '#'");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    health: {type: http, path: \"/a\\r\\nX: y\"}\n",
                  NAME ":8:32: backends[0].health.path: must not contain whitespace, control "
                       "characters or '#'");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    health: {type: http, path: \"/a#b\"}\n",
                  NAME ":8:32: backends[0].health.path: must not contain whitespace, control "
                       "characters or '#'");
    struct config *c =
        load_ok(NAME, LISTENER_L BACKEND_B "    health: {type: http, path: \"/h?x=1&y=%20\"}\n");
    assert_string_equal(c->backends[0].health.path, "/h?x=1&y=%20");
    config_unref(c);
}

static void test_syntax_and_empty(void **state)
{
    (void)state;
    EXPECT_ERRORS("", NAME ":1:1: configuration is empty");
    EXPECT_ERRORS("# nothing\n", NAME ":1:1: configuration is empty");
    EXPECT_ERRORS("workers: 2\nlisteners: [a, b\nbackends: []\n",
                  NAME ":3:9: YAML syntax error: did not find expected ',' or ']' (while parsing "
                       "a flow sequence at line 2)");
    EXPECT_ERRORS("- a\n- b\n", NAME ":1:1: expected a mapping at the top level");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "---\nworkers: 1\n",
                  NAME ":9:1: only one YAML document is allowed");
    /* UTF-8 only: a byte order mark is skipped, UTF-16 is refused */
    config_unref(load_ok(NAME, "\xef\xbb\xbfworkers: 2\n" LISTENER_L BACKEND_B));
    EXPECT_ERRORS("\xef\xbb\xbfworkers: x\n" LISTENER_L BACKEND_B,
                  NAME ":1:10: workers: expected an integer (1-256) or auto");
    EXPECT_ERRORS("\xff\xfew\0:\0 \0x\0", NAME ":1:1: invalid input: the file must be UTF-8 (it "
                                               "starts with a UTF-16 byte order mark)");
    EXPECT_ERRORS("workers: 2\n\xc3\x28\n", NAME ":2:2: invalid input: invalid trailing UTF-8 "
                                                 "octet");
}

static void test_refcount(void **state)
{
    (void)state;
    struct config *c = load_ok(NAME, LISTENER_L BACKEND_B);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_ptr_equal(config_ref(c), c);
    assert_ptr_equal(config_ref(c), c);
    assert_int_equal(atomic_load(&c->refs), 3);
    config_unref(c);
    config_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    config_unref(c); /* frees; ASan reports a leak otherwise */
    config_unref(NULL);
    assert_null(config_ref(NULL));
    cfg_errors_free(NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-cfg-XXXXXX";
    char path[256], cwd[4096];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sluice.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("log: {access: logs/a.log}\n" LISTENER_L BACKEND_B, f);
    fclose(f);

    struct cfg_errors e = {0};
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    struct config *c = config_load("sluice.yaml", &e); /* relative: resolved against cwd */
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(c);
    assert_int_equal(e.count, 0);
    char want[4200];
    snprintf(want, sizeof(want), "%s/logs/a.log", dir);
    char real[4096];
    assert_non_null(realpath(dir, real));
    /* getcwd may resolve symlinks in /tmp */
    if (strcmp(c->log.access, want) != 0) {
        snprintf(want, sizeof(want), "%s/logs/a.log", real);
        assert_string_equal(c->log.access, want);
    }
    assert_string_equal(c->path, "sluice.yaml");
    config_unref(c);

    c = config_load(path, &e);
    assert_non_null(c);
    snprintf(want, sizeof(want), "%s/logs/a.log", dir);
    assert_string_equal(c->log.access, want);
    config_unref(c);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("workers: x\n", f);
    fclose(f);
    assert_null(config_load(path, &e));
    assert_int_equal(e.count, 1);
    char msg[400];
    snprintf(msg, sizeof(msg), "%s:1:10: workers: expected an integer (1-256) or auto", path);
    assert_string_equal(e.items[0], msg);
    cfg_errors_free(&e);

    unlink(path);
    assert_null(config_load(path, &e));
    assert_int_equal(e.count, 1);
    snprintf(msg, sizeof(msg), "%s: cannot read: No such file or directory", path);
    assert_string_equal(e.items[0], msg);
    cfg_errors_free(&e);
    rmdir(dir);
}

static void test_null_errs_and_aliases(void **state)
{
    (void)state;
    /* errs may be NULL; aliases are followed */
    static const char yaml[] = "backends:\n  - name: b\n    servers: &s [1.2.3.4:1]\n"
                               "  - name: c\n    servers: *s\n" LISTENER_L;
    struct config *c = config_load_buffer(NAME, yaml, strlen(yaml), NULL);
    assert_non_null(c);
    assert_int_equal(c->backends[1].n_servers, 1);
    config_unref(c);
    assert_null(config_load_buffer(NAME, "x: 1\n", 5, NULL));

    /* top-level x-... keys may hold anchors */
    static const char ext[] = "x-servers: &s [1.2.3.4:1, 1.2.3.4:2]\n" LISTENER_L
                              "backends:\n  - {name: b, servers: *s}\n";
    c = load_ok(NAME, ext);
    assert_int_equal(c->backends[0].n_servers, 2);
    config_unref(c);

    /* a billion laughs stays bounded */
    static const char laughs[] =
        "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "listeners: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    struct cfg_errors e = {0};
    assert_null(config_load_buffer(NAME, laughs, strlen(laughs), &e));
    assert_true(e.count > 0);
    cfg_errors_free(&e);
}

/* IPv6 servers and binds are compared by address, not by spelling. */
static void test_duplicates_ipv6(void **state)
{
    (void)state;
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: [\"[::1]:80\", \"[0::1]:80\", \"[::1]:81\", "
                  "\"[::2]:80\"]\n"
                  "    backend: b\n"
                  "backends:\n  - name: b\n"
                  "    servers: [\"[::1]:80\", \"[0::1]:80\", \"[::1]:81\", \"[::2]:80\", "
                  "0.0.0.1:80, x:80]\n",
                  NAME ":3:24: listeners[0].bind[1]: address '::1:80' is already bound by "
                       "listeners[0]",
                  NAME ":7:27: backends[0].servers[1]: duplicate server address '[0::1]:80' "
                       "(same as servers[0])");
}

/* ---- limits of the configuration file ---- */

/* A text buffer for generated documents. */
struct text {
    char *p;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Adds `n` copies of `item` joined by `sep`. */
static void text_repeat(struct text *t, const char *item, const char *sep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        text_add(t, "%s%s", i ? sep : "", item);
}

/* Loads t (then frees it): NULL `want` expects success, else exactly that one error. */
static void expect_text(struct text *t, const char *want)
{
    if (want == NULL) {
        config_unref(load_ok(NAME, t->p));
    } else {
        const char *const w[] = {want, NULL};
        expect_errors(t->p, w);
    }
    free(t->p);
    *t = (struct text){0};
}

/* `x-deep: ` then `levels` nested flow sequences, then a valid listener and backend. */
static void nested(struct text *t, size_t levels)
{
    text_add(t, "x-deep: ");
    text_repeat(t, "[", "", levels);
    text_repeat(t, "]", "", levels);
    text_add(t, "\n" LISTENER_L BACKEND_B);
}

static void test_limit_depth(void **state)
{
    (void)state;
    struct text t = {0};
    nested(&t, 63); /* with the top-level mapping: 64 levels */
    expect_text(&t, NULL);
    nested(&t, 64);
    expect_text(&t, NAME ":1:72: nesting depth limit exceeded: more than 64 nested lists and "
                         "mappings");
    /* block style counts the same */
    text_add(&t, "x-deep:\n");
    for (int i = 0; i < 64; i++)
        text_add(&t, "%*s- \n", 2 * i + 2, "");
    expect_text(&t, NAME ":65:129: nesting depth limit exceeded: more than 64 nested lists and "
                         "mappings");
}

/* `x-a: [&a0 v, &a1 v, ...]` with n anchors, then a valid listener and backend;
 * returns the column of the last anchor. */
static size_t anchors(struct text *t, size_t n)
{
    size_t col = 0;
    text_add(t, "x-a: [");
    for (size_t i = 0; i < n; i++) {
        text_add(t, "%s", i ? ", " : "");
        col = t->len + 1;
        text_add(t, "&a%zu v", i);
    }
    text_add(t, "]\n" LISTENER_L BACKEND_B);
    return col;
}

static void test_limit_anchors(void **state)
{
    (void)state;
    struct text t = {0};
    anchors(&t, 4096);
    expect_text(&t, NULL);
    size_t col = anchors(&t, 4097);
    char want[200];
    snprintf(want, sizeof(want),
             NAME ":1:%zu: anchor limit exceeded: more than 4096 anchors "
                  "(&name)",
             col);
    expect_text(&t, want);

    EXPECT_ERRORS("x-a: &a 1\nx-b: &a 2\n" LISTENER_L BACKEND_B,
                  NAME ":2:6: YAML syntax error: duplicate anchor '&a' (first defined at line 1)");
}

static void aliases(struct text *t, size_t n)
{
    text_add(t, "x-a: &a v\nx-b: [");
    text_repeat(t, "*a", ",", n);
    text_add(t, "]\n" LISTENER_L BACKEND_B);
}

static void test_limit_aliases(void **state)
{
    (void)state;
    struct text t = {0};
    aliases(&t, 4096);
    expect_text(&t, NULL);
    aliases(&t, 4097);
    expect_text(&t, NAME ":2:12295: alias limit exceeded: more than 4096 aliases (*name)");

    EXPECT_ERRORS("x-a: *nope\n" LISTENER_L BACKEND_B,
                  NAME ":1:6: YAML syntax error: found undefined alias '*nope'");
    EXPECT_ERRORS("x-a: &a [1, *a]\n" LISTENER_L BACKEND_B,
                  NAME ":1:13: alias '*a' is inside the node it names (recursive aliases are "
                       "not supported)");
    EXPECT_ERRORS("x-a: &a {k: *a}\n" LISTENER_L BACKEND_B,
                  NAME ":1:13: alias '*a' is inside the node it names (recursive aliases are "
                       "not supported)");
}

/* `x-a: &a [1, ...]` (a list of `items` items: it stands for items + 1 nodes) and
 * `x-b` with `n` aliases of it. */
static void expansion(struct text *t, size_t items, size_t n)
{
    text_add(t, "x-a: &a [");
    text_repeat(t, "1", ",", items);
    text_add(t, "]\nx-b: [");
    text_repeat(t, "*a", ",", n);
    text_add(t, "]\n" LISTENER_L BACKEND_B);
}

static void test_limit_alias_expansion(void **state)
{
    (void)state;
    struct text t = {0};
    expansion(&t, 999, 100); /* 100 aliases of 1000 nodes: at the limit */
    expect_text(&t, NULL);
    expansion(&t, 999, 101);
    expect_text(&t, NAME ":2:307: alias expansion limit exceeded: aliases stand for more than "
                         "100000 nodes");
    /* nested aliases count what they stand for: a billion laughs stops early */
    static const char laughs[] =
        "x-a: &a [1,1,1,1,1,1,1,1,1,1]\nx-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nx-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "listeners: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    EXPECT_ERRORS(laughs, NAME ":5:31: alias expansion limit exceeded: aliases stand for more "
                               "than 100000 nodes");
}

/* `x-a: [v, v, ...]` with n items, then a valid listener and backend. */
static void many_nodes(struct text *t, size_t n)
{
    text_add(t, "x-a: [");
    text_repeat(t, "v", ",", n);
    text_add(t, "]\n" LISTENER_L BACKEND_B);
}

static void test_limit_nodes(void **state)
{
    (void)state;
    struct text t = {0};
    /* root, "x-a", the list, the items, then 17 nodes of LISTENER_L BACKEND_B */
    many_nodes(&t, 100000 - 3 - 17);
    expect_text(&t, NULL);
    many_nodes(&t, 100000 - 3 - 16);
    expect_text(&t, NAME ":8:15: node limit exceeded: more than 100000 values, lists and "
                         "mappings");
    many_nodes(&t, 200000);
    expect_text(&t, NAME ":1:200001: node limit exceeded: more than 100000 values, lists and "
                         "mappings");
}

/* A valid document padded with a comment to exactly `size` bytes. */
static char *padded(size_t size)
{
    static const char body[] = LISTENER_L BACKEND_B "#";
    char *p = malloc(size + 1);
    assert_non_null(p);
    memcpy(p, body, sizeof(body) - 1);
    memset(p + sizeof(body) - 1, 'x', size - sizeof(body));
    p[size - 1] = '\n';
    p[size] = '\0';
    return p;
}

#define MIB (1024 * 1024)

/* Writes `len` bytes of text into the FIFO at `path` (a thread: config_load reads). */
struct fifo_job {
    const char *path;
    const char *text;
    size_t len;
};

static void *fifo_writer(void *arg)
{
    struct fifo_job *j = arg;
    FILE *f = fopen(j->path, "w");
    if (f != NULL) {
        fwrite(j->text, 1, j->len, f); /* stops with EPIPE once the reader is gone */
        fclose(f);
    }
    return NULL;
}

/* config_load() of a FIFO fed with `text`: counts what it reads, not what fstat says. */
static struct config *load_fifo(const char *path, const char *text, size_t len,
                                struct cfg_errors *e)
{
    struct fifo_job j = {path, text, len};
    pthread_t th;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pthread_create(&th, NULL, fifo_writer, &j), 0);
    struct config *c = config_load(path, e);
    pthread_join(th, NULL);
    return c;
}

static void test_limit_file_size(void **state)
{
    (void)state;
    char *text = padded(2 * MIB);
    struct cfg_errors e = {0};
    struct config *c = config_load_buffer(NAME, text, 2 * MIB, &e);
    assert_non_null(c);
    config_unref(c);
    assert_null(config_load_buffer(NAME, text, 2 * MIB + 1, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0],
                        NAME ":1:1: file size limit exceeded: the file is larger than 2 MiB");
    cfg_errors_free(&e);

    /* from a file: a large one is refused without being read (a sparse 1 GiB file) */
    char dir[] = "/tmp/sluice-cfg-XXXXXX", path[256], want[400];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/big.yaml", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1024L * MIB), 0);
    close(fd);
    assert_null(config_load(path, &e));
    assert_int_equal(e.count, 1);
    snprintf(want, sizeof(want), "%s:1:1: file size limit exceeded: the file is larger than 2 MiB",
             path);
    assert_string_equal(e.items[0], want);
    cfg_errors_free(&e);
    unlink(path);

    /* from a pipe, where the size is only known by reading: 2 MiB pass, one more byte not */
    snprintf(path, sizeof(path), "%s/fifo.yaml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    c = load_fifo(path, text, 2 * MIB, &e);
    assert_int_equal(e.count, 0);
    assert_non_null(c);
    config_unref(c);
    free(text);
    text = padded(2 * MIB + 1);
    assert_null(load_fifo(path, text, 2 * MIB + 1, &e));
    assert_int_equal(e.count, 1);
    snprintf(want, sizeof(want), "%s:1:1: file size limit exceeded: the file is larger than 2 MiB",
             path);
    assert_string_equal(e.items[0], want);
    cfg_errors_free(&e);
    free(text);
    unlink(path);
    rmdir(dir);
}

static void test_limit_directives(void **state)
{
    (void)state;
    struct text t = {0};
    for (int i = 0; i < 16; i++)
        text_add(&t, "%%TAG !t%d! tag:example.com,2000:\n", i);
    text_add(&t, "---\n" LISTENER_L BACKEND_B);
    expect_text(&t, NULL);
    for (int i = 0; i < 17; i++)
        text_add(&t, "%%TAG !t%d! tag:example.com,2000:\r", i); /* any line break counts */
    text_add(&t, "---\n" LISTENER_L BACKEND_B);
    expect_text(&t, NAME ":17:1: directive limit exceeded: more than 16 lines start with '%' "
                         "(YAML directives)");
}

/* Every error is found, the first CFG_ERRORS_MAX by position are listed (even when the
 * loader finds later ones first), then "... and N more errors". */
static void test_error_count_is_bounded(void **state)
{
    (void)state;
    struct text t = {0};
    /* listeners come first in the file but are checked after the backends */
    text_add(&t, "listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n");
    for (int i = 0; i < 60; i++)
        text_add(&t, "    lk%d: 1\n", i);
    text_add(&t, BACKEND_B);
    for (int i = 0; i < 90; i++)
        text_add(&t, "    bk%d: 1\n", i);
    struct cfg_errors e = {0};
    assert_null(load_as(NAME, t.p, &e));
    assert_int_equal(e.total, 150);
    assert_int_equal(e.count, CFG_ERRORS_MAX + 1);
    char want[200];
    for (int i = 0; i < 60; i++) {
        snprintf(want, sizeof(want), NAME ":%d:5: listeners[0].lk%d: unknown key 'lk%d'", 5 + i, i,
                 i);
        assert_string_equal(e.items[i], want);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(want, sizeof(want), NAME ":%d:5: backends[0].bk%d: unknown key 'bk%d'", 68 + i, i,
                 i);
        assert_string_equal(e.items[60 + i], want);
    }
    assert_string_equal(e.items[100], "... and 50 more errors");
    cfg_errors_free(&e);
    assert_int_equal(e.total, 0);
    free(t.p);
    t = (struct text){0};

    /* exactly CFG_ERRORS_MAX errors: no summary line */
    for (int i = 0; i < 100; i++)
        text_add(&t, "k%d: 1\n", i);
    text_add(&t, LISTENER_L BACKEND_B);
    assert_null(load_as(NAME, t.p, &e));
    assert_int_equal(e.total, 100);
    assert_int_equal(e.count, 100);
    assert_string_equal(e.items[99], NAME ":100:1: k99: unknown key 'k99'");
    cfg_errors_free(&e);
    free(t.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_health_http_path),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_enums_units),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_duplicates_and_names),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_tls_errors),
        cmocka_unit_test(test_backend_options),
        cmocka_unit_test(test_http_parsed_then_refused),
        cmocka_unit_test(test_https_backend_served),
        cmocka_unit_test(test_syntax_and_empty),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_null_errs_and_aliases),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_anchors),
        cmocka_unit_test(test_limit_aliases),
        cmocka_unit_test(test_limit_alias_expansion),
        cmocka_unit_test(test_limit_nodes),
        cmocka_unit_test(test_limit_file_size),
        cmocka_unit_test(test_limit_directives),
        cmocka_unit_test(test_error_count_is_bounded),
        cmocka_unit_test(test_duplicates_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
