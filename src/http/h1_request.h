/* A bounded HTTP/1.x request-head parser (picohttpparser-style): a pure function over
 * (pointer, length) that never allocates and never reads past `len`. The parsed request
 * points into the caller's buffer, which must stay unchanged while the result is used.
 *
 * Strict on purpose, because the same parser fronts the HTTP proxy later: lines end in
 * CRLF (a bare CR or LF is an error), no whitespace between a header name and its colon,
 * no obsolete line folding, no control characters in the target or in header values,
 * only HTTP/1.0 and HTTP/1.1. Empty lines before the request line are skipped. */
#ifndef SLUICE_HTTP_H1_REQUEST_H
#define SLUICE_HTTP_H1_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_MAX_HEADERS 64

/* Results of h1_parse_request (a positive value is the head length: done). */
#define H1_NEED_MORE (-1)     /* the head is incomplete: read more, call again */
#define H1_ERR_SYNTAX (-2)    /* malformed: answer 400 */
#define H1_ERR_TOO_LARGE (-3) /* the head exceeds max_head bytes: answer 431 */
#define H1_ERR_TOO_MANY (-4)  /* more than H1_MAX_HEADERS header lines: answer 431 */
#define H1_ERR_VERSION (-5)   /* not HTTP/1.0 or HTTP/1.1: answer 505 */

struct h1_str {
    const char *p;
    size_t len;
};

struct h1_header {
    struct h1_str name;  /* as sent (compare case-insensitively) */
    struct h1_str value; /* leading and trailing whitespace removed */
};

struct h1_request {
    struct h1_str method;
    struct h1_str target; /* request-target as sent, e.g. "/api/v1/status?x=1" */
    int minor_version;    /* 0 or 1 */
    struct h1_header headers[H1_MAX_HEADERS];
    size_t n_headers;
};

/* Parses the request head at buf[0..len). `max_head` caps the head size in bytes
 * (request line, headers and the final empty line). Returns the head length (> 0) when the
 * head is complete, H1_NEED_MORE when more bytes may complete it (and len < max_head), or
 * a negative H1_ERR_* code. On success `req` is filled; on any other result its content
 * is unspecified. The function looks at most at min(len, max_head) bytes. */
int h1_parse_request(const char *buf, size_t len, size_t max_head, struct h1_request *req);

/* The first header called `name` (case-insensitive), or NULL. */
const struct h1_header *h1_find_header(const struct h1_request *req, const char *name);

/* True when some `name` header holds `token` in its comma-separated list
 * (case-insensitive), e.g. h1_header_has_token(req, "connection", "close"). */
bool h1_header_has_token(const struct h1_request *req, const char *name, const char *token);

/* The request body framing. Returns 0 and sets *length (0 without Content-Length), or
 * H1_ERR_SYNTAX when Content-Length is malformed, repeated with different values or sent
 * together with Transfer-Encoding. Returns 1 when Transfer-Encoding is present (a chunked
 * body, which callers may refuse). */
int h1_body_length(const struct h1_request *req, uint64_t *length);

/* True when the connection stays open after this request: HTTP/1.1 without
 * "Connection: close", or HTTP/1.0 with "Connection: keep-alive". */
bool h1_keep_alive(const struct h1_request *req);

/* Percent-decodes src[0..len) into out (capacity outlen, NUL-terminated). "%2F" and the
 * like are decoded; '+' is left alone (it is not a space in a path). Returns the decoded
 * length, or -1 on a malformed escape, a decoded NUL byte or when out is too small. */
int h1_percent_decode(const char *src, size_t len, char *out, size_t outlen);

#endif
