/* Unit tests for the Prometheus writer (src/admin/metrics.c): label values are escaped as
 * the text format 0.0.4 requires (backslash as \\, double quote as \", line feed as \n,
 * everything else as is), on every kind of line that carries a label value: counters and
 * gauges per listener, per (backend, server), the admin state triple, histogram buckets,
 * _sum and _count, and the TLS families.
 *
 * Names from the configuration cannot contain these characters today (names are
 * [A-Za-z0-9_.-], addresses are checked), so the writer is driven here with a runtime
 * built by hand whose listener, backend and server carry them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_http.h"
#include "core/runtime.h"
#include "core/stats.h"
#include "core/strbuf.h"
#include "upstream/server.h"
#include "version.h"

/* Raw names (C escapes) and what the exposition must show for them between quotes. */
#define LISTENER_RAW "we\"ird\\list\nener"
#define LISTENER_ESC "we\\\"ird\\\\list\\nener"
#define BACKEND_RAW "back\\end\"\n"
#define BACKEND_ESC "back\\\\end\\\"\\n"
#define SERVER_RAW "\"h\\o\nst\":9"
#define SERVER_ESC "\\\"h\\\\o\\nst\\\":9"

struct fixture {
    struct cfg_listener cl;
    struct cfg_backend cb;
    struct cfg_server cs;
    struct rt_listener l;
    struct rt_backend b;
    struct server *srv;
    struct runtime rt;
    struct strbuf out;
};

static void build(struct fixture *f, bool tls)
{
    memset(f, 0, sizeof(*f));
    f->cl.name = LISTENER_RAW;
    f->cl.has_tls = tls;
    f->l.cfg = &f->cl;
    f->l.stats = listener_stats_get(f->cl.name, 1);
    assert_non_null(f->l.stats);
    counter_add(&f->l.stats->slots[0].connections, 7);
    hist_observe(&f->l.stats->slots[0].duration, 3000); /* 3 ms */

    f->cs.address = SERVER_RAW;
    f->cs.weight = 5;
    f->cb.name = BACKEND_RAW;
    f->b.cfg = &f->cb;
    f->b.stats = backend_stats_get(f->cb.name, 1);
    assert_non_null(f->b.stats);
    f->srv = server_new(f->cb.name, &f->cs, false, 1);
    assert_non_null(f->srv);
    counter_add(&f->srv->slots[0].connect_failures, 2);
    f->b.servers = &f->srv;
    f->b.n_servers = 1;

    f->rt.listeners = &f->l;
    f->rt.n_listeners = 1;
    f->rt.backends = &f->b;
    f->rt.n_backends = 1;
    f->rt.workers = 1;
    metrics_render(&f->rt, &f->out);
    assert_false(f->out.failed);
    sb_append(&f->out, "", 1); /* NUL-terminated for the string checks */
}

static void release(struct fixture *f)
{
    server_unref(f->srv);
    sb_free(&f->out);
    stats_registry_free();
}

/* The output has exactly this line. */
static void expect_line(const struct fixture *f, const char *line)
{
    const char *text = f->out.data;
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    }
    fail_msg("no line \"%s\" in:\n%s", line, text);
}

/* Every line is a comment or starts with a metric name: a raw line feed inside a label
 * value would start a line with the rest of the value. No raw quote or backslash is left
 * unescaped inside a label value either (checked by scanning each value). */
static void expect_well_formed(const struct fixture *f)
{
    const char *p = f->out.data;
    int samples = 0;
    while (*p) {
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        if (*p != '#') {
            if (strncmp(p, "sluice_", 7) != 0 && strncmp(p, "process_", 8) != 0)
                fail_msg("line does not start with a metric name: %.*s", (int)(end - p), p);
            samples++;
            const char *q = p;
            while (q < end && *q != '{' && *q != ' ')
                q++;
            if (*q == '{') {
                /* name="value" pairs: inside a value only \\, \" and \n may follow a \ */
                q++;
                while (*q != '}') {
                    while (*q != '=')
                        q++;
                    assert_int_equal(q[1], '"');
                    q += 2;
                    while (*q != '"') {
                        assert_true(q < end);
                        if (*q == '\\') {
                            if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                                fail_msg("bad escape \\%c in: %.*s", q[1], (int)(end - p), p);
                            q++;
                        }
                        q++;
                    }
                    q++;
                    if (*q == ',')
                        q++;
                    else
                        assert_int_equal(*q, '}');
                }
                assert_int_equal(q[1], ' ');
            }
        }
        p = end + 1;
    }
    assert_true(samples > 40);
}

static void test_label_values_escaped(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, false);
    expect_well_formed(&f);
    expect_line(&f, "sluice_connections_total{listener=\"" LISTENER_ESC "\"} 7");
    expect_line(&f, "sluice_connections_active{listener=\"" LISTENER_ESC "\"} 0");
    expect_line(&f, "sluice_bytes_received_total{listener=\"" LISTENER_ESC "\"} 0");
    expect_line(&f, "sluice_listener_refused_total{listener=\"" LISTENER_ESC "\"} 0");
    expect_line(&f, "sluice_connection_duration_seconds_bucket{listener=\"" LISTENER_ESC
                    "\",le=\"0.0025\"} 0");
    expect_line(&f, "sluice_connection_duration_seconds_bucket{listener=\"" LISTENER_ESC
                    "\",le=\"0.005\"} 1");
    expect_line(&f, "sluice_connection_duration_seconds_bucket{listener=\"" LISTENER_ESC
                    "\",le=\"+Inf\"} 1");
    expect_line(&f, "sluice_connection_duration_seconds_sum{listener=\"" LISTENER_ESC
                    "\"} 0.003000");
    expect_line(&f, "sluice_connection_duration_seconds_count{listener=\"" LISTENER_ESC "\"} 1");
    expect_line(&f, "sluice_backend_connect_failures_total{backend=\"" BACKEND_ESC
                    "\",server=\"" SERVER_ESC "\"} 2");
    expect_line(&f, "sluice_server_weight{backend=\"" BACKEND_ESC "\",server=\"" SERVER_ESC
                    "\"} 5");
    expect_line(&f, "sluice_server_up{backend=\"" BACKEND_ESC "\",server=\"" SERVER_ESC "\"} 1");
    expect_line(&f, "sluice_server_admin_state{backend=\"" BACKEND_ESC "\",server=\"" SERVER_ESC
                    "\",state=\"enabled\"} 1");
    expect_line(&f, "sluice_server_admin_state{backend=\"" BACKEND_ESC "\",server=\"" SERVER_ESC
                    "\",state=\"drain\"} 0");
    expect_line(&f, "sluice_backend_connect_duration_seconds_bucket{backend=\"" BACKEND_ESC
                    "\",le=\"+Inf\"} 0");
    expect_line(&f, "sluice_backend_connect_duration_seconds_count{backend=\"" BACKEND_ESC
                    "\"} 0");
    expect_line(&f, "sluice_build_info{version=\"" SLUICE_VERSION "\"} 1");
    /* no TLS families' samples for a tcp listener */
    assert_null(strstr(f.out.data, "sluice_tls_handshakes_total{"));
    release(&f);
}

static void test_label_values_escaped_on_tls_families(void **state)
{
    (void)state;
    struct fixture f;
    build(&f, true);
    expect_well_formed(&f);
    expect_line(&f, "sluice_tls_handshakes_total{listener=\"" LISTENER_ESC
                    "\",version=\"TLSv1.3\"} 0");
    expect_line(&f, "sluice_tls_handshake_errors_total{listener=\"" LISTENER_ESC "\"} 0");
    expect_line(&f, "sluice_tls_handshake_duration_seconds_bucket{listener=\"" LISTENER_ESC
                    "\",le=\"+Inf\"} 0");
    release(&f);
}

/* Other bytes, including UTF-8 and a tab, are written unchanged. */
static void test_other_bytes_unchanged(void **state)
{
    (void)state;
    struct fixture f;
    memset(&f, 0, sizeof(f));
    f.cl.name = "caf\xc3\xa9\tx";
    f.l.cfg = &f.cl;
    f.l.stats = listener_stats_get(f.cl.name, 1);
    assert_non_null(f.l.stats);
    f.rt.listeners = &f.l;
    f.rt.n_listeners = 1;
    metrics_render(&f.rt, &f.out);
    sb_append(&f.out, "", 1);
    expect_line(&f, "sluice_connections_total{listener=\"caf\xc3\xa9\tx\"} 0");
    sb_free(&f.out);
    stats_registry_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_escaped),
        cmocka_unit_test(test_label_values_escaped_on_tls_families),
        cmocka_unit_test(test_other_bytes_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
