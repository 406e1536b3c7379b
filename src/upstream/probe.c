/* Placeholder: probes are being written. Servers with health start down. */
#include "upstream/probe.h"

#include <stdlib.h>

struct prober {
    struct loop *loop;
};

struct prober *prober_new(struct loop *loop)
{
    struct prober *p = calloc(1, sizeof(*p));
    if (p)
        p->loop = loop;
    return p;
}

void prober_sync(struct prober *p, struct runtime *rt)
{
    (void)p;
    (void)rt;
}

void prober_free(struct prober *p)
{
    free(p);
}
