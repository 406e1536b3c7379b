/* One HTTP/2 request's header block, as HTTP/1.1: the fields of a stream's HEADERS (as
 * nghttp2 hands them over, one at a time) are collected, checked, and written as the
 * HTTP/1.1 request head that the HTTP/1.1 engine then parses, routes and forwards like
 * any other. Pure and bounded: the fields live in one buffer of at most `max` bytes.
 *
 * What is refused (RFC 9113 section 8, and anything the HTTP/1.1 side could read
 * differently): unknown or repeated pseudo-header fields, a pseudo-header after a regular
 * field, a name that is not a lowercase token, a value with CR, LF, NUL or leading or
 * trailing whitespace, connection-specific fields (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade), TE other than "trailers", a Host that
 * names another authority than :authority, a missing :method, :scheme or :path (except
 * for CONNECT), a :protocol without CONNECT.
 *
 * What is written: "METHOD path HTTP/1.1", Host (from :authority, else the host field),
 * the regular fields in order (TE dropped: HTTP/1.1 servers get no TE), the cookie
 * crumbs joined into one Cookie field ("; ", RFC 9113 8.2.3), and the body's framing:
 * the client's content-length, else "Transfer-Encoding: chunked" when a body follows.
 * An extended CONNECT (RFC 8441, :protocol websocket) becomes "GET path" with
 * "Upgrade: websocket", "Connection: Upgrade" and a Sec-WebSocket-Key. */
#ifndef SLUICE_HTTP_H2_REQ_H
#define SLUICE_HTTP_H2_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2_req {
    char *mem; /* fields as "name: value\r\n", cookies apart (see h2_req.c) */
    uint32_t len, cap, max;
    uint32_t method, method_len, scheme, scheme_len, authority, authority_len, path, path_len,
        protocol, protocol_len, host, host_len; /* offsets into mem; *_len 0: absent */
    uint32_t cookies;                           /* bytes of cookie values, joined */
    bool regular_seen;                          /* a regular field came: no pseudo after it */
    bool has_length;                            /* content-length present */
    const char *error;                          /* why a request was refused (static) */
};

/* Starts r empty for a header block of at most `max` bytes (name + value + 32 per field,
 * as SETTINGS_MAX_HEADER_LIST_SIZE counts). */
void h2_req_init(struct h2_req *r, uint32_t max);
void h2_req_free(struct h2_req *r);

/* Adds one field. Returns 0, or -1 when the request is malformed or too large (r->error
 * says which; "too large" starts with "header list"). */
int h2_req_field(struct h2_req *r, const char *name, size_t nlen, const char *value, size_t vlen);

/* Writes the HTTP/1.1 head (ending with the empty line) into out[0..cap). `body` says
 * whether DATA follows (the stream did not end with its HEADERS); `ws_key` is the
 * 24-character Sec-WebSocket-Key to send for an extended CONNECT (may be NULL
 * otherwise). Returns the length, or -1 (r->error) when the request is incomplete or
 * does not fit. */
int h2_req_write_h1(struct h2_req *r, bool body, const char *ws_key, char *out, size_t cap);

/* Checks one field of a request's trailer section: the rules of h2_req_field for regular
 * fields, and none of the fields that frame or route a message (content-length, host,
 * te, the connection-specific ones). Returns 0, or -1 with *why set. */
int h2_req_trailer_ok(const char *name, size_t nlen, const char *value, size_t vlen,
                      const char **why);

/* True when the request is an extended CONNECT for a WebSocket (after h2_req_write_h1). */
bool h2_req_is_websocket(const struct h2_req *r);

#endif
