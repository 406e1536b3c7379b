/* Reading the field lines of a parsed HTTP/1 head (h1_parse.h): lookup by name, the
 * comma-separated lists of RFC 9110 section 5.6.1 across repeated field lines, and the
 * two framing-related fields the admin server needs on their own (Content-Length,
 * keep-alive). Names and tokens compare case-insensitively. Pure, no allocation. */
#ifndef SLUICE_HTTP_H1_FIELDS_H
#define SLUICE_HTTP_H1_FIELDS_H

#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1_parse.h"

/* The first field called `name`, or NULL. */
const struct h1_header *h1_find_header(const struct h1_head *h, const char *name);

/* How many field lines are called `name`. */
size_t h1_count_headers(const struct h1_head *h, const char *name);

/* Position in the list elements of the fields called one name; start with {0}. */
struct h1_list {
    size_t field; /* index in h->headers */
    size_t pos;   /* offset in that field's value */
    bool in_field;
};

/* The next element of the comma-separated lists of all fields called `name`, in order,
 * trimmed of OWS. Empty elements ("a,,b", an empty value) are returned too, with
 * elem->len == 0: callers decide whether the #rule's leniency applies. A comma inside a
 * quoted-string does not split. Returns false after the last element. */
bool h1_list_next(const struct h1_head *h, const char *name, struct h1_list *it,
                  struct h1_str *elem);

/* True when some `name` field lists `token`, e.g. h1_header_has_token(h, "connection",
 * "close"). */
bool h1_header_has_token(const struct h1_head *h, const char *name, const char *token);

/* True when the Connection field lists the field name `field` (a hop-by-hop field that a
 * proxy must not forward). */
bool h1_connection_lists(const struct h1_head *h, struct h1_str field);

/* Content-Length: H1_OK with *present and *length (0 when absent), H1_E_CL_INVALID when
 * a value or list element is not 1*DIGIT or exceeds 2^64-1, H1_E_CL_CONFLICT when the
 * values differ. Identical values, on several lines or as a list ("5, 5"), are merged
 * (RFC 9110 section 8.6); they are compared as numbers, so "05" equals "5". */
enum h1_error h1_content_length(const struct h1_head *h, bool *present, uint64_t *length);

/* True when the connection persists after this message as far as its version and
 * Connection field go: HTTP/1.1 without "close", or HTTP/1.0 with "keep-alive" and
 * without "close" (RFC 9112 section 9.3). */
bool h1_keep_alive(const struct h1_head *h);

/* True when s equals the NUL-terminated z, ignoring ASCII case. Inline: z is nearly
 * always a literal, whose length the compiler knows, so most calls end at the length. */
static inline bool h1_str_ieq(struct h1_str s, const char *z)
{
    size_t n = strlen(z);
    return s.len == n && strncasecmp(s.p, z, n) == 0;
}

#endif
