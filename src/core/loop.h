/* One event loop per worker thread: an epoll set, a timer heap and a deferred-free list.
 *
 * Handlers are registered once per fd (edge-triggered where the caller asks for it) and
 * receive the epoll event mask. Timers are absolute deadlines on the monotonic clock in
 * milliseconds; the loop caches "now" once per turn so hot paths never call the clock.
 * Nothing here is thread-safe: a loop is used only by the thread that runs it. */
#ifndef SLUICE_CORE_LOOP_H
#define SLUICE_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct io_handler;
struct timer;

typedef void (*io_cb)(struct loop *loop, struct io_handler *h, uint32_t events);
typedef void (*timer_cb)(struct loop *loop, struct timer *t);

struct io_handler {
    int fd;
    io_cb cb;
};

#define TIMER_IDLE ((size_t)-1)

struct timer {
    uint64_t deadline; /* monotonic ms */
    size_t heap_index; /* TIMER_IDLE when not armed */
    timer_cb cb;
};

struct loop {
    int epfd;
    uint64_t now;        /* cached monotonic ms, refreshed every turn */
    struct timer **heap; /* min-heap on deadline */
    size_t heap_len, heap_cap;
    void **deferred; /* freed with free() at the end of the turn */
    size_t deferred_len, deferred_cap;
};

int loop_init(struct loop *l);
void loop_close(struct loop *l);

/* Registers h->fd for `events` with h as the epoll cookie. Returns 0 or -errno. */
int loop_add(struct loop *l, struct io_handler *h, uint32_t events);
int loop_mod(struct loop *l, struct io_handler *h, uint32_t events);
int loop_del(struct loop *l, struct io_handler *h);

static inline void timer_init(struct timer *t, timer_cb cb)
{
    t->deadline = 0;
    t->heap_index = TIMER_IDLE;
    t->cb = cb;
}
static inline bool timer_armed(const struct timer *t)
{
    return t->heap_index != TIMER_IDLE;
}
/* Arms (or re-arms) t to fire at absolute `deadline` ms. Returns 0 or -ENOMEM. */
int timer_arm(struct loop *l, struct timer *t, uint64_t deadline);
void timer_cancel(struct loop *l, struct timer *t);

/* Frees p with free() once the current turn has dispatched all its events, so events
 * already fetched for an object closed earlier in the turn never touch freed memory. */
int loop_defer_free(struct loop *l, void *p);

/* Waits up to max_wait_ms (or until the next timer) for events, dispatches them, runs
 * due timers and performs deferred frees. Returns 0 or -errno from epoll_wait. */
int loop_run_once(struct loop *l, int max_wait_ms);

uint64_t clock_monotonic_ms(void);
static inline uint64_t loop_now(const struct loop *l)
{
    return l->now;
}

#endif
