/* Unit tests for the admin server's pure parts: the dashboard files embedded at build
 * time (ah_assets[], ah_find_asset(), ah_asset_type() in src/admin/admin_http.c). */
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
        cmocka_unit_test(test_assets_lookup),
        cmocka_unit_test(test_assets_match_sources),
        cmocka_unit_test(test_page_fits_its_csp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
