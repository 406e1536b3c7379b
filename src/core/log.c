#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum cfg_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int log_enabled(enum cfg_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_format_time(char *buf, size_t len)
{
    /* the text up to the seconds is kept per thread and redone once a second: an access
       log line per request would otherwise pay gmtime_r and snprintf each time */
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char prefix[24]; /* "2026-12-05T11:52:07." */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        last_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    char tail[5] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z',
                    '\0'};
    size_t n = strlen(prefix);
    if (len == 0)
        return;
    if (n + sizeof(tail) > len) { /* too small: as much as fits */
        size_t k = n < len - 1 ? n : len - 1;
        memcpy(buf, prefix, k);
        buf[k] = '\0';
        return;
    }
    memcpy(buf, prefix, n);
    memcpy(buf + n, tail, sizeof(tail));
}

void log_msg(enum cfg_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[2048];
    char now[32];
    log_format_time(now, sizeof(now));
    int n = snprintf(line, sizeof(line), "%s %s: ", now, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
