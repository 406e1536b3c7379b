/* Listening sockets. */
#ifndef SLUICE_NET_LISTEN_H
#define SLUICE_NET_LISTEN_H

#include <stddef.h>

#include "net/addr.h"

/* Opens a non-blocking TCP listening socket on `a` with SO_REUSEADDR and SO_REUSEPORT
 * (one socket per worker shares the port), IPV6_V6ONLY for IPv6. Returns the fd, or
 * -errno with a reason in err ("127.0.0.1:80: Address already in use"). */
int listen_open(const struct net_addr *a, char *err, size_t errlen);

#endif
