/* SPDX-License-Identifier: MIT */
/* The agent's log lines to stderr, written by a thread of their own; see logq.h. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "joinwait.h"
#include "logq.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
/* Under mu. */
static char q[LOGQ_MAX]; /* lines waiting for the writer: q[0..q_len) */
static size_t q_len;
static bool running, stopping, stuck;
static bool dropping; /* in a run of drops: nothing is queued until the writer caught up */
static unsigned long long dropped, reported;

/* The writer's own. */
static char out[LOGQ_MAX + 256];
static int sink = -1;
static char prefix[32];
static pthread_t writer;

static unsigned long long lines_in(const char *p, size_t len)
{
	unsigned long long n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

/* Everything of out[0..len), waiting as long as the sink makes it wait: 0, or lines lost. */
static unsigned long long write_all(size_t len)
{
	struct pollfd p = {.fd = sink, .events = POLLOUT};
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = write(sink, out + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		/* Someone made the shared description non-blocking: wait here, not in the loop. */
		if (n < 0 && errno == EAGAIN) {
			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0) /* closed (EPIPE), or not writable at all: lost, counted */
			return lines_in(out + off, len - off);
		off += (size_t)n;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	unsigned long long lost;
	size_t n;

	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!q_len && !stopping) {
			if (dropping) {
				/* All lines from before the drops are out: say how many went. */
				q_len = (size_t)snprintf(
				    q, sizeof(q),
				    "%s%llu log line(s) dropped: stderr did not take them in time "
				    "(baton_log_lines_dropped_total)\n",
				    prefix, dropped - reported);
				reported = dropped;
				dropping = false;
				break;
			}
			pthread_cond_wait(&cv, &mu);
		}
		if (!q_len)
			break; /* stopping, and everything is written */
		n = q_len;
		memcpy(out, q, n);
		q_len = 0;
		pthread_mutex_unlock(&mu);
		lost = write_all(n);
		pthread_mutex_lock(&mu);
		dropped += lost;
		reported += lost; /* the sink is gone: nobody would read the notice */
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int logq_start(int fd, const char *pfx)
{
	sigset_t all, old;
	int r;

	pthread_mutex_lock(&mu);
	if (running) {
		pthread_mutex_unlock(&mu);
		return -EALREADY;
	}
	sink = fd;
	snprintf(prefix, sizeof(prefix), "%s", pfx);
	q_len = 0;
	stopping = stuck = dropping = false;
	/* The thread takes no signal: the agent reads them from its signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&writer, NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	running = !r;
	pthread_mutex_unlock(&mu);
	return r;
}

void logq_stop(int wait_ms)
{
	pthread_mutex_lock(&mu);
	if (!running) {
		pthread_mutex_unlock(&mu);
		return;
	}
	stopping = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	if (join_within(writer, wait_ms)) {
		/* Blocked in write(2): left behind; exit ends it. */
		pthread_detach(writer);
		pthread_mutex_lock(&mu);
		stuck = true;
		pthread_mutex_unlock(&mu);
	}
	pthread_mutex_lock(&mu);
	running = false;
	pthread_mutex_unlock(&mu);
}

bool logq_on(void)
{
	bool on;

	pthread_mutex_lock(&mu);
	on = running;
	pthread_mutex_unlock(&mu);
	return on;
}

bool logq_stuck(void)
{
	bool s;

	pthread_mutex_lock(&mu);
	s = stuck;
	pthread_mutex_unlock(&mu);
	return s;
}

int logq_push(const char *line, size_t len)
{
	int r = 0;

	pthread_mutex_lock(&mu);
	if (!running && !stuck) {
		r = -ENOTCONN;
	} else if (!running || dropping || len > LOGQ_MAX - q_len) {
		dropped++;
		dropping = running;
		r = -ENOBUFS;
	} else {
		memcpy(q + q_len, line, len);
		q_len += len;
		pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&mu);
	return r;
}

unsigned long long logq_dropped(void)
{
	unsigned long long n;

	pthread_mutex_lock(&mu);
	n = dropped;
	pthread_mutex_unlock(&mu);
	return n;
}
