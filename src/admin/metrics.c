/* Prometheus text exposition (format 0.0.4) of the current snapshot's listeners, backends
 * and servers, plus process-wide metrics. Metric names are part of the operations
 * contract (shared/spec/operations.md); the extras are listed in docs/operations.md.
 *
 * Per-worker slots are summed on read. A histogram's buckets are summed first and its
 * _count is the sum of its buckets, so _bucket{le="+Inf"} always equals _count even while
 * workers keep writing. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin_http.h"
#include "core/control.h"
#include "core/runtime.h"
#include "upstream/server.h"
#include "version.h"

static double start_time;

void metrics_note_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const tls_version_names[TLS_VERSIONS] = {"TLSv1", "TLSv1.1", "TLSv1.2",
                                                            "TLSv1.3"};

/* Writes a label value escaped per the exposition format (\\, \" and \n). */
static void label_value(struct strbuf *sb, const char *v)
{
    sb_puts(sb, "\"");
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\')
            sb_puts(sb, "\\\\");
        else if (*p == '"')
            sb_puts(sb, "\\\"");
        else if (*p == '\n')
            sb_puts(sb, "\\n");
        else
            sb_append(sb, p, 1);
    }
    sb_puts(sb, "\"");
}

/* "{k1="v1",k2="v2"}" for up to two labels (k2 may be NULL). */
static void labels(struct strbuf *sb, const char *k1, const char *v1, const char *k2,
                   const char *v2)
{
    sb_printf(sb, "{%s=", k1);
    label_value(sb, v1);
    if (k2) {
        sb_printf(sb, ",%s=", k2);
        label_value(sb, v2);
    }
    sb_puts(sb, "}");
}

static void header(struct strbuf *sb, const char *name, const char *type, const char *help)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct strbuf *sb, const char *name, const char *k1, const char *v1,
                   const char *k2, const char *v2, unsigned long long value)
{
    sb_puts(sb, name);
    if (k1)
        labels(sb, k1, v1, k2, v2);
    sb_printf(sb, " %llu\n", value);
}

/* The _bucket, _sum and _count lines of histogram h (already summed over workers). */
static void histogram(struct strbuf *sb, const char *name, const char *k, const char *v,
                      const struct histogram *h)
{
    unsigned long long cum = 0;
    for (size_t i = 0; i <= HIST_BOUNDS; i++) {
        cum += counter_get(&h->buckets[i]);
        sb_printf(sb, "%s_bucket{%s=", name, k);
        label_value(sb, v);
        if (i < HIST_BOUNDS)
            sb_printf(sb, ",le=\"%g\"} %llu\n", hist_bounds[i], cum);
        else
            sb_printf(sb, ",le=\"+Inf\"} %llu\n", cum);
    }
    sb_printf(sb, "%s_sum", name);
    labels(sb, k, v, NULL, NULL);
    sb_printf(sb, " %.6f\n", (double)counter_get(&h->sum_us) / 1e6);
    sb_printf(sb, "%s_count", name);
    labels(sb, k, v, NULL, NULL);
    sb_printf(sb, " %llu\n", cum);
}

static unsigned long long listener_sum(const struct listener_stats *st, size_t offset)
{
    unsigned long long v = 0;
    for (int i = 0; i < st->workers; i++)
        v += counter_get((const atomic_ulong *)((const char *)&st->slots[i] + offset));
    return v;
}

static unsigned long long server_sum(const struct server *s, size_t offset)
{
    unsigned long long v = 0;
    for (int i = 0; i < s->workers; i++)
        v += counter_get((const atomic_ulong *)((const char *)&s->slots[i] + offset));
    return v;
}

/* One counter or gauge family with a value per listener. */
static void listener_family(struct strbuf *sb, const struct runtime *rt, const char *name,
                            const char *type, const char *help, size_t offset)
{
    header(sb, name, type, help);
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        sample(sb, name, "listener", l->cfg->name, NULL, NULL, listener_sum(l->stats, offset));
    }
}

/* One family with a value per (backend, server); `get` reads the value. */
static void server_family(struct strbuf *sb, const struct runtime *rt, const char *name,
                          const char *type, const char *help,
                          unsigned long long (*get)(const struct server *, size_t), size_t offset)
{
    header(sb, name, type, help);
    for (size_t b = 0; b < rt->n_backends; b++) {
        const struct rt_backend *be = &rt->backends[b];
        for (size_t i = 0; i < be->n_servers; i++) {
            const struct server *s = be->servers[i];
            sample(sb, name, "backend", be->cfg->name, "server", s->address, get(s, offset));
        }
    }
}

static unsigned long long get_active(const struct server *s, size_t off)
{
    (void)off;
    return atomic_load(&s->lb.active);
}

static unsigned long long get_up(const struct server *s, size_t off)
{
    (void)off;
    return atomic_load(&s->healthy) ? 1 : 0;
}

static unsigned long long get_weight(const struct server *s, size_t off)
{
    (void)off;
    return (unsigned long long)atomic_load(&s->lb.weight);
}

static void listener_metrics(struct strbuf *sb, const struct runtime *rt)
{
    listener_family(sb, rt, "sluice_connections_total", "counter", "Client connections accepted.",
                    offsetof(struct listener_slot, connections));
    header(sb, "sluice_connections_active", "gauge", "Client connections open now.");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        sample(sb, "sluice_connections_active", "listener", l->cfg->name, NULL, NULL,
               atomic_load(&l->stats->active));
    }
    listener_family(sb, rt, "sluice_bytes_received_total", "counter",
                    "Bytes received from clients (counted when a connection ends).",
                    offsetof(struct listener_slot, bytes_in));
    listener_family(sb, rt, "sluice_bytes_sent_total", "counter",
                    "Bytes sent to clients (counted when a connection ends).",
                    offsetof(struct listener_slot, bytes_out));
    listener_family(sb, rt, "sluice_listener_refused_total", "counter",
                    "Connections closed without trying a server: no route, no usable "
                    "server, bad PROXY header, unreadable passthrough ClientHello.",
                    offsetof(struct listener_slot, refused));

    header(sb, "sluice_connection_duration_seconds", "histogram",
           "Duration of client connections (tcp/tls listeners).");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        struct histogram h;
        memset(&h, 0, sizeof(h));
        for (int w = 0; w < l->stats->workers; w++)
            hist_sum_into(&h, &l->stats->slots[w].duration);
        histogram(sb, "sluice_connection_duration_seconds", "listener", l->cfg->name, &h);
    }

    header(sb, "sluice_tls_handshakes_total", "counter",
           "TLS handshakes completed by TLS-terminating listeners, by protocol version.");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (!l->cfg->has_tls)
            continue;
        for (int v = 0; v < TLS_VERSIONS; v++)
            sample(sb, "sluice_tls_handshakes_total", "listener", l->cfg->name, "version",
                   tls_version_names[v],
                   listener_sum(l->stats, offsetof(struct listener_slot, tls_handshakes) +
                                              (size_t)v * sizeof(atomic_ulong)));
    }
    header(sb, "sluice_tls_handshake_errors_total", "counter",
           "TLS handshakes that failed or timed out.");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (l->cfg->has_tls)
            sample(sb, "sluice_tls_handshake_errors_total", "listener", l->cfg->name, NULL, NULL,
                   listener_sum(l->stats, offsetof(struct listener_slot, tls_handshake_errors)));
    }
    header(sb, "sluice_tls_handshake_duration_seconds", "histogram",
           "Duration of completed TLS handshakes on TLS-terminating listeners.");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (!l->cfg->has_tls)
            continue;
        struct histogram h;
        memset(&h, 0, sizeof(h));
        for (int w = 0; w < l->stats->workers; w++)
            hist_sum_into(&h, &l->stats->slots[w].tls_handshake);
        histogram(sb, "sluice_tls_handshake_duration_seconds", "listener", l->cfg->name, &h);
    }
}

static void backend_metrics(struct strbuf *sb, const struct runtime *rt)
{
    server_family(sb, rt, "sluice_backend_connections_active", "gauge",
                  "Connections open to each server now.", get_active, 0);
    server_family(sb, rt, "sluice_backend_connect_failures_total", "counter",
                  "Failed connection attempts to each server (refused, timed out, TLS).",
                  server_sum, offsetof(struct server_slot, connect_failures));
    server_family(sb, rt, "sluice_server_connections_total", "counter",
                  "Connections established to each server (after TLS for TLS backends).",
                  server_sum, offsetof(struct server_slot, connections));
    server_family(sb, rt, "sluice_server_up", "gauge",
                  "1 when the server passes its health checks (or has none), else 0.", get_up, 0);
    server_family(sb, rt, "sluice_server_weight", "gauge",
                  "Current balancing weight of each server (0: takes no new connections).",
                  get_weight, 0);
    header(sb, "sluice_server_admin_state", "gauge",
           "Administrative state of each server: 1 for the current state, else 0.");
    for (size_t b = 0; b < rt->n_backends; b++) {
        const struct rt_backend *be = &rt->backends[b];
        for (size_t i = 0; i < be->n_servers; i++) {
            const struct server *s = be->servers[i];
            int admin = atomic_load(&s->admin);
            for (int st = SERVER_ENABLED; st <= SERVER_DISABLED; st++) {
                sb_puts(sb, "sluice_server_admin_state{backend=");
                label_value(sb, be->cfg->name);
                sb_puts(sb, ",server=");
                label_value(sb, s->address);
                sb_puts(sb, ",state=");
                label_value(sb, server_admin_name(st));
                sb_printf(sb, "} %d\n", admin == st);
            }
        }
    }
    header(sb, "sluice_backend_connect_duration_seconds", "histogram",
           "Time to establish connections to the backend's servers (TCP, plus TLS when "
           "the backend uses TLS).");
    for (size_t b = 0; b < rt->n_backends; b++) {
        const struct rt_backend *be = &rt->backends[b];
        struct histogram h;
        memset(&h, 0, sizeof(h));
        for (int w = 0; w < be->stats->workers; w++)
            hist_sum_into(&h, &be->stats->slots[w].connect);
        histogram(sb, "sluice_backend_connect_duration_seconds", "backend", be->cfg->name, &h);
    }
}

static const char *const class_names[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

/* The http_by_backend entries of listener l for backend b (name, or "" for none) summed
 * over workers: each worker fills its own table, so an entry's index differs by worker. */
static void http_by_backend_sum(const struct listener_stats *st, const struct backend_stats *b,
                                unsigned long long codes[5], struct histogram *h)
{
    for (int w = 0; w < st->workers; w++) {
        const struct listener_slot *ls = &st->slots[w];
        for (size_t i = 0; i < HTTP_BACKENDS_PER_LISTENER; i++) {
            const struct http_by_backend *e = &ls->http[i];
            struct backend_stats *eb =
                atomic_load_explicit(&((struct http_by_backend *)e)->backend, memory_order_acquire);
            if ((i == 0 && b) || (i > 0 && eb != b) || (i > 0 && !eb))
                continue;
            for (int k = 0; k < 5; k++)
                codes[k] += counter_get(&e->codes[k]);
            hist_sum_into(h, &e->duration);
        }
    }
}

/* One http listener's request families for backend b (NULL: answered without one). */
static void http_requests(struct strbuf *sb, const struct rt_listener *l,
                          const struct backend_stats *b, bool duration)
{
    unsigned long long codes[5] = {0};
    struct histogram h;
    memset(&h, 0, sizeof(h));
    http_by_backend_sum(l->stats, b, codes, &h);
    if (!duration) {
        for (int k = 0; k < 5; k++) {
            if (!codes[k])
                continue;
            sb_puts(sb, "sluice_requests_total{listener=");
            label_value(sb, l->cfg->name);
            sb_puts(sb, ",backend=");
            label_value(sb, b ? b->name : "");
            sb_printf(sb, ",code=\"%s\"} %llu\n", class_names[k], codes[k]);
        }
        return;
    }
    if (counter_get(&h.count) == 0 && !b)
        return;
    unsigned long long cum = 0;
    for (size_t i = 0; i <= HIST_BOUNDS; i++) {
        cum += counter_get(&h.buckets[i]);
        sb_puts(sb, "sluice_request_duration_seconds_bucket{listener=");
        label_value(sb, l->cfg->name);
        sb_puts(sb, ",backend=");
        label_value(sb, b ? b->name : "");
        if (i < HIST_BOUNDS)
            sb_printf(sb, ",le=\"%g\"} %llu\n", hist_bounds[i], cum);
        else
            sb_printf(sb, ",le=\"+Inf\"} %llu\n", cum);
    }
    sb_puts(sb, "sluice_request_duration_seconds_sum");
    labels(sb, "listener", l->cfg->name, "backend", b ? b->name : "");
    sb_printf(sb, " %.6f\n", (double)counter_get(&h.sum_us) / 1e6);
    sb_puts(sb, "sluice_request_duration_seconds_count");
    labels(sb, "listener", l->cfg->name, "backend", b ? b->name : "");
    sb_printf(sb, " %llu\n", cum);
}

static void http_metrics(struct strbuf *sb, const struct runtime *rt)
{
    header(sb, "sluice_requests_total", "counter",
           "HTTP requests by listener, backend and status class (http listeners).");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            header(sb, "sluice_request_duration_seconds", "histogram",
                   "HTTP request duration, first request byte to last response byte.");
        for (size_t i = 0; i < rt->n_listeners; i++) {
            const struct rt_listener *l = &rt->listeners[i];
            if (!cfg_proto_is_http(l->cfg->protocol))
                continue;
            http_requests(sb, l, NULL, pass == 1);
            for (size_t b = 0; b < rt->n_backends; b++)
                if (cfg_proto_is_http(rt->backends[b].cfg->protocol))
                    http_requests(sb, l, rt->backends[b].stats, pass == 1);
        }
    }
    header(sb, "sluice_upstream_response_seconds", "histogram",
           "Time from an HTTP request sent to a server to its response head.");
    for (size_t b = 0; b < rt->n_backends; b++) {
        const struct rt_backend *be = &rt->backends[b];
        if (!cfg_proto_is_http(be->cfg->protocol))
            continue;
        struct histogram h;
        memset(&h, 0, sizeof(h));
        for (int w = 0; w < be->stats->workers; w++)
            hist_sum_into(&h, &be->stats->slots[w].upstream_response);
        histogram(sb, "sluice_upstream_response_seconds", "backend", be->cfg->name, &h);
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } gauges[] = {
        {"sluice_http_requests_active", "HTTP requests in progress.",
         offsetof(struct listener_slot, http_active)},
        {"sluice_websocket_tunnels_active", "WebSocket tunnels open.",
         offsetof(struct listener_slot, ws_active)},
        {"sluice_http2_streams_active", "HTTP/2 streams open.",
         offsetof(struct listener_slot, h2_streams)},
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        header(sb, gauges[g].name, "gauge", gauges[g].help);
        for (size_t i = 0; i < rt->n_listeners; i++) {
            const struct rt_listener *l = &rt->listeners[i];
            if (cfg_proto_is_http(l->cfg->protocol))
                sample(sb, gauges[g].name, "listener", l->cfg->name, NULL, NULL,
                       listener_sum(l->stats, gauges[g].off));
        }
    }
    header(sb, "sluice_http_errors_total", "counter",
           "HTTP responses sluice generated itself, by reason.");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (!cfg_proto_is_http(l->cfg->protocol))
            continue;
        for (int k = 0; k < HTTP_ERR_COUNT; k++)
            sample(sb, "sluice_http_errors_total", "listener", l->cfg->name, "reason",
                   http_err_names[k],
                   listener_sum(l->stats, offsetof(struct listener_slot, http_errors) +
                                              (size_t)k * sizeof(atomic_ulong)));
    }
    header(sb, "sluice_http_requests_by_protocol_total", "counter",
           "HTTP requests by protocol (HTTP/1.0, HTTP/1.1, HTTP/2), counted as they end.");
    for (size_t i = 0; i < rt->n_listeners; i++) {
        const struct rt_listener *l = &rt->listeners[i];
        if (!cfg_proto_is_http(l->cfg->protocol))
            continue;
        for (int k = 0; k < HTTP_PROTO_COUNT; k++)
            sample(sb, "sluice_http_requests_by_protocol_total", "listener", l->cfg->name,
                   "protocol", http_proto_names[k],
                   listener_sum(l->stats, offsetof(struct listener_slot, http_protocols) +
                                              (size_t)k * sizeof(atomic_ulong)));
    }
    header(sb, "sluice_backend_pool_idle", "gauge", "Idle keep-alive connections to servers.");
    header(sb, "sluice_backend_pool_reused_total", "counter",
           "HTTP requests sent on a pooled (reused) server connection.");
    for (size_t b = 0; b < rt->n_backends; b++) {
        const struct rt_backend *be = &rt->backends[b];
        if (!cfg_proto_is_http(be->cfg->protocol))
            continue;
        unsigned long long idle = 0, reused = 0;
        for (size_t i = 0; i < be->n_servers; i++)
            idle += server_sum(be->servers[i], offsetof(struct server_slot, pool_idle));
        for (int w = 0; w < be->stats->workers; w++)
            reused += counter_get(&be->stats->slots[w].pool_reused);
        sample(sb, "sluice_backend_pool_idle", "backend", be->cfg->name, NULL, NULL, idle);
        sample(sb, "sluice_backend_pool_reused_total", "backend", be->cfg->name, NULL, NULL,
               reused);
    }
}

/* Reads this process's CPU time and resident memory from /proc/self/stat. */
static int proc_stat(double *cpu_seconds, unsigned long long *rss_bytes)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p)
        return -1;
    unsigned long utime, stime;
    long rss;
    /* fields after ")": 3 state ... 14 utime 15 stime ... 24 rss */
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
               "%*d %*u %*u %ld",
               &utime, &stime, &rss) != 3)
        return -1;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    *cpu_seconds = (double)(utime + stime) / (double)(tick > 0 ? tick : 100);
    *rss_bytes = (unsigned long long)(rss > 0 ? rss : 0) * (unsigned long long)page;
    return 0;
}

static void process_metrics(struct strbuf *sb)
{
    header(sb, "sluice_build_info", "gauge", "Always 1; the versions are in the labels.");
    sb_puts(sb, "sluice_build_info{version=");
    label_value(sb, SLUICE_VERSION);
    sb_puts(sb, ",openssl=");
    label_value(sb, OpenSSL_version(OPENSSL_VERSION_STRING));
    sb_puts(sb, "} 1\n");
    header(sb, "sluice_ready", "gauge",
           "1 while /readyz answers 200 (started, no SIGTERM yet), else 0.");
    sb_printf(sb, "sluice_ready %d\n", control_ready() ? 1 : 0);
    header(sb, "sluice_process_connections_active", "gauge",
           "Client connections open now, all listeners (the global max_connections cap).");
    sb_printf(sb, "sluice_process_connections_active %u\n",
              atomic_load(&runtime_active_connections));
    header(sb, "sluice_config_reloads_total", "counter", "Configuration reloads by result.");
    sb_printf(sb, "sluice_config_reloads_total{result=\"success\"} %lu\n",
              atomic_load(&runtime_reloads_ok));
    sb_printf(sb, "sluice_config_reloads_total{result=\"failure\"} %lu\n",
              atomic_load(&runtime_reloads_failed));
    header(sb, "process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch in seconds.");
    sb_printf(sb, "process_start_time_seconds %.3f\n", start_time);
    double cpu;
    unsigned long long rss;
    if (proc_stat(&cpu, &rss) == 0) {
        header(sb, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
        sb_printf(sb, "process_cpu_seconds_total %.2f\n", cpu);
        header(sb, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        sb_printf(sb, "process_resident_memory_bytes %llu\n", rss);
    }
}

void metrics_render(const struct runtime *rt, struct strbuf *out)
{
    listener_metrics(out, rt);
    backend_metrics(out, rt);
    http_metrics(out, rt);
    process_metrics(out);
}
