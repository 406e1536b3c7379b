/* The validated, immutable configuration snapshot built from sluice.yaml.
 *
 * config_load() parses the file with libyaml, checks every key against the contract in
 * shared/spec/configuration.md and returns either a complete snapshot or the list of
 * every error found, each as "FILE:LINE:COL: key.path: message". A snapshot is never
 * modified after loading; it is shared by worker threads through a reference count. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

enum cfg_protocol { PROTO_TCP, PROTO_TLS, PROTO_HTTP, PROTO_HTTPS };
/* http or https: served by the HTTP engine */
static inline bool cfg_proto_is_http(enum cfg_protocol p)
{
    return p == PROTO_HTTP || p == PROTO_HTTPS;
}
enum cfg_balance { BAL_ROUND_ROBIN, BAL_LEAST_CONNECTIONS, BAL_RANDOM_TWO, BAL_CONSISTENT_HASH };
enum cfg_hash_key { HASH_CLIENT_IP, HASH_HOST, HASH_PATH, HASH_HEADER, HASH_COOKIE };
enum cfg_proxy_protocol { PP_NONE, PP_V1, PP_V2, PP_ACCEPT };
enum cfg_client_auth { CLIENT_AUTH_NONE, CLIENT_AUTH_OPTIONAL, CLIENT_AUTH_REQUIRED };
enum cfg_log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };
enum cfg_log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* A list of strings (hosts, alpn, methods, ...). */
struct cfg_strings {
    char **items;
    size_t count;
};

/* A name/value map kept in file order (header sets, match.headers). */
struct cfg_pair {
    char *name;
    char *value;
};
struct cfg_pairs {
    struct cfg_pair *items;
    size_t count;
};

struct cfg_server {
    char *address;        /* as written, e.g. "db.internal:5432"; the server's identity */
    struct net_addr addr; /* parsed; addr.is_name when it needs DNS */
    int weight;           /* 1-256, default 1 */
    bool backup;
    int line; /* where it was defined, for messages */
};

struct cfg_health {
    bool enabled;                           /* a `health` block was given */
    enum cfg_protocol type;                 /* default: the backend's protocol */
    uint64_t interval_ms;                   /* default 5s */
    uint64_t timeout_ms;                    /* default 2s */
    int healthy_threshold;                  /* default 2 */
    int unhealthy_threshold;                /* default 3 */
    char *path;                             /* http(s), default "/" */
    char *host;                             /* http(s) Host / SNI, optional */
    int expect_status_lo, expect_status_hi; /* default 200-399 */
    char *expect_body;                      /* optional substring */
    char *send; /* tcp: bytes to send (escapes already decoded by YAML) */
    size_t send_len;
    char *expect; /* tcp: substring the reply must contain */
};

struct cfg_backend_tls {
    bool verify; /* default true */
    char *ca;    /* absolute path, or NULL for the system store */
    char *sni;   /* NULL: the server's DNS name if it has one */
    char *cert;  /* client certificate (absolute path) or NULL */
    char *key;
};

/* The backend `http` block (http backends). */
struct cfg_backend_http {
    int version;                     /* 1 (HTTP/1.1, default) or 2 (HTTP/2 to servers) */
    char *host;                      /* Host sent to servers; NULL = the client's */
    uint64_t response_timeout_ms;    /* default: the backend's timeout */
    int max_requests_per_connection; /* 0 = unlimited */
};

struct cfg_backend {
    char *name;
    enum cfg_protocol protocol; /* default tcp */
    struct cfg_server *servers;
    size_t n_servers;
    enum cfg_balance balance;               /* default round_robin */
    enum cfg_hash_key hash_key;             /* default client_ip */
    char *hash_key_name;                    /* header:NAME / cookie:NAME */
    uint64_t connect_timeout_ms;            /* default 5s */
    uint64_t timeout_ms;                    /* default 60s */
    int retries;                            /* default 2, 0-16 */
    uint64_t drain_timeout_ms;              /* default 30s */
    int max_connections_per_server;         /* default 0 = unlimited */
    enum cfg_proxy_protocol proxy_protocol; /* PP_NONE, PP_V1 or PP_V2 */
    bool has_tls;                           /* a `tls` block was given */
    struct cfg_backend_tls tls;
    struct cfg_health health;
    bool affinity_client_ip;            /* affinity.client_ip */
    char *affinity_cookie;              /* affinity.cookie or NULL */
    uint64_t affinity_ttl_ms;           /* affinity.ttl: cookie Max-Age; 0 = session cookie */
    const char *affinity_same_site;     /* affinity.same_site: Lax (default), Strict, None */
    int keepalive_max_idle;             /* default 64 */
    uint64_t keepalive_idle_timeout_ms; /* default 60s */
    struct cfg_backend_http http;       /* http/https backends */
    int line;
};

struct cfg_certificate {
    char *cert; /* absolute paths */
    char *key;
};

struct cfg_listener_tls {
    struct cfg_certificate *certificates;
    size_t n_certificates;
    int min_version;         /* 0x0303 (TLS 1.2, default) or 0x0304 */
    char *ciphers;           /* NULL: Mozilla intermediate */
    char *ciphersuites;      /* NULL: OpenSSL default TLS 1.3 suites */
    struct cfg_strings alpn; /* https default [h2, http/1.1]; tls default none */
    bool session_tickets;    /* default true */
    enum cfg_client_auth client_auth;
    char *client_ca;               /* required unless mode none */
    char *client_crl;              /* optional */
    uint64_t handshake_timeout_ms; /* extension: default 10s */
};

/* A value with variables (shared/spec/http.md "Variables"), compiled once at load into
 * literal pieces and variable references (src/config/template.c); rendered per request
 * by src/http/tmpl.c. */
enum cfg_tvar {
    TV_LITERAL, /* text */
    TV_CLIENT_IP,
    TV_CLIENT_PORT,
    TV_HOST,
    TV_METHOD,
    TV_PATH,
    TV_QUERY,
    TV_REQUEST_URI,
    TV_SCHEME,
    TV_REQUEST_ID,
    TV_LISTENER,
    TV_SNI,
    TV_TLS_VERSION,
    TV_CLIENT_CERT_SUBJECT,
    TV_CLIENT_CERT_FINGERPRINT,
    TV_CLIENT_CERT_VERIFY,
    TV_HEADER, /* text: the field name */
    TV_COOKIE, /* text: the cookie name */
    TV_STATUS, /* response actions only */
    TV_SERVER, /* response actions only */
};
struct cfg_tpiece {
    enum cfg_tvar var;
    char *text; /* TV_LITERAL: the text; TV_HEADER / TV_COOKIE: the name; else NULL */
    size_t len;
};
struct cfg_template {
    struct cfg_tpiece *pieces;
    size_t n;
};

struct cfg_rewrite {
    char *strip_prefix;
    char *replace_from, *replace_to;
    char *regex, *replace; /* regex: POSIX ERE on the path; replace with \1..\9 */
    void *re;              /* regex_t compiled from regex (REG_EXTENDED) */
    char *host;            /* the Host header sent to the server */
    bool path;             /* one of strip_prefix, replace_prefix, regex is set */
};
struct cfg_header_ops {
    struct cfg_pairs set, add;
    struct cfg_strings remove;
    struct cfg_template *set_t, *add_t; /* set.items[i].value compiled: set_t[i] */
    bool any;                           /* one of set, add, remove is not empty */
};
struct cfg_redirect {
    char *to;
    struct cfg_template to_t;
    int status; /* default 302 */
    bool keep_path, keep_query;
};
struct cfg_respond {
    int status; /* default 200 */
    char *body;
    char *content_type;
    struct cfg_template body_t;
};

enum cfg_route_action { ROUTE_BACKEND, ROUTE_REDIRECT, ROUTE_RESPOND };

/* One `headers` / `query` condition of a route match (docs/configuration.md): NAME: "v"
 * (exact), NAME: {regex: RE} (POSIX ERE, searched), NAME: {present: true|false}. */
enum cfg_kv_kind { KV_EXACT, KV_REGEX, KV_PRESENT, KV_ABSENT };
struct cfg_kv_match {
    char *name;
    enum cfg_kv_kind kind;
    char *value; /* KV_EXACT: the value; KV_REGEX: the expression */
    void *re;    /* KV_REGEX: regex_t (REG_EXTENDED | REG_NOSUB) */
};
struct cfg_kv_matches {
    struct cfg_kv_match *items;
    size_t count;
};

/* An `error_pages` entry: the body sluice sends for a status it generates. */
#define CFG_ERROR_PAGE_MAX (16 * 1024) /* bytes; a page is sent from the exchange buffer */
struct cfg_error_page {
    int status; /* 400-599, or 0 for "default" */
    char *body; /* the file's content, read at load */
    size_t len;
    const char *content_type; /* static, from the file name's extension */
};

/* The listener `http` block (http listeners). */
enum cfg_forwarded { FWD_X_FORWARDED, FWD_FORWARDED, FWD_NONE };
struct cfg_listener_http {
    size_t max_header_size;          /* default 32k: request line + fields */
    int max_headers;                 /* default 100 */
    uint64_t max_body_size;          /* default 0 = unlimited */
    uint64_t header_timeout_ms;      /* default 10s */
    uint64_t body_timeout_ms;        /* default 60s */
    int keepalive_requests;          /* default 1000 */
    enum cfg_forwarded forwarded;    /* default x_forwarded */
    bool trust_forwarded;            /* default false */
    char *request_id;                /* default "X-Request-Id"; NULL when "" (off) */
    uint64_t tunnel_idle_timeout_ms; /* default 1h */
    bool sni_host_check;             /* https: default true (421 on a mismatch) */
    bool h2c;                        /* http: HTTP/2 with prior knowledge; default false */
    int h2_max_streams;              /* http2.max_concurrent_streams, default 100 */
    uint32_t h2_window;              /* http2.initial_window_size, default 64k */
    uint32_t h2_max_header_list;     /* http2.max_header_list_size, default 32k */
    struct cfg_error_page *error_pages;
    size_t n_error_pages;
};

/* A route's `rate_limit` (http listeners). */
enum cfg_rl_key { RL_KEY_CLIENT_IP, RL_KEY_HEADER, RL_KEY_ROUTE };
struct cfg_rate_limit {
    bool set;            /* the route has one */
    int requests;        /* per `per_ms`, on average */
    uint64_t per_ms;     /* 1ms-24h */
    int burst;           /* at once; default `requests` */
    enum cfg_rl_key key; /* default client_ip */
    char *header;        /* RL_KEY_HEADER: the field name */
    int max_keys;        /* key table slots; default 16384 */
};

struct ratelimit;

struct cfg_route {
    /* match: every given (non-NULL / non-empty) condition must hold */
    char *sni; /* exact or "*.suffix" */
    char *alpn;
    char *host;
    char *path_prefix, *path, *path_regex;
    size_t path_prefix_len, path_len; /* strlen of the two, set at load */
    void *path_re; /* regex_t compiled from path_regex at load (REG_EXTENDED | REG_NOSUB) */
    struct cfg_strings methods;
    struct cfg_kv_matches headers; /* request header fields */
    struct cfg_kv_matches query;   /* query parameters */
    enum cfg_route_action action;
    char *backend;     /* ROUTE_BACKEND */
    int backend_index; /* index into config.backends */
    struct cfg_rewrite rewrite;
    struct cfg_header_ops request_headers, response_headers;
    struct cfg_redirect redirect;
    struct cfg_respond respond;
    struct cfg_rate_limit rate_limit;
    struct ratelimit *limiter; /* set by the runtime snapshot (http/ratelimit.h), or NULL */
    uint64_t timeout_ms;       /* 0: the backend's http.response_timeout */
    int line;
};

struct cfg_listener {
    char *name;
    struct net_addr *binds; /* one or more; never names */
    size_t n_binds;
    enum cfg_protocol protocol;
    uint64_t idle_timeout_ms;           /* default 4m */
    int max_connections;                /* 0 = only the global cap */
    bool proxy_protocol_accept;         /* proxy_protocol: accept */
    uint64_t proxy_protocol_timeout_ms; /* extension: default 5s */
    bool has_tls;
    struct cfg_listener_tls tls;
    struct cfg_strings hosts;
    char *backend;     /* default backend, may be NULL when routes cover all */
    int backend_index; /* -1 when none */
    struct cfg_route *routes;
    size_t n_routes;
    /* tcp passthrough extensions */
    uint64_t client_hello_timeout_ms; /* default 5s */
    size_t client_hello_max;          /* default 16k */
    struct cfg_listener_http http;    /* http listeners */
    int line;
};

struct cfg_log {
    char *access; /* "stdout" | "stderr" | "off" | absolute path */
    enum cfg_log_format format;
    enum cfg_log_level level;
};

struct cfg_admin {
    bool enabled;         /* an `admin` block was given */
    struct net_addr bind; /* default 127.0.0.1:9900 */
    char *token_file;     /* absolute path or NULL */
};

/* Extension: how server names are resolved (c-ares). */
struct cfg_resolver {
    struct cfg_strings nameservers; /* "IP:port" or "IP"; empty: /etc/resolv.conf */
    uint64_t min_ttl_ms;            /* default 1s: re-resolve no more often than this */
    uint64_t max_ttl_ms;            /* default 5m: re-resolve at least this often */
    uint64_t retry_ms;              /* default 5s: after a failed lookup */
    uint64_t timeout_ms;            /* default 2s: per query */
};

struct config {
    atomic_int refs;
    char *path;                   /* the file it was loaded from */
    int workers;                  /* resolved: "auto" -> online CPUs */
    int max_connections;          /* default 20000 */
    uint64_t shutdown_timeout_ms; /* default 30s */
    uint64_t shutdown_delay_ms;   /* default 0: on SIGTERM, keep accepting this long */
    struct cfg_log log;
    struct cfg_admin admin;
    struct cfg_resolver resolver;
    struct cfg_listener *listeners;
    size_t n_listeners;
    struct cfg_backend *backends;
    size_t n_backends;
};

/* At most this many error messages are listed (the first ones by position). */
#define CFG_ERRORS_MAX 100

/* The errors found while loading, in file order: the first CFG_ERRORS_MAX of them, then,
 * when there were more, one last item "... and N more errors". */
struct cfg_errors {
    char **items; /* "FILE:LINE:COL: path: message" */
    size_t count; /* items, the "... and N more errors" line included */
    size_t total; /* errors found, listed or not (0 when count is 0) */
};

/* Loads and validates `path`. On success returns a snapshot with refs == 1 and leaves
 * `errs` empty; on failure returns NULL and fills `errs` (caller frees with
 * cfg_errors_free). Certificate files are not opened here (that is the TLS layer's job);
 * only their paths are resolved against the config file's directory. */
struct config *config_load(const char *path, struct cfg_errors *errs);

/* Same, from a buffer; `name` is used in messages and to resolve relative paths. */
struct config *config_load_buffer(const char *name, const char *text, size_t len,
                                  struct cfg_errors *errs);

struct config *config_ref(struct config *cfg);
/* Drops a reference; the last one frees the snapshot. NULL is ignored. */
void config_unref(struct config *cfg);

void cfg_errors_free(struct cfg_errors *errs);

/* Index of the backend called `name`, or -1. */
int config_backend_index(const struct config *cfg, const char *name);

/* Unit parsers shared with other modules. Each returns 0 or -EINVAL with *err set. */
int parse_duration_ms(const char *text, uint64_t *out, const char **err); /* "1h30m", "250ms" */
int parse_size(const char *text, uint64_t *out, const char **err);        /* "512", "16k", "1m" */

const char *cfg_protocol_name(enum cfg_protocol p);
/* Template compiler flags. */
#define TMPL_RESPONSE 1u  /* {status} and {server} allowed (response actions) */
#define TMPL_MULTILINE 2u /* CR and LF allowed in the text (bodies) */
/* Compiles `src` into *out: "{name}" is a variable, "{header.NAME}" / "{cookie.NAME}"
 * name a request header / cookie, "{{" is a literal '{' (a lone '}' is literal). Returns 0,
 * or -1 with err (errlen bytes) saying why: an unknown variable, an unclosed '{', a NUL,
 * CR or LF (unless TMPL_MULTILINE), {status}/{server} without TMPL_RESPONSE; -2 when out of
 * memory. Free with cfg_template_free. */
int cfg_template_compile(const char *src, unsigned flags, struct cfg_template *out, char *err,
                         size_t errlen);
void cfg_template_free(struct cfg_template *t);

#endif
