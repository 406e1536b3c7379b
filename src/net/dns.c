/* Asynchronous DNS for servers given by name: c-ares driven by the main thread's loop.
 *
 * c-ares tells us which sockets it wants watched through its socket-state callback; each
 * becomes a level-triggered io_handler, and one loop timer follows ares_timeout(). Every
 * server whose address is a name gets a `dns_name` with its own refresh timer: when it
 * fires, ares_getaddrinfo(AF_UNSPEC) runs; the answer is published with server_set_addrs()
 * and the next lookup is scheduled after the TTL (clamped), or after `retry` on failure,
 * keeping the last good addresses. Nothing here blocks: a silent nameserver only delays
 * the next answer. One lookup per server object (servers sharing a host name are not
 * merged: they are few, and separate schedules keep the code simple).
 *
 * Settings that c-ares takes only at init (nameservers, timeout) are applied by building
 * a new channel and destroying the old one; lookups it had in flight are re-asked. */
#include "net/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/runtime.h"
#include "net/addr.h"
#include "upstream/server.h"

#define DNS_TRIES 2 /* attempts per nameserver before a lookup fails */
#define DNS_CSV_MAX 4096

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* A socket c-ares asked us to watch. Freed through loop_defer_free, since events for it
 * may still be queued in the current loop turn. */
struct dns_sock {
    struct io_handler h;
    struct dns *d;
    uint32_t events;
    bool dead;
    struct dns_sock *next;
};

/* One server given by name. Owned by the list d->names while active; once stopped with a
 * query in flight, owned by that query (freed by its callback). */
struct dns_name {
    struct timer t; /* next lookup */
    struct dns *d;
    struct server *srv; /* reference held */
    bool in_flight;     /* an ares_getaddrinfo callback is pending */
    bool stopped;
    bool failing;  /* in a failure streak (warned once) */
    unsigned seen; /* dns_sync generation that last saw the server */
    struct dns_name *next;
};

struct dns {
    struct loop *loop;
    ares_channel ch;
    struct timer t; /* c-ares retransmissions and query timeouts */
    struct dns_sock *socks;
    struct dns_name *names;
    char *csv;           /* nameservers the channel uses; NULL: resolv.conf */
    uint64_t timeout_ms; /* per attempt, as the channel was built */
    uint64_t min_ttl_ms, max_ttl_ms, retry_ms;
    unsigned gen;
};

/* ---- pure helpers ---- */

int dns_parse_nameserver(const char *text, char *out, size_t outlen, const char **err)
{
    const char *why = "expected an IP address or IP:port (e.g. 127.0.0.1:5353, [::1]:53)";
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    struct net_addr a;

    if (text == NULL || text[0] == '\0' || outlen < DNS_NAMESERVER_MAX)
        goto fail;
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(53);
    } else if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(53);
    } else if (addr_parse(text, &a, &why) < 0) {
        goto fail;
    } else if (a.is_name) {
        why = "a nameserver must be an IP address, not a host name";
        goto fail;
    } else {
        memcpy(&ss, &a.ss, a.len);
    }
    if ((ss.ss_family == AF_INET && s4->sin_addr.s_addr == htonl(INADDR_ANY)) ||
        (ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))) {
        why = "a nameserver needs a specific address, not a wildcard";
        goto fail;
    }
    addr_format((const struct sockaddr *)&ss, out, outlen);
    return 0;
fail:
    if (err)
        *err = why;
    return -EINVAL;
}

/* Orders socket addresses: IPv4 before IPv6, then by address bytes, then port. */
static int dns_sa_cmp(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return a->sa_family == AF_INET ? -1 : 1;
    int c;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        c = memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr));
        if (c == 0)
            c = memcmp(&x->sin_port, &y->sin_port, sizeof(x->sin_port));
    } else {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        c = memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
        if (c == 0)
            c = memcmp(&x->sin6_port, &y->sin6_port, sizeof(x->sin6_port));
        if (c == 0 && x->sin6_scope_id != y->sin6_scope_id)
            c = x->sin6_scope_id < y->sin6_scope_id ? -1 : 1;
    }
    return c;
}

/* Inserts `sa` into the sorted set `out` (bounded insertion sort, no allocation). */
static void dns_insert(struct server_addrs *out, const struct sockaddr_storage *sa, socklen_t len)
{
    size_t i = out->count;
    while (i > 0) {
        int c = dns_sa_cmp((const struct sockaddr *)&out->addrs[i - 1], (const void *)sa);
        if (c == 0)
            return; /* duplicate */
        if (c < 0)
            break;
        i--;
    }
    if (i >= SERVER_MAX_ADDRS)
        return; /* bigger than the SERVER_MAX_ADDRS smallest kept */
    size_t n = out->count < SERVER_MAX_ADDRS ? out->count : SERVER_MAX_ADDRS - 1;
    memmove(&out->addrs[i + 1], &out->addrs[i], (n - i) * sizeof(out->addrs[0]));
    memmove(&out->lens[i + 1], &out->lens[i], (n - i) * sizeof(out->lens[0]));
    out->addrs[i] = *sa;
    out->lens[i] = len;
    out->count = n + 1;
}

size_t dns_collect_addrs(const struct ares_addrinfo *ai, uint16_t port, struct server_addrs *out,
                         int *min_ttl)
{
    bool have_ttl = false;
    int ttl = 0;

    memset(out, 0, sizeof(*out));
    if (ai == NULL)
        goto done;
    for (const struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
        struct sockaddr_storage ss = {0};
        socklen_t len;
        if (n->ai_addr == NULL)
            continue;
        if (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            memcpy(s4, n->ai_addr, sizeof(*s4));
            s4->sin_family = AF_INET;
            s4->sin_port = htons(port);
            len = sizeof(*s4);
        } else if (n->ai_family == AF_INET6 && n->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            memcpy(s6, n->ai_addr, sizeof(*s6));
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(port);
            len = sizeof(*s6);
        } else {
            continue;
        }
        dns_insert(out, &ss, len);
        if (!have_ttl || n->ai_ttl < ttl)
            ttl = n->ai_ttl;
        have_ttl = true;
    }
    for (const struct ares_addrinfo_cname *c = ai->cnames; c && have_ttl; c = c->next)
        if (c->ttl < ttl)
            ttl = c->ttl;
done:
    if (min_ttl)
        *min_ttl = ttl < 0 ? 0 : ttl;
    return out->count;
}

bool dns_addrs_same(const struct server_addrs *a, const struct server_addrs *b)
{
    size_t na = a ? a->count : 0, nb = b ? b->count : 0;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a->lens[i] != b->lens[i] ||
            dns_sa_cmp((const void *)&a->addrs[i], (const void *)&b->addrs[i]) != 0)
            return false;
    return true;
}

uint64_t dns_refresh_ms(int ttl_s, uint64_t min_ms, uint64_t max_ms)
{
    uint64_t ms = ttl_s > 0 ? (uint64_t)ttl_s * 1000u : 0;
    if (max_ms < min_ms)
        max_ms = min_ms;
    return ms < min_ms ? min_ms : ms > max_ms ? max_ms : ms;
}

/* ---- c-ares sockets and timeouts on the loop ---- */

/* Re-arms the c-ares timer from ares_timeout(); call after anything that drives c-ares. */
static void dns_arm_timeout(struct dns *d)
{
    struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);
    if (tvp == NULL) {
        timer_cancel(d->loop, &d->t);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
    if (timer_arm(d->loop, &d->t, loop_now(d->loop) + ms) < 0)
        log_error("resolver: cannot arm a timer (out of memory); lookups may stall");
}

static void dns_on_timeout(struct loop *l, struct timer *t)
{
    (void)l;
    struct dns *d = container_of(t, struct dns, t);
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_arm_timeout(d);
}

static void dns_on_io(struct loop *l, struct io_handler *h, uint32_t events)
{
    (void)l;
    struct dns_sock *s = (struct dns_sock *)h;
    if (s->dead)
        return;
    struct dns *d = s->d;
    /* errors and hangups go to the read side, where c-ares notices them */
    ares_socket_t r = events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? h->fd : ARES_SOCKET_BAD;
    ares_socket_t w = events & EPOLLOUT ? h->fd : ARES_SOCKET_BAD;
    ares_process_fd(d->ch, r, w);
    dns_arm_timeout(d);
}

static void dns_sock_release(struct dns *d, struct dns_sock *s)
{
    s->dead = true;
    if (loop_defer_free(d->loop, s) < 0)
        log_error("resolver: out of memory; leaking a socket handler");
}

/* c-ares socket-state callback: start, change or stop watching `fd`. */
static void dns_on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_sock **pp = &d->socks, *s;
    for (; (s = *pp) != NULL; pp = &s->next)
        if (s->h.fd == fd)
            break;
    uint32_t events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    if (events == 0) {
        if (s) {
            loop_del(d->loop, &s->h);
            *pp = s->next;
            dns_sock_release(d, s);
        }
        return;
    }
    if (s) {
        if (s->events != events && loop_mod(d->loop, &s->h, events) == 0)
            s->events = events;
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        log_error("resolver: out of memory watching a socket; the lookup will time out");
        return;
    }
    s->h.fd = fd;
    s->h.cb = dns_on_io;
    s->d = d;
    s->events = events;
    int rc = loop_add(d->loop, &s->h, events);
    if (rc < 0) {
        log_error("resolver: cannot watch socket %d: %s; the lookup will time out", fd,
                  strerror(-rc));
        free(s);
        return;
    }
    s->next = d->socks;
    d->socks = s;
}

/* Builds a channel with our loop hooks, `timeout_ms` per attempt and, when csv is not
 * NULL, those nameservers instead of resolv.conf's. Returns 0, or -1 with err set. */
static int dns_channel_new(struct dns *d, const char *csv, uint64_t timeout_ms, ares_channel *out,
                           char *err, size_t errlen)
{
    struct ares_options o = {0};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    o.sock_state_cb = dns_on_sock_state;
    o.sock_state_cb_data = d;
    o.lookups = (char *)"fb"; /* /etc/hosts first, then DNS */
    o.timeout = timeout_ms > 600000 ? 600000 : (int)timeout_ms;
    o.tries = DNS_TRIES;
    int rc = ares_init_options(out, &o, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot start the DNS resolver (c-ares): %s", ares_strerror(rc));
        return -1;
    }
    if (csv && (rc = ares_set_servers_ports_csv(*out, csv)) != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver.nameservers \"%s\": %s", csv, ares_strerror(rc));
        ares_destroy(*out);
        return -1;
    }
    return 0;
}

/* ---- names ---- */

static void dns_lookup(struct dns_name *n);

static void dns_on_name_timer(struct loop *l, struct timer *t)
{
    (void)l;
    dns_lookup(container_of(t, struct dns_name, t));
}

static void dns_schedule(struct dns_name *n, uint64_t delay_ms)
{
    struct dns *d = n->d;
    if (timer_arm(d->loop, &n->t, loop_now(d->loop) + delay_ms) < 0)
        log_error("server %s of backend %s: cannot schedule its next DNS lookup (out of memory)",
                  n->srv->address, n->srv->backend);
}

static void dns_name_free(struct dns_name *n)
{
    timer_cancel(n->d->loop, &n->t);
    server_unref(n->srv);
    free(n);
}

/* Writes "10.0.0.5, 10.0.0.6" into buf. */
static void dns_format_set(const struct server_addrs *a, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->count && off + 2 < len; i++) {
        char ip[ADDR_TEXT_MAX];
        addr_format_ip((const struct sockaddr *)&a->addrs[i], ip, sizeof(ip));
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", ip);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

static void dns_failed(struct dns_name *n, int status)
{
    struct server *s = n->srv;
    if (!n->failing) {
        bool have = atomic_load(&s->resolved) != NULL;
        log_warn("server %s of backend %s: DNS lookup of %s failed: %s; %s; retrying every "
                 "%llu ms",
                 s->address, s->backend, s->addr.host, ares_strerror(status),
                 have ? "keeping the last good addresses" : "not usable until it resolves",
                 (unsigned long long)n->d->retry_ms);
        n->failing = true;
    } else {
        log_debug("server %s of backend %s: DNS lookup of %s failed again: %s", s->address,
                  s->backend, s->addr.host, ares_strerror(status));
    }
    dns_schedule(n, n->d->retry_ms);
}

/* ares_getaddrinfo callback: publish the answer (or keep the last one) and reschedule. */
static void dns_on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct dns_name *n = arg;
    struct dns *d = n->d;
    struct server *s = n->srv;
    struct server_addrs set;
    int ttl = 0;

    n->in_flight = false;
    size_t count = status == ARES_SUCCESS ? dns_collect_addrs(res, s->addr.port, &set, &ttl) : 0;
    if (res)
        ares_freeaddrinfo(res);
    if (n->stopped) {
        dns_name_free(n);
        return;
    }
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        dns_schedule(n, 0); /* the channel was replaced: ask the new one */
        return;
    }
    if (count == 0) {
        dns_failed(n, status == ARES_SUCCESS ? ARES_ENODATA : status);
        return;
    }
    uint64_t next = dns_refresh_ms(ttl, d->min_ttl_ms, d->max_ttl_ms);
    const struct server_addrs *cur = atomic_load(&s->resolved);
    bool changed = !dns_addrs_same(cur, &set);
    if (changed || n->failing || log_enabled(LOG_DEBUG)) {
        char text[SERVER_MAX_ADDRS * (ADDR_TEXT_MAX + 2)];
        dns_format_set(&set, text, sizeof(text));
        if (changed)
            log_info("server %s of backend %s: now %s", s->address, s->backend, text);
        else if (n->failing)
            log_info("server %s of backend %s: DNS lookup of %s works again (%s)", s->address,
                     s->backend, s->addr.host, text);
        else
            log_debug("server %s of backend %s: %s unchanged, next lookup in %llu ms", s->address,
                      s->backend, text, (unsigned long long)next);
    }
    if (changed)
        server_set_addrs(s, &set);
    n->failing = false;
    dns_schedule(n, next);
}

static void dns_lookup(struct dns_name *n)
{
    struct dns *d = n->d;
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_flags = ARES_AI_NOSORT};
    n->in_flight = true;
    /* may call dns_on_answer before returning (hosts file); n stays valid: not stopped */
    ares_getaddrinfo(d->ch, n->srv->addr.host, NULL, &hints, dns_on_answer, n);
    dns_arm_timeout(d);
}

/* Stops n: frees it now, or lets its pending query's callback do it. */
static void dns_name_stop(struct dns_name *n)
{
    n->stopped = true;
    timer_cancel(n->d->loop, &n->t);
    if (!n->in_flight)
        dns_name_free(n);
}

/* ---- settings ---- */

/* The nameserver override as c-ares CSV in a new string; NULL when there is none (or
 * when one is invalid, after logging: the loader checks them, so that is a bug). */
static char *dns_build_csv(const struct cfg_strings *ns)
{
    char buf[DNS_CSV_MAX];
    size_t off = 0;
    if (ns->count == 0)
        return NULL;
    for (size_t i = 0; i < ns->count; i++) {
        char one[DNS_NAMESERVER_MAX];
        const char *why;
        if (dns_parse_nameserver(ns->items[i], one, sizeof(one), &why) < 0) {
            log_error("resolver.nameservers: \"%s\": %s; ignored", ns->items[i], why);
            continue;
        }
        int w = snprintf(buf + off, sizeof(buf) - off, "%s%s", off ? "," : "", one);
        if (w < 0 || (size_t)w >= sizeof(buf) - off)
            break;
        off += (size_t)w;
    }
    return off ? strdup(buf) : NULL;
}

static bool dns_str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Takes the TTL bounds and retry delay from r; rebuilds the channel when its nameservers
 * or timeout changed (in-flight lookups are re-asked on the new one). */
static void dns_apply_settings(struct dns *d, const struct cfg_resolver *r)
{
    d->min_ttl_ms = r->min_ttl_ms ? r->min_ttl_ms : DNS_DEFAULT_MIN_TTL_MS;
    d->max_ttl_ms = r->max_ttl_ms ? r->max_ttl_ms : DNS_DEFAULT_MAX_TTL_MS;
    d->retry_ms = r->retry_ms ? r->retry_ms : DNS_DEFAULT_RETRY_MS;
    uint64_t timeout = r->timeout_ms ? r->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    char *csv = dns_build_csv(&r->nameservers);
    if (r->nameservers.count && !csv) {
        log_error("resolver.nameservers: out of memory or nothing usable; keeping the previous "
                  "nameservers");
        return;
    }
    if (dns_str_eq(csv, d->csv) && timeout == d->timeout_ms) {
        free(csv);
        return;
    }
    ares_channel ch, old = d->ch;
    char err[256];
    if (dns_channel_new(d, csv, timeout, &ch, err, sizeof(err)) < 0) {
        log_error("resolver: %s; keeping the previous settings", err);
        free(csv);
        return;
    }
    d->ch = ch;
    ares_destroy(old); /* in-flight lookups reschedule themselves on d->ch */
    free(d->csv);
    d->csv = csv;
    d->timeout_ms = timeout;
    log_info("resolver: nameservers %s, %llu ms per attempt", csv ? csv : "from /etc/resolv.conf",
             (unsigned long long)timeout);
    dns_arm_timeout(d);
}

/* ---- public ---- */

struct dns *dns_new(struct loop *loop, char *err, size_t errlen)
{
    struct dns *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "cannot start the DNS resolver: out of memory");
        return NULL;
    }
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot start the DNS resolver (c-ares): %s", ares_strerror(rc));
        free(d);
        return NULL;
    }
    d->loop = loop;
    timer_init(&d->t, dns_on_timeout);
    d->timeout_ms = DNS_DEFAULT_TIMEOUT_MS;
    d->min_ttl_ms = DNS_DEFAULT_MIN_TTL_MS;
    d->max_ttl_ms = DNS_DEFAULT_MAX_TTL_MS;
    d->retry_ms = DNS_DEFAULT_RETRY_MS;
    if (dns_channel_new(d, NULL, d->timeout_ms, &d->ch, err, errlen) < 0) {
        ares_library_cleanup();
        free(d);
        return NULL;
    }
    return d;
}

static int dns_ptr_cmp(const void *a, const void *b)
{
    const struct dns_name *x = *(struct dns_name *const *)a, *y = *(struct dns_name *const *)b;
    uintptr_t a1 = (uintptr_t)x->srv, b1 = (uintptr_t)y->srv;
    return a1 < b1 ? -1 : a1 > b1;
}

/* The active entry for server s: binary search in idx (sorted by server), or a linear
 * walk of the list when idx could not be built. */
static struct dns_name *dns_find(struct dns *d, struct dns_name **idx, size_t n, struct server *s)
{
    if (!idx) {
        for (struct dns_name *e = d->names; e; e = e->next)
            if (e->srv == s)
                return e;
        return NULL;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx[mid]->srv == s)
            return idx[mid];
        if ((uintptr_t)idx[mid]->srv < (uintptr_t)s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void dns_sync(struct dns *d, struct runtime *rt)
{
    if (!d || !rt)
        return;
    dns_apply_settings(d, &rt->cfg->resolver);
    unsigned gen = ++d->gen;

    size_t n = 0;
    for (struct dns_name *e = d->names; e; e = e->next)
        n++;
    struct dns_name **idx = n ? malloc(n * sizeof(*idx)) : NULL;
    if (idx) {
        size_t i = 0;
        for (struct dns_name *e = d->names; e; e = e->next)
            idx[i++] = e;
        qsort(idx, n, sizeof(*idx), dns_ptr_cmp);
    }
    struct dns_name *const old_head = d->names; /* entries made below go in front of it */
    for (size_t b = 0; b < rt->n_backends; b++) {
        const struct rt_backend *rb = &rt->backends[b];
        for (size_t i = 0; i < rb->n_servers; i++) {
            struct server *s = rb->servers[i];
            if (!s->addr.is_name)
                continue;
            struct dns_name *e = dns_find(d, idx, n, s);
            for (struct dns_name *f = d->names; !e && f != old_head; f = f->next)
                if (f->srv == s)
                    e = f; /* listed twice: created earlier in this sync */
            if (e) {
                e->seen = gen;
                continue;
            }
            e = calloc(1, sizeof(*e));
            if (!e) {
                log_error("server %s of backend %s: out of memory; its name is not resolved",
                          s->address, s->backend);
                continue;
            }
            timer_init(&e->t, dns_on_name_timer);
            e->d = d;
            e->srv = server_ref(s);
            e->seen = gen;
            e->next = d->names;
            d->names = e;
            log_debug("server %s of backend %s: resolving %s", s->address, s->backend,
                      s->addr.host);
            dns_schedule(e, 0);
        }
    }
    free(idx);

    struct dns_name **pp = &d->names;
    while (*pp) {
        struct dns_name *e = *pp;
        if (e->seen == gen) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        log_debug("server %s of backend %s: no longer resolved", e->srv->address, e->srv->backend);
        dns_name_stop(e);
    }
}

void dns_free(struct dns *d)
{
    if (!d)
        return;
    while (d->names) {
        struct dns_name *e = d->names;
        d->names = e->next;
        dns_name_stop(e);
    }
    ares_destroy(d->ch); /* pending callbacks run now and free their stopped names */
    timer_cancel(d->loop, &d->t);
    while (d->socks) {
        struct dns_sock *s = d->socks;
        d->socks = s->next;
        loop_del(d->loop, &s->h);
        dns_sock_release(d, s);
    }
    free(d->csv);
    ares_library_cleanup();
    free(d);
}
