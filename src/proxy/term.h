/* Why a client connection (or an HTTP exchange) ended: one value per
 * `termination` of the access log, named by term_name(). Shared by every protocol, so
 * that logs, metrics and the close path classify endings the same way. */
#ifndef SLUICE_PROXY_TERM_H
#define SLUICE_PROXY_TERM_H

#include <stdbool.h>

enum term {
    TERM_NONE, /* not ended (yet): the zero value */
    TERM_CLIENT_CLOSED,
    TERM_SERVER_CLOSED,
    TERM_CLIENT_RESET,
    TERM_SERVER_RESET,
    TERM_CLIENT_ERROR,
    TERM_SERVER_ERROR,
    TERM_IDLE_TIMEOUT,
    TERM_CONNECT_FAILED,
    TERM_NO_SERVER,
    TERM_NO_ROUTE,
    TERM_TLS_ERROR,
    TERM_BAD_PROXY_HEADER,
    TERM_HELLO_TIMEOUT,
    TERM_BAD_CLIENT_HELLO,
    TERM_CLIENT_HELLO_TOO_LARGE,
    TERM_DRAINED,
    TERM_SHUTDOWN,
    TERM_INTERNAL_ERROR,
    /* HTTP exchanges (one access-log line per request) */
    TERM_COMPLETE,         /* the response was sent whole */
    TERM_CLIENT_ABORTED,   /* the client left (or failed) before the response was sent */
    TERM_SERVER_ABORTED,   /* the server closed or failed after its response started */
    TERM_HEADER_TIMEOUT,   /* request head not complete within header_timeout (408) */
    TERM_BODY_TIMEOUT,     /* no request-body byte within body_timeout */
    TERM_RESPONSE_TIMEOUT, /* no response head within response_timeout (504) */
    TERM_BAD_REQUEST,      /* a malformed or refused request (400/413/414/417/431/501/505) */
    TERM_BAD_RESPONSE,     /* a malformed response, or a server that failed before one (502) */
    TERM_UPGRADED,         /* a WebSocket tunnel's whole life after its 101 */
    TERM_RATE_LIMITED,     /* refused by a route's rate_limit (429) */
    TERM_REDIRECT,         /* answered by a route's redirect */
    TERM_RESPOND,          /* answered by a route's respond */
    TERM_COUNT
};

/* The access-log text of t ("client_closed", ...). */
const char *term_name(enum term t);

/* Endings of connections that sluice declined to forward without trying a server
 * (sluice_listener_refused_total): no route, no usable server, an unreadable PROXY header
 * or ClientHello. A client that leaves first, a failed TLS handshake (counted apart) and
 * a failed connect (counted per server) are not refusals. */
bool term_is_refusal(enum term t);

#endif
