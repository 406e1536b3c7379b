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

/* http listeners and http and https backends are served (src/http/); https listeners are
 * parsed and checked fully, then refused with "protocol https is not supported yet" until
 * TLS lands on the client side of HTTP. Set to 0 to refuse http (and https backends) as
 * well. */
#ifndef CFG_HTTP_SUPPORTED
#define CFG_HTTP_SUPPORTED 1
#endif

#define LD_PATH_MAX 512
#define LD_DURATION_MAX (720ULL * 3600 * 1000) /* 30 days: generic upper bound */

/* Limits of the configuration file (docs/configuration.md, "Limits of the configuration
 * file"), checked while libyaml's events are read (yaml_build.c), before the loaders
 * walk the document: they bound the time and memory of a load, hostile file or not. */
#define LD_MAX_FILE_SIZE (2 * 1024 * 1024)
#define LD_FILE_SIZE_MSG "file size limit exceeded: the file is larger than 2 MiB"
#define LD_MAX_DIRECTIVES 16          /* lines starting with '%' */
#define LD_MAX_DEPTH 64               /* nested sequences and mappings */
#define LD_MAX_ANCHORS 4096           /* &name */
#define LD_MAX_ALIASES 4096           /* *name */
#define LD_MAX_NODES 100000           /* scalars, sequences and mappings as written */
#define LD_MAX_ALIAS_EXPANSION 100000 /* nodes that all the aliases stand for */

struct ld_err {
    size_t line, col, seq;
    char *msg;
};

/* A hash index of byte-string keys (ld_index.c); {0} is an empty one. */
struct ld_index {
    struct ld_index_slot *slots;
    size_t cap, n;
};

struct ld {
    const char *name; /* file name used in messages */
    char *dir;        /* absolute directory relative paths are resolved against */
    yaml_document_t *doc;
    struct config *cfg;
    struct ld_err *errs;
    size_t n_errs;          /* kept: at most CFG_ERRORS_MAX, the first ones by position */
    size_t n_dropped;       /* found after CFG_ERRORS_MAX were kept, and left out */
    size_t worst;           /* index of the kept error with the latest position */
    char path[LD_PATH_MAX]; /* current key path, e.g. "backends[1].servers[0]" */
    size_t path_len;
    bool oom;                      /* an allocation failed: the load fails */
    struct ld_index backend_names; /* name -> index of the first backend called so */
    struct ld_index listener_names;
    struct ld_index binds; /* bound address -> listener index << 32 | bind index */
};

/* ---- ld_index.c ---- */

/* Adds `key` with `value` and returns true, unless it is there already: then sets
 * *first to the value it was added with and returns false. (Out of memory: sets ld->oom
 * and returns true.) */
bool ld_index_add(struct ld *ld, struct ld_index *ix, const void *key, size_t len, uint64_t value,
                  uint64_t *first);
/* Sets *value to the value of `key`; false when absent. */
bool ld_index_find(const struct ld_index *ix, const void *key, size_t len, uint64_t *value);
void ld_index_free(struct ld_index *ix);

/* ---- yaml_build.c: the document, read within the limits ---- */

/* Parses the single YAML document of `text` into *doc, checking every limit above as
 * libyaml's events arrive. Returns 0 with *doc initialized (to be freed with
 * yaml_document_delete; its root is NULL for an empty file; a second document is
 * reported as an error), or -1 after reporting the first limit exceeded or syntax
 * error, with nothing left to free. */
int ld_build_document(struct ld *ld, const char *text, size_t len, yaml_document_t *doc);

/* ---- yaml_doc.c: errors, key paths, node access, typed getters ---- */

/* Records "NAME:LINE:COL: PATH: MSG" at node `at` (NULL: line 1, column 1). Only the
 * first CFG_ERRORS_MAX errors by position are kept; the others are counted. */
void ld_error(struct ld *ld, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with ".key" appended to the path for this one message. */
void ld_error_key(struct ld *ld, const yaml_node_t *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records "NAME:LINE:COL: MSG" without a key path (syntax errors); line/col 1-based. */
void ld_error_raw(struct ld *ld, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* False when an error at node `at` would be left out (CFG_ERRORS_MAX earlier ones are
 * kept): lets costly messages skip their formatting. */
bool ld_error_kept(const struct ld *ld, const yaml_node_t *at);
/* Moves the kept errors, sorted by position, into `errs` (NULL: frees them), followed by
 * "... and N more errors" when some were left out. */
void ld_finish_errors(struct ld *ld, struct cfg_errors *errs);

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
 * sequence; ld_seq_item returns item i (0 <= i < length). */
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
/* Adds "protocol X is not supported yet by this build" at `map`.protocol for http and
 * https when CFG_HTTP_SUPPORTED is 0 (a build without the HTTP engine). */
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
/* Reads a `headers` / `query` match map at `key` (load_match.c); header names must be
 * tokens when `header_names`. Returns 0 when absent, 1 when read, -1 on error. */
int ld_kv_matches(struct ld *ld, yaml_node_t *map, const char *key, bool header_names,
                  struct cfg_kv_matches *out);
/* Compiles `re` (REG_EXTENDED | flags) into a new regex_t, or reports it at `at`. */
void *ld_regex(struct ld *ld, yaml_node_t *at, const char *key, const char *re, int flags);
/* Reads the listener http `error_pages` map at `key` (load_error_pages.c). */
void ld_load_error_pages(struct ld *ld, yaml_node_t *map, const char *key,
                         struct cfg_listener_http *h);
/* Loads listener `l`'s routes (the path names the listener). */
void ld_load_routes(struct ld *ld, yaml_node_t *seq, struct cfg_listener *l);
/* A route's `rate_limit` mapping (load_ratelimit.c). */
void ld_load_rate_limit(struct ld *ld, yaml_node_t *n, struct cfg_rate_limit *rl);

/* ---- config_free.c ---- */
void cfg_free_strings(struct cfg_strings *s);
void cfg_free_pairs(struct cfg_pairs *p);
void cfg_config_free(struct config *cfg);

#endif
