#include "tls/tls_glue.h"

#include <stdio.h>

struct tls_server *tls_glue_server_new(const struct cfg_listener *l, char *err, size_t errlen)
{
    snprintf(err, errlen, "listener %s: TLS is not available in this build yet", l->name);
    return NULL;
}

void tls_glue_server_free(struct tls_server *s)
{
    (void)s;
}

struct tls_client *tls_glue_client_new(const struct cfg_backend *b, char *err, size_t errlen)
{
    snprintf(err, errlen, "backend %s: TLS is not available in this build yet", b->name);
    return NULL;
}

void tls_glue_client_free(struct tls_client *c)
{
    (void)c;
}
