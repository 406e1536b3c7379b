#include "net/host_pattern.h"

#include <string.h>
#include <strings.h>

bool host_pattern_matches(const char *pattern, const char *name, size_t len)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t pl = strlen(pattern + 1); /* ".suffix" */
        return len > pl && strncasecmp(name + len - pl, pattern + 1, pl) == 0;
    }
    return strlen(pattern) == len && strncasecmp(pattern, name, len) == 0;
}

bool host_patterns_match(char *const *patterns, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (host_pattern_matches(patterns[i], name, len))
            return true;
    return false;
}
