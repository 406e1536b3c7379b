/* Loading a listener's `error_pages`: status (or "default") -> file. The files are read
 * here, at load (and so at every reload and by `sluice -t`), bounded by
 * CFG_ERROR_PAGE_MAX; the content type comes from the file name's extension. */
#include "config/load_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".json", "application/json"},         {".xml", "application/xml"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "text/plain; charset=utf-8";
}

/* Reads at most CFG_ERROR_PAGE_MAX bytes of `path` into p; reports failures at `at`. */
static void read_page(struct ld *ld, yaml_node_t *at, const char *key, const char *path,
                      struct cfg_error_page *p)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ld_error_key(ld, at, key, "cannot read %s: %s", path, strerror(errno));
        return;
    }
    p->body = ld_calloc(ld, 1, CFG_ERROR_PAGE_MAX + 1);
    if (p->body != NULL) {
        p->len = fread(p->body, 1, CFG_ERROR_PAGE_MAX + 1, f);
        if (ferror(f))
            ld_error_key(ld, at, key, "cannot read %s: %s", path, strerror(errno));
        else if (p->len > CFG_ERROR_PAGE_MAX)
            ld_error_key(ld, at, key, "%s is larger than %d bytes", path, CFG_ERROR_PAGE_MAX);
    }
    fclose(f);
    p->content_type = content_type_of(path);
}

void ld_load_error_pages(struct ld *ld, yaml_node_t *map, const char *key,
                         struct cfg_listener_http *h)
{
    struct cfg_pairs pairs = {0};
    if (ld_pairs(ld, map, key, &pairs) != 1 || pairs.count == 0) {
        cfg_free_pairs(&pairs);
        return;
    }
    yaml_node_t *n = ld_get(ld, map, key);
    size_t mark = ld_push_key(ld, key);
    h->error_pages = ld_calloc(ld, pairs.count, sizeof(*h->error_pages));
    for (size_t i = 0; h->error_pages && i < pairs.count; i++) {
        const char *name = pairs.items[i].name;
        struct cfg_error_page *p = &h->error_pages[h->n_error_pages++];
        char *end = NULL;
        long st = strcmp(name, "default") == 0 ? 0 : strtol(name, &end, 10);
        if (st == 0 && strcmp(name, "default") != 0)
            st = -1;
        if (st < 0 || (end && *end) || (st != 0 && (st < 400 || st > 599))) {
            ld_error_key(ld, ld_get(ld, n, name), name, "expected a status 400-599 or \"default\"");
            continue;
        }
        for (size_t j = 0; j + 1 < h->n_error_pages; j++)
            if (h->error_pages[j].status == (int)st)
                ld_error_key(ld, ld_get(ld, n, name), name, "given twice");
        p->status = (int)st;
        char *path = ld_resolve_path(ld, pairs.items[i].value);
        if (path != NULL)
            read_page(ld, ld_get(ld, n, name), name, path, p);
        free(path);
    }
    ld_pop(ld, mark);
    cfg_free_pairs(&pairs);
}
