/* The heads sluice forwards: a client's request head re-serialised for a server, and a
 * server's response head re-serialised for the client. Pure: writes into the caller's
 * buffer, allocates nothing.
 *
 * Both drop the hop-by-hop fields (RFC 9110 section 7.6.1): Connection and every field it
 * names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding and Upgrade, then add back
 * what this hop needs: "Transfer-Encoding: chunked" for a chunked body (forwarded
 * verbatim), "Upgrade: websocket" with "Connection: upgrade" for a WebSocket handshake,
 * "Connection: keep-alive" / "close" where the version needs it said.
 *
 * Request heads: origin-form target (an absolute-form target becomes its path), the
 * request's HTTP version kept (a 1.0 client's request stays 1.0, so that no server
 * answers it chunked), Host first (the backend's http.host, else the client's), and the
 * X-Forwarded-For/-Proto/-Host or Forwarded fields per the listener's `forwarded` and
 * `trust_forwarded` (untrusted incoming ones are dropped and replaced), plus the request
 * id field when sluice made the id. */
#ifndef SLUICE_HTTP_HEAD_H
#define SLUICE_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"
#include "http/tmpl.h"

struct head_req_opts {
    const struct cfg_listener_http *lh;
    const char *backend_host; /* backend http.host, or NULL */
    const char *client_ip;    /* text form, IPv6 without brackets */
    bool client_v6;
    bool https;             /* the client came over TLS: X-Forwarded-Proto / proto= */
    const char *request_id; /* the id to add (sluice made it), or NULL */
    size_t request_id_len;
    /* route policy (all optional): */
    struct h1_str path;               /* rewritten path (p != NULL): the target is path?query */
    struct h1_str query;              /* with path: the query (without '?'), may be empty */
    const char *host;                 /* rewrite.host: the Host sent (over backend_host) */
    const struct cfg_header_ops *ops; /* request_headers */
    struct tmpl_ctx *tx;              /* their variables */
};

/* Writes the request head for a server into out[0..cap). Returns its length, or 0 when it
 * does not fit. */
size_t head_write_request(const struct h1_head *h, const struct h1_msg *m,
                          const struct head_req_opts *o, char *out, size_t cap);

struct head_resp_opts {
    bool close;        /* the client connection closes after this response */
    bool client_10_ka; /* HTTP/1.0 client kept alive: say "Connection: keep-alive" */
    bool upgrade;      /* a 101 switching to websocket: keep Upgrade, say "Connection: upgrade" */
    bool keep_te;      /* chunked body forwarded verbatim: keep "Transfer-Encoding: chunked" */
    const struct cfg_header_ops *ops; /* response_headers, or NULL */
    struct tmpl_ctx *tx;              /* their variables */
};

/* Writes the fields of ops (set, then add) rendered with tx as "Name: value\r\n" lines into
 * out[0..cap); a value holding CR, LF or NUL after substitution is dropped. Returns the
 * length written; sets *over when they did not all fit. */
size_t head_write_ops(const struct cfg_header_ops *ops, struct tmpl_ctx *tx, char *out, size_t cap,
                      bool *over);

/* True when ops removes or sets the field called `name` (so the incoming one is dropped). */
bool head_ops_drop(const struct cfg_header_ops *ops, struct h1_str name);

/* Writes the response head for the client into out[0..cap). Returns its length, or 0. */
size_t head_write_response(const struct h1_head *h, const struct head_resp_opts *o, char *out,
                           size_t cap);

/* True for the hop-by-hop fields a proxy never forwards as such (see above); `h` gives the
 * Connection field's list. */
bool head_is_hop_by_hop(const struct h1_head *h, struct h1_str name);

#endif
