/* Session affinity and request hashing on http backends (shared/spec/http.md, "Route
 * policy"; docs/http.md, "Affinity and hashing"). Server side of an exchange; no
 * allocation; nothing runs for a backend without affinity.cookie or consistent_hash.
 *
 * The affinity cookie's value names a server opaquely: 16 hex digits of a hash of the
 * backend name and the server's address as configured (upstream/server.h affinity_id),
 * never the address itself. It is the same across reloads, restarts and gateway
 * instances sharing a configuration, so a session survives all three. */
#ifndef SLUICE_HTTP_AFFINITY_H
#define SLUICE_HTTP_AFFINITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1_parse.h"

struct h1_conn;

/* The value of cookie `name` in the request's Cookie fields (the first one found), or
 * false. Cookie names compare exactly; a value in double quotes is returned without
 * them. */
bool http_cookie_find(const struct h1_head *h, const char *name, struct h1_str *value);

/* The balancing key of the current request for its backend: per hash_key with
 * consistent_hash (client_ip, host case-folded, path without the query, header:NAME's
 * first value, cookie:NAME's value; a request without the named header or cookie hashes
 * its client address), else the client address for affinity.client_ip, else 0. */
uint64_t http_balance_key(struct h1_conn *c);

/* First attempt of a request to a backend with affinity.cookie: when its cookie names a
 * server of the backend that is usable, or draining while healthy, and under its
 * max_connections_per_server, takes that server (up_pick_index) and returns true; else
 * false and the caller balances. Remembers the cookie's server for
 * http_affinity_set_cookie. */
bool http_affinity_pick(struct h1_conn *c);

/* The response head for the client is buf[0..n) (ending in the blank line): when the
 * backend has affinity.cookie and the server that answered is not the one the request's
 * cookie named, inserts a Set-Cookie field for it before the blank line. Returns the new
 * length, or 0 when it does not fit in cap. */
size_t http_affinity_set_cookie(struct h1_conn *c, char *buf, size_t n, size_t cap);

#endif
