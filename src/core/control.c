/* Main-thread control: start, reload, drain, stop. See control.h. */
#include "core/control.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/accesslog.h"
#include "core/services.h"

#define ACK_POLL_MS 10

struct control *the_control;

static struct io_handler signal_handler = {.fd = -1};

/* Applies cfg's log settings: the process log level, the access log's format and sink
 * `fd` (from alog_open; ownership taken). */
static void apply_log_settings(const struct config *cfg, int fd)
{
    log_set_level(cfg->log.level);
    alog_apply(cfg, fd);
}

static void print_errors(const struct cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        log_error("%s", errs->items[i]);
}

static void on_ack_timer(struct loop *loop, struct timer *t);

/* Closes the listeners of retired snapshots once every worker moved past them. */
static void check_acks(struct control *c)
{
    if (c->n_retiring == 0)
        return;
    unsigned gen = c->rt ? c->rt->generation : UINT32_MAX;
    if (c->stopping)
        gen = UINT32_MAX;
    for (int i = 0; i < c->n_workers; i++) {
        if (atomic_load(&c->workers[i].acked_generation) < gen &&
            !atomic_load(&c->workers[i].stopped)) {
            timer_arm(&c->loop, &c->ack_timer, loop_now(&c->loop) + ACK_POLL_MS);
            return;
        }
    }
    for (size_t i = 0; i < c->n_retiring; i++) {
        runtime_close_listeners(c->retiring[i], c->stopping ? NULL : c->rt);
        runtime_unref(c->retiring[i]);
    }
    c->n_retiring = 0;
}

static void on_ack_timer(struct loop *loop, struct timer *t)
{
    (void)loop;
    (void)t;
    check_acks(the_control);
}

static int retire(struct control *c, struct runtime *old)
{
    struct runtime **r = realloc(c->retiring, (c->n_retiring + 1) * sizeof(*r));
    if (!r)
        return -ENOMEM;
    c->retiring = r;
    c->retiring[c->n_retiring++] = old;
    check_acks(c);
    return 0;
}

int control_reload(struct control *c, struct cfg_errors *errs)
{
    if (c->stopping || c->signals_seen > 0) { /* a reload never changes a running shutdown */
        log_warn("reload refused: sluice is stopping");
        return -1;
    }
    struct config *cfg = config_load(c->config_path, errs);
    if (!cfg) {
        log_error("reload rejected: %zu error(s) in %s; the running configuration is kept",
                  errs->total, c->config_path);
        print_errors(errs);
        atomic_fetch_add(&runtime_reloads_failed, 1);
        return -1;
    }
    if (cfg->workers != c->n_workers)
        log_warn("reload: workers changed to %d; takes effect at the next restart (keeping %d)",
                 cfg->workers, c->n_workers);
    int log_fd = alog_open(cfg);
    char err[512];
    if (log_fd == -2) {
        snprintf(err, sizeof(err), "%s: log.access: cannot open %s: %s", c->config_path,
                 cfg->log.access, strerror(errno));
        goto fail_msg;
    }
    struct runtime *next = runtime_build(cfg, c->rt, c->n_workers, err, sizeof(err));
    if (!next) {
        if (log_fd > 2)
            close(log_fd);
        cfg = NULL; /* runtime_build took our reference */
        goto fail_msg;
    }
    apply_log_settings(next->cfg, log_fd); /* reopens a log file: logrotate-friendly */
    struct runtime *old = c->rt;
    c->rt = next;
    for (int i = 0; i < c->n_workers; i++)
        worker_post_runtime(&c->workers[i], next);
    runtime_retire_servers(old, next, loop_now(&c->loop));
    for (int i = 0; i < c->n_workers; i++)
        worker_post_drain_check(&c->workers[i]);
    services_reconfigure(next);
    if (retire(c, old) < 0)
        runtime_unref(old);
    atomic_fetch_add(&runtime_reloads_ok, 1);
    if (next->n_listeners == 0)
        log_warn("no listeners configured (admin API only)");
    log_info("configuration reloaded from %s (generation %u)", c->config_path, next->generation);
    return 0;
fail_msg:
    config_unref(cfg);
    log_error("reload rejected: %s; the running configuration is kept", err);
    errs->items = realloc(errs->items, (errs->count + 1) * sizeof(char *));
    if (errs->items)
        errs->items[errs->count++] = strdup(err);
    atomic_fetch_add(&runtime_reloads_failed, 1);
    return -1;
}

int control_set_server(struct control *c, const char *backend, const char *address, int admin_state,
                       int weight)
{
    struct server *s = runtime_find_server(c->rt, backend, address);
    if (!s)
        return -ENOENT;
    if (weight >= 0)
        atomic_store(&s->lb.weight, weight);
    if (admin_state >= 0) {
        int old = atomic_exchange(&s->admin, admin_state);
        /* drain and disabled both stop new connections; open ones keep drain_timeout */
        bool leaving = admin_state != SERVER_ENABLED;
        bool was_leaving = old != SERVER_ENABLED;
        if (leaving && !was_leaving) {
            struct rt_backend *b = runtime_find_backend(c->rt, backend);
            atomic_store(&s->drain_deadline, loop_now(&c->loop) + b->cfg->drain_timeout_ms);
            log_info("server %s of backend %s set to %s: %u open connection(s) get %llu ms",
                     address, backend, server_admin_name(admin_state), atomic_load(&s->lb.active),
                     (unsigned long long)b->cfg->drain_timeout_ms);
        } else if (!leaving) {
            atomic_store(&s->drain_deadline, 0);
            if (old != admin_state)
                log_info("server %s of backend %s set to %s", address, backend,
                         server_admin_name(admin_state));
        } else if (old != admin_state) {
            log_info("server %s of backend %s set to %s (drain clock unchanged)", address, backend,
                     server_admin_name(admin_state));
        }
        server_update_usable(s);
        for (int i = 0; i < c->n_workers; i++)
            worker_post_drain_check(&c->workers[i]);
    }
    return 0;
}

bool control_ready(void)
{
    return the_control != NULL && the_control->ready;
}

/* Writes a duration as configuration spells it: "10s" when whole seconds, else "1500ms". */
static const char *fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}

/* Closes the listeners and starts the shutdown_timeout drain (now: closes everything). */
static void begin_stop(struct control *c, bool now)
{
    c->ready = false;
    if (timer_armed(&c->delay_timer))
        timer_cancel(&c->loop, &c->delay_timer);
    if (!c->stopping) {
        char d[32];
        c->stopping = true;
        c->stop_deadline = loop_now(&c->loop) + c->rt->cfg->shutdown_timeout_ms;
        log_info("stopping: no new connections; open ones get up to %llu ms",
                 (unsigned long long)c->rt->cfg->shutdown_timeout_ms);
        log_info("shutdown: listeners closed, draining %u connection(s) for up to %s",
                 atomic_load(&runtime_active_connections),
                 fmt_duration(c->rt->cfg->shutdown_timeout_ms, d, sizeof(d)));
        if (c->rt->cfg->shutdown_delay_ms == 0) /* else sent when the delay began */
            services_stopping();
    }
    for (int i = 0; i < c->n_workers; i++)
        worker_post_stop(&c->workers[i], c->stop_deadline, now);
    if (now)
        log_info("second signal: closing every connection now");
    /* the current snapshot's listeners close once all workers stopped polling them */
    if (c->rt && retire(c, runtime_ref(c->rt)) < 0)
        runtime_unref(c->rt);
}

static void on_delay_timer(struct loop *loop, struct timer *t)
{
    (void)loop;
    (void)t;
    begin_stop(the_control, false);
}

static void on_signal(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    (void)events;
    struct control *c = the_control;
    struct signalfd_siginfo si;
    while (read(h->fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP: reloading %s", c->config_path);
            struct cfg_errors errs = {0};
            control_reload(c, &errs);
            cfg_errors_free(&errs);
        } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            c->signals_seen++;
            uint64_t delay = c->rt->cfg->shutdown_delay_ms;
            if (c->signals_seen == 1 && delay > 0) {
                char d[32];
                /* not ready at once; the listeners keep accepting until the timer fires */
                c->ready = false;
                log_info("shutdown: not ready, listeners close in %s (shutdown_delay)",
                         fmt_duration(delay, d, sizeof(d)));
                services_stopping();
                timer_arm(&c->loop, &c->delay_timer, loop_now(&c->loop) + delay);
            } else {
                begin_stop(c, c->signals_seen > 1);
            }
        }
    }
}

int control_start(struct control *c, const char *config_path)
{
    memset(c, 0, sizeof(*c));
    the_control = c;
    c->config_path = strdup(config_path);
    struct cfg_errors errs = {0};
    struct config *cfg = config_load(config_path, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        cfg_errors_free(&errs);
        free(c->config_path);
        return 1;
    }
    log_set_level(cfg->log.level);
    int log_fd = alog_open(cfg);
    if (log_fd == -2) {
        fprintf(stderr, "sluice: cannot open access log %s: %s\n", cfg->log.access,
                strerror(errno));
        config_unref(cfg);
        free(c->config_path);
        return 2;
    }
    apply_log_settings(cfg, log_fd);
    if (loop_init(&c->loop) < 0) {
        config_unref(cfg);
        free(c->config_path);
        return 2;
    }
    timer_init(&c->ack_timer, on_ack_timer);
    timer_init(&c->delay_timer, on_delay_timer);
    c->n_workers = cfg->workers;
    char err[512];
    c->rt = runtime_build(cfg, NULL, c->n_workers, err, sizeof(err));
    if (!c->rt) {
        fprintf(stderr, "sluice: %s\n", err);
        goto fail;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal_handler.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    signal_handler.cb = on_signal;
    if (signal_handler.fd < 0 || loop_add(&c->loop, &signal_handler, EPOLLIN) < 0) {
        fprintf(stderr, "sluice: cannot set up signals: %s\n", strerror(errno));
        goto fail;
    }
    if (services_start(c, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice: %s\n", err);
        goto fail;
    }
    c->workers = calloc((size_t)c->n_workers, sizeof(*c->workers));
    if (!c->workers)
        goto fail;
    for (int i = 0; i < c->n_workers; i++) {
        int r = worker_start(&c->workers[i], i, c->rt);
        if (r < 0) {
            fprintf(stderr, "sluice: cannot start worker %d: %s\n", i, strerror(-r));
            return 2;
        }
    }
    log_info("sluice ready: %zu listener(s), %zu backend(s), %d worker(s), config %s",
             c->rt->n_listeners, c->rt->n_backends, c->n_workers, config_path);
    if (c->rt->n_listeners == 0)
        log_warn("no listeners configured (admin API only)");
    c->ready = true;
    services_ready();
    return 0;
fail:
    /* start-up failure: give everything back so sanitizers see a clean exit */
    services_stop();
    if (c->rt) {
        runtime_close_listeners(c->rt, NULL);
        runtime_unref(c->rt);
    }
    free(c->config_path);
    if (signal_handler.fd >= 0)
        close(signal_handler.fd);
    loop_close(&c->loop);
    stats_registry_free();
    return 2;
}

int control_run(struct control *c)
{
    for (;;) {
        loop_run_once(&c->loop, 1000);
        if (!c->stopping)
            continue;
        bool all = true;
        for (int i = 0; i < c->n_workers; i++)
            all = all && atomic_load(&c->workers[i].stopped);
        if (all)
            break;
        if (!timer_armed(&c->ack_timer))
            timer_arm(&c->loop, &c->ack_timer, loop_now(&c->loop) + ACK_POLL_MS);
    }
    for (int i = 0; i < c->n_workers; i++)
        worker_join(&c->workers[i]);
    check_acks(c);
    services_stop();
    runtime_unref(c->rt);
    c->rt = NULL;
    free(c->workers);
    free(c->retiring);
    free(c->config_path);
    close(signal_handler.fd);
    alog_close();
    loop_close(&c->loop);
    stats_registry_free();
    log_info("stopped");
    return 0;
}
