/* SPDX-License-Identifier: MIT */
/*
 * The agent's log lines to stderr, written off the event loop.  Under
 * systemd stderr is a stream to journald, in a terminal a tty, with `baton
 * agent 2>&1 | ...` a pipe: a stalled journald, a pipe nobody reads or a
 * terminal on Ctrl-S makes write(2) wait, and a wait in the loop stops
 * rollouts, drains, kill bounds, the control socket and the checks.
 *
 * Why a thread and not O_NONBLOCK on stderr: fd 2 shares its open file
 * description with the shell, the service manager and every child the agent
 * starts (they inherit it), and O_NONBLOCK is a flag of the description, so
 * setting it would hand EAGAIN to children that never expect it.  A private
 * description is not always to be had either: reopening /proc/self/fd/2
 * gives one for a pipe or a tty, but fails (ENXIO) for journald's stream,
 * which is a socket.  So the description is left as it is, and one writer
 * thread (it takes no signal and does nothing else) makes the blocking
 * write(2)s; a stuck stderr stops only that thread.
 *
 * The loop (and any other thread: evlog's writer logs too) appends each
 * line to a bounded queue in memory under a mutex that is only ever held
 * for a copy of at most LOGQ_MAX bytes, never across a write(2), so
 * logq_push never waits on the sink.  When a line does not fit, it is
 * dropped and counted (logq_dropped: baton_log_lines_dropped_total), and
 * so is every line after it until the writer has written everything
 * queued before the drop: then the writer queues one line saying how many
 * were lost, and lines flow again, in order.
 */
#ifndef BATON_LOGQ_H
#define BATON_LOGQ_H

#include <stdbool.h>
#include <stddef.h>

#ifndef LOGQ_MAX
#define LOGQ_MAX (64 * 1024) /* bytes of lines waiting in memory for stderr */
#endif

/*
 * Start the writer of fd (not closed at the end).  prefix starts the line
 * that says how many lines were dropped ("<4>baton: ").  0 or -errno.
 */
int logq_start(int fd, const char *prefix);
/*
 * End: the writer gets up to wait_ms to write what is queued; a stuck sink
 * is left behind (the thread blocked in write(2)) and the rest is lost.
 * Lines pushed after logq_stop are dropped and counted if the writer was
 * left behind (a write would wait), else the caller writes them itself
 * (logq_on() is false).
 */
void logq_stop(int wait_ms);
bool logq_on(void);
/* One line (with its '\n'): 0, or -ENOBUFS when dropped. */
int logq_push(const char *line, size_t len);
/* Lines dropped since the start. */
unsigned long long logq_dropped(void);
/* Whether the writer was left behind by logq_stop (the sink is stuck). */
bool logq_stuck(void);

#endif /* BATON_LOGQ_H */
