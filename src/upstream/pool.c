#include "upstream/pool.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/worker.h"
#include "upstream/server.h"

static void on_event(struct loop *loop, struct io_handler *h, uint32_t events);
static void on_timer(struct loop *loop, struct timer *t);

struct upconn *upconn_new(struct worker *w, struct server *s)
{
    struct upconn *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->sock.h.fd = -1;
    u->sock.h.cb = on_event;
    u->sock.loop = &w->loop;
    timer_init(&u->timer, on_timer);
    u->server = server_ref(s);
    u->w = w;
    return u;
}

static struct server_slot *slot_of(struct upconn *u)
{
    return &u->server->slots[u->w->index];
}

/* Takes u off the idle lists. */
static void unlink_idle(struct upconn *u)
{
    struct server_slot *ss = slot_of(u);
    if (u->prev)
        u->prev->next = u->next;
    else
        ss->pool_head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    if (u->all_prev)
        u->all_prev->all_next = u->all_next;
    else
        u->w->pool_all = u->all_next;
    if (u->all_next)
        u->all_next->all_prev = u->all_prev;
    u->prev = u->next = u->all_prev = u->all_next = NULL;
    u->idle = false;
    counter_add(&ss->pool_idle, (unsigned long)-1);
    timer_cancel(&u->w->loop, &u->timer);
}

void upconn_free(struct upconn *u)
{
    if (!u)
        return;
    if (u->idle)
        unlink_idle(u);
    timer_cancel(&u->w->loop, &u->timer);
    sock_close(&u->sock, false);
    server_unref(u->server);
    loop_defer_free(&u->w->loop, u); /* events of this turn may still name it */
}

static bool server_leaving(struct server *s)
{
    return atomic_load(&s->removed) || atomic_load(&s->admin) != SERVER_ENABLED ||
           atomic_load(&s->drain_deadline) != 0;
}

struct upconn *upool_take(struct worker *w, struct server *s, const struct sockaddr *client,
                          const struct sockaddr *local)
{
    struct server_slot *ss = &s->slots[w->index];
    struct upconn *u = ss->pool_head;
    while (u && (client ? !(u->has_peer && addr_equal(&u->peer_client.sa, client) &&
                            addr_equal(&u->peer_local.sa, local))
                        : u->has_peer))
        u = u->next; /* at most keepalive.max_idle */
    if (u)
        unlink_idle(u);
    return u;
}

/* True when nothing is waiting on the socket: a response that ended cleanly leaves the
 * socket empty; bytes or an end here mean the server said more than its response. */
static bool socket_clean(struct sock *s)
{
    if (s->h.fd < 0 || s->eof || s->rdhup || s->error_event || s->shut || s->ssl)
        return false;
    if (!s->readable)
        return true;
    char c;
    ssize_t n = recv(s->h.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        s->readable = false;
        return true;
    }
    return false;
}

void upool_put(struct upconn *u, int max_idle, uint64_t idle_timeout_ms)
{
    struct server_slot *ss = slot_of(u);
    u->owner = NULL;
    u->on_io = NULL;
    if (max_idle <= 0 || server_leaving(u->server) || !socket_clean(&u->sock) ||
        counter_get(&ss->pool_idle) >= (unsigned long)max_idle) {
        upconn_free(u);
        return;
    }
    if (u->sock.out_armed)
        sock_set_out(&u->sock, false);
    u->idle = true;
    u->next = ss->pool_head;
    if (u->next)
        u->next->prev = u;
    ss->pool_head = u;
    u->all_next = u->w->pool_all;
    if (u->all_next)
        u->all_next->all_prev = u;
    u->w->pool_all = u;
    counter_add(&ss->pool_idle, 1);
    timer_arm(&u->w->loop, &u->timer, loop_now(&u->w->loop) + idle_timeout_ms);
}

static void on_event(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    struct upconn *u = (struct upconn *)h; /* sock is the first member, h its first */
    if (u->sock.h.fd < 0)
        return;
    if (u->idle) {
        upconn_free(u); /* the server closed it, or sent what nobody asked for */
        return;
    }
    if (u->on_io)
        u->on_io(u, events);
}

static void on_timer(struct loop *loop, struct timer *t)
{
    (void)loop;
    struct upconn *u = (struct upconn *)((char *)t - offsetof(struct upconn, timer));
    if (u->idle)
        upconn_free(u);
}

void upool_drain_check(struct worker *w)
{
    struct upconn *u = w->pool_all;
    while (u) {
        struct upconn *next = u->all_next;
        if (server_leaving(u->server))
            upconn_free(u);
        u = next;
    }
}

void upool_close_all(struct worker *w)
{
    while (w->pool_all)
        upconn_free(w->pool_all);
}
