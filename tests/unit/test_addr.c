/* Unit tests for src/net/addr.c: parsing and formatting socket addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "net/addr.h"

static void expect_error(const char *text, const char *msg)
{
    struct net_addr a;
    const char *err = NULL;
    assert_int_equal(addr_parse(text, &a, &err), -EINVAL);
    assert_non_null(err);
    assert_string_equal(err, msg);
}

static void test_ipv4(void **state)
{
    (void)state;
    struct net_addr a;
    const char *err = NULL;
    char buf[ADDR_TEXT_MAX];

    assert_int_equal(addr_parse("1.2.3.4:80", &a, &err), 0);
    assert_false(a.is_name);
    assert_false(a.is_wildcard);
    assert_int_equal(a.port, 80);
    assert_string_equal(a.host, "1.2.3.4");
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_int_equal(a.ss.ss_family, AF_INET);
    addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf));
    assert_string_equal(buf, "1.2.3.4:80");
    addr_format_ip((struct sockaddr *)&a.ss, buf, sizeof(buf));
    assert_string_equal(buf, "1.2.3.4");
    assert_int_equal(addr_port((struct sockaddr *)&a.ss), 80);
}

static void test_ipv6(void **state)
{
    (void)state;
    struct net_addr a;
    const char *err = NULL;
    char buf[ADDR_TEXT_MAX];

    assert_int_equal(addr_parse("[::1]:443", &a, &err), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    assert_string_equal(a.host, "::1");
    assert_false(a.is_wildcard);
    addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:443");
    addr_format_ip((struct sockaddr *)&a.ss, buf, sizeof(buf));
    assert_string_equal(buf, "::1");
    assert_int_equal(addr_port((struct sockaddr *)&a.ss), 443);

    assert_int_equal(addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", &a, &err), 0);
    addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf));
    assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void test_wildcards(void **state)
{
    (void)state;
    struct net_addr a;
    const char *err = NULL;

    assert_int_equal(addr_parse("*:8080", &a, &err), 0);
    assert_true(a.is_wildcard);
    assert_false(a.is_name);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_string_equal(a.host, "*");
    assert_int_equal(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(a.port, 8080);

    assert_int_equal(addr_parse("0.0.0.0:8080", &a, &err), 0);
    assert_true(a.is_wildcard);
    assert_int_equal(a.ss.ss_family, AF_INET);

    assert_int_equal(addr_parse("[::]:80", &a, &err), 0);
    assert_true(a.is_wildcard);
    assert_int_equal(a.ss.ss_family, AF_INET6);
}

static void test_names(void **state)
{
    (void)state;
    struct net_addr a;
    const char *err = NULL;

    assert_int_equal(addr_parse("host.name:5432", &a, &err), 0);
    assert_true(a.is_name);
    assert_int_equal(a.len, 0);
    assert_string_equal(a.host, "host.name");
    assert_int_equal(a.port, 5432);
    assert_int_equal(addr_parse("localhost:1", &a, &err), 0);
    assert_true(a.is_name);
    assert_int_equal(addr_parse("my_service-1.internal:65535", &a, &err), 0);
    assert_true(a.is_name);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("1.2.3.4:70000", "port 70000 out of range (1-65535)");
    expect_error("1.2.3.4:0", "port 0 out of range (1-65535)");
    expect_error("1.2.3.4", "missing port");
    expect_error("1.2.3.4:", "missing port");
    expect_error("[::1]", "missing port");
    expect_error("[::1]80", "expected ':PORT' after ']'");
    expect_error("[::1:80", "missing ']' after IPv6 address");
    expect_error("::1:80", "IPv6 addresses need brackets, e.g. [::1]:443");
    expect_error("[zz::1]:80", "invalid IPv6 address");
    expect_error("1.2.3.256:80", "invalid IPv4 address");
    expect_error("bad host:80", "invalid host name");
    expect_error("-bad.example:80", "invalid host name");
    expect_error("a..b:80", "invalid host name");
    expect_error(":80", "missing host (use *:PORT for any address)");
    expect_error("1.2.3.4:http", "invalid port (expected a number 1-65535)");
    expect_error("", "empty address");
    expect_error(NULL, "empty address");
    expect_error("1.2.3.4:99999999999999999999999", "port out of range (1-65535)");
}

static void test_equal(void **state)
{
    (void)state;
    struct net_addr a, b, c, d;
    const char *err;
    assert_int_equal(addr_parse("10.0.0.1:80", &a, &err), 0);
    assert_int_equal(addr_parse("10.0.0.1:80", &b, &err), 0);
    assert_int_equal(addr_parse("10.0.0.1:81", &c, &err), 0);
    assert_int_equal(addr_parse("[::ffff:10.0.0.1]:80", &d, &err), 0);
    assert_true(addr_equal((struct sockaddr *)&a.ss, (struct sockaddr *)&b.ss));
    assert_false(addr_equal((struct sockaddr *)&a.ss, (struct sockaddr *)&c.ss));
    assert_false(addr_equal((struct sockaddr *)&a.ss, (struct sockaddr *)&d.ss));
    assert_false(addr_equal(NULL, (struct sockaddr *)&a.ss));
    assert_int_equal(addr_port(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),      cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_wildcards), cmocka_unit_test(test_names),
        cmocka_unit_test(test_errors),    cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
