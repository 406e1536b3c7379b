/* Event loop: epoll + binary min-heap of timers. See loop.h for the contract. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 256

uint64_t clock_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int loop_init(struct loop *l)
{
    *l = (struct loop){0};
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -errno;
    l->now = clock_monotonic_ms();
    return 0;
}

void loop_close(struct loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    for (size_t i = 0; i < l->deferred_len; i++)
        free(l->deferred[i]);
    free(l->deferred);
    free(l->heap);
    *l = (struct loop){.epfd = -1};
}

static int loop_ctl(struct loop *l, int op, struct io_handler *h, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = h};
    return epoll_ctl(l->epfd, op, h->fd, &ev) < 0 ? -errno : 0;
}

int loop_add(struct loop *l, struct io_handler *h, uint32_t events)
{
    return loop_ctl(l, EPOLL_CTL_ADD, h, events);
}

int loop_mod(struct loop *l, struct io_handler *h, uint32_t events)
{
    return loop_ctl(l, EPOLL_CTL_MOD, h, events);
}

int loop_del(struct loop *l, struct io_handler *h)
{
    return loop_ctl(l, EPOLL_CTL_DEL, h, 0);
}

/* ---- timer heap ---- */

static void heap_set(struct loop *l, size_t i, struct timer *t)
{
    l->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(struct loop *l, size_t i)
{
    struct timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->deadline <= t->deadline)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
    struct timer *t = l->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->heap_len)
            break;
        if (child + 1 < l->heap_len && l->heap[child + 1]->deadline < l->heap[child]->deadline)
            child++;
        if (l->heap[child]->deadline >= t->deadline)
            break;
        heap_set(l, i, l->heap[child]);
        i = child;
    }
    heap_set(l, i, t);
}

int timer_arm(struct loop *l, struct timer *t, uint64_t deadline)
{
    if (timer_armed(t)) {
        uint64_t old = t->deadline;
        t->deadline = deadline;
        if (deadline < old)
            heap_up(l, t->heap_index);
        else
            heap_down(l, t->heap_index);
        return 0;
    }
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        struct timer **h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        l->heap = h;
        l->heap_cap = cap;
    }
    t->deadline = deadline;
    l->heap[l->heap_len] = t;
    t->heap_index = l->heap_len++;
    heap_up(l, t->heap_index);
    return 0;
}

void timer_cancel(struct loop *l, struct timer *t)
{
    if (!timer_armed(t))
        return;
    size_t i = t->heap_index;
    t->heap_index = TIMER_IDLE;
    struct timer *last = l->heap[--l->heap_len];
    if (i == l->heap_len)
        return;
    l->heap[i] = last;
    last->heap_index = i;
    if (i > 0 && l->heap[(i - 1) / 2]->deadline > last->deadline)
        heap_up(l, i);
    else
        heap_down(l, i);
}

static void run_timers(struct loop *l)
{
    while (l->heap_len > 0 && l->heap[0]->deadline <= l->now) {
        struct timer *t = l->heap[0];
        timer_cancel(l, t);
        t->cb(l, t);
    }
}

int loop_defer_free(struct loop *l, void *p)
{
    if (l->deferred_len == l->deferred_cap) {
        size_t cap = l->deferred_cap ? l->deferred_cap * 2 : 64;
        void **d = realloc(l->deferred, cap * sizeof(*d));
        if (!d) {
            /* Out of memory: leaking is safer than a use-after-free. */
            return -ENOMEM;
        }
        l->deferred = d;
        l->deferred_cap = cap;
    }
    l->deferred[l->deferred_len++] = p;
    return 0;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
    struct epoll_event events[LOOP_BATCH];
    int wait = max_wait_ms;
    if (l->heap_len > 0) {
        uint64_t due = l->heap[0]->deadline;
        int until = due <= l->now ? 0 : (int)(due - l->now);
        if (wait < 0 || until < wait)
            wait = until;
    }
    int n = epoll_wait(l->epfd, events, LOOP_BATCH, wait);
    int err = n < 0 ? -errno : 0;
    l->now = clock_monotonic_ms();
    for (int i = 0; i < n; i++) {
        struct io_handler *h = events[i].data.ptr;
        h->cb(l, h, events[i].events);
    }
    run_timers(l);
    for (size_t i = 0; i < l->deferred_len; i++)
        free(l->deferred[i]);
    l->deferred_len = 0;
    return err == -EINTR ? 0 : err;
}
