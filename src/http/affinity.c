/* Cookie affinity and hash keys of http backends. See affinity.h. */
#include "http/affinity.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/worker.h"
#include "http/h1_conn.h"
#include "http/h1_fields.h"
#include "upstream/server.h"

/* Trims spaces and tabs at both ends of s. */
static struct h1_str trim(struct h1_str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

bool http_cookie_find(const struct h1_head *h, const char *name, struct h1_str *value)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++) {
        if (!h1_str_ieq(h->headers[i].name, "cookie"))
            continue;
        const char *p = h->headers[i].value.p, *end = p + h->headers[i].value.len;
        while (p < end) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            struct h1_str pair = trim((struct h1_str){p, (size_t)((semi ? semi : end) - p)});
            p = semi ? semi + 1 : end;
            const char *eq = memchr(pair.p, '=', pair.len);
            if (!eq)
                continue;
            struct h1_str n = trim((struct h1_str){pair.p, (size_t)(eq - pair.p)});
            if (n.len != nlen || memcmp(n.p, name, nlen) != 0)
                continue;
            struct h1_str v = trim((struct h1_str){eq + 1, pair.len - (size_t)(eq + 1 - pair.p)});
            if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
                v.p++, v.len -= 2;
            *value = v;
            return true;
        }
    }
    return false;
}

/* The request path without its query (what routing matched). */
static struct h1_str path_of(const struct h1_txn *t)
{
    struct h1_str p = t->req.path;
    const char *q = memchr(p.p, '?', p.len);
    if (q)
        p.len = (size_t)(q - p.p);
    return p.len ? p : (struct h1_str){"/", 1};
}

/* lb_hash of s lower-cased (host names compare case-insensitively); long names are
 * hashed in pieces, which stays deterministic. */
static uint64_t hash_folded(struct h1_str s)
{
    char buf[256];
    uint64_t h = 0;
    for (size_t off = 0; off < s.len || off == 0; off += sizeof(buf)) {
        size_t n = s.len - off < sizeof(buf) ? s.len - off : sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            char ch = s.p[off + i];
            buf[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
        h ^= lb_hash(buf, n) + off;
        if (n == 0)
            break;
    }
    return h;
}

uint64_t http_balance_key(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    const struct cfg_backend *b = t->backend->cfg;
    if (b->balance != BAL_CONSISTENT_HASH || b->hash_key == HASH_CLIENT_IP)
        return up_client_key(t->backend, &c->client_addr.sa);
    struct h1_str in = {NULL, 0};
    const struct h1_header *f;
    switch (b->hash_key) {
    case HASH_HOST:
        return hash_folded(t->m.host);
    case HASH_PATH:
        in = path_of(t);
        break;
    case HASH_HEADER:
        if ((f = h1_find_header(&t->req, b->hash_key_name)) != NULL)
            in = f->value;
        break;
    case HASH_COOKIE:
        (void)http_cookie_find(&t->req, b->hash_key_name, &in);
        break;
    default:
        break;
    }
    if (in.p == NULL) /* the named header or cookie is absent */
        return up_client_key(t->backend, &c->client_addr.sa);
    return lb_hash(in.p, in.len);
}

/* The affinity id a cookie value names (16 hex digits), or 0. */
static uint64_t parse_id(struct h1_str v)
{
    if (v.len != 16)
        return 0;
    uint64_t id = 0;
    for (size_t i = 0; i < 16; i++) {
        char ch = v.p[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        id = id << 4 | (uint64_t)d;
    }
    return id;
}

/* Usable, or draining while healthy and within its drain_timeout (drained servers keep
 * their sessions that long), and under the connection cap. */
static bool sticky_ok(const struct server *s, int cap, uint64_t now)
{
    uint64_t drain = atomic_load(&s->drain_deadline);
    bool ok = atomic_load(&s->lb.usable) ||
              (atomic_load(&s->admin) == SERVER_DRAIN && atomic_load(&s->healthy) &&
               !atomic_load(&s->removed) && (drain == 0 || now < drain));
    return ok && (cap <= 0 || atomic_load(&s->lb.active) < (unsigned)cap);
}

bool http_affinity_pick(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    struct rt_backend *b = t->backend;
    struct h1_str v;
    if (!b->cfg->affinity_cookie || t->at.n_tried != 0 ||
        !http_cookie_find(&t->req, b->cfg->affinity_cookie, &v))
        return false;
    t->affinity_id = parse_id(v);
    for (size_t i = 0; t->affinity_id && i < b->n_servers; i++) {
        if (b->servers[i]->affinity_id != t->affinity_id)
            continue;
        if (!sticky_ok(b->servers[i], b->cfg->max_connections_per_server,
                       loop_now(&c->conn.w->loop)))
            return false;
        up_pick_index(&t->at, (int)i);
        return true;
    }
    return false;
}

size_t http_affinity_set_cookie(struct h1_conn *c, char *buf, size_t n, size_t cap)
{
    struct h1_txn *t = c->t;
    const struct cfg_backend *b = t->backend ? t->backend->cfg : NULL;
    if (!b || !b->affinity_cookie || !t->at.server || t->at.server->affinity_id == t->affinity_id)
        return n;
    if (n < 2)
        return 0;
    char age[40] = "";
    if (b->affinity_ttl_ms)
        snprintf(age, sizeof(age), "; Max-Age=%" PRIu64, b->affinity_ttl_ms / 1000);
    bool secure = c->conn.listener->cfg->protocol == PROTO_HTTPS;
    int w = snprintf(buf + n - 2, cap - (n - 2),
                     "Set-Cookie: %s=%016" PRIx64 "; Path=/; HttpOnly; SameSite=%s%s%s\r\n\r\n",
                     b->affinity_cookie, t->at.server->affinity_id, b->affinity_same_site,
                     secure ? "; Secure" : "", age);
    if (w < 0 || (size_t)w >= cap - (n - 2))
        return 0;
    return n - 2 + (size_t)w;
}
