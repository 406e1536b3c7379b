/* Unit tests for src/net/proxy_proto.c (PROXY protocol v1/v2 parser and builder). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "net/proxy_proto.h"

#define V2SIG 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A

static struct sockaddr_storage mk(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* Builds with the given arguments and checks the output is exactly `want`, and that one byte
 * less of room gives -ENOSPC. */
static void expect_build(int version, const struct sockaddr *s, const struct sockaddr *d,
                         const char *alpn, const char *auth, const void *want, size_t want_len)
{
    uint8_t out[512];
    int n = pp_build(version, s, d, alpn, auth, out, sizeof(out));
    assert_int_equal(n, (int)want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(pp_build(version, s, d, alpn, auth, out, want_len - 1), -ENOSPC);
    assert_int_equal(pp_build(version, s, d, alpn, auth, out, want_len), (int)want_len);
}

static int parse_all(const void *buf, size_t len, struct pp_result *r, const char **why)
{
    return pp_parse(buf, len, PP_V2_MAX_DEFAULT, r, why);
}

/* ------------------------------------------------------------------ builder */

static void test_build_v1_tcp4(void **state)
{
    (void)state;
    struct sockaddr_storage s = mk("192.168.0.1", 56324), d = mk("10.0.0.1", 443);
    static const char want[] = "PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\n";
    expect_build(1, SA(s), SA(d), "h2", "x", want, sizeof(want) - 1);
}

static void test_build_v1_tcp6(void **state)
{
    (void)state;
    struct sockaddr_storage s = mk("2001:db8::1", 1234), d = mk("::1", 443);
    static const char want[] = "PROXY TCP6 2001:db8::1 ::1 1234 443\r\n";
    expect_build(1, SA(s), SA(d), NULL, NULL, want, sizeof(want) - 1);

    /* the longest possible line fits PP_V1_MAX */
    struct sockaddr_storage s2 = mk("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    uint8_t out[PP_V1_MAX];
    assert_int_equal(pp_build(1, SA(s2), SA(s2), NULL, NULL, out, sizeof(out)), 104);
}

static void test_build_v1_unknown(void **state)
{
    (void)state;
    static const char want[] = "PROXY UNKNOWN\r\n";
    struct sockaddr_storage s = mk("192.168.0.1", 1);
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/tmp/x"};
    expect_build(1, NULL, NULL, NULL, NULL, want, sizeof(want) - 1);
    expect_build(1, SA(s), NULL, NULL, NULL, want, sizeof(want) - 1);
    expect_build(1, SA(s), (const struct sockaddr *)&un, NULL, NULL, want, sizeof(want) - 1);

    uint8_t out[64];
    assert_int_equal(pp_build_local(1, out, sizeof(out)), 15);
    assert_memory_equal(out, want, 15);
    assert_int_equal(pp_build_local(1, out, 14), -ENOSPC);
}

/* Mixed IPv4/IPv6 cannot be described: UNKNOWN. Mapped addresses are written as IPv4 when
 * the other side is IPv4 or mapped. */
static void test_build_v1_mixed_and_mapped(void **state)
{
    (void)state;
    struct sockaddr_storage v4 = mk("1.2.3.4", 10), v6 = mk("2001:db8::2", 20);
    struct sockaddr_storage m1 = mk("::ffff:1.2.3.4", 10), m2 = mk("::ffff:5.6.7.8", 20);
    static const char mixed[] = "PROXY UNKNOWN\r\n";
    static const char mapped[] = "PROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\n";
    static const char half[] = "PROXY TCP6 ::ffff:1.2.3.4 2001:db8::2 10 20\r\n";
    expect_build(1, SA(v4), SA(v6), NULL, NULL, mixed, sizeof(mixed) - 1);
    expect_build(1, SA(m1), SA(m2), NULL, NULL, mapped, sizeof(mapped) - 1);
    expect_build(1, SA(m1), SA(v6), NULL, NULL, half, sizeof(half) - 1);
    struct sockaddr_storage d4 = mk("5.6.7.8", 20);
    expect_build(1, SA(m1), SA(d4), NULL, NULL, mapped, sizeof(mapped) - 1);
}

static void test_build_v2_ipv4(void **state)
{
    (void)state;
    struct sockaddr_storage s = mk("192.168.0.1", 0x1234), d = mk("10.0.0.1", 443);
    static const uint8_t want[] = {V2SIG, 0x21, 0x11, 0x00, 0x0C, 192,  168,  0,   1,
                                   10,    0,    0,    1,    0x12, 0x34, 0x01, 0xBB};
    expect_build(2, SA(s), SA(d), NULL, NULL, want, sizeof(want));
}

static void test_build_v2_ipv6(void **state)
{
    (void)state;
    struct sockaddr_storage s = mk("2001:db8::1", 1), d = mk("::1", 2);
    static const uint8_t want[] = {V2SIG, 0x21, 0x21, 0x00, 0x24, 0x20, 0x01, 0x0d, 0xb8, 0, 0,
                                   0,     0,    0,    0,    0,    0,    0,    0,    0,    1, 0,
                                   0,     0,    0,    0,    0,    0,    0,    0,    0,    0, 0,
                                   0,     0,    0,    1,    0x00, 0x01, 0x00, 0x02};
    expect_build(2, SA(s), SA(d), NULL, NULL, want, sizeof(want));

    /* mixed families -> LOCAL command, AF_UNSPEC, no address block */
    struct sockaddr_storage v4 = mk("1.2.3.4", 1);
    static const uint8_t mixed[] = {V2SIG, 0x20, 0x00, 0x00, 0x00};
    expect_build(2, SA(v4), SA(d), NULL, NULL, mixed, sizeof(mixed));
}

static void test_build_v2_local(void **state)
{
    (void)state;
    static const uint8_t want[] = {V2SIG, 0x20, 0x00, 0x00, 0x00};
    expect_build(2, NULL, NULL, NULL, NULL, want, sizeof(want));
    uint8_t out[32];
    assert_int_equal(pp_build_local(2, out, sizeof(out)), 16);
    assert_memory_equal(out, want, 16);
    assert_int_equal(pp_build_local(2, out, 15), -ENOSPC);
    assert_int_equal(pp_build_local(3, out, sizeof(out)), -EINVAL);
}

static void test_build_v2_tlvs(void **state)
{
    (void)state;
    struct sockaddr_storage s = mk("1.2.3.4", 80), d = mk("5.6.7.8", 443);
    static const uint8_t want[] = {V2SIG, 0x21, 0x11, 0x00, 0x1F, 1,    2,    3,    4,
                                   5,     6,    7,    8,    0x00, 0x50, 0x01, 0xBB, 0x01,
                                   0x00,  0x02, 'h',  '2',  0x02, 0x00, 0x0B, 'e',  'x',
                                   'a',   'm',  'p',  'l',  'e',  '.',  'c',  'o',  'm'};
    expect_build(2, SA(s), SA(d), "h2", "example.com", want, sizeof(want));

    static const uint8_t auth_only[] = {V2SIG, 0x21, 0x11, 0x00, 0x10, 1,    2,
                                        3,     4,    5,    6,    7,    8,    0x00,
                                        0x50,  0x01, 0xBB, 0x02, 0x00, 0x01, 'a'};
    expect_build(2, SA(s), SA(d), NULL, "a", auth_only, sizeof(auth_only));
    expect_build(2, SA(s), SA(d), "", "a", auth_only, sizeof(auth_only)); /* empty: omitted */

    /* LOCAL carries TLVs too */
    static const uint8_t local[] = {V2SIG, 0x20, 0x00, 0x00, 0x05, 0x01, 0x00, 0x02, 'h', '2'};
    expect_build(2, NULL, NULL, "h2", NULL, local, sizeof(local));
}

/* ------------------------------------------------------------------ parser */

static void check_round_trip(int version, const char *sip, uint16_t sport, const char *dip,
                             uint16_t dport, const char *alpn, const char *auth)
{
    struct sockaddr_storage s = mk(sip, sport), d = mk(dip, dport);
    uint8_t buf[600];
    struct pp_result r;
    const char *why = NULL;
    int n = pp_build(version, SA(s), SA(d), alpn, auth, buf, sizeof(buf));
    assert_true(n > 0);
    memcpy(buf + n, "GET / HTTP/1.1\r\n", 16); /* client data follows the header */
    assert_int_equal(parse_all(buf, (size_t)n + 16, &r, &why), n);
    assert_int_equal(r.version, version);
    assert_false(r.local);
    assert_int_equal(r.header_len, n);
    assert_int_equal(r.src.ss_family, s.ss_family);
    assert_int_equal(r.src_len, s.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                       : sizeof(struct sockaddr_in6));
    assert_int_equal(r.dst_len, r.src_len);
    assert_memory_equal(&r.src, &s, r.src_len);
    assert_memory_equal(&r.dst, &d, r.dst_len);
    if (version == 2 && alpn) {
        assert_int_equal(r.alpn_len, strlen(alpn));
        assert_memory_equal(r.alpn, alpn, r.alpn_len);
    } else {
        assert_null(r.alpn);
    }
    if (version == 2 && auth) {
        assert_int_equal(r.authority_len, strlen(auth));
        assert_memory_equal(r.authority, auth, r.authority_len);
        assert_ptr_equal(r.authority >= buf, true);
    } else {
        assert_null(r.authority);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int v = 1; v <= 2; v++) {
        check_round_trip(v, "192.168.0.1", 56324, "10.0.0.1", 443, NULL, NULL);
        check_round_trip(v, "0.0.0.0", 0, "255.255.255.255", 65535, "h2", "example.com");
        check_round_trip(v, "2001:db8::1", 1, "fe80::1:2:3:4", 65535, "http/1.1", NULL);
        check_round_trip(v, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, "::", 0, NULL, "a.b");
    }
    /* LOCAL / UNKNOWN */
    uint8_t buf[64];
    struct pp_result r;
    for (int v = 1; v <= 2; v++) {
        int n = pp_build(v, NULL, NULL, "h2", "host", buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(parse_all(buf, (size_t)n, &r, NULL), n);
        assert_int_equal(r.version, v);
        assert_true(r.local);
        assert_int_equal(r.src_len, 0);
        if (v == 2) {
            assert_int_equal(r.alpn_len, 2);
            assert_int_equal(r.authority_len, 4);
        }
    }
}

/* Feeding a header one byte at a time gives 0 until it is complete. */
static void check_bytewise(const uint8_t *h, size_t n)
{
    struct pp_result r;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(pp_parse(h, k, PP_V2_MAX_DEFAULT, &r, NULL), 0);
    assert_int_equal(pp_parse(h, n, PP_V2_MAX_DEFAULT, &r, NULL), (int)n);
}

static void test_bytewise(void **state)
{
    (void)state;
    struct sockaddr_storage s4 = mk("1.2.3.4", 80), d4 = mk("5.6.7.8", 443);
    struct sockaddr_storage s6 = mk("2001:db8::1", 80), d6 = mk("::1", 443);
    uint8_t buf[256];
    int n;
    for (int v = 1; v <= 2; v++) {
        n = pp_build(v, SA(s4), SA(d4), "h2", "example.com", buf, sizeof(buf));
        check_bytewise(buf, (size_t)n);
        n = pp_build(v, SA(s6), SA(d6), NULL, "example.com", buf, sizeof(buf));
        check_bytewise(buf, (size_t)n);
        n = pp_build_local(v, buf, sizeof(buf));
        check_bytewise(buf, (size_t)n);
    }
    static const char unk[] = "PROXY UNKNOWN whatever follows is ignored\r\n";
    check_bytewise((const uint8_t *)unk, sizeof(unk) - 1);
    static const char v1max[] = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535"
                                "\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    check_bytewise((const uint8_t *)v1max, (size_t)(strstr(v1max, "\n") - v1max) + 1);
}

/* Each string must be rejected with -EINVAL; no prefix of it may parse as complete. */
static void expect_invalid(const void *h, size_t n, const char *want_reason)
{
    struct pp_result r;
    const char *why = NULL;
    assert_int_equal(pp_parse(h, n, PP_V2_MAX_DEFAULT, &r, &why), -EINVAL);
    assert_non_null(why);
    if (want_reason)
        assert_string_equal(why, want_reason);
    for (size_t k = 0; k < n; k++)
        assert_true(pp_parse(h, k, PP_V2_MAX_DEFAULT, &r, NULL) <= 0);
}

#define INVALID(s, why) expect_invalid(s, sizeof(s) - 1, why)

static void test_v1_malformed(void **state)
{
    (void)state;
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 80 65536\r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 443\r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 100000 443\r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 80 \r\n", "bad v1 port");
    INVALID("PROXY TCP4 1.2.3.4  5.6.7.8 80 443\r\n", "bad v1 address");
    INVALID("PROXY  TCP4 1.2.3.4 5.6.7.8 80 443\r\n", "bad v1 protocol");
    INVALID("PROXY TCP4 256.2.3.4 5.6.7.8 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP4 01.2.3.4 5.6.7.8 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP4 1.2.3.4.5 5.6.7.8 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP4 ::1 ::1 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP6 1.2.3.4 ::1 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP6 ::1 :::1 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP6 fe80::1%eth0 ::1 80 443\r\n", "bad v1 address");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n", "bad v1 line ending");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\r", "bad v1 line ending");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n", "bad v1 line ending");
    INVALID("PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", "bad v1 separator");
    INVALID("PROXY TCP4\r\n", "bad v1 separator");
    INVALID("PROXY TCP5 1.2.3.4 5.6.7.8 80 443\r\n", "bad v1 protocol");
    INVALID("PROXY UNKNOWNX\r\n", "bad v1 protocol");
    INVALID("PROXY UNKNOWN\n", "bad v1 line ending");
    INVALID("PROXY UNKNOWN junk\n", "bad v1 line ending");
    INVALID("PROXY tcp4 1.2.3.4 5.6.7.8 80 443\r\n", "bad v1 protocol");
    INVALID("proxy TCP4 1.2.3.4 5.6.7.8 80 443\r\n", "not a PROXY protocol header");
    INVALID("PROXX", "bad v1 signature");
    INVALID("PROXY\r\n", "bad v1 signature");

    /* errors are reported as soon as the first wrong byte is there */
    struct pp_result r;
    assert_int_equal(pp_parse((const uint8_t *)"PROX", 4, 4096, &r, NULL), 0);
    assert_int_equal(pp_parse((const uint8_t *)"PROXX", 5, 4096, &r, NULL), -EINVAL);
    assert_int_equal(pp_parse((const uint8_t *)"PROXY TCP4 1.2.3.4 5.6.7.8 8x", 29, 4096, &r, NULL),
                     -EINVAL);
    assert_int_equal(pp_parse((const uint8_t *)"PROXY TCP4 1.2.3.4 5.6.7.8 8", 28, 4096, &r, NULL),
                     0);
    assert_int_equal(pp_parse((const uint8_t *)"PROXY TCP4 1.2.3.400", 20, 4096, &r, NULL),
                     -EINVAL);
    assert_int_equal(pp_parse((const uint8_t *)"PROXY TCP4 1.2.3.4", 18, 4096, &r, NULL), 0);
    assert_int_equal(pp_parse((const uint8_t *)"PROXY UNK", 9, 4096, &r, NULL), 0);
    assert_int_equal(pp_parse((const uint8_t *)"PROXY UNX", 9, 4096, &r, NULL), -EINVAL);
}

static void test_v1_length_limits(void **state)
{
    (void)state;
    struct pp_result r;
    const char *why = NULL;
    char line[300];

    /* exactly 107 bytes is fine (UNKNOWN with junk), 108 is not */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(pp_parse((uint8_t *)line, 107, 4096, &r, &why), 107);
    assert_true(r.local);
    memset(line + 105, 'x', 2);
    memcpy(line + 106, "\r\n", 2);
    assert_int_equal(pp_parse((uint8_t *)line, 106, 4096, &r, NULL), 0);
    assert_int_equal(pp_parse((uint8_t *)line, 108, 4096, &r, &why), -EINVAL);
    assert_string_equal(why, "v1 header too long");

    /* no CRLF at all: need more until 107 bytes, then too long */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    assert_int_equal(pp_parse((uint8_t *)line, 106, 4096, &r, NULL), 0);
    assert_int_equal(pp_parse((uint8_t *)line, 107, 4096, &r, &why), -EINVAL);
    assert_int_equal(pp_parse((uint8_t *)line, sizeof(line), 4096, &r, &why), -EINVAL);
    assert_string_equal(why, "v1 header too long");

    /* a max_len below the header's size */
    static const char ok[] = "PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\n";
    assert_int_equal(pp_parse((const uint8_t *)ok, 35, 35, &r, NULL), 35);
    assert_int_equal(pp_parse((const uint8_t *)ok, 34, 34, &r, &why), -EMSGSIZE);
    assert_string_equal(why, "header longer than max_len");
    assert_int_equal(pp_parse((const uint8_t *)ok, 33, 34, &r, NULL), 0);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    static const uint8_t badsig[] = {V2SIG, 0x21, 0x11, 0, 12};
    uint8_t h[64];
    memcpy(h, badsig, sizeof(badsig));
    h[11] = 0x0B;
    expect_invalid(h, sizeof(badsig), "bad v2 signature");

    static const uint8_t v1ver[] = {V2SIG, 0x11, 0x11, 0, 12};
    expect_invalid(v1ver, sizeof(v1ver), "unsupported v2 version");
    static const uint8_t v3ver[] = {V2SIG, 0x31};
    expect_invalid(v3ver, sizeof(v3ver), "unsupported v2 version");
    static const uint8_t badcmd[] = {V2SIG, 0x22};
    expect_invalid(badcmd, sizeof(badcmd), "unknown v2 command");
    static const uint8_t unix_[] = {V2SIG, 0x21, 0x31};
    expect_invalid(unix_, sizeof(unix_), "unsupported family");
    static const uint8_t dgram[] = {V2SIG, 0x21, 0x12};
    expect_invalid(dgram, sizeof(dgram), "unsupported family");
    static const uint8_t unspec[] = {V2SIG, 0x21, 0x00, 0, 0};
    expect_invalid(unspec, sizeof(unspec), "unsupported family");
    static const uint8_t short4[] = {V2SIG, 0x21, 0x11, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    expect_invalid(short4, sizeof(short4), "v2 address block truncated");
    static const uint8_t short6[] = {V2SIG, 0x21, 0x21, 0, 12, 1,  2,  3, 4,
                                     5,     6,    7,    8, 9,  10, 11, 12};
    expect_invalid(short6, sizeof(short6), "v2 address block truncated");

    /* TLV header cut short (2 bytes left after the addresses) */
    static const uint8_t trunc_hdr[] = {V2SIG, 0x21, 0x11, 0, 14, 1, 2,   3,    4,   5,
                                        6,     7,    8,    0, 80, 1, 187, 0x01, 0x00};
    expect_invalid(trunc_hdr, sizeof(trunc_hdr), "truncated v2 TLV");
    /* TLV value runs past the declared length */
    static const uint8_t trunc_val[] = {V2SIG, 0x21, 0x11, 0,  17, 1,   2,    3,    4,    5,   6,
                                        7,     8,    0,    80, 1,  187, 0x02, 0x00, 0x03, 'a', 'b'};
    expect_invalid(trunc_val, sizeof(trunc_val), "truncated v2 TLV");
    /* ... also with LOCAL */
    static const uint8_t trunc_local[] = {V2SIG, 0x20, 0x00, 0, 4, 0x02, 0x00, 0x03, 'a'};
    expect_invalid(trunc_local, sizeof(trunc_local), "truncated v2 TLV");

    /* non-PROXY data is rejected at the first byte */
    struct pp_result r;
    const char *why = NULL;
    assert_int_equal(pp_parse((const uint8_t *)"G", 1, 4096, &r, &why), -EINVAL);
    assert_string_equal(why, "not a PROXY protocol header");
    assert_int_equal(pp_parse((const uint8_t *)"\x16\x03\x01", 1, 4096, &r, NULL), -EINVAL);
    assert_int_equal(pp_parse((const uint8_t *)"\r\n\r\nX", 5, 4096, &r, NULL), -EINVAL);
    assert_int_equal(pp_parse((const uint8_t *)"\r\n\r\n", 4, 4096, &r, NULL), 0);
    assert_int_equal(pp_parse((const uint8_t *)"", 0, 4096, &r, NULL), 0);
}

static void test_v2_oversized(void **state)
{
    (void)state;
    static uint8_t big[16 + 5000];
    struct pp_result r;
    const char *why = NULL;
    static const uint8_t hdr[] = {V2SIG, 0x21, 0x11};
    memset(big, 0, sizeof(big));
    memcpy(big, hdr, sizeof(hdr));

    /* declared length 5000: refused as soon as the 16 fixed bytes are in */
    big[14] = 5000 >> 8;
    big[15] = 5000 & 0xFF;
    assert_int_equal(pp_parse(big, 15, PP_V2_MAX_DEFAULT, &r, NULL), 0);
    assert_int_equal(pp_parse(big, 16, PP_V2_MAX_DEFAULT, &r, &why), -EMSGSIZE);
    assert_string_equal(why, "v2 header too long");
    assert_int_equal(pp_parse(big, 16, 5016, &r, NULL), 0);

    /* exactly at the cap: addresses + one NOOP TLV filling the rest */
    size_t len = PP_V2_MAX_DEFAULT - 16;
    big[14] = (uint8_t)(len >> 8);
    big[15] = (uint8_t)len;
    size_t tlv = len - 12 - 3;
    big[28] = 0x04; /* PP2_TYPE_NOOP */
    big[29] = (uint8_t)(tlv >> 8);
    big[30] = (uint8_t)tlv;
    assert_int_equal(pp_parse(big, PP_V2_MAX_DEFAULT - 1, PP_V2_MAX_DEFAULT, &r, NULL), 0);
    assert_int_equal(pp_parse(big, sizeof(big), PP_V2_MAX_DEFAULT, &r, NULL), PP_V2_MAX_DEFAULT);
    assert_int_equal(pp_parse(big, sizeof(big), PP_V2_MAX_DEFAULT - 1, &r, NULL), -EMSGSIZE);
    assert_int_equal(pp_parse(big, 16, 15, &r, NULL), -EMSGSIZE);
}

static void test_v2_local_and_tlvs(void **state)
{
    (void)state;
    struct pp_result r;
    /* LOCAL with an AF_INET block: addresses ignored, TLVs still read */
    static const uint8_t local4[] = {V2SIG, 0x20, 0x11, 0,  17, 1,   2,    3,    4,    5,   6,
                                     7,     8,    0,    80, 1,  187, 0x01, 0x00, 0x02, 'h', '2'};
    assert_int_equal(parse_all(local4, sizeof(local4), &r, NULL), (int)sizeof(local4));
    assert_true(r.local);
    assert_int_equal(r.src_len, 0);
    assert_int_equal(r.alpn_len, 2);
    /* LOCAL with AF_UNIX and an odd family byte: accepted, protocol block discarded */
    static const uint8_t local_unix[] = {V2SIG, 0x20, 0x31, 0, 3, 'a', 'b', 'c'};
    assert_int_equal(parse_all(local_unix, sizeof(local_unix), &r, NULL), 19);
    assert_true(r.local);
    static const uint8_t local_odd[] = {V2SIG, 0x20, 0xF5, 0, 1, 0xAA};
    assert_int_equal(parse_all(local_odd, sizeof(local_odd), &r, NULL), 17);

    /* unknown and repeated TLVs: first ALPN/AUTHORITY wins, others skipped */
    static const uint8_t tlvs[] = {V2SIG, 0x21, 0x11, 0,    12 + 4 + 4 + 4 + 5 + 4,
                                   1,     2,    3,    4,    5,
                                   6,     7,    8,    0,    80,
                                   1,     187,  0x04, 0x00, 0x01,
                                   0x00,                          /* NOOP */
                                   0x02,  0x00, 0x01, 'x',        /* AUTHORITY "x" */
                                   0x02,  0x00, 0x01, 'y',        /* repeated: ignored */
                                   0xE0,  0x00, 0x02, 0xDE, 0xAD, /* custom */
                                   0x01,  0x00, 0x01, 'z'};       /* ALPN "z" */
    assert_int_equal(parse_all(tlvs, sizeof(tlvs), &r, NULL), (int)sizeof(tlvs));
    assert_false(r.local);
    assert_int_equal(r.authority_len, 1);
    assert_int_equal(r.authority[0], 'x');
    assert_int_equal(r.alpn_len, 1);
    assert_int_equal(r.alpn[0], 'z');
    struct sockaddr_in *s = (struct sockaddr_in *)&r.src;
    assert_int_equal(ntohs(s->sin_port), 80);
    assert_int_equal(ntohl(s->sin_addr.s_addr), 0x01020304);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_v1_tcp4),     cmocka_unit_test(test_build_v1_tcp6),
        cmocka_unit_test(test_build_v1_unknown),  cmocka_unit_test(test_build_v1_mixed_and_mapped),
        cmocka_unit_test(test_build_v2_ipv4),     cmocka_unit_test(test_build_v2_ipv6),
        cmocka_unit_test(test_build_v2_local),    cmocka_unit_test(test_build_v2_tlvs),
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_bytewise),
        cmocka_unit_test(test_v1_malformed),      cmocka_unit_test(test_v1_length_limits),
        cmocka_unit_test(test_v2_malformed),      cmocka_unit_test(test_v2_oversized),
        cmocka_unit_test(test_v2_local_and_tlvs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
