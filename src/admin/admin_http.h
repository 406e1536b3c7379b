/* Internal interfaces of the admin server (src/admin/): request routing and responses
 * (admin_http.c), the JSON API handlers (admin_api.c), the Prometheus exposition
 * (metrics.c) and the dashboard's files (src/admin/dashboard/, embedded at build time).
 * Main thread only.
 *
 * A request is handled in two steps so that nothing is read that would be refused anyway:
 * ah_begin() looks at the head (route, method, token, body size) and either refuses the
 * request or says how many body bytes to read; ah_handle() then produces the response. */
#ifndef SLUICE_ADMIN_ADMIN_HTTP_H
#define SLUICE_ADMIN_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "http/h1_fields.h"
#include "http/h1_parse.h"

#define ADMIN_MAX_HEAD (8 * 1024)  /* request line + headers */
#define ADMIN_MAX_FIELDS 64        /* header lines */
#define ADMIN_MAX_BODY (64 * 1024) /* request body */
#define ADMIN_NAME_MAX 256         /* decoded backend name / server address in a path */

struct control;
struct runtime;

enum ah_route { AH_ASSET, AH_METRICS, AH_STATUS, AH_RELOAD, AH_SERVER, AH_HEALTHZ, AH_READYZ };

/* A file of the dashboard, embedded at build time: the Makefile runs src/admin/embed.sh
 * on the .html, .css and .js files of src/admin/dashboard/ to generate
 * $(BUILD)/gen/dashboard_assets.c, which defines the table. Served at "/" + name ("/" is
 * index.html). data[len] is a NUL byte. */
struct ah_asset {
    const char *name;
    const unsigned char *data;
    size_t len;
};
extern const struct ah_asset ah_assets[];
extern const size_t ah_n_assets;

/* What ah_begin() keeps of a request head for ah_handle() (the head buffer may move). */
struct ah_request {
    enum ah_route route;
    const struct ah_asset *asset; /* AH_ASSET: the file to send */
    bool head_only;               /* HEAD: send the headers of the GET response only */
    bool patch;                   /* AH_SERVER: PATCH (else GET/HEAD) */
    char backend[ADMIN_NAME_MAX];
    char server[ADMIN_NAME_MAX];
};

struct ah_response {
    int status;
    const char *content_type;
    const char *extra_headers; /* complete "Name: value\r\n" lines, or NULL */
    struct strbuf body;        /* owned; freed by ah_response_free */
    const char *static_body;   /* used instead of `body` when set (a dashboard file) */
    size_t static_len;
};

/* The bearer token of mutating calls: its SHA-256, compared in constant time. */
struct ah_auth {
    bool required;
    unsigned char digest[32];
};

/* Looks at a complete request head. Returns 0 when the request is accepted so far: *rq is
 * filled and *body_len says how many body bytes to read before ah_handle(). Otherwise
 * fills resp with a JSON error (400, 401, 403, 404, 405, 411, 413) and returns its status;
 * the caller sends it. */
int ah_begin(const struct h1_head *req, const struct ah_auth *auth, struct ah_request *rq,
             uint64_t *body_len, struct ah_response *resp);

/* The admin server's body framing (it reads Content-Length bodies only, and needs no Host,
 * unlike the proxy's h1_check_request): 0 with *len (0 without Content-Length), 1 when
 * Transfer-Encoding is present (refused with 411), -1 when Content-Length is malformed,
 * conflicting or sent with Transfer-Encoding. */
int ah_body_length(const struct h1_head *req, uint64_t *len);

/* Produces the response to an accepted request whose body is body[0..len). */
void ah_handle(struct control *c, const struct ah_request *rq, const char *body, size_t len,
               struct ah_response *resp);

/* Sets resp to status with body {"error":"<message>"}. */
__attribute__((format(printf, 3, 4))) void ah_error(struct ah_response *resp, int status,
                                                    const char *fmt, ...);

/* Appends the status line and headers of resp (Content-Length body_len) to out; with
 * `close` adds "Connection: close". */
void ah_write_head(struct strbuf *out, const struct ah_response *resp, size_t body_len, bool close);

void ah_response_free(struct ah_response *resp);

/* admin_routes.c: appends ,"http_routes":[...] for an http listener (status API). */
struct rt_listener;
void admin_routes_json(struct strbuf *sb, const struct rt_listener *l);

/* admin_api.c: the /api/v1 handlers. Each fills resp (status, JSON body). */
void api_status(struct control *c, struct ah_response *resp);
void api_reload(struct control *c, struct ah_response *resp);
void api_patch_server(struct control *c, const char *backend, const char *address, const char *body,
                      size_t len, struct ah_response *resp);
/* The change a PATCH of a server asks for; -1 leaves a field as it is. */
struct api_patch {
    int state;  /* enum server_admin */
    int weight; /* 0..256 */
};
/* Turns a PATCH body[0..len) into the change it asks for: a JSON object with "state"
 * ("enabled", "drain" or "disabled") and/or "weight" (an integer from 0 to 256), and
 * nothing else (members in any order; escapes decoded). Returns 0, or -1 with out set to
 * (-1, -1) and the message of the 400 answer in err (errlen > 0 bytes, always
 * terminated). */
int api_parse_patch(const char *body, size_t len, struct api_patch *out, char *err, size_t errlen);
/* Appends the JSON object describing server `s` (state, weight, health, counters). */
struct server;
void api_server_json(struct strbuf *sb, const struct server *s, uint64_t now_ms);

/* metrics.c: the Prometheus text exposition (format 0.0.4) of rt's listeners and
 * backends plus process-wide metrics. */
void metrics_render(const struct runtime *rt, struct strbuf *out);
/* Records the process start time (wall clock) for process_start_time_seconds. */
void metrics_note_start(void);

/* The dashboard file served at `path` (without the query): "/" is index.html, "/NAME"
 * the file NAME. NULL when there is none. */
const struct ah_asset *ah_find_asset(const char *path, size_t len);
/* The Content-Type of a dashboard file, by its name's extension. */
const char *ah_asset_type(const char *name);

#endif
