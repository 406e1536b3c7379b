/* Template rendering: see tmpl.h. */
#include "http/tmpl.h"

#include <string.h>

#include "http/h1_fields.h"
#include "net/addr.h"

size_t tmpl_utoa(unsigned v, char *out)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof(tmp));
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Formats the client address and port into x->cbuf on first use. */
static void client_text(struct tmpl_ctx *x)
{
    if (!x->client)
        return;
    if (!x->client_ip.p) {
        addr_format_ip(x->client, x->cbuf, 48);
        x->client_ip = (struct h1_str){x->cbuf, strlen(x->cbuf)};
    }
    if (!x->client_port.p) {
        size_t n = tmpl_utoa(addr_port(x->client), x->cbuf + 48);
        x->client_port = (struct h1_str){x->cbuf + 48, n};
    }
}

bool tmpl_cookie(const struct h1_head *h, const char *name, struct h1_str *out)
{
    size_t nl = strlen(name);
    for (size_t i = 0; h && i < h->n_headers; i++) {
        if (!h1_str_ieq(h->headers[i].name, "cookie"))
            continue;
        const char *p = h->headers[i].value.p, *end = p + h->headers[i].value.len;
        while (p < end) { /* "a=1; b=2" */
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
                const char *v = eq + 1;
                size_t vl = (size_t)(e - v);
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                    v++;
                    vl -= 2;
                }
                *out = (struct h1_str){v, vl};
                return true;
            }
            p = e;
        }
    }
    return false;
}

static struct h1_str value_of(const struct cfg_tpiece *p, struct tmpl_ctx *x)
{
    struct h1_str none = {"", 0};
    switch (p->var) {
    case TV_LITERAL:
        return (struct h1_str){p->text, p->len};
    case TV_CLIENT_IP:
        if (!x->client_ip.p)
            client_text(x);
        return x->client_ip;
    case TV_CLIENT_PORT:
        if (!x->client_port.p)
            client_text(x);
        return x->client_port;
    case TV_HOST:
        return x->host;
    case TV_METHOD:
        return x->method;
    case TV_PATH:
        return x->path;
    case TV_QUERY:
        return x->query;
    case TV_REQUEST_URI:
        return x->request_uri;
    case TV_SCHEME:
        return x->scheme;
    case TV_REQUEST_ID:
        return x->request_id;
    case TV_LISTENER:
        return x->listener;
    case TV_SNI:
        return x->sni;
    case TV_TLS_VERSION:
        return x->tls_version;
    case TV_CLIENT_CERT_SUBJECT:
        return x->cert_subject;
    case TV_CLIENT_CERT_FINGERPRINT:
        return x->cert_fingerprint;
    case TV_CLIENT_CERT_VERIFY:
        return x->cert_verify;
    case TV_STATUS:
        return x->status;
    case TV_SERVER:
        return x->server;
    case TV_HEADER: {
        const struct h1_header *h = x->req ? h1_find_header(x->req, p->text) : NULL;
        return h ? h->value : none;
    }
    case TV_COOKIE: {
        struct h1_str v;
        return tmpl_cookie(x->req, p->text, &v) ? v : none;
    }
    }
    return none;
}

size_t tmpl_render(const struct cfg_template *t, struct tmpl_ctx *x, char *out, size_t cap,
                   bool *unsafe)
{
    size_t n = 0;
    bool bad = false;
    for (size_t i = 0; i < t->n; i++) {
        struct h1_str v = value_of(&t->pieces[i], x);
        if (v.len > cap - n)
            return TMPL_TOO_LONG;
        if (v.len) {
            memcpy(out + n, v.p, v.len);
            if (t->pieces[i].var != TV_LITERAL) /* literals were checked at load */
                for (size_t k = 0; k < v.len; k++) {
                    unsigned char ch = (unsigned char)v.p[k];
                    bad |= ch < 0x20 && (ch == '\r' || ch == '\n' || ch == 0);
                }
        }
        n += v.len;
    }
    if (unsafe)
        *unsafe = bad;
    return n;
}
