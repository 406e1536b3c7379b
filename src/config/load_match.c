/* Loading the `headers` and `query` conditions of a route match: each key names a header
 * field or query parameter, each value is a string (exact), {regex: RE} or
 * {present: true|false}. Regular expressions are compiled here, once. */
#include "config/load_internal.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

static const char *const kv_keys[] = {"exact", "regex", "present", NULL};

void *ld_regex(struct ld *ld, yaml_node_t *at, const char *key, const char *re, int flags)
{
    regex_t tmp;
    int rc = regcomp(&tmp, re, REG_EXTENDED | flags);
    if (rc != 0) {
        char buf[128];
        regerror(rc, &tmp, buf, sizeof(buf));
        ld_error_key(ld, at, key, "invalid regular expression: %s", buf);
        return NULL;
    }
    regex_t *out = ld_calloc(ld, 1, sizeof(*out));
    if (out == NULL) {
        regfree(&tmp);
        return NULL;
    }
    memcpy(out, &tmp, sizeof(tmp));
    return out;
}

/* One condition: v is a scalar (exact) or a map with exactly one of exact/regex/present. */
static void ld_kv_one(struct ld *ld, yaml_node_t *v, struct cfg_kv_match *m)
{
    if (v != NULL && v->type == YAML_SCALAR_NODE) {
        m->kind = KV_EXACT;
        ld_node_str(ld, v, &m->value);
        return;
    }
    if (!ld_check_map(ld, v, kv_keys))
        return;
    int given = (ld_get(ld, v, "exact") != NULL) + (ld_get(ld, v, "regex") != NULL) +
                (ld_get(ld, v, "present") != NULL);
    if (given != 1) {
        ld_error(ld, v, "expected exactly one of exact, regex, present");
        return;
    }
    bool present = true;
    if (ld_str(ld, v, "exact", &m->value) == 1) {
        m->kind = KV_EXACT;
    } else if (ld_str(ld, v, "regex", &m->value) == 1) {
        m->kind = KV_REGEX;
        m->re = ld_regex(ld, ld_get(ld, v, "regex"), "regex", m->value, REG_NOSUB);
    } else if (ld_bool(ld, v, "present", &present) == 1) {
        m->kind = present ? KV_PRESENT : KV_ABSENT;
    }
}

int ld_kv_matches(struct ld *ld, yaml_node_t *map, const char *key, bool header_names,
                  struct cfg_kv_matches *out)
{
    yaml_node_t *n = ld_get(ld, map, key);
    if (n == NULL)
        return 0;
    size_t mark = ld_push_key(ld, key);
    int rc = 1;
    if (n->type != YAML_MAPPING_NODE) {
        ld_error(ld, n, "expected a mapping");
        ld_pop(ld, mark);
        return -1;
    }
    size_t len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    out->items = ld_calloc(ld, len ? len : 1, sizeof(*out->items));
    if (out->items == NULL) {
        ld_pop(ld, mark);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        struct cfg_kv_match *m = &out->items[out->count];
        if (ld_node_str(ld, k, &m->name) < 0) {
            rc = -1;
            continue;
        }
        out->count++;
        size_t m2 = ld_push_key(ld, m->name);
        if (m->name[0] == '\0' || (header_names && !ld_valid_token(m->name)))
            ld_error(ld, k, "invalid %s name '%s'", header_names ? "header" : "parameter", m->name);
        ld_kv_one(ld, v, m);
        ld_pop(ld, m2);
    }
    ld_pop(ld, mark);
    return rc;
}
