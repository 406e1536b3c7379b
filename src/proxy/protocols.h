/* Which conn_ops serve a listener protocol. The one place that knows every protocol, so
 * that neither the worker nor the runtime has to. */
#ifndef SLUICE_PROXY_PROTOCOLS_H
#define SLUICE_PROXY_PROTOCOLS_H

#include "config/config.h"
#include "proxy/conn.h"

/* The ops for listeners of protocol p, or NULL when this build cannot serve it. */
const struct conn_ops *proxy_protocol_ops(enum cfg_protocol p);

#endif
