/* HTTP/1.x message heads, request and response (RFC 9112 sections 2 to 5): a bounded,
 * incremental parser in the style of picohttpparser. A pure function over
 * (pointer, length): it never allocates, never reads past `len` nor past the head limit,
 * and keeps no global state. The parsed head points into the caller's buffer.
 *
 * Incremental: a head may arrive in many segments. The caller keeps the bytes received so
 * far in one buffer and calls the parser again with the longer length; the parser resumes
 * after the last complete line (and does not rescan an incomplete line either), so a head
 * costs O(its length) however it is split. Between calls the bytes already passed must
 * stay unchanged at the same address, and `len` must not shrink; a caller that moves the
 * buffer calls h1_head_init() again and the head is parsed from its start. The result of
 * feeding a buffer in pieces is always the result of parsing it whole.
 *
 * Strict on purpose: this parser fronts a proxy, and a message that two implementations
 * could frame or read differently is refused, never repaired or guessed at (the policy of
 * the spec's "Messages: what is forwarded"). The head grammar enforced here:
 *   - every line ends in CRLF; a bare CR or a bare LF anywhere in the head is an error;
 *   - request line: method (token) SP request-target SP HTTP-version, single spaces;
 *     empty lines before the request line are skipped (RFC 9112 section 2.2), not before a
 *     status line;
 *   - request-target: origin-form ("/path?query"), absolute-form ("http://authority/path",
 *     http or https only, no userinfo), authority-form ("host:port", CONNECT only and
 *     CONNECT never anything else) or asterisk-form ("*", OPTIONS only); characters per
 *     uri.h (visible ASCII except '#');
 *   - version "HTTP/1.0" or "HTTP/1.1"; another "HTTP/x.y" is H1_E_VERSION (505), anything
 *     else H1_E_VERSION_SYNTAX (400); case-sensitive;
 *   - status line: HTTP-version SP 3DIGIT (100..599) [SP reason-phrase], the reason of
 *     HTAB / SP / VCHAR / obs-text. The one leniency: the SP before an empty reason may be
 *     missing ("HTTP/1.1 200"), as some servers send it and no framing depends on it;
 *   - field line: token name, ':' right after it (no whitespace before the colon), OWS,
 *     value of VCHAR / obs-text / SP / HTAB (no NUL, no other control character, no DEL),
 *     OWS; a line starting with SP or HTAB (obsolete line folding, or whitespace between
 *     the start line and the first field) is an error;
 *   - limits: the head (start line, field lines, the final empty line, and skipped empty
 *     lines before a request line) is at most max_head bytes, else H1_E_HEAD_TOO_LARGE
 *     (431) or, when the start line itself is not complete within max_head bytes,
 *     H1_E_LINE_TOO_LONG (414); at most max_fields field lines, else
 *     H1_E_TOO_MANY_FIELDS (431). A head of exactly max_head bytes, or with exactly
 *     max_fields fields, is accepted.
 * Meaning (framing, Host, Connection, Expect, Upgrade) is checked separately, by
 * h1_check_request() and h1_check_response() (h1_message.h), also pure. */
#ifndef SLUICE_HTTP_H1_PARSE_H
#define SLUICE_HTTP_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1_error.h"

/* Results of the parse functions; a positive value is the head length (done). */
#define H1_NEED_MORE (-1) /* incomplete: call again with more bytes */
#define H1_ERROR (-2)     /* refused: head->error says why */

/* The largest max_head the parsers honour (a head length must fit in an int). */
#define H1_MAX_HEAD_LIMIT (16u * 1024 * 1024)

struct h1_str {
    const char *p;
    size_t len;
};

struct h1_header {
    struct h1_str name;  /* as sent (compare case-insensitively) */
    struct h1_str value; /* leading and trailing OWS removed; may be empty */
};

struct h1_limits {
    size_t max_head;   /* bytes: listener max_header_size (capped at H1_MAX_HEAD_LIMIT) */
    size_t max_fields; /* field lines: listener max_headers (capped at the array capacity) */
};

enum h1_target_form { H1_ORIGIN_FORM, H1_ABSOLUTE_FORM, H1_AUTHORITY_FORM, H1_ASTERISK_FORM };

struct h1_head {
    /* request line */
    struct h1_str method;
    struct h1_str target; /* the request-target as sent */
    enum h1_target_form form;
    struct h1_str scheme;    /* absolute-form: "http" or "https" (any case); else empty */
    struct h1_str authority; /* absolute-form and authority-form: host[:port]; else empty */
    struct h1_str path;      /* origin-form: the target; absolute-form: what follows the
                                authority ("" stands for "/"); asterisk-form: "*" */
    /* status line */
    int status;           /* 100..599 */
    struct h1_str reason; /* may be empty */
    /* both */
    int minor_version;         /* HTTP/1.minor_version: 0 or 1 */
    struct h1_header *headers; /* the caller's array (h1_head_init) */
    size_t n_headers;
    size_t cap_headers;
    enum h1_error error; /* why the last call returned H1_ERROR */
    struct {             /* private: where to resume */
        size_t off;      /* start of the first line not parsed yet */
        size_t scan;     /* [off, scan) of that line holds no CR or LF */
        int result;      /* the final result once done or refused, else 0 */
        bool in_fields;  /* the start line is parsed */
    } st;
};

/* Prepares `h` for a new head whose field lines go to headers[0..capacity). */
void h1_head_init(struct h1_head *h, struct h1_header *headers, size_t capacity);

/* Parses (or resumes parsing) a request head at buf[0..len). Returns the head length
 * (> 0) once complete, H1_NEED_MORE, or H1_ERROR with h->error set. Once complete or
 * refused, further calls return the same result. Looks at most at
 * min(len, lim->max_head) bytes. */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim, struct h1_head *h);

/* The same for a response head (status line instead of request line). */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim, struct h1_head *h);

#endif
