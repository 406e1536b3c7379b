/* Unit tests for the resolver: the pure parts (nameserver parsing, collecting a getaddrinfo
 * answer into an address set, set comparison, TTL clamping), then the resolver on a real
 * loop without network: /etc/hosts for localhost, and a silent loopback "nameserver" to
 * check the server references held while a query is in flight. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/loop.h"
#include "core/runtime.h"
#include "net/addr.h"
#include "net/dns.h"
#include "upstream/server.h"

/* ---- building fake answers ---- */

#define MAX_NODES 40
struct fake {
    struct ares_addrinfo ai;
    struct ares_addrinfo_node nodes[MAX_NODES];
    struct sockaddr_storage addrs[MAX_NODES];
    struct ares_addrinfo_cname cname;
    size_t n;
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
}

static void fake_add(struct fake *f, const char *ip, int ttl)
{
    assert_true(f->n < MAX_NODES);
    struct ares_addrinfo_node *n = &f->nodes[f->n];
    struct sockaddr_storage *ss = &f->addrs[f->n];
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        n->ai_family = AF_INET6;
        n->ai_addrlen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        n->ai_family = AF_INET;
        n->ai_addrlen = sizeof(*s4);
    }
    n->ai_addr = (struct sockaddr *)ss;
    n->ai_ttl = ttl;
    if (f->n > 0)
        f->nodes[f->n - 1].ai_next = n;
    f->ai.nodes = &f->nodes[0];
    f->n++;
}

static void ip_of(const struct server_addrs *a, size_t i, char *buf, size_t len)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->addrs[i];
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

static uint16_t port_of(const struct server_addrs *a, size_t i)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->addrs[i];
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* ---- tests ---- */

static void test_nameserver_parse(void **state)
{
    (void)state;
    char out[DNS_NAMESERVER_MAX];
    const char *err = NULL;

    assert_int_equal(dns_parse_nameserver("127.0.0.1", out, sizeof(out), &err), 0);
    assert_string_equal(out, "127.0.0.1:53");
    assert_int_equal(dns_parse_nameserver("127.0.0.1:5353", out, sizeof(out), &err), 0);
    assert_string_equal(out, "127.0.0.1:5353");
    assert_int_equal(dns_parse_nameserver("::1", out, sizeof(out), &err), 0);
    assert_string_equal(out, "[::1]:53");
    assert_int_equal(dns_parse_nameserver("[::1]:5300", out, sizeof(out), &err), 0);
    assert_string_equal(out, "[::1]:5300");

    const char *bad[] = {"",         "dns.example:53", "1.2.3.4:0", "1.2.3.4:70000",
                         "*:53",     "1.2.3.",         "[::1]",     "[::1]x",
                         "1.2.3.4:", "0.0.0.0:53",     "0.0.0.0",   "::"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        assert_int_equal(dns_parse_nameserver(bad[i], out, sizeof(out), &err), -EINVAL);
        assert_non_null(err);
    }
    assert_int_equal(dns_parse_nameserver(NULL, out, sizeof(out), &err), -EINVAL);
    assert_int_equal(dns_parse_nameserver("1.2.3.4", out, 8, &err), -EINVAL); /* too small */
}

static void test_collect_sorts_dedups_sets_port(void **state)
{
    (void)state;
    struct fake f;
    struct server_addrs a;
    int ttl = -1;
    char ip[64];

    fake_init(&f);
    fake_add(&f, "2001:db8::1", 300);
    fake_add(&f, "10.0.0.6", 60);
    fake_add(&f, "10.0.0.5", 30);
    fake_add(&f, "10.0.0.6", 60); /* duplicate */
    assert_int_equal(dns_collect_addrs(&f.ai, 5432, &a, &ttl), 3);
    assert_int_equal(ttl, 30);
    ip_of(&a, 0, ip, sizeof(ip));
    assert_string_equal(ip, "10.0.0.5");
    ip_of(&a, 1, ip, sizeof(ip));
    assert_string_equal(ip, "10.0.0.6");
    ip_of(&a, 2, ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8::1");
    for (size_t i = 0; i < a.count; i++)
        assert_int_equal(port_of(&a, i), 5432);
    assert_int_equal(a.lens[0], sizeof(struct sockaddr_in));
    assert_int_equal(a.lens[2], sizeof(struct sockaddr_in6));
}

static void test_collect_cname_ttl_and_empty(void **state)
{
    (void)state;
    struct fake f;
    struct server_addrs a;
    int ttl = -1;

    fake_init(&f);
    fake_add(&f, "10.1.1.1", 120);
    f.cname.ttl = 20;
    f.ai.cnames = &f.cname;
    assert_int_equal(dns_collect_addrs(&f.ai, 80, &a, &ttl), 1);
    assert_int_equal(ttl, 20);

    fake_init(&f);
    assert_int_equal(dns_collect_addrs(&f.ai, 80, &a, &ttl), 0);
    assert_int_equal(ttl, 0);
    assert_int_equal(dns_collect_addrs(NULL, 80, &a, &ttl), 0);

    fake_init(&f);
    fake_add(&f, "10.1.1.1", -5); /* a negative TTL counts as 0 */
    assert_int_equal(dns_collect_addrs(&f.ai, 80, &a, &ttl), 1);
    assert_int_equal(ttl, 0);
}

static void test_collect_keeps_smallest_when_too_many(void **state)
{
    (void)state;
    struct fake f;
    struct server_addrs a, b;
    int ttl;
    char ip[64], want[64];

    /* 30 addresses in descending order, plus some IPv6: the 16 smallest IPv4 stay */
    fake_init(&f);
    fake_add(&f, "fd00::1", 60);
    for (int i = 30; i >= 1; i--) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        fake_add(&f, ip, 60);
    }
    fake_add(&f, "fd00::2", 60);
    assert_int_equal(dns_collect_addrs(&f.ai, 1, &a, &ttl), SERVER_MAX_ADDRS);
    for (size_t i = 0; i < SERVER_MAX_ADDRS; i++) {
        ip_of(&a, i, ip, sizeof(ip));
        snprintf(want, sizeof(want), "10.0.0.%zu", i + 1);
        assert_string_equal(ip, want);
    }

    /* the same answer in another order gives the same set */
    fake_init(&f);
    for (int i = 1; i <= 30; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", (i * 7) % 31);
        fake_add(&f, ip, 60);
    }
    fake_add(&f, "10.0.0.30", 60);
    dns_collect_addrs(&f.ai, 1, &b, &ttl);
    /* (i*7)%31 for i=1..30 covers 1..30 exactly once */
    assert_true(dns_addrs_same(&a, &b));
}

static void test_addrs_same(void **state)
{
    (void)state;
    struct fake f;
    struct server_addrs a, b;
    int ttl;

    fake_init(&f);
    fake_add(&f, "10.0.0.5", 1);
    fake_add(&f, "10.0.0.6", 1);
    dns_collect_addrs(&f.ai, 80, &a, &ttl);
    fake_init(&f);
    fake_add(&f, "10.0.0.6", 9);
    fake_add(&f, "10.0.0.5", 9);
    dns_collect_addrs(&f.ai, 80, &b, &ttl);
    assert_true(dns_addrs_same(&a, &b)); /* order and TTL do not matter */

    dns_collect_addrs(&f.ai, 81, &b, &ttl);
    assert_false(dns_addrs_same(&a, &b)); /* port does */

    fake_init(&f);
    fake_add(&f, "10.0.0.5", 1);
    dns_collect_addrs(&f.ai, 80, &b, &ttl);
    assert_false(dns_addrs_same(&a, &b));
    fake_init(&f);
    fake_add(&f, "10.0.0.5", 1);
    fake_add(&f, "10.0.0.7", 1);
    dns_collect_addrs(&f.ai, 80, &b, &ttl);
    assert_false(dns_addrs_same(&a, &b));

    assert_false(dns_addrs_same(NULL, &a));
    assert_false(dns_addrs_same(&a, NULL));
    assert_true(dns_addrs_same(NULL, NULL));
    struct server_addrs empty = {0};
    assert_true(dns_addrs_same(NULL, &empty));
}

static void test_refresh_clamp(void **state)
{
    (void)state;
    assert_int_equal(dns_refresh_ms(0, 1000, 300000), 1000);
    assert_int_equal(dns_refresh_ms(-3, 1000, 300000), 1000);
    assert_int_equal(dns_refresh_ms(1, 1000, 300000), 1000);
    assert_int_equal(dns_refresh_ms(30, 1000, 300000), 30000);
    assert_int_equal(dns_refresh_ms(86400, 1000, 300000), 300000);
    assert_int_equal(dns_refresh_ms(2147483647, 1000, 300000), 300000);
    assert_int_equal(dns_refresh_ms(30, 60000, 300000), 60000);
    assert_int_equal(dns_refresh_ms(30, 5000, 2000), 5000); /* max below min: min wins */
}

/* ---- the resolver on a real loop (no network: /etc/hosts and a silent loopback port) ---- */

struct world {
    struct loop loop;
    struct config cfg;
    struct runtime rt;
    struct rt_backend rb;
    struct server *srv;
    char *ns_item;
};

static void world_init(struct world *w, const char *address, const char *nameserver)
{
    struct cfg_server cs = {0};
    const char *err;

    memset(w, 0, sizeof(*w));
    assert_int_equal(loop_init(&w->loop), 0);
    cs.address = (char *)address;
    cs.weight = 1;
    assert_int_equal(addr_parse(address, &cs.addr, &err), 0);
    w->srv = server_new("b", &cs, false, 1);
    assert_non_null(w->srv);
    w->rb.servers = &w->srv;
    w->rb.n_servers = 1;
    w->rt.cfg = &w->cfg;
    w->rt.backends = &w->rb;
    w->rt.n_backends = 1;
    w->cfg.resolver.retry_ms = 200;
    if (nameserver) {
        w->ns_item = strdup(nameserver);
        w->cfg.resolver.nameservers.items = &w->ns_item;
        w->cfg.resolver.nameservers.count = 1;
    }
}

static void world_free(struct world *w)
{
    server_unref(w->srv);
    free(w->ns_item);
    loop_close(&w->loop);
}

/* Runs the loop until cond(w) holds or `ms` pass; returns cond(w). */
static bool run_until(struct world *w, bool (*cond)(struct world *), int ms)
{
    uint64_t end = clock_monotonic_ms() + (uint64_t)ms;
    while (!cond(w) && clock_monotonic_ms() < end)
        loop_run_once(&w->loop, 20);
    return cond(w);
}

static bool resolved(struct world *w)
{
    return atomic_load(&w->srv->resolved) != NULL;
}

static void test_loop_hosts_file_and_stop(void **state)
{
    (void)state;
    struct world w;
    char err[256];
    char ip[64];

    world_init(&w, "localhost:8080", NULL);
    struct dns *d = dns_new(&w.loop, err, sizeof(err));
    assert_non_null(d);
    dns_sync(d, &w.rt);
    assert_int_equal(atomic_load(&w.srv->refs), 2); /* the resolver holds one */
    assert_true(run_until(&w, resolved, 2000));
    struct server_addrs *a = atomic_load(&w.srv->resolved);
    assert_true(a->count >= 1);
    ip_of(a, 0, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1");
    assert_int_equal(port_of(a, 0), 8080);
    assert_true(atomic_load(&w.srv->lb.usable));

    dns_sync(d, &w.rt); /* same server again: kept, nothing new */
    assert_int_equal(atomic_load(&w.srv->refs), 2);

    struct runtime empty = {.cfg = &w.cfg};
    dns_sync(d, &empty); /* gone: reference dropped, last addresses stay on the object */
    assert_int_equal(atomic_load(&w.srv->refs), 1);
    assert_non_null(atomic_load(&w.srv->resolved));
    dns_free(d);
    world_free(&w);
}

static bool never(struct world *w)
{
    (void)w;
    return false;
}

static void test_loop_silent_nameserver(void **state)
{
    (void)state;
    struct world w;
    char err[256], ns[64];
    char buf[512];

    /* a bound UDP port that never answers */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    snprintf(ns, sizeof(ns), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));

    world_init(&w, "svc.invalid:80", ns);
    struct dns *d = dns_new(&w.loop, err, sizeof(err));
    assert_non_null(d);
    dns_sync(d, &w.rt);
    run_until(&w, never, 200);                                  /* just turn the loop for a while */
    assert_true(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 12); /* it asked */
    assert_false(resolved(&w));
    assert_false(atomic_load(&w.srv->lb.usable));

    struct runtime empty = {.cfg = &w.cfg};
    dns_sync(d, &empty); /* stopped with a query in flight: the reference stays */
    assert_int_equal(atomic_load(&w.srv->refs), 2);
    dns_free(d); /* cancels the query, drops the reference */
    assert_int_equal(atomic_load(&w.srv->refs), 1);
    close(fd);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nameserver_parse),
        cmocka_unit_test(test_collect_sorts_dedups_sets_port),
        cmocka_unit_test(test_collect_cname_ttl_and_empty),
        cmocka_unit_test(test_collect_keeps_smallest_when_too_many),
        cmocka_unit_test(test_addrs_same),
        cmocka_unit_test(test_refresh_clamp),
        cmocka_unit_test(test_loop_hosts_file_and_stop),
        cmocka_unit_test(test_loop_silent_nameserver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
