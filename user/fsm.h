/* SPDX-License-Identifier: MIT */
/*
 * The rollout state machine: every rule of a deploy, a drain and a
 * rollback, as one function from (service, event, now) to the service's new
 * state and a list of actions.  It does no I/O: no BPF, no processes, no
 * sockets, no clock.  exec.c performs the actions in order; what an action
 * learns (a spawn failed, a hook exited, a watched version is already at
 * zero) comes back as another event.
 *
 * Invariants kept after every event (fsm_check tells the first broken one):
 *  - the weights of a service's active versions sum to 0 or WEIGHT_MAX;
 *  - every active version with weight is placed (its sockets in the map);
 *  - a version with no process left is forgotten at once, unless it is
 *    active (it stays the service's version until the next deploy), or
 *    kept for an after-switch hook (still placed and counted);
 *  - the policy moves before a version's sockets leave the map (a
 *    FA_POLICY precedes every FA_UNPLACE of a version that had weight).
 */
#ifndef BATON_FSM_H
#define BATON_FSM_H

#include <stdbool.h>
#include <time.h>
#include <linux/types.h>

#include "model.h"

struct client;

struct deploy_opts {
	pid_t adopt_pid; /* adopt this running server instead of starting argv */
	enum strategy strategy;
	unsigned steps[MAX_STEPS];
	int nsteps;
	unsigned bake_ms;
	bool approve;		    /* each step waits for promote, until approval-timeout */
	int max_surge, max_unavail; /* rolling: counts, checked (rollconf.c) */
	unsigned pause_ms;
	bool baseline; /* canary: start a fresh baseline of the current version (exec.c) */
};

enum fsm_ev {
	FE_DEPLOY,	 /* v: the new version (sockets made, nothing placed); opts; c waits */
	FE_SPAWNED,	 /* v: its instances started (ok), or not (why) */
	FE_READY,	 /* v, inst: the instance is ready (its readiness check passed; with ready =
			    notify: a connection accepted after READY=1, FA_ACCEPT_PROBE) */
	FE_EXIT,	 /* v, inst: the instance's process exited (why: how) */
	FE_CHECK,	 /* v, inst: a health check's verdict (ok; why: its detail) */
	FE_ERROR_SAMPLE, /* v: one health-interval's clients and failed ones (why: the text) */
	FE_VTIMER,	 /* v: its timer fired (a readiness tick, or a drain deadline) */
	FE_RO_TIMER,	 /* the rollout's deadline passed: bake end, hook timeout */
	FE_HOOK_DONE,	 /* the hook exited (ok) or could not run or was killed (why) */
	FE_ZERO,	 /* v: a watched version has no connection left */
	FE_RESET_DONE,	 /* v: its drain-reset is done (or could not run) */
	FE_PROMOTE,	 /* c; full: to 100% */
	FE_PAUSE,	 /* c */
	FE_WEIGHT,	 /* c; versions and weights (why: the request was malformed) */
	FE_ABORT,	 /* c */
	FE_ROLLBACK,	 /* c; to: the version (0: the previous one) */
	FE_REMOVE,	 /* the service left the configuration */
	FE_SHUTDOWN,	 /* stop every version (baton shutdown --stop) */
	FE_RESTORED,	 /* taken over from a previous agent: versions as the state had them */
	FE_ADOPT_FIRST,	 /* c; v: a running server becomes the first version */
	FE_TREE_EMPTY,	 /* v: no process of its tree is left (its cgroup is empty) */
	FE_CONFIRMED,	 /* inst: a confirmation webhook (WH_CONFIRM_*) answered 2xx (ok) */
	FE_GATE,	 /* v, inst: gate inst's verdict (verdict, value; why: the text) */
	FE_INST_CONNS,	 /* v: each instance's live connections (inst_conns; ok false: unknown) */
	FE_LAT_SAMPLE,	 /* v: its latency over the gate window (lat; why: the text) */
	FE_NOTIFIED,	 /* v, inst: the instance sent READY=1 (ready = notify) */
	FE_COUNT,
};

#define FSM_MAX_WEIGHTS 16

/* FE_LAT_SAMPLE: the new version's latency over its gate window (fsm_gates.c). */
struct fsm_lat_sample {
	unsigned long long n, p99_us;	      /* responses and their p99 */
	unsigned long long acc_n, acc_p99_us; /* connections accepted and their accept wait p99 */
	unsigned long long window_ms;	      /* how long the window was */
	/* max-p99-ratio: the window's histograms (NULL: none), the canary's and its comparison's */
	const struct lat_hist *win, *cmp;
	int cmp_num;	   /* the version compared with (its baseline, or the active one) */
	bool cmp_baseline; /* it is a fresh baseline started for the rollout */
	unsigned long long cmp_n, cmp_p99_us;
	/* measure-http (min-success-rate, max-error-ratio): final responses and 5xx among them */
	bool http; /* the new version's status is counted */
	unsigned long long http_n, http_5xx;
	bool http_cmp; /* max-error-ratio: the compared version's (cmp_num) status is counted */
	unsigned long long cmp_http_n, cmp_http_5xx;
};

bool fsm_gates_on(const struct service_conf *c);
/* Whether l closes its window with a verdict: min-samples on each side compared. */
bool fsm_gates_conclusive(const struct service_conf *c, const struct fsm_lat_sample *l);

struct fsm_event {
	enum fsm_ev type;
	struct version *v;
	struct version *base; /* FE_DEPLOY: the fresh baseline made with v, or NULL */
	int inst;
	bool ok;      /* FE_SPAWNED, FE_HOOK_DONE */
	bool full;    /* FE_PROMOTE */
	int nweights; /* FE_WEIGHT: wnum[k] gets wbp[k] basis points */
	int wnum[FSM_MAX_WEIGHTS], wbp[FSM_MAX_WEIGHTS];
	unsigned long long sample_clients, sample_failed; /* FE_ERROR_SAMPLE */
	int verdict;					  /* FE_GATE: enum gate_verdict */
	double value;		   /* FE_GATE: the query's value (NaN: none) */
	struct fsm_lat_sample lat; /* FE_LAT_SAMPLE */
	const char *why;
	struct deploy_opts opts; /* FE_DEPLOY (opts.nsteps 0: the service's) */
	bool have_opts;
	struct client *c;      /* who waits for the answer, or NULL */
	long long zero_ns;     /* FE_ZERO: kernel time of the last close; 0 unknown */
	long long now_ns;      /* FE_ZERO: CLOCK_MONOTONIC ns when it was read */
	long long turn_cpu_us; /* FE_ZERO: the agent's CPU in this loop turn before it */
	time_t wall;	       /* wall clock, for the rollback note */
	long long inst_conns[MAX_INSTANCES]; /* FE_INST_CONNS */
	int to;				     /* FE_ROLLBACK: the version asked for (0: previous) */
};

enum fsm_act {
	FA_POLICY,	 /* write the service's policy (phases, weights) */
	FA_PLACE,	 /* v: its sockets into the map */
	FA_UNPLACE,	 /* v: its sockets out of the map */
	FA_UNPLACE_INST, /* v, inst: one instance's sockets out of the map */
	FA_RELEASE,	 /* v, inst (-1: all): close the agent's copies of its listeners */
	FA_ATTACH,	 /* v: attach steer to each group through v's sockets */
	FA_SPAWN,	 /* v: start its instances (answered by FE_SPAWNED) */
	FA_SIGNAL,	 /* v, arg: signal every live instance's process (those baton started) */
	FA_SIGNAL_TREE,	 /* v, arg: signal every process of its tree (SIGKILL: the whole cgroup) */
	FA_WATCH,	 /* v, arg 1/0: report its zero; with 1 an empty version answers FE_ZERO */
	FA_RESET,	 /* v: reset its connections in bounded steps (answered by FE_RESET_DONE) */
	FA_RESET_STOP,	 /* v: stop its drain-reset (it is signalled or back in service) */
	FA_HTTP_DRAIN,	 /* v (inst -1) or its instance inst alone, arg 1: drain-http begins; 0:
			    its drain ended (count); -1: back in service */
	FA_HTTP_RESTEER, /* arg 1: ask connections whose client maps elsewhere now to close; 0: stop
			  */
	FA_VTIMER,	 /* v, at: its one-shot deadline (0: off) */
	FA_READY_CHECKS, /* v: probe or check readiness every PROBE_TICK_MS */
	FA_HEALTH_CHECKS, /* v: health checks and error samples every HEALTH_TICK_MS */
	FA_STOP_CHECKS,	  /* v: end every check in flight, stop the tick */
	FA_RO_TIMER,	  /* at: the rollout's deadline (0: off) */
	FA_RUN_HOOK,	  /* arg: the hook point (answered by FE_HOOK_DONE) */
	FA_KILL_HOOK,	  /* the hook running, if any */
	FA_FORGET,	  /* v: final counts into the history, pins and counters gone, freed */
	FA_SERVICE_GONE,  /* a removed service's last version stopped: ids and groups go */
	FA_REPLY,	  /* c: ok and text: the final answer to a request */
	FA_DEPLOY_DONE,	  /* c: the final answer to a deploy (ok, rolled_back, text) */
	FA_PROGRESS,	  /* c: a progress line for a waiting deploy */
	FA_CONFIRM,	 /* arg: ask the confirmation webhooks of WH_CONFIRM_* until one answers 2xx
			    (FE_CONFIRMED); -1: stop asking */
	FA_PLACE_INST,	 /* v, inst: one instance's sockets into the map */
	FA_SPAWN_INST,	 /* v, inst: start one instance (its exit, not FE_SPAWNED, tells failure) */
	FA_SIGNAL_INST,	 /* v, inst, arg: signal one instance's process */
	FA_INST_CONNS,	 /* v: count each instance's live connections (answered by FE_INST_CONNS) */
	FA_REDEPLOY,	 /* arg: start the remembered version arg again as a new version (FE_DEPLOY
			    follows, c waits for it; or c gets why it cannot) */
	FA_KILL_INST,	 /* v, inst: SIGKILL to one instance's process tree (group, descendants) */
	FA_ACCEPT_PROBE, /* v, inst: probe that it accepts a connection through its own socket on
			    each listen address, every PROBE_TICK_MS (answered by FE_READY) */
	FA_COUNT,
};

#define FSM_TEXT 600

struct fsm_action {
	enum fsm_act type;
	struct version *v;
	int inst;
	long long arg; /* signal, watch on/off, hook point, time in ms */
	struct client *c;
	bool ok, rolled_back;
	char text[FSM_TEXT];
};

#ifndef FSM_MAX_ACTIONS
#define FSM_MAX_ACTIONS 256
#endif

struct fsm_out {
	struct fsm_action a[FSM_MAX_ACTIONS];
	int n;
	bool overflow; /* more actions than fit: a bug, reported by fsm_check */
};

extern const char *const fsm_ev_names[FE_COUNT];
extern const char *const fsm_act_names[FA_COUNT];

/*
 * Whether s can take a deploy now: 0, or -EBUSY with err saying what runs
 * and what to do.  Asked before the new version's sockets are made.
 */
int fsm_can_deploy(const struct service *s, char *err, size_t errlen);
/*
 * Apply e to s at now (CLOCK_MONOTONIC ms): s changes, and out gets the
 * actions to perform, in order (appended: out->n is not reset).
 */
void fsm_step(struct service *s, const struct fsm_event *e, long long now, struct fsm_out *out);
/*
 * Rolling: v (the new version, or the old one being restored) has started
 * instances that are not ready yet, so its timer ticks their readiness.
 */
bool fsm_rolling_ticks(const struct service *s, const struct version *v);
/* The invariants above: NULL, or the first one s breaks. */
const char *fsm_check(const struct service *s, const struct fsm_out *out);

#endif /* BATON_FSM_H */
