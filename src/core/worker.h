/* Worker threads: each runs one event loop, accepts on its own SO_REUSEPORT sockets and
 * owns every connection it accepted until that connection ends. The main thread talks to
 * a worker only through the atomics below plus an eventfd wake-up. */
#ifndef SLUICE_CORE_WORKER_H
#define SLUICE_CORE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/bufcache.h"
#include "core/loop.h"
#include "core/runtime.h"
#include "core/strbuf.h"
#include "proxy/conn.h"

struct accept_handler;
struct pipe_pool;
struct upconn;

/* Expensive steps (TLS handshake steps: key exchange and signatures) a worker runs per
 * loop turn; further steps wait for the next turn (worker_budget_take), so a flood of
 * handshakes delays new handshakes, not the bytes of established connections. */
#define WORKER_STEPS_PER_TURN 16

struct h1_conn;
struct h2up_sess;
struct worker {
    int index;
    pthread_t thread;
    struct loop loop;
    struct io_handler wake; /* eventfd */

    /* mailbox from the main thread */
    _Atomic(struct runtime *) next_rt; /* a new snapshot to switch to (reference held) */
    atomic_uint acked_generation;      /* last snapshot generation this worker switched to */
    atomic_bool stop_requested;        /* graceful stop: stop accepting, finish conns */
    atomic_ullong stop_deadline;       /* monotonic ms: close what remains at this time */
    atomic_bool stop_now;              /* second signal: close everything at once */
    atomic_bool drain_changed;         /* some server's drain deadline changed */
    atomic_bool stopped;               /* set by the worker when its loop has exited */

    /* worker-owned state */
    struct runtime *rt;
    struct accept_handler **accepts;
    size_t n_accepts;
    bool accepts_paused;
    struct timer resume_timer;
    struct timer stop_timer;
    struct conn *conns;                         /* doubly linked list of open connections */
    struct conn *deferred_head, *deferred_tail; /* steps waiting for budget (FIFO) */
    struct conn *soon_head, *soon_tail;         /* worker_soon() work (FIFO) */
    unsigned budget;                            /* expensive steps left in this loop turn */
    unsigned n_conns;
    bool stopping;
    struct pipe_pool *pipes;
    struct strbuf access_log;   /* lines waiting to be written (proxy/accesslog.h) */
    struct bufcache xbufs;      /* HTTP exchange buffers for reuse (core/bufcache.h) */
    struct upconn *pool_all;    /* idle keep-alive connections to servers (upstream/pool.h) */
    struct h2up_sess *h2up_all; /* HTTP/2 connections to servers (http/h2_up.h) */
    /* Connections to servers that a protocol keeps outside the pool (HTTP/2 sessions):
       set by that protocol when it makes the first one, so that the worker closes the
       leaving ones after a drain change and all of them at exit without knowing them */
    void (*upstream_drain_check)(struct worker *w);
    void (*upstream_close_all)(struct worker *w);
    struct h1_conn *h1_wait_head, *h1_wait_tail; /* requests waiting for a server slot (FIFO) */
};

/* Starts worker `index` on runtime rt (takes a reference). Returns 0 or -errno. */
int worker_start(struct worker *w, int index, struct runtime *rt);
/* Hands a new snapshot to the worker (takes a reference) and wakes it. */
void worker_post_runtime(struct worker *w, struct runtime *rt);
void worker_post_stop(struct worker *w, uint64_t deadline_ms, bool now);
void worker_post_drain_check(struct worker *w);
void worker_join(struct worker *w);

/* Called by connections (worker thread only). */
void worker_conn_closed(struct worker *w);

/* True when c may run an expensive step now (one unit of this turn's budget is taken);
 * otherwise queues c, whose ops->step() is called in a later turn, and returns false. A
 * connection already queued stays queued (false). */
bool worker_budget_take(struct worker *w, struct conn *c);
/* Removes c from the queue if it is there (it closes). */
void worker_undefer(struct worker *w, struct conn *c);

/* Queues c->ops->soon(c) to run once the current batch of events is handled (once, however
 * often it is asked before then). */
void worker_soon(struct worker *w, struct conn *c);
/* Takes c off that queue (it closes). */
void worker_unsoon(struct worker *w, struct conn *c);

#endif
