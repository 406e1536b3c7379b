/* libFuzzer harness for pp_parse / pp_build (src/net/proxy_proto.c).
 * Checks, besides memory safety: a positive result is within len and max_len, every
 * shorter prefix of a complete header asks for more, TLV pointers stay inside the input, and
 * a parsed address header survives a build -> parse round trip. */
#include <stdint.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "net/proxy_proto.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_one(const uint8_t *data, size_t size, size_t max_len)
{
    struct pp_result r, r2;
    const char *why = NULL;
    int n = pp_parse(data, size, max_len, &r, &why);

    if (n < 0) {
        CHECK(why != NULL);
        return;
    }
    if (n == 0)
        return;
    CHECK((size_t)n <= size && (size_t)n <= max_len && r.header_len == (size_t)n);
    CHECK(pp_parse(data, (size_t)n - 1, max_len, &r2, NULL) == 0);
    CHECK(pp_parse(data, (size_t)n / 2, max_len, &r2, NULL) == 0);
    CHECK(pp_parse(data, (size_t)n, max_len, &r2, NULL) == n);
    if (r.alpn)
        CHECK(r.alpn >= data && r.alpn + r.alpn_len <= data + n);
    if (r.authority)
        CHECK(r.authority >= data && r.authority + r.authority_len <= data + n);
    if (r.local)
        return;
    CHECK(r.src.ss_family == AF_INET || r.src.ss_family == AF_INET6);
    CHECK(r.src.ss_family == r.dst.ss_family && r.src_len == r.dst_len && r.src_len > 0);

    /* round trip: what we parse, we can build, and it parses back the same */
    uint8_t out[600];
    int m = pp_build(r.version, (struct sockaddr *)&r.src, (struct sockaddr *)&r.dst, NULL, NULL,
                     out, sizeof(out));
    CHECK(m > 0);
    CHECK(pp_parse(out, (size_t)m, sizeof(out), &r2, NULL) == m);
    CHECK(!r2.local && r2.version == r.version);
    /* IPv4-mapped pairs come back as IPv4; compare only when no mapping was involved */
    if (r2.src.ss_family == r.src.ss_family) {
        CHECK(memcmp(&r2.src, &r.src, r.src_len) == 0);
        CHECK(memcmp(&r2.dst, &r.dst, r.dst_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size, PP_V2_MAX_DEFAULT);
    check_one(data, size, 64);
    check_one(data, size, 16);

    /* builder with arbitrary addresses and short TLV strings taken from the input */
    if (size >= 2 * sizeof(struct sockaddr_storage) + 2) {
        struct sockaddr_storage s, d;
        char alpn[16], auth[32];
        uint8_t out[128];
        memcpy(&s, data, sizeof(s));
        memcpy(&d, data + sizeof(s), sizeof(d));
        s.ss_family = (data[0] & 1) ? AF_INET : AF_INET6;
        d.ss_family = (data[1] & 1) ? AF_INET : (data[1] & 2) ? AF_INET6 : AF_UNIX;
        size_t rest = size - 2 * sizeof(s);
        const uint8_t *t = data + 2 * sizeof(s);
        snprintf(alpn, sizeof(alpn), "%.*s", (int)(rest < 15 ? rest : 15), (const char *)t);
        snprintf(auth, sizeof(auth), "%.*s", (int)(rest < 31 ? rest : 31), (const char *)t);
        for (int v = 1; v <= 2; v++) {
            size_t cap = t[0] % sizeof(out);
            int m = pp_build(v, (struct sockaddr *)&s, (struct sockaddr *)&d, alpn, auth, out, cap);
            if (m < 0)
                continue;
            CHECK((size_t)m <= cap);
            struct pp_result r;
            CHECK(pp_parse(out, (size_t)m, PP_V2_MAX_DEFAULT, &r, NULL) == m);
        }
    }
    return 0;
}
