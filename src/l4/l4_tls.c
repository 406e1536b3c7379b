#include "l4/l4_tls.h"

#include "l4/l4_conn.h"

void l4_tls_accept_step(struct l4_conn *c)
{
    c->error = "TLS not available yet";
    l4_conn_close(c, "tls_error");
}

int l4_tls_start_server(struct l4_conn *c)
{
    c->error = "TLS not available yet";
    return -1;
}

void l4_tls_connect_step(struct l4_conn *c)
{
    c->error = "TLS not available yet";
    l4_conn_close(c, "tls_error");
}
