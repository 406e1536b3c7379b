/* A proxied Layer 4 connection: a client socket, a server socket, and the bytes flowing
 * between them. Lives and dies on the worker that accepted it.
 *
 * Life cycle: accept -> [PROXY header] -> [ClientHello peek | TLS handshake] -> route ->
 * connect (with retries) -> [TLS to server] -> established (pump both ways) -> close,
 * which writes one access log line. */
#ifndef SLUICE_L4_CONN_H
#define SLUICE_L4_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "core/runtime.h"
#include "proxy/pump.h"
#include "proxy/conn.h"
#include "proxy/sock.h"
#include "proxy/tls_step.h"
#include "proxy/term.h"
#include "upstream/connect.h"

struct worker;

enum l4_state {
    L4_PROXY_HDR,   /* reading a PROXY protocol header from the client */
    L4_HELLO,       /* peeking the TLS ClientHello for SNI routing (passthrough) */
    L4_TLS_ACCEPT,  /* TLS handshake with the client (termination) */
    L4_CONNECTING,  /* TCP connect to a server in progress */
    L4_TLS_CONNECT, /* TLS handshake with the server (re-encryption) */
    L4_ESTABLISHED, /* pumping bytes */
};

struct l4_conn {
    struct conn conn;         /* first: what the worker knows (list, ops, snapshot, listener) */
    struct up_attempt at;     /* backend, current server, servers tried, connect start */
    struct sock client, srv;  /* client.h and srv.h: the epoll cookies (container_of) */
    struct pump_dir up, down; /* up: client -> server; down: server -> client */
    struct timer timer;
    enum l4_state state;
    bool use_splice;      /* both sides plain TCP: bulk directions may splice */
    bool have_local_addr; /* local_addr is filled (lazily: only PROXY needs it) */
    uint8_t first_fin;    /* enum term: TERM_CLIENT_CLOSED or TERM_SERVER_CLOSED once one ended */
    uint64_t phase_deadline, connect_ms, last_io_ms;
    uint64_t idle_ms;
    uint64_t bytes_in, bytes_out;   /* from / to the client */
    const char *error;              /* static detail for the log */
    union sockaddr_any client_addr; /* the real client (after PROXY protocol) */
    union sockaddr_any local_addr;  /* address the client connected to */
    struct tls_conn_info *tls;      /* TLS and passthrough only; allocated on demand */
    uint8_t *peek;                  /* ClientHello peek buffers (HELLO state only) */
};

/* The conn_ops of tcp and tls listeners. */
extern const struct conn_ops l4_conn_ops;

/* Closes the connection: both sockets, pooled resources, counters, and writes the
 * access log line with `termination` (and the detail c->error). Worker thread only. */
void l4_conn_close(struct l4_conn *c, enum term termination);

/* Re-evaluates the connection's deadline (after a drain deadline changed). */
void l4_conn_rearm(struct l4_conn *c);

/* Moves bytes in both directions as far as possible. Returns 0, or 1 when it closed c. */
int l4_pump(struct l4_conn *c);

/* Picks a server of c->backend (skipping those tried) and starts connecting; closes c
 * with connect_failed / no_server when none is left. */
void l4_connect_next(struct l4_conn *c);
/* Starts a non-blocking connect to c->server. Returns 0, or -1 with c->error set. */
int l4_connect_server(struct l4_conn *c);
/* Both ends are ready (TLS to the server included): counts the server connection (its
 * connect time from the first attempt, connections_total) and starts pumping. */
void l4_established(struct l4_conn *c);

/* Appends the access log line for c to the worker's log buffer. */
void l4_log_access(struct l4_conn *c, enum term termination);

#endif
