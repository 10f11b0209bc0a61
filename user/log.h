/* SPDX-License-Identifier: MIT */
#ifndef BATON_LOG_H
#define BATON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* 0: warnings and info; 1 (-v): debug; 2 (-vv): libbpf debug too. */
extern int log_verbose;

void log_init(const char *progname, int verbose);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Whether stderr is the journal's stream (JOURNAL_STREAM is its device:inode). */
bool log_stderr_is_journal(void);
/*
 * Where lines go before stderr (journal.c): 0 when it took the line, else
 * -errno and the line goes to stderr.  NULL: stderr only.
 */
typedef int (*log_sink_fn)(int prio, const char *ident, const char *msg, const char *const *fields,
			   int n);
void log_set_sink(log_sink_fn fn);
/*
 * Where a line for stderr goes instead of a write (logq.c's queue, once the
 * agent's loop runs): push takes one whole line with its '\n' and returns
 * 0 (queued), -ENOBUFS (dropped, counted) or -ENOTCONN (not running: the
 * line is written at once).  done: before fatal's exit, what is queued gets
 * a bounded time.  NULL, NULL: written at once (the CLI, start-up).
 */
typedef int (*log_stderr_fn)(const char *line, size_t len);
void log_set_stderr(log_stderr_fn push, void (*done)(void));
/* A line at prio with journal fields ("KEY=VALUE"; on stderr only the line). */
void log_fields(int prio, const char *const *fields, int n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum libbpf_print_level;
int log_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap);
/*
 * While on (loading the programs), libbpf's warnings are shown only with
 * -v: the caller's one-line error says what failed and how to fix it.
 */
void log_libbpf_quiet(bool on);

#endif /* BATON_LOG_H */
