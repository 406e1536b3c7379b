#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_free(struct strbuf *sb)
{
    free(sb->data);
    *sb = (struct strbuf){0};
}

void sb_reset(struct strbuf *sb)
{
    sb->len = 0;
    sb->failed = false;
}

/* Makes room for `extra` more bytes plus a NUL. Returns false on allocation failure. */
static bool sb_reserve(struct strbuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *d = realloc(sb->data, cap);
    if (!d) {
        sb->failed = true;
        return false;
    }
    sb->data = d;
    sb->cap = cap;
    return true;
}

void sb_append(struct strbuf *sb, const void *data, size_t len)
{
    if (!sb_reserve(sb, len))
        return;
    memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        sb_append(sb, small, (size_t)n);
        return;
    }
    if (!sb_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* Appends p[0, len) as JSON string content: runs of bytes that need no escape in one
 * append, the rest escaped. */
static void json_content(struct strbuf *sb, const char *p, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch != 0x7f && ch != '"' && ch != '\\') {
            run++;
            continue;
        }
        sb_append(sb, p + i - run, run);
        run = 0;
        switch (ch) {
        case '"':
            sb_append(sb, "\\\"", 2);
            break;
        case '\\':
            sb_append(sb, "\\\\", 2);
            break;
        case '\n':
            sb_append(sb, "\\n", 2);
            break;
        case '\r':
            sb_append(sb, "\\r", 2);
            break;
        case '\t':
            sb_append(sb, "\\t", 2);
            break;
        default:
            sb_printf(sb, "\\u%04x", ch);
        }
    }
    sb_append(sb, p + len - run, run);
}

void sb_json_str(struct strbuf *sb, const char *s)
{
    if (!s) {
        sb_puts(sb, "null");
        return;
    }
    sb_append(sb, "\"", 1);
    json_content(sb, s, strlen(s));
    sb_append(sb, "\"", 1);
}

void sb_u64(struct strbuf *sb, unsigned long long v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_append(sb, tmp + sizeof(tmp) - n, n);
}

/* `,"key":` (no comma right after the opening brace); keys are literals that need no
 * escaping. */
static void json_key(struct strbuf *sb, const char *key)
{
    if (sb->len > 0 && sb->data[sb->len - 1] != '{')
        sb_append(sb, ",\"", 2);
    else
        sb_append(sb, "\"", 1);
    sb_puts(sb, key);
    sb_append(sb, "\":", 2);
}

void sb_json_kv_str(struct strbuf *sb, const char *key, const char *s)
{
    json_key(sb, key);
    sb_json_str(sb, s);
}

void sb_json_kv_strn(struct strbuf *sb, const char *key, const char *p, size_t len)
{
    json_key(sb, key);
    if (!p) {
        sb_puts(sb, "null");
        return;
    }
    sb_append(sb, "\"", 1);
    size_t run = 0; /* bytes that need no escape, appended at once */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            run++;
            continue;
        }
        sb_append(sb, p + i - run, run);
        run = 0;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sb_append(sb, e, 2);
        } else {
            sb_printf(sb, "\\u%04x", ch);
        }
    }
    sb_append(sb, p + len - run, run);
    sb_append(sb, "\"", 1);
}
