/* Unit tests for the per-thread buffer cache (src/core/bufcache.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "core/bufcache.h"

static void test_reuse_by_size(void **state)
{
    (void)state;
    struct bufcache c = {0};
    void *a = bufcache_get(&c, 1000), *b = bufcache_get(&c, 2000);
    assert_non_null(a);
    assert_non_null(b);
    bufcache_put(&c, a, 1000);
    bufcache_put(&c, b, 2000);
    bufcache_put(&c, NULL, 10); /* ignored */
    assert_int_equal(c.n, 2);
    assert_ptr_equal(bufcache_get(&c, 2000), b); /* the same size comes back */
    void *x = bufcache_get(&c, 3000);            /* no such size: a new one */
    assert_ptr_not_equal(x, a);
    assert_int_equal(c.n, 1);
    assert_ptr_equal(bufcache_get(&c, 1000), a);
    assert_int_equal(c.n, 0);
    free(a);
    free(b);
    free(x);
}

static void test_bounded_and_cleared(void **state)
{
    (void)state;
    struct bufcache c = {0};
    for (int i = 0; i < BUFCACHE_SLOTS + 5; i++)
        bufcache_put(&c, malloc(64), 64); /* the extra ones are freed (ASan checks) */
    assert_int_equal(c.n, BUFCACHE_SLOTS);
    bufcache_clear(&c);
    assert_int_equal(c.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_by_size),
        cmocka_unit_test(test_bounded_and_cleared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
