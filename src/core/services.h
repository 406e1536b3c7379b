/* Main-thread services around the data path: health probes, DNS, the admin API and the
 * service manager (systemd). control.c calls these at the points of the life cycle. */
#ifndef SLUICE_CORE_SERVICES_H
#define SLUICE_CORE_SERVICES_H

#include <stddef.h>

struct control;
struct runtime;

/* Starts every service for the control's current snapshot. Returns 0 or -1 with err. */
int services_start(struct control *c, char *err, size_t errlen);
/* A new snapshot is live (after a reload). */
void services_reconfigure(struct runtime *rt);
/* Tells the service manager we are ready / stopping. */
void services_ready(void);
void services_stopping(void);
/* Stops and frees every service. */
void services_stop(void);

#endif
