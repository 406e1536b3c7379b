#include "proxy/sock_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sock_mem_append(struct sock_mem_buf *b, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (b->off > 0 && b->len + n > b->cap) { /* slide what is left to the front */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -ENOMEM;
        char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = (uint32_t)cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += (uint32_t)n;
    return 0;
}

void sock_mem_consume(struct sock_mem_buf *b, size_t n)
{
    b->off += (uint32_t)n;
    if (b->off >= b->len) {
        free(b->p);
        *b = (struct sock_mem_buf){0};
    }
}

void sock_mem_free(struct sock_mem *m)
{
    free(m->in.p);
    free(m->out.p);
    m->in = m->out = (struct sock_mem_buf){0};
}

ssize_t sock_mem_read(struct sock_mem *m, char *buf, size_t len)
{
    size_t have = sock_mem_pending(&m->in);
    if (have == 0)
        return m->in_reset ? -ECONNRESET : m->in_eof ? 0 : -EAGAIN;
    size_t n = have < len ? have : len;
    memcpy(buf, m->in.p + m->in.off, n);
    sock_mem_consume(&m->in, n);
    m->ops->took(m->owner);
    return (ssize_t)n;
}

ssize_t sock_mem_write(struct sock_mem *m, const char *buf, size_t len)
{
    if (m->out_eof)
        return -EPIPE;
    size_t have = sock_mem_pending(&m->out);
    if (have >= m->out_max)
        return -EAGAIN;
    size_t n = m->out_max - have < len ? m->out_max - have : len;
    if (sock_mem_append(&m->out, buf, n) < 0)
        return -ENOMEM;
    m->ops->wrote(m->owner);
    return (ssize_t)n;
}

void sock_mem_shut(struct sock_mem *m, bool reset)
{
    if (m->out_eof)
        return;
    m->out_eof = true;
    m->out_reset = reset;
    m->ops->wrote(m->owner);
}

void sock_mem_close(struct sock_mem *m, bool reset)
{
    m->closed = true;
    if (!m->out_eof) {
        m->out_eof = true;
        m->out_reset = reset;
    }
    m->ops->wrote(m->owner); /* last: the owner may free m */
}
