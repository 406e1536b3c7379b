/* Active health probes, run by the main thread's loop (never by workers), once per
 * interval per server for the whole process. Results go into struct server (healthy,
 * last_check, counters) and are logged on every state change with the reason. */
#ifndef SLUICE_UPSTREAM_PROBE_H
#define SLUICE_UPSTREAM_PROBE_H

#include "core/loop.h"

struct runtime;
struct prober;

struct prober *prober_new(struct loop *loop);
/* Makes the set of probes match rt: starts probes for new servers with `health`, keeps
 * running ones for servers that remain (same object), stops probes of removed servers. */
void prober_sync(struct prober *p, struct runtime *rt);
void prober_free(struct prober *p);

#endif
