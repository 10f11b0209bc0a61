/* SPDX-License-Identifier: MIT */
/* The event log's file, written by a thread of its own; see evlog.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evlog.h"
#include "joinwait.h"
#include "log.h"

/* The loop's side. */
static int wfd = -1; /* the pipe's write end, non-blocking */
static char *q;	     /* lines waiting for the pipe: q[q_start..q_end) */
static size_t q_start, q_end;
static unsigned long long dropped;
static bool dropping; /* in a run of drops: said once in the log */

/* The writer's side (the thread's own after evlog_open, until it ends). */
static int rfd = -1, file_fd = -1;
static char path[300], path_old[310];
static long long file_size, file_max;
static pthread_t writer;
static bool writer_on;

static int open_file(void)
{
	struct stat st;

	file_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (file_fd < 0)
		return -errno;
	file_size = fstat(file_fd, &st) ? 0 : st.st_size;
	return 0;
}

static void write_all(const char *p, size_t len)
{
	ssize_t n;

	while (len && file_fd >= 0) {
		n = write(file_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("event log: cannot write %s", path);
			return;
		}
		file_size += n;
		p += n;
		len -= (size_t)n;
	}
}

/* Past the bound the file becomes .1 (the older .1 goes). */
static void rotate(void)
{
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
	if (rename(path, path_old))
		log_warn("event log: cannot rotate %s", path);
	if (open_file())
		log_warn("event log: cannot open %s", path);
}

/* Append whole lines of buf[0..len), rotating between lines at the bound. */
static void append_lines(const char *buf, size_t len)
{
	size_t off = 0, run, p, l;
	const char *nl;

	while (off < len) {
		for (run = 0, p = off; p < len; p += l, run += l) {
			nl = memchr(buf + p, '\n', len - p);
			l = (size_t)(nl - (buf + p)) + 1;
			/* A line longer than the bound alone in a new file still goes. */
			if (file_size + (long long)(run + l) > file_max && (run || file_size))
				break;
		}
		if (run) {
			write_all(buf + off, run);
			off += run;
		}
		if (off < len)
			rotate();
	}
}

static void *writer_main(void *arg)
{
	static char buf[65536 + PIPE_BUF];
	size_t have = 0, whole;
	ssize_t n;

	(void)arg;
	if (open_file())
		log_warn("cannot open the event log %s; events go to the log only", path);
	for (;;) {
		n = read(rfd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the loop closed its end: everything sent was read */
		have += (size_t)n;
		/* Whole lines go; the start of a line the next read ends waits. */
		for (whole = have; whole && buf[whole - 1] != '\n'; whole--)
			;
		if (whole) {
			append_lines(buf, whole);
			memmove(buf, buf + whole, have - whole);
			have -= whole;
		} else if (have == sizeof(buf)) {
			have = 0; /* no line ends in 68 KiB: not ours, not kept */
		}
	}
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
	return NULL;
}

int evlog_open(const char *p, const char *p_old, long long max_bytes)
{
	sigset_t all, old;
	int fds[2], r;

	snprintf(path, sizeof(path), "%s", p);
	snprintf(path_old, sizeof(path_old), "%s", p_old);
	file_max = max_bytes;
	q = malloc(EVLOG_QUEUE_MAX);
	if (!q || pipe2(fds, O_CLOEXEC) < 0) {
		r = q ? -errno : -ENOMEM;
		free(q);
		q = NULL;
		return r;
	}
	rfd = fds[0];
	wfd = fds[1];
	fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
	q_start = q_end = 0;
	dropped = 0;
	/* The thread takes no signal: the agent reads them from its signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&writer, NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		close(rfd);
		close(wfd);
		rfd = wfd = -1;
		free(q);
		q = NULL;
		return r;
	}
	writer_on = true;
	return 0;
}

int evlog_fd(void)
{
	return wfd;
}

bool evlog_pending(void)
{
	return q_end > q_start;
}

unsigned long long evlog_dropped(void)
{
	return dropped;
}

bool evlog_flush(void)
{
	const char *nl;
	size_t len;
	ssize_t n;

	while (q_end > q_start) {
		nl = memchr(q + q_start, '\n', q_end - q_start);
		len = (size_t)(nl - (q + q_start)) + 1;
		n = write(wfd, q + q_start, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return true; /* EAGAIN: the pipe is full; EPIPE: the writer is gone */
		q_start += len;	     /* at most PIPE_BUF: written whole */
	}
	q_start = q_end = 0;
	if (dropping)
		log_warnx("event log: the file's writer caught up (%llu event(s) dropped since the "
			  "start)",
			  dropped);
	dropping = false;
	return false;
}

int evlog_push(const char *line, size_t len)
{
	ssize_t n;

	if (wfd < 0 || !len || len > PIPE_BUF)
		return -EINVAL;
	if (q_end == q_start) {
		n = write(wfd, line, len);
		if (n == (ssize_t)len)
			return 0;
	}
	/* The pipe is full: in order, after what already waits. */
	if (q_end + len > EVLOG_QUEUE_MAX && q_start) {
		memmove(q, q + q_start, q_end - q_start);
		q_end -= q_start;
		q_start = 0;
	}
	if (q_end + len > EVLOG_QUEUE_MAX) {
		dropped++;
		if (!dropping)
			log_warnx(
			    "event log: %s is not written fast enough: %d KiB wait in memory; "
			    "events are dropped from the file (kept in memory and the log) "
			    "until it catches up",
			    path, EVLOG_QUEUE_MAX / 1024);
		dropping = true;
		return -ENOBUFS;
	}
	memcpy(q + q_end, line, len);
	q_end += len;
	return 0;
}

void evlog_close(int wait_ms)
{
	struct pollfd p;
	int waited = 0;

	if (wfd < 0)
		return;
	while (evlog_flush() && waited < wait_ms) {
		p.fd = wfd;
		p.events = POLLOUT;
		poll(&p, 1, 10);
		waited += 10;
	}
	close(wfd); /* the writer reads what is left, then EOF */
	wfd = -1;
	if (writer_on) {
		if (join_within(writer, wait_ms)) {
			log_warnx("event log: %s did not take the last events within %d ms; left "
				  "behind",
				  path, wait_ms);
			pthread_detach(writer);
		} else {
			close(rfd);
			rfd = -1;
		}
		writer_on = false;
	}
	free(q);
	q = NULL;
	q_start = q_end = 0;
}
