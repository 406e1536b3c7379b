#include "net/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

int listen_open(const struct net_addr *a, char *err, size_t errlen)
{
    char text[ADDR_TEXT_MAX];
    addr_format((const struct sockaddr *)&a->ss, text, sizeof(text));
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    /* TCP_NODELAY here is inherited by every accepted socket: no call per connection */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto fail;
    if (a->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        goto fail;
    if (listen(fd, LISTEN_BACKLOG) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s: %s", text, strerror(e));
    if (fd >= 0)
        close(fd);
    return -e;
}

void tcp_quickack(int fd, bool on)
{
    int quickack = on ? 1 : 0;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &quickack, sizeof(quickack));
}
