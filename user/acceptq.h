/* SPDX-License-Identifier: MIT */
/*
 * Whether a version accepts: every ACCEPTQ_TICK_MS the agent reads the
 * accept queue of each version's listeners (TCP_INFO on its own copies:
 * tcpi_unacked is a listener's queue length), and the version's count of
 * completed handshakes (the kernel's, dp.c).  Handshakes completed minus
 * connections still queued is what the server has accepted: a version with
 * connections queued whose accepts have not moved since the last tick is
 * not accepting (frozen, hung, or every worker busy), and status and
 * /metrics say for how long.  O(versions x listeners) syscalls a tick.
 */
#ifndef BATON_ACCEPTQ_H
#define BATON_ACCEPTQ_H

#include <stdbool.h>

#define ACCEPTQ_TICK_MS 500
#define ACCEPTQ_WARN_MS 2000 /* logged once a version has not accepted this long */

/* A version's accept state, kept in struct version (model.h). */
struct acceptq {
	bool have;
	unsigned queue;		 /* connections in its listeners' accept queues, last tick */
	long long done;		 /* handshakes completed minus queued: accepted, last tick */
	long long stalled_since; /* ms: first tick of queued connections with no accept; 0 */
	bool warned;		 /* the stall was logged */
};

struct version;

/*
 * The rule, pure: the state after a tick at now (ms) that read queue and
 * established (handshakes completed, ever).  A tick with an empty queue, or
 * with accepts since the last one, clears the stall.
 */
static inline void acceptq_update(struct acceptq *a, unsigned queue, unsigned long long established,
				  long long now)
{
	long long done = (long long)established - (long long)queue;

	if (!queue || (a->have && done > a->done))
		a->stalled_since = 0;
	else if (!a->stalled_since)
		a->stalled_since = now;
	a->have = true;
	a->queue = queue;
	a->done = done;
}

/* How long it has not accepted with connections queued (ms), 0 when it accepts. */
static inline long long acceptq_stalled_ms(const struct acceptq *a, long long now)
{
	return a->have && a->queue && a->stalled_since ? now - a->stalled_since : 0;
}

/* The timer (agent start) and its tick (EV_ACCEPTQ). */
void acceptq_start(void);
void on_acceptq_tick(void);

#endif
