#include "proxy/protocols.h"

#include "http/h1_conn.h"
#include "l4/l4_conn.h"

const struct conn_ops *proxy_protocol_ops(enum cfg_protocol p)
{
    switch (p) {
    case PROTO_TCP:
    case PROTO_TLS:
        return &l4_conn_ops;
    case PROTO_HTTP:
    case PROTO_HTTPS:
        return &h1_conn_ops;
    default:
        return NULL;
    }
}
