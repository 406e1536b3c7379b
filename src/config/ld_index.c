/* A hash index of byte-string keys, each with the value it was first added with: lets
 * the loaders find duplicates and resolve names in linear time (see load_internal.h). */
#include "config/load_internal.h"

#include <stdlib.h>
#include <string.h>

struct ld_index_slot {
    char *key; /* NULL: free */
    size_t len;
    uint64_t value;
};

static uint64_t ld_index_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The slot holding `key`, or the free slot where it would go (cap is never full). */
static struct ld_index_slot *ld_index_slot(const struct ld_index *ix, const void *key, size_t len)
{
    size_t i = ld_index_hash(key, len) & (ix->cap - 1);
    while (ix->slots[i].key != NULL &&
           (ix->slots[i].len != len || memcmp(ix->slots[i].key, key, len) != 0))
        i = (i + 1) & (ix->cap - 1);
    return &ix->slots[i];
}

/* Doubles the table (at least 16 slots); false when out of memory. */
static bool ld_index_grow(struct ld_index *ix)
{
    struct ld_index old = *ix;
    ix->cap = old.cap ? old.cap * 2 : 16;
    ix->slots = calloc(ix->cap, sizeof(*ix->slots));
    if (ix->slots == NULL) {
        *ix = old;
        return false;
    }
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key != NULL)
            *ld_index_slot(ix, old.slots[i].key, old.slots[i].len) = old.slots[i];
    free(old.slots);
    return true;
}

bool ld_index_find(const struct ld_index *ix, const void *key, size_t len, uint64_t *value)
{
    if (ix->n == 0)
        return false;
    const struct ld_index_slot *s = ld_index_slot(ix, key, len);
    if (s->key == NULL)
        return false;
    *value = s->value;
    return true;
}

bool ld_index_add(struct ld *ld, struct ld_index *ix, const void *key, size_t len, uint64_t value,
                  uint64_t *first)
{
    if (ld_index_find(ix, key, len, first))
        return false;
    if (2 * (ix->n + 1) > ix->cap && !ld_index_grow(ix)) {
        ld->oom = true;
        return true;
    }
    char *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        ld->oom = true;
        return true;
    }
    memcpy(copy, key, len);
    *ld_index_slot(ix, key, len) = (struct ld_index_slot){copy, len, value};
    ix->n++;
    return true;
}

void ld_index_free(struct ld_index *ix)
{
    for (size_t i = 0; i < ix->cap; i++)
        free(ix->slots[i].key);
    free(ix->slots);
    *ix = (struct ld_index){0};
}
