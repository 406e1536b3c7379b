/* Freeing a configuration snapshot, complete or partly built by the loader. Every
 * pointer in it is either NULL or owned by it. */
#include "config/load_internal.h"

#include <regex.h>
#include <stdlib.h>

void cfg_free_strings(struct cfg_strings *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

void cfg_free_pairs(struct cfg_pairs *p)
{
    for (size_t i = 0; i < p->count; i++) {
        free(p->items[i].name);
        free(p->items[i].value);
    }
    free(p->items);
    p->items = NULL;
    p->count = 0;
}

static void cfg_free_header_ops(struct cfg_header_ops *h)
{
    for (size_t i = 0; h->set_t && i < h->set.count; i++)
        cfg_template_free(&h->set_t[i]);
    for (size_t i = 0; h->add_t && i < h->add.count; i++)
        cfg_template_free(&h->add_t[i]);
    free(h->set_t);
    free(h->add_t);
    cfg_free_pairs(&h->set);
    cfg_free_pairs(&h->add);
    cfg_free_strings(&h->remove);
}

static void cfg_free_kv(struct cfg_kv_matches *m)
{
    for (size_t i = 0; i < m->count; i++) {
        free(m->items[i].name);
        free(m->items[i].value);
        if (m->items[i].re != NULL) {
            regfree(m->items[i].re);
            free(m->items[i].re);
        }
    }
    free(m->items);
}

static void cfg_free_route(struct cfg_route *r)
{
    free(r->sni);
    free(r->alpn);
    free(r->host);
    free(r->path_prefix);
    free(r->path);
    free(r->path_regex);
    if (r->path_re != NULL) {
        regfree(r->path_re);
        free(r->path_re);
    }
    cfg_free_strings(&r->methods);
    cfg_template_free(&r->redirect.to_t);
    cfg_template_free(&r->respond.body_t);
    cfg_free_kv(&r->headers);
    cfg_free_kv(&r->query);
    free(r->backend);
    free(r->rate_limit.header);
    free(r->rewrite.strip_prefix);
    free(r->rewrite.regex);
    free(r->rewrite.replace);
    free(r->rewrite.host);
    if (r->rewrite.re != NULL) {
        regfree(r->rewrite.re);
        free(r->rewrite.re);
    }
    free(r->rewrite.replace_from);
    free(r->rewrite.replace_to);
    cfg_free_header_ops(&r->request_headers);
    cfg_free_header_ops(&r->response_headers);
    free(r->redirect.to);
    free(r->respond.body);
    free(r->respond.content_type);
}

static void cfg_free_listener(struct cfg_listener *l)
{
    free(l->name);
    free(l->binds);
    for (size_t i = 0; i < l->tls.n_certificates; i++) {
        free(l->tls.certificates[i].cert);
        free(l->tls.certificates[i].key);
    }
    free(l->tls.certificates);
    free(l->tls.ciphers);
    free(l->tls.ciphersuites);
    cfg_free_strings(&l->tls.alpn);
    free(l->tls.client_ca);
    free(l->tls.client_crl);
    cfg_free_strings(&l->hosts);
    free(l->backend);
    free(l->http.request_id);
    for (size_t i = 0; i < l->http.n_error_pages; i++)
        free(l->http.error_pages[i].body);
    free(l->http.error_pages);
    for (size_t i = 0; i < l->n_routes; i++)
        cfg_free_route(&l->routes[i]);
    free(l->routes);
}

static void cfg_free_backend(struct cfg_backend *b)
{
    free(b->name);
    for (size_t i = 0; i < b->n_servers; i++)
        free(b->servers[i].address);
    free(b->servers);
    free(b->hash_key_name);
    free(b->tls.ca);
    free(b->tls.sni);
    free(b->tls.cert);
    free(b->tls.key);
    free(b->health.path);
    free(b->health.host);
    free(b->health.expect_body);
    free(b->health.send);
    free(b->health.expect);
    free(b->http.host);
    free(b->affinity_cookie);
}

/* Frees `cfg` and everything it owns, regardless of its reference count. */
void cfg_config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->log.access);
    free(cfg->admin.token_file);
    cfg_free_strings(&cfg->resolver.nameservers);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        cfg_free_listener(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->n_backends; i++)
        cfg_free_backend(&cfg->backends[i]);
    free(cfg->backends);
    free(cfg);
}
