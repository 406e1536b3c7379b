/* libFuzzer harness for the response side of the HTTP/1 parser: h1_parse_response,
 * h1_check_response (src/http/h1_parse.c, h1_message.c) and h1_write_head.
 * Input: byte 0 picks the head limit, byte 1 the field-count limit, byte 2 what the
 * response answers (bit 0 HEAD, bit 1 CONNECT, bit 2 an upgrade offer) and the split
 * pattern; the rest is the response.
 * Checks, besides memory safety:
 *   - whole versus split feeding give the same result, error and head;
 *   - an accepted head lies within the input and the limits, its prefixes ask for more,
 *     its status is 100..599 and its parts hold only allowed characters;
 *   - differential: the head written back out parses, under limits of exactly its size and
 *     field count, to the same head, with the same h1_check_response verdict and facts;
 *   - framing per RFC 9112 section 6.3: HEAD, 1xx, 204 and 304 have no body, a tunnel
 *     only answers CONNECT (2xx) or an upgrade offer (101), a close-delimited body never
 *     leaves the connection reusable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_fields.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"

#include "h1_fuzz_util.h"

static void check_message(const struct h1_head *h, const struct h1_exchange *x, enum h1_error *e,
                          struct h1_msg *m)
{
    *e = h1_check_response(h, x, m);
    CHECK((unsigned)*e < H1_E_COUNT);
    if (*e != H1_OK)
        return;
    int s = h->status;
    if (m->body == H1_BODY_TUNNEL)
        CHECK((x->connect && s / 100 == 2) || (s == 101 && x->upgrade && m->conn_upgrade));
    else
        CHECK(s != 101);
    if ((x->head || s < 200 || s == 204 || s == 304) && m->body != H1_BODY_TUNNEL)
        CHECK(m->body == H1_BODY_NONE);
    CHECK(m->interim == (s < 200 && s != 101));
    if (m->body == H1_BODY_CLOSE || m->body == H1_BODY_TUNNEL)
        CHECK(!m->keep_alive);
    if (m->body == H1_BODY_CHUNKED)
        CHECK(h->minor_version == 1 && h1_find_header(h, "content-length") == NULL);
    CHECK(!m->expect_continue && m->upgrade == (s == 101) && (!m->websocket || s == 101));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    struct h1_limits lim = {data[0] < 32 ? (size_t)data[0] * 48 + 14 : 8192,
                            data[1] < 64 ? (size_t)data[1] % 24 : 100};
    struct h1_exchange x = {data[2] & 1, (data[2] >> 1) & 1, (data[2] >> 2) & 1};
    uint32_t seed = data[2] >> 3;
    const char *buf = (const char *)data + 3;
    size_t len = size - 3;

    struct h1_header fields[FZ_FIELDS];
    struct h1_head resp;
    h1_head_init(&resp, fields, FZ_FIELDS);
    int n = h1_parse_response(buf, len, &lim, &resp);
    fz_split_feed(h1_parse_response, buf, len, &lim, 0, n, &resp);
    fz_split_feed(h1_parse_response, buf, len, &lim, seed * 2654435761u + 7, n, &resp);
    if (n == H1_NEED_MORE) {
        CHECK(len < lim.max_head);
        return 0;
    }
    if (n == H1_ERROR) {
        CHECK(resp.error != H1_OK && (unsigned)resp.error < H1_E_COUNT);
        return 0;
    }
    CHECK(n > 0 && (size_t)n <= len);
    fz_check_head(buf, n, &resp, &lim, true);

    enum h1_error e;
    struct h1_msg m;
    check_message(&resp, &x, &e, &m);

    static char out[16384];
    struct h1_header f2[FZ_FIELDS];
    struct h1_head copy;
    fz_round_trip(&resp, true, out, sizeof(out), &copy, f2);
    enum h1_error e2;
    struct h1_msg m2;
    check_message(&copy, &x, &e2, &m2);
    fz_same_msg(e, &m, e2, &m2);
    return 0;
}
