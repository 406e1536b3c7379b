/* libFuzzer harness for h1_parse_request and its helpers (src/http/h1_request.c).
 * Checks, besides memory safety: a complete head is within len and max_head, ends with an
 * empty line, and every shorter prefix asks for more (never an error: the parser must not
 * judge a request by bytes it has not seen); every pointer of the result lies inside the
 * head; parsed tokens and values contain only the characters the grammar allows. The
 * first input byte picks the head limit, so the "too large" paths are explored as well. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_request.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_inside(struct h1_str s, const char *buf, size_t n, int allow_empty)
{
    CHECK(s.p >= buf && s.p + s.len <= buf + n);
    CHECK(allow_empty || s.len > 0);
}

static int no_ctl(struct h1_str s, int allow_space)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == 0x7f || (c < 0x20 && c != '\t') || c == '\r' || c == '\n')
            return 0;
        if (!allow_space && (c == ' ' || c == '\t'))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_head = data[0] < 16 ? (size_t)data[0] * 64 + 16 : 8192;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    struct h1_request req;
    int n = h1_parse_request(buf, len, max_head, &req);
    if (n == H1_NEED_MORE) {
        CHECK(len < max_head);
        return 0;
    }
    if (n < 0) {
        CHECK(n == H1_ERR_SYNTAX || n == H1_ERR_TOO_LARGE || n == H1_ERR_TOO_MANY ||
              n == H1_ERR_VERSION);
        return 0;
    }
    size_t head = (size_t)n;
    CHECK(head <= len && head <= max_head && head >= 4);
    CHECK(memcmp(buf + head - 4, "\r\n\r\n", 4) == 0 || (head >= 2 && buf[head - 2] == '\r'));
    check_inside(req.method, buf, head, 0);
    check_inside(req.target, buf, head, 0);
    CHECK(no_ctl(req.method, 0) && no_ctl(req.target, 0));
    CHECK(req.minor_version == 0 || req.minor_version == 1);
    CHECK(req.n_headers <= H1_MAX_HEADERS);
    for (size_t i = 0; i < req.n_headers; i++) {
        check_inside(req.headers[i].name, buf, head, 0);
        check_inside(req.headers[i].value, buf, head, 1);
        CHECK(no_ctl(req.headers[i].name, 0) &&
              memchr(req.headers[i].name.p, ':', req.headers[i].name.len) == NULL);
        CHECK(no_ctl(req.headers[i].value, 1));
        if (req.headers[i].value.len) {
            char first = req.headers[i].value.p[0];
            char last = req.headers[i].value.p[req.headers[i].value.len - 1];
            CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
        }
    }
    /* the same head alone parses the same; its prefixes only ask for more */
    struct h1_request again;
    CHECK(h1_parse_request(buf, head, max_head, &again) == n);
    CHECK(again.n_headers == req.n_headers);
    for (size_t cut = head > 64 ? head - 64 : 0; cut < head; cut++)
        CHECK(h1_parse_request(buf, cut, max_head, &again) == H1_NEED_MORE);

    /* helpers must not crash on anything the parser accepts */
    uint64_t body;
    int framing = h1_body_length(&req, &body);
    CHECK(framing == 0 || framing == 1 || framing == H1_ERR_SYNTAX);
    (void)h1_keep_alive(&req);
    (void)h1_header_has_token(&req, "connection", "close");
    (void)h1_find_header(&req, "host");
    char path[256];
    int d = h1_percent_decode(req.target.p, req.target.len, path, sizeof(path));
    CHECK(d == -1 || ((size_t)d < sizeof(path) && path[d] == 0 && strlen(path) == (size_t)d));
    return 0;
}
