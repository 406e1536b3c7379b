#include "core/services.h"

#include "core/control.h"

int services_start(struct control *c, char *err, size_t errlen)
{
    (void)c;
    (void)err;
    (void)errlen;
    return 0;
}

void services_reconfigure(struct runtime *rt)
{
    (void)rt;
}

void services_ready(void)
{
}

void services_stopping(void)
{
}

void services_stop(void)
{
}
