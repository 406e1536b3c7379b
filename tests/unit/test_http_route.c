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
#define HTTP_ROUTE_BAD (-100) /* refused by http_route_input */

static int route(const struct config *c, const char *text)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    static char req[8192]; /* normalised in place: a writable copy */
    snprintf(req, sizeof(req), "%s", text);
    h1_head_init(&h, f, T_FIELDS);
    int r = h1_parse_request(req, strlen(req), &T_LIMITS, &h);
    if (r <= 0)
        fail_msg("head refused: %s", req);
    struct h1_msg m;
    if (h1_check_request(&h, 0, &m) != H1_OK)
        fail_msg("request refused: %s", req);
    struct http_route_in in;
    if (http_route_input(&h, &m, &in) < 0)
        return HTTP_ROUTE_BAD;
    return http_route_pick(&c->listeners[0], &in);
}

/* The backend name a request goes to, or "404". */
static const char *backend_of(const struct config *c, const char *req)
{
    int r = route(c, req);
    const struct cfg_listener *l = &c->listeners[0];
    if (r == HTTP_ROUTE_NONE)
        return "404";
    if (r == HTTP_ROUTE_BAD)
        return "400";
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

static void test_header_forms(void **state)
{
    (void)state;
    struct config *c =
        load("    routes:\n"
             "      - {match: {headers: {X-Debug: {present: false}, X-Canary: {present: true}}},"
             " backend: a}\n"
             "      - {match: {headers: {User-Agent: {regex: \"^curl/[0-9]\"}}}, backend: b}\n"
             "      - {match: {headers: {X-Exact: {exact: \"a b\"}}}, backend: c}\n");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Canary: \r\n\r\n", "a"); /* present, empty */
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Canary: 0\r\nX-Debug: 1\r\n\r\n", "404");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8.1\r\n\r\n", "b");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: xcurl/8.1\r\n\r\n", "404");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Exact: a b\r\n\r\n", "c");
    EXPECT(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Exact: a  b\r\n\r\n", "404");
    config_unref(c);
}

static void test_query(void **state)
{
    (void)state;
    struct config *c =
        load("    routes:\n"
             "      - {match: {query: {v: \"2\", debug: {present: false}}}, backend: a}\n"
             "      - {match: {query: {id: {regex: \"^[0-9]+$\"}}}, backend: b}\n"
             "      - {match: {query: {\"a b\": \"x&y\"}}, backend: c}\n");
    EXPECT(c, GET("/x?v=2", "h"), "a");
    EXPECT(c, GET("/x?a=1&v=2&w", "h"), "a");
    EXPECT(c, GET("/x?%76=%32", "h"), "a"); /* decoded */
    EXPECT(c, GET("/x?v=2&debug", "h"), "404");
    EXPECT(c, GET("/x?v=3&v=2", "h"), "404"); /* the first one counts */
    EXPECT(c, GET("/x?v=20", "h"), "404");
    EXPECT(c, GET("/x", "h"), "404");
    EXPECT(c, GET("/x?id=42", "h"), "b");
    EXPECT(c, GET("/x?id=42a&v=2", "h"), "a");
    EXPECT(c, GET("/x?id=4x2", "h"), "404");
    EXPECT(c, GET("/x?a%20b=x%26y", "h"), "c");
    EXPECT(c, GET("/x?a+b=x%26y", "h"), "404"); /* '+' is not a space */
    config_unref(c);
}

static void test_normalised_paths(void **state)
{
    (void)state;
    struct config *c = load("    routes:\n"
                            "      - {match: {path_prefix: /admin}, backend: a}\n"
                            "      - {match: {path: /p/}, backend: b}\n"
                            "    backend: c\n");
    EXPECT(c, GET("/a/../admin", "h"), "a");
    EXPECT(c, GET("/x/%2e%2e/admin/y", "h"), "a");
    EXPECT(c, GET("/./admin", "h"), "a");
    EXPECT(c, GET("/%61dmin?q=/../", "h"), "a"); /* the query is not a path */
    EXPECT(c, GET("http://h/z/../admin", "h"), "a");
    EXPECT(c, GET("/admin%2F", "h"), "c"); /* %2F is no separator */
    EXPECT(c, GET("/p/q/..", "h"), "b");
    EXPECT(c, GET("/..", "h"), "400");
    EXPECT(c, GET("/a/../../admin", "h"), "400");
    /* the target is edited in place: what is forwarded is what was routed */
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    char req[] = "GET /a/./b/../%63?x=/../y HTTP/1.1\r\nHost: h\r\n\r\n";
    h1_head_init(&h, f, T_FIELDS);
    assert_true(h1_parse_request(req, strlen(req), &T_LIMITS, &h) > 0);
    struct h1_msg m;
    assert_int_equal(h1_check_request(&h, 0, &m), H1_OK);
    struct http_route_in in;
    assert_int_equal(http_route_input(&h, &m, &in), 0);
    assert_int_equal(h.target.len, strlen("/a/c?x=/../y"));
    assert_memory_equal(h.target.p, "/a/c?x=/../y", h.target.len);
    assert_int_equal(in.path.len, 4);
    assert_memory_equal(in.query.p, "x=/../y", in.query.len);
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
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_normalised_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
