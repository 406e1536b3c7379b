/* The main thread's controller: owns the current snapshot and the workers, performs
 * reloads and the graceful stop. Everything here runs on the main thread. */
#ifndef SLUICE_CORE_CONTROL_H
#define SLUICE_CORE_CONTROL_H

#include <stdbool.h>

#include "config/config.h"
#include "core/loop.h"
#include "core/runtime.h"
#include "core/worker.h"

struct control {
    struct loop loop;
    char *config_path;
    struct runtime *rt; /* current snapshot */
    struct worker *workers;
    int n_workers;
    struct runtime **retiring; /* old snapshots whose listeners close once workers ack */
    size_t n_retiring;
    struct timer ack_timer;
    bool stopping; /* listeners closed, connections draining */
    bool ready;    /* started and no SIGTERM yet: what /readyz reports */
    int signals_seen;
    uint64_t stop_deadline;
    struct timer delay_timer; /* shutdown_delay: closes the listeners when it fires */
};

extern struct control *the_control;

/* Loads the config, opens everything and starts the workers. Returns 0, or the process
 * exit code (1 config error, 2 other start-up failure) after printing the reason. */
int control_start(struct control *c, const char *config_path);

/* Reloads the configuration file. On failure nothing changes and every error is put in
 * errs (also logged). Returns 0 or -1. */
int control_reload(struct control *c, struct cfg_errors *errs);

/* Applies an admin change to a server (state and/or weight). Returns 0, -ENOENT. */
int control_set_server(struct control *c, const char *backend, const char *address, int admin_state,
                       int weight);

/* What /readyz and sluice_ready report: 1 once started (configuration loaded, every
 * listener open) until SIGTERM/SIGINT, else 0. 0 when no controller runs. */
bool control_ready(void);

/* Runs the main loop until the process should exit; returns the exit code. */
int control_run(struct control *c);

#endif
