/* sluice-demo: a small backend server for the quickstart, the end-to-end tests and the
 * benchmarks.
 *
 * One thread, one epoll loop, non-blocking sockets, level-triggered events. Every
 * connection owns at most one bounded buffer (DEMO_BUF_SIZE bytes), taken when data is
 * in flight and given back when it drains, so thousands of idle connections cost little.
 * When the buffer is full the connection stops reading (backpressure): a client that
 * does not read its replies cannot make the server hold more than one buffer for it.
 *
 * Modes:
 *   echo    every byte read is written back unchanged. A FIN from the client (half-close)
 *           is answered by finishing the echo, then shutting down our write side.
 *   banner  writes "NAME\n" on connect, then echoes (lets tests see which server answered).
 *           With --close-after-banner the server closes (FIN) right after the banner.
 *   pong    each line "PING" (CRLF or LF) is answered with "+PONG\r\n", anything else
 *           with "-ERR unknown command\r\n".
 *   http    HTTP/1.1 keep-alive: each request gets 200 with body "hello from NAME\n" (with the
 *           request's X-Forwarded-For, when it has one, in parentheses).
 *   websocket  RFC 6455 echo: a GET with Upgrade: websocket gets 101, then every frame comes
 *           back unmasked with its opcode and FIN (fragments stay fragments, any size,
 *           streamed through the one buffer), a ping comes back as a pong, a pong is dropped,
 *           a close comes back with its code and reason and then the connection closes.
 *           Other requests get 426. See ws_process().
 *
 * Prints "ready" on stdout once every --listen address is bound. SIGTERM/SIGINT exit 0. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <openssl/evp.h>

#define DEMO_BUF_SIZE (16 * 1024)
#define DEMO_MAX_LISTEN 16
#define DEMO_BACKLOG 4096
#define DEMO_MAX_EVENTS 256

enum demo_mode { MODE_ECHO, MODE_HTTP, MODE_BANNER, MODE_PONG, MODE_WS };

/* Bytes waiting to be written (out) and, for line/request modes, bytes read but not yet
 * parsed (in). Both are allocated on demand and freed when empty. */
struct demo_buf {
    char *data;
    size_t start, len; /* valid bytes are data[start, start+len) */
};

/* epoll data points at one of these; the first member tells which. */
enum demo_kind { KIND_SIGNAL, KIND_LISTENER, KIND_CONN };

struct demo_conn {
    enum demo_kind kind; /* KIND_CONN */
    int fd;
    struct demo_buf in, out;
    bool rd_eof;      /* the peer sent FIN (or we stopped reading for good) */
    bool wr_shut;     /* we sent FIN */
    bool close_after; /* close once `out` is flushed (http Connection: close) */
    uint32_t events;  /* what is registered with epoll now */
    /* websocket mode: after the 101, frames in `in` are parsed one header at a time and
     * their payload streamed (unmasked) into `out`. */
    bool ws_open;                  /* the 101 is queued: `in` holds frames */
    bool ws_in_payload;            /* a frame header was read: ws_left payload bytes follow */
    bool ws_drop;                  /* the payload is discarded (a client pong) */
    bool ws_close_frame;           /* the frame is a close: end the connection after it */
    unsigned char ws_mask[4];      /* the frame's masking key */
    unsigned ws_mask_pos;          /* payload bytes unmasked so far, modulo 4 */
    unsigned long long ws_left;    /* payload bytes of the frame still to come */
    struct demo_conn *prev, *next; /* every open connection, to free them on exit */
};

struct demo_listener {
    enum demo_kind kind; /* KIND_LISTENER */
    int fd;
    bool paused; /* accept hit EMFILE/ENFILE: removed from epoll until a close */
};

static struct {
    enum demo_mode mode;
    const char *name;
    bool close_after_banner;
    int epfd;
    int sigfd;
    enum demo_kind sig_kind; /* KIND_SIGNAL: epoll data for the signalfd */
    struct demo_listener listeners[DEMO_MAX_LISTEN];
    int n_listeners;
    int any_paused;
    long n_conns;
    struct demo_conn *conns;
} g = {.mode = MODE_ECHO, .name = "sluice-demo", .epfd = -1, .sigfd = -1, .sig_kind = KIND_SIGNAL};

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-demo --listen ADDR:PORT [--listen ...] --mode "
               "echo|http|banner|pong|websocket\n"
               "                   [--name NAME] [--close-after-banner]\n"
               "\n"
               "  --listen ADDR:PORT    address to serve (127.0.0.1:9001, [::1]:9001, *:9001);\n"
               "                        repeatable, port 0 picks a free port (printed on stderr)\n"
               "  --mode MODE           echo: send back every byte (half-close aware)\n"
               "                        http: answer each HTTP/1.1 request with 200 \"hello from "
               "NAME\"\n"
               "                        banner: write \"NAME\\n\" on connect, then echo\n"
               "                        pong: answer each line \"PING\" with \"+PONG\\r\\n\"\n"
               "                        websocket: RFC 6455 echo (101, then frames back)\n"
               "  --name NAME           name used by banner and http (default sluice-demo)\n"
               "  --close-after-banner  banner mode: close the connection after the banner\n"
               "  --help                this text\n"
               "\n"
               "Prints \"ready\" on stdout when listening; SIGTERM or SIGINT stops it (exit 0).\n");
}

/* Ensures `b` has its storage; returns 0 or -ENOMEM. */
static int buf_take(struct demo_buf *b)
{
    if (b->data)
        return 0;
    b->data = malloc(DEMO_BUF_SIZE);
    if (!b->data)
        return -ENOMEM;
    b->start = b->len = 0;
    return 0;
}

/* Frees the storage of an empty buffer. */
static void buf_release_if_empty(struct demo_buf *b)
{
    if (b->data && b->len == 0) {
        free(b->data);
        b->data = NULL;
        b->start = 0;
    }
}

/* Free room at the tail, after moving the valid bytes to the front when useful. */
static size_t buf_room(struct demo_buf *b)
{
    if (!b->data)
        return DEMO_BUF_SIZE;
    if (b->start > 0 && b->start + b->len == DEMO_BUF_SIZE) {
        memmove(b->data, b->data + b->start, b->len);
        b->start = 0;
    }
    return DEMO_BUF_SIZE - b->start - b->len;
}

/* Appends `len` bytes; the caller has checked buf_room(). */
static int buf_append(struct demo_buf *b, const char *p, size_t len)
{
    if (buf_take(b) < 0)
        return -ENOMEM;
    if (buf_room(b) < len)
        return -ENOBUFS;
    memcpy(b->data + b->start + b->len, p, len);
    b->len += len;
    return 0;
}

static void buf_consume(struct demo_buf *b, size_t n)
{
    b->start += n;
    b->len -= n;
    if (b->len == 0)
        b->start = 0;
}

static void conn_free(struct demo_conn *c)
{
    epoll_ctl(g.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    if (c->prev)
        c->prev->next = c->next;
    else
        g.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    g.n_conns--;
    if (g.any_paused) {
        for (int i = 0; i < g.n_listeners; i++) {
            struct demo_listener *l = &g.listeners[i];
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
            if (l->paused && epoll_ctl(g.epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0)
                l->paused = false;
        }
        g.any_paused = 0;
    }
}

/* Room the mode needs in `out` before it may read more: echo needs any, the line and
 * request modes need space for a whole reply. */
static size_t reply_room_needed(void)
{
    switch (g.mode) {
    case MODE_PONG:
        return 64;
    case MODE_HTTP:
    case MODE_WS:
        return 512;
    default:
        return 1;
    }
}

/* Registers the events the connection wants now: read while it can still hold what it
 * reads, write while something is pending. */
static int conn_update(struct demo_conn *c)
{
    uint32_t want = 0;
    if (!c->rd_eof) {
        bool room = buf_room(&c->out) >= reply_room_needed();
        if (g.mode == MODE_HTTP || g.mode == MODE_PONG || g.mode == MODE_WS)
            room = room && buf_room(&c->in) > 0;
        if (room)
            want |= EPOLLIN | EPOLLRDHUP;
    }
    if (c->out.len > 0)
        want |= EPOLLOUT;
    if (want == c->events)
        return 0;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return -errno;
    c->events = want;
    return 0;
}

/* Finds "\r\n\r\n" in [p, p+len); returns the header length including it, or 0. */
static size_t http_header_end(const char *p, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Looks up header `name` in a request head; copies its trimmed value into val. */
static bool http_header(const char *head, size_t len, const char *name, char *val, size_t vlen)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', len); /* skip the request line */
    const char *end = head + len;
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t n = (size_t)(ve - v) < vlen - 1 ? (size_t)(ve - v) : vlen - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            return true;
        }
        p = eol;
    }
    return false;
}

/* Queues one HTTP response. `client`: the X-Forwarded-For the request carried (a proxy in
 * front says who the client is), shown in the body; NULL or "" when none. */
static int http_reply(struct demo_conn *c, int status, const char *reason, bool head_only,
                      bool keep_alive, const char *client)
{
    char body[160], msg[512];
    int blen =
        status != 200 ? snprintf(body, sizeof(body), "%s\n", reason)
        : client && *client
            ? snprintf(body, sizeof(body), "hello from %s (X-Forwarded-For: %s)\n", g.name, client)
            : snprintf(body, sizeof(body), "hello from %s\n", g.name);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        blen = (int)sizeof(body) - 1;
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %d %s\r\nServer: sluice-demo\r\nX-Served-By: %s\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n"
                     "%.*s",
                     status, reason, g.name, blen, keep_alive ? "keep-alive" : "close",
                     head_only ? 0 : blen, body);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -ENOBUFS;
    if (!keep_alive)
        c->close_after = true;
    return buf_append(&c->out, msg, (size_t)n);
}

/* Parses every complete request in `in` (while `out` can take a reply). Request bodies
 * with Content-Length are skipped; chunked bodies are refused with 411 and a close. */
static int http_process(struct demo_conn *c)
{
    while (c->in.len > 0 && !c->close_after && buf_room(&c->out) >= reply_room_needed()) {
        char *p = c->in.data + c->in.start;
        size_t hlen = http_header_end(p, c->in.len);
        if (hlen == 0) {
            if (c->in.len >= DEMO_BUF_SIZE)
                return http_reply(c, 431, "Request Header Fields Too Large", false, false, NULL);
            return 0;
        }
        char val[64];
        unsigned long long clen = 0;
        if (http_header(p, hlen, "Content-Length", val, sizeof(val)))
            clen = strtoull(val, NULL, 10);
        if (http_header(p, hlen, "Transfer-Encoding", val, sizeof(val)))
            return http_reply(c, 411, "Length Required", false, false, NULL);
        if (hlen + clen > c->in.len) {
            if (hlen + clen > DEMO_BUF_SIZE)
                return http_reply(c, 413, "Content Too Large", false, false, NULL);
            return 0; /* wait for the body */
        }
        bool http10 = memmem(p, hlen, "HTTP/1.0\r\n", 10) != NULL;
        bool keep = !http10;
        if (http_header(p, hlen, "Connection", val, sizeof(val))) {
            if (strcasecmp(val, "close") == 0)
                keep = false;
            else if (strcasecmp(val, "keep-alive") == 0)
                keep = true;
        }
        bool head = hlen >= 5 && memcmp(p, "HEAD ", 5) == 0;
        char xff[64] = "";
        http_header(p, hlen, "X-Forwarded-For", xff, sizeof(xff));
        int rc = http_reply(c, 200, "OK", head, keep, xff);
        if (rc < 0)
            return rc;
        buf_consume(&c->in, hlen + (size_t)clen);
    }
    return 0;
}

/* Answers every complete line in `in`. */
static int pong_process(struct demo_conn *c)
{
    while (c->in.len > 0 && buf_room(&c->out) >= reply_room_needed()) {
        char *p = c->in.data + c->in.start;
        char *nl = memchr(p, '\n', c->in.len);
        if (!nl) {
            if (c->in.len >= DEMO_BUF_SIZE)
                buf_consume(&c->in, c->in.len); /* an absurd line: drop it */
            return 0;
        }
        size_t llen = (size_t)(nl - p);
        if (llen > 0 && p[llen - 1] == '\r')
            llen--;
        static const char pong[] = "+PONG\r\n", err[] = "-ERR unknown command\r\n";
        int rc = (llen == 4 && strncasecmp(p, "PING", 4) == 0)
                     ? buf_append(&c->out, pong, sizeof(pong) - 1)
                     : buf_append(&c->out, err, sizeof(err) - 1);
        if (rc < 0)
            return rc;
        buf_consume(&c->in, (size_t)(nl - p) + 1);
    }
    return 0;
}

/* Queues the 101 for a websocket handshake request (`head`, `hlen` bytes), or a 426 and a
 * close when it is not one. Sec-WebSocket-Accept per RFC 6455 4.2.2. */
static int ws_handshake(struct demo_conn *c, const char *head, size_t hlen)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char upgrade[64], connection[128], key[64];
    if (!http_header(head, hlen, "Upgrade", upgrade, sizeof(upgrade)) ||
        strcasecmp(upgrade, "websocket") != 0 ||
        !http_header(head, hlen, "Connection", connection, sizeof(connection)) ||
        !strcasestr(connection, "upgrade") ||
        !http_header(head, hlen, "Sec-WebSocket-Key", key, sizeof(key)) || strlen(key) != 24)
        return http_reply(c, 426, "Upgrade Required", false, false, NULL);
    char both[sizeof(key) + sizeof(guid)];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int blen = snprintf(both, sizeof(both), "%s%s", key, guid);
    if (!EVP_Digest(both, (size_t)blen, digest, &dlen, EVP_sha1(), NULL))
        return -EIO;
    char accept[64];
    EVP_EncodeBlock((unsigned char *)accept, digest, (int)dlen);
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Served-By: %s\r\n\r\n",
                     accept, g.name);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -ENOBUFS;
    c->ws_open = true;
    return buf_append(&c->out, msg, (size_t)n);
}

/* Reads one client frame header from `in` when it is complete and `out` has room for ours;
 * queues our header (same FIN and opcode, unmasked; a ping becomes a pong). Returns 1 when
 * a header was taken, 0 to wait, -EPROTO for an unmasked client frame. */
static int ws_frame_header(struct demo_conn *c)
{
    const unsigned char *p = (const unsigned char *)c->in.data + c->in.start;
    size_t have = c->in.len;
    if (have < 2 || buf_room(&c->out) < 10)
        return 0;
    if (!(p[1] & 0x80))
        return -EPROTO; /* RFC 6455 5.1: client frames are masked */
    unsigned long long len = p[1] & 0x7f;
    size_t hlen = 2;
    if (len == 126)
        hlen += 2;
    else if (len == 127)
        hlen += 8;
    if (have < hlen + 4)
        return 0;
    if (len >= 126) {
        len = 0;
        for (size_t i = 2; i < hlen; i++)
            len = len << 8 | p[i];
    }
    memcpy(c->ws_mask, p + hlen, 4);
    unsigned opcode = p[0] & 0x0f;
    c->ws_drop = opcode == 0xA;
    c->ws_close_frame = opcode == 0x8;
    unsigned char out[10];
    size_t olen = 2;
    out[0] = opcode == 0x9 ? (unsigned char)((p[0] & 0xf0) | 0xA) : p[0];
    if (len < 126) {
        out[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        olen = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        olen = 10;
    }
    buf_consume(&c->in, hlen + 4);
    if (!c->ws_drop && buf_append(&c->out, (const char *)out, olen) < 0)
        return -ENOMEM;
    c->ws_left = len;
    c->ws_mask_pos = 0;
    c->ws_in_payload = true;
    return 1;
}

/* Websocket mode: the handshake, then frames from `in` to `out` as room allows (a payload
 * of any size streams through; backpressure as for echo). A close frame, once echoed,
 * ends the connection. Returns 0, or <0 to close. */
static int ws_process(struct demo_conn *c)
{
    if (!c->ws_open) {
        size_t hlen = http_header_end(c->in.data + c->in.start, c->in.len);
        if (hlen == 0)
            return c->in.len >= DEMO_BUF_SIZE
                       ? http_reply(c, 431, "Request Header Fields Too Large", false, false, NULL)
                       : 0;
        int rc = ws_handshake(c, c->in.data + c->in.start, hlen);
        buf_consume(&c->in, hlen);
        if (rc < 0 || c->close_after)
            return rc;
    }
    while (!c->close_after) {
        if (!c->ws_in_payload) {
            int rc = ws_frame_header(c);
            if (rc <= 0)
                return rc;
        }
        size_t n = c->in.len < c->ws_left ? c->in.len : (size_t)c->ws_left;
        if (!c->ws_drop) {
            size_t room = buf_room(&c->out);
            n = n < room ? n : room;
            if (n > 0 && buf_take(&c->out) < 0)
                return -ENOMEM;
            unsigned char *dst = (unsigned char *)c->out.data + c->out.start + c->out.len;
            const unsigned char *src = (const unsigned char *)c->in.data + c->in.start;
            for (size_t i = 0; i < n; i++)
                dst[i] = src[i] ^ c->ws_mask[(c->ws_mask_pos + i) & 3];
            c->out.len += n;
        }
        c->ws_mask_pos = (unsigned)((c->ws_mask_pos + n) & 3);
        buf_consume(&c->in, n);
        c->ws_left -= n;
        if (c->ws_left > 0)
            return 0; /* wait for more bytes or more room */
        c->ws_in_payload = false;
        if (c->ws_close_frame)
            c->close_after = true;
    }
    return 0;
}

/* Runs the parser of a request/frame mode over what `in` holds. */
static int process_input(struct demo_conn *c)
{
    switch (g.mode) {
    case MODE_HTTP:
        return http_process(c);
    case MODE_PONG:
        return pong_process(c);
    case MODE_WS:
        return ws_process(c);
    default:
        return 0;
    }
}

/* Reads what the socket has and the buffers can hold. Returns 0, or <0 to close. */
static int conn_read(struct demo_conn *c)
{
    struct demo_buf *dst =
        (g.mode == MODE_HTTP || g.mode == MODE_PONG || g.mode == MODE_WS) ? &c->in : &c->out;
    if (g.mode == MODE_BANNER && g.close_after_banner) {
        char sink[4096]; /* discard until the client closes */
        for (;;) {
            ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
            if (n > 0)
                continue;
            if (n == 0) {
                c->rd_eof = true;
                return 0;
            }
            return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
        }
    }
    while (!c->rd_eof) {
        size_t room = buf_room(dst);
        if (room == 0 || buf_room(&c->out) < reply_room_needed())
            break;
        if (buf_take(dst) < 0)
            return -ENOMEM;
        ssize_t n = recv(c->fd, dst->data + dst->start + dst->len, room, 0);
        if (n > 0) {
            dst->len += (size_t)n;
            if (dst == &c->in) {
                int rc = process_input(c);
                if (rc < 0)
                    return rc;
                if (c->close_after)
                    c->rd_eof = true; /* stop reading; close after the reply */
            }
            continue;
        }
        if (n == 0) {
            c->rd_eof = true;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        return -errno;
    }
    buf_release_if_empty(dst);
    return 0;
}

/* Writes what is pending. Returns 0, or <0 to close. */
static int conn_write(struct demo_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out.start, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        return n < 0 ? -errno : -EIO;
    }
    buf_release_if_empty(&c->out);
    /* Replies may have been held back by a full `out`: parse what is waiting. */
    if (c->in.len > 0 && !c->close_after) {
        int rc = process_input(c);
        if (rc < 0)
            return rc;
        if (c->close_after)
            c->rd_eof = true;
    }
    buf_release_if_empty(&c->in);
    return 0;
}

/* Decides what to do after I/O: half-close, close, or wait. Frees `c` when done and
 * returns 1 then; 0 when it lives on. */
static int conn_settle(struct demo_conn *c, int rc)
{
    if (rc < 0)
        goto close;
    if (c->out.len == 0) {
        bool done_reading = c->rd_eof;
        if (g.mode == MODE_BANNER && g.close_after_banner)
            done_reading = true; /* FIN after the banner, then wait for theirs */
        if (c->close_after)
            goto close;
        if (done_reading && !c->wr_shut) {
            shutdown(c->fd, SHUT_WR);
            c->wr_shut = true;
        }
        if (c->wr_shut && c->rd_eof)
            goto close;
    }
    if (conn_update(c) < 0)
        goto close;
    return 0;
close:
    conn_free(c);
    return 1;
}

static void accept_all(struct demo_listener *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                epoll_ctl(g.epfd, EPOLL_CTL_DEL, l->fd, NULL);
                l->paused = true;
                g.any_paused = 1;
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct demo_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->kind = KIND_CONN;
        c->fd = fd;
        c->events = EPOLLIN | EPOLLRDHUP;
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        g.n_conns++;
        c->next = g.conns;
        if (g.conns)
            g.conns->prev = c;
        g.conns = c;
        if (g.mode == MODE_BANNER) {
            char line[300];
            int n = snprintf(line, sizeof(line), "%s\n", g.name);
            int rc = buf_append(&c->out, line, (size_t)n);
            if (rc == 0)
                rc = conn_write(c);
            conn_settle(c, rc);
        }
    }
}

/* Parses "HOST:PORT", "[V6]:PORT" or "*:PORT" and binds a listening socket. */
static int listen_on(const char *text)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || strlen(colon + 1) == 0) {
        fprintf(stderr, "sluice-demo: bad address '%s' (want HOST:PORT)\n", text);
        return -EINVAL;
    }
    size_t hlen = (size_t)(colon - text);
    const char *h = text;
    if (text[0] == '[' && colon[-1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        fprintf(stderr, "sluice-demo: bad address '%s'\n", text);
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? "0.0.0.0" : host, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "sluice-demo: %s: %s\n", text, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, DEMO_BACKLOG) < 0) {
        fprintf(stderr, "sluice-demo: %s: %s\n", text, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -EADDRINUSE;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
            port = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
            port = ntohs(s4->sin_port);
        }
    }
    struct demo_listener *l = &g.listeners[g.n_listeners++];
    l->kind = KIND_LISTENER;
    l->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    fprintf(stderr, "sluice-demo: %s listening on %s%s%s:%d\n", g.name,
            ss.ss_family == AF_INET6 ? "[" : "", ip, ss.ss_family == AF_INET6 ? "]" : "", port);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"mode", required_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'n'},   {"close-after-banner", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *addrs[DEMO_MAX_LISTEN];
    int n_addrs = 0, opt;
    while ((opt = getopt_long(argc, argv, "l:m:n:ch", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (n_addrs == DEMO_MAX_LISTEN) {
                fprintf(stderr, "sluice-demo: at most %d --listen\n", DEMO_MAX_LISTEN);
                return 2;
            }
            addrs[n_addrs++] = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "echo") == 0)
                g.mode = MODE_ECHO;
            else if (strcmp(optarg, "http") == 0)
                g.mode = MODE_HTTP;
            else if (strcmp(optarg, "banner") == 0)
                g.mode = MODE_BANNER;
            else if (strcmp(optarg, "pong") == 0)
                g.mode = MODE_PONG;
            else if (strcmp(optarg, "websocket") == 0)
                g.mode = MODE_WS;
            else {
                fprintf(stderr, "sluice-demo: unknown mode '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n':
            if (strlen(optarg) == 0 || strlen(optarg) > 200) {
                fprintf(stderr, "sluice-demo: --name must be 1-200 characters\n");
                return 2;
            }
            g.name = optarg;
            break;
        case 'c':
            g.close_after_banner = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (n_addrs == 0 || optind != argc) {
        usage(stderr);
        return 2;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    g.epfd = epoll_create1(EPOLL_CLOEXEC);
    g.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (g.epfd < 0 || g.sigfd < 0) {
        perror("sluice-demo: epoll/signalfd");
        return 2;
    }
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &g.sig_kind};
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.sigfd, &sev) < 0) {
        perror("sluice-demo: epoll_ctl");
        return 2;
    }
    for (int i = 0; i < n_addrs; i++)
        if (listen_on(addrs[i]) < 0)
            return 2;
    printf("ready\n");
    fflush(stdout);

    struct epoll_event evs[DEMO_MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(g.epfd, evs, DEMO_MAX_EVENTS, g.any_paused ? 100 : -1);
        if (n < 0 && errno != EINTR) {
            perror("sluice-demo: epoll_wait");
            return 2;
        }
        if (n == 0 && g.any_paused) {
            for (int i = 0; i < g.n_listeners; i++) {
                struct demo_listener *l = &g.listeners[i];
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
                if (l->paused && epoll_ctl(g.epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0)
                    l->paused = false;
            }
            g.any_paused = 0;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            enum demo_kind kind = *(enum demo_kind *)p;
            if (kind == KIND_SIGNAL) {
                struct signalfd_siginfo si;
                if (read(g.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    fprintf(stderr, "sluice-demo: %s: signal %u, exiting (%ld open)\n", g.name,
                            si.ssi_signo, g.n_conns);
                    return 0;
                }
                continue;
            }
            if (kind == KIND_LISTENER) {
                accept_all(p);
                continue;
            }
            struct demo_conn *c = p;
            int rc = 0;
            if (evs[i].events & EPOLLERR) {
                rc = -EIO;
            } else {
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
                    rc = conn_read(c);
                if (rc == 0 && c->out.len > 0)
                    rc = conn_write(c);
                if (rc == 0 && (evs[i].events & EPOLLHUP) && c->out.len > 0)
                    rc = -EPIPE; /* both directions are gone */
            }
            conn_settle(c, rc);
        }
    }
}
