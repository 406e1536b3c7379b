/* The runtime's view of the TLS layer: build and free per-snapshot TLS contexts. */
#ifndef SLUICE_TLS_GLUE_H
#define SLUICE_TLS_GLUE_H

#include <stddef.h>

#include "config/config.h"

struct tls_server;
struct tls_client;

struct tls_server *tls_glue_server_new(const struct cfg_listener *l, char *err, size_t errlen);
void tls_glue_server_free(struct tls_server *s);
struct tls_client *tls_glue_client_new(const struct cfg_backend *b, char *err, size_t errlen);
void tls_glue_client_free(struct tls_client *c);

#endif
