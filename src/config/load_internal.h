/* Private to src/config: the loader context and the helpers that walk a libyaml
 * document (yaml_doc.c), shared checks (load_common.c) and the per-section loaders.
 *
 * Conventions: every helper that reads a value reports its own errors through
 * ld_error(), which prefixes the file position of the node and the current key path.
 * Keyed getters (ld_str, ld_int, ...) look `key` up in a mapping, leave *out untouched
 * when the key is absent or invalid, and return 1 when set, 0 when absent, -1 when an
 * error was reported. Strings they store are heap copies owned by the config. */
#ifndef SLUICE_CONFIG_LOAD_INTERNAL_H
#define SLUICE_CONFIG_LOAD_INTERNAL_H

#include <stdarg.h>
#include <yaml.h>

#include "config/config.h"

/* Set to 1 once the HTTP data path exists: until then http/https listeners and backends
 * are parsed and checked fully, then refused with "protocol X is not supported yet". */
#ifndef CFG_HTTP_SUPPORTED
#define CFG_HTTP_SUPPORTED 0
#endif

#define LD_PATH_MAX 512
#define LD_MAX_VISITS 200000                   /* bounds the work on documents full of aliases */
#define LD_DURATION_MAX (720ULL * 3600 * 1000) /* 30 days: generic upper bound */

struct ld_err {
    size_t line, col, seq;
    char *msg;
};

struct ld {
    const char *name; /* file name used in messages */
    char *dir;        /* absolute directory relative paths are resolved against */
    yaml_document_t *doc;
    struct config *cfg;
    struct ld_err *errs;
    size_t n_errs, cap_errs;
    char path[LD_PATH_MAX]; /* current key path, e.g. "backends[1].servers[0]" */
    size_t path_len;
    unsigned long visits;
    bool oom;     /* an allocation failed: the load fails */
    bool aborted; /* too much work: stop reading, report nothing more */
};

/* ---- yaml_doc.c: errors, key paths, node access, typed getters ---- */

/* Records "NAME:LINE:COL: PATH: MSG" at node `at` (NULL: line 1, column 1). */
void ld_error(struct ld *ld, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with ".key" appended to the path for this one message. */
void ld_error_key(struct ld *ld, const yaml_node_t *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records "NAME:LINE:COL: MSG" without a key path (syntax errors); line/col 1-based. */
void ld_error_raw(struct ld *ld, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Key path stack: push returns a mark to hand back to ld_pop. */
size_t ld_push_key(struct ld *ld, const char *key);
size_t ld_push_index(struct ld *ld, size_t index);
void ld_pop(struct ld *ld, size_t mark);

/* Copies `s` (or len bytes of it); on failure sets ld->oom and returns NULL. */
char *ld_strdup(struct ld *ld, const char *s);
char *ld_strndup(struct ld *ld, const char *s, size_t len);
void *ld_calloc(struct ld *ld, size_t n, size_t size);

bool ld_is_null(const yaml_node_t *n);
/* The scalar text of n, or NULL when n is not a scalar. */
const char *ld_scalar(const yaml_node_t *n);
size_t ld_line(const yaml_node_t *n); /* 1-based */

/* Mapping helpers. ld_check_map reports "expected a mapping" (returns false), unknown
 * keys (with a did-you-mean hint against `known`, a NULL-terminated list) and duplicate
 * keys. ld_get returns the value node of `key`, or NULL; ld_get_keynode the key node. */
bool ld_check_map(struct ld *ld, yaml_node_t *n, const char *const *known);
yaml_node_t *ld_get(struct ld *ld, yaml_node_t *map, const char *key);
yaml_node_t *ld_get_keynode(struct ld *ld, yaml_node_t *map, const char *key);

/* Sequence helpers: ld_seq_len reports "expected a list" and returns -1 when n is not a
 * sequence; ld_seq_item returns item i (NULL once the work budget is spent). */
long ld_seq_len(struct ld *ld, yaml_node_t *n);
/* Number of items of a sequence node, or -1 for other nodes; reports nothing. */
long ld_seq_len_quiet(const yaml_node_t *n);
yaml_node_t *ld_seq_item(struct ld *ld, yaml_node_t *seq, size_t i);

/* Typed readers of one node (the path already names it); 0 or -1 after an error. */
int ld_node_str(struct ld *ld, yaml_node_t *n, char **out);
int ld_node_int(struct ld *ld, yaml_node_t *n, long lo, long hi, long *out);
int ld_node_bool(struct ld *ld, yaml_node_t *n, bool *out);
int ld_node_duration(struct ld *ld, yaml_node_t *n, uint64_t lo, uint64_t hi, uint64_t *out);
int ld_node_size(struct ld *ld, yaml_node_t *n, uint64_t lo, uint64_t hi, uint64_t *out);
int ld_node_enum(struct ld *ld, yaml_node_t *n, const char *const *names, int *out);

/* Keyed getters (see the top of this file). */
int ld_str(struct ld *ld, yaml_node_t *map, const char *key, char **out);
int ld_path(struct ld *ld, yaml_node_t *map, const char *key, char **out);
int ld_int(struct ld *ld, yaml_node_t *map, const char *key, long lo, long hi, int *out);
int ld_bool(struct ld *ld, yaml_node_t *map, const char *key, bool *out);
int ld_duration(struct ld *ld, yaml_node_t *map, const char *key, uint64_t lo, uint64_t hi,
                uint64_t *out);
int ld_size(struct ld *ld, yaml_node_t *map, const char *key, uint64_t lo, uint64_t hi,
            uint64_t *out);
int ld_enum(struct ld *ld, yaml_node_t *map, const char *key, const char *const *names, int *out);
/* A list of strings; a single scalar is taken as a one-item list. */
int ld_strings(struct ld *ld, yaml_node_t *map, const char *key, struct cfg_strings *out);
/* A mapping of name: value strings, kept in file order. */
int ld_pairs(struct ld *ld, yaml_node_t *map, const char *key, struct cfg_pairs *out);

/* Smallest edit distance (with transpositions) between a and b. */
size_t ld_edit_distance(const char *a, const char *b);

/* ---- load_common.c: shared checks ---- */

/* True for [A-Za-z0-9_.-]{1,64}. */
bool ld_valid_name(const char *s);
/* True for a DNS name or "*.suffix" (stored lowercase by ld_host_pattern). */
bool ld_valid_host_pattern(const char *s);
/* Reads a host pattern (exact or "*.suffix") at `key`, lowercased. */
int ld_host_pattern(struct ld *ld, yaml_node_t *map, const char *key, char **out);
/* True for an HTTP token (header names, methods, cookie names). */
bool ld_valid_token(const char *s);
/* Returns `p` made absolute against ld->dir (a new string), or NULL on OOM. */
char *ld_resolve_path(struct ld *ld, const char *p);
/* Reads a protocol value (tcp|tls|http|https). */
int ld_protocol(struct ld *ld, yaml_node_t *map, const char *key, enum cfg_protocol *out);
/* Adds "protocol X is not supported yet by this build" at `map`.protocol for http(s). */
void ld_refuse_http(struct ld *ld, yaml_node_t *map, enum cfg_protocol p);

bool ld_is_http(enum cfg_protocol p);

/* ---- the sections ---- */
void ld_load_backends(struct ld *ld, yaml_node_t *seq);
void ld_load_listeners(struct ld *ld, yaml_node_t *seq);
/* The top-level `resolver` extension (load_resolver.c). */
void ld_load_resolver(struct ld *ld, yaml_node_t *map);
/* Resolves a backend reference made by a listener of protocol `lproto`: returns its
 * index, or -1 after reporting "unknown backend" or a protocol mismatch at `at`. */
int ld_backend_ref(struct ld *ld, yaml_node_t *at, const char *name, enum cfg_protocol lproto);
/* Loads listener `l`'s routes (the path names the listener). */
void ld_load_routes(struct ld *ld, yaml_node_t *seq, struct cfg_listener *l);

/* ---- config_free.c ---- */
void cfg_free_strings(struct cfg_strings *s);
void cfg_free_pairs(struct cfg_pairs *p);
void cfg_config_free(struct config *cfg);

#endif
