/* Unit tests for the template compiler (src/config/template.c) and renderer
 * (src/http/tmpl.c): pieces, every variable, {{, errors, and rendering bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "config/config.h"
#include "http/h1_parse.h"
#include "http/tmpl.h"

#define S(z) ((struct h1_str){z, sizeof(z) - 1})

static void test_pieces(void **state)
{
    (void)state;
    struct cfg_template t;
    char err[160];
    assert_int_equal(cfg_template_compile("https://{host}{request_uri}", 0, &t, err, sizeof(err)),
                     0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.pieces[0].var, TV_LITERAL);
    assert_string_equal(t.pieces[0].text, "https://");
    assert_int_equal(t.pieces[1].var, TV_HOST);
    assert_int_equal(t.pieces[2].var, TV_REQUEST_URI);
    cfg_template_free(&t);
    /* {{ is a literal brace, joined with its neighbours; a lone } is literal */
    assert_int_equal(cfg_template_compile("a{{b}c{header.X-Id}", 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.pieces[0].text, "a{b}c");
    assert_int_equal(t.pieces[1].var, TV_HEADER);
    assert_string_equal(t.pieces[1].text, "X-Id");
    cfg_template_free(&t);
    assert_int_equal(cfg_template_compile("", 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 0);
    cfg_template_free(&t);
}

static void test_errors(void **state)
{
    (void)state;
    struct cfg_template t;
    char err[160];
    assert_int_equal(cfg_template_compile("x{nope}", 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown variable {nope}");
    assert_int_equal(cfg_template_compile("x{host", 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "'{' without '}' (write {{ for a literal brace)");
    assert_int_equal(cfg_template_compile("a\r\nb", 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "a value must not hold CR or LF");
    assert_int_equal(cfg_template_compile("{status}", 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "{status} is only known in response_headers");
    assert_int_equal(cfg_template_compile("{header.a b}", 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid header name in {header.a b}");
    assert_int_equal(cfg_template_compile("{header.}", 0, &t, err, sizeof(err)), -1);
    assert_int_equal(cfg_template_compile("{}", 0, &t, err, sizeof(err)), -1);
    /* allowed with the right flags */
    assert_int_equal(cfg_template_compile("{status} {server}", TMPL_RESPONSE, &t, err, 160), 0);
    cfg_template_free(&t);
    assert_int_equal(cfg_template_compile("a\nb {path}\n", TMPL_MULTILINE, &t, err, 160), 0);
    cfg_template_free(&t);
}

static void test_render(void **state)
{
    (void)state;
    static const char *names[] = {"client_ip",
                                  "client_port",
                                  "host",
                                  "method",
                                  "path",
                                  "query",
                                  "request_uri",
                                  "scheme",
                                  "request_id",
                                  "listener",
                                  "sni",
                                  "tls_version",
                                  "client_cert_subject",
                                  "client_cert_fingerprint",
                                  "client_cert_verify",
                                  "status",
                                  "server"};
    struct h1_header f[2] = {{S("Cookie"), S("a=1; sid=\"xyz\"; b=2")}, {S("X-Id"), S("42")}};
    struct h1_head req = {.headers = f, .n_headers = 2};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(5555)};
    inet_pton(AF_INET, "10.0.0.1", &sin.sin_addr);
    struct h1_str lazy = {NULL, 0}; /* client_ip / client_port: formatted from `client` */
    struct tmpl_ctx x = {lazy,
                         lazy,
                         S("h.example"),
                         S("GET"),
                         S("/p"),
                         S("q=1"),
                         S("/p?q=1"),
                         S("http"),
                         S("rid"),
                         S("web"),
                         S(""),
                         S(""),
                         S(""),
                         S(""),
                         S(""),
                         S("200"),
                         S("10.1.1.1:80"),
                         &req,
                         (const struct sockaddr *)&sin,
                         {0}};
    const char *want[] = {"10.0.0.1", "5555", "h.example", "GET", "/p",         "q=1",
                          "/p?q=1",   "http", "rid",       "web", "",           "",
                          "",         "",     "",          "200", "10.1.1.1:80"};
    char err[160], out[64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char src[64];
        snprintf(src, sizeof(src), "<{%s}>", names[i]);
        struct cfg_template t;
        assert_int_equal(cfg_template_compile(src, TMPL_RESPONSE, &t, err, sizeof(err)), 0);
        bool unsafe = true;
        size_t n = tmpl_render(&t, &x, out, sizeof(out), &unsafe);
        out[n] = 0;
        char exp[64];
        snprintf(exp, sizeof(exp), "<%s>", want[i]);
        assert_string_equal(out, exp);
        assert_false(unsafe);
        cfg_template_free(&t);
    }
    struct cfg_template t;
    assert_int_equal(cfg_template_compile("{cookie.sid}/{cookie.b}/{cookie.none}/{header.x-id}/"
                                          "{header.none}",
                                          0, &t, err, sizeof(err)),
                     0);
    size_t n = tmpl_render(&t, &x, out, sizeof(out), NULL);
    assert_int_equal(n, strlen("xyz/2//42/"));
    assert_memory_equal(out, "xyz/2//42/", n);
    /* too long for the buffer: refused whole, never cut */
    assert_int_equal(tmpl_render(&t, &x, out, 5, NULL), TMPL_TOO_LONG);
    cfg_template_free(&t);
    /* a substituted CR or LF makes the value unsafe (a literal LF in a body does not) */
    struct h1_header g[1] = {{S("X-Bad"), S("a\r\nb")}};
    struct h1_head req2 = {.headers = g, .n_headers = 1};
    x.req = &req2;
    assert_int_equal(cfg_template_compile("{header.X-Bad}", 0, &t, err, sizeof(err)), 0);
    bool unsafe = false;
    tmpl_render(&t, &x, out, sizeof(out), &unsafe);
    assert_true(unsafe);
    cfg_template_free(&t);
    assert_int_equal(cfg_template_compile("a\nb", TMPL_MULTILINE, &t, err, sizeof(err)), 0);
    tmpl_render(&t, &x, out, sizeof(out), &unsafe);
    assert_false(unsafe);
    cfg_template_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
