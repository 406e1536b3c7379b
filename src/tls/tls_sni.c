/* Certificate names and SNI matching for TLS listeners.
 *
 * A certificate answers for its subjectAltName DNS names; the subject CN is used only when
 * the certificate has no DNS SAN (RFC 6125). A wildcard "*.example.com" covers exactly one
 * label, as browsers do. The listener's `hosts` filter is looser on purpose: "*.suffix"
 * there admits any name under the suffix, as nginx's server_name does. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "tls/tls_internal.h"

static char *lower_dup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[len] = '\0';
    return d;
}

static int push_name(struct tls_cert *c, const unsigned char *s, int len)
{
    if (len <= 0 || memchr(s, '\0', (size_t)len) != NULL)
        return 0; /* unusable: skip */
    char **v = realloc(c->names, (c->n_names + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    c->names = v;
    v[c->n_names] = lower_dup((const char *)s, (size_t)len);
    if (v[c->n_names] == NULL)
        return -ENOMEM;
    c->n_names++;
    return 0;
}

int tls_cert_names(struct tls_cert *c)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        rc = push_name(c, ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
        if (rc < 0)
            break;
    }
    GENERAL_NAMES_free(sans);
    if (rc < 0 || c->n_names > 0)
        return rc;

    X509_NAME *subj = X509_get_subject_name(c->leaf);
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0)
        last = idx;
    if (last < 0)
        return 0;
    ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, cn);
    if (len < 0)
        return 0;
    rc = push_name(c, utf8, len);
    OPENSSL_free(utf8);
    return rc;
}

int tls_names_add(struct tls_name_table *t, const char *name, int group)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return 0;
    struct tls_name_ent *v = realloc(t->v, (t->n + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    t->v = v;
    v[t->n].name = strdup(name);
    if (v[t->n].name == NULL)
        return -ENOMEM;
    v[t->n].group = group;
    t->n++;
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tls_name_ent *)a)->name, ((const struct tls_name_ent *)b)->name);
}

void tls_names_sort(struct tls_name_table *t)
{
    if (t->n > 1)
        qsort(t->v, t->n, sizeof(*t->v), ent_cmp);
}

int tls_names_find(const struct tls_name_table *t, const char *name)
{
    struct tls_name_ent key = {.name = (char *)name};
    if (t->n == 0)
        return -1;
    const struct tls_name_ent *e = bsearch(&key, t->v, t->n, sizeof(*t->v), ent_cmp);
    return e != NULL ? e->group : -1;
}

int tls_names_lookup(const struct tls_name_table *t, const char *sni)
{
    int g = tls_names_find(t, sni);
    if (g >= 0 || sni[0] == '*')
        return g;
    const char *dot = strchr(sni, '.');
    if (dot == NULL || dot == sni || dot[1] == '\0')
        return -1;
    char pat[258];
    size_t rest = strlen(dot);
    if (rest + 2 > sizeof(pat))
        return -1;
    pat[0] = '*';
    memcpy(pat + 1, dot, rest + 1);
    return tls_names_find(t, pat);
}

void tls_names_free(struct tls_name_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

int tls_sni_parse(const unsigned char *ext, size_t len, char *out, size_t outlen)
{
    if (len < 2)
        return -1;
    size_t list = ((size_t)ext[0] << 8) | ext[1];
    if (list != len - 2)
        return -1;
    const unsigned char *p = ext + 2, *end = ext + len;
    while (p < end) {
        if (end - p < 3)
            return -1;
        unsigned type = p[0];
        size_t nlen = ((size_t)p[1] << 8) | p[2];
        p += 3;
        if ((size_t)(end - p) < nlen)
            return -1;
        if (type == 0 /* host_name */) {
            if (nlen > 0 && p[nlen - 1] == '.')
                nlen--;
            if (nlen == 0 || nlen + 1 > outlen || memchr(p, '\0', nlen) != NULL)
                return -1;
            for (size_t i = 0; i < nlen; i++)
                out[i] = (char)tolower(p[i]);
            out[nlen] = '\0';
            return 0;
        }
        p += nlen;
    }
    return 1;
}
