/* A tiny bounded JSON reader for flat request bodies such as {"state":"drain","weight":5}.
 *
 * Accepts exactly one JSON object whose values are strings or integers, with surrounding
 * whitespace. Anything else (nested objects, arrays, true/false/null, fractions,
 * exponents, duplicate keys, invalid UTF-8, control characters, trailing bytes, more than
 * JM_MAX_FIELDS members) is refused with a message a person understands. No allocation:
 * fields point into the caller's buffer, escaped; jm_get() and jm_string() decode. */
#ifndef SLUICE_ADMIN_JSON_MIN_H
#define SLUICE_ADMIN_JSON_MIN_H

#include <stddef.h>

#define JM_MAX_FIELDS 16
#define JM_MAX_KEY 64 /* longest decoded key, in bytes */

enum jm_type { JM_STRING, JM_INT };

struct jm_field {
    const char *key; /* raw (still escaped) key text between the quotes */
    size_t key_len;
    enum jm_type type;
    const char *str; /* JM_STRING: raw text between the quotes */
    size_t str_len;
    long long num; /* JM_INT */
};

struct jm_object {
    struct jm_field fields[JM_MAX_FIELDS];
    size_t n;
};

/* Parses text[0..len) into out. Returns 0, or -1 with a message such as
 * "at byte 12: expected a string or an integer" written to err (errlen bytes). */
int jm_parse_object(const char *text, size_t len, struct jm_object *out, char *err, size_t errlen);

/* The field whose decoded key equals `key`, or NULL. */
const struct jm_field *jm_get(const struct jm_object *o, const char *key);

/* Decodes the escaped string raw[0..len) (as stored in a jm_field) into out (outlen bytes,
 * NUL-terminated). Returns the decoded length, or -1 when it does not fit or contains a
 * NUL character. The escapes were validated by jm_parse_object. */
int jm_string(const char *raw, size_t len, char *out, size_t outlen);

#endif
