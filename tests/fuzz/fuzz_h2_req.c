/* libFuzzer harness for h2_req (src/http/h2_req.c): HTTP/2 request fields to an HTTP/1.1
 * head. Input: byte 0 holds flags (bit 0: a body follows, bit 1: offer a WebSocket key,
 * bits 2-7: the header-list limit in 64-byte steps), then fields as lines "name\tvalue"
 * separated by '\n' (a line without a tab is a name with an empty value).
 * Checks, besides memory safety:
 *   - a head that h2_req writes lies within the buffer and ends with an empty line;
 *   - no smuggling: when the strict HTTP/1.1 parser accepts the head, it finds exactly the
 *     fields h2_req meant to write (Host, the regular fields less host and te, one cookie
 *     line for all crumbs, the framing or upgrade fields): a value can never start a
 *     field or a request of its own;
 *   - every value h2_req accepted is free of CR, LF and NUL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"
#include "http/h2_req.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool body = data[0] & 1, key = data[0] & 2;
    uint32_t max = 64u * (1u + (data[0] >> 2));
    struct h2_req r;
    h2_req_init(&r, max);
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    size_t expect_fields = 1; /* Host */
    bool cookie = false, ok = true;
    while (p < end && ok) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *tab = memchr(p, '\t', (size_t)(line_end - p));
        const char *name = p, *value = tab ? tab + 1 : line_end;
        size_t nlen = (size_t)((tab ? tab : line_end) - p), vlen = (size_t)(line_end - value);
        if (h2_req_field(&r, name, nlen, value, vlen) < 0) {
            ok = false;
        } else {
            CHECK(!memchr(value, '\r', vlen) && !memchr(value, '\n', vlen) &&
                  !memchr(value, '\0', vlen));
            bool pseudo = nlen && name[0] == ':';
            bool dropped =
                (nlen == 4 && !memcmp(name, "host", 4)) || (nlen == 2 && !memcmp(name, "te", 2));
            bool is_cookie = nlen == 6 && !memcmp(name, "cookie", 6);
            if (!pseudo && !dropped && !(is_cookie && cookie))
                expect_fields++;
            cookie = cookie || is_cookie;
        }
        p = line_end + (nl ? 1 : 0);
    }
    char out[8192];
    int n =
        ok ? h2_req_write_h1(&r, body, key ? "dGhlIHNhbXBsZSBub25jZQ==" : NULL, out, sizeof(out))
           : -1;
    if (n > 0) {
        CHECK((size_t)n <= sizeof(out) && n >= 4 && !memcmp(out + n - 4, "\r\n\r\n", 4));
        bool ws = h2_req_is_websocket(&r);
        if (ws)
            expect_fields += 3;
        else if (body && !r.has_length && memcmp(out, "CONNECT ", 8) != 0)
            expect_fields += 1;
        static struct h1_header fields[512];
        struct h1_head h;
        h1_head_init(&h, fields, 512);
        struct h1_limits lim = {sizeof(out), 512};
        if (h1_parse_request(out, (size_t)n, &lim, &h) == n)
            CHECK(h.n_headers == expect_fields);
    }
    h2_req_free(&r);
    return 0;
}
