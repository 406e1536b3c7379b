#include "net/accept.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "core/log.h"

/* Errors of one pending connection that accept4() reports in its place (accept(2),
 * "Error handling"): the next connection may be fine. */
static bool per_connection_error(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* refused by a firewall rule */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

static void episode_over(struct accept_episode *ep, const char *kind, const char *name)
{
    ep->starved = false;
    log_info("%s%s%s: accepting connections again (backlog caught up)", kind, name ? " " : "",
             name ? name : "");
}

void accept_batch_done(int lfd, struct accept_episode *ep, const char *kind, const char *name)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (ep->starved && poll(&p, 1, 0) == 0)
        episode_over(ep, kind, name);
}

enum accept_status accept_next(int lfd, struct sockaddr *peer, socklen_t *len, int *fd,
                               struct accept_episode *ep, const char *kind, const char *name)
{
    *fd = accept4(lfd, peer, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (*fd >= 0)
        return ACCEPT_OK;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (ep->starved)
            episode_over(ep, kind, name);
        return ACCEPT_EMPTY;
    }
    if (per_connection_error(errno))
        return ACCEPT_SKIP;
    if (!ep->starved) {
        ep->starved = true;
        log_warn("%s%s%s: cannot accept: %s; paused, retrying every %d ms", kind, name ? " " : "",
                 name ? name : "", strerror(errno), ACCEPT_RETRY_MS);
    }
    return ACCEPT_PAUSE;
}
