/* SPDX-License-Identifier: MIT */
#ifndef BATON_JOINWAIT_H
#define BATON_JOINWAIT_H

#include <pthread.h>
#include <time.h>

/*
 * Join thread t if it ends within wait_ms: 0 when joined, else the error
 * of pthread_timedjoin_np (ETIMEDOUT: it still runs, the caller decides
 * whether to leave it behind).  Its deadline is on CLOCK_REALTIME, as that
 * call wants.
 */
static inline int join_within(pthread_t t, int wait_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &ts);
}

#endif
