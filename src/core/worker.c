/* Worker thread: event loop, accepting, snapshot switches, graceful stop. */
#include "core/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/accesslog.h"
#include "proxy/pipe_pool.h"
#include "upstream/pool.h"
#include "net/accept.h"

#define ACCEPT_BATCH 64

struct accept_handler {
    struct io_handler h;
    struct worker *w;
    size_t listener; /* index into w->rt->listeners */
    bool paused;
    bool seen; /* mark for reconciliation */
    struct accept_episode episode;
};

/* Reserves a slot in the global and listener counters; false when a limit is reached. */
static bool reserve_slot(struct worker *w, struct rt_listener *l)
{
    unsigned global_max = (unsigned)w->rt->cfg->max_connections;
    unsigned n = atomic_fetch_add(&runtime_active_connections, 1) + 1;
    if (global_max && n > global_max) {
        atomic_fetch_sub(&runtime_active_connections, 1);
        return false;
    }
    unsigned lmax = (unsigned)l->cfg->max_connections;
    unsigned m = atomic_fetch_add(&l->stats->active, 1) + 1;
    if (lmax && m > lmax) {
        atomic_fetch_sub(&l->stats->active, 1);
        atomic_fetch_sub(&runtime_active_connections, 1);
        return false;
    }
    return true;
}

static void release_slot(struct rt_listener *l)
{
    atomic_fetch_sub(&l->stats->active, 1);
    atomic_fetch_sub(&runtime_active_connections, 1);
}

static void pause_accept(struct worker *w, struct accept_handler *a)
{
    if (a->paused)
        return;
    a->paused = true;
    loop_mod(&w->loop, &a->h, 0);
    w->accepts_paused = true;
    if (!timer_armed(&w->resume_timer))
        timer_arm(&w->loop, &w->resume_timer, loop_now(&w->loop) + ACCEPT_RETRY_MS);
}

static void on_accept(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    (void)events;
    struct accept_handler *a = (struct accept_handler *)h;
    struct worker *w = a->w;
    if (w->stopping || a->paused)
        return;
    struct rt_listener *l = &w->rt->listeners[a->listener];
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (!reserve_slot(w, l)) {
            pause_accept(w, a);
            return;
        }
        union sockaddr_any peer;
        socklen_t len = sizeof(peer);
        int fd;
        enum accept_status st =
            accept_next(h->fd, &peer.sa, &len, &fd, &a->episode, "listener", l->cfg->name);
        if (st != ACCEPT_OK) {
            release_slot(l);
            if (st == ACCEPT_PAUSE)
                pause_accept(w, a);
            if (st == ACCEPT_SKIP)
                continue;
            return;
        }
        l->proto->start(w, l, fd, &peer.sa, len);
    }
    accept_batch_done(h->fd, &a->episode, "listener", l->cfg->name);
}

static void on_resume_timer(struct loop *loop, struct timer *t)
{
    (void)loop;
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, resume_timer));
    if (w->stopping)
        return;
    bool still_paused = false;
    for (size_t i = 0; i < w->n_accepts; i++) {
        struct accept_handler *a = w->accepts[i];
        if (!a->paused)
            continue;
        struct rt_listener *l = &w->rt->listeners[a->listener];
        unsigned gmax = (unsigned)w->rt->cfg->max_connections;
        unsigned lmax = (unsigned)l->cfg->max_connections;
        if ((gmax && atomic_load(&runtime_active_connections) >= gmax) ||
            (lmax && atomic_load(&l->stats->active) >= lmax)) {
            still_paused = true;
            continue;
        }
        a->paused = false;
        loop_mod(&w->loop, &a->h, EPOLLIN);
    }
    w->accepts_paused = still_paused;
    if (still_paused)
        timer_arm(&w->loop, &w->resume_timer, loop_now(&w->loop) + ACCEPT_RETRY_MS);
}

void worker_conn_closed(struct worker *w)
{
    if (w->accepts_paused && !w->stopping)
        on_resume_timer(&w->loop, &w->resume_timer);
}

/* Stops polling a listening socket (the main thread closes it later) and frees the handler
 * once this loop turn is over, since an event for it may still be pending in the batch. */
static void drop_accept(struct worker *w, struct accept_handler *a)
{
    loop_del(&w->loop, &a->h);
    a->paused = true; /* a pending event for it is ignored */
    if (loop_defer_free(&w->loop, a) < 0)
        log_error("worker %d: out of memory: leaking an accept handler", w->index);
}

/* Makes this worker's accept handlers match w->rt: keeps handlers whose fd is still in
 * use (re-pointing them at the new listener), adds new ones, drops the rest. */
static void reconcile_accepts(struct worker *w)
{
    struct runtime *rt = w->rt;
    for (size_t i = 0; i < w->n_accepts; i++)
        w->accepts[i]->seen = false;
    size_t want = 0;
    for (size_t i = 0; i < rt->n_listeners; i++)
        want += rt->listeners[i].cfg->n_binds;
    struct accept_handler **next = calloc(want ? want : 1, sizeof(*next));
    if (!next) {
        log_error("worker %d: out of memory applying new configuration", w->index);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < rt->n_listeners; i++) {
        struct rt_listener *l = &rt->listeners[i];
        for (size_t b = 0; b < l->cfg->n_binds; b++) {
            int fd = l->fds[b * (size_t)rt->workers + (size_t)w->index];
            struct accept_handler *a = NULL;
            for (size_t k = 0; k < w->n_accepts; k++)
                if (w->accepts[k]->h.fd == fd && !w->accepts[k]->seen)
                    a = w->accepts[k];
            if (!a) {
                a = calloc(1, sizeof(*a));
                if (!a)
                    continue;
                a->h.fd = fd;
                a->h.cb = on_accept;
                a->w = w;
                if (loop_add(&w->loop, &a->h, EPOLLIN) < 0) {
                    log_error("worker %d: cannot poll listener %s: %s", w->index, l->cfg->name,
                              strerror(errno));
                    free(a);
                    continue;
                }
            }
            a->seen = true;
            a->listener = i;
            next[n++] = a;
        }
    }
    for (size_t k = 0; k < w->n_accepts; k++) {
        if (!w->accepts[k]->seen)
            drop_accept(w, w->accepts[k]);
    }
    free(w->accepts);
    w->accepts = next;
    w->n_accepts = n;
}

static void stop_accepting(struct worker *w)
{
    for (size_t k = 0; k < w->n_accepts; k++)
        drop_accept(w, w->accepts[k]);
    free(w->accepts);
    w->accepts = NULL;
    w->n_accepts = 0;
}

static void close_all(struct worker *w, enum term why)
{
    while (w->conns)
        w->conns->ops->close(w->conns, why);
}

static void on_stop_timer(struct loop *loop, struct timer *t)
{
    (void)loop;
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, stop_timer));
    if (w->n_conns > 0)
        log_info("worker %d: shutdown_timeout reached, closing %u connection(s)", w->index,
                 w->n_conns);
    close_all(w, TERM_SHUTDOWN);
}

static void on_wake(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)events;
    struct worker *w = (struct worker *)((char *)h - offsetof(struct worker, wake));
    uint64_t v;
    while (read(h->fd, &v, sizeof(v)) > 0) {
    }
    struct runtime *rt = atomic_exchange(&w->next_rt, NULL);
    if (rt) {
        struct runtime *old = w->rt;
        w->rt = rt;
        if (!w->stopping)
            reconcile_accepts(w);
        atomic_store(&w->acked_generation, rt->generation);
        runtime_unref(old);
    }
    if (atomic_exchange(&w->drain_changed, false)) {
        for (struct conn *c = w->conns; c; c = c->next)
            c->ops->rearm(c);
        upool_drain_check(w);
        if (w->upstream_drain_check)
            w->upstream_drain_check(w);
    }
    if (atomic_load(&w->stop_requested) && !w->stopping) {
        w->stopping = true;
        stop_accepting(w);
        for (struct conn *c = w->conns, *next; c; c = next) {
            next = c->next; /* stop may close c */
            if (c->ops->stop)
                c->ops->stop(c);
        }
        atomic_store(&w->acked_generation, UINT32_MAX);
        timer_arm(loop, &w->stop_timer, atomic_load(&w->stop_deadline));
    }
    if (atomic_load(&w->stop_now))
        close_all(w, TERM_SHUTDOWN);
}

static bool queued(const struct worker *w, const struct conn *c)
{
    return c->step_prev || w->deferred_head == c;
}

bool worker_budget_take(struct worker *w, struct conn *c)
{
    if (queued(w, c))
        return false; /* already waiting its turn */
    if (w->budget > 0) {
        w->budget--;
        return true;
    }
    log_debug("worker %d: step budget spent this turn; step deferred", w->index);
    c->step_next = NULL;
    c->step_prev = w->deferred_tail;
    if (w->deferred_tail)
        w->deferred_tail->step_next = c;
    else
        w->deferred_head = c;
    w->deferred_tail = c;
    return false;
}

void worker_undefer(struct worker *w, struct conn *c)
{
    if (!queued(w, c))
        return;
    if (c->step_prev)
        c->step_prev->step_next = c->step_next;
    else
        w->deferred_head = c->step_next;
    if (c->step_next)
        c->step_next->step_prev = c->step_prev;
    else
        w->deferred_tail = c->step_prev;
    c->step_prev = c->step_next = NULL;
}

void worker_soon(struct worker *w, struct conn *c)
{
    if (c->soon_queued)
        return;
    c->soon_queued = true;
    c->soon_next = NULL;
    if (w->soon_tail)
        w->soon_tail->soon_next = c;
    else
        w->soon_head = c;
    w->soon_tail = c;
}

void worker_unsoon(struct worker *w, struct conn *c)
{
    if (!c->soon_queued)
        return;
    struct conn *prev = NULL;
    for (struct conn *it = w->soon_head; it; prev = it, it = it->soon_next) {
        if (it != c)
            continue;
        if (prev)
            prev->soon_next = c->soon_next;
        else
            w->soon_head = c->soon_next;
        if (w->soon_tail == c)
            w->soon_tail = prev;
        break;
    }
    c->soon_queued = false;
    c->soon_next = NULL;
}

/* Runs the queued soon() work in order, including work queued while it runs. */
static void run_soon(struct worker *w)
{
    while (w->soon_head) {
        struct conn *c = w->soon_head;
        worker_unsoon(w, c);
        c->ops->soon(c);
    }
}

/* Runs deferred steps in arrival order while the turn's budget lasts (each step takes
 * its unit through worker_budget_take). */
static void run_deferred(struct worker *w)
{
    while (w->deferred_head && w->budget > 0) {
        struct conn *c = w->deferred_head;
        worker_undefer(w, c);
        c->ops->step(c);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        /* Handshakes deferred by the previous turn go first, then this turn's events;
         * both share one budget so established traffic is served every turn. */
        w->budget = WORKER_STEPS_PER_TURN;
        run_deferred(w);
        loop_run_once(&w->loop, w->deferred_head || w->soon_head ? 0 : -1);
        run_soon(w);
        if (w->access_log.len)
            alog_flush(w);
        if (w->stopping && w->n_conns == 0)
            break;
    }
    upool_close_all(w);
    if (w->upstream_close_all)
        w->upstream_close_all(w);
    bufcache_clear(&w->xbufs);
    alog_flush(w);
    atomic_store(&w->stopped, true);
    return NULL;
}

int worker_start(struct worker *w, int index, struct runtime *rt)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    int r = loop_init(&w->loop);
    if (r < 0)
        return r;
    w->pipes = calloc(1, sizeof(*w->pipes));
    if (!w->pipes)
        return -ENOMEM;
    pipe_pool_init(w->pipes);
    timer_init(&w->resume_timer, on_resume_timer);
    timer_init(&w->stop_timer, on_stop_timer);
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->wake.cb = on_wake;
    if (w->wake.fd < 0 || loop_add(&w->loop, &w->wake, EPOLLIN) < 0)
        return -errno;
    w->rt = runtime_ref(rt);
    reconcile_accepts(w);
    atomic_store(&w->acked_generation, rt->generation);
    r = pthread_create(&w->thread, NULL, worker_main, w);
    return -r;
}

static void wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wake.fd, &one, sizeof(one));
    (void)n;
}

void worker_post_runtime(struct worker *w, struct runtime *rt)
{
    struct runtime *old = atomic_exchange(&w->next_rt, runtime_ref(rt));
    runtime_unref(old); /* a snapshot the worker never picked up */
    wake(w);
}

void worker_post_stop(struct worker *w, uint64_t deadline_ms, bool now)
{
    atomic_store(&w->stop_deadline, deadline_ms);
    atomic_store(&w->stop_requested, true);
    if (now)
        atomic_store(&w->stop_now, true);
    wake(w);
}

void worker_post_drain_check(struct worker *w)
{
    atomic_store(&w->drain_changed, true);
    wake(w);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
    runtime_unref(atomic_exchange(&w->next_rt, NULL));
    runtime_unref(w->rt);
    w->rt = NULL;
    pipe_pool_close(w->pipes);
    free(w->pipes);
    sb_free(&w->access_log);
    close(w->wake.fd);
    loop_close(&w->loop);
}
