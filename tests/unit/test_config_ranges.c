/* Unit tests for the config loader's documented ranges that test_config.c leaves out:
 * YAML merge keys refused, one value just outside (and the edge just inside) each
 * documented duration range, the length of ALPN protocol names, and the resolver section
 * (its duration ranges, max_ttl not below min_ttl, at most 16 nameservers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define NAME "sluice.yaml"

/* Loads `yaml` and checks that it fails with exactly the messages in `want`. */
static void expect_errors(const char *yaml, const char *const *want)
{
    struct cfg_errors e = {0};
    struct config *c = config_load_buffer(NAME, yaml, strlen(yaml), &e);
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
}

#define EXPECT_ERRORS(yaml, ...)                                                                   \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__, NULL};                                           \
        expect_errors(yaml, want_);                                                                \
    } while (0)

static struct config *load_ok(const char *yaml)
{
    struct cfg_errors e = {0};
    struct config *c = config_load_buffer(NAME, yaml, strlen(yaml), &e);
    for (size_t i = 0; i < e.count; i++)
        print_error("unexpected: %s\n", e.items[i]);
    assert_int_equal(e.count, 0);
    assert_non_null(c);
    cfg_errors_free(&e);
    return c;
}

#define BACKEND_B "backends:\n  - name: b\n    servers: [127.0.0.1:8080]\n"
#define LISTENER_L "listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"

/* ---- YAML merge keys ---- */

static void test_merge_keys_refused(void **state)
{
    (void)state;
    /* in a listener: the key is refused, and nothing was merged (bind and backend are
     * still missing) */
    EXPECT_ERRORS("x-common: &c {bind: \"*:80\", backend: b}\n"
                  "listeners:\n  - name: l\n    <<: *c\n" BACKEND_B,
                  NAME ":3:5: listeners[0]: missing required key 'bind'",
                  NAME ":3:5: listeners[0]: a listener needs a backend or routes",
                  NAME ":4:5: listeners[0].<<: unknown key '<<'");
    /* at the top level, a merge would bring in whole sections */
    EXPECT_ERRORS("x-top: &t {workers: 2}\n<<: *t\n" LISTENER_L BACKEND_B,
                  NAME ":2:1: <<: unknown key '<<'");
    /* in a backend, next to keys that are valid on their own */
    EXPECT_ERRORS("x-opts: &o {retries: 5}\n" LISTENER_L BACKEND_B "    <<: *o\n",
                  NAME ":9:5: backends[0].<<: unknown key '<<'");
}

/* ---- durations: one value just outside each documented range ---- */

/* Listener durations, 1ms-720h: 0s and 720h1ms refused, 1ms and 720h accepted. */
static void test_listener_duration_ranges(void **state)
{
    (void)state;
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"
                  "    idle_timeout: 0s\n    proxy_protocol_timeout: 0s\n"
                  "    client_hello_timeout: 0s\n" BACKEND_B,
                  NAME ":5:19: listeners[0].idle_timeout: 0s out of range (1ms-720h)",
                  NAME ":6:29: listeners[0].proxy_protocol_timeout: 0s out of range (1ms-720h)",
                  NAME ":7:27: listeners[0].client_hello_timeout: 0s out of range (1ms-720h)");
    EXPECT_ERRORS("listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"
                  "    idle_timeout: 720h1ms\n    proxy_protocol_timeout: 720h1ms\n"
                  "    client_hello_timeout: 720h1ms\n" BACKEND_B,
                  NAME ":5:19: listeners[0].idle_timeout: 720h1ms out of range (1ms-720h)",
                  NAME ":6:29: listeners[0].proxy_protocol_timeout: 720h1ms out of range "
                       "(1ms-720h)",
                  NAME ":7:27: listeners[0].client_hello_timeout: 720h1ms out of range "
                       "(1ms-720h)");
    struct config *c = load_ok("listeners:\n  - name: l\n    bind: \"*:80\"\n    backend: b\n"
                               "    idle_timeout: 1ms\n    proxy_protocol_timeout: 720h\n"
                               "    client_hello_timeout: 1ms\n" BACKEND_B);
    assert_int_equal(c->listeners[0].idle_timeout_ms, 1);
    assert_int_equal(c->listeners[0].proxy_protocol_timeout_ms, 720ULL * 3600 * 1000);
    assert_int_equal(c->listeners[0].client_hello_timeout_ms, 1);
    config_unref(c);
}

#define TLS_LISTENER(extra)                                                                        \
    "listeners:\n  - name: l\n    bind: \"*:443\"\n    protocol: tls\n    backend: b\n"          \
    "    tls:\n      certificates: [{cert: c.pem, key: c.key}]\n" extra

/* tls.handshake_timeout, 1ms-720h. */
static void test_handshake_timeout_range(void **state)
{
    (void)state;
    EXPECT_ERRORS(TLS_LISTENER("      handshake_timeout: 0s\n") BACKEND_B,
                  NAME ":8:26: listeners[0].tls.handshake_timeout: 0s out of range (1ms-720h)");
    EXPECT_ERRORS(TLS_LISTENER("      handshake_timeout: 720h1ms\n") BACKEND_B,
                  NAME ":8:26: listeners[0].tls.handshake_timeout: 720h1ms out of range "
                       "(1ms-720h)");
    struct config *c = load_ok(TLS_LISTENER("      handshake_timeout: 1ms\n") BACKEND_B);
    assert_int_equal(c->listeners[0].tls.handshake_timeout_ms, 1);
    config_unref(c);
    c = load_ok(TLS_LISTENER("      handshake_timeout: 720h\n") BACKEND_B);
    assert_int_equal(c->listeners[0].tls.handshake_timeout_ms, 720ULL * 3600 * 1000);
    config_unref(c);
}

/* Backend durations: connect_timeout, timeout and health.timeout 1ms-720h. */
static void test_backend_duration_ranges(void **state)
{
    (void)state;
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    connect_timeout: 0s\n    timeout: 0s\n"
                                       "    health: {timeout: 0s}\n",
                  NAME ":8:22: backends[0].connect_timeout: 0s out of range (1ms-720h)",
                  NAME ":9:14: backends[0].timeout: 0s out of range (1ms-720h)",
                  NAME ":10:23: backends[0].health.timeout: 0s out of range (1ms-720h)");
    EXPECT_ERRORS(LISTENER_L BACKEND_B "    connect_timeout: 720h1ms\n    timeout: 720h1ms\n"
                                       "    health: {timeout: 720h1ms}\n",
                  NAME ":8:22: backends[0].connect_timeout: 720h1ms out of range (1ms-720h)",
                  NAME ":9:14: backends[0].timeout: 720h1ms out of range (1ms-720h)",
                  NAME ":10:23: backends[0].health.timeout: 720h1ms out of range (1ms-720h)");
    struct config *c = load_ok(LISTENER_L BACKEND_B "    connect_timeout: 1ms\n    timeout: 720h\n"
                                                    "    health: {timeout: 1ms}\n");
    assert_int_equal(c->backends[0].connect_timeout_ms, 1);
    assert_int_equal(c->backends[0].timeout_ms, 720ULL * 3600 * 1000);
    assert_int_equal(c->backends[0].health.timeout_ms, 1);
    config_unref(c);
}

/* shutdown_timeout, 0s-720h: 0s is allowed (stop at once), 720h1ms is not. */
static void test_shutdown_timeout_range(void **state)
{
    (void)state;
    EXPECT_ERRORS("shutdown_timeout: 720h1ms\n" LISTENER_L BACKEND_B,
                  NAME ":1:19: shutdown_timeout: 720h1ms out of range (0s-720h)");
    struct config *c = load_ok("shutdown_timeout: 0s\n" LISTENER_L BACKEND_B);
    assert_int_equal(c->shutdown_timeout_ms, 0);
    config_unref(c);
    c = load_ok("shutdown_timeout: 720h\n" LISTENER_L BACKEND_B);
    assert_int_equal(c->shutdown_timeout_ms, 720ULL * 3600 * 1000);
    config_unref(c);
}

/* ---- tls.alpn: protocol names of 1-255 bytes ---- */

static void test_alpn_name_length(void **state)
{
    (void)state;
    char name[300], yaml[1024];

    memset(name, 'p', 255);
    name[255] = '\0';
    snprintf(yaml, sizeof(yaml), TLS_LISTENER("      alpn: [h2, %s]\n") BACKEND_B, name);
    struct config *c = load_ok(yaml);
    assert_int_equal(c->listeners[0].tls.alpn.count, 2);
    assert_int_equal(strlen(c->listeners[0].tls.alpn.items[1]), 255);
    config_unref(c);

    memset(name, 'p', 256);
    name[256] = '\0';
    snprintf(yaml, sizeof(yaml), TLS_LISTENER("      alpn: [h2, %s]\n") BACKEND_B, name);
    EXPECT_ERRORS(yaml, NAME ":8:13: listeners[0].tls.alpn: protocol names are at most 255 bytes");

    EXPECT_ERRORS(TLS_LISTENER("      alpn: [h2, \"\"]\n") BACKEND_B,
                  NAME ":8:18: listeners[0].tls.alpn[1]: must not be empty");
    EXPECT_ERRORS(TLS_LISTENER("      alpn: \"\"\n") BACKEND_B,
                  NAME ":8:13: listeners[0].tls.alpn: must not be empty");
}

/* ---- resolver ---- */

#define RESOLVER(body) "resolver:\n" body LISTENER_L BACKEND_B

static void test_resolver_ranges(void **state)
{
    (void)state;
    /* just below each lower bound */
    EXPECT_ERRORS(RESOLVER("  min_ttl: 99ms\n  max_ttl: 999ms\n  retry: 99ms\n"
                           "  timeout: 99ms\n"),
                  NAME ":2:12: resolver.min_ttl: 99ms out of range (100ms-24h)",
                  NAME ":3:12: resolver.max_ttl: 999ms out of range (1s-168h)",
                  NAME ":4:10: resolver.retry: 99ms out of range (100ms-1h)",
                  NAME ":5:12: resolver.timeout: 99ms out of range (100ms-1m)");
    /* just above each upper bound */
    EXPECT_ERRORS(RESOLVER("  min_ttl: 24h1ms\n  max_ttl: 168h1ms\n  retry: 1h1ms\n"
                           "  timeout: 1m1ms\n"),
                  NAME ":2:12: resolver.min_ttl: 24h1ms out of range (100ms-24h)",
                  NAME ":3:12: resolver.max_ttl: 168h1ms out of range (1s-168h)",
                  NAME ":4:10: resolver.retry: 1h1ms out of range (100ms-1h)",
                  NAME ":5:12: resolver.timeout: 1m1ms out of range (100ms-1m)");
    /* the edges themselves are accepted (min_ttl = max_ttl is allowed) */
    struct config *c = load_ok(RESOLVER("  min_ttl: 100ms\n  max_ttl: 1s\n  retry: 100ms\n"
                                        "  timeout: 60s\n"));
    assert_int_equal(c->resolver.min_ttl_ms, 100);
    assert_int_equal(c->resolver.max_ttl_ms, 1000);
    assert_int_equal(c->resolver.retry_ms, 100);
    assert_int_equal(c->resolver.timeout_ms, 60000);
    config_unref(c);
    c = load_ok(RESOLVER("  min_ttl: 24h\n  max_ttl: 168h\n  retry: 1h\n  timeout: 100ms\n"));
    assert_int_equal(c->resolver.min_ttl_ms, 24ULL * 3600 * 1000);
    assert_int_equal(c->resolver.max_ttl_ms, 7ULL * 24 * 3600 * 1000);
    config_unref(c);
    c = load_ok(RESOLVER("  min_ttl: 5s\n  max_ttl: 5s\n"));
    config_unref(c);
}

static void test_resolver_max_ttl_below_min_ttl(void **state)
{
    (void)state;
    EXPECT_ERRORS(RESOLVER("  min_ttl: 10s\n  max_ttl: 5s\n"),
                  NAME ":3:12: resolver.max_ttl: min_ttl (10000 ms) must not exceed max_ttl "
                       "(5000 ms)");
    /* against the defaults: min_ttl above the default max_ttl (5m), max_ttl below the
     * default min_ttl (1s) cannot happen (its own range starts at 1s) */
    EXPECT_ERRORS(RESOLVER("  min_ttl: 5m1ms\n"),
                  NAME ":2:12: resolver.min_ttl: min_ttl (300001 ms) must not exceed max_ttl "
                       "(300000 ms)");
    struct config *c = load_ok(RESOLVER("  min_ttl: 5m\n"));
    config_unref(c);
}

static void test_resolver_at_most_16_nameservers(void **state)
{
    (void)state;
    char yaml[2048];
    size_t off = (size_t)snprintf(yaml, sizeof(yaml), "resolver:\n  nameservers: [");
    for (int i = 1; i <= 16; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off, "%s\"127.0.0.%d\"", i > 1 ? ", " : "",
                                i);
    snprintf(yaml + off, sizeof(yaml) - off, "]\n" LISTENER_L BACKEND_B);
    struct config *c = load_ok(yaml);
    assert_int_equal(c->resolver.nameservers.count, 16);
    assert_string_equal(c->resolver.nameservers.items[15], "127.0.0.16");
    config_unref(c);

    off = (size_t)snprintf(yaml, sizeof(yaml), "resolver:\n  nameservers: [");
    for (int i = 1; i <= 17; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off, "%s\"127.0.0.%d\"", i > 1 ? ", " : "",
                                i);
    snprintf(yaml + off, sizeof(yaml) - off, "]\n" LISTENER_L BACKEND_B);
    EXPECT_ERRORS(yaml, NAME ":2:16: resolver.nameservers: at most 16 nameservers");

    /* none at all: the key must be left out to use /etc/resolv.conf */
    EXPECT_ERRORS(RESOLVER("  nameservers: []\n"),
                  NAME ":2:16: resolver.nameservers: expected at least one nameserver (leave the "
                       "key out to use /etc/resolv.conf)");
    /* left out: no override (the resolver then reads /etc/resolv.conf) */
    c = load_ok(RESOLVER("  timeout: 1s\n"));
    assert_int_equal(c->resolver.nameservers.count, 0);
    config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_keys_refused),
        cmocka_unit_test(test_listener_duration_ranges),
        cmocka_unit_test(test_handshake_timeout_range),
        cmocka_unit_test(test_backend_duration_ranges),
        cmocka_unit_test(test_shutdown_timeout_range),
        cmocka_unit_test(test_alpn_name_length),
        cmocka_unit_test(test_resolver_ranges),
        cmocka_unit_test(test_resolver_max_ttl_below_min_ttl),
        cmocka_unit_test(test_resolver_at_most_16_nameservers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
