/* `sluice -t --explain 'METHOD URL'`: which route of which http listener a request would
 * take, and why each route before it did not. Uses the proxy's own parser, normalisation
 * and matching (h1_parse, http_route_input, http_route_mismatch), so the answer is the
 * one traffic gets. */
#ifndef SLUICE_HTTP_EXPLAIN_H
#define SLUICE_HTTP_EXPLAIN_H

#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

/* Explains `request` ("GET http://host[:port]/path?query", method optional, default GET)
 * with the extra header lines `headers` ("Name: value") against cfg, on out. The
 * listeners considered are the http ones bound to the URL's port (80 / 443 by scheme when
 * absent), else every http listener. Returns 0, or 2 when the request cannot be read
 * (the reason on err). */
int http_explain(const struct config *cfg, const char *request, const char *const *headers,
                 size_t n_headers, FILE *out, FILE *err);

#endif
