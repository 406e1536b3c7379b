/* A short wait for a server slot (max_connections_per_server on http backends).
 *
 * When every usable server of the backend is at its cap, the request waits up to the
 * backend's connect_timeout (from the first refusal) on its worker's FIFO of waiters. The
 * first waiter asks again at once when a request of this worker frees a slot, and every
 * H1_QUEUE_POLL_MS for slots freed by other workers; the others only watch their own
 * deadline, so one poll per worker whatever the number of waiters, and a worker's
 * waiters are served in order (across workers, whoever asks first).
 * Servers down, drained or disabled do not make a request wait: 503 at once. A client
 * that closes (FIN or reset) while waiting is dropped then, as nginx does by default, so
 * that its request does not take a freed slot for nobody. */
#include <stdatomic.h>

#include "core/loop.h"
#include "core/runtime.h"
#include "core/worker.h"
#include "http/h1_conn.h"
#include "upstream/server.h"

#define H1_QUEUE_POLL_MS 5

/* True when some usable server of b is at its connection cap (a slot may free up). */
static bool some_server_full(const struct rt_backend *b)
{
    unsigned cap = (unsigned)b->cfg->max_connections_per_server;
    for (size_t i = 0; i < b->n_servers; i++) {
        struct server *s = b->servers[i];
        if (atomic_load(&s->lb.usable) && atomic_load(&s->lb.weight) > 0 &&
            atomic_load(&s->lb.active) >= cap)
            return true;
    }
    return false;
}

bool h1_queue_wait(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    const struct rt_backend *b = t->backend;
    uint64_t now = loop_now(&c->conn.w->loop);
    if (b->cfg->max_connections_per_server <= 0 || !some_server_full(b))
        return false;
    if (t->queued_until == 0)
        t->queued_until = now + b->cfg->connect_timeout_ms;
    if (now >= t->queued_until)
        return false;
    struct worker *w = c->conn.w;
    if (!c->waiting) {
        c->waiting = true;
        c->wait_next = NULL;
        c->wait_prev = w->h1_wait_tail;
        if (w->h1_wait_tail)
            w->h1_wait_tail->wait_next = c;
        else
            w->h1_wait_head = c;
        w->h1_wait_tail = c;
    }
    uint64_t next = now + H1_QUEUE_POLL_MS;
    c->st = H1_QUEUED;
    c->phase_deadline = t->queued_until;
    if (w->h1_wait_head == c && next < t->queued_until)
        c->phase_deadline = next;
    h1_rearm(c);
    return true;
}

/* Makes c ask again in this loop turn. */
static void wake(struct h1_conn *c)
{
    c->phase_deadline = loop_now(&c->conn.w->loop);
    h1_rearm(c);
}

void h1_queue_leave(struct h1_conn *c)
{
    if (!c->waiting)
        return;
    struct worker *w = c->conn.w;
    bool was_head = w->h1_wait_head == c;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        w->h1_wait_head = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    else
        w->h1_wait_tail = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
    c->waiting = false;
    if (was_head && w->h1_wait_head)
        wake(w->h1_wait_head); /* the new first waiter takes over polling */
}

void h1_queue_kick(struct worker *w)
{
    if (w->h1_wait_head)
        wake(w->h1_wait_head);
}

bool h1_queue_client_gone(struct h1_conn *c)
{
    if (!c->client.rdhup && !c->client.error_event)
        return false;
    c->t->term = TERM_CLIENT_ABORTED;
    c->t->error = "client closed while waiting for a server slot";
    h1_close(c, TERM_CLIENT_ABORTED);
    return true;
}
