/* A bounded writer for heads built piece by piece: appends while there is room and
 * remembers when there was not (the caller then refuses the whole head). Internal to
 * src/http/. */
#ifndef SLUICE_HTTP_OUT_H
#define SLUICE_HTTP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "http/h1_parse.h"

struct out {
    char *p;
    size_t len, cap;
    bool over;
};

static inline void put(struct out *o, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL (an empty view): memcpy must not see it */
    if (o->over || n > o->cap - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static inline void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static inline void put_str(struct out *o, struct h1_str s)
{
    put(o, s.p, s.len);
}

#endif
