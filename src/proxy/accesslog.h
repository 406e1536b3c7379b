/* The access log: where lines go, and the per-worker buffering every protocol shares.
 *
 * A protocol appends its line(s) to the worker's buffer between alog_begin() and
 * alog_end(); the worker writes the buffer out once per loop turn (alog_flush), or at
 * once when it passes 64 KiB. The sink is one descriptor number for the whole process,
 * switched by dup2() on reload (logrotate-friendly, never closed under a writer). A full
 * or broken sink never blocks traffic: what cannot be written is dropped. */
#ifndef SLUICE_PROXY_ACCESSLOG_H
#define SLUICE_PROXY_ACCESSLOG_H

#include "config/config.h"
#include "core/strbuf.h"

struct worker;

/* Opens the sink named by cfg's log.access ("stdout", "stderr", "off" or a path).
 * Returns the fd, -1 for "off", -2 when the file cannot be opened (errno set). */
int alog_open(const struct config *cfg);

/* Makes fd (from alog_open; ownership taken) the sink and cfg's log.format the format.
 * Main thread. */
void alog_apply(const struct config *cfg, int fd);

/* Closes the sink (at exit, after the workers have stopped). */
void alog_close(void);

/* The worker's buffer to append one line to, or NULL when the access log is off. */
struct strbuf *alog_begin(struct worker *w);
/* True when lines are written as text, not JSON. */
bool alog_text(void);
/* A line was appended: writes the buffer out early when it has grown large. */
void alog_end(struct worker *w);
/* Writes out the worker's buffered lines (once per loop turn and at exit). */
void alog_flush(struct worker *w);

/* Appends ,"key":v to a JSON line. */
void alog_kv_num(struct strbuf *sb, const char *key, unsigned long long v);

#endif
