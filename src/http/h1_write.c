/* Canonical HTTP/1 head writer. See h1_write.h for the contract. */
#include "http/h1_write.h"

#include <string.h>

struct out {
    char *p;
    size_t cap, len;
};

/* Appends s[0..n), keeping count past the capacity. */
static void put(struct out *o, const char *s, size_t n)
{
    if (n > 0 && o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->p + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_str(struct out *o, struct h1_str s)
{
    put(o, s.p, s.len);
}

size_t h1_write_head(const struct h1_head *h, bool response, char *out, size_t cap)
{
    struct out o = {out, cap, 0};
    char version[] = "HTTP/1.1";
    version[7] = (char)('0' + h->minor_version);
    if (response) {
        char code[5] = {' ', (char)('0' + h->status / 100), (char)('0' + h->status / 10 % 10),
                        (char)('0' + h->status % 10), ' '};
        put(&o, version, 8);
        put(&o, code, 5);
        put_str(&o, h->reason);
    } else {
        put_str(&o, h->method);
        put(&o, " ", 1);
        put_str(&o, h->target);
        put(&o, " ", 1);
        put(&o, version, 8);
    }
    put(&o, "\r\n", 2);
    for (size_t i = 0; i < h->n_headers; i++) {
        put_str(&o, h->headers[i].name);
        put(&o, h->headers[i].value.len ? ": " : ":", h->headers[i].value.len ? 2 : 1);
        put_str(&o, h->headers[i].value);
        put(&o, "\r\n", 2);
    }
    put(&o, "\r\n", 2);
    return o.len;
}
