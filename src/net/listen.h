/* Listening sockets. */
#ifndef SLUICE_NET_LISTEN_H
#define SLUICE_NET_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "net/addr.h"

/* Opens a non-blocking TCP listening socket on `a` with SO_REUSEADDR and SO_REUSEPORT
 * (one socket per worker shares the port), IPV6_V6ONLY for IPv6, and TCP_NODELAY, which
 * accepted sockets inherit. Returns the fd, or -errno with a reason in err
 * ("127.0.0.1:80: Address already in use"). */
int listen_open(const struct net_addr *a, char *err, size_t errlen);

/* TCP_QUICKACK on socket fd. Off on a listening socket, inherited by the sockets it
 * accepts: they start with delayed ACKs, so that for protocols where the server always
 * answers the client's first bytes (a TLS ClientHello) the ACK rides on that answer. On
 * an established socket, `on` also sends at once an ACK the kernel was holding back.
 * Harmless if it fails (only a packet more, or one later). */
void tcp_quickack(int fd, bool on);

#endif
