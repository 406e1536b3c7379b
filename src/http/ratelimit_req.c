/* Applying a route's rate_limit to a request: its key (client address, a header's value,
 * or the route), one ratelimit_take, and the 429. See ratelimit.h and h1_conn.h. */
#include <netinet/in.h>
#include <time.h>

#include "http/h1_conn.h"
#include "http/h1_fields.h"
#include "http/ratelimit.h"
#include "upstream/balance.h"

/* The hash of the client's address bytes (no text formatting on this path). */
static uint64_t client_key(const struct h1_conn *c)
{
    const struct sockaddr *sa = &c->client_addr.sa;
    if (sa->sa_family == AF_INET6)
        return lb_hash(&((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return lb_hash(&((const struct sockaddr_in *)sa)->sin_addr, 4);
}

bool h1_rate_limited(struct h1_conn *c, bool has_body)
{
    struct h1_txn *t = c->t;
    const struct cfg_route *r = &t->lcfg->routes[t->route];
    uint64_t key = 1;
    if (r->rate_limit.key == RL_KEY_CLIENT_IP) {
        key = client_key(c);
    } else if (r->rate_limit.key == RL_KEY_HEADER) {
        /* a request without the header is counted by its client address */
        const struct h1_header *h = h1_find_header(&t->req, r->rate_limit.header);
        key = h ? lb_hash(h->value.p, h->value.len) : client_key(c);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    uint64_t wait = ratelimit_take(r->limiter, key, now);
    if (wait == 0)
        return false;
    uint64_t secs = (wait + 999999999ULL) / 1000000000ULL;
    t->retry_after = secs > 86400 ? 86400 : (unsigned)secs;
    h1_reply(c, 429, has_body, TERM_RATE_LIMITED, "rate limit exceeded");
    return true;
}
