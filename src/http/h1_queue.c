/* A short wait for a server slot (max_connections_per_server on http backends).
 *
 * When every usable server of the backend is at its cap, the request waits up to the
 * backend's connect_timeout (from the first refusal), polling every H1_QUEUE_POLL_MS for
 * a slot freed by any worker; a slot goes to whichever request asks first (no FIFO).
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
    struct h1_txn *t = &c->t;
    const struct rt_backend *b = t->backend;
    uint64_t now = loop_now(&c->conn.w->loop);
    if (b->cfg->max_connections_per_server <= 0 || !some_server_full(b))
        return false;
    if (t->queued_until == 0)
        t->queued_until = now + b->cfg->connect_timeout_ms;
    if (now >= t->queued_until)
        return false;
    uint64_t next = now + H1_QUEUE_POLL_MS;
    c->st = H1_QUEUED;
    c->phase_deadline = next < t->queued_until ? next : t->queued_until;
    h1_rearm(c);
    return true;
}

bool h1_queue_client_gone(struct h1_conn *c)
{
    if (!c->client.rdhup && !c->client.error_event)
        return false;
    c->t.term = TERM_CLIENT_ABORTED;
    c->t.error = "client closed while waiting for a server slot";
    h1_close(c, TERM_CLIENT_ABORTED);
    return true;
}
