/* Active health probes: one probe per probed server for the whole process, scheduled on
 * the main thread's loop. Each probe is a timer plus, while a check runs, one socket
 * (probe_check.c). Results drive the threshold state machine (probe_state.c) and are
 * written to struct server (healthy, last_check, counters), every change logged.
 *
 * Lifetime: the prober holds a reference to the runtime snapshot it last synced with; a
 * probe points at its backend in that snapshot. A check in flight holds its own reference
 * to the snapshot it started with, since it reads `send`/`expect` from that config. Each
 * probe holds a server_ref until it is stopped. Probes are kept sorted by server pointer
 * so a sync is a merge, O(n log n) for any number of servers. */
#include "upstream/probe.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/runtime.h"
#include "tls/tls_client.h"
#include "upstream/probe_check.h"
#include "upstream/probe_state.h"
#include "upstream/server.h"

struct probe {
    struct timer timer; /* next check */
    struct prober *p;
    struct server *s;           /* referenced */
    const struct rt_backend *b; /* in p->rt */
    size_t b_idx;               /* index of b in p->rt->backends */
    struct probe_state st;
    struct probe_check *check; /* in flight, or NULL */
    struct runtime *check_rt;  /* reference held while a check runs */
    uint64_t last_start;
    struct probe_http_expect http_x; /* http(s) checks: what the one in flight expects */
    bool reported;                   /* a first result has been logged */
};

struct prober {
    struct loop *loop;
    struct runtime *rt;    /* referenced; NULL before the first sync */
    struct probe **probes; /* sorted by server pointer */
    size_t n_probes;
    struct tls_client **tls; /* per backend of rt: the context tls probes use, or NULL */
    bool *tls_owned;         /* built here (a backend without TLS, tls/https health) */
    size_t n_tls;
    uint64_t burst_ms; /* loop time of the current turn ... */
    unsigned burst;    /* ... and the checks started in it */
};

/* At most this many checks start per loop turn; the rest are pushed to the next turn, so
 * thousands of servers due at once (a start, a reload) never stall the main loop. */
#define PROBE_BURST 128

static const char *const proto_names[] = {"tcp", "tls", "http", "https"};

static void probe_schedule(struct probe *e);

struct prober *prober_new(struct loop *loop)
{
    struct prober *p = calloc(1, sizeof(*p));
    if (p)
        p->loop = loop;
    return p;
}

static const struct cfg_health *probe_health(const struct probe *e)
{
    return &e->b->cfg->health;
}

/* Applies one check result to the server: state machine, fields for the status API,
 * healthy flag and the log line of a change. */
static void probe_result(struct probe *e, bool ok, const char *detail)
{
    struct server *s = e->s;
    const struct cfg_health *h = probe_health(e);
    uint64_t now = loop_now(e->p->loop);
    /* passive health (live traffic) may have taken it down since the last check */
    if (e->st.up && !atomic_load(&s->healthy))
        probe_state_force_down(&e->st);
    bool first = !e->reported;
    e->reported = true;
    enum probe_change ch =
        probe_state_record(&e->st, ok, h->healthy_threshold, h->unhealthy_threshold);
    snprintf(s->last_check, sizeof(s->last_check), "%s", detail);
    s->probe_successes = e->st.successes;
    s->probe_failures = e->st.failures;
    if (ok)
        atomic_store(&s->passive_failures, 0);
    if (ch == PROBE_WENT_UP) {
        atomic_store(&s->healthy, true);
        server_update_usable(s);
        s->last_change_ms = now;
        if (e->st.successes == 1)
            log_info("server %s of backend %s is UP: %s", s->address, s->backend, detail);
        else
            log_info("server %s of backend %s is UP: %s (%d consecutive successes)", s->address,
                     s->backend, detail, e->st.successes);
    } else if (ch == PROBE_WENT_DOWN) {
        atomic_store(&s->healthy, false);
        server_update_usable(s);
        s->last_change_ms = now;
        log_warn("server %s of backend %s is DOWN: %s (%d consecutive failure%s)", s->address,
                 s->backend, detail, e->st.failures, e->st.failures == 1 ? "" : "s");
    } else if (first && !ok) {
        log_warn("server %s of backend %s is DOWN: %s (no successful check yet)", s->address,
                 s->backend, detail);
    }
}

static void probe_check_done(void *arg, bool ok, const char *detail)
{
    struct probe *e = arg;
    e->check = NULL;
    runtime_unref(e->check_rt);
    e->check_rt = NULL;
    probe_result(e, ok, detail);
    probe_schedule(e);
}

/* Timer: start one check of e's server. */
static void probe_fire(struct loop *l, struct timer *t)
{
    struct probe *e = (struct probe *)t; /* timer is the first member */
    struct prober *p = e->p;
    const struct cfg_backend *cb = e->b->cfg;
    const struct cfg_health *h = &cb->health;
    char detail[PROBE_DETAIL_MAX];
    uint64_t now = loop_now(l);
    if (p->burst_ms != now) {
        p->burst_ms = now;
        p->burst = 0;
    }
    if (p->burst >= PROBE_BURST) {
        if (timer_arm(l, &e->timer, now + 1) < 0)
            log_error("server %s of backend %s: out of memory, health checks stopped",
                      e->s->address, e->s->backend);
        return;
    }
    p->burst++;
    e->last_start = now;

    struct sockaddr_storage ss;
    socklen_t len;
    if (server_next_addr(e->s, &ss, &len) < 0) {
        probe_result(e, false, "not resolved yet");
        probe_schedule(e);
        return;
    }
    struct probe_check_params prm = {
        .addr = (struct sockaddr *)&ss,
        .addr_len = len,
        .timeout_ms = h->timeout_ms,
        .pp_version = cb->proxy_protocol == PP_V1   ? 1
                      : cb->proxy_protocol == PP_V2 ? 2
                                                    : 0,
    };
    if (h->type == PROTO_TCP || h->type == PROTO_TLS) {
        prm.send = h->send;
        prm.send_len = h->send_len;
        prm.expect = h->expect;
    }
    if (h->type == PROTO_HTTP || h->type == PROTO_HTTPS) {
        e->http_x = (struct probe_http_expect){.status_lo = h->expect_status_lo,
                                               .status_hi = h->expect_status_hi,
                                               .body = h->expect_body};
        prm.http = &e->http_x;
        prm.http_path = h->path ? h->path : "/";
        prm.http_host = h->host ? h->host : e->s->addr.host;
    }
    if (h->type == PROTO_TLS || h->type == PROTO_HTTPS) {
        prm.tls = e->b_idx < p->n_tls ? p->tls[e->b_idx] : NULL;
        prm.tls_host = e->s->addr.host;
        prm.tls_sni = h->host;
        if (!prm.tls) {
            probe_result(e, false, "no TLS client context for this backend");
            probe_schedule(e);
            return;
        }
    }
    e->check_rt = runtime_ref(p->rt);
    int rc = probe_check_start(l, &prm, probe_check_done, e, &e->check, detail, sizeof(detail));
    if (rc < 0) {
        e->check = NULL;
        runtime_unref(e->check_rt);
        e->check_rt = NULL;
        probe_result(e, false, detail);
        probe_schedule(e);
    }
}

/* Arms the timer for the next check: one interval after the last one started, or at
 * once when that is already past (a check that ran longer than the interval). */
static void probe_schedule(struct probe *e)
{
    uint64_t now = loop_now(e->p->loop);
    uint64_t next = e->last_start + probe_health(e)->interval_ms;
    if (next < now)
        next = now;
    if (timer_arm(e->p->loop, &e->timer, next) < 0)
        log_error("server %s of backend %s: out of memory, health checks stopped", e->s->address,
                  e->s->backend);
}

static struct probe *probe_new(struct prober *p, struct server *s, const struct rt_backend *b,
                               size_t b_idx)
{
    struct probe *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    timer_init(&e->timer, probe_fire);
    e->p = p;
    e->s = server_ref(s);
    e->b = b;
    e->b_idx = b_idx;
    probe_state_init(&e->st);
    if (atomic_load(&s->healthy)) {
        /* a server that was serving without a probe (health block added by a reload)
         * stays up until unhealthy_threshold failures, like any server seen healthy */
        e->st.up = true;
        e->st.seen_success = true;
    }
    /* the first check runs at once, so a fresh start becomes healthy quickly */
    if (timer_arm(p->loop, &e->timer, loop_now(p->loop)) < 0) {
        server_unref(e->s);
        free(e);
        return NULL;
    }
    return e;
}

/* Stops e (cancelling a check in flight without a result) and frees it. */
static void probe_stop(struct probe *e)
{
    timer_cancel(e->p->loop, &e->timer);
    if (e->check) {
        probe_check_cancel(e->check);
        e->check = NULL;
    }
    runtime_unref(e->check_rt);
    server_unref(e->s);
    free(e);
}

struct want {
    struct server *s;
    const struct rt_backend *b;
    size_t b_idx;
};

static int want_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct want *)a)->s;
    uintptr_t y = (uintptr_t)((const struct want *)b)->s;
    return x < y ? -1 : x > y;
}

static void prober_free_tls(struct tls_client **tls, bool *owned, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (owned[i])
            tls_client_free(tls[i]); /* checks in flight keep it alive through their SSL */
    free(tls);
    free(owned);
}

/* The TLS contexts of rt's backends for tls and https probes: the backend's own when it has one,
 * else one built here from the backend's settings. Returns 0 or -ENOMEM. */
static int prober_build_tls(struct runtime *rt, struct tls_client ***out_tls, bool **out_owned)
{
    size_t n = rt->n_backends;
    struct tls_client **tls = calloc(n ? n : 1, sizeof(*tls));
    bool *owned = calloc(n ? n : 1, sizeof(*owned));
    if (!tls || !owned) {
        free(tls);
        free(owned);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct rt_backend *b = &rt->backends[i];
        const struct cfg_health *h = &b->cfg->health;
        if (!h->enabled)
            continue;
        if ((h->type != PROTO_TLS && h->type != PROTO_HTTPS) || b->n_servers == 0)
            continue;
        if (b->tls) {
            tls[i] = b->tls;
            continue;
        }
        char err[256];
        tls[i] = tls_client_new(b->cfg, err, sizeof(err));
        if (tls[i])
            owned[i] = true;
        else
            log_error("backend %s: %s health checks cannot run: %s", b->cfg->name,
                      proto_names[h->type], err);
    }
    *out_tls = tls;
    *out_owned = owned;
    return 0;
}

void prober_sync(struct prober *p, struct runtime *rt)
{
    if (!p || !rt)
        return;
    size_t n_want = 0;
    for (size_t i = 0; i < rt->n_backends; i++)
        for (size_t j = 0; j < rt->backends[i].n_servers; j++)
            n_want += atomic_load(&rt->backends[i].servers[j]->has_probe);
    struct want *want = calloc(n_want ? n_want : 1, sizeof(*want));
    struct probe **next = calloc(n_want ? n_want : 1, sizeof(*next));
    struct tls_client **tls = NULL;
    bool *owned = NULL;
    if (!want || !next || prober_build_tls(rt, &tls, &owned) < 0) {
        free(want);
        free(next);
        log_error("health checks: out of memory, probes not updated");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < rt->n_backends; i++) {
        const struct rt_backend *b = &rt->backends[i];
        for (size_t j = 0; j < b->n_servers; j++)
            if (atomic_load(&b->servers[j]->has_probe))
                want[k++] = (struct want){b->servers[j], b, i};
    }
    qsort(want, n_want, sizeof(*want), want_cmp);

    /* merge the sorted old probes with the sorted wanted servers */
    size_t i = 0, j = 0, n = 0;
    while (i < p->n_probes || j < n_want) {
        if (j > 0 && j < n_want && want[j].s == want[j - 1].s) {
            j++; /* the same object twice: probe it once */
            continue;
        }
        uintptr_t os = i < p->n_probes ? (uintptr_t)p->probes[i]->s : UINTPTR_MAX;
        uintptr_t ws = j < n_want ? (uintptr_t)want[j].s : UINTPTR_MAX;
        if (i < p->n_probes && (j >= n_want || os < ws)) {
            probe_stop(p->probes[i++]); /* no longer in the config */
        } else if (i < p->n_probes && os == ws) {
            struct probe *e = p->probes[i++];
            e->b = want[j].b;
            e->b_idx = want[j].b_idx;
            j++;
            if (!e->check)
                probe_schedule(e); /* picks up a changed interval */
            next[n++] = e;
        } else {
            struct probe *e = probe_new(p, want[j].s, want[j].b, want[j].b_idx);
            if (e)
                next[n++] = e;
            else
                log_error("server %s of backend %s: out of memory, not health checked",
                          want[j].s->address, want[j].s->backend);
            j++;
        }
    }
    free(want);
    free(p->probes);
    p->probes = next;
    p->n_probes = n;
    prober_free_tls(p->tls, p->tls_owned, p->n_tls);
    p->tls = tls;
    p->tls_owned = owned;
    p->n_tls = rt->n_backends;
    struct runtime *old = p->rt;
    p->rt = runtime_ref(rt);
    runtime_unref(old);
}

void prober_free(struct prober *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_probes; i++)
        probe_stop(p->probes[i]);
    free(p->probes);
    prober_free_tls(p->tls, p->tls_owned, p->n_tls);
    runtime_unref(p->rt);
    free(p);
}
