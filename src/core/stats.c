#include "core/stats.h"

#include <stdlib.h>
#include <string.h>

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

/* Allocates a zeroed stats object with `workers` cache-aligned slots of `slot_size`. */
static void *stats_alloc(size_t header, size_t slot_size, int workers)
{
    size_t size = header + slot_size * (size_t)workers;
    size = (size + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static struct listener_stats *listener_stats_new(const char *name, int workers)
{
    struct listener_stats *s =
        stats_alloc(sizeof(*s), sizeof(struct listener_slot), workers);
    if (!s)
        return NULL;
    s->name = strdup(name);
    s->workers = workers;
    if (!s->name) {
        free(s);
        return NULL;
    }
    return s;
}

static struct backend_stats *backend_stats_new(const char *name, int workers)
{
    struct backend_stats *s = stats_alloc(sizeof(*s), sizeof(struct backend_slot), workers);
    if (!s)
        return NULL;
    s->name = strdup(name);
    s->workers = workers;
    if (!s->name) {
        free(s);
        return NULL;
    }
    return s;
}

/* Registry: a growing array per kind, searched linearly (a handful of names). */
static void **listener_reg;
static size_t listener_reg_len;
static void **backend_reg;
static size_t backend_reg_len;

static int reg_push(void ***arr, size_t *len, void *item)
{
    void **a = realloc(*arr, (*len + 1) * sizeof(*a));
    if (!a)
        return -1;
    a[(*len)++] = item;
    *arr = a;
    return 0;
}

struct listener_stats *listener_stats_get(const char *name, int workers)
{
    for (size_t i = 0; i < listener_reg_len; i++) {
        struct listener_stats *s = listener_reg[i];
        if (strcmp(s->name, name) == 0)
            return s;
    }
    struct listener_stats *s = listener_stats_new(name, workers);
    if (s && reg_push(&listener_reg, &listener_reg_len, s) < 0) {
        free(s->name);
        free(s);
        s = NULL;
    }
    return s;
}

struct backend_stats *backend_stats_get(const char *name, int workers)
{
    for (size_t i = 0; i < backend_reg_len; i++) {
        struct backend_stats *s = backend_reg[i];
        if (strcmp(s->name, name) == 0)
            return s;
    }
    struct backend_stats *s = backend_stats_new(name, workers);
    if (s && reg_push(&backend_reg, &backend_reg_len, s) < 0) {
        free(s->name);
        free(s);
        s = NULL;
    }
    return s;
}

void stats_registry_free(void)
{
    for (size_t i = 0; i < listener_reg_len; i++) {
        struct listener_stats *s = listener_reg[i];
        free(s->name);
        free(s);
    }
    for (size_t i = 0; i < backend_reg_len; i++) {
        struct backend_stats *s = backend_reg[i];
        free(s->name);
        free(s);
    }
    free(listener_reg);
    free(backend_reg);
    listener_reg = NULL;
    backend_reg = NULL;
    listener_reg_len = backend_reg_len = 0;
}
