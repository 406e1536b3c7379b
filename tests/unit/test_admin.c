/* Unit tests for the admin server's pure parts: api_parse_patch() (src/admin/admin_api.c),
 * which turns a PATCH body into a server change, and the dashboard files embedded at
 * build time (ah_assets[], ah_find_asset(), ah_asset_type() in src/admin/admin_http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_http.h"
#include "upstream/server.h"

/* ---------------------------------------------------------------------------------- */
/* PATCH bodies */

static int parse_len(const char *body, size_t len, struct api_patch *p, char *err, size_t errlen)
{
    memset(err, 0, errlen);
    return api_parse_patch(body, len, p, err, errlen);
}

static void expect_change(const char *body, int state, int weight)
{
    struct api_patch p;
    char err[256];
    if (parse_len(body, strlen(body), &p, err, sizeof(err)) != 0)
        fail_msg("refused %s: %s", body, err);
    assert_int_equal(p.state, state);
    assert_int_equal(p.weight, weight);
}

/* The body is refused with a message containing `fragment`. */
static void expect_error_len(const char *body, size_t len, const char *fragment)
{
    struct api_patch p;
    char err[256];
    if (parse_len(body, len, &p, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", body);
    if (!strstr(err, fragment))
        fail_msg("for %s: message \"%s\" lacks \"%s\"", body, err, fragment);
}

static void expect_error(const char *body, const char *fragment)
{
    expect_error_len(body, strlen(body), fragment);
}

/* The body is refused with exactly `message`. */
static void expect_message(const char *body, const char *message)
{
    struct api_patch p;
    char err[256];
    if (parse_len(body, strlen(body), &p, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", body);
    assert_string_equal(err, message);
}

static const char STATE_MSG[] = "\"state\" must be one of \"enabled\", \"drain\", \"disabled\"";
static const char WEIGHT_MSG[] = "\"weight\" must be an integer from 0 to 256";
static const char FRACTION_MSG[] = "\"weight\" must be an integer from 0 to 256 (only integers "
                                   "are accepted, not fractions or exponents)";

static void test_patch_good(void **state)
{
    (void)state;
    expect_change(" {\"state\" : \"drain\",\n\t\"weight\":5 } \n", SERVER_DRAIN, 5);
    expect_change("{\"state\":\"enabled\"}", SERVER_ENABLED, -1);
    expect_change("{\"state\":\"disabled\"}", SERVER_DISABLED, -1);
    expect_change("{\"weight\":0}", -1, 0);
    expect_change("{\"weight\":256}", -1, 256);
    expect_change("{\"weight\":-0}", -1, 0);
    expect_change("{\"weight\":7,\"state\":\"enabled\"}", SERVER_ENABLED, 7);
    /* escapes are decoded in keys and values */
    expect_change("{\"\\u0073tate\":\"dr\\u0061in\"}", SERVER_DRAIN, -1);
    /* only len bytes are read */
    struct api_patch p;
    char err[256];
    static const char body[] = "{\"weight\":9}garbage";
    assert_int_equal(parse_len(body, 12, &p, err, sizeof(err)), 0);
    assert_int_equal(p.weight, 9);
    assert_int_equal(p.state, -1);
}

static void test_patch_not_an_object(void **state)
{
    (void)state;
    static const char empty[] = "bad JSON body: empty body: expected a JSON object";
    expect_message("", empty);
    expect_message("   \r\n\t", empty);
    static const char object[] = "bad JSON body: expected a JSON object '{...}'";
    expect_message("[1]", object);
    expect_message("[]", object);
    expect_message("\"x\"", object);
    expect_message("5", object);
    expect_message("null", object);
}

static void test_patch_syntax(void **state)
{
    (void)state;
    expect_error("{", "bad JSON body: string or '}' expected near end of file");
    expect_error("{\"a\"", "bad JSON body: ':' expected near end of file");
    expect_error("{\"a\":", "bad JSON body: unexpected token near end of file");
    expect_error("{\"a\":1", "bad JSON body: '}' expected near end of file");
    expect_error("{\"a\":1,}", "bad JSON body: string or '}' expected near '}'");
    expect_error("{\"a\":1 \"b\":2}", "bad JSON body: '}' expected near '\"b\"'");
    expect_error("{a:1}", "bad JSON body: string or '}' expected near 'a'");
    expect_error("{\"weight\":01}", "bad JSON body: invalid token near '0'");
    expect_error("{\"weight\":-}", "bad JSON body: invalid token near '-'");
    expect_error("{\"weight\":NaN}", "bad JSON body: invalid token");
    expect_error("{\"weight\":9223372036854775808}", "bad JSON body: too big integer");
    expect_error("{\"weight\":-9223372036854775809}", "bad JSON body: too big negative integer");
    expect_error("{\"state\":\"drain\"} trailing", "bad JSON body: end of file expected");
    expect_error("{\"state\":\"drain\"}{}", "bad JSON body: end of file expected");
    expect_error_len("{\"state\":\"drain\"}\0", 18, "bad JSON body: end of file expected");
    expect_error("{\"state\":\"abc", "bad JSON body: premature end of input");
    /* the position is where reading stopped */
    expect_error("{\"state\": tru}", "bad JSON body: invalid token near 'tru' (at byte 13)");
}

static void test_patch_strings(void **state)
{
    (void)state;
    expect_error("{\"state\":\"x\ny\"}", "bad JSON body: unexpected newline");
    expect_error("{\"state\":\"x\x01\"}", "bad JSON body: control character 0x1");
    expect_error("{\"state\":\"\\x\"}", "bad JSON body: invalid escape");
    expect_error("{\"state\":\"\\u12\"}", "bad JSON body: invalid escape");
    expect_error("{\"state\":\"\\ud800\"}", "bad JSON body: invalid Unicode '\\uD800'");
    expect_error("{\"state\":\"\\udc00\"}", "bad JSON body: invalid Unicode '\\uDC00'");
    expect_error("{\"state\":\"\xc3\"}", "bad JSON body: unable to decode byte 0xc3");
    expect_error("{\"state\":\"\xc0\xaf\"}", "bad JSON body: unable to decode byte 0xc0");
    expect_error("{\"state\":\"\xed\xa0\x80\"}", "bad JSON body: unable to decode byte 0xed");
    expect_error("{\"\xc3\":1}", "bad JSON body: unable to decode byte 0xc3");
    expect_error("{\"state\":\"x\\u0000\"}", "bad JSON body: \\u0000 is not allowed");
    expect_error("{\"a\\u0000b\":1}", "bad JSON body: NUL byte in object key not supported");
}

static void test_patch_duplicates(void **state)
{
    (void)state;
    expect_error("{\"state\":\"drain\",\"state\":\"enabled\"}",
                 "bad JSON body: duplicate object key near '\"state\"'");
    expect_error("{\"state\":\"drain\",\"\\u0073tate\":\"drain\"}",
                 "bad JSON body: duplicate object key");
}

static void test_patch_fields(void **state)
{
    (void)state;
    expect_message("{}", "nothing to change: give \"state\" and/or \"weight\"");
    expect_message("{\"colour\":\"red\"}",
                   "unknown field \"colour\" (expected \"state\" and/or \"weight\")");
    /* the first unknown member is named, whatever the count */
    expect_message("{\"state\":\"drain\",\"weight\":1,\"k2\":2,\"k3\":3}",
                   "unknown field \"k2\" (expected \"state\" and/or \"weight\")");
    /* a long key is quoted up to 64 bytes, never splitting a UTF-8 sequence */
    char body[512], want[512];
    snprintf(body, sizeof(body), "{\"%s\":1}",
             "x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    char key31[128] = "x";
    for (int i = 0; i < 31; i++)
        strcat(key31, "\xc3\xa9");
    snprintf(want, sizeof(want), "unknown field \"%s...\" (expected \"state\" and/or \"weight\")",
             key31);
    expect_message(body, want);
}

static void test_patch_state(void **state)
{
    (void)state;
    expect_message("{\"state\":true}", STATE_MSG);
    expect_message("{\"state\":null}", STATE_MSG);
    expect_message("{\"state\":5}", STATE_MSG);
    expect_message("{\"state\":{}}", STATE_MSG);
    expect_message("{\"state\":[\"drain\"]}", STATE_MSG);
    expect_message(
        "{\"state\":\"sleeping\"}",
        "\"state\" must be one of \"enabled\", \"drain\", \"disabled\", not \"sleeping\"");
    expect_message("{\"state\":\"Drain\"}",
                   "\"state\" must be one of \"enabled\", \"drain\", \"disabled\", not \"Drain\"");
    char body[256], want[256], x64[65];
    memset(x64, 'x', 64);
    x64[64] = 0;
    snprintf(body, sizeof(body), "{\"state\":\"%sxxxx\"}", x64);
    snprintf(want, sizeof(want), "%s, not \"%s...\"", STATE_MSG, x64);
    expect_message(body, want);
    /* a bad weight next to a good state: nothing is half-read */
    struct api_patch p;
    char err[256];
    static const char half[] = "{\"state\":\"drain\",\"weight\":-5}";
    assert_int_equal(parse_len(half, strlen(half), &p, err, sizeof(err)), -1);
    assert_string_equal(err, WEIGHT_MSG);
    assert_int_equal(p.state, -1);
    assert_int_equal(p.weight, -1);
}

static void test_patch_weight(void **state)
{
    (void)state;
    expect_message("{\"weight\":\"5\"}", WEIGHT_MSG);
    expect_message("{\"weight\":-1}", WEIGHT_MSG);
    expect_message("{\"weight\":257}", WEIGHT_MSG);
    expect_message("{\"weight\":9223372036854775807}", WEIGHT_MSG);
    expect_message("{\"weight\":-9223372036854775808}", WEIGHT_MSG);
    expect_message("{\"weight\":true}", WEIGHT_MSG);
    expect_message("{\"weight\":null}", WEIGHT_MSG);
    expect_message("{\"weight\":[5]}", WEIGHT_MSG);
    expect_message("{\"weight\":1.5}", FRACTION_MSG);
    expect_message("{\"weight\":1.0}", FRACTION_MSG);
    expect_message("{\"weight\":1e3}", FRACTION_MSG);
    expect_message("{\"state\":\"drain\",\"weight\":2E0}", FRACTION_MSG);
}

static void test_patch_depth(void **state)
{
    (void)state;
    /* nesting is bounded by the parser (2048 levels) before anything is looked at */
    size_t n = 3000;
    char *deep = malloc(n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    expect_error_len(deep, n, "bad JSON body: maximum parsing depth reached");
    /* a valid nested value is refused by type */
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"state\":");
    for (int i = 0; i < 100; i++)
        deep[k++] = '[';
    for (int i = 0; i < 100; i++)
        deep[k++] = ']';
    strcpy(deep + k, "}");
    expect_message(deep, STATE_MSG);
    free(deep);
}

static void test_patch_small_error_buffer(void **state)
{
    (void)state;
    struct api_patch p;
    char small[6] = "?????";
    assert_int_equal(api_parse_patch("{\"state\": tru}", 14, &p, small, 4), -1);
    assert_string_equal(small, "bad");
    assert_int_equal(small[4], '?');
}

/* ---------------------------------------------------------------------------------- */
/* dashboard files */

/* The folder of the dashboard's source files, found from this file's path (the build
 * runs from the repository root). */
static void dashboard_dir(char *out, size_t outlen)
{
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/test_admin.c");
    assert_non_null(tail);
    snprintf(out, outlen, "%.*ssrc/admin/dashboard", (int)(tail - me), me);
}

static void test_assets_lookup(void **state)
{
    (void)state;
    const struct ah_asset *a = ah_find_asset("/", 1);
    assert_non_null(a);
    assert_string_equal(a->name, "index.html");
    assert_ptr_equal(ah_find_asset("/index.html", 11), a);
    a = ah_find_asset("/dashboard.js", 13);
    assert_non_null(a);
    assert_string_equal(a->name, "dashboard.js");
    a = ah_find_asset("/dashboard.css", 14);
    assert_non_null(a);
    assert_string_equal(a->name, "dashboard.css");
    /* a path is matched whole */
    assert_null(ah_find_asset("/dashboard.css", 13));
    assert_null(ah_find_asset("/dashboard.cssx", 15));
    assert_null(ah_find_asset("/dashboard.js/", 14));
    assert_null(ah_find_asset("//", 2));
    assert_null(ah_find_asset("dashboard.js", 12));
    assert_null(ah_find_asset("", 0));
    assert_null(ah_find_asset("/nope.js", 8));

    assert_string_equal(ah_asset_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(ah_asset_type("dashboard.css"), "text/css; charset=utf-8");
    assert_string_equal(ah_asset_type("dashboard.js"), "text/javascript; charset=utf-8");
    assert_string_equal(ah_asset_type("x.json"), "application/octet-stream");
    assert_string_equal(ah_asset_type(".js"), "application/octet-stream");
    for (size_t i = 0; i < ah_n_assets; i++)
        assert_string_not_equal(ah_asset_type(ah_assets[i].name), "application/octet-stream");
}

/* What is embedded is what is in src/admin/dashboard/ now: same files, same bytes (so a
 * stale build, where make missed an edit, fails here). */
static void test_assets_match_sources(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    dashboard_dir(dir, sizeof(dir));
    for (size_t i = 0; i < ah_n_assets; i++) {
        const struct ah_asset *a = &ah_assets[i];
        assert_int_equal(a->data[a->len], 0);
        snprintf(path, sizeof(path), "%s/%s", dir, a->name);
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("%s is embedded but %s cannot be opened", a->name, path);
        unsigned char *buf = malloc(a->len + 1);
        assert_non_null(buf);
        size_t n = fread(buf, 1, a->len + 1, f);
        fclose(f);
        if (n != a->len || memcmp(buf, a->data, n) != 0)
            fail_msg("%s differs from the embedded copy: rebuild (make)", path);
        free(buf);
    }
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t served = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_name[0] == '.' || !dot ||
            (strcmp(dot, ".html") && strcmp(dot, ".css") && strcmp(dot, ".js")))
            continue;
        char p[1024];
        int n = snprintf(p, sizeof(p), "/%s", e->d_name);
        if (!ah_find_asset(p, (size_t)n))
            fail_msg("%s/%s is not embedded: rebuild (make)", dir, e->d_name);
        served++;
    }
    closedir(d);
    assert_int_equal(served, ah_n_assets);
}

/* The page works under its Content-Security-Policy (script-src and style-src 'self'): no
 * inline script or style, and every file it loads from this server is embedded. */
static void test_page_fits_its_csp(void **state)
{
    (void)state;
    const struct ah_asset *page = ah_find_asset("/", 1);
    assert_non_null(page);
    const char *html = (const char *)page->data;
    assert_null(strstr(html, "<script>"));
    assert_null(strstr(html, "<style"));
    assert_null(strstr(html, " style="));
    for (const char *p = strstr(html, " on"); p; p = strstr(p + 1, " on")) {
        size_t n = strspn(p + 3, "abcdefghijklmnopqrstuvwxyz");
        if (n && p[3 + n] == '=')
            fail_msg("inline event handler in index.html: %.20s", p + 1);
    }
    assert_non_null(strstr(html, "<script src=\"/dashboard.js\"></script>"));
    assert_non_null(strstr(html, "<link rel=\"stylesheet\" href=\"/dashboard.css\">"));
    static const char *const attrs[] = {"src=\"/", "href=\"/"};
    for (size_t i = 0; i < 2; i++) {
        for (const char *p = strstr(html, attrs[i]); p; p = strstr(p + 1, attrs[i])) {
            const char *url = p + strlen(attrs[i]) - 1;
            const char *end = strchr(url, '"');
            assert_non_null(end);
            if (!ah_find_asset(url, (size_t)(end - url)))
                fail_msg("index.html loads %.*s, which is not embedded", (int)(end - url), url);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch_good),        cmocka_unit_test(test_patch_not_an_object),
        cmocka_unit_test(test_patch_syntax),      cmocka_unit_test(test_patch_strings),
        cmocka_unit_test(test_patch_duplicates),  cmocka_unit_test(test_patch_fields),
        cmocka_unit_test(test_patch_state),       cmocka_unit_test(test_patch_weight),
        cmocka_unit_test(test_patch_depth),       cmocka_unit_test(test_patch_small_error_buffer),
        cmocka_unit_test(test_assets_lookup),     cmocka_unit_test(test_assets_match_sources),
        cmocka_unit_test(test_page_fits_its_csp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
