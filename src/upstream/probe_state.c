/* Health check threshold state machine. See probe_state.h. */
#include "upstream/probe_state.h"

#include <limits.h>

void probe_state_init(struct probe_state *st)
{
    *st = (struct probe_state){0};
}

enum probe_change probe_state_record(struct probe_state *st, bool ok, int healthy_threshold,
                                     int unhealthy_threshold)
{
    if (healthy_threshold < 1)
        healthy_threshold = 1;
    if (unhealthy_threshold < 1)
        unhealthy_threshold = 1;
    if (ok) {
        st->failures = 0;
        if (st->successes < INT_MAX)
            st->successes++;
        bool first = !st->seen_success;
        st->seen_success = true;
        if (!st->up && (first || st->successes >= healthy_threshold)) {
            st->up = true;
            return PROBE_WENT_UP;
        }
        return PROBE_SAME;
    }
    st->successes = 0;
    if (st->failures < INT_MAX)
        st->failures++;
    if (st->up && st->failures >= unhealthy_threshold) {
        st->up = false;
        return PROBE_WENT_DOWN;
    }
    return PROBE_SAME;
}

bool probe_state_force_down(struct probe_state *st)
{
    bool was_up = st->up;
    st->up = false;
    st->successes = 0;
    return was_up;
}
