/* Host name patterns, one reading for every place that matches a name: route `sni` and
 * `host` conditions and listener `hosts` lists, on L4 (SNI) and HTTP (Host) listeners
 * alike. A pattern is an exact name, or "*.suffix", which admits any name that ends in
 * ".suffix" with at least one character before it (any depth, as nginx's server_name
 * does; certificate wildcards, one label only, are tls/tls_sni.c's business). DNS names
 * compare case-insensitively. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True when name[0, len) matches pattern (NUL-terminated). */
bool host_pattern_matches(const char *pattern, const char *name, size_t len);

/* True when name[0, len) matches one of the n patterns. */
bool host_patterns_match(char *const *patterns, size_t n, const char *name, size_t len);
