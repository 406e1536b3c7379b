/* The access log line of a Layer 4 connection (JSON or text), appended to the worker's
 * buffer, which the worker writes out once per loop turn. */
#include <stdio.h>

#include "core/log.h"
#include "core/worker.h"
#include "l4/l4_conn.h"
#include "proxy/accesslog.h"

static void log_json(struct l4_conn *c, enum term termination, struct strbuf *sb)
{
    char now[32], client[ADDR_TEXT_MAX];
    log_format_time(now, sizeof(now));
    addr_format(&c->client_addr.sa, client, sizeof(client));
    uint64_t duration = loop_now(&c->conn.w->loop) - c->conn.start_ms;
    sb_puts(sb, "{");
    sb_json_kv_str(sb, "time", now);
    sb_json_kv_str(sb, "listener", c->conn.listener->cfg->name);
    sb_json_kv_str(sb, "client", client);
    sb_json_kv_str(sb, "backend", c->at.backend ? c->at.backend->cfg->name : NULL);
    sb_json_kv_str(sb, "server", c->at.server ? c->at.server->address : NULL);
    alog_kv_num(sb, "bytes_in", c->bytes_in);
    alog_kv_num(sb, "bytes_out", c->bytes_out);
    alog_kv_num(sb, "duration_ms", duration);
    if (c->state == L4_ESTABLISHED) /* connected, TLS to the server included */
        alog_kv_num(sb, "connect_ms", c->connect_ms);
    else
        sb_puts(sb, ",\"connect_ms\":null");
    alog_kv_num(sb, "retries", c->at.n_tried > 1 ? c->at.n_tried - 1u : 0u);
    sb_json_kv_str(sb, "termination", term_name(termination));
    tls_conn_info_log(sb, c->tls);
    if (c->error)
        sb_json_kv_str(sb, "error", c->error);
    sb_puts(sb, "}\n");
}

static void log_text(struct l4_conn *c, enum term termination, struct strbuf *sb)
{
    char now[32], client[ADDR_TEXT_MAX];
    log_format_time(now, sizeof(now));
    addr_format(&c->client_addr.sa, client, sizeof(client));
    sb_printf(sb, "%s %s %s -> %s/%s in=%llu out=%llu %llums connect=%llums %s%s%s%s%s%s\n", now,
              c->conn.listener->cfg->name, client, c->at.backend ? c->at.backend->cfg->name : "-",
              c->at.server ? c->at.server->address : "-", (unsigned long long)c->bytes_in,
              (unsigned long long)c->bytes_out,
              (unsigned long long)(loop_now(&c->conn.w->loop) - c->conn.start_ms),
              (unsigned long long)c->connect_ms, term_name(termination),
              c->tls && c->tls->sni[0] ? " sni=" : "", c->tls ? c->tls->sni : "",
              c->error ? " error=\"" : "", c->error ? c->error : "", c->error ? "\"" : "");
}

void l4_log_access(struct l4_conn *c, enum term termination)
{
    struct strbuf *sb = alog_begin(c->conn.w);
    if (!sb)
        return;
    if (alog_text())
        log_text(c, termination, sb);
    else
        log_json(c, termination, sb);
    alog_end(c->conn.w);
}
