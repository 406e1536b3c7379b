/* Character classes of the HTTP grammar (RFC 9110 section 5.6, RFC 9112), shared by the
 * HTTP/1 parsers. Internal to src/http/. */
#ifndef SLUICE_HTTP_H1_CHARS_H
#define SLUICE_HTTP_H1_CHARS_H

#include <stdbool.h>
#include <stddef.h>

/* tchar: the characters of a token (method, field name, coding, option). */
static inline bool h1_is_tchar(unsigned char c)
{
    /* bit c of the 128-bit mask: ALPHA DIGIT and !#$%&'*+-.^_`|~ */
    static const unsigned long long mask[2] = {0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL};
    return c < 128 && ((mask[c >> 6] >> (c & 63)) & 1);
}

/* field-vchar / SP / HTAB: visible ASCII, obs-text (>= 0x80), space and tab. */
static inline bool h1_is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static inline bool h1_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline int h1_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* True when p[0..len) is a non-empty token. */
static inline bool h1_is_token(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!h1_is_tchar((unsigned char)p[i]))
            return false;
    return true;
}

#endif
