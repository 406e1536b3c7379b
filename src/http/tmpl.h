/* Rendering compiled templates (cfg_template, src/config/template.c) for one request:
 * the context holds the request's values, already in text form; the renderer copies
 * literal pieces and looks each variable up. Pure: writes into the caller's buffer. */
#ifndef SLUICE_HTTP_TMPL_H
#define SLUICE_HTTP_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

#include "config/config.h"
#include "http/h1_parse.h"

struct tmpl_ctx {
    /* client_ip / client_port: given, or (p == NULL) formatted from `client` on first use */
    struct h1_str client_ip, client_port, host, method, path, query, request_uri, scheme;
    struct h1_str request_id, listener, sni, tls_version;
    struct h1_str cert_subject, cert_fingerprint, cert_verify; /* empty on http listeners */
    struct h1_str status, server;                              /* response actions */
    const struct h1_head *req;                                 /* {header.NAME} and {cookie.NAME} */
    const struct sockaddr *client;
    char cbuf[72]; /* the formatted client address and port */
};

#define TMPL_TOO_LONG ((size_t)-1)

/* Renders t into out[0..cap): returns the length, or TMPL_TOO_LONG when it does not fit.
 * *unsafe (when not NULL) is set when the result holds CR, LF or NUL (a header value that
 * must be dropped). A missing header or cookie renders empty. */
size_t tmpl_render(const struct cfg_template *t, struct tmpl_ctx *x, char *out, size_t cap,
                   bool *unsafe);

/* Writes v (0..65535) in decimal at out (at least 6 bytes); returns the length. */
size_t tmpl_utoa(unsigned v, char *out);

/* The value of cookie `name` in the request's Cookie fields, or false. */
bool tmpl_cookie(const struct h1_head *h, const char *name, struct h1_str *out);

#endif
