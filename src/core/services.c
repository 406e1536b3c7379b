/* Wires the main-thread services (probes, DNS, admin API, systemd) into the life cycle. */
#include "core/services.h"

#include <systemd/sd-daemon.h>

#include "admin/admin.h"
#include "core/control.h"
#include "core/log.h"
#include "net/dns.h"
#include "upstream/probe.h"

static struct prober *prober;
static struct dns *dns;
static struct admin *admin;

int services_start(struct control *c, char *err, size_t errlen)
{
    prober = prober_new(&c->loop);
    dns = dns_new(&c->loop, err, errlen);
    if (!prober || !dns)
        return -1;
    admin = admin_new(c, err, errlen);
    if (!admin)
        return -1;
    dns_sync(dns, c->rt);
    prober_sync(prober, c->rt);
    return 0;
}

void services_reconfigure(struct runtime *rt)
{
    dns_sync(dns, rt);
    prober_sync(prober, rt);
    admin_reconfigure(admin, rt);
    sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
}

void services_ready(void)
{
    sd_notify(0, "READY=1\nSTATUS=serving");
}

void services_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void services_stop(void)
{
    admin_free(admin);
    prober_free(prober);
    dns_free(dns);
    admin = NULL;
    prober = NULL;
    dns = NULL;
}
