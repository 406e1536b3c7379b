/* The top-level `resolver` section (extension): how server names are resolved.
 *
 *   resolver:
 *     nameservers: ["127.0.0.1:5353", "[::1]"]   # default: /etc/resolv.conf
 *     min_ttl: 1s     # re-resolve no more often than this
 *     max_ttl: 5m     # ... and at least this often
 *     retry: 5s       # after a failed lookup (the last good addresses are kept)
 *     timeout: 2s     # per attempt to a nameserver
 *
 * Values left out stay 0 in struct cfg_resolver, which the resolver reads as "default". */
#include "config/load_internal.h"

#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

#define RESOLVER_MAX_NAMESERVERS 16

static const char *const resolver_keys[] = {"nameservers", "min_ttl", "max_ttl",
                                            "retry",       "timeout", NULL};

/* Reads one nameserver item (the path names it) and appends it to out. */
static void ld_resolver_nameserver(struct ld *ld, yaml_node_t *item, struct cfg_strings *out)
{
    char *text = NULL;
    char canon[DNS_NAMESERVER_MAX];
    const char *why = NULL;

    if (ld_node_str(ld, item, &text) < 0)
        return;
    if (dns_parse_nameserver(text, canon, sizeof(canon), &why) < 0) {
        ld_error(ld, item, "\"%s\": %s", text, why);
        free(text);
        return;
    }
    out->items[out->count++] = text;
}

static void ld_resolver_nameservers(struct ld *ld, yaml_node_t *map, struct cfg_resolver *r)
{
    yaml_node_t *n = ld_get(ld, map, "nameservers");
    if (n == NULL)
        return;
    size_t mark = ld_push_key(ld, "nameservers");
    bool scalar = ld_scalar(n) != NULL && !ld_is_null(n);
    long len = scalar ? 1 : ld_seq_len(ld, n);
    if (len == 0) {
        ld_error(ld, n,
                 "expected at least one nameserver (leave the key out to use "
                 "/etc/resolv.conf)");
    } else if (len > RESOLVER_MAX_NAMESERVERS) {
        ld_error(ld, n, "at most %d nameservers", RESOLVER_MAX_NAMESERVERS);
    } else if (len > 0) {
        cfg_free_strings(&r->nameservers);
        r->nameservers.items = ld_calloc(ld, (size_t)len, sizeof(char *));
        for (long i = 0; r->nameservers.items && i < len; i++) {
            yaml_node_t *item = scalar ? n : ld_seq_item(ld, n, (size_t)i);
            if (item == NULL)
                break;
            size_t m2 = scalar ? 0 : ld_push_index(ld, (size_t)i);
            ld_resolver_nameserver(ld, item, &r->nameservers);
            if (!scalar)
                ld_pop(ld, m2);
        }
    }
    ld_pop(ld, mark);
}

void ld_load_resolver(struct ld *ld, yaml_node_t *n)
{
    struct cfg_resolver *r = &ld->cfg->resolver;

    if (!ld_check_map(ld, n, resolver_keys))
        return;
    ld_resolver_nameservers(ld, n, r);
    ld_duration(ld, n, "min_ttl", 100, 24ULL * 3600 * 1000, &r->min_ttl_ms);
    ld_duration(ld, n, "max_ttl", 1000, 7ULL * 24 * 3600 * 1000, &r->max_ttl_ms);
    ld_duration(ld, n, "retry", 100, 3600ULL * 1000, &r->retry_ms);
    ld_duration(ld, n, "timeout", 100, 60ULL * 1000, &r->timeout_ms);

    uint64_t lo = r->min_ttl_ms ? r->min_ttl_ms : DNS_DEFAULT_MIN_TTL_MS;
    uint64_t hi = r->max_ttl_ms ? r->max_ttl_ms : DNS_DEFAULT_MAX_TTL_MS;
    if (lo > hi) {
        yaml_node_t *at = ld_get(ld, n, r->max_ttl_ms ? "max_ttl" : "min_ttl");
        ld_error_key(ld, at, r->max_ttl_ms ? "max_ttl" : "min_ttl",
                     "min_ttl (%llu ms) must not exceed max_ttl (%llu ms)", (unsigned long long)lo,
                     (unsigned long long)hi);
    }
}
