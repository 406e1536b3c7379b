/* Building, sharing and retiring run-time snapshots. See runtime.h. */
#include "core/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "http/ratelimit.h"
#include "net/listen.h"
#include "proxy/protocols.h"
#include "tls/tls_client.h"
#include "tls/tls_server.h"

atomic_uint runtime_active_connections;
atomic_ulong runtime_reloads_ok, runtime_reloads_failed;

struct runtime *runtime_ref(struct runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

static void runtime_free(struct runtime *rt)
{
    for (size_t i = 0; i < rt->n_listeners; i++) {
        struct rt_listener *l = &rt->listeners[i];
        free(l->fds); /* sockets are closed by runtime_close_listeners */
        ratelimit_detach(&rt->cfg->listeners[i]);
        tls_server_free(l->tls);
    }
    for (size_t i = 0; i < rt->n_backends; i++) {
        struct rt_backend *b = &rt->backends[i];
        for (size_t j = 0; j < b->n_servers; j++)
            server_unref(b->servers[j]);
        free(b->servers);
        lb_pool_free(b->pool);
        lb_pool_free(b->affinity_pool);
        tls_client_free(b->tls);
    }
    free(rt->listeners);
    free(rt->backends);
    config_unref(rt->cfg);
    free(rt);
}

void runtime_unref(struct runtime *rt)
{
    if (rt && atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) == 1)
        runtime_free(rt);
}

struct rt_backend *runtime_find_backend(const struct runtime *rt, const char *name)
{
    for (size_t i = 0; rt && i < rt->n_backends; i++)
        if (strcmp(rt->backends[i].cfg->name, name) == 0)
            return &rt->backends[i];
    return NULL;
}

struct server *runtime_find_server(const struct runtime *rt, const char *backend,
                                   const char *address)
{
    struct rt_backend *b = runtime_find_backend(rt, backend);
    for (size_t j = 0; b && j < b->n_servers; j++)
        if (strcmp(b->servers[j]->address, address) == 0)
            return b->servers[j];
    return NULL;
}

/* The fd of prev listening on exactly `a` for `worker`, taken over (prev forgets it), or -1. */
static int take_listen_fd(struct runtime *prev, const struct net_addr *a, int worker)
{
    for (size_t i = 0; prev && i < prev->n_listeners; i++) {
        struct rt_listener *pl = &prev->listeners[i];
        for (size_t b = 0; b < pl->cfg->n_binds; b++) {
            int *slot = &pl->fds[b * (size_t)prev->workers + (size_t)worker];
            if (*slot >= 0 && addr_equal((const struct sockaddr *)&pl->cfg->binds[b].ss,
                                         (const struct sockaddr *)&a->ss)) {
                int fd = *slot;
                *slot = -1;
                return fd;
            }
        }
    }
    return -1;
}

/* Gives fds taken from prev back to it after a failed build, so nothing is lost. */
static void give_back_fds(struct runtime *next, struct runtime *prev)
{
    for (size_t i = 0; i < next->n_listeners; i++) {
        struct rt_listener *l = &next->listeners[i];
        if (!l->fds)
            continue;
        for (size_t b = 0; b < l->cfg->n_binds; b++) {
            for (int w = 0; w < next->workers; w++) {
                int fd = l->fds[b * (size_t)next->workers + (size_t)w];
                if (fd < 0)
                    continue;
                bool returned = false;
                for (size_t k = 0; prev && k < prev->n_listeners && !returned; k++) {
                    struct rt_listener *pl = &prev->listeners[k];
                    for (size_t pb = 0; pb < pl->cfg->n_binds && !returned; pb++) {
                        int *slot = &pl->fds[pb * (size_t)prev->workers + (size_t)w];
                        if (*slot < 0 &&
                            addr_equal((const struct sockaddr *)&pl->cfg->binds[pb].ss,
                                       (const struct sockaddr *)&l->cfg->binds[b].ss)) {
                            *slot = fd;
                            returned = true;
                        }
                    }
                }
                if (!returned)
                    close(fd);
                l->fds[b * (size_t)next->workers + (size_t)w] = -1;
            }
        }
    }
}

static bool listener_peeks_hello(const struct cfg_listener *l)
{
    if (l->protocol != PROTO_TCP)
        return false;
    for (size_t i = 0; i < l->n_routes; i++)
        if (l->routes[i].sni || l->routes[i].alpn)
            return true;
    return false;
}

static int build_listener(struct runtime *rt, struct runtime *prev, size_t idx, char *err,
                          size_t errlen)
{
    const struct cfg_listener *cl = &rt->cfg->listeners[idx];
    struct rt_listener *l = &rt->listeners[idx];
    l->cfg = cl;
    l->proto = proxy_protocol_ops(cl->protocol);
    if (!l->proto) {
        snprintf(err, errlen, "listener %s: protocol not supported by this build", cl->name);
        return -EINVAL;
    }
    l->peek_hello = listener_peeks_hello(cl);
    l->stats = listener_stats_get(cl->name, rt->workers);
    const struct cfg_listener *pcl = NULL;
    for (size_t i = 0; prev && i < prev->n_listeners; i++)
        if (strcmp(prev->listeners[i].cfg->name, cl->name) == 0)
            pcl = prev->listeners[i].cfg;
    if (ratelimit_attach(&rt->cfg->listeners[idx], pcl) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n = cl->n_binds * (size_t)rt->workers;
    l->fds = malloc(n * sizeof(int));
    if (!l->stats || !l->fds) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        l->fds[i] = -1;
    for (size_t b = 0; b < cl->n_binds; b++) {
        for (int w = 0; w < rt->workers; w++) {
            int fd = take_listen_fd(prev, &cl->binds[b], w);
            if (fd < 0)
                fd = listen_open(&cl->binds[b], err, errlen);
            if (fd < 0)
                return fd;
            /* set on every build: a socket kept over a reload may change protocol */
            tcp_quickack(fd, cl->protocol != PROTO_TLS && cl->protocol != PROTO_HTTPS);
            l->fds[b * (size_t)rt->workers + (size_t)w] = fd;
        }
    }
    if (cl->protocol == PROTO_TLS || cl->protocol == PROTO_HTTPS) {
        l->tls = tls_server_new(cl, err, errlen);
        if (!l->tls)
            return -EINVAL;
    }
    return 0;
}

static int build_backend(struct runtime *rt, struct runtime *prev, size_t idx, char *err,
                         size_t errlen)
{
    const struct cfg_backend *cb = &rt->cfg->backends[idx];
    struct rt_backend *b = &rt->backends[idx];
    b->cfg = cb;
    b->stats = backend_stats_get(cb->name, rt->workers);
    b->servers = calloc(cb->n_servers ? cb->n_servers : 1, sizeof(*b->servers));
    struct lb_server_state **states = calloc(cb->n_servers ? cb->n_servers : 1, sizeof(*states));
    if (!b->stats || !b->servers || !states)
        goto nomem;
    for (size_t j = 0; j < cb->n_servers; j++) {
        const struct cfg_server *cs = &cb->servers[j];
        struct server *old = runtime_find_server(prev, cb->name, cs->address);
        if (old) {
            /* kept whatever else changed (settings applied by apply_kept_servers) */
            b->servers[j] = server_ref(old);
        } else {
            b->servers[j] = server_new(cb->name, cs, cb->health.enabled, rt->workers);
        }
        b->n_servers = j + 1;
        if (!b->servers[j])
            goto nomem;
        states[j] = &b->servers[j]->lb;
    }
    b->pool = lb_pool_new(cb->balance, states, cb->n_servers, rt->workers);
    if (cb->affinity_client_ip && cb->balance != BAL_CONSISTENT_HASH)
        b->affinity_pool = lb_pool_new(BAL_CONSISTENT_HASH, states, cb->n_servers, rt->workers);
    free(states);
    states = NULL;
    if (!b->pool ||
        (cb->affinity_client_ip && cb->balance != BAL_CONSISTENT_HASH && !b->affinity_pool))
        goto nomem;
    if (cb->protocol == PROTO_TLS || cb->protocol == PROTO_HTTPS) {
        b->tls = tls_client_new(cb, err, errlen);
        if (!b->tls)
            return -EINVAL;
    }
    return 0;
nomem:
    free(states);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

/* The build succeeded: servers kept from the previous snapshot take the new settings of
 * the file. Only now, so that a rejected reload changes nothing. A weight set through the
 * admin API stays unless the file's weight for that server changed; health, counters,
 * open connections and admin state always stay. */
static void apply_kept_servers(struct runtime *rt)
{
    for (size_t i = 0; i < rt->n_backends; i++) {
        const struct cfg_backend *cb = rt->backends[i].cfg;
        for (size_t j = 0; j < rt->backends[i].n_servers; j++) {
            struct server *s = rt->backends[i].servers[j];
            const struct cfg_server *cs = &cb->servers[j];
            if (s->config_weight != cs->weight) {
                s->config_weight = cs->weight;
                atomic_store(&s->lb.weight, cs->weight);
            }
            s->lb.backup = cs->backup;
            server_set_probed(s, cb->health.enabled);
        }
    }
}

struct runtime *runtime_build(struct config *cfg, struct runtime *prev, int workers, char *err,
                              size_t errlen)
{
    struct runtime *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        config_unref(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&rt->refs, 1);
    rt->cfg = cfg;
    rt->workers = workers;
    rt->generation = prev ? prev->generation + 1 : 1;
    rt->listeners = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*rt->listeners));
    rt->backends = calloc(cfg->n_backends ? cfg->n_backends : 1, sizeof(*rt->backends));
    if (!rt->listeners || !rt->backends) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_backends; i++) {
        rt->n_backends = i + 1;
        if (build_backend(rt, prev, i, err, errlen) < 0)
            goto fail;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        rt->n_listeners = i + 1;
        if (build_listener(rt, prev, i, err, errlen) < 0)
            goto fail;
    }
    apply_kept_servers(rt);
    return rt;
fail:
    give_back_fds(rt, prev);
    runtime_free(rt);
    return NULL;
}

void runtime_retire_servers(struct runtime *prev, struct runtime *next, uint64_t now_ms)
{
    for (size_t i = 0; prev && i < prev->n_backends; i++) {
        struct rt_backend *b = &prev->backends[i];
        for (size_t j = 0; j < b->n_servers; j++) {
            struct server *s = b->servers[j];
            if (runtime_find_server(next, s->backend, s->address) == s)
                continue;
            atomic_store(&s->removed, true);
            server_update_usable(s);
            if (atomic_load(&s->drain_deadline) == 0)
                atomic_store(&s->drain_deadline, now_ms + b->cfg->drain_timeout_ms);
            if (atomic_load(&s->lb.active) > 0)
                log_info("server %s of backend %s removed by reload: draining %u connection(s) "
                         "for up to %llu ms",
                         s->address, s->backend, atomic_load(&s->lb.active),
                         (unsigned long long)b->cfg->drain_timeout_ms);
        }
    }
}

void runtime_close_listeners(struct runtime *old, const struct runtime *next)
{
    (void)next; /* fds next reuses were taken over (set to -1 in old) by runtime_build */
    for (size_t i = 0; old && i < old->n_listeners; i++) {
        struct rt_listener *l = &old->listeners[i];
        for (size_t k = 0; l->fds && k < l->cfg->n_binds * (size_t)old->workers; k++) {
            if (l->fds[k] >= 0)
                close(l->fds[k]);
            l->fds[k] = -1;
        }
    }
}
