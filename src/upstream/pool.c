#include "upstream/pool.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdlib.h>

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

void upconn_close(struct upconn *u, bool notify)
{
    if (!u)
        return;
    if (u->idle)
        unlink_idle(u);
    timer_cancel(&u->w->loop, &u->timer);
    sock_close(&u->sock, notify);
    server_unref(u->server);
    loop_defer_free(&u->w->loop, u); /* events of this turn may still name it */
}

void upconn_free(struct upconn *u)
{
    upconn_close(u, false);
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

/* True when an idle connection's socket is fit for another request: nothing is waiting
 * on it (a response that ended cleanly leaves it empty; bytes or an end mean the server
 * said more than its response, or closed). Goes through sock_read, so that on TLS the
 * records that change nothing are processed and the rest is judged as plain bytes would
 * be: TLS 1.3 NewSessionTicket (or KeyUpdate) messages leave the session fit (the read
 * says EAGAIN), while application data, close_notify, EOF or an alert make it unfit. */
static bool socket_clean(struct sock *s)
{
    if (s->h.fd < 0 || s->eof || s->rdhup || s->error_event || s->shut || s->unflushed)
        return false;
    /* records OpenSSL already read from the socket raise no new edge */
    if (!s->readable && !(s->ssl && SSL_has_pending(s->ssl)))
        return true;
    char c;
    if (sock_read(s, &c, 1) == -EAGAIN) {
        s->readable = false;
        return true;
    }
    ERR_clear_error(); /* a TLS alert's reason: the connection is just dropped */
    return false;
}

void upool_put(struct upconn *u, int max_idle, uint64_t idle_timeout_ms)
{
    struct server_slot *ss = slot_of(u);
    u->owner = NULL;
    u->on_io = NULL;
    if (!socket_clean(&u->sock)) {
        upconn_free(u);
        return;
    }
    if (max_idle <= 0 || server_leaving(u->server) ||
        counter_get(&ss->pool_idle) >= (unsigned long)max_idle) {
        upconn_close(u, true);
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
        /* the server closed it, or sent what nobody asked for; on TLS it may also have
           sent a session ticket, which keeps it */
        sock_on_events(&u->sock, events);
        if (!socket_clean(&u->sock))
            upconn_free(u);
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
        upconn_close(u, true); /* keepalive.idle_timeout: a clean end (close_notify) */
}

void upool_drain_check(struct worker *w)
{
    struct upconn *u = w->pool_all;
    while (u) {
        struct upconn *next = u->all_next;
        if (server_leaving(u->server))
            upconn_close(u, true);
        u = next;
    }
}

void upool_close_all(struct worker *w)
{
    while (w->pool_all)
        upconn_close(w->pool_all, true);
}
