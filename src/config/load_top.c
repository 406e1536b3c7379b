/* config_load(): reads the YAML document, loads the top level (workers, limits, log,
 * admin), then backends and listeners, and returns the snapshot or every error found,
 * sorted by position. Also the snapshot's reference counting. */
#include "config/load_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFG_FILE_MAX (16 * 1024 * 1024)

static const char *const top_keys[] = {"workers",   "max_connections", "shutdown_timeout",
                                       "log",       "admin",           "resolver",
                                       "listeners", "backends",        NULL};
static const char *const log_keys[] = {"access", "format", "level", NULL};
static const char *const admin_keys[] = {"bind", "token_file", NULL};

/* Sets ld->dir to the absolute directory of `name` (cwd when it has none). */
static int ld_set_dir(struct ld *ld, const char *name)
{
    const char *slash = strrchr(name, '/');
    char cwd[4096];
    char *dir = NULL;
    int n;

    if (slash == name) {
        dir = strdup("/");
    } else if (name[0] == '/') {
        dir = strndup(name, (size_t)(slash - name));
    } else if (getcwd(cwd, sizeof(cwd)) == NULL) {
        dir = slash ? strndup(name, (size_t)(slash - name)) : strdup(".");
    } else {
        if (slash != NULL)
            n = asprintf(&dir, "%s%s%.*s", cwd, strcmp(cwd, "/") ? "/" : "", (int)(slash - name),
                         name);
        else
            n = asprintf(&dir, "%s", cwd);
        if (n < 0)
            dir = NULL;
    }
    if (dir == NULL) {
        ld->oom = true;
        return -ENOMEM;
    }
    /* drop a trailing slash so joins never double it ("/" stays "/") */
    size_t l = strlen(dir);
    while (l > 1 && dir[l - 1] == '/')
        dir[--l] = '\0';
    ld->dir = dir;
    return 0;
}

static void ld_load_workers(struct ld *ld, yaml_node_t *root)
{
    yaml_node_t *n = ld_get(ld, root, "workers");
    const char *s = ld_scalar(n);
    if (n == NULL)
        return;
    size_t mark = ld_push_key(ld, "workers");
    if (s != NULL && strcmp(s, "auto") == 0) {
        /* already the default */
    } else if (s == NULL || ld_is_null(n) || s[strspn(s, "+-0123456789")] != '\0' || !s[0]) {
        ld_error(ld, n, "expected an integer (1-256) or auto");
    } else {
        long v;
        if (ld_node_int(ld, n, 1, 256, &v) == 0)
            ld->cfg->workers = (int)v;
    }
    ld_pop(ld, mark);
}

static void ld_load_log(struct ld *ld, yaml_node_t *n)
{
    static const char *const formats[] = {"json", "text", NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    struct cfg_log *lg = &ld->cfg->log;
    char *access = NULL;
    int v;

    if (!ld_check_map(ld, n, log_keys))
        return;
    if (ld_str(ld, n, "access", &access) == 1) {
        if (access[0] == '\0') {
            ld_error_key(ld, ld_get(ld, n, "access"), "access",
                         "expected stdout, stderr, off or a file path");
        } else if (strcmp(access, "stdout") == 0 || strcmp(access, "stderr") == 0 ||
                   strcmp(access, "off") == 0) {
            free(lg->access);
            lg->access = access;
            access = NULL;
        } else {
            char *abs = ld_resolve_path(ld, access);
            if (abs != NULL) {
                free(lg->access);
                lg->access = abs;
            }
        }
    }
    free(access);
    if (ld_enum(ld, n, "format", formats, &v) == 1)
        lg->format = (enum cfg_log_format)v;
    if (ld_enum(ld, n, "level", levels, &v) == 1)
        lg->level = (enum cfg_log_level)v;
}

static void ld_load_admin(struct ld *ld, yaml_node_t *n)
{
    struct cfg_admin *a = &ld->cfg->admin;
    char *bind = NULL;
    const char *err = NULL;

    if (!ld_check_map(ld, n, admin_keys))
        return;
    a->enabled = true;
    if (ld_str(ld, n, "bind", &bind) == 1) {
        yaml_node_t *bn = ld_get(ld, n, "bind");
        struct net_addr addr;
        if (addr_parse(bind, &addr, &err) < 0)
            ld_error_key(ld, bn, "bind", "%s", err);
        else if (addr.is_name)
            ld_error_key(ld, bn, "bind", "bind needs an IP address or '*', not a host name");
        else
            a->bind = addr;
    }
    free(bind);
    ld_path(ld, n, "token_file", &a->token_file);
}

/* Calls fn(ld, value) with `key` pushed on the path when `key` is present. */
static void ld_top_section(struct ld *ld, yaml_node_t *root, const char *key,
                           void (*fn)(struct ld *, yaml_node_t *))
{
    yaml_node_t *v = ld_get(ld, root, key);
    if (v == NULL)
        return;
    size_t mark = ld_push_key(ld, key);
    fn(ld, v);
    ld_pop(ld, mark);
}

static int ld_config_defaults(struct ld *ld)
{
    struct config *c = ld->cfg;
    const char *err;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    atomic_init(&c->refs, 1);
    c->workers = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
    c->max_connections = 20000;
    c->shutdown_timeout_ms = 30000;
    c->log.access = ld_strdup(ld, "stdout");
    c->log.format = LOG_FORMAT_JSON;
    c->log.level = LOG_INFO;
    c->admin.enabled = false;
    if (addr_parse("127.0.0.1:9900", &c->admin.bind, &err) < 0)
        return -EINVAL;
    return c->log.access ? 0 : -ENOMEM;
}

static void ld_load_root(struct ld *ld, yaml_node_t *root)
{
    if (root->type != YAML_MAPPING_NODE) {
        ld_error(ld, root, "expected a mapping at the top level");
        return;
    }
    ld_check_map(ld, root, top_keys);
    ld_load_workers(ld, root);
    ld_int(ld, root, "max_connections", 0, 2147483647, &ld->cfg->max_connections);
    ld_duration(ld, root, "shutdown_timeout", 0, LD_DURATION_MAX, &ld->cfg->shutdown_timeout_ms);
    ld_top_section(ld, root, "log", ld_load_log);
    ld_top_section(ld, root, "admin", ld_load_admin);
    ld_top_section(ld, root, "resolver", ld_load_resolver);
    ld_top_section(ld, root, "backends", ld_load_backends);
    if (ld_get(ld, root, "listeners") == NULL)
        ld_error(ld, root, "missing required key 'listeners'");
    ld_top_section(ld, root, "listeners", ld_load_listeners);
}

/* 1-based line and column of byte `off` in text (for reader errors, which carry none). */
static void ld_offset_pos(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void ld_syntax_error(struct ld *ld, yaml_parser_t *p, const char *text, size_t len)
{
    size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "invalid document";

    if (p->error == YAML_READER_ERROR) {
        ld_offset_pos(text, len, p->problem_offset, &line, &col);
        ld_error_raw(ld, line, col, "invalid input: %s", problem);
    } else if (p->error == YAML_MEMORY_ERROR) {
        ld->oom = true;
    } else if (p->context != NULL) {
        ld_error_raw(ld, line, col, "YAML syntax error: %s (%s at line %zu)", problem, p->context,
                     p->context_mark.line + 1);
    } else {
        ld_error_raw(ld, line, col, "YAML syntax error: %s", problem);
    }
}

static int ld_err_cmp(const void *a, const void *b)
{
    const struct ld_err *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the collected errors, sorted by position, into `errs` (or frees them). */
static void ld_finish_errors(struct ld *ld, struct cfg_errors *errs)
{
    if (ld->n_errs > 1)
        qsort(ld->errs, ld->n_errs, sizeof(*ld->errs), ld_err_cmp);
    char **items = errs && ld->n_errs ? calloc(ld->n_errs, sizeof(char *)) : NULL;
    for (size_t i = 0; i < ld->n_errs; i++) {
        if (items != NULL)
            items[i] = ld->errs[i].msg;
        else
            free(ld->errs[i].msg);
    }
    if (items != NULL) {
        errs->items = items;
        errs->count = ld->n_errs;
    }
    free(ld->errs);
    ld->errs = NULL;
    ld->n_errs = 0;
}

struct config *config_load_buffer(const char *name, const char *text, size_t len,
                                  struct cfg_errors *errs)
{
    struct ld ld = {0};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false;

    if (errs != NULL) {
        errs->items = NULL;
        errs->count = 0;
    }
    ld.name = name;
    if (ld_set_dir(&ld, name) < 0)
        goto done;
    if (!yaml_parser_initialize(&parser)) {
        ld.oom = true;
        goto done;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        ld_syntax_error(&ld, &parser, text, len);
        yaml_parser_delete(&parser);
        goto done;
    }
    have_doc = true;
    ld.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        ld_error_raw(&ld, 1, 1, "configuration is empty");
        yaml_parser_delete(&parser);
        goto done;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        ld_syntax_error(&ld, &parser, text, len);
    } else {
        yaml_node_t *r2 = yaml_document_get_root_node(&extra);
        if (r2 != NULL)
            ld_error_raw(&ld, r2->start_mark.line + 1, r2->start_mark.column + 1,
                         "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);

    ld.cfg = calloc(1, sizeof(*ld.cfg));
    if (ld.cfg == NULL) {
        ld.oom = true;
        goto done;
    }
    ld.cfg->path = ld_strdup(&ld, name);
    if (ld_config_defaults(&ld) < 0) {
        ld.oom = true;
        goto done;
    }
    ld_load_root(&ld, root);

done:
    if (have_doc)
        yaml_document_delete(&doc);
    if (ld.oom) {
        ld.aborted = false;
        ld_error_raw(&ld, 1, 1, "out of memory while loading the configuration");
    }
    free(ld.dir);
    if (ld.n_errs > 0 || ld.oom) {
        cfg_config_free(ld.cfg);
        ld_finish_errors(&ld, errs);
        return NULL;
    }
    ld_finish_errors(&ld, errs);
    return ld.cfg;
}

struct config *config_load(const char *path, struct cfg_errors *errs)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *why = NULL;

    if (f == NULL) {
        why = strerror(errno);
        goto fail;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CFG_FILE_MAX) {
                why = "file too large (16 MiB at most)";
                goto fail;
            }
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                why = "out of memory";
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                why = strerror(errno ? errno : EIO);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    struct config *cfg = config_load_buffer(path, buf ? buf : "", len, errs);
    free(buf);
    return cfg;

fail:
    if (f != NULL)
        fclose(f);
    free(buf);
    if (errs != NULL) {
        errs->items = calloc(1, sizeof(char *));
        errs->count = 0;
        if (errs->items != NULL && asprintf(&errs->items[0], "%s: cannot read: %s", path, why) >= 0)
            errs->count = 1;
    }
    return NULL;
}

struct config *config_ref(struct config *cfg)
{
    if (cfg != NULL)
        atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void config_unref(struct config *cfg)
{
    if (cfg == NULL)
        return;
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        cfg_config_free(cfg);
}

void cfg_errors_free(struct cfg_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->count; i++)
        free(errs->items[i]);
    free(errs->items);
    errs->items = NULL;
    errs->count = 0;
}

int config_backend_index(const struct config *cfg, const char *name)
{
    if (cfg == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < cfg->n_backends; i++)
        if (cfg->backends[i].name != NULL && strcmp(cfg->backends[i].name, name) == 0)
            return (int)i;
    return -1;
}
