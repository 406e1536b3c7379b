/* Loading a route's `rate_limit`: { requests, per, burst, key, max_keys }. The caller has
 * pushed "rate_limit" on the key path. */
#include "config/load_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const rl_keys[] = {"requests", "per", "burst", "key", "max_keys", NULL};

void ld_load_rate_limit(struct ld *ld, yaml_node_t *n, struct cfg_rate_limit *rl)
{
    if (!ld_check_map(ld, n, rl_keys))
        return;
    rl->set = true;
    rl->key = RL_KEY_CLIENT_IP;
    rl->max_keys = 16384;
    if (ld_get(ld, n, "requests") == NULL)
        ld_error(ld, n, "missing required key 'requests'");
    if (ld_get(ld, n, "per") == NULL)
        ld_error(ld, n, "missing required key 'per'");
    ld_int(ld, n, "requests", 1, 1000000000, &rl->requests);
    ld_duration(ld, n, "per", 1, 24ULL * 3600 * 1000, &rl->per_ms);
    rl->burst = rl->requests;
    ld_int(ld, n, "burst", 1, 1000000000, &rl->burst);
    ld_int(ld, n, "max_keys", 8, 4194304, &rl->max_keys);
    char *key = NULL;
    if (ld_str(ld, n, "key", &key) == 1) {
        yaml_node_t *kn = ld_get(ld, n, "key");
        if (strcmp(key, "client_ip") == 0) {
            rl->key = RL_KEY_CLIENT_IP;
        } else if (strcmp(key, "route") == 0) {
            rl->key = RL_KEY_ROUTE;
        } else if (strncmp(key, "header:", 7) == 0 && ld_valid_token(key + 7)) {
            rl->key = RL_KEY_HEADER;
            rl->header = ld_strdup(ld, key + 7);
        } else {
            ld_error_key(ld, kn, "key",
                         "invalid value '%s' (expected one of: client_ip, route, header:NAME)",
                         key);
        }
    }
    free(key);
}
