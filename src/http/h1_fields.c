/* Field lookup and list parsing. See h1_fields.h for the contract. */
#include "http/h1_fields.h"

#include <string.h>
#include <strings.h>

#include "http/h1_chars.h"

const struct h1_header *h1_find_header(const struct h1_head *h, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i].name.len == nlen && strncasecmp(h->headers[i].name.p, name, nlen) == 0)
            return &h->headers[i];
    return NULL;
}

size_t h1_count_headers(const struct h1_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        n += h1_str_ieq(h->headers[i].name, name);
    return n;
}

/* The end of the list element starting at v[pos] (the next comma outside a
 * quoted-string, or the end of the value). */
static size_t element_end(struct h1_str v, size_t pos)
{
    bool quoted = false;
    for (; pos < v.len; pos++) {
        char c = v.p[pos];
        if (quoted && c == '\\' && pos + 1 < v.len)
            pos++;
        else if (c == '"')
            quoted = !quoted;
        else if (c == ',' && !quoted)
            break;
    }
    return pos;
}

bool h1_list_next(const struct h1_head *h, const char *name, struct h1_list *it,
                  struct h1_str *elem)
{
    size_t nlen = strlen(name);
    for (;;) {
        if (!it->in_field) {
            while (it->field < h->n_headers &&
                   (h->headers[it->field].name.len != nlen ||
                    strncasecmp(h->headers[it->field].name.p, name, nlen) != 0))
                it->field++;
            if (it->field >= h->n_headers)
                return false;
            it->in_field = true;
            it->pos = 0;
        }
        struct h1_str v = h->headers[it->field].value;
        if (it->pos > v.len) { /* past the last element of this field */
            it->in_field = false;
            it->field++;
            continue;
        }
        size_t s = it->pos, e = element_end(v, s);
        it->pos = e + 1; /* skips the comma, or moves past the end */
        while (s < e && h1_is_ows((unsigned char)v.p[s]))
            s++;
        while (e > s && h1_is_ows((unsigned char)v.p[e - 1]))
            e--;
        *elem = (struct h1_str){v.p + s, e - s};
        return true;
    }
}

bool h1_header_has_token(const struct h1_head *h, const char *name, const char *token)
{
    struct h1_list it = {0};
    struct h1_str e;
    while (h1_list_next(h, name, &it, &e))
        if (h1_str_ieq(e, token))
            return true;
    return false;
}

bool h1_connection_lists(const struct h1_head *h, struct h1_str field)
{
    struct h1_list it = {0};
    struct h1_str e;
    if (field.len == 0)
        return false;
    while (h1_list_next(h, "connection", &it, &e))
        if (e.len == field.len && strncasecmp(e.p, field.p, e.len) == 0)
            return true;
    return false;
}

enum h1_error h1_content_length(const struct h1_head *h, bool *present, uint64_t *length)
{
    struct h1_list it = {0};
    struct h1_str e;
    *present = false;
    *length = 0;
    while (h1_list_next(h, "content-length", &it, &e)) {
        if (e.len == 0)
            return H1_E_CL_INVALID;
        uint64_t v = 0;
        for (size_t i = 0; i < e.len; i++) {
            unsigned d = (unsigned char)e.p[i] - '0';
            if (d > 9 || v > (UINT64_MAX - d) / 10)
                return H1_E_CL_INVALID;
            v = v * 10 + d;
        }
        if (*present && v != *length)
            return H1_E_CL_CONFLICT;
        *present = true;
        *length = v;
    }
    return H1_OK;
}

bool h1_keep_alive(const struct h1_head *h)
{
    if (h1_header_has_token(h, "connection", "close"))
        return false;
    return h->minor_version >= 1 || h1_header_has_token(h, "connection", "keep-alive");
}
