/* Unit tests for src/tls/client_hello.c: real ClientHellos produced by OpenSSL (memory BIOs)
 * and hand-built edge cases, fed whole, byte by byte, re-split into records, truncated and
 * corrupted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "tls/client_hello.h"

#define BIG 70000

/* ------------------------------------------------------------ real ClientHellos */

static const unsigned char big_ext[3000];

static int add_big_ext(SSL *s, unsigned int type, unsigned int ctx, const unsigned char **out,
                       size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)s, (void)type, (void)ctx, (void)x, (void)chainidx, (void)al, (void)arg;
    *out = big_ext;
    *outlen = sizeof(big_ext);
    return 1;
}

struct hello_opts {
    const char *sni;
    const char *alpn; /* wire format, e.g. "\x02h2\x08http/1.1" */
    int max_version;  /* 0: library default (TLS 1.3) */
    bool big;         /* add a 3000-byte extension */
    unsigned frag;    /* max_send_fragment, 0 = default */
};

/* Makes OpenSSL write a ClientHello into a memory BIO and copies it to out. */
static size_t real_hello(const struct hello_opts *o, uint8_t *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    if (o->max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, o->max_version), 1);
    if (o->big)
        assert_int_equal(SSL_CTX_add_custom_ext(ctx, 65000, SSL_EXT_CLIENT_HELLO, add_big_ext, NULL,
                                                NULL, NULL, NULL),
                         1);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    assert_non_null(rb);
    assert_non_null(wb);
    SSL_set_bio(ssl, rb, wb);
    if (o->sni)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, o->sni), 1);
    if (o->alpn)
        assert_int_equal(
            SSL_set_alpn_protos(ssl, (const unsigned char *)o->alpn, (unsigned)strlen(o->alpn)), 0);
    if (o->frag)
        assert_int_equal(SSL_set_max_send_fragment(ssl, o->frag), 1);
    assert_int_equal(SSL_connect(ssl), -1); /* wants to read the ServerHello */
    int n = BIO_read(wb, out, (int)cap);
    assert_true(n > 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return (size_t)n;
}

/* ------------------------------------------------------------ helpers */

/* Extracts the handshake message from a stream of records (test input is trusted). */
static size_t unrecord(const uint8_t *in, size_t n, uint8_t *msg)
{
    size_t m = 0;
    for (size_t p = 0; p + 5 <= n;) {
        size_t r = (size_t)in[p + 3] << 8 | in[p + 4];
        memcpy(msg + m, in + p + 5, r);
        m += r;
        p += 5 + r;
    }
    return m;
}

/* Wraps a handshake message into records of at most rec bytes each. */
static size_t recordize(const uint8_t *msg, size_t n, size_t rec, uint8_t *out)
{
    size_t o = 0;
    for (size_t p = 0; p < n; p += rec) {
        size_t k = n - p < rec ? n - p : rec;
        out[o++] = 0x16;
        out[o++] = 0x03;
        out[o++] = 0x01;
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, msg + p, k);
        o += k;
    }
    return o;
}

static int parse(const uint8_t *b, size_t n, struct ch_info *ci, const char **why)
{
    return ch_parse(b, n, CH_MAX_DEFAULT, ci, why);
}

/* Every strict prefix needs more; the whole parses to the same info as `want`. */
static void check_bytewise(const uint8_t *b, size_t n, const struct ch_info *want)
{
    struct ch_info ci;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(parse(b, k, &ci, NULL), CH_NEED_MORE);
        if (ci.bytes_needed)
            assert_int_equal(ci.bytes_needed, n);
    }
    assert_int_equal(parse(b, n, &ci, NULL), CH_OK);
    assert_memory_equal(&ci, want, sizeof(ci));
}

static void check_resplit(const uint8_t *stream, size_t n, const struct ch_info *want)
{
    static uint8_t msg[BIG], re[BIG * 6];
    static const size_t sizes[] = {1, 2, 7, 100, 512, 16384};
    struct ch_info ci;
    size_t m = unrecord(stream, n, msg);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t r = recordize(msg, m, sizes[i], re);
        assert_int_equal(parse(re, r, &ci, NULL), CH_OK);
        assert_memory_equal(&ci, want, sizeof(ci));
        if (sizes[i] == 100 || (sizes[i] == 7 && m < 600))
            check_bytewise(re, r, want);
    }
}

/* ------------------------------------------------------------ tests: real hellos */

static void test_real_tls13(void **state)
{
    (void)state;
    static uint8_t b[BIG];
    struct hello_opts o = {.sni = "WWW.Example.COM", .alpn = "\x02h2\x08http/1.1"};
    size_t n = real_hello(&o, b, sizeof(b));
    struct ch_info ci;
    const char *why = NULL;
    assert_int_equal(parse(b, n, &ci, &why), CH_OK);
    assert_true(ci.has_sni);
    assert_string_equal(ci.sni, "www.example.com");
    assert_int_equal(ci.n_alpn, 2);
    assert_string_equal(ci.alpn[0], "h2");
    assert_string_equal(ci.alpn[1], "http/1.1");
    assert_int_equal(ci.legacy_version, 0x0303);
    assert_true(ci.tls13_offered);

    /* trailing bytes (e.g. early data) are not looked at */
    memset(b + n, 0xEE, 100);
    struct ch_info ci2;
    assert_int_equal(parse(b, n + 100, &ci2, NULL), CH_OK);
    assert_memory_equal(&ci, &ci2, sizeof(ci));

    check_bytewise(b, n, &ci);
    check_resplit(b, n, &ci);

    /* bytes_needed: unknown before the handshake header, exact after */
    assert_int_equal(parse(b, 5, &ci2, NULL), CH_NEED_MORE);
    assert_int_equal(ci2.bytes_needed, 0);
    assert_int_equal(parse(b, 9, &ci2, NULL), CH_NEED_MORE);
    assert_int_equal(ci2.bytes_needed, n);
}

static void test_real_tls12_no_sni(void **state)
{
    (void)state;
    static uint8_t b[BIG];
    struct hello_opts o = {.max_version = TLS1_2_VERSION};
    size_t n = real_hello(&o, b, sizeof(b));
    struct ch_info ci;
    assert_int_equal(parse(b, n, &ci, NULL), CH_OK);
    assert_false(ci.has_sni);
    assert_string_equal(ci.sni, "");
    assert_int_equal(ci.n_alpn, 0);
    assert_false(ci.tls13_offered);
    assert_int_equal(ci.legacy_version, 0x0303);
    check_resplit(b, n, &ci);
}

static void test_real_big(void **state)
{
    (void)state;
    static uint8_t b[BIG];
    struct hello_opts o = {.sni = "big.example", .alpn = "\x02h2", .big = true};
    size_t n = real_hello(&o, b, sizeof(b));
    assert_true(n > 3000);
    struct ch_info ci;
    const char *why = NULL;
    assert_int_equal(parse(b, n, &ci, NULL), CH_OK);
    assert_string_equal(ci.sni, "big.example");
    assert_int_equal(ci.n_alpn, 1);
    check_bytewise(b, n, &ci);
    check_resplit(b, n, &ci);

    /* the cap applies as soon as the handshake header is in */
    assert_int_equal(ch_parse(b, 9, 1500, &ci, &why), CH_TOO_LARGE);
    assert_string_equal(why, "ClientHello too large");
    assert_int_equal(ch_parse(b, 8, 1500, &ci, NULL), CH_NEED_MORE);
    size_t msg_len = (size_t)b[6] << 16 | (size_t)b[7] << 8 | b[8];
    assert_int_equal(ch_parse(b, n, 4 + msg_len, &ci, NULL), CH_OK);
    assert_int_equal(ch_parse(b, n, 3 + msg_len, &ci, NULL), CH_TOO_LARGE);

    /* OpenSSL itself splitting the ClientHello into 512-byte records */
    static uint8_t f[BIG];
    o.frag = 512;
    size_t fn = real_hello(&o, f, sizeof(f));
    assert_true(fn > n); /* more record headers */
    struct ch_info cf;
    assert_int_equal(parse(f, fn, &cf, NULL), CH_OK);
    assert_string_equal(cf.sni, "big.example");
    check_bytewise(f, fn, &cf);
}

/* Flipping any byte never crashes and never yields an out-of-range code; the record
 * header bytes give the expected errors. */
static void test_real_corrupted(void **state)
{
    (void)state;
    static uint8_t b[BIG], c[BIG];
    struct hello_opts o = {.sni = "a.example", .alpn = "\x02h2"};
    size_t n = real_hello(&o, b, sizeof(b));
    struct ch_info ci;
    for (size_t i = 0; i < n; i++) {
        for (int x = 1; x < 256; x <<= 1) {
            memcpy(c, b, n);
            c[i] ^= (uint8_t)x;
            int rc = parse(c, n, &ci, NULL);
            assert_true(rc >= CH_TOO_LARGE && rc <= CH_OK);
            if (i == 0)
                assert_int_equal(rc, CH_NOT_TLS);
            if (rc == CH_OK && ci.has_sni)
                assert_true(strlen(ci.sni) > 0);
        }
    }
    /* truncated: never OK */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(parse(b, k, &ci, NULL), CH_NEED_MORE);
}

/* ------------------------------------------------------------ hand-built hellos */

struct hb {
    uint8_t b[BIG];
    size_t n;
};

static void put(struct hb *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}
static void u8(struct hb *h, unsigned v)
{
    h->b[h->n++] = (uint8_t)v;
}
static void u16(struct hb *h, unsigned v)
{
    u8(h, v >> 8);
    u8(h, v);
}

/* Appends an extension of the given type and raw body. */
static void ext(struct hb *h, unsigned type, const void *body, size_t n)
{
    u16(h, type);
    u16(h, (unsigned)n);
    put(h, body, n);
}

/* server_name extension with one host_name entry. */
static void ext_sni1(struct hb *h, const char *name)
{
    size_t n = strlen(name);
    u16(h, 0);
    u16(h, (unsigned)(n + 5));
    u16(h, (unsigned)(n + 3));
    u8(h, 0);
    u16(h, (unsigned)n);
    put(h, name, n);
}

/* Builds a ClientHello handshake message around the extensions block e (NULL: no
 * extensions block at all), then a single record; returns the record stream in *out. */
static size_t hand_hello(const struct hb *e, struct hb *out)
{
    static struct hb m;
    static const uint8_t zero[32];
    m.n = 0;
    u8(&m, 1);
    u8(&m, 0);
    u16(&m, 0); /* length patched below */
    u16(&m, 0x0303);
    put(&m, zero, 32);
    u8(&m, 32);
    put(&m, zero, 32);
    u16(&m, 4);
    u16(&m, 0x1301);
    u16(&m, 0xc02f);
    u8(&m, 1);
    u8(&m, 0);
    if (e) {
        u16(&m, (unsigned)e->n);
        put(&m, e->b, e->n);
    }
    size_t body = m.n - 4;
    m.b[1] = (uint8_t)(body >> 16);
    m.b[2] = (uint8_t)(body >> 8);
    m.b[3] = (uint8_t)body;
    out->n = recordize(m.b, m.n, 16384, out->b);
    return out->n;
}

static int hand_parse(const struct hb *e, struct ch_info *ci, const char **why)
{
    static struct hb s;
    hand_hello(e, &s);
    return parse(s.b, s.n, ci, why);
}

static void expect_malformed(const struct hb *e, const char *want_reason)
{
    struct ch_info ci;
    const char *why = NULL;
    assert_int_equal(hand_parse(e, &ci, &why), CH_MALFORMED);
    assert_non_null(why);
    if (want_reason)
        assert_string_equal(why, want_reason);
}

static void test_hand_sni(void **state)
{
    (void)state;
    static struct hb e;
    struct ch_info ci;

    /* no extensions at all */
    assert_int_equal(hand_parse(NULL, &ci, NULL), CH_OK);
    assert_false(ci.has_sni);

    e.n = 0;
    ext_sni1(&e, "Db-1.Sub_Zone.EXAMPLE.com");
    assert_int_equal(hand_parse(&e, &ci, NULL), CH_OK);
    assert_string_equal(ci.sni, "db-1.sub_zone.example.com");

    /* 255 characters is the limit */
    char name[300];
    for (int i = 0; i < 256; i++)
        name[i] = (i % 64 == 63) ? '.' : 'a';
    name[255] = '\0';
    e.n = 0;
    ext_sni1(&e, name);
    assert_int_equal(hand_parse(&e, &ci, NULL), CH_OK);
    assert_int_equal(strlen(ci.sni), 255);
    name[255] = 'a';
    name[256] = '\0';
    e.n = 0;
    ext_sni1(&e, name);
    expect_malformed(&e, "bad server name length");

    const char *bad[] = {"exa mple.com", "a..b",          ".a",     "a.", "a/b", "\xc3\xa9",
                         "a:443",        "*.example.com", "x\x01y", "",   name};
    memset(name, 'a', 64); /* a 64-character label */
    strcpy(name + 64, ".b");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e.n = 0;
        ext_sni1(&e, bad[i]);
        expect_malformed(&e, NULL);
    }
    /* embedded NUL */
    e.n = 0;
    u16(&e, 0), u16(&e, 8), u16(&e, 6), u8(&e, 0), u16(&e, 3), put(&e, "a\0b", 3);
    expect_malformed(&e, "invalid server name");

    /* two host_names in one list (RFC 6066 §3: at most one name of a type): refused, never
     * routed by either; OpenSSL answers the same bytes with decode_error */
    e.n = 0;
    u16(&e, 0);
    u16(&e, 2 + 9 + 11);
    u16(&e, 9 + 11);
    u8(&e, 0), u16(&e, 6), put(&e, "a.test", 6);
    u8(&e, 0), u16(&e, 8), put(&e, "evil.com", 8);
    assert_int_equal(e.n, 4 + 2 + 9 + 11);
    expect_malformed(&e, "more than one name in server_name");

    /* an entry of another type, alone or before a host_name: refused too */
    e.n = 0;
    u16(&e, 0);
    u16(&e, 2 + 4 + 9);
    u16(&e, 4 + 9);
    u8(&e, 7), u16(&e, 1), put(&e, "z", 1);
    u8(&e, 0), u16(&e, 6), put(&e, "a.test", 6);
    expect_malformed(&e, "server_name entry of unknown type");
    e.n = 0;
    u16(&e, 0), u16(&e, 6), u16(&e, 4), u8(&e, 1), u16(&e, 1), put(&e, "z", 1);
    expect_malformed(&e, "server_name entry of unknown type");

    /* duplicate server_name extension */
    e.n = 0;
    ext_sni1(&e, "a.b");
    ext_sni1(&e, "c.d");
    expect_malformed(&e, "duplicate extension");

    /* list length disagreeing with the extension length, empty list, entry overrun */
    e.n = 0;
    u16(&e, 0), u16(&e, 8), u16(&e, 5), u8(&e, 0), u16(&e, 3), put(&e, "abc", 3);
    expect_malformed(&e, "bad server_name list length");
    e.n = 0;
    u16(&e, 0), u16(&e, 2), u16(&e, 0);
    expect_malformed(&e, "bad server_name list length");
    e.n = 0;
    u16(&e, 0), u16(&e, 0);
    expect_malformed(&e, "bad server_name list length");
    e.n = 0;
    u16(&e, 0), u16(&e, 8), u16(&e, 6), u8(&e, 0), u16(&e, 4), put(&e, "abc", 3);
    expect_malformed(&e, "bad server_name entry length");
}

static void test_hand_alpn_versions(void **state)
{
    (void)state;
    static struct hb e, l;
    struct ch_info ci;

    /* 10 protocols, one too long to keep and one with a NUL: 8 kept in order */
    l.n = 0;
    char name[100];
    for (int i = 0; i < 10; i++) {
        size_t n = (size_t)snprintf(name, sizeof(name), "p%d", i);
        if (i == 2) {
            memset(name, 'L', 64);
            n = 64;
        }
        if (i == 3) {
            memcpy(name, "h2\0x", 4);
            n = 4;
        }
        u8(&l, (unsigned)n);
        put(&l, name, n);
    }
    e.n = 0;
    u16(&e, 16), u16(&e, (unsigned)l.n + 2), u16(&e, (unsigned)l.n), put(&e, l.b, l.n);
    static const uint8_t vers[] = {6, 0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03};
    ext(&e, 43, vers, sizeof(vers));
    assert_int_equal(hand_parse(&e, &ci, NULL), CH_OK);
    assert_int_equal(ci.n_alpn, 8);
    assert_string_equal(ci.alpn[0], "p0");
    assert_string_equal(ci.alpn[1], "p1");
    assert_string_equal(ci.alpn[2], "p4");
    assert_string_equal(ci.alpn[7], "p9");
    assert_true(ci.tls13_offered);

    static const uint8_t v12[] = {2, 0x03, 0x03};
    e.n = 0;
    ext(&e, 43, v12, sizeof(v12));
    assert_int_equal(hand_parse(&e, &ci, NULL), CH_OK);
    assert_false(ci.tls13_offered);

    static const uint8_t odd[] = {3, 0x03, 0x04, 0x03};
    e.n = 0;
    ext(&e, 43, odd, sizeof(odd));
    expect_malformed(&e, "bad supported_versions length");
    static const uint8_t vshort[] = {4, 0x03, 0x04};
    e.n = 0;
    ext(&e, 43, vshort, sizeof(vshort));
    expect_malformed(&e, "bad supported_versions length");

    static const uint8_t list_len[] = {0, 5, 2, 'h', '2'};
    e.n = 0;
    ext(&e, 16, list_len, sizeof(list_len));
    expect_malformed(&e, "bad ALPN list length");
    static const uint8_t zero_len[] = {0, 4, 2, 'h', '2', 0};
    e.n = 0;
    ext(&e, 16, zero_len, sizeof(zero_len));
    expect_malformed(&e, "bad ALPN protocol length");
    static const uint8_t overrun[] = {0, 3, 5, 'h', '2'};
    e.n = 0;
    ext(&e, 16, overrun, sizeof(overrun));
    expect_malformed(&e, "bad ALPN protocol length");
    static const uint8_t h2[] = {0, 3, 2, 'h', '2'};
    e.n = 0;
    ext(&e, 16, h2, sizeof(h2));
    ext(&e, 16, h2, sizeof(h2));
    expect_malformed(&e, "duplicate extension");
}

static void test_hand_lengths(void **state)
{
    (void)state;
    static struct hb e, s;
    struct ch_info ci;
    const char *why = NULL;

    e.n = 0;
    ext_sni1(&e, "ok.example");
    static const uint8_t pad[2000];
    ext(&e, 21, pad, sizeof(pad)); /* padding: > 1500 bytes in total */
    hand_hello(&e, &s);
    assert_true(s.n > 2000);
    assert_int_equal(parse(s.b, s.n, &ci, NULL), CH_OK);
    assert_string_equal(ci.sni, "ok.example");
    check_resplit(s.b, s.n, &ci);

    /* offsets in a hand-built hello: record 0..4, hs header 5..8, version 9..10,
     * random 11..42, session id length 43, session id 44..75, cipher length 76..77,
     * ciphers 78..81, compression length 82, method 83, extensions length 84..85 */
    static struct hb c;
#define CORRUPT(off, val, code, msg)                                                               \
    do {                                                                                           \
        c = s;                                                                                     \
        c.b[off] = (uint8_t)(val);                                                                 \
        assert_int_equal(parse(c.b, c.n, &ci, &why), code);                                        \
        assert_string_equal(why, msg);                                                             \
    } while (0)
    CORRUPT(0, 0x17, CH_NOT_TLS, "not a TLS handshake record");
    CORRUPT(1, 0x02, CH_NOT_TLS, "bad TLS record version");
    CORRUPT(2, 0x05, CH_NOT_TLS, "bad TLS record version");
    CORRUPT(5, 0x02, CH_MALFORMED, "not a ClientHello");
    CORRUPT(43, 33, CH_MALFORMED, "bad session id length");
    CORRUPT(77, 3, CH_MALFORMED, "bad cipher suites length");
    CORRUPT(77, 0, CH_MALFORMED, "bad cipher suites length");
    CORRUPT(82, 0, CH_MALFORMED, "bad compression methods length");
    CORRUPT(85, s.b[85] + 1, CH_MALFORMED, "bad extensions length");
    CORRUPT(85, s.b[85] - 1, CH_MALFORMED, "bad extensions length");
    CORRUPT(88, 0xFF, CH_MALFORMED, "bad extension length"); /* first extension's length */
    c = s;
    c.b[3] = 0x40, c.b[4] = 0x01; /* record length 16385 */
    assert_int_equal(parse(c.b, c.n, &ci, &why), CH_MALFORMED);
    assert_string_equal(why, "bad TLS record length");
    c.b[3] = 0, c.b[4] = 0;
    assert_int_equal(parse(c.b, c.n, &ci, &why), CH_MALFORMED);

    /* handshake and record lengths one byte beyond what was sent: needs more */
    c = s;
    c.b[8] += 1;
    c.b[4] += 1;
    assert_int_equal(parse(c.b, c.n, &ci, NULL), CH_NEED_MORE);
    /* handshake body shorter than its fields */
    static const uint8_t tiny[] = {0x16, 0x03, 0x01, 0x00, 0x06, 0x01,
                                   0x00, 0x00, 0x02, 0x03, 0x03};
    assert_int_equal(parse(tiny, sizeof(tiny), &ci, &why), CH_MALFORMED);
    assert_string_equal(why, "ClientHello too short");

    /* second record of another content type */
    static uint8_t msg[BIG], re[BIG];
    size_t m = unrecord(s.b, s.n, msg);
    size_t r = recordize(msg, m, 100, re);
    re[105] = 0x17;
    assert_int_equal(parse(re, r, &ci, &why), CH_MALFORMED);
    assert_string_equal(why, "unexpected record type in ClientHello");
    assert_int_equal(parse(re, 105, &ci, NULL), CH_NEED_MORE);
    assert_int_equal(parse(re, 106, &ci, NULL), CH_MALFORMED);
}

static void test_not_tls(void **state)
{
    (void)state;
    struct ch_info ci;
    const char *why = NULL;
    assert_int_equal(parse((const uint8_t *)"G", 1, &ci, &why), CH_NOT_TLS);
    assert_int_equal(parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &ci, NULL), CH_NOT_TLS);
    assert_int_equal(parse((const uint8_t *)"", 0, &ci, NULL), CH_NEED_MORE);
    assert_int_equal(parse((const uint8_t *)"\x16", 1, &ci, NULL), CH_NEED_MORE);
    assert_int_equal(parse((const uint8_t *)"\x16\x03", 2, &ci, NULL), CH_NEED_MORE);
    assert_int_equal(parse((const uint8_t *)"\x16\x02", 2, &ci, NULL), CH_NOT_TLS);
    /* SSLv2-compatible ClientHello */
    static const uint8_t v2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
    assert_int_equal(parse(v2, sizeof(v2), &ci, &why), CH_NOT_TLS);
    assert_string_equal(why, "not a TLS handshake record");
    /* PROXY protocol header in front of TLS: not TLS */
    assert_int_equal(parse((const uint8_t *)"PROXY ", 6, &ci, NULL), CH_NOT_TLS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_tls13),   cmocka_unit_test(test_real_tls12_no_sni),
        cmocka_unit_test(test_real_big),     cmocka_unit_test(test_real_corrupted),
        cmocka_unit_test(test_hand_sni),     cmocka_unit_test(test_hand_alpn_versions),
        cmocka_unit_test(test_hand_lengths), cmocka_unit_test(test_not_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
