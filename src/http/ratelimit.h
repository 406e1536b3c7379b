/* Request rate limits of http routes (`rate_limit`, shared/spec/http.md "Route policy";
 * docs/http.md "Rate limits"): one budget per key for the whole process, shared by every
 * worker thread without a lock.
 *
 * Algorithm: GCRA, the generic cell rate algorithm (a token bucket kept as one number per
 * key, its "theoretical arrival time"): `requests` per `per` on average, up to `burst` at
 * once (a full bucket). One compare-and-swap per request.
 *
 * Key table: fixed at creation, `max_keys` slots (16 bytes each) in sets of 8; a key lives
 * in the set its hash names. A key that is not in its set takes an empty slot, else the
 * slot whose bucket is fullest (the smallest arrival time: a key idle long enough has a
 * full bucket, so forgetting it changes nothing; one that is being limited has the
 * largest and is kept). So memory never grows, a flood of distinct clients evicts mostly
 * its own fresh entries, and a key evicted before its bucket refilled starts again with a
 * full one (the limit errs on the lenient side, never against a client). Concurrent
 * eviction of the same slot may briefly share a budget between two keys. */
#ifndef SLUICE_HTTP_RATELIMIT_H
#define SLUICE_HTTP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;
struct cfg_listener;

#define RATELIMIT_SET 8 /* slots per set */

/* A limiter of `requests` (>= 1) per `per_ns` (>= 1) nanoseconds, `burst` (>= 1) at once,
 * over a table of max_keys slots (rounded up to a multiple of RATELIMIT_SET). One
 * reference; NULL when out of memory. */
struct ratelimit *ratelimit_new(uint64_t requests, uint64_t per_ns, uint64_t burst,
                                size_t max_keys);
struct ratelimit *ratelimit_ref(struct ratelimit *rl);
void ratelimit_unref(struct ratelimit *rl);

/* Counts one request of `key` at monotonic time now_ns. Returns 0 when it is allowed,
 * else how many nanoseconds until it would be (and counts nothing). Any thread. */
uint64_t ratelimit_take(struct ratelimit *rl, uint64_t key, uint64_t now_ns);

/* How many slots the table has (for tests and the docs' memory figure). */
size_t ratelimit_slots(const struct ratelimit *rl);

/* Gives every route of `l` with a rate_limit its limiter: the one of the same route (same
 * index, same settings) of `prev` (the listener of the same name in the previous
 * snapshot, or NULL) when there is one, so a reload does not refill the budgets; else a
 * new one. Returns 0, or -1 when out of memory. */
int ratelimit_attach(struct cfg_listener *l, const struct cfg_listener *prev);

/* Lets go of the limiters of l's routes. */
void ratelimit_detach(struct cfg_listener *l);

#endif
