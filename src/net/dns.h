/* Asynchronous DNS for servers given by name (c-ares on the main thread's loop). Each
 * name is re-resolved when its TTL expires (clamped to sane bounds); a failed lookup
 * keeps the last good addresses; answers are published with server_set_addrs(). */
#ifndef SLUICE_NET_DNS_H
#define SLUICE_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

struct runtime;
struct dns;
struct ares_addrinfo;
struct server_addrs;

/* Returns NULL with a reason in err when c-ares cannot start. Main thread only; the
 * resolver's sockets and timers live on `loop`. */
struct dns *dns_new(struct loop *loop, char *err, size_t errlen);
/* Makes the set of names resolved match rt's servers (names only; IPs need nothing) and
 * applies rt's `resolver` settings. Servers seen before keep their schedule; new names
 * are looked up on the next loop turn; names gone stop (their server reference is
 * dropped once no query for them is outstanding). */
void dns_sync(struct dns *d, struct runtime *rt);
/* Stops everything (pending queries are cancelled) and drops every server reference. */
void dns_free(struct dns *d);

/* ---- pure helpers, exposed for the config loader and the unit tests ---- */

#define DNS_DEFAULT_MIN_TTL_MS 1000u
#define DNS_DEFAULT_MAX_TTL_MS 300000u
#define DNS_DEFAULT_RETRY_MS 5000u
#define DNS_DEFAULT_TIMEOUT_MS 2000u
#define DNS_NAMESERVER_MAX 64 /* "[ffff:...:ffff]:65535" plus NUL */

/* Parses a nameserver as written in `resolver.nameservers`: "IP" (port 53) or "IP:port"
 * ("[v6]:port" for IPv6; a bare IPv6 address takes port 53). Writes the canonical form
 * c-ares takes ("1.2.3.4:53", "[::1]:53") into out (DNS_NAMESERVER_MAX bytes). Returns 0,
 * or -EINVAL with *err pointing at a static message. */
int dns_parse_nameserver(const char *text, char *out, size_t outlen, const char **err);

/* Collects the addresses of a getaddrinfo answer into `out` with `port` set: duplicates
 * dropped, sorted (IPv4 before IPv6, then by address), and when there are more than
 * SERVER_MAX_ADDRS, the first ones in that order (so a rotating answer gives a stable
 * set). *min_ttl gets the smallest TTL of the addresses and CNAMEs (0 when none). Returns
 * out->count. */
size_t dns_collect_addrs(const struct ares_addrinfo *ai, uint16_t port, struct server_addrs *out,
                         int *min_ttl);

/* True when two sets built by dns_collect_addrs hold the same addresses. NULL is the
 * empty set. */
bool dns_addrs_same(const struct server_addrs *a, const struct server_addrs *b);

/* Milliseconds until the next lookup for an answer with TTL `ttl_s` seconds, clamped to
 * [min_ms, max_ms] (max below min counts as min). */
uint64_t dns_refresh_ms(int ttl_s, uint64_t min_ms, uint64_t max_ms);

#endif
