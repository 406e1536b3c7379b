/* Socket address parsing and formatting (see addr.h). */
#include "net/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Messages that carry a value are built in this per-thread buffer; like the static
 * messages it stays valid until the next addr_parse() call on the same thread. */
static _Thread_local char addr_msg[96];

/* True when `s` (len bytes) is a valid DNS host name: labels of 1-63 characters from
 * [A-Za-z0-9_-] not starting or ending with '-', 253 characters at most in all. The
 * underscore is tolerated because container and service names often carry one. */
static bool addr_valid_hostname(const char *s, size_t len)
{
    if (len == 0 || len > ADDR_HOST_MAX - 1)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && c != '-' && c != '_')
            return false;
        if (label == 0 && c == '-')
            return false;
        label++;
    }
    return true;
}

/* Parses the port text [s, s+len) into *port; returns NULL or an error message. */
static const char *addr_parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0)
        return "missing port";
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return "invalid port (expected a number 1-65535)";
        if (v <= 65535)
            v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        if (len > 20)
            return "port out of range (1-65535)";
        snprintf(addr_msg, sizeof(addr_msg), "port %.*s out of range (1-65535)", (int)len, s);
        return addr_msg;
    }
    *port = (uint16_t)v;
    return NULL;
}

static bool addr_all_digits_dots(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && s[i] != '.')
            return false;
    return true;
}

int addr_parse(const char *text, struct net_addr *out, const char **err)
{
    const char *msg = NULL;
    const char *host, *port;
    size_t host_len, port_len;
    bool bracketed = false;

    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0') {
        msg = "empty address";
        goto fail;
    }
    size_t n = strlen(text);
    if (text[0] == '[') {
        const char *end = memchr(text, ']', n);
        if (end == NULL) {
            msg = "missing ']' after IPv6 address";
            goto fail;
        }
        host = text + 1;
        host_len = (size_t)(end - host);
        if (end[1] == '\0') {
            msg = "missing port";
            goto fail;
        }
        if (end[1] != ':') {
            msg = "expected ':PORT' after ']'";
            goto fail;
        }
        port = end + 2;
        bracketed = true;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL) {
            msg = "missing port";
            goto fail;
        }
        host = text;
        host_len = (size_t)(colon - text);
        if (memchr(host, ':', host_len) != NULL) {
            msg = "IPv6 addresses need brackets, e.g. [::1]:443";
            goto fail;
        }
        port = colon + 1;
    }
    port_len = strlen(port);
    if (host_len == 0) {
        msg = "missing host (use *:PORT for any address)";
        goto fail;
    }
    if (host_len >= ADDR_HOST_MAX) {
        msg = "host name too long";
        goto fail;
    }
    msg = addr_parse_port(port, port_len, &out->port);
    if (msg != NULL)
        goto fail;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';

    if (bracketed) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, out->host, &s6->sin6_addr) != 1) {
            msg = "invalid IPv6 address";
            goto fail;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(out->port);
        out->len = sizeof(*s6);
        out->is_wildcard = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        return 0;
    }

    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
    if (strcmp(out->host, "*") == 0) {
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, out->host, &s4->sin_addr) != 1) {
        if (addr_all_digits_dots(host, host_len)) {
            msg = "invalid IPv4 address";
            goto fail;
        }
        if (!addr_valid_hostname(host, host_len)) {
            msg = "invalid host name";
            goto fail;
        }
        out->is_name = true;
        out->len = 0;
        return 0;
    }
    s4->sin_family = AF_INET;
    s4->sin_port = htons(out->port);
    out->len = sizeof(*s4);
    out->is_wildcard = s4->sin_addr.s_addr == htonl(INADDR_ANY);
    return 0;

fail:
    memset(out, 0, sizeof(*out));
    if (err != NULL)
        *err = msg;
    return -EINVAL;
}

void addr_format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    if (sa == NULL) {
        snprintf(buf, len, "?");
    } else if (sa->sa_family == AF_INET) {
        /* dotted quad by hand (inet_ntop formats with sprintf: most of a request's cost
           of X-Forwarded-For) */
        const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        char tmp[16], *w = tmp;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100)
                *w++ = (char)('0' + v / 100);
            if (v >= 10)
                *w++ = (char)('0' + v / 10 % 10);
            *w++ = (char)('0' + v % 10);
            *w++ = i < 3 ? '.' : '\0';
        }
        if ((size_t)(w - tmp) > len)
            snprintf(buf, len, "?");
        else
            memcpy(buf, tmp, (size_t)(w - tmp));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len) == NULL)
            snprintf(buf, len, "?");
    } else {
        snprintf(buf, len, "?");
    }
}

void addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (len == 0)
        return;
    addr_format_ip(sa, ip, sizeof(ip));
    if (sa != NULL && sa->sa_family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)addr_port(sa));
    else if (sa != NULL && sa->sa_family == AF_INET)
        snprintf(buf, len, "%s:%u", ip, (unsigned)addr_port(sa));
    else
        snprintf(buf, len, "?");
}

bool addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a == NULL || b == NULL || a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    return false;
}

uint16_t addr_port(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}
