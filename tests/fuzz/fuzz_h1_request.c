/* libFuzzer harness for the request side of the HTTP/1 parser: h1_parse_request,
 * h1_check_request and the helpers (src/http/h1_parse.c, h1_message.c, h1_fields.c,
 * uri.c), and h1_write_head.
 * Input: byte 0 picks the head limit (so the 414/431 paths are explored), byte 1 the
 * field-count limit and max_body, byte 2 the split pattern; the rest is the request.
 * Checks, besides memory safety:
 *   - whole versus split: feeding the request byte by byte and in random pieces gives the
 *     same result, error and head as parsing it whole;
 *   - an accepted head lies within the input and the limits, ends with an empty line, its
 *     prefixes only ask for more, and its parts hold only the characters the grammar allows;
 *   - differential: the head written back out by h1_write_head parses, under limits of
 *     exactly its size and field count, to the same head, and h1_check_request gives the
 *     same verdict and the same message facts for both; writing the copy again gives the
 *     same bytes;
 *   - the semantic facts are consistent (a websocket is an upgrade, only HTTP/1.1 expects
 *     100-continue or upgrades, an HTTP/1.1 request has an authority, a request body is
 *     never close-delimited). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_fields.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/uri.h"

#include "h1_fuzz_util.h"

static void check_message(const struct h1_head *h, uint64_t max_body, enum h1_error *e,
                          struct h1_msg *m)
{
    *e = h1_check_request(h, max_body, m);
    CHECK((unsigned)*e < H1_E_COUNT);
    int status = h1_error_status(*e);
    CHECK(*e == H1_OK ? status == 0 : status >= 400 && status <= 505);
    if (*e != H1_OK)
        return;
    CHECK(m->body == H1_BODY_NONE || m->body == H1_BODY_LENGTH || m->body == H1_BODY_CHUNKED);
    CHECK(!max_body || m->body != H1_BODY_LENGTH || m->length <= max_body);
    CHECK(!m->websocket || m->upgrade);
    CHECK(!m->upgrade || (h->minor_version == 1 && m->conn_upgrade));
    CHECK(!m->expect_continue || h->minor_version == 1);
    CHECK(!m->conn_close || !m->keep_alive);
    CHECK(h->minor_version == 0 || m->authority.len > 0);
    if (m->authority.len) {
        struct uri_authority a;
        CHECK(uri_parse_authority(m->authority.p, m->authority.len, false, &a) == 0);
        CHECK(a.port == m->port && a.host_len == m->host.len);
    }
    CHECK(m->body != H1_BODY_CHUNKED || h1_find_header(h, "content-length") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    struct h1_limits lim = {data[0] < 32 ? (size_t)data[0] * 48 + 16 : 8192,
                            data[1] < 64 ? (size_t)data[1] % 24 : 100};
    uint64_t max_body = data[1] & 1 ? 0 : (uint64_t)data[1] * 1000;
    uint32_t seed = data[2];
    const char *buf = (const char *)data + 3;
    size_t len = size - 3;

    struct h1_header fields[FZ_FIELDS];
    struct h1_head req;
    h1_head_init(&req, fields, FZ_FIELDS);
    int n = h1_parse_request(buf, len, &lim, &req);
    fz_split_feed(h1_parse_request, buf, len, &lim, 0, n, &req);
    fz_split_feed(h1_parse_request, buf, len, &lim, seed * 2654435761u, n, &req);
    if (n == H1_NEED_MORE) {
        CHECK(len < lim.max_head);
        return 0;
    }
    if (n == H1_ERROR) {
        CHECK(req.error != H1_OK && (unsigned)req.error < H1_E_COUNT);
        int s = h1_error_status(req.error);
        CHECK(s == 400 || s == 414 || s == 431 || s == 505);
        return 0;
    }
    CHECK(n > 0 && (size_t)n <= len);
    fz_check_head(buf, n, &req, &lim, false);

    enum h1_error e;
    struct h1_msg m;
    check_message(&req, max_body, &e, &m);

    static char out[16384];
    struct h1_header f2[FZ_FIELDS];
    struct h1_head copy;
    fz_round_trip(&req, false, out, sizeof(out), &copy, f2);
    enum h1_error e2;
    struct h1_msg m2;
    check_message(&copy, max_body, &e2, &m2);
    fz_same_msg(e, &m, e2, &m2);

    /* helpers must not crash on anything the parser accepts */
    (void)h1_keep_alive(&req);
    (void)h1_header_has_token(&req, "connection", "close");
    if (req.n_headers)
        (void)h1_connection_lists(&req, req.headers[0].name);
    char path[256];
    int d = h1_percent_decode(req.target.p, req.target.len, path, sizeof(path));
    CHECK(d == -1 || ((size_t)d < sizeof(path) && path[d] == 0 && strlen(path) == (size_t)d));
    return 0;
}
