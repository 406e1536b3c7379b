/* Unit tests for src/net/host_pattern.c: the one reading of host patterns used by route
 * `sni`/`host` conditions and listener `hosts` lists on L4 and HTTP listeners. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/host_pattern.h"

static bool m(const char *pattern, const char *name)
{
    return host_pattern_matches(pattern, name, strlen(name));
}

static void test_exact_names_compare_without_case(void **state)
{
    (void)state;
    assert_true(m("example.com", "example.com"));
    assert_true(m("example.com", "EXAMPLE.Com"));
    assert_false(m("example.com", "www.example.com"));
    assert_false(m("example.com", "example.co"));
    assert_false(m("example.com", "example.comm"));
    assert_false(m("example.com", ""));
}

static void test_star_suffix_admits_any_depth_but_not_the_suffix_itself(void **state)
{
    (void)state;
    assert_true(m("*.example.org", "a.example.org"));
    assert_true(m("*.example.org", "a.b.example.org"));
    assert_true(m("*.example.org", "A.EXAMPLE.ORG"));
    assert_false(m("*.example.org", "example.org"));
    assert_false(m("*.example.org", ".example.org"));
    assert_false(m("*.example.org", "badexample.org"));
    assert_false(m("*.x.org", "x.org"));
}

static void test_length_bounds_the_name(void **state)
{
    (void)state;
    /* the name is a view into a longer buffer (an HTTP Host field) */
    const char *buf = "a.x.org:8080";
    assert_true(host_pattern_matches("*.x.org", buf, 7));
    assert_true(host_pattern_matches("a.x.org", buf, 7));
    assert_false(host_pattern_matches("a.x.org", buf, 6));
}

static void test_lists(void **state)
{
    (void)state;
    char *hosts[] = {"example.com", "*.example.org"};
    assert_true(host_patterns_match(hosts, 2, "example.com", 11));
    assert_true(host_patterns_match(hosts, 2, "a.example.org", 13));
    assert_false(host_patterns_match(hosts, 2, "www.example.com", 15));
    assert_false(host_patterns_match(hosts, 0, "example.com", 11));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_names_compare_without_case),
        cmocka_unit_test(test_star_suffix_admits_any_depth_but_not_the_suffix_itself),
        cmocka_unit_test(test_length_bounds_the_name),
        cmocka_unit_test(test_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
