/* Choosing a backend for a Layer 4 connection: the listener's routes (by SNI / ALPN,
 * exact names before wildcards) or its default backend. */
#ifndef SLUICE_L4_ROUTE_H
#define SLUICE_L4_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct l4_conn;

/* Index of the backend for a connection with `sni` / `alpn` (either may be NULL), or -1
 * when no route matches and the listener has no default backend. Exact SNI routes win
 * over wildcard ones, which win over routes without an SNI condition. */
int l4_route_pick(const struct cfg_listener *l, const char *sni, const char *const *alpn,
                  size_t n_alpn);

/* Routes c and starts connecting; closes c with no_route when nothing matches. */
void l4_route_and_connect(struct l4_conn *c, const char *sni, const char *const *alpn,
                          size_t n_alpn);

/* HELLO state: peeks the ClientHello without consuming it, then routes. */
void l4_route_peek_hello(struct l4_conn *c);

#endif
