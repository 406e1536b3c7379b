/* Flat JSON object reader. See json_min.h for the contract. */
#include "admin/json_min.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct jm_in {
    const char *p, *start, *end;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct jm_in *in, const char *fmt, ...)
{
    if (in->errlen == 0)
        return -1;
    int n = snprintf(in->err, in->errlen, "at byte %zu: ", (size_t)(in->p - in->start));
    if (n < 0 || (size_t)n >= in->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->err + n, in->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_ws(struct jm_in *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
        in->p++;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (before end), or 0 when invalid (overlong
 * forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Reads a string starting at the opening quote; sets *s, *len to the raw content. */
static int read_string(struct jm_in *in, const char **s, size_t *len)
{
    in->p++; /* opening quote */
    const char *begin = in->p;
    while (in->p < in->end) {
        unsigned char c = (unsigned char)*in->p;
        if (c == '"') {
            *s = begin;
            *len = (size_t)(in->p - begin);
            in->p++;
            return 0;
        }
        if (c < 0x20)
            return fail(in, "control character in a string (escape it)");
        if (c == '\\') {
            if (in->end - in->p < 2)
                break;
            char e = in->p[1];
            if (e == 'u') {
                if (in->end - in->p < 6 || hex4(in->p + 2) < 0)
                    return fail(in, "bad \\u escape (needs 4 hex digits)");
                int u = hex4(in->p + 2);
                if (u >= 0xdc00 && u <= 0xdfff)
                    return fail(in, "unpaired low surrogate in a \\u escape");
                if (u >= 0xd800 && u <= 0xdbff) {
                    if (in->end - in->p < 12 || in->p[6] != '\\' || in->p[7] != 'u' ||
                        hex4(in->p + 8) < 0xdc00 || hex4(in->p + 8) > 0xdfff)
                        return fail(in, "unpaired high surrogate in a \\u escape");
                    in->p += 6;
                }
                in->p += 6;
                continue;
            }
            if (e == 0 || !strchr("\"\\/bfnrt", e))
                return fail(in, "unknown escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
            in->p += 2;
            continue;
        }
        size_t n = utf8_len((const unsigned char *)in->p, (const unsigned char *)in->end);
        if (n == 0)
            return fail(in, "invalid UTF-8 in a string");
        in->p += n;
    }
    return fail(in, "unterminated string");
}

/* Reads -?(0|[1-9][0-9]*) into *v; refuses fractions, exponents and overflow. */
static int read_int(struct jm_in *in, long long *v)
{
    bool neg = false;
    if (*in->p == '-') {
        neg = true;
        in->p++;
    }
    if (in->p == in->end || *in->p < '0' || *in->p > '9')
        return fail(in, "expected a digit");
    if (*in->p == '0' && in->p + 1 < in->end && in->p[1] >= '0' && in->p[1] <= '9')
        return fail(in, "leading zeros are not allowed");
    unsigned long long u = 0;
    unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    while (in->p < in->end && *in->p >= '0' && *in->p <= '9') {
        unsigned d = (unsigned)(*in->p - '0');
        if (u > (limit - d) / 10)
            return fail(in, "integer out of range");
        u = u * 10 + d;
        in->p++;
    }
    if (in->p < in->end && (*in->p == '.' || *in->p == 'e' || *in->p == 'E'))
        return fail(in, "only integers are accepted, not fractions or exponents");
    if (neg)
        *v = u > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)u;
    else
        *v = (long long)u;
    return 0;
}

int jm_string(const char *raw, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (raw[i] != '\\') {
            if (n + 1 >= outlen)
                return -1;
            out[n++] = raw[i++];
            continue;
        }
        char e = raw[i + 1];
        if (e != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *k = strchr(from, e);
            if (!k || n + 1 >= outlen)
                return -1;
            out[n++] = to[k - from];
            i += 2;
            continue;
        }
        cp = (uint32_t)hex4(raw + i + 2);
        i += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)hex4(raw + i + 2) - 0xdc00);
            i += 6;
        }
        if (cp == 0)
            return -1;
        unsigned char b[4];
        size_t k;
        if (cp < 0x80) {
            b[0] = (unsigned char)cp;
            k = 1;
        } else if (cp < 0x800) {
            b[0] = (unsigned char)(0xc0 | (cp >> 6));
            b[1] = (unsigned char)(0x80 | (cp & 0x3f));
            k = 2;
        } else if (cp < 0x10000) {
            b[0] = (unsigned char)(0xe0 | (cp >> 12));
            b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (unsigned char)(0x80 | (cp & 0x3f));
            k = 3;
        } else {
            b[0] = (unsigned char)(0xf0 | (cp >> 18));
            b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
            b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
            b[3] = (unsigned char)(0x80 | (cp & 0x3f));
            k = 4;
        }
        if (n + k >= outlen)
            return -1;
        memcpy(out + n, b, k);
        n += k;
    }
    if (outlen == 0)
        return -1;
    out[n] = 0;
    if (memchr(out, 0, n))
        return -1;
    return (int)n;
}

/* Decodes the key of f into buf (JM_MAX_KEY + 1 bytes); -1 when too long. */
static int field_key(const struct jm_field *f, char *buf)
{
    return jm_string(f->key, f->key_len, buf, JM_MAX_KEY + 1);
}

const struct jm_field *jm_get(const struct jm_object *o, const char *key)
{
    char buf[JM_MAX_KEY + 1];
    for (size_t i = 0; i < o->n; i++)
        if (field_key(&o->fields[i], buf) >= 0 && strcmp(buf, key) == 0)
            return &o->fields[i];
    return NULL;
}

/* Reads one "key": value member into f. */
static int read_member(struct jm_in *in, struct jm_object *out, struct jm_field *f)
{
    char key[JM_MAX_KEY + 1], other[JM_MAX_KEY + 1];
    if (in->p == in->end || *in->p != '"')
        return fail(in, "expected a quoted key");
    const char *kp = in->p;
    if (read_string(in, &f->key, &f->key_len) < 0)
        return -1;
    if (field_key(f, key) < 0) {
        in->p = kp;
        return fail(in, "key too long (at most %d bytes) or containing NUL", JM_MAX_KEY);
    }
    for (size_t i = 0; i < out->n; i++) {
        if (field_key(&out->fields[i], other) >= 0 && strcmp(key, other) == 0) {
            in->p = kp;
            return fail(in, "duplicate key \"%s\"", key);
        }
    }
    skip_ws(in);
    if (in->p == in->end || *in->p != ':')
        return fail(in, "expected ':' after a key");
    in->p++;
    skip_ws(in);
    if (in->p == in->end)
        return fail(in, "expected a value");
    char c = *in->p;
    if (c == '"') {
        f->type = JM_STRING;
        return read_string(in, &f->str, &f->str_len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        f->type = JM_INT;
        return read_int(in, &f->num);
    }
    if (c == '{' || c == '[')
        return fail(in, "value of \"%s\": nested objects and arrays are not accepted", key);
    return fail(in, "value of \"%s\": expected a string or an integer", key);
}

int jm_parse_object(const char *text, size_t len, struct jm_object *out, char *err, size_t errlen)
{
    struct jm_in in = {text, text, text + len, err, errlen};
    out->n = 0;
    if (errlen)
        err[0] = 0;
    skip_ws(&in);
    if (in.p == in.end)
        return fail(&in, "empty body: expected a JSON object");
    if (*in.p != '{')
        return fail(&in, "expected a JSON object '{...}'");
    in.p++;
    skip_ws(&in);
    if (in.p < in.end && *in.p == '}') {
        in.p++;
    } else {
        for (;;) {
            if (out->n == JM_MAX_FIELDS)
                return fail(&in, "too many members (at most %d)", JM_MAX_FIELDS);
            struct jm_field *f = &out->fields[out->n];
            memset(f, 0, sizeof(*f));
            if (read_member(&in, out, f) < 0)
                return -1;
            out->n++;
            skip_ws(&in);
            if (in.p == in.end)
                return fail(&in, "unterminated object");
            if (*in.p == '}') {
                in.p++;
                break;
            }
            if (*in.p != ',')
                return fail(&in, "expected ',' or '}'");
            in.p++;
            skip_ws(&in);
        }
    }
    skip_ws(&in);
    if (in.p != in.end)
        return fail(&in, "unexpected data after the object");
    return 0;
}
