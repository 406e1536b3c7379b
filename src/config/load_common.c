/* Checks shared by the config section loaders: names, host patterns, tokens, paths. */
#include "config/load_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ld_valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return n >= 1 && n <= 64;
}

/* A DNS name: labels of [A-Za-z0-9_-], 1-63 characters, 253 in all. */
static bool ld_valid_dns(const char *s)
{
    size_t label = 0, n = 0;
    for (;; n++) {
        char c = s[n];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[n - 1] == '-')
                return false;
            if (c == '\0')
                break;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && c != '-' && c != '_')
            return false;
        if (label == 0 && c == '-')
            return false;
        label++;
    }
    return n <= 253;
}

bool ld_valid_host_pattern(const char *s)
{
    if (s[0] == '*' && s[1] == '.')
        s += 2;
    return ld_valid_dns(s);
}

int ld_host_pattern(struct ld *ld, yaml_node_t *map, const char *key, char **out)
{
    char *s = NULL;
    int r = ld_str(ld, map, key, &s);
    if (r <= 0)
        return r;
    if (!ld_valid_host_pattern(s)) {
        ld_error_key(ld, ld_get(ld, map, key), key,
                     "invalid host name '%s' (expected a name or *.suffix)", s);
        free(s);
        return -1;
    }
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    free(*out);
    *out = s;
    return 1;
}

bool ld_valid_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (s[0] == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
            return false;
    return true;
}

char *ld_resolve_path(struct ld *ld, const char *p)
{
    char *out = NULL;
    if (p[0] == '/')
        return ld_strdup(ld, p);
    const char *sep = strcmp(ld->dir, "/") == 0 ? "" : "/";
    if (asprintf(&out, "%s%s%s", ld->dir, sep, p) < 0) {
        ld->oom = true;
        return NULL;
    }
    return out;
}

bool ld_is_http(enum cfg_protocol p)
{
    return cfg_proto_is_http(p);
}

int ld_protocol(struct ld *ld, yaml_node_t *map, const char *key, enum cfg_protocol *out)
{
    static const char *const names[] = {"tcp", "tls", "http", "https", NULL};
    int v;
    int r = ld_enum(ld, map, key, names, &v);
    if (r == 1)
        *out = (enum cfg_protocol)v;
    return r;
}

void ld_refuse_http(struct ld *ld, yaml_node_t *map, enum cfg_protocol p)
{
    if (!ld_is_http(p) || CFG_HTTP_SUPPORTED)
        return;
    ld_error_key(ld, ld_get(ld, map, "protocol"), "protocol",
                 "protocol %s is not supported yet by this build", cfg_protocol_name(p));
}
