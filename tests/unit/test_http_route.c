/* Unit tests for HTTP routing (src/http/route.c): the listener's `hosts` filter, route
 * conditions (host exact and "*.suffix", with and without a port in Host; path,
 * path_prefix segment-aware, path_regex; methods; headers), first match wins, the default
 * backend and no route. Requests are parsed and checked as the proxy does (h1_parse,
 * h1_check_request) and routed as h1_conn.c routes them; listeners come from YAML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/route.h"

#include "h1_test_util.h"

#define BACKENDS                                                                                   \
    "backends:\n"                                                                                  \
    "  - {name: a, protocol: http, servers: [127.0.0.1:81]}\n"                                     \
    "  - {name: b, protocol: http, servers: [127.0.0.1:82]}\n"                                     \
    "  - {name: c, protocol: http, servers: [127.0.0.1:83]}\n"

static struct config *load(const char *listener)
{
    char yaml[4096];
    snprintf(
        yaml, sizeof(yaml),
        "listeners:\n  - name: l\n    bind: \"127.0.0.1:8080\"\n    protocol: http\n%s" BACKENDS,
        listener);
    struct cfg_errors e = {0};
    struct config *c = config_load_buffer("t.yaml", yaml, strlen(yaml), &e);
    for (size_t i = 0; i < e.count; i++)
        print_error("config: %s\n", e.items[i]);
    assert_int_equal(e.count, 0);
    assert_non_null(c);
    cfg_errors_free(&e);
    return c;
}

/* Routes the raw request head `req` on c's first listener, as h1_conn.c does. */
static int route(const struct config *c, const char *req)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    h1_head_init(&h, f, T_FIELDS);
    int r = h1_parse_request(req, strlen(req), &T_LIMITS, &h);
    if (r <= 0)
        fail_msg("head refused: %s", req);
    struct h1_msg m;
    if (h1_check_request(&h, 0, &m) != H1_OK)
        fail_msg("request refused: %s", req);
    struct h1_str path = h.form == H1_ASTERISK_FORM ? (struct h1_str){"*", 1} : h.path;
    if (h.form == H1_ABSOLUTE_FORM && path.len == 0)
        path = (struct h1_str){"/", 1};
    const char *q = memchr(path.p, '?', path.len);
    if (q)
        path.len = (size_t)(q - path.p);
    struct http_route_in in = {h.method, m.host, path, &h};
    return http_route_pick(&c->listeners[0], &in);
}

/* The backend name a request goes to, or "404". */
static const char *backend_of(const struct config *c, const char *req)
{
    int r = route(c, req);
    const struct cfg_listener *l = &c->listeners[0];
    if (r == HTTP_ROUTE_NONE)
        return "404";
    int bi = r == HTTP_ROUTE_DEFAULT ? l->backend_index : l->routes[r].backend_index;
    return c->backends[bi].name;
}

#define GET(path, host) "GET " path " HTTP/1.1\r\nHost: " host "\r\n\r\n"
#define EXPECT(c, req, want) assert_string_equal(backend_of(c, req), want)

static void test_host_match(void **state)
{
    (void)state;
    struct config *c = load("    backend: c\n    routes:\n"
                            "      - {match: {host: api.example.com}, backend: a}\n"
                            "      - {match: {host: \"*.example.com\"}, backend: b}\n");
    EXPECT(c, GET("/", "api.example.com"), "a");
    EXPECT(c, GET("/", "API.Example.COM"), "a");      /* case-insensitive */
    EXPECT(c, GET("/", "api.example.com:8080"), "a"); /* port left out */
    EXPECT(c, GET("/", "www.example.com"), "b");
    EXPECT(c, GET("/", "www.example.com:8080"), "b");
    EXPECT(c, GET("/", "a.b.example.com"), "b"); /* one or more labels */
    EXPECT(c, GET("/", "example.com"), "c");     /* the suffix alone is not a subdomain */
    EXPECT(c, GET("/", "xexample.com"), "c");    /* label boundary */
    EXPECT(c, GET("/", "api.example.com.evil"), "c");
    EXPECT(c, GET("/", "other.org"), "c");
    /* absolute-form: the target's authority is the host */
    EXPECT(c, "GET http://api.example.com:81/x HTTP/1.1\r\nHost: api.example.com:81\r\n\r\n", "a");
    /* HTTP/1.0 without Host: only the default */
    EXPECT(c, "GET / HTTP/1.0\r\n\r\n", "c");

    assert_true(http_host_matches("*.x.org", "a.x.org", 7));
    assert_false(http_host_matches("*.x.org", ".x.org", 6));
    assert_false(http_host_matches("a.x.org", "a.x.or", 6));
    config_unref(c);
}

static void test_listener_hosts(void **state)
{
    (void)state;
    struct config *c = load("    hosts: [example.com, \"*.example.net\"]\n    backend: c\n"
                            "    routes:\n      - {match: {path: /a}, backend: a}\n");
    EXPECT(c, GET("/", "example.com"), "c");
    EXPECT(c, GET("/", "EXAMPLE.com:8080"), "c");
    EXPECT(c, GET("/a", "www.example.net"), "a");
    EXPECT(c, GET("/", "www.example.com"), "404"); /* not listed, default not used */
    EXPECT(c, GET("/a", "example.org"), "404");    /* nor the routes */
    EXPECT(c, GET("/", "example.net"), "404");
    EXPECT(c, "GET / HTTP/1.0\r\n\r\n", "404"); /* no host at all */
    config_unref(c);
}

static void test_paths(void **state)
{
    (void)state;
    struct config *c = load("    backend: c\n    routes:\n"
                            "      - {match: {path: /exact}, backend: a}\n"
                            "      - {match: {path_prefix: /api}, backend: b}\n"
                            "      - {match: {path_prefix: /dir/}, backend: a}\n"
                            "      - {match: {path_regex: \"\\\\.png$\"}, backend: b}\n"
                            "      - {match: {path_regex: \"^/re[0-9]+\"}, backend: a}\n");
    EXPECT(c, GET("/exact", "h"), "a");
    EXPECT(c, GET("/exact?q=1", "h"), "a"); /* the query takes no part */
    EXPECT(c, GET("/exact/", "h"), "c");
    EXPECT(c, GET("/exactly", "h"), "c");
    EXPECT(c, GET("/api", "h"), "b");
    EXPECT(c, GET("/api/", "h"), "b");
    EXPECT(c, GET("/api/x/y", "h"), "b");
    EXPECT(c, GET("/api?x", "h"), "b");
    EXPECT(c, GET("/apix", "h"), "c"); /* segment-aware */
    EXPECT(c, GET("/ap", "h"), "c");
    EXPECT(c, GET("/API", "h"), "c"); /* paths are case-sensitive */
    EXPECT(c, GET("/dir/", "h"), "a");
    EXPECT(c, GET("/dir/f", "h"), "a");
    EXPECT(c, GET("/dir", "h"), "c"); /* "/dir/" needs the slash */
    EXPECT(c, GET("/dirx/f", "h"), "c");
    EXPECT(c, GET("/img/x.png", "h"), "b"); /* unanchored start */
    EXPECT(c, GET("/img/x.png?v=1", "h"), "b");
    EXPECT(c, GET("/img/x.pngx", "h"), "c");
    EXPECT(c, GET("/re12/x", "h"), "a");
    EXPECT(c, GET("/x/re12", "h"), "c"); /* anchored */
    /* percent-decoded when the escapes decode */
    EXPECT(c, GET("/%65xact", "h"), "a");
    EXPECT(c, GET("/ap%69/x", "h"), "b");
    EXPECT(c, GET("http://h/api/x", "h"), "b");
    EXPECT(c, GET("http://h", "h"), "c"); /* absolute-form without a path is "/" */
    config_unref(c);
}

static void test_methods_headers(void **state)
{
    (void)state;
    struct config *c =
        load("    routes:\n"
             "      - {match: {methods: [POST, PUT]}, backend: a}\n"
             "      - {match: {headers: {X-Canary: \"1\", X-Env: prod}}, backend: b}\n");
    EXPECT(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "a");
    EXPECT(c, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "a");
    EXPECT(c, GET("/", "h"), "404");                        /* no default backend */
    EXPECT(c, "post / HTTP/1.1\r\nHost: h\r\n\r\n", "404"); /* methods are case-sensitive */
    EXPECT(c, "POSTX / HTTP/1.1\r\nHost: h\r\n\r\n", "404");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nx-canary: 1\r\nX-ENV: prod\r\n\r\n", "b");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\n\r\n", "404"); /* both needed */
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\nX-Env: Prod\r\n\r\n", "404");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Canary: 10\r\nX-Env: prod\r\n\r\n", "404");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\nX-Env: pro\r\n\r\n", "404");
    /* the first line of that name counts */
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Env: prod\r\nX-Canary: 1\r\nX-Env: dev\r\n\r\n", "b");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Env: dev\r\nX-Canary: 1\r\nX-Env: prod\r\n\r\n",
           "404");
    config_unref(c);
}

static void test_first_match_and_all_conditions(void **state)
{
    (void)state;
    struct config *c =
        load("    backend: c\n    routes:\n"
             "      - {match: {host: a.example, path_prefix: /v1, methods: [GET]}, backend: a}\n"
             "      - {match: {path_prefix: /v1}, backend: b}\n"
             "      - {match: {path_prefix: /}, backend: a}\n");
    EXPECT(c, GET("/v1/x", "a.example"), "a");
    EXPECT(c, GET("/v1/x", "b.example"), "b");                      /* host fails: next route */
    EXPECT(c, "HEAD /v1 HTTP/1.1\r\nHost: a.example\r\n\r\n", "b"); /* method fails */
    EXPECT(c, GET("/v2", "a.example"), "a"); /* third route catches all paths */
    assert_int_equal(route(c, GET("/v1", "a.example")), 0);
    assert_int_equal(route(c, GET("/v1", "b.example")), 1);
    assert_int_equal(route(c, GET("/x", "b.example")), 2);
    assert_int_equal(route(c, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_ROUTE_DEFAULT);
    config_unref(c);

    c = load("    backend: c\n    routes:\n      - {match: {path: /a}, backend: a}\n");
    assert_int_equal(route(c, GET("/b", "h")), HTTP_ROUTE_DEFAULT);
    config_unref(c);
    c = load("    routes:\n      - {match: {path: /a}, backend: a}\n");
    assert_int_equal(route(c, GET("/b", "h")), HTTP_ROUTE_NONE);
    assert_int_equal(route(c, GET("/a", "h")), 0);
    config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_match),
        cmocka_unit_test(test_listener_hosts),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_methods_headers),
        cmocka_unit_test(test_first_match_and_all_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
