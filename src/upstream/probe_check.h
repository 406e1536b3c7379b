/* One health check attempt: a non-blocking connect to one address, then optionally a
 * PROXY LOCAL header, a TLS handshake, and a send/expect exchange or an HTTP GET whose
 * response probe_http.h judges, bounded by a timeout.
 * Runs on the caller's loop (the main thread's); one socket and one timer per attempt. */
#ifndef SLUICE_UPSTREAM_PROBE_CHECK_H
#define SLUICE_UPSTREAM_PROBE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "upstream/probe_http.h"

#define PROBE_READ_CAP 4096 /* bytes of reply searched for `expect` */
#define PROBE_DETAIL_MAX 160

struct probe_check;
struct tls_client;

/* Called once when the attempt ends (never from probe_check_start itself, never after
 * probe_check_cancel). `detail` is a short human reason ("ok in 3 ms", "connection
 * refused", "timeout after 2000 ms"), valid only during the call. The check object is
 * already released when this runs. */
typedef void (*probe_check_done_cb)(void *arg, bool ok, const char *detail);

struct probe_check_params {
    const struct sockaddr *addr;
    socklen_t addr_len;
    uint64_t timeout_ms;    /* whole attempt, connect to verdict */
    int pp_version;         /* 0 none, 1 or 2: send a PROXY LOCAL/UNKNOWN header first */
    struct tls_client *tls; /* non-NULL: TLS handshake (with the context's verification) */
    const char *tls_host;   /* host part of the server address (name or IP) */
    const char *tls_sni;    /* health.host: overrides SNI and the name checked; or NULL */
    const char *send;       /* bytes to send after connecting (and TLS), or NULL */
    size_t send_len;
    const char *expect; /* substring the reply must contain within PROBE_READ_CAP, or
                           NULL/"" for none */
    /* non-NULL: an HTTP probe (send/expect are ignored): "GET <http_path> HTTP/1.1" with
       "Host: <http_host>", "User-Agent: sluice-health", "Connection: close" (the request
       is copied), the response judged by probe_http.h against *http (not copied). */
    const struct probe_http_expect *http;
    const char *http_path;
    const char *http_host;
};

/* Starts an attempt on `loop`. `send`, `expect` and `http` are NOT copied: they must stay valid
 * until the callback runs or the check is cancelled. On success returns 0 and stores the
 * check in *out. On an immediate failure (socket, connect refused at once, TLS object)
 * returns a negative errno and writes the reason to detail[0..detail_len); the callback
 * is then never called. */
int probe_check_start(struct loop *loop, const struct probe_check_params *prm,
                      probe_check_done_cb cb, void *arg, struct probe_check **out, char *detail,
                      size_t detail_len);

/* Aborts an attempt in progress without calling its callback and releases it. */
void probe_check_cancel(struct probe_check *c);

#endif
