/* Placeholder: the admin server is being written. */
#include "admin/admin.h"

#include <stdlib.h>

struct admin {
    struct control *control;
};

struct admin *admin_new(struct control *c, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct admin *a = calloc(1, sizeof(*a));
    if (a)
        a->control = c;
    return a;
}

void admin_reconfigure(struct admin *a, struct runtime *rt)
{
    (void)a;
    (void)rt;
}

void admin_free(struct admin *a)
{
    free(a);
}
