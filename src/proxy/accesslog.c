#include "proxy/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"

#define ALOG_EARLY_FLUSH (64 * 1024)

static atomic_int sink_fd = 1;                   /* -1 when off */
static atomic_int sink_format = LOG_FORMAT_JSON; /* enum cfg_log_format */

/* The sink's own descriptor number: switching the sink dup2()s the newly opened file onto
 * it, which is atomic for writers, so no descriptor is ever closed under a worker. */
static int sink_slot = -1;

int alog_open(const struct config *cfg)
{
    const char *a = cfg->log.access;
    if (!a || strcmp(a, "stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(a, "stderr") == 0)
        return STDERR_FILENO;
    if (strcmp(a, "off") == 0)
        return -1;
    int fd = open(a, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return fd < 0 ? -2 : fd;
}

void alog_apply(const struct config *cfg, int fd)
{
    atomic_store(&sink_format, (int)cfg->log.format);
    if (fd < 0) {
        atomic_store(&sink_fd, -1);
        return;
    }
    if (sink_slot < 0)
        sink_slot = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    else if (dup2(fd, sink_slot) < 0)
        log_error("cannot switch the access log: %s", strerror(errno));
    if (fd > 2)
        close(fd);
    atomic_store(&sink_fd, sink_slot);
}

void alog_close(void)
{
    atomic_store(&sink_fd, -1);
    if (sink_slot >= 0)
        close(sink_slot);
    sink_slot = -1;
}

struct strbuf *alog_begin(struct worker *w)
{
    if (atomic_load_explicit(&sink_fd, memory_order_relaxed) < 0)
        return NULL;
    return &w->access_log;
}

bool alog_text(void)
{
    return atomic_load_explicit(&sink_format, memory_order_relaxed) == LOG_FORMAT_TEXT;
}

void alog_end(struct worker *w)
{
    if (w->access_log.len >= ALOG_EARLY_FLUSH)
        alog_flush(w);
}

void alog_flush(struct worker *w)
{
    struct strbuf *sb = &w->access_log;
    int fd = atomic_load_explicit(&sink_fd, memory_order_relaxed);
    size_t off = 0;
    while (fd >= 0 && off < sb->len) {
        ssize_t n = write(fd, sb->data + off, sb->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full or broken log sink never blocks traffic: drop the rest */
        off += (size_t)n;
    }
    sb_reset(sb);
}

void alog_kv_num(struct strbuf *sb, const char *key, unsigned long long v)
{
    sb_append(sb, ",\"", 2);
    sb_puts(sb, key);
    sb_append(sb, "\":", 2);
    sb_u64(sb, v);
}
