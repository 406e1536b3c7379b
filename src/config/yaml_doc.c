/* Walking a libyaml document: error collection with positions and key paths, mapping
 * and sequence access, and typed readers (see load_internal.h for the conventions). */
#include "config/load_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- errors ---- */

/* Orders errors by position, then by the order they were found. */
static int ld_err_cmp(const void *a, const void *b)
{
    const struct ld_err *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* True when an error at (line, col), found now, goes before the latest one kept. */
static bool ld_before_worst(const struct ld *ld, size_t line, size_t col)
{
    const struct ld_err *w = &ld->errs[ld->worst];
    return line < w->line || (line == w->line && col < w->col);
}

static bool ld_kept_at(const struct ld *ld, size_t line, size_t col)
{
    return ld->n_errs < CFG_ERRORS_MAX || ld_before_worst(ld, line, col);
}

bool ld_error_kept(const struct ld *ld, const yaml_node_t *at)
{
    return ld_kept_at(ld, at ? at->start_mark.line + 1 : 1, at ? at->start_mark.column + 1 : 1);
}

/* Index of the kept error with the latest position. */
static size_t ld_find_worst(const struct ld *ld)
{
    size_t w = 0;
    for (size_t i = 1; i < ld->n_errs; i++)
        if (ld_err_cmp(&ld->errs[i], &ld->errs[w]) > 0)
            w = i;
    return w;
}

/* Keeps `msg` (owned) among the first CFG_ERRORS_MAX errors by position: appended while
 * there is room, else in place of the latest one, which is then counted as left out. */
static void ld_add_error(struct ld *ld, size_t line, size_t col, char *msg)
{
    if (msg == NULL) {
        ld->oom = true;
        return;
    }
    if (ld->errs == NULL) {
        ld->errs = calloc(CFG_ERRORS_MAX, sizeof(*ld->errs));
        if (ld->errs == NULL) {
            free(msg);
            ld->oom = true;
            return;
        }
    }
    size_t slot = ld->n_errs;
    if (slot == CFG_ERRORS_MAX) {
        slot = ld->worst;
        free(ld->errs[slot].msg);
        ld->n_dropped++;
    } else {
        ld->n_errs++;
    }
    ld->errs[slot] = (struct ld_err){line, col, ld->n_errs + ld->n_dropped, msg};
    ld->worst = ld_find_worst(ld);
}

void ld_finish_errors(struct ld *ld, struct cfg_errors *errs)
{
    size_t n = ld->n_errs + (ld->n_dropped > 0);
    char **items = errs && n ? calloc(n, sizeof(char *)) : NULL;

    if (ld->n_errs > 1)
        qsort(ld->errs, ld->n_errs, sizeof(*ld->errs), ld_err_cmp);
    for (size_t i = 0; i < ld->n_errs; i++) {
        if (items != NULL)
            items[i] = ld->errs[i].msg;
        else
            free(ld->errs[i].msg);
    }
    if (items != NULL) {
        errs->items = items;
        errs->count = ld->n_errs;
        errs->total = ld->n_errs + ld->n_dropped;
        if (ld->n_dropped > 0 &&
            asprintf(&items[ld->n_errs], "... and %zu more errors", ld->n_dropped) >= 0)
            errs->count++;
    }
    free(ld->errs);
    ld->errs = NULL;
    ld->n_errs = 0;
    ld->n_dropped = 0;
}

/* Formats and records one message at (line, col) with an optional key path. */
static void ld_verror(struct ld *ld, size_t line, size_t col, const char *path, const char *fmt,
                      va_list ap)
{
    char *text = NULL, *msg = NULL;

    if (!ld_kept_at(ld, line, col)) {
        ld->n_dropped++;
        return;
    }
    if (vasprintf(&text, fmt, ap) < 0) {
        ld->oom = true;
        return;
    }
    int r;
    if (path != NULL && path[0] != '\0')
        r = asprintf(&msg, "%s:%zu:%zu: %s: %s", ld->name, line, col, path, text);
    else
        r = asprintf(&msg, "%s:%zu:%zu: %s", ld->name, line, col, text);
    free(text);
    ld_add_error(ld, line, col, r < 0 ? NULL : msg);
}

void ld_error(struct ld *ld, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    size_t line = at ? at->start_mark.line + 1 : 1;
    size_t col = at ? at->start_mark.column + 1 : 1;

    va_start(ap, fmt);
    ld_verror(ld, line, col, ld->path, fmt, ap);
    va_end(ap);
}

void ld_error_key(struct ld *ld, const yaml_node_t *at, const char *key, const char *fmt, ...)
{
    va_list ap;
    size_t line = at ? at->start_mark.line + 1 : 1;
    size_t col = at ? at->start_mark.column + 1 : 1;
    size_t mark = ld_push_key(ld, key);

    va_start(ap, fmt);
    ld_verror(ld, line, col, ld->path, fmt, ap);
    va_end(ap);
    ld_pop(ld, mark);
}

void ld_error_raw(struct ld *ld, size_t line, size_t col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ld_verror(ld, line, col, NULL, fmt, ap);
    va_end(ap);
}

/* ---- key paths ---- */

size_t ld_push_key(struct ld *ld, const char *key)
{
    size_t mark = ld->path_len;
    int n = snprintf(ld->path + mark, sizeof(ld->path) - mark, "%s%s", mark ? "." : "", key);
    if (n > 0)
        ld->path_len =
            mark + (size_t)n < sizeof(ld->path) ? mark + (size_t)n : sizeof(ld->path) - 1;
    return mark;
}

size_t ld_push_index(struct ld *ld, size_t index)
{
    size_t mark = ld->path_len;
    int n = snprintf(ld->path + mark, sizeof(ld->path) - mark, "[%zu]", index);
    if (n > 0)
        ld->path_len =
            mark + (size_t)n < sizeof(ld->path) ? mark + (size_t)n : sizeof(ld->path) - 1;
    return mark;
}

void ld_pop(struct ld *ld, size_t mark)
{
    ld->path_len = mark;
    ld->path[mark] = '\0';
}

/* ---- memory ---- */

char *ld_strndup(struct ld *ld, const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p == NULL) {
        ld->oom = true;
        return NULL;
    }
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *ld_strdup(struct ld *ld, const char *s)
{
    return ld_strndup(ld, s, strlen(s));
}

void *ld_calloc(struct ld *ld, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL)
        ld->oom = true;
    return p;
}

/* ---- nodes ---- */

bool ld_is_null(const yaml_node_t *n)
{
    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *ld_scalar(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

size_t ld_line(const yaml_node_t *n)
{
    return n ? n->start_mark.line + 1 : 1;
}

static yaml_node_t *ld_node_at(struct ld *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

/* Picks the known key closest to `key`: edit distance at most 2, and at most half the
 * key's length so that short unrelated words get no hint. NULL when none is close. */
static const char *ld_suggest(const char *key, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; known[i] != NULL; i++) {
        size_t d = ld_edit_distance(key, known[i]);
        if (d < best_d && 2 * d <= strlen(key)) {
            best_d = d;
            best = known[i];
        }
    }
    return best;
}

/* Reports unknown key `key` at k, with a did-you-mean hint when one is close (only
 * worked out when the error is kept: the hint costs an edit distance per known key). */
static void ld_unknown_key(struct ld *ld, const yaml_node_t *k, const char *key,
                           const char *const *known)
{
    const char *hint = ld_error_kept(ld, k) ? ld_suggest(key, known) : NULL;
    if (hint != NULL)
        ld_error_key(ld, k, key, "unknown key '%s' (did you mean '%s'?)", key, hint);
    else
        ld_error_key(ld, k, key, "unknown key '%s'", key);
}

/* Index of `key` in the NULL-terminated list `known`, or -1. */
static long ld_known_index(const char *key, const char *const *known)
{
    for (long i = 0; known[i] != NULL; i++)
        if (strcmp(known[i], key) == 0)
            return i;
    return -1;
}

#define LD_KNOWN_MAX 64 /* longest list of known keys of one mapping */

bool ld_check_map(struct ld *ld, yaml_node_t *n, const char *const *known)
{
    bool seen[LD_KNOWN_MAX] = {false};

    if (n == NULL || n->type != YAML_MAPPING_NODE) {
        ld_error(ld, n, "expected a mapping");
        return false;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ld_node_at(ld, p->key);
        const char *key = ld_scalar(k);
        if (key == NULL) {
            ld_error(ld, k, "keys must be plain strings");
            continue;
        }
        /* top-level "x-..." keys hold YAML anchors for reuse, like compose files */
        if (ld->path_len == 0 && strncmp(key, "x-", 2) == 0)
            continue;
        long i = ld_known_index(key, known);
        if (i < 0)
            ld_unknown_key(ld, k, key, known);
        else if (i < LD_KNOWN_MAX && seen[i])
            ld_error_key(ld, k, key, "duplicate key '%s'", key);
        else if (i < LD_KNOWN_MAX)
            seen[i] = true;
    }
    return true;
}

static yaml_node_pair_t *ld_find_pair(struct ld *ld, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = ld_scalar(ld_node_at(ld, p->key));
        if (k != NULL && strcmp(k, key) == 0)
            return p;
    }
    return NULL;
}

yaml_node_t *ld_get(struct ld *ld, yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p = ld_find_pair(ld, map, key);
    return p ? ld_node_at(ld, p->value) : NULL;
}

yaml_node_t *ld_get_keynode(struct ld *ld, yaml_node_t *map, const char *key)
{
    yaml_node_pair_t *p = ld_find_pair(ld, map, key);
    return p ? ld_node_at(ld, p->key) : NULL;
}

long ld_seq_len(struct ld *ld, yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SEQUENCE_NODE) {
        ld_error(ld, n, "expected a list");
        return -1;
    }
    return (long)(n->data.sequence.items.top - n->data.sequence.items.start);
}

long ld_seq_len_quiet(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SEQUENCE_NODE)
        return -1;
    return (long)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *ld_seq_item(struct ld *ld, yaml_node_t *seq, size_t i)
{
    return ld_node_at(ld, seq->data.sequence.items.start[i]);
}

/* ---- typed readers ---- */

int ld_node_str(struct ld *ld, yaml_node_t *n, char **out)
{
    const char *s = ld_scalar(n);
    if (s == NULL || ld_is_null(n)) {
        ld_error(ld, n, "expected a string");
        return -1;
    }
    if (strlen(s) != n->data.scalar.length) {
        ld_error(ld, n, "must not contain NUL bytes");
        return -1;
    }
    char *copy = ld_strdup(ld, s);
    if (copy == NULL)
        return -1;
    free(*out);
    *out = copy;
    return 0;
}

int ld_node_int(struct ld *ld, yaml_node_t *n, long lo, long hi, long *out)
{
    const char *s = ld_scalar(n);
    char *end;

    if (s == NULL || ld_is_null(n) || s[0] == '\0') {
        ld_error(ld, n, "expected an integer");
        return -1;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || s[0] == ' ' || s[0] == '\t' || s[0] == '\n') {
        ld_error(ld, n, "expected an integer");
        return -1;
    }
    if (errno == ERANGE || v < lo || v > hi) {
        if (hi >= INT_MAX)
            ld_error(ld, n, "%s out of range (%ld or more)", s, lo);
        else
            ld_error(ld, n, "%s out of range (%ld-%ld)", s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int ld_node_bool(struct ld *ld, yaml_node_t *n, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    const char *s = ld_scalar(n);

    for (size_t i = 0; s != NULL && yes[i] != NULL; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    ld_error(ld, n, "expected true or false");
    return -1;
}

/* Writes a duration in the largest units that express it exactly, e.g. "1h30m". */
static void ld_fmt_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *u;
        uint64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t off = 0;

    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < 4 && ms > 0 && off < len; i++) {
        if (ms >= units[i].ms) {
            int n = snprintf(buf + off, len - off, "%llu%s", (unsigned long long)(ms / units[i].ms),
                             units[i].u);
            if (n > 0)
                off += (size_t)n;
            ms %= units[i].ms;
        }
    }
}

int ld_node_duration(struct ld *ld, yaml_node_t *n, uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *s = ld_scalar(n);
    const char *err = NULL;
    uint64_t v;

    if (s == NULL || ld_is_null(n)) {
        ld_error(ld, n, "expected a duration (e.g. 250ms, 5s, 4m, 1h30m)");
        return -1;
    }
    if (parse_duration_ms(s, &v, &err) < 0) {
        ld_error(ld, n, "%s", err);
        return -1;
    }
    if (v < lo || v > hi) {
        char a[32], b[32];
        ld_fmt_duration(lo, a, sizeof(a));
        ld_fmt_duration(hi, b, sizeof(b));
        ld_error(ld, n, "%s out of range (%s-%s)", s, a, b);
        return -1;
    }
    *out = v;
    return 0;
}

static void ld_fmt_size(uint64_t v, char *buf, size_t len)
{
    if (v >= 1024 * 1024 && v % (1024 * 1024) == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(v / (1024 * 1024)));
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(buf, len, "%lluk", (unsigned long long)(v / 1024));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

int ld_node_size(struct ld *ld, yaml_node_t *n, uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *s = ld_scalar(n);
    const char *err = NULL;
    uint64_t v;

    if (s == NULL || ld_is_null(n)) {
        ld_error(ld, n, "expected a size (e.g. 512, 16k, 1m)");
        return -1;
    }
    if (parse_size(s, &v, &err) < 0) {
        ld_error(ld, n, "%s", err);
        return -1;
    }
    if (v < lo || v > hi) {
        char a[32], b[32];
        ld_fmt_size(lo, a, sizeof(a));
        ld_fmt_size(hi, b, sizeof(b));
        ld_error(ld, n, "%s out of range (%s-%s)", s, a, b);
        return -1;
    }
    *out = v;
    return 0;
}

int ld_node_enum(struct ld *ld, yaml_node_t *n, const char *const *names, int *out)
{
    const char *s = ld_scalar(n);
    char list[256];
    size_t off = 0;

    for (int i = 0; s != NULL && !ld_is_null(n) && names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    list[0] = '\0';
    for (int i = 0; names[i] != NULL && off < sizeof(list); i++) {
        int w = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", names[i]);
        if (w > 0)
            off += (size_t)w;
    }
    if (s == NULL || ld_is_null(n))
        ld_error(ld, n, "expected one of: %s", list);
    else
        ld_error(ld, n, "invalid value '%s' (expected one of: %s)", s, list);
    return -1;
}

/* ---- keyed getters ---- */

/* Looks `key` up; when present pushes it on the path and returns the value node. */
static yaml_node_t *ld_enter(struct ld *ld, yaml_node_t *map, const char *key, size_t *mark)
{
    yaml_node_t *v = ld_get(ld, map, key);
    if (v != NULL)
        *mark = ld_push_key(ld, key);
    return v;
}

#define LD_KEYED(call)                                                                             \
    do {                                                                                           \
        size_t mark;                                                                               \
        yaml_node_t *v = ld_enter(ld, map, key, &mark);                                            \
        if (v == NULL)                                                                             \
            return 0;                                                                              \
        int r = (call);                                                                            \
        ld_pop(ld, mark);                                                                          \
        return r < 0 ? -1 : 1;                                                                     \
    } while (0)

int ld_str(struct ld *ld, yaml_node_t *map, const char *key, char **out)
{
    LD_KEYED(ld_node_str(ld, v, out));
}

static int ld_node_path(struct ld *ld, yaml_node_t *n, char **out)
{
    char *s = NULL;
    if (ld_node_str(ld, n, &s) < 0)
        return -1;
    if (s[0] == '\0') {
        free(s);
        ld_error(ld, n, "expected a file path");
        return -1;
    }
    char *abs = ld_resolve_path(ld, s);
    free(s);
    if (abs == NULL)
        return -1;
    free(*out);
    *out = abs;
    return 0;
}

int ld_path(struct ld *ld, yaml_node_t *map, const char *key, char **out)
{
    LD_KEYED(ld_node_path(ld, v, out));
}

static int ld_node_int_to(struct ld *ld, yaml_node_t *n, long lo, long hi, int *out)
{
    long v;
    if (ld_node_int(ld, n, lo, hi, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int ld_int(struct ld *ld, yaml_node_t *map, const char *key, long lo, long hi, int *out)
{
    LD_KEYED(ld_node_int_to(ld, v, lo, hi, out));
}

int ld_bool(struct ld *ld, yaml_node_t *map, const char *key, bool *out)
{
    LD_KEYED(ld_node_bool(ld, v, out));
}

int ld_duration(struct ld *ld, yaml_node_t *map, const char *key, uint64_t lo, uint64_t hi,
                uint64_t *out)
{
    LD_KEYED(ld_node_duration(ld, v, lo, hi, out));
}

int ld_size(struct ld *ld, yaml_node_t *map, const char *key, uint64_t lo, uint64_t hi,
            uint64_t *out)
{
    LD_KEYED(ld_node_size(ld, v, lo, hi, out));
}

int ld_enum(struct ld *ld, yaml_node_t *map, const char *key, const char *const *names, int *out)
{
    LD_KEYED(ld_node_enum(ld, v, names, out));
}

static int ld_node_strings(struct ld *ld, yaml_node_t *n, struct cfg_strings *out)
{
    struct cfg_strings s = {0};
    int rc = 0;

    if (ld_scalar(n) != NULL && !ld_is_null(n)) {
        s.items = ld_calloc(ld, 1, sizeof(char *));
        if (s.items == NULL)
            return -1;
        s.count = 1;
        if (ld_node_str(ld, n, &s.items[0]) < 0)
            rc = -1;
        else if (s.items[0][0] == '\0') {
            ld_error(ld, n, "must not be empty");
            rc = -1;
        }
        goto done;
    }
    long len = ld_seq_len(ld, n);
    if (len < 0)
        return -1;
    s.items = ld_calloc(ld, (size_t)len, sizeof(char *));
    if (s.items == NULL)
        return -1;
    s.count = (size_t)len;
    for (size_t i = 0; i < s.count; i++) {
        yaml_node_t *item = ld_seq_item(ld, n, i);
        if (item == NULL)
            break;
        size_t mark = ld_push_index(ld, i);
        if (ld_node_str(ld, item, &s.items[i]) < 0)
            rc = -1;
        else if (s.items[i][0] == '\0') {
            ld_error(ld, item, "must not be empty");
            rc = -1;
        }
        ld_pop(ld, mark);
    }
done:
    /* keep only what was read: failed items stay NULL and are dropped */
    {
        size_t w = 0;
        for (size_t i = 0; i < s.count; i++)
            if (s.items[i] != NULL)
                s.items[w++] = s.items[i];
        s.count = w;
    }
    cfg_free_strings(out);
    *out = s;
    return rc;
}

int ld_strings(struct ld *ld, yaml_node_t *map, const char *key, struct cfg_strings *out)
{
    LD_KEYED(ld_node_strings(ld, v, out));
}

static int ld_node_pairs(struct ld *ld, yaml_node_t *n, struct cfg_pairs *out)
{
    struct cfg_pairs pr = {0};
    int rc = 0;

    if (n == NULL || n->type != YAML_MAPPING_NODE) {
        ld_error(ld, n, "expected a mapping");
        return -1;
    }
    size_t len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    pr.items = ld_calloc(ld, len, sizeof(*pr.items));
    if (pr.items == NULL)
        return -1;
    for (size_t i = 0; i < len; i++) {
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = ld_node_at(ld, p->key), *v = ld_node_at(ld, p->value);
        struct cfg_pair *dst = &pr.items[pr.count];
        if (ld_node_str(ld, k, &dst->name) < 0) {
            rc = -1;
            continue;
        }
        size_t mark = ld_push_key(ld, dst->name);
        if (ld_node_str(ld, v, &dst->value) < 0) {
            free(dst->name);
            dst->name = NULL;
            rc = -1;
        } else {
            pr.count++;
        }
        ld_pop(ld, mark);
    }
    cfg_free_pairs(out);
    *out = pr;
    return rc;
}

int ld_pairs(struct ld *ld, yaml_node_t *map, const char *key, struct cfg_pairs *out)
{
    LD_KEYED(ld_node_pairs(ld, v, out));
}

size_t ld_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}
