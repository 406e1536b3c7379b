/* The end of an HTTP exchange: its access-log line (JSON or text, the fields of
 * shared/spec/http.md "Access log") and its metrics (requests by listener, backend and
 * status class, durations, generated statuses by reason, bytes). Called once per
 * exchange, whatever its end; a WebSocket tunnel gets its line when the tunnel ends. */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "http/h1_conn.h"
#include "http/h1_fields.h"
#include "proxy/accesslog.h"

/* The per-(listener, worker) request counters of backend b (NULL: answered without one). */
static struct http_by_backend *by_backend(struct listener_slot *ls, struct backend_stats *b)
{
    if (!b)
        return &ls->http[0];
    for (size_t i = 1; i < HTTP_BACKENDS_PER_LISTENER; i++) {
        struct backend_stats *cur =
            atomic_load_explicit(&ls->http[i].backend, memory_order_acquire);
        if (cur == b)
            return &ls->http[i];
        if (!cur) {
            atomic_store_explicit(&ls->http[i].backend, b, memory_order_release);
            return &ls->http[i];
        }
    }
    return &ls->http[0]; /* more backends than slots: counted without a backend label */
}

/* The exchange's protocol: HTTP/2 for a stream of an HTTP/2 connection, else the version
 * of the request line once the head was read; -1 when unknown (a head refused before it
 * was read: logged with "protocol":null and not counted by protocol). */
static int protocol_of(const struct h1_conn *c)
{
    if (c->stream)
        return HTTP_PROTO_2;
    if (c->t->head_len == 0)
        return -1;
    return c->t->req.minor_version ? HTTP_PROTO_11 : HTTP_PROTO_10;
}

static void count(struct h1_conn *c, uint64_t duration_ms)
{
    struct h1_txn *t = c->t;
    struct worker *w = c->conn.w;
    struct listener_slot *ls = &c->conn.listener->stats->slots[w->index];
    struct http_by_backend *hb = by_backend(ls, t->backend ? t->backend->stats : NULL);
    if (t->status >= 100 && t->status <= 599)
        counter_add(&hb->codes[t->status / 100 - 1], 1);
    hist_observe(&hb->duration, duration_ms * 1000);
    if (t->err_kind > 0 && t->err_kind <= HTTP_ERR_COUNT)
        counter_add(&ls->http_errors[t->err_kind - 1], 1);
    int proto = protocol_of(c);
    if (proto >= 0)
        counter_add(&ls->http_protocols[proto], 1);
    counter_add(&ls->bytes_in, t->bytes_in);
    counter_add(&ls->bytes_out, t->bytes_out);
    if (t->at.server) {
        counter_add(&t->at.server->slots[w->index].bytes_in, t->bytes_in);
        counter_add(&t->at.server->slots[w->index].bytes_out, t->bytes_out);
    }
    if (t->in_tunnel)
        counter_add(&ls->ws_active, (unsigned long)-1);
}

static struct h1_str path_only(const struct h1_txn *t, struct h1_str *query)
{
    struct h1_str p = t->req.path;
    if (t->req.form == H1_ASTERISK_FORM)
        p = (struct h1_str){"*", 1};
    const char *q = memchr(p.p, '?', p.len);
    *query = (struct h1_str){NULL, 0};
    if (q) {
        *query = (struct h1_str){q + 1, p.len - (size_t)(q + 1 - p.p)};
        p.len = (size_t)(q - p.p);
    }
    return p;
}

static void log_json(struct h1_conn *c, struct strbuf *sb, uint64_t duration)
{
    struct h1_txn *t = c->t;
    char now[32], client[ADDR_TEXT_MAX];
    log_format_time(now, sizeof(now));
    addr_format(&c->client_addr.sa, client, sizeof(client));
    bool parsed = t->head_len > 0;
    sb_puts(sb, "{");
    sb_json_kv_str(sb, "time", now);
    sb_json_kv_str(sb, "listener", c->conn.listener->cfg->name);
    sb_json_kv_str(sb, "client", client);
    sb_json_kv_str(sb, "backend", t->backend ? t->backend->cfg->name : NULL);
    sb_json_kv_str(sb, "server", t->at.server ? t->at.server->address : NULL);
    if (parsed) {
        struct h1_str q, p = path_only(t, &q);
        const struct h1_header *ua = h1_find_header(&t->req, "user-agent");
        sb_json_kv_strn(sb, "method", t->req.method.p, t->req.method.len);
        sb_json_kv_strn(sb, "host", t->m.authority.p, t->m.authority.len);
        sb_json_kv_strn(sb, "path", p.p, p.len);
        sb_json_kv_strn(sb, "query", q.p, q.len);
        sb_json_kv_str(sb, "protocol", http_proto_names[protocol_of(c)]);
        sb_json_kv_strn(sb, "user_agent", ua ? ua->value.p : NULL, ua ? ua->value.len : 0);
    } else {
        int proto = protocol_of(c); /* an HTTP/2 stream is HTTP/2 before its head is read */
        sb_puts(sb, ",\"method\":null,\"host\":null,\"path\":null,\"query\":null");
        sb_json_kv_str(sb, "protocol", proto >= 0 ? http_proto_names[proto] : NULL);
        sb_puts(sb, ",\"user_agent\":null");
    }
    if (t->status)
        alog_kv_num(sb, "status", (unsigned)t->status);
    else
        sb_puts(sb, ",\"status\":null");
    sb_json_kv_strn(sb, "request_id", t->request_id.p, t->request_id.len);
    if (t->route >= 0 && t->rp) /* rp: routed (route is 0 before) */
        alog_kv_num(sb, "route", (unsigned)t->route);
    else
        sb_puts(sb, ",\"route\":null");
    if (t->resp_head)
        alog_kv_num(sb, "upstream_ms", t->resp_ms - t->send_ms);
    else
        sb_puts(sb, ",\"upstream_ms\":null");
    alog_kv_num(sb, "bytes_in", t->bytes_in);
    alog_kv_num(sb, "bytes_out", t->bytes_out);
    alog_kv_num(sb, "duration_ms", duration);
    if (t->connected)
        alog_kv_num(sb, "connect_ms", t->connect_ms);
    else
        sb_puts(sb, ",\"connect_ms\":null");
    alog_kv_num(sb, "retries", t->at.n_tried > 1 ? t->at.n_tried - 1u : 0u);
    sb_puts(sb, t->reused ? ",\"reused\":true" : ",\"reused\":false");
    sb_json_kv_str(sb, "termination", term_name(t->term));
    tls_conn_info_log(sb, c->tls);
    if (t->error)
        sb_json_kv_str(sb, "error", t->error);
    sb_puts(sb, "}\n");
}

static void log_text(struct h1_conn *c, struct strbuf *sb, uint64_t duration)
{
    struct h1_txn *t = c->t;
    char now[32], client[ADDR_TEXT_MAX];
    log_format_time(now, sizeof(now));
    addr_format(&c->client_addr.sa, client, sizeof(client));
    struct h1_str q = {NULL, 0}, p = {"-", 1}, m = {"-", 1};
    if (t->head_len) {
        p = path_only(t, &q);
        m = t->req.method;
    }
    sb_printf(
        sb, "%s %s %s \"%.*s %.*s%s%.*s\" %d -> %s/%s in=%llu out=%llu %llums %s id=%.*s%s%s%s\n",
        now, c->conn.listener->cfg->name, client, (int)m.len, m.p, (int)p.len, p.p, q.p ? "?" : "",
        (int)q.len, q.p ? q.p : "", t->status, t->backend ? t->backend->cfg->name : "-",
        t->at.server ? t->at.server->address : "-", (unsigned long long)t->bytes_in,
        (unsigned long long)t->bytes_out, (unsigned long long)duration, term_name(t->term),
        (int)t->request_id.len, t->request_id.p ? t->request_id.p : "", t->error ? " error=\"" : "",
        t->error ? t->error : "", t->error ? "\"" : "");
}

void http_log_exchange(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    if (t->logged || !t->start_ms)
        return;
    t->logged = true;
    uint64_t duration = loop_now(&c->conn.w->loop) - t->start_ms;
    count(c, duration);
    struct strbuf *sb = alog_begin(c->conn.w);
    if (!sb)
        return;
    if (alog_text())
        log_text(c, sb, duration);
    else
        log_json(c, sb, duration);
    alog_end(c->conn.w);
}
