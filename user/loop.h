/* SPDX-License-Identifier: MIT */
/*
 * The event loop: one epoll set; every fd in it carries a struct evsrc that
 * says what kind of event source it is and what it belongs to.  agent.c
 * turns each ready source into a call to the file that owns it.
 */
#ifndef BATON_LOOP_H
#define BATON_LOOP_H

enum ev_type {
	EV_SIGNAL,
	EV_CONTROL,
	EV_CLIENT,
	EV_NOTIFY,
	EV_PIDFD,
	EV_TIMER,
	EV_RING,
	EV_CHECK,	   /* a health check's socket or exec pidfd */
	EV_HOOK,	   /* a hook's pidfd */
	EV_RO_TIMER,	   /* a service's rollout timer: bake, hook timeout */
	EV_CLIENT_TIMER,   /* a control client's read deadline */
	EV_METRICS,	   /* the metrics listener */
	EV_METRICS_CLIENT, /* one metrics request */
	EV_REAP,	   /* a killed child, reaped when it is gone */
	EV_RESET,	   /* the next step of the drain-resets under way */
	EV_HTTP_DRAIN,	   /* the next step of a drain-http pass */
	EV_CGROUP,	   /* a version's cgroup.events changed (inotify) */
	EV_WEBHOOK,	   /* a webhook transfer's socket (libcurl's) */
	EV_WEBHOOK_TIMER,  /* libcurl's timeout */
	EV_WEBHOOK_RETRY,  /* webhooks to send again */
	EV_LATENCY,	   /* read every version's latency (latview.c) */
	EV_ACCEPTQ,	   /* read every version's accept queues (acceptq.c) */
	EV_EVENTS_OUT,	   /* the event log writer's pipe has room (events.c) */
	EV_EXEC,	   /* ready = none: an instance's exec pipe (versions.c) */
};

struct evsrc {
	enum ev_type type;
	void *p;
	int idx;
};

#include <sys/epoll.h>

int loop_open(void);
void loop_close(void);
/* Wait (no bound: an idle agent sleeps) for at most max events. */
int loop_wait(struct epoll_event *evs, int max);
/*
 * The most CPU time one loop turn (from epoll_wait's return to the next
 * call) took since the start, in us: what "no blocking work in one turn"
 * means, measured where the machine's load does not count.
 */
long long loop_turn_max_us(void);
/* The CPU time the turn under way has used so far, in us. */
long long loop_turn_cpu_us(void);
int ep_add(int fd, struct evsrc *ev, int type, void *p, int idx, unsigned events);
int ep_mod(int fd, struct evsrc *ev, unsigned events);
void ep_del(int fd);

/* CLOCK_MONOTONIC in ms: what every deadline in the agent is measured in. */
long long now_ms(void);
/* Arm a one-shot timerfd for at_ms (monotonic ms), or disarm it with 0. */
void timerfd_at(int fd, long long at_ms);
/* Make a timerfd tick every ms. */
void timerfd_every(int fd, int ms);
/*
 * A timerfd in the event loop (events of type, with p and idx) ticking
 * every ms: its fd, or -1 with a warning naming what, and nothing made.
 */
int ep_ticker(struct evsrc *ev, int type, void *p, int idx, int ms, const char *what);

#endif /* BATON_LOOP_H */
