/* Accepting on a non-blocking listening socket without spinning when the process runs out
 * of descriptors or memory.
 *
 * A level-triggered listening socket whose accept4() fails with EMFILE keeps reporting
 * itself readable: the caller must stop polling it and retry on a timer. accept_next()
 * tells the caller when to do so, and logs each such episode once: one warning when it
 * begins, one notice when it ends. An episode ends when the backlog is empty, not at the
 * first connection accepted again: while a backlog drains, descriptors may run out again
 * and again, and that is still the same episode. */
#ifndef SLUICE_NET_ACCEPT_H
#define SLUICE_NET_ACCEPT_H

#include <stdbool.h>
#include <sys/socket.h>

/* How long a starved listening socket stays unpolled before the next try. */
#define ACCEPT_RETRY_MS 50

enum accept_status {
    ACCEPT_OK,    /* *fd is a new non-blocking, close-on-exec socket */
    ACCEPT_EMPTY, /* nothing left to accept now: wait for the next readiness event */
    ACCEPT_SKIP,  /* one connection failed on its own (aborted, network error): try again */
    ACCEPT_PAUSE, /* out of descriptors or memory, or the socket is broken: stop polling it
                     and try again in ACCEPT_RETRY_MS */
};

/* One listening socket's state for logging: `starved` is set during an episode. */
struct accept_episode {
    bool starved;
};

/* Accepts one connection from lfd into *fd (peer address into peer/len when peer is not
 * NULL). `kind` and `name` name the socket in the log ("listener" "web", or "admin" NULL).
 * Logs the start and the end of a starvation episode, never a line per attempt. */
enum accept_status accept_next(int lfd, struct sockaddr *peer, socklen_t *len, int *fd,
                               struct accept_episode *ep, const char *kind, const char *name);

/* The caller took a whole batch of connections without meeting an empty backlog. During
 * an episode, checks (one poll) whether the backlog is empty now, and if so ends the
 * episode: the level-triggered event that would have told it may never come. */
void accept_batch_done(int lfd, struct accept_episode *ep, const char *kind, const char *name);

#endif
