#include "upstream/connect.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>

#include "core/log.h"
#include "net/addr.h"
#include "net/proxy_proto.h"
#include "upstream/server.h"

#define PASSIVE_FAILURE_THRESHOLD 3

uint64_t up_client_key(const struct rt_backend *b, const struct sockaddr *client)
{
    if (b->cfg->balance != BAL_CONSISTENT_HASH && !b->cfg->affinity_client_ip)
        return 0;
    char ip[ADDR_TEXT_MAX];
    addr_format_ip(client, ip, sizeof(ip));
    return lb_hash(ip, strlen(ip));
}

enum up_pick_result up_pick(struct up_attempt *a, int worker, uint64_t key)
{
    struct rt_backend *b = a->backend;
    if (a->n_tried > (unsigned)b->cfg->retries || a->n_tried >= UP_MAX_TRIES)
        return UP_GIVE_UP;
    struct lb_pool *pool = b->affinity_pool ? b->affinity_pool : b->pool;
    int idx = lb_pick(pool, worker, key, a->tried, a->n_tried,
                      (unsigned)b->cfg->max_connections_per_server);
    if (idx < 0)
        return a->n_tried == 0 ? UP_NO_SERVER : UP_GIVE_UP;
    up_pick_index(a, idx);
    return UP_PICKED;
}

void up_pick_index(struct up_attempt *a, int idx)
{
    a->tried[a->n_tried++] = idx;
    struct server *s = a->backend->servers[idx];
    a->server = server_ref(s);
    atomic_fetch_add(&s->lb.active, 1);
    a->counted = true;
}

/* True when the socket's TCP connection is already established (a loopback or very near
 * server often is by the time connect() returns EINPROGRESS). One getsockopt. */
static bool connected_now(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_ESTABLISHED;
}

int up_connect(struct up_attempt *a, struct sock *s, bool eager, bool *done, const char **why,
               uint64_t now)
{
    struct sockaddr_storage ss;
    socklen_t len;
    *done = false;
    if (server_next_addr(a->server, &ss, &len) < 0) {
        *why = "server name not resolved";
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->h.fd = fd;
    s->readable = s->writable = s->eof = s->shut = false;
    s->rdhup = s->error_event = false;
    if (!a->start_ms)
        a->start_ms = now;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        *why = strerror(errno);
        return -1;
    }
    /* Worth a getsockopt only when there is something to send at once; plain TCP waits
     * for the event, which a busy loop batches with others anyway. A socket already
     * connected needs no EPOLLOUT; one still connecting waits for it. */
    *done = eager && connected_now(fd);
    if (loop_add(s->loop, &s->h, *done ? SOCK_EVENTS_IN : SOCK_EVENTS_IN | EPOLLOUT) < 0) {
        *why = "epoll registration failed";
        return -1;
    }
    s->out_armed = !*done;
    if (*done)
        s->writable = true; /* a fresh socket: its send buffer is empty */
    return 0;
}

int up_connect_result(struct up_attempt *a, struct sock *s)
{
    /* Writable without an error event means connected; only a failure needs SO_ERROR. */
    int err = 0;
    socklen_t len = sizeof(err);
    if (s->error_event && getsockopt(s->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (s->error_event && !err)
        err = ECONNREFUSED;
    if (err)
        return err;
    server_passive_success(a->server);
    if (s->out_armed)
        sock_set_out(s, false); /* connected: input only until a write blocks */
    return 0;
}

void up_failed(struct up_attempt *a, int worker, const char *why)
{
    struct server *s = a->server;
    counter_add(&s->slots[worker].connect_failures, 1);
    if (server_passive_failure(s, PASSIVE_FAILURE_THRESHOLD))
        log_warn("server %s of backend %s marked down: %d consecutive connect failures (%s)",
                 s->address, s->backend, PASSIVE_FAILURE_THRESHOLD, why);
    up_release(a);
}

void up_release(struct up_attempt *a)
{
    if (!a->server)
        return;
    if (a->counted)
        atomic_fetch_sub(&a->server->lb.active, 1);
    a->counted = false;
    server_unref(a->server);
    a->server = NULL;
}

int up_send_proxy_header(struct sock *s, int version, const struct sockaddr *client,
                         const struct sockaddr *local, const char *alpn, const char *sni)
{
    uint8_t hdr[512];
    int n = pp_build(version, client, local, alpn, sni, hdr, sizeof(hdr));
    if (n < 0 || send(s->h.fd, hdr, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    return 0;
}
