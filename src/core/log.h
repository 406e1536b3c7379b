/* Process log (stderr): one line per event, "TIME LEVEL: message", written with a single
 * write() so lines from different threads never interleave. Thread-safe. */
#ifndef SLUICE_CORE_LOG_H
#define SLUICE_CORE_LOG_H

#include <stddef.h>

#include "config/config.h"

void log_set_level(enum cfg_log_level level);
int log_enabled(enum cfg_log_level level);

__attribute__((format(printf, 2, 3))) void log_msg(enum cfg_log_level level, const char *fmt, ...);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

/* Writes the current UTC time as "2026-01-02T03:04:05.678Z" into buf (>= 32 bytes). */
void log_format_time(char *buf, size_t len);

#endif
