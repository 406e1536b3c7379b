/* Socket addresses as written in sluice.yaml ("1.2.3.4:80", "[::1]:443", "*:8080",
 * "host.name:5432") and as printed in logs ("1.2.3.4:80", "[::1]:443"). */
#ifndef SLUICE_NET_ADDR_H
#define SLUICE_NET_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDR_HOST_MAX 254 /* longest DNS name we accept, plus NUL */
#define ADDR_TEXT_MAX 64  /* enough for "[ffff:...:ffff]:65535" */

/* Room for an IPv4 or IPv6 socket address, readable as a struct sockaddr. */
union sockaddr_any {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct net_addr {
    struct sockaddr_storage ss; /* valid unless is_name */
    socklen_t len;              /* 0 when is_name */
    char host[ADDR_HOST_MAX];   /* host part as written; "*" for a wildcard */
    uint16_t port;
    bool is_name;     /* a DNS name: must be resolved before use */
    bool is_wildcard; /* "*:port", "0.0.0.0:port" or "[::]:port" */
};

/* Parses `text` into `out`. Returns 0, or -EINVAL with `*err` pointing at a static
 * message such as "port 70000 out of range (1-65535)". "*:P" becomes the IPv4 any
 * address. A name must be a valid DNS host name. */
int addr_parse(const char *text, struct net_addr *out, const char **err);

/* Writes "1.2.3.4:80" or "[::1]:80" for `sa` into buf (at least ADDR_TEXT_MAX bytes). */
void addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* Writes just the IP ("1.2.3.4" or "::1") of `sa` into buf. */
void addr_format_ip(const struct sockaddr *sa, char *buf, size_t len);

/* True when two socket addresses have the same family, IP and port. */
bool addr_equal(const struct sockaddr *a, const struct sockaddr *b);

/* Port of an AF_INET/AF_INET6 address in host order (0 for others). */
uint16_t addr_port(const struct sockaddr *sa);

#endif
