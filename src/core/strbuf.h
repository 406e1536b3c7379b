/* A growable byte buffer with append helpers for building log lines and JSON/HTTP text. */
#ifndef SLUICE_CORE_STRBUF_H
#define SLUICE_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the content is truncated */
};

void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_append(struct strbuf *sb, const void *data, size_t len);
void sb_puts(struct strbuf *sb, const char *s);
__attribute__((format(printf, 2, 3))) void sb_printf(struct strbuf *sb, const char *fmt, ...);
/* Appends s as a JSON string literal with quotes ("null" when s is NULL). */
void sb_json_str(struct strbuf *sb, const char *s);
/* Appends v in decimal. */
void sb_u64(struct strbuf *sb, unsigned long long v);
/* Appends ,"key":"..." for len bytes that came off the network (a request's path or a
 * header value): control characters, '"', '\\' and bytes over 0x7e are escaped, so the
 * line stays valid JSON whatever the bytes. p == NULL writes null. */
void sb_json_kv_strn(struct strbuf *sb, const char *key, const char *p, size_t len);
/* Appends `"key":` followed by s as a JSON string; a leading comma when not first. Keys
 * are literals of the code, written as they are (no escaping). */
void sb_json_kv_str(struct strbuf *sb, const char *key, const char *s);

#endif
