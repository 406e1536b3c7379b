#include "proxy/conn.h"

#include <stdatomic.h>

#include "core/log.h"
#include "core/runtime.h"
#include "core/worker.h"

void conn_init(struct conn *c, const struct conn_ops *ops, struct worker *w, struct rt_listener *l)
{
    c->ops = ops;
    c->w = w;
    c->rt = runtime_ref(w->rt);
    c->listener = l;
    c->start_ms = loop_now(&w->loop);
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    counter_add(&l->stats->slots[w->index].connections, 1);
}

void conn_release_slot(struct rt_listener *l)
{
    atomic_fetch_sub(&l->stats->active, 1);
    atomic_fetch_sub(&runtime_active_connections, 1);
}

void conn_release(struct conn *c)
{
    struct worker *w = c->w;
    worker_undefer(w, c);
    worker_unsoon(w, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    conn_release_slot(c->listener);
    runtime_unref(c->rt);
    c->rt = NULL;
    if (loop_defer_free(&w->loop, c) < 0)
        log_error("out of memory: leaking one connection object");
    worker_conn_closed(w);
}

void conn_replace(struct conn *from, struct conn *to, const struct conn_ops *ops)
{
    struct worker *w = from->w;
    worker_undefer(w, from);
    worker_unsoon(w, from);
    *to = *from;
    to->ops = ops;
    if (to->prev)
        to->prev->next = to;
    else
        w->conns = to;
    if (to->next)
        to->next->prev = to;
    from->prev = from->next = NULL;
    from->rt = NULL;
}
