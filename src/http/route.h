/* Choosing what serves an HTTP request on an http listener: the listener's `hosts` filter,
 * then its routes in order (first match wins), then its default backend. Pure: reads the
 * configuration snapshot and the parsed request, allocates nothing.
 *
 * Matching rules (docs/http.md, "Routing"):
 *   - host: against the request's host without its port (Host, or the absolute-form
 *     target's authority), case-insensitive; exact, or "*.suffix" (one or more labels);
 *   - path: exact; path_prefix: segment-aware ("/api" matches "/api" and "/api/x", not
 *     "/apix"; "/api/" matches "/api/" and below); path_regex: POSIX ERE compiled at load,
 *     searched anywhere in the path unless anchored. Paths are compared normalised
 *     (http_route_input: unreserved escapes decoded, dot-segments removed); the query
 *     never takes part;
 *   - methods: one of them, exactly (methods are case-sensitive);
 *   - headers: per named field: exact value or regex (of the first field of that name),
 *     present, or absent;
 *   - query: per named parameter, the same forms, on the first parameter of that name;
 *     names and values compared percent-decoded ('+' stays '+'); "a" alone has value "". */
#ifndef SLUICE_HTTP_ROUTE_H
#define SLUICE_HTTP_ROUTE_H

#include <regex.h>
#include <stdbool.h>

#include "config/config.h"
#include "http/h1_message.h"
#include "http/h1_parse.h"

/* What a request is for, as routing sees it. */
struct http_route_in {
    struct h1_str method;
    struct h1_str host; /* without port, may be empty (HTTP/1.0 without Host) */
    struct h1_str path; /* normalised, without the query */
    const struct h1_head *head;
    struct h1_str query; /* after the '?', may be empty */
};

/* Fills in->path and in->query from h's target (after h1_check_request gave m), with the
 * path normalised in place (uri_normalize_path): the target bytes, which h points into and
 * which are forwarded, are edited, and h->target and h->path shortened, so a server sees
 * the path that was routed. method, host and head are set too. Returns 0, or -1 when the
 * path climbs above the root (answer 400). */
int http_route_input(struct h1_head *h, const struct h1_msg *m, struct http_route_in *in);

#define HTTP_ROUTE_DEFAULT (-1) /* no route matched: the listener's backend */
#define HTTP_ROUTE_NONE (-2)    /* nothing serves it (404) */

/* Returns the index of the matching route (its backend: l->routes[i].backend_index),
 * HTTP_ROUTE_DEFAULT when none matched and l has a default backend, or HTTP_ROUTE_NONE
 * (no route and no default backend, or a host outside l->hosts). */
int http_route_pick(const struct cfg_listener *l, const struct http_route_in *in);

/* Why route r does not take the request: the first failing condition's key ("host",
 * "path", "path_prefix", "path_regex", "methods", "headers", "query"), with *name set to
 * the header or parameter for the last two; NULL when every condition holds. */
const char *http_route_mismatch(const struct cfg_route *r, const struct http_route_in *in,
                                const char **name);

/* regexec on s (a path or field value, no NUL in it); offsets in m are from s.p. */
int http_regexec(const void *re, struct h1_str s, size_t nmatch, regmatch_t *m);

/* True when the listener's `hosts` (if any) admit `host`. */
bool http_listener_admits(const struct cfg_listener *l, struct h1_str host);

#endif
