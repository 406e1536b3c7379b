/* libFuzzer harness for sluice's HTTP/2 sessions (src/http/h2_conn.c): the client side of
 * an h2c connection, served by the real code from the accept on. No seam in sluice: the
 * harness builds what sluice's main thread builds (a configuration parsed from the YAML
 * below, the run-time snapshot, a worker's state) and runs the worker's turn itself, on
 * this thread, instead of worker_start's thread:
 *   - the client is one end of a socketpair handed to the http listener's protocol
 *     (h1_conn_ops.start, as an accept would); the h2c preface makes h1_conn.c adopt the
 *     connection into h2_conn.c, whose nghttp2 session, callbacks, glitch budget, H2->H1
 *     translation and per-stream HTTP/1.1 engines (h1_stream_open) are all the real ones;
 *   - the listener's backend is a server on 127.0.0.1 played by the harness in the same
 *     event loop: it answers each request with a canned HTTP/1.1 response the input
 *     chooses (content-length, chunked with trailers, 1xx before the answer, 204, 304,
 *     close-delimited, large bodies, a WebSocket 101, truncated and broken framings, or
 *     raw bytes from the input), so the response path (submit_head, the data provider,
 *     decode_chunked, submit_trailers, backpressure) runs on what the engine forwards;
 *   - routes answer some paths by sluice itself (respond, redirect).
 *
 * Input:  byte 0   flags: bit 0 the harness sends the client preface and an empty SETTINGS
 *                  frame first (else the input must); bit 1 a graceful stop (the worker's
 *                  conn_ops.stop, as on SIGTERM) after the client's last bytes; bit 2
 *                  then closes every connection at once (conn_ops.close, a second
 *                  signal); bit 3 re-arms every connection's deadlines (conn_ops.rearm, a
 *                  drain change) after each write; bit 4 gives sluice's end of the
 *                  socket a small send buffer (short writes, EAGAIN, EPOLLOUT);
 *         bytes 1-4 the responses, in turn, for the requests the backend receives
 *                  (bits 0-3 the kind, see respond(); bit 4 Connection: close; bits 5-7 a
 *                  size or variant);
 *         then the client's bytes. "@@TURN@@" splits them into writes with the event loop
 *         run until quiet in between (the backend answers, sluice sends); what follows
 *         "@@RESP@@" (if present) is not sent by the client but is the raw response of
 *         kind 15.
 * Each input starts from the same state: the connection, the backend's connections, the
 * worker's idle server pool and buffer cache are all closed or emptied at its end, where
 * the harness also checks that the gauges (connections, HTTP/2 streams, requests and
 * tunnels in progress, connections to the server) are back at zero. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/worker.h"
#include "http/h1_conn.h"
#include "proxy/accesslog.h"
#include "proxy/pipe_pool.h"
#include "upstream/pool.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_TURNS 400 /* event-loop turns per client write before giving up on quiet */
#define UP_IN_MAX (256 * 1024)

static const char PREFACE_SETTINGS[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                       "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
#define PREFACE_SETTINGS_LEN 33

static const char YAML[] =
    "workers: 1\n"
    "log: {access: stdout, format: json, level: error}\n"
    "listeners:\n"
    "  - name: h2\n"
    "    bind: \"127.0.0.1:%u\"\n"
    "    protocol: http\n"
    "    backend: app\n"
    "    http: {h2c: true, http2: {max_concurrent_streams: 16, initial_window_size: 16k}}\n"
    "    routes:\n"
    "      - match: {path: /respond}\n"
    "        respond: {status: 200, body: \"ok {listener} {method} {request_uri}\\n\"}\n"
    "      - match: {path_prefix: /redirect}\n"
    "        redirect: {to: \"https://example.com{request_uri}\", status: 308}\n"
    "      - match: {path_prefix: /hdr}\n"
    "        backend: app\n"
    "        request_headers: {set: {X-Client-Ip: \"{client_ip}\"}, remove: [Cookie]}\n"
    "        response_headers: {add: {Via: \"sluice {status}\"}}\n"
    "backends:\n"
    "  - name: app\n"
    "    protocol: http\n"
    "    servers: [{address: \"127.0.0.1:%u\"}]\n";

/* One connection from sluice to the harness's backend. */
struct up {
    struct io_handler h; /* first */
    struct up *next;
    char *in;
    size_t in_len;
    uint64_t skip;     /* request body bytes still to pass over (content-length) */
    bool skip_chunked; /* ... up to the end of a chunked body */
    char *out;
    size_t out_off, out_len, out_cap;
    bool shut; /* answered with a close: FIN sent, ignore the rest */
};

static struct {
    bool ready;
    struct runtime *rt;
    struct worker w;
    struct rt_listener *l;
    struct io_handler listen_h;
    struct up *ups;
    int client; /* the client's end of the socketpair, -1 when closed */
    int trace;  /* FUZZ_H2_SESSION_OUT, or -1 */
    /* this input's */
    uint8_t kinds[4];
    unsigned n_answered;
    const uint8_t *raw;
    size_t raw_len;
} g;

/* ---- the backend ---- */

/* Room for n more bytes in u->out (doubling: a large body is many small appends). */
static char *up_room(struct up *u, size_t n)
{
    if (u->out_len + n > u->out_cap) {
        size_t cap = u->out_cap ? u->out_cap : 4096;
        while (cap < u->out_len + n)
            cap *= 2;
        char *b = realloc(u->out, cap);
        CHECK(b);
        u->out = b;
        u->out_cap = cap;
    }
    char *at = u->out + u->out_len;
    u->out_len += n;
    return at;
}

static void up_queue(struct up *u, const char *p, size_t n)
{
    memcpy(up_room(u, n), p, n);
}

static void up_printf(struct up *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void up_printf(struct up *u, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof(buf));
    up_queue(u, buf, (size_t)n);
}

static void up_fill(struct up *u, char c, size_t n)
{
    memset(up_room(u, n), c, n);
}

static void up_flush(struct up *u)
{
    while (u->out_off < u->out_len) {
        ssize_t n = send(u->h.fd, u->out + u->out_off, u->out_len - u->out_off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        u->out_off += (size_t)n;
    }
    bool more = u->out_off < u->out_len;
    if (!more) {
        free(u->out);
        u->out = NULL;
        u->out_off = u->out_len = u->out_cap = 0;
        if (u->shut)
            shutdown(u->h.fd, SHUT_WR);
    }
    loop_mod(&g.w.loop, &u->h, more ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* The value of field `name` in head[0..n), or NULL. */
static const char *field(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = head; p && p < head + n;) {
        const char *eol = memmem(p, (size_t)(head + n - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Answers the request whose head is head[0..n). */
static void respond(struct up *u, const char *head, size_t n)
{
    uint8_t v = g.kinds[g.n_answered++ % 4];
    unsigned kind = v & 15, arg = v >> 5;
    const char *conn = (v & 0x10) ? "Connection: close\r\n" : "";
    bool head_req = n >= 5 && memcmp(head, "HEAD ", 5) == 0;
    if (v & 0x10)
        u->shut = true;
    switch (kind) {
    case 0:
        up_printf(u, "HTTP/1.1 200 OK\r\n%sContent-Length: 5\r\nX-Kind: 0\r\n\r\n%s", conn,
                  head_req ? "" : "hello");
        break;
    case 1: /* chunked, extensions, trailers */
        up_printf(u,
                  "HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
                  "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\nGrpc-Status: 0\r\n\r\n",
                  conn);
        break;
    case 2: /* interim responses first */
        up_printf(u,
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                  "HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nok",
                  conn);
        break;
    case 3:
        up_printf(u, "HTTP/1.1 204 No Content\r\n%sX-A: b\r\n\r\n", conn);
        break;
    case 4:
        up_printf(u, "HTTP/1.1 304 Not Modified\r\n%sETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
                  conn);
        break;
    case 5: /* close-delimited */
        up_printf(u, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until the close");
        u->shut = true;
        break;
    case 6: { /* a large content-length body: backpressure, flow control */
        size_t len = (size_t)1000 << arg;
        up_printf(u, "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n", conn, len);
        if (!head_req)
            up_fill(u, 'a', len);
        break;
    }
    case 7: { /* WebSocket */
        size_t klen = 0;
        const char *key = field(head, n, "Sec-WebSocket-Key", &klen);
        if (!key || klen > 64) {
            up_printf(u, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            break;
        }
        char buf[128];
        memcpy(buf, key, klen);
        memcpy(buf + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((unsigned char *)buf, klen + 36, md);
        char acc[32];
        EVP_EncodeBlock((unsigned char *)acc, md, SHA_DIGEST_LENGTH);
        up_printf(u,
                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n\x81\x02hi",
                  acc);
        if (arg & 1)
            u->shut = true;
        break;
    }
    case 8: /* a body cut short */
        up_printf(u, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        u->shut = true;
        break;
    case 9: /* broken chunked framing */
        up_printf(u, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");
        u->shut = true;
        break;
    case 10: /* no answer at all */
        u->shut = true;
        break;
    case 11: { /* a large chunked body, many chunks */
        up_printf(u, "HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n", conn);
        for (unsigned i = 0; i < 2u << arg; i++) {
            up_printf(u, "%x\r\n", 500 + i);
            up_fill(u, 'b', 500 + i);
            up_printf(u, "\r\n");
        }
        up_printf(u, "0\r\n\r\n");
        break;
    }
    case 12: /* a 500 from the server, chunked, no trailers */
        up_printf(u,
                  "HTTP/1.1 500 Internal Server Error\r\n%sTransfer-Encoding: chunked\r\n"
                  "Content-Type: text/plain\r\n\r\n4\r\noops\r\n0\r\n\r\n",
                  conn);
        break;
    case 13: /* many fields, some hop-by-hop */
        up_printf(u, "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n%s", conn);
        for (unsigned i = 0; i < 8u << arg; i++)
            up_printf(u, "X-Field-%u: value %u\r\n", i, i);
        up_printf(u, "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 1\r\n\r\nz");
        break;
    case 14: /* trailers only after an empty body, then the head split from its body */
        up_printf(u,
                  "HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n0\r\n"
                  "X-Empty:\r\nX-Spaces:   v   \r\n\r\n",
                  conn);
        break;
    default: /* 15: the input's raw bytes */
        if (g.raw_len)
            up_queue(u, (const char *)g.raw, g.raw_len);
        else
            up_printf(u, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        if (arg & 1)
            u->shut = true;
        break;
    }
}

/* Finds the request heads in what the backend read and answers each (passing over the
 * request bodies). */
static void up_requests(struct up *u)
{
    size_t at = 0;
    while (at < u->in_len && !u->shut) {
        char *p = u->in + at;
        size_t have = u->in_len - at;
        if (u->skip) {
            size_t k = have < u->skip ? have : (size_t)u->skip;
            u->skip -= k;
            at += k;
            continue;
        }
        if (u->skip_chunked) {
            char *e = memmem(p, have, "0\r\n\r\n", 5);
            if (!e) {
                at = have > 4 ? u->in_len - 4 : at;
                break;
            }
            at += (size_t)(e - p) + 5;
            u->skip_chunked = false;
            continue;
        }
        char *e = memmem(p, have, "\r\n\r\n", 4);
        if (!e)
            break;
        size_t n = (size_t)(e - p) + 4;
        size_t vl = 0;
        const char *cl = field(p, n, "Content-Length", &vl);
        if (cl)
            u->skip = strtoull(cl, NULL, 10);
        const char *te = field(p, n, "Transfer-Encoding", &vl);
        u->skip_chunked = te != NULL;
        respond(u, p, n);
        at += n;
    }
    memmove(u->in, u->in + at, u->in_len - at);
    u->in_len -= at;
    up_flush(u);
}

static void up_drop(struct up *u);

static void up_event(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)loop;
    struct up *u = (struct up *)h;
    if (events & EPOLLOUT)
        up_flush(u);
    for (;;) {
        if (u->in_len == UP_IN_MAX)
            u->in_len = 0; /* a huge body: forget it */
        ssize_t n = read(u->h.fd, u->in + u->in_len, UP_IN_MAX - u->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            up_drop(u); /* sluice closed it */
            return;
        }
        if (n < 0)
            break;
        u->in_len += (size_t)n;
        if (!u->shut)
            up_requests(u);
    }
}

static void up_accept(struct loop *loop, struct io_handler *h, uint32_t events)
{
    (void)events;
    for (;;) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct up *u = calloc(1, sizeof(*u));
        CHECK(u && (u->in = malloc(UP_IN_MAX)));
        u->h.fd = fd;
        u->h.cb = up_event;
        u->next = g.ups;
        g.ups = u;
        CHECK(loop_add(loop, &u->h, EPOLLIN) == 0);
    }
}

/* Closes one of the backend's connections with a reset (no TIME_WAIT left behind). */
static void up_drop(struct up *u)
{
    for (struct up **pp = &g.ups; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    struct linger lg = {1, 0};
    setsockopt(u->h.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    loop_del(&g.w.loop, &u->h);
    close(u->h.fd);
    free(u->in);
    free(u->out);
    free(u);
}

static void ups_close(void)
{
    while (g.ups)
        up_drop(g.ups);
}

/* ---- the worker, run on this thread ---- */

/* Reads (and drops) what sluice sent the client; with FUZZ_H2_SESSION_OUT=FILE in the
 * environment, appends it to FILE (to look at the server side of a run). */
static void drain_client(void)
{
    char buf[65536];
    ssize_t n;
    while (g.client >= 0 && (n = read(g.client, buf, sizeof(buf))) > 0) {
        if (g.trace >= 0 && write(g.trace, buf, (size_t)n) != n)
            abort();
    }
}

/* One turn of worker_main's loop. */
static void turn(void)
{
    struct worker *w = &g.w;
    w->budget = WORKER_STEPS_PER_TURN;
    while (w->deferred_head && w->budget > 0) {
        struct conn *c = w->deferred_head;
        worker_undefer(w, c);
        c->ops->step(c);
    }
    loop_run_once(&w->loop, 0);
    while (w->soon_head) {
        struct conn *c = w->soon_head;
        worker_unsoon(w, c);
        c->ops->soon(c);
    }
    if (w->access_log.len)
        alog_flush(w);
    drain_client();
}

static bool busy(void)
{
    struct pollfd p = {g.w.loop.epfd, POLLIN, 0};
    return g.w.soon_head || g.w.deferred_head || poll(&p, 1, 0) > 0;
}

static void run_until_quiet(void)
{
    for (int i = 0; i < MAX_TURNS; i++) {
        turn();
        if (!busy())
            return;
    }
}

static void setup(void)
{
    log_set_level(LOG_ERROR);
    signal(SIGPIPE, SIG_IGN); /* as sluice's main does */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          listen(lfd, 128) == 0 && getsockname(lfd, (struct sockaddr *)&sin, &len) == 0);
    /* the listener needs a port (never polled: the client comes through a socketpair):
     * a port held by a bound, not listening socket that lets the listener share it */
    int pfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in lsin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t llen = sizeof(lsin);
    CHECK(pfd >= 0 && setsockopt(pfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 &&
          bind(pfd, (struct sockaddr *)&lsin, sizeof(lsin)) == 0 &&
          getsockname(pfd, (struct sockaddr *)&lsin, &llen) == 0);
    char yaml[sizeof(YAML) + 16];
    int n = snprintf(yaml, sizeof(yaml), YAML, (unsigned)ntohs(lsin.sin_port),
                     (unsigned)ntohs(sin.sin_port));
    struct cfg_errors errs = {0};
    struct config *cfg = config_load_buffer("fuzz_h2_session.yaml", yaml, (size_t)n, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        abort();
    }
    char err[256];
    g.rt = runtime_build(cfg, NULL, 1, err, sizeof(err));
    if (!g.rt) {
        fprintf(stderr, "runtime_build: %s\n", err);
        abort();
    }
    /* the access log formats every line, written to /dev/null */
    alog_apply(g.rt->cfg, open("/dev/null", O_WRONLY | O_CLOEXEC));
    /* worker_start without its thread and accept handlers */
    struct worker *w = &g.w;
    memset(w, 0, sizeof(*w));
    CHECK(loop_init(&w->loop) == 0);
    CHECK((w->pipes = calloc(1, sizeof(*w->pipes))));
    pipe_pool_init(w->pipes);
    w->rt = runtime_ref(g.rt);
    g.l = &g.rt->listeners[0];
    g.listen_h.fd = lfd;
    g.listen_h.cb = up_accept;
    CHECK(loop_add(&w->loop, &g.listen_h, EPOLLIN) == 0);
    g.client = -1;
    const char *trace = getenv("FUZZ_H2_SESSION_OUT");
    g.trace = trace ? open(trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    g.ready = true;
}

/* Sends the client's bytes (running the loop whenever the socket is full). */
static void write_client(const uint8_t *p, size_t n)
{
    for (int full = 0; n > 0 && g.client >= 0 && full < 8;) {
        ssize_t k = send(g.client, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno == EAGAIN) {
            run_until_quiet(); /* sluice reads all it can each turn */
            full++;
        } else {
            return; /* sluice closed the connection */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.ready)
        setup();
    if (size < 5)
        return 0;
    uint8_t flags = data[0];
    memcpy(g.kinds, data + 1, 4);
    g.n_answered = 0;
    const uint8_t *p = data + 5, *end = data + size;
    const uint8_t *resp = memmem(p, (size_t)(end - p), "@@RESP@@", 8);
    g.raw = resp ? resp + 8 : NULL;
    g.raw_len = resp ? (size_t)(end - resp - 8) : 0;
    if (resp)
        end = resp;

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    g.client = sv[0];
    if (flags & 16) { /* a client that reads slowly: sluice's writes come back short */
        int small = 4096;
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    }
    /* the slot an accept reserves (conn_release gives it back) */
    atomic_fetch_add(&runtime_active_connections, 1);
    atomic_fetch_add(&g.l->stats->active, 1);
    struct sockaddr_in peer = {
        .sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(0x7f000002)};
    h1_conn_ops.start(&g.w, g.l, sv[1], (struct sockaddr *)&peer, sizeof(peer));

    if (flags & 1)
        write_client((const uint8_t *)PREFACE_SETTINGS, PREFACE_SETTINGS_LEN);
    while (p < end) {
        const uint8_t *sep = memmem(p, (size_t)(end - p), "@@TURN@@", 8);
        const uint8_t *stop = sep ? sep : end;
        write_client(p, (size_t)(stop - p));
        run_until_quiet();
        if (flags & 8) /* a server's drain deadline changed (worker_post_drain_check) */
            for (struct conn *c = g.w.conns; c; c = c->next)
                c->ops->rearm(c);
        p = sep ? sep + 8 : end;
    }
    run_until_quiet();

    if (flags & 2) { /* a graceful stop (SIGTERM): GOAWAY, the streams finish */
        for (struct conn *c = g.w.conns, *next; c; c = next) {
            next = c->next; /* stop may close c */
            if (c->ops->stop)
                c->ops->stop(c);
        }
        run_until_quiet();
    }
    if (flags & 4) /* the second signal: the worker closes every connection now */
        while (g.w.conns)
            g.w.conns->ops->close(g.w.conns, TERM_SHUTDOWN);
    /* the end of the input: the client goes, then everything this input opened */
    close(g.client);
    g.client = -1;
    run_until_quiet();
    ups_close();
    run_until_quiet();
    upool_close_all(&g.w);
    while (g.w.conns)
        g.w.conns->ops->close(g.w.conns, TERM_SHUTDOWN);
    run_until_quiet();
    /* nothing left open, and every gauge back at zero */
    CHECK(g.w.conns == NULL && g.w.n_conns == 0 && g.ups == NULL);
    CHECK(atomic_load(&runtime_active_connections) == 0 && atomic_load(&g.l->stats->active) == 0);
    CHECK(atomic_load(&g.l->stats->slots[0].h2_streams) == 0);
    CHECK(atomic_load(&g.l->stats->slots[0].http_active) == 0);
    CHECK(atomic_load(&g.l->stats->slots[0].ws_active) == 0);
    CHECK(atomic_load(&g.rt->backends[0].servers[0]->lb.active) == 0);
    bufcache_clear(&g.w.xbufs);
    return 0;
}
