/* An in-memory stream in place of a socket: how an HTTP/2 stream appears to the
 * HTTP/1.1 engine as a client connection (the "fake connection" nginx gives each HTTP/2
 * stream). A struct sock whose `mem` is set reads from `in` and writes to `out`; the
 * owner (the HTTP/2 connection) fills `in`, drains `out`, and sets the sock's readiness
 * flags and runs the engine when either changes.
 *
 * The owner's callbacks run inside the engine's calls (a read, a write, the close): they
 * may only record what happened and queue work (worker_soon), never call back into the
 * engine. */
#ifndef SLUICE_PROXY_SOCK_MEM_H
#define SLUICE_PROXY_SOCK_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_mem_ops {
    void (*took)(void *owner);  /* the engine read from `in` */
    void (*wrote)(void *owner); /* the engine wrote to `out`, or ended or reset it */
};

struct sock_mem_buf {
    char *p;
    uint32_t off, len, cap; /* bytes [off, len) */
};

struct sock_mem {
    struct sock_mem_buf in, out;
    uint32_t out_max; /* the engine's writes block while `out` holds this much */
    bool in_eof;      /* nothing more will come: the engine reads EOF after `in` */
    bool out_eof;     /* the engine closed (or shut) its writing side */
    bool out_reset;   /* ... abortively (a reset on the other side) */
    bool in_reset;    /* the owner's side failed: the engine reads -ECONNRESET after `in` */
    bool closed;      /* the engine closed its sock: it will neither read nor write again */
    const struct sock_mem_ops *ops;
    void *owner;
};

/* Appends n bytes to b (growing it). Returns 0 or -ENOMEM. */
int sock_mem_append(struct sock_mem_buf *b, const char *p, size_t n);
/* Bytes waiting in b. */
static inline size_t sock_mem_pending(const struct sock_mem_buf *b)
{
    return b->len - b->off;
}
/* Drops n bytes from the front of b (all of them: frees the buffer). */
void sock_mem_consume(struct sock_mem_buf *b, size_t n);
void sock_mem_free(struct sock_mem *m);

/* The engine's side (called by proxy/sock.c for a sock with `mem`). */
ssize_t sock_mem_read(struct sock_mem *m, char *buf, size_t len);
ssize_t sock_mem_write(struct sock_mem *m, const char *buf, size_t len);
void sock_mem_shut(struct sock_mem *m, bool reset);
/* The engine closed its sock (after which it never touches m): shuts `out` as
 * sock_mem_shut does, sets `closed` and tells the owner, who may free m then. */
void sock_mem_close(struct sock_mem *m, bool reset);

#endif
