/* The byte pump: moves bytes from one socket to another with backpressure, for every
 * protocol (an L4 connection or a WebSocket tunnel both ways; an HTTP body one way, up
 * to a byte budget).
 *
 * Every direction starts on the copy path (recv/send through a 16 KiB buffer, 64 KiB for a
 * bulk flow with TLS on a side), cheapest for the small exchanges of short connections.
 * When a read fills the whole buffer on a plain TCP pair (and the caller allows splice),
 * the flow is bulk and the direction moves to splice() through a pooled pipe (zero copy)
 * for the rest of its life. A direction holds at most one pipe or one buffer, taken when
 * bytes arrive and given back as soon as they are written out: an idle direction holds
 * neither, and a slow reader stops the pump reading from its peer once that one
 * pipe/buffer is full, so memory per direction is bounded whatever the volume.
 *
 * A plain socket is marked not readable after a short read unless epoll reported the
 * peer's FIN (the socket was emptied; new bytes bring a new edge): one EAGAIN call less
 * per burst. */
#ifndef SLUICE_PROXY_PUMP_H
#define SLUICE_PROXY_PUMP_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/pipe_pool.h"
#include "proxy/sock.h"

/* One direction: bytes read from a source waiting to be written to a destination. */
struct pump_dir {
    struct pipe_pair pipe; /* splice path */
    bool has_pipe : 1;
    bool spliced : 1; /* bulk flow seen: this direction moved to splice() */
    bool big : 1;     /* bulk flow with TLS on a side: copies through the 64 KiB buffer */
    bool limited : 1; /* reads stop at `budget` bytes (an HTTP body); else until EOF */
    uint32_t off, len;
    uint32_t pending; /* bytes held in the pipe or buffer */
    char *buf;        /* copy path */
    uint64_t budget;  /* when limited: bytes still to read from the source */
};

/* What one pump_run call needs from its caller, built on the stack per call. */
struct pump_ctx {
    struct pipe_pool *pipes;
    uint64_t now;
    uint64_t *last_io_ms; /* set to now on every byte moved */
    uint64_t *src_bytes;  /* bytes read from the source are added here, or NULL */
    uint64_t *dst_bytes;  /* bytes written to the destination are added here, or NULL */
    bool *use_splice;     /* both sockets plain TCP: bulk may splice (cleared if unsupported) */
};

enum pump_result {
    PUMP_OK,      /* as far as possible for now (source empty, destination full, or done) */
    PUMP_SRC_ERR, /* reading failed: *err */
    PUMP_DST_ERR, /* writing failed: *err */
};

/* Moves bytes of direction d from src to dst as far as the sockets allow now. `hold_last`:
 * when the source has ended, the last bytes are sent so that a FIN that follows at once
 * joins their segment (pump_forward_fin). */
enum pump_result pump_run(struct pump_ctx *x, struct pump_dir *d, struct sock *src,
                          struct sock *dst, bool hold_last, int *err);

/* Sends FIN (and TLS close_notify) to dst once src ended and everything was written (for
 * TLS: accepted; the close_notify goes behind the records still buffered, often in the
 * same write, and the FIN waits until they are out). */
void pump_forward_fin(struct pump_dir *d, struct sock *src, struct sock *dst);

/* Gives back d's pipe (to the pool when empty) and buffer. */
void pump_release(struct pipe_pool *pipes, struct pump_dir *d);

#endif
