#include "core/bufcache.h"

#include <stdlib.h>

void *bufcache_get(struct bufcache *c, size_t size)
{
    for (unsigned i = c->n; i-- > 0;) {
        if (c->size[i] != size)
            continue;
        void *p = c->p[i];
        c->n--;
        c->p[i] = c->p[c->n];
        c->size[i] = c->size[c->n];
        return p;
    }
    return malloc(size);
}

void bufcache_put(struct bufcache *c, void *p, size_t size)
{
    if (!p)
        return;
    if (c->n == BUFCACHE_SLOTS) {
        free(p);
        return;
    }
    c->p[c->n] = p;
    c->size[c->n] = size;
    c->n++;
}

void bufcache_clear(struct bufcache *c)
{
    while (c->n > 0)
        free(c->p[--c->n]);
}
