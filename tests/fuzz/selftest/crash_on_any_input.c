/* A harness that aborts on its first input: the fuzz gate's self-test. scripts/fuzz-smoke.sh
 * --expect-crash runs it and fails if the gate reports success, so a gate that cannot
 * fail (a pipe that swallows the exit status, say) is caught in CI. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    abort();
}
