/* The front stage every protocol shares: what comes before the protocol's own bytes on
 * an accepted connection. Today, the PROXY protocol header (v1 or v2) that a load
 * balancer in front sends when the listener has `proxy_protocol: accept`. */
#ifndef SLUICE_PROXY_FRONT_H
#define SLUICE_PROXY_FRONT_H

#include <stdbool.h>

#include "net/addr.h"
#include "proxy/term.h"

enum front_result {
    FRONT_DONE, /* the header was consumed; what follows stays in the socket */
    FRONT_MORE, /* incomplete: wait for the next readiness event (fd had nothing more) */
    FRONT_FAIL, /* close the connection with *why and *error */
};

/* Reads the PROXY header at the start of socket fd: peeks, and once it is complete
 * consumes exactly its bytes. A header for a proxied connection replaces *client and
 * *local (and sets *have_local); a LOCAL header (a health check of the balancer in front)
 * leaves them. Never blocks. */
enum front_result front_proxy_header(int fd, union sockaddr_any *client, union sockaddr_any *local,
                                     bool *have_local, enum term *why, const char **error);

#endif
