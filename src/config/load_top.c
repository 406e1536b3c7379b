/* config_load(): reads the YAML document, loads the top level (workers, limits, log,
 * admin), then backends and listeners, and returns the snapshot or every error found,
 * sorted by position. Also the snapshot's reference counting. */
#include "config/load_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const top_keys[] = {
    "workers", "max_connections", "shutdown_timeout", "shutdown_delay", "log",
    "admin",   "resolver",        "listeners",        "backends",       NULL};
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
    ld_duration(ld, root, "shutdown_delay", 0, LD_DURATION_MAX, &ld->cfg->shutdown_delay_ms);
    ld_top_section(ld, root, "log", ld_load_log);
    ld_top_section(ld, root, "admin", ld_load_admin);
    ld_top_section(ld, root, "resolver", ld_load_resolver);
    ld_top_section(ld, root, "backends", ld_load_backends);
    ld_top_section(ld, root, "listeners", ld_load_listeners);
}

struct config *config_load_buffer(const char *name, const char *text, size_t len,
                                  struct cfg_errors *errs)
{
    struct ld ld = {0};
    yaml_document_t doc;
    bool have_doc = false;

    if (errs != NULL)
        *errs = (struct cfg_errors){0};
    ld.name = name;
    if (ld_set_dir(&ld, name) < 0)
        goto done;
    if (ld_build_document(&ld, text, len, &doc) < 0)
        goto done;
    have_doc = true;
    ld.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        ld_error_raw(&ld, 1, 1, "configuration is empty");
        goto done;
    }
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
    ld_index_free(&ld.backend_names);
    ld_index_free(&ld.listener_names);
    ld_index_free(&ld.binds);
    if (ld.oom)
        ld_error_raw(&ld, 1, 1, "out of memory while loading the configuration");
    free(ld.dir);
    if (ld.n_errs > 0 || ld.oom) {
        cfg_config_free(ld.cfg);
        ld_finish_errors(&ld, errs);
        return NULL;
    }
    ld_finish_errors(&ld, errs);
    return ld.cfg;
}

/* Fails a load before parsing with the single message "PATH" MSG. */
static struct config *ld_fail_file(const char *path, struct cfg_errors *errs, const char *msg)
{
    if (errs == NULL)
        return NULL;
    *errs = (struct cfg_errors){0};
    errs->items = calloc(1, sizeof(char *));
    if (errs->items != NULL && asprintf(&errs->items[0], "%s%s", path, msg) >= 0)
        errs->count = errs->total = 1;
    return NULL;
}

/* Reads at most LD_MAX_FILE_SIZE + 1 bytes of f into *buf (so that a larger file is
 * seen as such without reading it all). Returns the length, or -errno. */
static long ld_read_capped(FILE *f, char **buf)
{
    size_t cap = (size_t)LD_MAX_FILE_SIZE + 1, len = 0, size = 16384;
    char *b = malloc(size);

    while (b != NULL) {
        size_t n = fread(b + len, 1, size - len, f);
        len += n;
        if (n == 0 || len == cap) {
            if (ferror(f)) {
                free(b);
                return -(errno ? errno : EIO);
            }
            *buf = b;
            return (long)len;
        }
        if (len == size) {
            size = size * 2 < cap ? size * 2 : cap;
            char *nb = realloc(b, size);
            if (nb == NULL)
                free(b);
            b = nb;
        }
    }
    return -ENOMEM;
}

struct config *config_load(const char *path, struct cfg_errors *errs)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    char msg[256];

    if (f == NULL) {
        snprintf(msg, sizeof(msg), ": cannot read: %s", strerror(errno));
        return ld_fail_file(path, errs, msg);
    }
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > LD_MAX_FILE_SIZE) {
        fclose(f);
        return ld_fail_file(path, errs, ":1:1: " LD_FILE_SIZE_MSG);
    }
    long len = ld_read_capped(f, &buf);
    fclose(f);
    if (len < 0) {
        snprintf(msg, sizeof(msg), ": cannot read: %s", strerror((int)-len));
        return ld_fail_file(path, errs, msg);
    }
    struct config *cfg = config_load_buffer(path, buf, (size_t)len, errs);
    free(buf);
    return cfg;
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
    errs->total = 0;
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
