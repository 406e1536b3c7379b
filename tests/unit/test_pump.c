/* Unit tests for src/proxy/pump.c and tunnel.c on real TCP loopback socket pairs: the
 * byte budget of a limited direction, FIN forwarding and which side ended first,
 * backpressure with a slow reader (memory bounded by one buffer), reset propagation,
 * splice and copy paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include "core/loop.h"
#include "proxy/pump.h"
#include "proxy/tunnel.h"

/* Two connected TCP sockets on loopback: *a and *b, both non-blocking. */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *b = accept(l, NULL, NULL);
    assert_true(*b >= 0);
    close(l);
    fcntl(*a, F_SETFL, O_NONBLOCK);
    fcntl(*b, F_SETFL, O_NONBLOCK);
}

struct rig {
    struct loop loop;
    struct pipe_pool pipes;
    int client_peer, server_peer; /* the test's ends */
    struct sock client, server;   /* the proxy's ends */
    struct pump_dir up, down;
    uint64_t last_io, bytes_in, bytes_out;
    bool use_splice;
    uint8_t first_fin;
};

static struct rig *rig_new(bool splice)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(loop_init(&r->loop), 0);
    pipe_pool_init(&r->pipes);
    tcp_pair(&r->client_peer, &r->client.h.fd);
    tcp_pair(&r->server_peer, &r->server.h.fd);
    r->client.loop = r->server.loop = &r->loop;
    assert_int_equal(loop_add(&r->loop, &r->client.h, SOCK_EVENTS_IN), 0);
    assert_int_equal(loop_add(&r->loop, &r->server.h, SOCK_EVENTS_IN), 0);
    r->use_splice = splice;
    return r;
}

static void rig_free(struct rig *r)
{
    pump_release(&r->pipes, &r->up);
    pump_release(&r->pipes, &r->down);
    sock_close(&r->client, false);
    sock_close(&r->server, false);
    close(r->client_peer);
    close(r->server_peer);
    pipe_pool_close(&r->pipes);
    loop_close(&r->loop);
    free(r);
}

/* The readiness epoll would report for s now (poll() has the same bits), recorded as
 * the loop would record it. */
static void ready_one(struct sock *s)
{
    struct pollfd p = {.fd = s->h.fd, .events = POLLIN | POLLOUT | POLLRDHUP};
    assert_true(poll(&p, 1, 0) >= 0);
    sock_on_events(s, (uint32_t)p.revents);
}

static void ready(struct rig *r)
{
    ready_one(&r->client);
    ready_one(&r->server);
}

static enum tunnel_state run_tunnel(struct rig *r, enum term *why)
{
    struct pump_ctx up = {&r->pipes, 1, &r->last_io, &r->bytes_in, NULL, &r->use_splice};
    struct pump_ctx down = {&r->pipes, 1, &r->last_io, NULL, &r->bytes_out, &r->use_splice};
    const struct tunnel t = {&r->client, &r->server, &r->up, &r->down};
    struct sock *failed = NULL;
    int err = 0;
    ready(r);
    return tunnel_run(&t, &up, &down, &r->first_fin, why, &failed, &err);
}

/* Reads what fd holds now (non-blocking) into buf; returns the count, -1 at EOF first. */
static ssize_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            return got ? (ssize_t)got : -1;
        return (ssize_t)got;
    }
}

static void test_budget_stops_exactly(void **state)
{
    (void)state;
    for (int splice = 0; splice < 2; splice++) {
        struct rig *r = rig_new(splice);
        char msg[100];
        memset(msg, 'x', sizeof(msg));
        memset(msg + 40, 'y', 60);
        assert_int_equal(send(r->client_peer, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
        r->up.limited = true;
        r->up.budget = 40;
        struct pump_ctx x = {&r->pipes, 7, &r->last_io, &r->bytes_in, NULL, &r->use_splice};
        int err = 0;
        ready(r);
        assert_int_equal(pump_run(&x, &r->up, &r->client, &r->server, false, &err), PUMP_OK);
        assert_int_equal(r->up.budget, 0);
        assert_int_equal(r->up.pending, 0);
        assert_int_equal(r->bytes_in, 40);
        assert_int_equal(r->last_io, 7);
        usleep(10000);
        char got[200];
        assert_int_equal(drain(r->server_peer, got, sizeof(got)), 40);
        assert_memory_equal(got, msg, 40);
        /* the rest stays in the client socket, for whoever reads next */
        assert_int_equal(recv(r->client.h.fd, got, sizeof(got), 0), 60);
        assert_memory_equal(got, msg + 40, 60);
        rig_free(r);
    }
}

static void test_fin_forwarded_and_first_fin(void **state)
{
    (void)state;
    struct rig *r = rig_new(false);
    enum term why = TERM_NONE;
    assert_int_equal(send(r->client_peer, "hello", 5, 0), 5);
    shutdown(r->client_peer, SHUT_WR);
    usleep(10000);
    assert_int_equal(run_tunnel(r, &why), TUNNEL_OPEN);
    assert_int_equal(r->first_fin, TERM_CLIENT_CLOSED);
    usleep(10000);
    char buf[64];
    assert_int_equal(recv(r->server_peer, buf, sizeof(buf), 0), 5);
    assert_int_equal(recv(r->server_peer, buf, sizeof(buf), 0), 0); /* the FIN passed on */
    /* the other direction still flows after the half-close */
    assert_int_equal(send(r->server_peer, "bye", 3, 0), 3);
    shutdown(r->server_peer, SHUT_WR);
    usleep(10000);
    assert_int_equal(run_tunnel(r, &why), TUNNEL_DONE);
    assert_int_equal(why, TERM_CLIENT_CLOSED);
    assert_int_equal(r->bytes_in, 5);
    assert_int_equal(r->bytes_out, 3);
    /* the last bytes were sent to be joined by the FIN of the close that DONE calls for */
    sock_close(&r->client, true);
    usleep(10000);
    assert_int_equal(recv(r->client_peer, buf, sizeof(buf), 0), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(recv(r->client_peer, buf, sizeof(buf), 0), 0);
    rig_free(r);
}

static void test_slow_reader_bounds_memory(void **state)
{
    (void)state;
    for (int splice = 0; splice < 2; splice++) {
        struct rig *r = rig_new(splice);
        size_t total = 8 << 20, sent = 0, received = 0;
        char *chunk = malloc(64 * 1024), *rx = malloc(64 * 1024);
        for (size_t i = 0; i < 64 * 1024; i++)
            chunk[i] = (char)(i * 7);
        enum term why;
        int rounds = 0;
        bool full = false;
        while (received < total && rounds++ < 2000000) {
            if (sent < total) {
                size_t off = sent % 1024, want = 64 * 1024 - off;
                if (want > total - sent)
                    want = total - sent;
                ssize_t n = send(r->client_peer, chunk + off, want, 0);
                if (n > 0)
                    sent += (size_t)n;
            }
            assert_int_equal(run_tunnel(r, &why), TUNNEL_OPEN);
            /* never more than one buffer or one pipe held for the direction */
            size_t cap = splice && r->up.has_pipe ? r->pipes.capacity : 16 * 1024;
            assert_true(r->up.pending <= cap);
            full |= r->up.pending == cap; /* the reader held the writer back */
            if (rounds % 8 == 0) {        /* the reader takes a little, now and then */
                ssize_t n = recv(r->server_peer, rx, 16384, 0);
                if (n > 0) {
                    for (ssize_t i = 0; i < n; i++)
                        assert_int_equal(rx[i], chunk[(received + (size_t)i) % 1024]);
                    received += (size_t)n;
                }
            }
        }
        assert_int_equal(received, total);
        assert_true(full);
        assert_int_equal(r->bytes_in, total);
        assert_int_equal(r->up.pending, 0);
        assert_null(r->up.buf); /* given back once written out */
        assert_false(r->up.has_pipe);
        assert_int_equal(r->up.spliced, splice ? 1 : 0);
        free(chunk);
        free(rx);
        rig_free(r);
    }
}

static void test_reset_is_reported_on_its_side(void **state)
{
    (void)state;
    struct rig *r = rig_new(false);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(r->server_peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(r->server_peer);
    r->server_peer = socket(AF_INET, SOCK_STREAM, 0); /* something for rig_free to close */
    usleep(10000);
    enum term why = TERM_NONE;
    assert_int_equal(run_tunnel(r, &why), TUNNEL_FAILED);
    assert_int_equal(why, TERM_SERVER_RESET);
    rig_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_stops_exactly),
        cmocka_unit_test(test_fin_forwarded_and_first_fin),
        cmocka_unit_test(test_slow_reader_bounds_memory),
        cmocka_unit_test(test_reset_is_reported_on_its_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
