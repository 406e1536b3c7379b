/* The meaning of a parsed HTTP/1 head (h1_parse.h) for a proxy: how its body is framed
 * (RFC 9112 section 6.3), whether the connection persists, and the Host, Expect and
 * Upgrade facts the proxy acts on. Pure functions; the first rule a message breaks is
 * returned as an enum h1_error (status via h1_error_status(); a refused response is a 502).
 *
 * Strictness policy (the spec's "Messages: what is forwarded"; where RFC 9110/9112 leave
 * a choice, the stricter reading is taken):
 *   - Content-Length is 1*DIGIT up to 2^64-1; identical values on several lines or as a list
 *     are merged (RFC 9110 section 8.6), differing ones refused;
 *   - Transfer-Encoding with Content-Length is refused (requests and responses alike), as
 *     is Transfer-Encoding in an HTTP/1.0 message, an empty Transfer-Encoding line or list
 *     element, and any transfer-parameter. Requests: a coding nobody registered
 *     ("xchunked", "identity") is 501, chunked twice or not last is 400, a registered coding
 *     before chunked ("gzip, chunked") is 501 (sluice re-frames bodies and implements no
 *     coding but chunked). Responses: anything but exactly "chunked" is refused: a response
 *     is never read as close-delimited because of its Transfer-Encoding;
 *   - Host: exactly one in HTTP/1.1, at most one in HTTP/1.0, valid per uri.h; with an
 *     absolute-form or authority-form target, Host must name the same host (any case) and
 *     port: an absent port stands for the scheme's default (80, 443), and for CONNECT for
 *     the target's port (RFC 9110 section 9.3.6 writes "Host: server.example.com" for
 *     "CONNECT server.example.com:80");
 *   - Connection options must be tokens; Upgrade protocols token[/token];
 *   - Expect: "100-continue" (any case) is the only expectation; anything else, parameters
 *     included, is 417; in HTTP/1.0 a 100-continue is ignored (RFC 9110 section 10.1.1);
 *   - a Content-Length over max_body (when not 0) is 413 at once;
 *   - responses: 1xx, 204, 304 and responses to HEAD have no body whatever their fields say
 *     (Content-Length is still validated); a 2xx to CONNECT is a tunnel and its
 *     Content-Length and Transfer-Encoding are ignored (RFC 9110 section 9.3.6); a 101 is
 *     a tunnel only when the request offered an upgrade and the response carries Upgrade
 *     and "Connection: upgrade", else it is refused. */
#ifndef SLUICE_HTTP_H1_MESSAGE_H
#define SLUICE_HTTP_H1_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/h1_parse.h"

enum h1_body {
    H1_BODY_NONE,    /* the message ends with its head */
    H1_BODY_LENGTH,  /* exactly `length` bytes (may be 0) */
    H1_BODY_CHUNKED, /* chunked framing: run h1_chunked over it */
    H1_BODY_CLOSE,   /* response only: everything until the server closes */
    H1_BODY_TUNNEL,  /* response only: 101 or 2xx to CONNECT; the bytes are a tunnel */
};

struct h1_msg {
    enum h1_body body;
    uint64_t length;   /* H1_BODY_LENGTH */
    bool keep_alive;   /* the connection persists after this message */
    bool conn_close;   /* Connection lists "close" */
    bool conn_upgrade; /* Connection lists "upgrade" */
    /* requests */
    bool expect_continue; /* HTTP/1.1, "Expect: 100-continue", and a body to wait for */
    bool upgrade;         /* HTTP/1.1 with Upgrade and "Connection: upgrade" */
    bool websocket;       /* ... on a GET, Upgrade listing "websocket" */
    /* (in a response, upgrade means an accepted 101, and websocket that its Upgrade lists
       "websocket": the proxy checks the server switched to what the client offered) */
    struct h1_str authority; /* host[:port] the request is for: the target's in
                                absolute-form and authority-form, else Host (may be absent
                                in HTTP/1.0: p == NULL) */
    struct h1_str host;      /* that authority without its port */
    int port;                /* its port, -1 when absent */
    /* responses */
    bool interim; /* 1xx other than 101: a final response follows */
};

/* Checks the request head h and fills m. max_body: 0 = unlimited. */
enum h1_error h1_check_request(const struct h1_head *h, uint64_t max_body, struct h1_msg *m);

/* What a response answers, for its framing. */
struct h1_exchange {
    bool head;    /* the request was HEAD */
    bool connect; /* the request was CONNECT */
    bool upgrade; /* the request offered an upgrade (h1_msg.upgrade) */
};

/* Checks the response head h to a request described by x and fills m. */
enum h1_error h1_check_response(const struct h1_head *h, const struct h1_exchange *x,
                                struct h1_msg *m);

#endif
