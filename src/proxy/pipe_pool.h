/* Per-worker pool of kernel pipes used as splice() buffers. A connection takes a pipe
 * only while bytes are in flight and gives it back once it is empty, so idle connections
 * hold no pipe. Worker thread only. */
#ifndef SLUICE_PROXY_PIPE_POOL_H
#define SLUICE_PROXY_PIPE_POOL_H

#include <stddef.h>

#define PIPE_POOL_KEEP 64 /* empty pipes kept for reuse per worker */

struct pipe_pair {
    int rfd, wfd;
};

struct pipe_pool {
    struct pipe_pair free[PIPE_POOL_KEEP];
    size_t n_free;
    size_t in_use;
    size_t capacity; /* bytes one pipe holds (F_GETPIPE_SZ) */
};

void pipe_pool_init(struct pipe_pool *p);
/* Takes a pipe (pooled or new). Returns 0 or -errno (EMFILE...). */
int pipe_pool_get(struct pipe_pool *p, struct pipe_pair *out);
/* Returns an EMPTY pipe; closes it when the pool is full. */
void pipe_pool_put(struct pipe_pool *p, struct pipe_pair pp);
/* Closes a pipe that may still hold data (connection aborted). */
void pipe_pool_discard(struct pipe_pool *p, struct pipe_pair pp);
void pipe_pool_close(struct pipe_pool *p);

#endif
