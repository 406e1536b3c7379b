/* Compiling values with variables into literal pieces and variable references (see
 * cfg_template_compile in config.h). Done once at load; nothing is parsed per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static const struct {
    const char *name;
    enum cfg_tvar var;
} vars[] = {
    {"client_ip", TV_CLIENT_IP},
    {"client_port", TV_CLIENT_PORT},
    {"host", TV_HOST},
    {"method", TV_METHOD},
    {"path", TV_PATH},
    {"query", TV_QUERY},
    {"request_uri", TV_REQUEST_URI},
    {"scheme", TV_SCHEME},
    {"request_id", TV_REQUEST_ID},
    {"listener", TV_LISTENER},
    {"sni", TV_SNI},
    {"tls_version", TV_TLS_VERSION},
    {"client_cert_subject", TV_CLIENT_CERT_SUBJECT},
    {"client_cert_fingerprint", TV_CLIENT_CERT_FINGERPRINT},
    {"client_cert_verify", TV_CLIENT_CERT_VERIFY},
    {"status", TV_STATUS},
    {"server", TV_SERVER},
};

void cfg_template_free(struct cfg_template *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->pieces[i].text);
    free(t->pieces);
    t->pieces = NULL;
    t->n = 0;
}

/* Appends a piece (text copied when given). Returns -2 when out of memory. */
static int add(struct cfg_template *t, enum cfg_tvar var, const char *text, size_t len)
{
    if (var == TV_LITERAL && t->n && t->pieces[t->n - 1].var == TV_LITERAL) {
        struct cfg_tpiece *p = &t->pieces[t->n - 1]; /* "{{" splits literals: join them */
        char *x = realloc(p->text, p->len + len + 1);
        if (!x)
            return -2;
        memcpy(x + p->len, text, len);
        p->len += len;
        x[p->len] = 0;
        p->text = x;
        return 0;
    }
    struct cfg_tpiece *np = realloc(t->pieces, (t->n + 1) * sizeof(*np));
    if (!np)
        return -2;
    t->pieces = np;
    struct cfg_tpiece *p = &np[t->n];
    *p = (struct cfg_tpiece){var, NULL, len};
    if (text) {
        p->text = malloc(len + 1);
        if (!p->text)
            return -2;
        memcpy(p->text, text, len);
        p->text[len] = 0;
    }
    t->n++;
    return 0;
}

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Parses the variable name v[0..len) into a piece. */
static int add_var(struct cfg_template *t, const char *v, size_t len, unsigned flags, char *err,
                   size_t errlen)
{
    for (int k = 0; k < 2; k++) {
        const char *pre = k == 0 ? "header." : "cookie.";
        if (len > 7 && memcmp(v, pre, 7) == 0) {
            for (size_t i = 7; i < len; i++)
                if (!is_tchar(v[i])) {
                    snprintf(err, errlen, "invalid %s name in {%.*s}", k ? "cookie" : "header",
                             (int)len, v);
                    return -1;
                }
            return add(t, k == 0 ? TV_HEADER : TV_COOKIE, v + 7, len - 7);
        }
    }
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        if (strlen(vars[i].name) != len || memcmp(vars[i].name, v, len) != 0)
            continue;
        if ((vars[i].var == TV_STATUS || vars[i].var == TV_SERVER) && !(flags & TMPL_RESPONSE)) {
            snprintf(err, errlen, "{%s} is only known in response_headers", vars[i].name);
            return -1;
        }
        return add(t, vars[i].var, NULL, 0);
    }
    snprintf(err, errlen, "unknown variable {%.*s}", (int)(len > 64 ? 64 : len), v);
    return -1;
}

int cfg_template_compile(const char *src, unsigned flags, struct cfg_template *out, char *err,
                         size_t errlen)
{
    struct cfg_template t = {0};
    int rc = 0;
    const char *p = src, *lit = src;
    for (; *p && rc == 0; p++) {
        if (!(flags & TMPL_MULTILINE) && (*p == '\r' || *p == '\n')) {
            snprintf(err, errlen, "a value must not hold CR or LF");
            rc = -1;
        } else if (*p == '{') {
            if (p > lit)
                rc = add(&t, TV_LITERAL, lit, (size_t)(p - lit));
            if (rc == 0 && p[1] == '{') {
                rc = add(&t, TV_LITERAL, "{", 1);
                lit = ++p + 1;
                continue;
            }
            const char *close = strchr(p + 1, '}');
            if (rc == 0 && close == NULL) {
                snprintf(err, errlen, "'{' without '}' (write {{ for a literal brace)");
                rc = -1;
            }
            if (rc == 0)
                rc = add_var(&t, p + 1, (size_t)(close - p - 1), flags, err, errlen);
            if (rc == 0)
                lit = (p = close) + 1;
        }
    }
    if (rc == 0 && p > lit)
        rc = add(&t, TV_LITERAL, lit, (size_t)(p - lit));
    if (rc == -2)
        snprintf(err, errlen, "out of memory");
    if (rc != 0) {
        cfg_template_free(&t);
        return rc;
    }
    *out = t;
    return 0;
}
