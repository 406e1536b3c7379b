/* Placeholder: the c-ares resolver is being written. */
#include "net/dns.h"

#include <stdlib.h>

struct dns {
    struct loop *loop;
};

struct dns *dns_new(struct loop *loop, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct dns *d = calloc(1, sizeof(*d));
    if (d)
        d->loop = loop;
    return d;
}

void dns_sync(struct dns *d, struct runtime *rt)
{
    (void)d;
    (void)rt;
}

void dns_free(struct dns *d)
{
    free(d);
}
