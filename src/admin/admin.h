/* The admin HTTP server on admin.bind: dashboard, /metrics, /api/v1/... Runs on the main
 * thread's loop with its own listening socket, so it never competes with traffic. */
#ifndef SLUICE_ADMIN_ADMIN_H
#define SLUICE_ADMIN_ADMIN_H

#include <stddef.h>

struct control;
struct runtime;
struct admin;

/* Starts the admin server if rt->cfg->admin.enabled (returns a valid object either way).
 * Returns NULL with err set when the socket cannot be opened. */
struct admin *admin_new(struct control *c, char *err, size_t errlen);
/* A reload happened: re-read the token file, rebind if admin.bind changed. */
void admin_reconfigure(struct admin *a, struct runtime *rt);
void admin_free(struct admin *a);

#endif
