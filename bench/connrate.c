/* connrate: the load generator of bench/l4.sh.
 *
 *   connrate rate -a HOST:PORT [-c CONC] [-t SECONDS] [-w WARMUP] [-j THREADS] [-s NSRC]
 *       CONC clients (split over THREADS epoll loops) each loop: connect, send 1 byte,
 *       read 1 byte back (the backend echoes), close. Prints the number of such complete
 *       exchanges per second, counted after WARMUP seconds, and the errors seen.
 *
 *   connrate hold -a HOST:PORT -n N [-c CONC] [-s NSRC]
 *       Opens N connections (CONC at a time), does one 1-byte echo on each, prints
 *       "held N" and keeps them open and idle until SIGTERM or SIGINT.
 *
 * -s NSRC spreads the client side over source addresses 127.0.0.1 .. 127.0.0.NSRC
 * (IP_BIND_ADDRESS_NO_PORT), so millions of short connections do not run out of
 * ephemeral ports. IPv4 only; loopback is what the benchmark uses.
 *
 * Build: gcc -O2 -std=c11 -D_GNU_SOURCE -pthread bench/connrate.c -o bench/out/connrate */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum slot_state { ST_CONNECTING, ST_READING, ST_IDLE };

struct slot {
    int fd;
    enum slot_state state;
};

struct worker {
    pthread_t tid;
    int id;
    int conc;
    atomic_ulong done;   /* exchanges completed after the warmup */
    atomic_ulong errors; /* failed connects, resets, early EOFs */
};

static struct sockaddr_in g_dst;
static int g_nsrc = 1;
static double g_warmup = 1.0, g_seconds = 10.0;
static atomic_bool g_counting, g_stop;
static atomic_uint g_src_next;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *text, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -EINVAL;
}

/* Starts a non-blocking connect; returns the fd or -1. */
static int open_conn(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (g_nsrc > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        unsigned k = atomic_fetch_add(&g_src_next, 1) % (unsigned)g_nsrc;
        src.sin_addr.s_addr = htonl(0x7f000001u + k);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&g_dst, sizeof(g_dst)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* (Re)arms a slot with a new connection; counts an error and retries on failure. */
static void slot_start(int ep, struct slot *s, atomic_ulong *errors)
{
    for (int tries = 0; tries < 1000; tries++) {
        s->fd = open_conn();
        if (s->fd >= 0)
            break;
        atomic_fetch_add(errors, 1);
        usleep(1000);
    }
    if (s->fd < 0) {
        fprintf(stderr, "connrate: cannot open connections: %s\n", strerror(errno));
        exit(1);
    }
    s->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Handles one event of a slot. Returns 1 when an exchange completed, 0 while it is in
 * progress, -1 on failure (the slot is closed in both final cases). */
static int slot_event(int ep, struct slot *s, uint32_t events)
{
    char c = 'x';
    if (s->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events & (EPOLLERR | EPOLLHUP)) || send(s->fd, &c, 1, MSG_NOSIGNAL) != 1)
            goto fail;
        s->state = ST_READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        return 0;
    }
    if (s->state == ST_READING) {
        ssize_t n = recv(s->fd, &c, 1, 0);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n != 1)
            goto fail;
        return 1;
    }
    return 0;
fail:
    close(s->fd);
    s->fd = -1;
    return -1;
}

static void *rate_worker(void *arg)
{
    struct worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct slot *slots = calloc((size_t)w->conc, sizeof(*slots));
    if (ep < 0 || !slots) {
        perror("connrate");
        exit(1);
    }
    for (int i = 0; i < w->conc; i++)
        slot_start(ep, &slots[i], &w->errors);
    struct epoll_event evs[256];
    while (!atomic_load(&g_stop)) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct slot *s = evs[i].data.ptr;
            int rc = slot_event(ep, s, evs[i].events);
            if (rc == 0)
                continue;
            if (rc > 0) {
                close(s->fd); /* orderly close: FIN, like a real short-lived client */
                if (atomic_load(&g_counting))
                    atomic_fetch_add(&w->done, 1);
            } else if (atomic_load(&g_counting)) {
                atomic_fetch_add(&w->errors, 1);
            }
            slot_start(ep, s, &w->errors);
        }
    }
    for (int i = 0; i < w->conc; i++)
        if (slots[i].fd >= 0)
            close(slots[i].fd);
    free(slots);
    close(ep);
    return NULL;
}

static int run_rate(int conc, int threads)
{
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    if (!ws)
        return 1;
    for (int i = 0; i < threads; i++) {
        ws[i].id = i;
        ws[i].conc = conc / threads + (i < conc % threads);
        pthread_create(&ws[i].tid, NULL, rate_worker, &ws[i]);
    }
    usleep((useconds_t)(g_warmup * 1e6));
    atomic_store(&g_counting, true);
    double t0 = now_s();
    usleep((useconds_t)(g_seconds * 1e6));
    atomic_store(&g_counting, false);
    double t1 = now_s();
    atomic_store(&g_stop, true);
    unsigned long done = 0, errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].tid, NULL);
        done += atomic_load(&ws[i].done);
        errors += atomic_load(&ws[i].errors);
    }
    printf("connections_per_second=%.0f completed=%lu errors=%lu seconds=%.2f\n",
           (double)done / (t1 - t0), done, errors, t1 - t0);
    free(ws);
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, true);
}

static int run_hold(int n, int conc)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct slot *slots = calloc((size_t)n, sizeof(*slots));
    atomic_ulong errors = 0;
    if (ep < 0 || !slots)
        return 1;
    int started = 0, held = 0, inflight = 0;
    double deadline = now_s() + 120;
    struct epoll_event evs[256];
    while (held < n) {
        while (inflight < conc && started < n) {
            slot_start(ep, &slots[started++], &errors);
            inflight++;
        }
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct slot *s = evs[i].data.ptr;
            int rc = slot_event(ep, s, evs[i].events);
            if (rc == 0)
                continue;
            inflight--;
            if (rc < 0) {
                fprintf(stderr, "connrate: connection %ld failed after %d held\n",
                        (long)(s - slots), held);
                return 1;
            }
            epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
            s->state = ST_IDLE;
            held++;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "connrate: only %d of %d connections after 120s\n", held, n);
            return 1;
        }
    }
    printf("held %d\n", held);
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!atomic_load(&g_stop))
        poll(NULL, 0, 200);
    for (int i = 0; i < n; i++)
        close(slots[i].fd);
    free(slots);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: connrate rate -a HOST:PORT [-c CONC] [-t SECONDS] [-w WARMUP] [-j THREADS]"
            " [-s NSRC]\n"
            "       connrate hold -a HOST:PORT -n N [-c CONC] [-s NSRC]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    const char *addr = NULL;
    int conc = 50, threads = 1, n = 0, opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "a:c:t:w:j:s:n:")) != -1) {
        switch (opt) {
        case 'a':
            addr = optarg;
            break;
        case 'c':
            conc = atoi(optarg);
            break;
        case 't':
            g_seconds = atof(optarg);
            break;
        case 'w':
            g_warmup = atof(optarg);
            break;
        case 'j':
            threads = atoi(optarg);
            break;
        case 's':
            g_nsrc = atoi(optarg);
            break;
        case 'n':
            n = atoi(optarg);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!addr || parse_addr(addr, &g_dst) < 0 || conc < 1 || threads < 1 || g_nsrc < 1 ||
        g_nsrc > 254) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "rate") == 0)
        return run_rate(conc, threads < conc ? threads : conc);
    if (strcmp(mode, "hold") == 0 && n > 0)
        return run_hold(n, conc);
    usage();
    return 2;
}
