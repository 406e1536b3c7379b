/* The verdict of an HTTP health probe over the response it received. Pure: no I/O, no
 * allocation, no global state; the evaluator copies what it needs out of each segment.
 *
 * Contract: probe_http_init(), then probe_http_feed() with each segment of the response
 * in order (each byte once), then probe_http_eof() if the server closes before a verdict.
 * Every call returns PROBE_HTTP_MORE (undecided: feed more) or a final PROBE_HTTP_OK /
 * PROBE_HTTP_FAIL with a short reason in detail (empty on OK); once final, further calls
 * return the same result and leave detail alone.
 *
 * The response head is read with the project's strict parser (h1_parse_response, at most
 * PROBE_HTTP_HEAD_MAX bytes, PROBE_HTTP_FIELDS_MAX fields) and checked with
 * h1_check_response as the answer to a GET; interim 1xx responses are skipped. Then:
 *   - status outside [status_lo, status_hi]: FAIL "status 503 not in 200-399";
 *   - no expected body text: OK on the head alone;
 *   - else the body (Content-Length, chunked via h1_chunked, or until close), decoded, is
 *     searched for the text within its first PROBE_HTTP_BODY_MAX bytes: OK as soon as it
 *     shows up, FAIL "body does not contain 'ok'" when the body ends (or that many bytes
 *     went by) without it;
 *   - a head or chunked framing the parsers refuse: FAIL "malformed response: <reason>";
 *     the connection closing before the head ends: FAIL "connection closed without a
 *     response" (nothing received) or "malformed response: incomplete head"; before a
 *     framed body ends: "malformed response: body cut short". */
#ifndef SLUICE_UPSTREAM_PROBE_HTTP_H
#define SLUICE_UPSTREAM_PROBE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "http/h1_chunked.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"

#define PROBE_HTTP_HEAD_MAX (16 * 1024)
#define PROBE_HTTP_FIELDS_MAX 100
#define PROBE_HTTP_BODY_MAX (64 * 1024)

enum probe_http_result { PROBE_HTTP_MORE, PROBE_HTTP_OK, PROBE_HTTP_FAIL };

struct probe_http_expect {
    int status_lo, status_hi; /* inclusive */
    const char *body;         /* substring of the body, or NULL / "" for none */
};

struct probe_http_eval {
    const char *xbody; /* the caller's expect->body: must outlive the evaluator */
    size_t xbody_len;
    int status_lo, status_hi;
    enum probe_http_result result;
    int status; /* of the final response, once its head is read */
    /* private */
    bool in_body;
    unsigned long long got; /* bytes fed */
    size_t head_len;        /* bytes in head[] */
    struct h1_head head;
    struct h1_msg msg;
    struct h1_chunked chunked;
    unsigned long long body_left; /* H1_BODY_LENGTH */
    size_t body_len;              /* decoded bytes kept in body[] */
    struct h1_header fields[PROBE_HTTP_FIELDS_MAX];
    char head_buf[PROBE_HTTP_HEAD_MAX];
    char body[PROBE_HTTP_BODY_MAX];
};

void probe_http_init(struct probe_http_eval *e, const struct probe_http_expect *x);

enum probe_http_result probe_http_feed(struct probe_http_eval *e, const char *buf, size_t len,
                                       char *detail, size_t detail_len);

/* The server closed the connection. Never returns PROBE_HTTP_MORE. */
enum probe_http_result probe_http_eof(struct probe_http_eval *e, char *detail, size_t detail_len);

/* `s[0..n)` quoted for a log line: printable ASCII as is, \r \n \t and \xNN otherwise,
 * cut at about 40 bytes with "...". */
void probe_quote(const char *s, size_t n, char *out, size_t cap);

/* The whole response at once: init, feed, and eof when `closed`. For tests and callers
 * that hold the response in one buffer. */
enum probe_http_result probe_http_verdict(struct probe_http_eval *e, const char *buf, size_t len,
                                          bool closed, const struct probe_http_expect *x,
                                          char *detail, size_t detail_len);

#endif
