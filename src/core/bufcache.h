/* A few freed buffers kept for reuse by one thread (a worker's exchange buffers). A
 * malloc and free of tens of KiB per request makes glibc give the memory back to the
 * kernel and fault it in again on the next request: measured on keep-alive HTTPS, half
 * of the worker's CPU went there. Buffers of another size than the one asked for are
 * not handed out. */
#ifndef SLUICE_CORE_BUFCACHE_H
#define SLUICE_CORE_BUFCACHE_H

#include <stddef.h>

#define BUFCACHE_SLOTS 16

struct bufcache {
    void *p[BUFCACHE_SLOTS];
    size_t size[BUFCACHE_SLOTS];
    unsigned n;
};

/* A buffer of `size` bytes (contents undefined), or NULL when out of memory. */
void *bufcache_get(struct bufcache *c, size_t size);
/* Gives p (of `size` bytes, may be NULL) back: kept when there is a free slot. */
void bufcache_put(struct bufcache *c, void *p, size_t size);
/* Frees every kept buffer. */
void bufcache_clear(struct bufcache *c);

#endif
