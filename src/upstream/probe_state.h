/* The up/down decision of active health checks, as a pure state machine: no I/O, no
 * clock, no globals, so it is unit-tested on its own (tests/unit/test_probe.c).
 *
 * A server with a probe starts down. Its first successful check ever marks it up at once
 * (a fresh start becomes usable quickly); after that, `unhealthy_threshold` consecutive
 * failures mark it down and `healthy_threshold` consecutive successes mark it up again. */
#ifndef SLUICE_UPSTREAM_PROBE_STATE_H
#define SLUICE_UPSTREAM_PROBE_STATE_H

#include <stdbool.h>

struct probe_state {
    bool up;           /* the probes' verdict */
    bool seen_success; /* at least one check has succeeded since probing started */
    int successes;     /* consecutive successful checks (0 after a failure) */
    int failures;      /* consecutive failed checks (0 after a success) */
};

enum probe_change { PROBE_SAME, PROBE_WENT_UP, PROBE_WENT_DOWN };

/* Down, nothing seen yet. */
void probe_state_init(struct probe_state *st);

/* Records one check result and returns whether the verdict changed. Thresholds below 1
 * count as 1. Counters saturate instead of overflowing. */
enum probe_change probe_state_record(struct probe_state *st, bool ok, int healthy_threshold,
                                     int unhealthy_threshold);

/* Something else (passive health on live traffic) took the server down: the verdict
 * becomes down and the success streak restarts, so `healthy_threshold` successes are
 * needed to bring it back. Returns true when the state was up. */
bool probe_state_force_down(struct probe_state *st);

#endif
