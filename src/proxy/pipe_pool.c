#include "proxy/pipe_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define PIPE_SIZE (64 * 1024)

void pipe_pool_init(struct pipe_pool *p)
{
    p->n_free = 0;
    p->in_use = 0;
    p->capacity = PIPE_SIZE;
}

int pipe_pool_get(struct pipe_pool *p, struct pipe_pair *out)
{
    if (p->n_free > 0) {
        *out = p->free[--p->n_free];
        p->in_use++;
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    int size = fcntl(fds[1], F_GETPIPE_SZ);
    if (size > 0 && (size_t)size < p->capacity)
        p->capacity = (size_t)size;
    out->rfd = fds[0];
    out->wfd = fds[1];
    p->in_use++;
    return 0;
}

void pipe_pool_put(struct pipe_pool *p, struct pipe_pair pp)
{
    p->in_use--;
    if (p->n_free < PIPE_POOL_KEEP) {
        p->free[p->n_free++] = pp;
        return;
    }
    close(pp.rfd);
    close(pp.wfd);
}

void pipe_pool_discard(struct pipe_pool *p, struct pipe_pair pp)
{
    p->in_use--;
    close(pp.rfd);
    close(pp.wfd);
}

void pipe_pool_close(struct pipe_pool *p)
{
    while (p->n_free > 0) {
        struct pipe_pair pp = p->free[--p->n_free];
        close(pp.rfd);
        close(pp.wfd);
    }
}
