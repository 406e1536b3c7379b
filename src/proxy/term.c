#include "proxy/term.h"

static const char *const names[TERM_COUNT] = {
    [TERM_NONE] = "none",
    [TERM_CLIENT_CLOSED] = "client_closed",
    [TERM_SERVER_CLOSED] = "server_closed",
    [TERM_CLIENT_RESET] = "client_reset",
    [TERM_SERVER_RESET] = "server_reset",
    [TERM_CLIENT_ERROR] = "client_error",
    [TERM_SERVER_ERROR] = "server_error",
    [TERM_IDLE_TIMEOUT] = "idle_timeout",
    [TERM_CONNECT_FAILED] = "connect_failed",
    [TERM_NO_SERVER] = "no_server",
    [TERM_NO_ROUTE] = "no_route",
    [TERM_TLS_ERROR] = "tls_error",
    [TERM_BAD_PROXY_HEADER] = "bad_proxy_header",
    [TERM_HELLO_TIMEOUT] = "hello_timeout",
    [TERM_BAD_CLIENT_HELLO] = "bad_client_hello",
    [TERM_CLIENT_HELLO_TOO_LARGE] = "client_hello_too_large",
    [TERM_DRAINED] = "drained",
    [TERM_SHUTDOWN] = "shutdown",
    [TERM_INTERNAL_ERROR] = "internal_error",
    [TERM_COMPLETE] = "complete",
    [TERM_CLIENT_ABORTED] = "client_aborted",
    [TERM_SERVER_ABORTED] = "server_aborted",
    [TERM_HEADER_TIMEOUT] = "header_timeout",
    [TERM_BODY_TIMEOUT] = "body_timeout",
    [TERM_RESPONSE_TIMEOUT] = "response_timeout",
    [TERM_BAD_REQUEST] = "bad_request",
    [TERM_BAD_RESPONSE] = "bad_response",
    [TERM_UPGRADED] = "upgraded",
    [TERM_RATE_LIMITED] = "rate_limited",
    [TERM_REDIRECT] = "redirect",
    [TERM_RESPOND] = "respond",
};

const char *term_name(enum term t)
{
    return (unsigned)t < TERM_COUNT && names[t] ? names[t] : "internal_error";
}

bool term_is_refusal(enum term t)
{
    switch (t) {
    case TERM_NO_ROUTE:
    case TERM_NO_SERVER:
    case TERM_BAD_PROXY_HEADER:
    case TERM_HELLO_TIMEOUT:
    case TERM_BAD_CLIENT_HELLO:
    case TERM_CLIENT_HELLO_TOO_LARGE:
        return true;
    default:
        return false;
    }
}
