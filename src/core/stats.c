#include "core/stats.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *const http_err_names[HTTP_ERR_COUNT] = {
    [HTTP_ERR_BAD_REQUEST] = "bad_request",
    [HTTP_ERR_NO_ROUTE] = "no_route",
    [HTTP_ERR_TIMEOUT] = "request_timeout",
    [HTTP_ERR_BODY_TOO_LARGE] = "body_too_large",
    [HTTP_ERR_URI_TOO_LONG] = "uri_too_long",
    [HTTP_ERR_EXPECTATION] = "expectation_failed",
    [HTTP_ERR_HEADERS_TOO_LARGE] = "headers_too_large",
    [HTTP_ERR_NOT_IMPLEMENTED] = "not_implemented",
    [HTTP_ERR_BAD_GATEWAY] = "bad_gateway",
    [HTTP_ERR_NO_SERVER] = "no_server",
    [HTTP_ERR_GATEWAY_TIMEOUT] = "gateway_timeout",
    [HTTP_ERR_VERSION] = "version_not_supported",
    [HTTP_ERR_RATE_LIMITED] = "rate_limited",
    [HTTP_ERR_MISDIRECTED] = "misdirected",
    [HTTP_ERR_H2_ABUSE] = "http2_abuse",
    [HTTP_ERR_H2_PROTOCOL] = "http2_protocol_error",
    [HTTP_ERR_H2_FLOOD] = "http2_flood",
    [HTTP_ERR_H2_CONTINUATION] = "http2_continuation_flood",
    [HTTP_ERR_H2_EMPTY_FRAMES] = "http2_empty_frames",
};

const char *const http_proto_names[HTTP_PROTO_COUNT] = {
    [HTTP_PROTO_10] = "HTTP/1.0",
    [HTTP_PROTO_11] = "HTTP/1.1",
    [HTTP_PROTO_2] = "HTTP/2",
};

const double hist_bounds[HIST_BOUNDS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void hist_observe(struct histogram *h, uint64_t usec)
{
    double s = (double)usec / 1e6;
    size_t i = 0;
    while (i < HIST_BOUNDS && s > hist_bounds[i])
        i++;
    counter_add(&h->buckets[i], 1);
    counter_add(&h->count, 1);
    counter_add(&h->sum_us, usec);
}

void hist_sum_into(struct histogram *dst, const struct histogram *src)
{
    for (size_t i = 0; i <= HIST_BOUNDS; i++)
        counter_add(&dst->buckets[i], counter_get(&src->buckets[i]));
    counter_add(&dst->count, counter_get(&src->count));
    counter_add(&dst->sum_us, counter_get(&src->sum_us));
}

/* A registry of stats objects of one kind. Every object starts with its `char *name`
 * (the first member of listener_stats and backend_stats); searched linearly, since there
 * are a handful of names. */
struct registry {
    void **items;
    size_t len;
    size_t header, slot, workers_off; /* layout of the kind */
};

static struct registry listener_reg = {
    .header = sizeof(struct listener_stats),
    .slot = sizeof(struct listener_slot),
    .workers_off = offsetof(struct listener_stats, workers),
};
static struct registry backend_reg = {
    .header = sizeof(struct backend_stats),
    .slot = sizeof(struct backend_slot),
    .workers_off = offsetof(struct backend_stats, workers),
};

static struct registry server_reg = {
    .header = sizeof(struct server_stats),
    .slot = sizeof(struct server_slot),
    .workers_off = offsetof(struct server_stats, workers),
};

static const char *item_name(const void *item)
{
    return *(char *const *)item;
}

/* The object called `name` in r, created zeroed with `workers` cache-aligned slots on
 * first use. NULL on allocation failure. */
static void *registry_get(struct registry *r, const char *name, int workers)
{
    for (size_t i = 0; i < r->len; i++)
        if (strcmp(item_name(r->items[i]), name) == 0)
            return r->items[i];
    size_t size = (r->header + r->slot * (size_t)workers + 63) & ~(size_t)63;
    char *item = aligned_alloc(64, size);
    char *copy = strdup(name);
    void **items = realloc(r->items, (r->len + 1) * sizeof(*items));
    if (items)
        r->items = items;
    if (!item || !copy || !items) {
        free(item);
        free(copy);
        return NULL;
    }
    memset(item, 0, size);
    memcpy(item, &copy, sizeof(copy));
    memcpy(item + r->workers_off, &workers, sizeof(workers));
    r->items[r->len++] = item;
    return item;
}

static void registry_clear(struct registry *r)
{
    for (size_t i = 0; i < r->len; i++) {
        free(*(char **)r->items[i]);
        free(r->items[i]);
    }
    free(r->items);
    r->items = NULL;
    r->len = 0;
}

struct listener_stats *listener_stats_get(const char *name, int workers)
{
    return registry_get(&listener_reg, name, workers);
}

struct backend_stats *backend_stats_get(const char *name, int workers)
{
    return registry_get(&backend_reg, name, workers);
}

struct server_stats *server_stats_get(const char *backend, const char *address, int workers)
{
    /* names and addresses hold no line feed: the pair is one unambiguous key */
    size_t nb = strlen(backend), na = strlen(address);
    char *key = malloc(nb + na + 2);
    if (!key)
        return NULL;
    memcpy(key, backend, nb);
    key[nb] = '\n';
    memcpy(key + nb + 1, address, na + 1);
    struct server_stats *st = registry_get(&server_reg, key, workers);
    free(key);
    return st;
}

void stats_registry_free(void)
{
    registry_clear(&listener_reg);
    registry_clear(&backend_reg);
    registry_clear(&server_reg);
}
