/* The URI pieces an HTTP/1 server looks at (RFC 3986, RFC 9110 section 4): the authority
 * of a Host field or of an absolute-form or authority-form request-target, the characters
 * of an origin-form path and query, and percent-decoding. Pure functions over
 * (pointer, length); no allocation, no locale.
 *
 * Strictness (sluice routes on these, so anything two implementations could read
 * differently is refused):
 *   - a host is an IP-literal ("[" IPv6 "]", no zone, no IPvFuture) or a DNS-style name of
 *     ALPHA / DIGIT / "-" / "." / "_" / "~" (so no sub-delims, no %-escapes, no userinfo);
 *     it is never empty;
 *   - a port is 1 to 5 digits with a value up to 65535; "host:" (empty port) is refused;
 *   - a path and query hold visible ASCII except '#' (the fragment never travels). Visible
 *     characters RFC 3986 wants escaped (" < > \ ^ ` { | }) are accepted, as browsers and
 *     tools send some of them raw, and so is a '%' not followed by two hex digits: none of
 *     them changes how a message is framed, they travel verbatim, and whoever decodes the
 *     path (a route, the admin API) refuses what it cannot decode. */
#ifndef SLUICE_HTTP_URI_H
#define SLUICE_HTTP_URI_H

#include <stdbool.h>
#include <stddef.h>

struct uri_authority {
    const char *host; /* into the input; IPv6 literals keep their brackets */
    size_t host_len;
    int port; /* 0..65535, or -1 when absent */
};

/* Parses host[:port] in p[0..len). With port_required, a missing port is an error
 * (authority-form of CONNECT). Returns 0, or -1 when p is not a valid authority. */
int uri_parse_authority(const char *p, size_t len, bool port_required, struct uri_authority *a);

/* True when two authorities name the same host (case-insensitive) and port; an absent port
 * stands for default_port. */
bool uri_same_authority(const struct uri_authority *a, const struct uri_authority *b,
                        int default_port);

/* True when p[0..len) is a valid path-and-query (see the strictness rules above). */
bool uri_valid_path(const char *p, size_t len);

/* Percent-decodes src[0..len) into out (capacity outlen, NUL-terminated). "%2F" and the
 * like are decoded; '+' is left alone (it is not a space in a path). Returns the decoded
 * length, or -1 on a malformed escape, a decoded NUL byte or when out is too small. */
int h1_percent_decode(const char *src, size_t len, char *out, size_t outlen);

/* Normalises the path p[0..len) in place for routing (RFC 3986 section 6.2.2):
 *   - escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded ("%7Eu" -> "~u",
 *     "%2e" -> "."); every other escape stays as sent ("%2F" is not a separator), and so
 *     does a '%' that does not start a valid escape;
 *   - "." and ".." segments are removed (section 5.2.4); a final "." or ".." leaves the
 *     trailing '/' ("/a/." -> "/a/", "/a/b/.." -> "/a/");
 *   - empty segments ("//") are kept.
 * A path that does not start with '/' is left alone. Returns the new length (<= len), or
 * -1 when a ".." would climb above the root ("/..", "/a/../.."): the request is refused.
 * Costs one scan when there is nothing to do (no '%', no "/."). */
long uri_normalize_path(char *p, size_t len);

#endif
