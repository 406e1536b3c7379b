/* libFuzzer harness for the config loader: any input must load or fail cleanly, with
 * every error well formed (at most CFG_ERRORS_MAX of them, then "... and N more
 * errors"), and everything freed. Run it with tests/fuzz/fuzz_config.dict and a -max_len
 * large enough to reach the limits of the configuration file (see docs/configuration.md):
 * -max_len=65536 covers the depth, directive, anchor and alias limits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* Aborts unless errs lists 1 to CFG_ERRORS_MAX messages "/fuzz/sluice.yaml:...", then,
 * when more were found, exactly "... and N more errors". */
static void check_errors(const struct cfg_errors *errs)
{
    size_t listed = errs->count;

    if (errs->count == 0 || errs->count > CFG_ERRORS_MAX + 1)
        abort();
    if (errs->count == CFG_ERRORS_MAX + 1) {
        char want[64];
        listed = CFG_ERRORS_MAX;
        if (errs->total <= CFG_ERRORS_MAX)
            abort();
        snprintf(want, sizeof(want), "... and %zu more errors", errs->total - CFG_ERRORS_MAX);
        if (strcmp(errs->items[CFG_ERRORS_MAX], want) != 0)
            abort();
    } else if (errs->total != errs->count) {
        abort();
    }
    for (size_t i = 0; i < listed; i++)
        if (strncmp(errs->items[i], "/fuzz/sluice.yaml:", 18) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_errors errs = {0};
    struct config *cfg = config_load_buffer("/fuzz/sluice.yaml", (const char *)data, size, &errs);

    if (cfg != NULL) {
        if (errs.count != 0)
            abort();
        /* every backend reference resolves */
        for (size_t i = 0; i < cfg->n_listeners; i++) {
            const struct cfg_listener *l = &cfg->listeners[i];
            if (l->backend != NULL && config_backend_index(cfg, l->backend) != l->backend_index)
                abort();
            for (size_t r = 0; r < l->n_routes; r++)
                if (l->routes[r].action == ROUTE_BACKEND &&
                    (l->routes[r].backend_index < 0 ||
                     (size_t)l->routes[r].backend_index >= cfg->n_backends))
                    abort();
        }
        config_ref(cfg);
        config_unref(cfg);
        config_unref(cfg);
    } else {
        check_errors(&errs);
    }
    cfg_errors_free(&errs);
    return 0;
}
