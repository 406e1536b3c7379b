/* libFuzzer harness for ch_parse (src/tls/client_hello.c).
 * 1. The input as a raw stream: memory safety, result codes in range, sane ch_info.
 * 2. The input as a bare handshake message, wrapped into records two ways (one record,
 *    and records of 1..64 bytes chosen by the first input byte): both framings must give
 *    the same result and the same ch_info, and no strict prefix may be CH_OK. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/client_hello.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_MSG 16384

static void check_info(int rc, const struct ch_info *ci, const char *why)
{
    CHECK(rc >= CH_TOO_LARGE && rc <= CH_OK);
    if (rc < 0)
        CHECK(why != NULL);
    if (rc != CH_OK)
        return;
    CHECK(ci->n_alpn >= 0 && ci->n_alpn <= CH_ALPN_MAX);
    for (int i = 0; i < ci->n_alpn; i++)
        CHECK(memchr(ci->alpn[i], '\0', sizeof(ci->alpn[i])) && ci->alpn[i][0]);
    CHECK(memchr(ci->sni, '\0', sizeof(ci->sni)) != NULL);
    CHECK(ci->has_sni == (ci->sni[0] != '\0'));
    for (const char *p = ci->sni; *p; p++)
        CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.');
}

/* Wraps msg[0..n) into records of `rec` bytes; returns the stream length. */
static size_t wrap(const uint8_t *msg, size_t n, size_t rec, uint8_t *out)
{
    size_t o = 0;
    for (size_t p = 0; p < n; p += rec) {
        size_t k = n - p < rec ? n - p : rec;
        out[o++] = 0x16;
        out[o++] = 0x03;
        out[o++] = 0x03;
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, msg + p, k);
        o += k;
    }
    return o;
}

static uint8_t one[MAX_MSG + 5], many[MAX_MSG * 6];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ch_info a, b;
    const char *why = NULL;
    int rc, rc2;

    rc = ch_parse(data, size, CH_MAX_DEFAULT, &a, &why);
    check_info(rc, &a, why);

    if (size < 2 || size - 1 > MAX_MSG)
        return 0;
    size_t rec = 1 + data[0] % 64;
    const uint8_t *msg = data + 1;
    size_t n = size - 1;
    size_t n1 = wrap(msg, n, MAX_MSG, one);
    size_t n2 = wrap(msg, n, rec, many);

    why = NULL;
    rc = ch_parse(one, n1, MAX_MSG, &a, &why);
    check_info(rc, &a, why);
    why = NULL;
    rc2 = ch_parse(many, n2, MAX_MSG, &b, &why);
    check_info(rc2, &b, why);
    CHECK(rc == rc2);
    if (rc == CH_OK) {
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        CHECK(ch_parse(many, n2 - 1, MAX_MSG, &b, NULL) != CH_OK ||
              memcmp(&a, &b, sizeof(a)) == 0); /* trailing bytes may make it OK earlier */
    }
    return 0;
}
