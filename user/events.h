/* SPDX-License-Identifier: MIT */
/*
 * The rollout event log: what happened to each service (a deploy began, a
 * step, a gate's failing verdict, a promotion, a completion, a rollback and
 * its reason, a drain, a crash, connections lost with a process), told by
 * comparing a service before and after each step of the state machine.  The
 * rules stay in fsm*.c; this file only records what they did.
 *
 * Each event goes to the log as one key=value line, to a bounded file under
 * the run-dir (events.jsonl, rotated once to events.jsonl.1; a restarted
 * agent reads both back) written by a thread of its own (evlog.c: a slow
 * disk never stops the loop; past a bounded queue the file misses events,
 * counted), to `baton events` clients that follow, and to the webhooks
 * (webhook.c) that want it.
 */
#ifndef BATON_EVENTS_H
#define BATON_EVENTS_H

#include <stdbool.h>
#include <jansson.h>

#include "fsm.h"
#include "model.h"

#ifndef EVENTS_MEM
#define EVENTS_MEM 1000 /* events kept in memory: what baton events lists */
#endif
#ifndef EVENTS_FILE_MAX
#define EVENTS_FILE_MAX (1024 * 1024) /* bytes of events.jsonl before it becomes .1 */
#endif
#define EVENTS_CLOSE_WAIT_MS 1000 /* at the end, for the file's writer to take the last lines */

struct client;

/* One event; the JSON view has the same names. */
struct event {
	unsigned long long seq; /* increasing, across agent restarts */
	long long time_ms;	/* wall clock */
	char service[64];
	char kind[24];	  /* rollout-start, step, promoted, completed, rolled-back, ... */
	int version;	  /* the version it is about; 0: none */
	int previous;	  /* the version a rollout replaces; 0: none */
	int weight;	  /* basis points of the new version; -1: not said */
	int step, nsteps; /* step (1-based) of nsteps; 0: not said */
	char reason[320]; /* why (a rollback, a failure, a gate's verdict) */
	char text[480];	  /* one line for people and chat webhooks */
};

/* What a step of the state machine may change, taken before it. */
struct ev_snap {
	enum ro_stage stage;
	int step;
	int batch; /* rolling: batches started */
	bool paused;
	unsigned w_new;
	int new_num, old_num, active_num;
	unsigned long rollouts[RR_COUNT], rollbacks[RB_COUNT];
	const struct version *slot[MAX_VERSIONS];
	int num[MAX_VERSIONS];
	enum vphase phase[MAX_VERSIONS];
	int bad_intervals; /* of the event's version */
	int gate_prev;	   /* FE_GATE: the gate's verdict before */
	char last_error[300];
};

/* Read the previous agent's events back from run_dir; 0 or -errno (said in the log). */
int events_open(const char *run_dir);
void events_close(void);
/* The file writer's pipe has room again (EV_EVENTS_OUT). */
void on_events_out(void);
/*
 * Remove the log's files (shutdown --stop: the host as before the first
 * start; the log lines stay in the agent's log).
 */
void events_remove(void);

void events_before(const struct service *s, const struct fsm_event *e, struct ev_snap *snap);
void events_after(const struct service *s, const struct fsm_event *e, const struct ev_snap *snap,
		  const struct fsm_out *out);
/* An event from outside the state machine (connections lost with a process). */
void events_add(const char *service, const char *kind, int version, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The JSON of one event (new reference). */
json_t *event_json(const struct event *ev);

/*
 * baton events: the last (0: all kept) events of service (NULL: all), then,
 * with follow, every new one as it happens until the client goes.
 */
void events_request(struct client *c, const char *service, int last, bool follow);
void events_client_gone(struct client *c);
/* Whether any event kept names service. */
bool events_has(const char *service);

/* Who else hears of every event (webhook.c); one listener. */
void events_listen(void (*fn)(const struct event *ev));

#endif /* BATON_EVENTS_H */
