/* Unit tests for http_cookie_find (http/affinity.h): the cookie the affinity and the
 * cookie:NAME hash key read, across several Cookie fields, with spaces, quotes, empty
 * values, exact (case-sensitive) names and malformed pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "h1_test_util.h"
#include "http/affinity.h"

/* Parses `raw` (a request head) into h; fields in `f`. */
static void parse(const char *raw, struct h1_head *h, struct h1_header *f)
{
    h1_head_init(h, f, T_FIELDS);
    assert_true(h1_parse_request(raw, strlen(raw), &T_LIMITS, h) > 0);
}

/* The value of `name`, or "<none>". */
static void expect(const char *raw, const char *name, const char *want)
{
    struct h1_header f[T_FIELDS];
    struct h1_head h;
    parse(raw, &h, f);
    struct h1_str v = {NULL, 0};
    bool found = http_cookie_find(&h, name, &v);
    if (strcmp(want, "<none>") == 0) {
        if (found)
            fail_msg("%s: found '%.*s' in %s", name, (int)v.len, v.p, raw);
        return;
    }
    if (!found || !t_str_is(v, want))
        fail_msg("%s: want '%s', got %s '%.*s' in %s", name, want, found ? "" : "nothing",
                 (int)v.len, v.p ? v.p : "", raw);
}

static void test_cookie_find(void **state)
{
    (void)state;
    const char *r1 = "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; SLUICE=00ff; b=2\r\n\r\n";
    expect(r1, "SLUICE", "00ff");
    expect(r1, "a", "1");
    expect(r1, "b", "2");
    expect(r1, "sluice", "<none>"); /* names are case-sensitive */
    expect(r1, "SLUIC", "<none>");
    /* the second Cookie field, lowercase field name, odd spacing, quotes */
    expect("GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\ncookie:  sid = \"q v\" ;y=\r\n\r\n", "sid",
           "q v");
    expect("GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\ncookie: sid=1;y=\r\n\r\n", "y", "");
    /* pairs without '=' are skipped; the first of two wins */
    expect("GET / HTTP/1.1\r\nHost: a\r\nCookie: junk; k=v1; k=v2;;\r\n\r\n", "k", "v1");
    expect("GET / HTTP/1.1\r\nHost: a\r\nCookie: junk\r\n\r\n", "junk", "<none>");
    expect("GET / HTTP/1.1\r\nHost: a\r\nX-Cookie: k=v\r\n\r\n", "k", "<none>");
    expect("GET / HTTP/1.1\r\nHost: a\r\nCookie:\r\n\r\n", "k", "<none>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
