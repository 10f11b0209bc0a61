/* SPDX-License-Identifier: MIT */
/*
 * The event log's file, written off the event loop.  write(2) to a regular
 * file never returns EAGAIN, so O_NONBLOCK cannot keep a slow or stuck disk
 * (dirty-page throttling, a hung NFS or USB run-dir) from stopping the loop.
 * The loop hands each line to a pipe whose write end is non-blocking (a line
 * is at most PIPE_BUF bytes, so it goes whole or not at all); one writer
 * thread, which does nothing else and takes no signal, reads the pipe and
 * appends to the file, rotating it at a size bound.  When the pipe is full
 * (the disk is slower than the events), lines wait in a bounded queue in
 * memory, sent on as the pipe drains (the caller watches evlog_fd() for
 * EPOLLOUT while evlog_pending()); past that bound a line is dropped and
 * counted (evlog_dropped: the metrics and the log say so).  Memory, `baton
 * events` and the log lines are not affected: only the file misses them.
 */
#ifndef BATON_EVLOG_H
#define BATON_EVLOG_H

#include <stdbool.h>
#include <stddef.h>

#ifndef EVLOG_QUEUE_MAX
#define EVLOG_QUEUE_MAX (256 * 1024) /* bytes of lines waiting in memory for the pipe */
#endif

/*
 * Start the writer of path (appended; past max_bytes it becomes path_old,
 * the older path_old goes).  0 or -errno.
 */
int evlog_open(const char *path, const char *path_old, long long max_bytes);
/*
 * End: what is queued gets up to wait_ms to reach the pipe, the writer up
 * to wait_ms to write it (a stuck disk: it is left behind, and lost).
 */
void evlog_close(int wait_ms);
/* Hand one line (with its '\n', at most PIPE_BUF bytes) over: 0, or -ENOBUFS when dropped. */
int evlog_push(const char *line, size_t len);
/* The pipe's write end (to watch for EPOLLOUT), -1 when closed. */
int evlog_fd(void);
/* Lines wait in memory for the pipe. */
bool evlog_pending(void);
/* The pipe is writable: send what waits, in order.  Whether anything still waits. */
bool evlog_flush(void);
/* Lines dropped since the start (the queue was full). */
unsigned long long evlog_dropped(void);

#endif /* BATON_EVLOG_H */
