/* Admin request routing, authorization and response heads. See admin_http.h. */
#include "admin/admin_http.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/control.h"
#include "core/loop.h"
#include "http/uri.h"
#include "upstream/server.h"

#define API_SERVERS_PREFIX "/api/v1/backends/"

static const char JSON_TYPE[] = "application/json";
static const char TEXT_TYPE[] = "text/plain; charset=utf-8";
static const char ALLOW_GET[] = "Allow: GET, HEAD\r\n";
static const char ALLOW_POST[] = "Allow: POST\r\n";
static const char ALLOW_SERVER[] = "Allow: GET, HEAD, PATCH\r\n";
static const char AUTH_CHALLENGE[] = "WWW-Authenticate: Bearer realm=\"sluice admin\"\r\n";
/* The dashboard page runs only this server's script and style files (no inline code or
 * style attributes) and talks only to this server. */
static const char PAGE_HEADERS[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";

void ah_error(struct ah_response *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = JSON_TYPE;
    sb_reset(&resp->body);
    sb_puts(&resp->body, "{");
    sb_json_kv_str(&resp->body, "error", msg);
    sb_puts(&resp->body, "}\n");
}

void ah_response_free(struct ah_response *resp)
{
    sb_free(&resp->body);
}

static const char *reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void ah_write_head(struct strbuf *out, const struct ah_response *resp, size_t body_len, bool close)
{
    sb_printf(out,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: %s\r\n"
              "Content-Length: %zu\r\n"
              "Cache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\n",
              resp->status, reason(resp->status),
              resp->content_type ? resp->content_type : JSON_TYPE, body_len);
    if (resp->extra_headers)
        sb_puts(out, resp->extra_headers);
    if (close)
        sb_puts(out, "Connection: close\r\n");
    sb_puts(out, "\r\n");
}

static bool str_is(struct h1_str s, const char *z)
{
    return s.len == strlen(z) && memcmp(s.p, z, s.len) == 0;
}

const struct ah_asset *ah_find_asset(const char *path, size_t len)
{
    if (len == 0 || path[0] != '/')
        return NULL;
    const char *name = path + 1;
    size_t nlen = len - 1;
    if (nlen == 0) {
        name = "index.html";
        nlen = strlen(name);
    }
    for (size_t i = 0; i < ah_n_assets; i++)
        if (strlen(ah_assets[i].name) == nlen && memcmp(ah_assets[i].name, name, nlen) == 0)
            return &ah_assets[i];
    return NULL;
}

const char *ah_asset_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* Splits "/api/v1/backends/{b}/servers/{a}" (path without the query) into decoded
 * parts. Returns true when the path has that shape and both parts decode. */
static bool split_server_path(const char *p, size_t len, struct ah_request *rq)
{
    size_t plen = strlen(API_SERVERS_PREFIX);
    if (len <= plen || memcmp(p, API_SERVERS_PREFIX, plen) != 0)
        return false;
    p += plen;
    len -= plen;
    const char *slash = memchr(p, '/', len);
    if (!slash || slash == p)
        return false;
    size_t blen = (size_t)(slash - p);
    const char *rest = slash + 1;
    size_t rlen = len - blen - 1;
    static const char servers[] = "servers/";
    size_t slen = sizeof(servers) - 1;
    if (rlen <= slen || memcmp(rest, servers, slen) != 0)
        return false;
    const char *addr = rest + slen;
    size_t alen = rlen - slen;
    if (memchr(addr, '/', alen))
        return false;
    return h1_percent_decode(p, blen, rq->backend, sizeof(rq->backend)) > 0 &&
           h1_percent_decode(addr, alen, rq->server, sizeof(rq->server)) > 0;
}

/* A cross-site page may make a browser POST to us; refuse mutating calls whose Origin
 * is not this server itself ("http://" + Host). */
static bool same_origin(const struct h1_head *req)
{
    const struct h1_header *origin = h1_find_header(req, "origin");
    if (!origin)
        return true;
    const struct h1_header *host = h1_find_header(req, "host");
    if (!host)
        return false;
    static const char scheme[] = "http://";
    size_t sl = sizeof(scheme) - 1;
    return origin->value.len == sl + host->value.len &&
           strncasecmp(origin->value.p, scheme, sl) == 0 &&
           strncasecmp(origin->value.p + sl, host->value.p, host->value.len) == 0;
}

/* Checks "Authorization: Bearer <token>" against auth. Returns 0 or fills resp (401). */
static int check_token(const struct h1_head *req, const struct ah_auth *auth,
                       struct ah_response *resp)
{
    if (!auth->required)
        return 0;
    const struct h1_header *h = h1_find_header(req, "authorization");
    static const char bearer[] = "bearer ";
    size_t bl = sizeof(bearer) - 1;
    if (!h || h->value.len <= bl || strncasecmp(h->value.p, bearer, bl) != 0) {
        ah_error(resp, 401,
                 "this call needs \"Authorization: Bearer <token>\" "
                 "(admin.token_file is set)");
        resp->extra_headers = AUTH_CHALLENGE;
        return 401;
    }
    const char *tok = h->value.p + bl;
    size_t tlen = h->value.len - bl;
    while (tlen && *tok == ' ') {
        tok++;
        tlen--;
    }
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!EVP_Digest(tok, tlen, digest, &dlen, EVP_sha256(), NULL) || dlen != sizeof(digest) ||
        CRYPTO_memcmp(digest, auth->digest, sizeof(digest)) != 0) {
        ah_error(resp, 401, "invalid token");
        resp->extra_headers = AUTH_CHALLENGE;
        return 401;
    }
    return 0;
}

int ah_begin(const struct h1_head *req, const struct ah_auth *auth, struct ah_request *rq,
             uint64_t *body_len, struct ah_response *resp)
{
    memset(rq, 0, sizeof(*rq));
    *body_len = 0;
    const char *path = req->path.len ? req->path.p : "/"; /* "http://host" means "/" */
    size_t plen = req->path.len ? req->path.len : 1;
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);

    const char *allow;
    bool get = str_is(req->method, "GET"), head = str_is(req->method, "HEAD");
    bool ok, mutating = false;
    if ((rq->asset = ah_find_asset(path, plen)) != NULL) {
        rq->route = AH_ASSET;
        allow = ALLOW_GET;
        ok = get || head;
    } else if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
        rq->route = AH_METRICS;
        allow = ALLOW_GET;
        ok = get || head;
    } else if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
        rq->route = AH_HEALTHZ;
        allow = ALLOW_GET;
        ok = get || head;
    } else if (plen == 7 && memcmp(path, "/readyz", 7) == 0) {
        rq->route = AH_READYZ;
        allow = ALLOW_GET;
        ok = get || head;
    } else if (plen == 14 && memcmp(path, "/api/v1/status", 14) == 0) {
        rq->route = AH_STATUS;
        allow = ALLOW_GET;
        ok = get || head;
    } else if (plen == 14 && memcmp(path, "/api/v1/reload", 14) == 0) {
        rq->route = AH_RELOAD;
        allow = ALLOW_POST;
        ok = mutating = str_is(req->method, "POST");
    } else if (split_server_path(path, plen, rq)) {
        rq->route = AH_SERVER;
        allow = ALLOW_SERVER;
        rq->patch = mutating = str_is(req->method, "PATCH");
        ok = get || head || mutating;
    } else {
        ah_error(resp, 404, "no such path: %.*s (see /api/v1/status, /metrics, /)",
                 (int)(plen > 200 ? 200 : plen), path);
        return 404;
    }
    if (!ok) {
        ah_error(resp, 405, "method %.*s not allowed here", (int)req->method.len, req->method.p);
        resp->extra_headers = allow;
        return 405;
    }
    rq->head_only = head;
    if (mutating && !same_origin(req)) {
        ah_error(resp, 403, "cross-origin request refused");
        return 403;
    }
    if (mutating && check_token(req, auth, resp))
        return 401;
    int framing = ah_body_length(req, body_len);
    if (framing < 0) {
        ah_error(resp, 400, "malformed Content-Length");
        return 400;
    }
    if (framing == 1) {
        ah_error(resp, 411, "chunked request bodies are not supported: send Content-Length");
        return 411;
    }
    if (*body_len > ADMIN_MAX_BODY) {
        ah_error(resp, 413, "request body too large (%llu bytes, at most %d)",
                 (unsigned long long)*body_len, ADMIN_MAX_BODY);
        return 413;
    }
    return 0;
}

int ah_body_length(const struct h1_head *req, uint64_t *len)
{
    bool has_cl;
    if (h1_content_length(req, &has_cl, len) != H1_OK) {
        *len = 0;
        return -1;
    }
    if (h1_find_header(req, "transfer-encoding"))
        return has_cl ? -1 : 1;
    return 0;
}

/* GET /healthz (liveness): 200 "ok" while the main loop answers and every worker's loop
 * runs; 503 naming the first worker whose loop has ended outside a shutdown. */
static void probe_healthz(struct control *c, struct ah_response *resp)
{
    resp->content_type = TEXT_TYPE;
    for (int i = 0; i < c->n_workers; i++) {
        if (!c->stopping && atomic_load(&c->workers[i].stopped)) {
            resp->status = 503;
            sb_printf(&resp->body, "worker %d stopped\n", i);
            return;
        }
    }
    resp->status = 200;
    sb_puts(&resp->body, "ok\n");
}

/* GET /readyz: 200 "ready" once started until SIGTERM; then 503 "shutting down" (503
 * "starting" before the listeners are open). */
static void probe_readyz(struct control *c, struct ah_response *resp)
{
    resp->content_type = TEXT_TYPE;
    if (control_ready()) {
        resp->status = 200;
        sb_puts(&resp->body, "ready\n");
    } else {
        resp->status = 503;
        sb_puts(&resp->body, c->signals_seen > 0 ? "shutting down\n" : "starting\n");
    }
}

/* GET on a server: its JSON object. */
static void get_server(struct control *c, const struct ah_request *rq, struct ah_response *resp)
{
    if (!runtime_find_backend(c->rt, rq->backend)) {
        ah_error(resp, 404, "no backend called \"%s\"", rq->backend);
        return;
    }
    struct server *s = runtime_find_server(c->rt, rq->backend, rq->server);
    if (!s) {
        ah_error(resp, 404, "backend \"%s\" has no server \"%s\"", rq->backend, rq->server);
        return;
    }
    resp->status = 200;
    resp->content_type = JSON_TYPE;
    api_server_json(&resp->body, s, loop_now(&c->loop));
    sb_puts(&resp->body, "\n");
}

void ah_handle(struct control *c, const struct ah_request *rq, const char *body, size_t len,
               struct ah_response *resp)
{
    resp->status = 200;
    resp->content_type = JSON_TYPE;
    switch (rq->route) {
    case AH_ASSET:
        resp->content_type = ah_asset_type(rq->asset->name);
        if (strncmp(resp->content_type, "text/html", 9) == 0)
            resp->extra_headers = PAGE_HEADERS;
        resp->static_body = (const char *)rq->asset->data;
        resp->static_len = rq->asset->len;
        break;
    case AH_METRICS:
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        metrics_render(c->rt, &resp->body);
        break;
    case AH_STATUS:
        api_status(c, resp);
        break;
    case AH_HEALTHZ:
        probe_healthz(c, resp);
        break;
    case AH_READYZ:
        probe_readyz(c, resp);
        break;
    case AH_RELOAD:
        api_reload(c, resp);
        break;
    case AH_SERVER:
        if (!rq->patch)
            get_server(c, rq, resp);
        else
            api_patch_server(c, rq->backend, rq->server, body, len, resp);
        break;
    }
    if (resp->body.failed)
        ah_error(resp, 500, "out of memory");
}
