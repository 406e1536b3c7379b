/* Duration and size parsers shared by the config loader and other modules. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

/* Reads decimal digits at *p into *v; returns the number of digits, or -1 on overflow. */
static int units_digits(const char **p, uint64_t *v)
{
    int n = 0;
    *v = 0;
    while (isdigit((unsigned char)**p)) {
        unsigned d = (unsigned)(**p - '0');
        if (*v > (UINT64_MAX - d) / 10)
            return -1;
        *v = *v * 10 + d;
        (*p)++;
        n++;
    }
    return n;
}

/* Parses "250ms", "5s", "4m", "1h", "1h30m", "1m30s500ms": whole numbers each followed
 * by a unit, units from largest to smallest, each at most once. A bare number has no
 * unit and is refused. */
int parse_duration_ms(const char *text, uint64_t *out, const char **err)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    const char *p = text;
    const char *msg;
    uint64_t total = 0;
    size_t next_unit = 0; /* units must come in decreasing order */

    if (text == NULL || *text == '\0') {
        msg = "empty duration";
        goto fail;
    }
    while (*p != '\0') {
        uint64_t v;
        int nd = units_digits(&p, &v);
        if (nd < 0) {
            msg = "duration too large";
            goto fail;
        }
        if (nd == 0) {
            msg = "invalid duration (expected e.g. 250ms, 5s, 4m, 1h30m)";
            goto fail;
        }
        if (*p == '.') {
            msg = "fractions are not allowed in durations (write 1s500ms, not 1.5s)";
            goto fail;
        }
        if (*p == '\0') {
            msg = "duration needs a unit (ms, s, m, h)";
            goto fail;
        }
        size_t u;
        size_t ulen = 0;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t l = strlen(units[u].name);
            /* "m" must not swallow the "m" of "ms" */
            if (strncmp(p, units[u].name, l) == 0 && !isalpha((unsigned char)p[l])) {
                ulen = l;
                break;
            }
        }
        if (ulen == 0) {
            msg = "unknown duration unit (use ms, s, m, h)";
            goto fail;
        }
        if (u < next_unit) {
            msg = "duration units must go from largest to smallest (h, m, s, ms)";
            goto fail;
        }
        next_unit = u + 1;
        p += ulen;
        if (v > UINT64_MAX / units[u].ms || total > UINT64_MAX - v * units[u].ms) {
            msg = "duration too large";
            goto fail;
        }
        total += v * units[u].ms;
    }
    *out = total;
    return 0;
fail:
    if (err != NULL)
        *err = msg;
    return -EINVAL;
}

/* Parses "512", "16k", "1m", "1g" (powers of 1024; unit case-insensitive, an optional
 * trailing "b" or "ib" as in "16KiB" is accepted). */
int parse_size(const char *text, uint64_t *out, const char **err)
{
    const char *p = text;
    const char *msg;
    uint64_t v, mult = 1;

    if (text == NULL || *text == '\0') {
        msg = "empty size";
        goto fail;
    }
    int nd = units_digits(&p, &v);
    if (nd < 0) {
        msg = "size too large";
        goto fail;
    }
    if (nd == 0) {
        msg = "invalid size (expected e.g. 512, 16k, 1m)";
        goto fail;
    }
    if (*p != '\0') {
        switch (tolower((unsigned char)*p)) {
        case 'k':
            mult = 1024;
            break;
        case 'm':
            mult = 1024 * 1024;
            break;
        case 'g':
            mult = 1024 * 1024 * 1024;
            break;
        case 'b':
            mult = 1;
            break;
        default:
            msg = "unknown size unit (use k, m, g)";
            goto fail;
        }
        bool was_b = tolower((unsigned char)*p) == 'b';
        p++;
        if (!was_b) {
            if (tolower((unsigned char)*p) == 'i' && tolower((unsigned char)p[1]) == 'b')
                p += 2;
            else if (tolower((unsigned char)*p) == 'b')
                p++;
        }
        if (*p != '\0') {
            msg = "unknown size unit (use k, m, g)";
            goto fail;
        }
    }
    if (v > UINT64_MAX / mult) {
        msg = "size too large";
        goto fail;
    }
    *out = v * mult;
    return 0;
fail:
    if (err != NULL)
        *err = msg;
    return -EINVAL;
}

const char *cfg_protocol_name(enum cfg_protocol p)
{
    switch (p) {
    case PROTO_TCP:
        return "tcp";
    case PROTO_TLS:
        return "tls";
    case PROTO_HTTP:
        return "http";
    case PROTO_HTTPS:
        return "https";
    }
    return "?";
}
