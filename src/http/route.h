/* Choosing what serves an HTTP request on an http listener: the listener's `hosts` filter,
 * then its routes in order (first match wins), then its default backend. Pure: reads the
 * configuration snapshot and the parsed request, allocates nothing.
 *
 * Matching rules (docs/http.md, "Routing"):
 *   - host: against the request's host without its port (Host, or the absolute-form
 *     target's authority), case-insensitive; exact, or "*.suffix" (one or more labels);
 *   - path: exact; path_prefix: segment-aware ("/api" matches "/api" and "/api/x", not
 *     "/apix"; "/api/" matches "/api/" and below); path_regex: POSIX ERE compiled at load,
 *     searched anywhere in the path unless anchored. Paths are compared percent-decoded
 *     (a path whose escapes do not decode is matched as sent); the query never takes part;
 *   - methods: one of them, exactly (methods are case-sensitive);
 *   - headers: each named field present with exactly that value (the first such line). */
#ifndef SLUICE_HTTP_ROUTE_H
#define SLUICE_HTTP_ROUTE_H

#include <stdbool.h>

#include "config/config.h"
#include "http/h1_parse.h"

/* What a request is for, as routing sees it. */
struct http_route_in {
    struct h1_str method;
    struct h1_str host; /* without port, may be empty (HTTP/1.0 without Host) */
    struct h1_str path; /* without the query */
    const struct h1_head *head;
};

#define HTTP_ROUTE_DEFAULT (-1) /* no route matched: the listener's backend */
#define HTTP_ROUTE_NONE (-2)    /* nothing serves it (404) */

/* Returns the index of the matching route (its backend: l->routes[i].backend_index),
 * HTTP_ROUTE_DEFAULT when none matched and l has a default backend, or HTTP_ROUTE_NONE
 * (no route and no default backend, or a host outside l->hosts). */
int http_route_pick(const struct cfg_listener *l, const struct http_route_in *in);

/* True when `name` (len bytes) matches `pattern`: exact (case-insensitive) or "*.suffix". */
bool http_host_matches(const char *pattern, const char *name, size_t len);

#endif
