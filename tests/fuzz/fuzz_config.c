/* libFuzzer harness for the config loader: any input must load or fail cleanly, with
 * every error well formed, and everything freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

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
        for (size_t i = 0; i < errs.count; i++)
            if (strncmp(errs.items[i], "/fuzz/sluice.yaml:", 18) != 0)
                abort();
    }
    cfg_errors_free(&errs);
    return 0;
}
