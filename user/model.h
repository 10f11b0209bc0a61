/* SPDX-License-Identifier: MIT */
/*
 * The agent's model: services, their versions and instances, and the
 * rollout of each service, as plain data.  Files that act on it say so in
 * docs/architecture.md; nothing here does I/O.
 *
 * A version moves through
 *   STARTING -> ACTIVE -> DRAIN_DELAY -> DRAINING -> TERMINATING -> KILLED -> stopped
 * Every step after ACTIVE has a deadline; DRAIN_DELAY is the window in which
 * `baton rollback` can give traffic back without starting anything.
 */
#ifndef BATON_MODEL_H
#define BATON_MODEL_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <linux/types.h>

#include "config.h"
#include "health.h"
#include "loop.h"
#include "track.h"
#include "lathist.h"
#include "drain.h"
#include "acceptq.h"

#define PROBE_TICK_MS  50
#define HEALTH_TICK_MS 100 /* timer of a version under rollout: checks and error samples */
#define READY_RETRY_MS 100 /* a failed http/exec readiness check is repeated after this */
#define HISTORY	       8
#define ADOPT_TREE_MAX 64 /* processes of an adopted server's tree remembered */
/* How a process ended: "exited with status 1", or "cannot start PATH: chdir: ..." (proc.h). */
#define EXIT_DESC_MAX 256

enum vphase {
	VP_STARTING,
	VP_ACTIVE,
	VP_DRAIN_DELAY, /* weight 0, unsignalled: rollback can take it back */
	VP_DRAIN_WAIT,	/* wait-then-signal: unsignalled until its live count is 0 */
	VP_DRAINING,	/* exit signal sent, waiting for exit until drain-timeout */
	VP_TERMINATING, /* drain timeout passed (SIGTERM sent), SIGKILL after kill-after */
	VP_KILLED,	/* SIGKILL sent */
	VP_ABORTING,	/* failed to start: SIGTERM sent, SIGKILL after kill-after */
};

extern const char *const phase_names[];

struct client;
struct version;
struct track_reset;

/*
 * What starts a version's instances: its command and what the service gave
 * it when it was deployed.  A version keeps its own, and the rollback
 * window (history.c) keeps a copy, so that a version that exited can be
 * started again exactly as it ran.  Strings are malloc'd.
 */
struct spawn_desc {
	char *argv[MAX_ARGS + 1];
	char *env[MAX_ENV + 1]; /* "KEY=VALUE" */
	char user[64];		/* "": the agent's */
	char workdir[256];	/* "": / */
};

/* One instance's readiness or health check (one at a time). */
struct check {
	bool busy;	    /* a check is in flight */
	bool for_ready;	    /* readiness (before traffic), not a health check */
	long long deadline; /* ms: no answer by then is a failure */
	long long next_at;  /* ms: when the next check may start */
	struct hcheck hc;   /* tcp/http */
	bool hc_pinned;
	int addr;  /* tcp/http: the listen address checked now; a check passes on all of them */
	pid_t pid; /* exec: the check process, until reaped */
	int pidfd;
	int execfd; /* its exec pipe (proc.h), until reaped */
	int fails;  /* consecutive failures */
	unsigned long passes, failures;
	char last[128];
	struct evsrc ev;
};

/* A Prometheus gate's verdict: no data, an error or a timeout is never a pass. */
enum gate_verdict { GV_NONE = 0, GV_PASS, GV_FAIL, GV_INCONCLUSIVE };

extern const char *const gate_verdict_names[];

/* One gate's view of the new version under rollout. */
struct gate_state {
	enum gate_verdict verdict; /* the last one */
	double value;		   /* NaN: none */
	int fails;		   /* failing verdicts in a row */
	unsigned long passes, failures, inconclusive;
	char last[200];
	bool busy;	   /* promgate.c: a query in flight */
	long long next_at; /* promgate.c: when the next query is due (ms) */
};

struct instance {
	pid_t pid;
	int pidfd;
	int execfd; /* its exec pipe (proc.h), until reaped; -1 for one of an earlier agent */
	struct evsrc exec_ev; /* ready = none: the exec pipe, watched until the exec */
	bool exec_watched;
	bool execd; /* ready = none: its exec happened (or could not be watched) */
	bool ready;
	bool notified; /* ready = notify: sent READY=1, its accepting not yet seen */
	bool alive;
	char exit_desc[EXIT_DESC_MAX];
	int lfd[MAX_LISTEN];	      /* the agent's copies of this instance's listeners */
	__u64 cookie[MAX_LISTEN];     /* their SO_COOKIE, to find them again after a restart */
	unsigned long long starttime; /* /proc/PID/stat start time: guards against pid reuse */
	int probe_fd;		      /* READY_TCP: connection through this instance's own socket */
	struct sockaddr_storage probe_src; /* its bound address and port: the steer probe key */
	int probe_addr; /* the listen address probed now: ready once every one passed */
	struct check chk;
	struct evsrc ev;
	/* strategy = rolling (fsm_rolling.c): */
	bool started;	     /* its process was started in this version's life */
	bool retiring;	     /* out of the map, told to exit: it never serves again */
	int retire_step;     /* -1: waits for its connections (wait-then-signal), 0: exit
				signal sent, 1: SIGTERM (or the exit signal after the wait), 2: SIGKILL;
				-3: left with its version's drain at the rollout's end, signalled by
				it (fsm_version.c); 3: so left, then signalled on its own count */
	long long retire_at; /* ms: when the next signal is due (0: none) */
	bool restarted;	     /* started again by a rollback: not restarted twice */
	bool http_draining;  /* drain-http for this instance alone (fsm_rollretire.c) */
	long long hd_live0;  /* exec.c: its live connections when its drain-http began */
};

struct version {
	struct service *svc;
	int num;
	int vslot;
	enum vphase phase;
	struct spawn_desc spec; /* its command, environment, user and directory */
	int ninst;
	int nalive;
	int nready;
	struct instance inst[MAX_INSTANCES];
	bool placed;  /* sockets in the map */
	int serve_n;  /* rolling: steer spreads over instances 0..serve_n-1 (0: all ninst) */
	bool adopted; /* a server baton did not start: instance 0's process owns all */
	/*
	 * Its processes beyond the instances' own: the version's cgroup
	 * (cgroup.c), or, without one, each instance's process group.
	 */
	int cg_fd; /* its cgroup's directory, or -1 */
	/* Adopted: the processes of its tree when adopted (they cannot be moved). */
	pid_t adopt_tree[ADOPT_TREE_MAX];
	unsigned long long adopt_start[ADOPT_TREE_MAX];
	int nadopt_tree;
	int cg_wd;	    /* the watch on its cgroup.events, or -1 */
	bool tree;	    /* the state machine's: processes of its tree may still run, besides
			       nalive (set when its instances start, cleared by FE_TREE_EMPTY) */
	unsigned weight;    /* basis points of new connections while active */
	int tfd;	    /* timerfd for this version's current deadline */
	long long deadline; /* ms, monotonic; 0: none */
	long long t_start, t_switch, t_signal;
	long long zero_to_signal_us; /* last close (kernel time) to exit signal; -1: not by zero */
	long long zero_turn_cpu_us;  /* of which the agent's CPU in that loop turn */
	/* ready = none: FE_SPAWNED waits for every instance's exec, until spawn_deadline (ms) */
	bool spawn_wait;
	long long spawn_deadline;
	/* Kernel-observed errors while under rollout, per health-interval. */
	long long next_sample;
	bool sampled;
	__u64 base_accepted, base_resets, base_drops;
	int bad_intervals;
	char errors_last[160];
	struct gate_state gate[MAX_GATES]; /* Prometheus gates, while under rollout */
	struct lat_view lat; /* latview.c: its latency, per interval and per gate window */
	/* httpstat.c: measure-http counts while it is under analysis */
	bool http_on;		      /* its responses' status classes are counted */
	struct http_counts http;      /* since counting began, last read */
	struct http_counts http_base; /* at its gate window's opening (latview.c) */
	struct http_counts http_cmp;  /* the compared version's, then */
	struct acceptq acceptq;	      /* acceptq.c: whether it accepts */
	__u64 lost_seen;	      /* connections lost to dead processes, already reported */
	__u64 oom_seen;		      /* its cgroup's memory.events oom_kill, already reported */
	bool resetting;		      /* drain-reset under way: signalled once it is done */
	bool http_draining;	      /* drain-http: its connections are asked to close */
	long long hd_live0;	      /* exec.c: its live connections when drain-http began */
	struct track_reset *reset;    /* exec.c's cursor of that reset */
	bool freed;		      /* freed: events still queued for it are ignored */
	struct version *next_dead;    /* freed versions, released after the epoll batch */
	struct evsrc ev;
};

struct history {
	int num;
	char how[96];
	struct version_counts counts; /* its connections, final */
};

/* How a version of the rollback window ended (history.c keeps the window). */
enum vr_end {
	VR_DEPLOYING = 0, /* its rollout runs */
	VR_ACTIVE,	  /* the service's version now */
	VR_REPLACED,	  /* a later version took over */
	VR_ROLLED_BACK,	  /* traffic went back to another version (how says why) */
	VR_FAILED,	  /* its deploy failed before it took traffic */
	VR_COUNT,
};

extern const char *const vr_end_names[];

/* One version of the rollback window: enough to start it again. */
struct vrecord {
	int num;
	struct spawn_desc spec;
	bool adopted;	    /* started outside baton: cannot be started again */
	bool served;	    /* it was the service's version (a rollback's "previous" is one) */
	unsigned activated; /* when it last became the service's version: 1, 2, ... in order */
	int rollback_of;    /* started again from this version's record by baton rollback; 0 */
	time_t deployed;    /* wall clock */
	time_t ended;	    /* wall clock; 0: not yet */
	enum vr_end end;
	char how[200]; /* replaced by, rolled back why, failed why */
};

#define MAX_KEEP_VERSIONS KEEP_VERSIONS_MAX

enum ro_stage {
	RO_NONE = 0,
	RO_BEFORE_START, /* before-start hook running; nothing started */
	RO_STARTING,	 /* new version started, waiting for readiness */
	RO_STEPPING,	 /* new version takes steps[step] of new connections */
	RO_AFTER_SWITCH, /* 100%: after-switch hook running, old version kept */
	RO_DRAIN_OLD,	 /* old version draining; after-drain hook follows */
	RO_AFTER_DRAIN,	 /* after-drain hook running */
	RO_ROLLING,	 /* rolling: instances replaced batch by batch (fsm_rolling.c) */
	RO_ROLLING_BACK, /* rolling, failed: the old version is brought back to instances */
};

extern const char *const stage_names[];

/* Why a rollout failed or rolled back; metrics label them. */
enum rb_reason {
	RB_HEALTH,
	RB_ERRORS,
	RB_EXIT,
	RB_HOOK,
	RB_OPERATOR,
	RB_RESTART,
	RB_GATE,
	RB_LATENCY,
	RB_HTTP, /* min-success-rate, max-error-ratio (measure-http) */
	RB_COUNT
};

extern const char *const rb_names[];

enum ro_result { RR_COMPLETED, RR_ROLLED_BACK, RR_FAILED, RR_COUNT };

/* A deploy from start to end: readiness, weight steps, hooks, rollback. */
struct rollout {
	enum ro_stage stage;
	enum strategy strategy;
	unsigned steps[MAX_STEPS];
	int nsteps;
	unsigned bake_ms;
	int step;	     /* index in steps of the current weight */
	bool paused;	     /* bake stopped by baton pause (or a manual weight) */
	bool manual;	     /* the weights were set by hand */
	long long bake_end;  /* ms; 0: waiting for promote */
	long long bake_left; /* ms of bake left when paused */
	int newv, oldv;	     /* vslots, -1 none */
	int base_num;	     /* --baseline: the fresh baseline version's number, 0: none */
	int new_num, old_num;
	long long t_start;
	long long ready_ms;
	struct client *waiter; /* the CLI waiting for this deploy */
	/* the hook running, if any */
	enum hook_point hook;
	bool hook_running; /* the state machine's view: a hook runs (exec.c has its pid) */
	pid_t hook_pid;
	int hook_pidfd;
	int hook_execfd; /* its exec pipe (proc.h), until reaped */
	struct evsrc hook_ev;
	char hook_err[200]; /* after-drain failure, reported at the end */
	/* Holds (fsm_confirm.c): a confirmation webhook's 2xx, an approval. */
	int confirm;		    /* WH_CONFIRM_* awaited; 0: none */
	int hold_step;		    /* the step it holds back */
	long long confirm_deadline; /* ms: not confirmed by then, the rollout fails */
	char confirm_last[160];	    /* webhook.c: its last answer, for status */
	bool approve;		    /* each step waits for promote until approval-timeout */
	bool gate_hold;		    /* the bake ended; the step waits for every gate to pass */
	long long gate_deadline;    /* ms: still not passing then, the rollout fails */
	/* strategy = rolling (fsm_rolling.c) */
	int surge, unavail;  /* max-surge, max-unavailable as counts */
	unsigned pause_ms;   /* between batches */
	long long pause_end; /* ms: the next batch waits until then (0: no pause) */
	bool counting;	     /* FA_INST_CONNS asked, FE_INST_CONNS not yet back */
	long long poll_at;   /* ms: read the instances' counts again (an instance waits), 0: no */
	int batch;	     /* batches started */
	int retired;	     /* old instances retired */
	char fail_why[320];  /* rolling back: why, for the deploy's answer at the end */
	enum rb_reason fail_reason;
	/* Holds between rolling batches (fsm_rollhold.c): each the batch number it let go. */
	int released;		    /* by promote: its gates and its approval */
	int confirmed;		    /* by its confirm-step / confirm-promotion webhook's 2xx */
	long long approve_deadline; /* ms: waiting for promote until then; 0: not waiting */
	/* Latency gates (fsm_gates.c), per step. */
	long long gate_step_t; /* ms: the step's weight was applied */
	bool gate_pass;	       /* a conclusive sample within the bounds in this step */
	bool gate_holding;     /* bake over, held for a conclusive sample */
	int gate_bad;	       /* conclusive samples over a bound in a row */
	bool gate_timed_out;   /* dry-run: analysis-timeout passed (reported once) */
	char gate_last[320];   /* the last verdict, with its numbers */
	/* Windows judged by them in this rollout: [0] pass, [1] fail, [2] inconclusive. */
	unsigned long gate_windows[3];
};

struct rollback_note {
	int num;     /* the version rolled back; 0: none yet */
	time_t when; /* wall clock, for status */
	char why[320];
};

struct service {
	struct service_conf conf;
	int id;
	unsigned pins_gen; /* bumped by dp.c at every change of the service's CIDR pins */
	int group[MAX_LISTEN];
	struct version *slot[MAX_VERSIONS];
	int active;   /* vslot or -1 */
	int previous; /* vslot of the version replaced last, or -1 */
	int starting; /* vslot being deployed, or -1 */
	int next_num;
	struct history hist[HISTORY];
	int nhist;
	struct vrecord vrec[MAX_KEEP_VERSIONS]; /* the rollback window, oldest first (history.c) */
	int nvrec;
	char last_error[300]; /* why the last deploy failed */
	struct rollout ro;
	int ro_tfd; /* rollout timer: bake end, hook timeout */
	long long ro_deadline;
	struct evsrc ro_ev;
	struct rollback_note last_rollback;
	bool removed;			   /* gone from the configuration: draining, then gone */
	bool gone;			   /* a free slot */
	unsigned long rollouts[RR_COUNT];  /* metrics: rollouts by result */
	unsigned long rollbacks[RB_COUNT]; /* metrics: rollbacks by reason */
	/* drain-http (metrics): connections its drains ended by a client's close, or left idle. */
	unsigned long long drain_closed_by_client, drain_idle_closed, drain_rewritten;
	bool resteering; /* the state machine asked for drain-http's re-steer (sticky) */
	bool resteer_on; /* exec.c: the drain program has it */
	unsigned long long resteer_seen; /* httpdrain.c: re-steered connections last logged */
};

/* "web v3", for logs (two calls may share a statement). */
const char *vname(const struct version *v);
/* The versions a rollout moves traffic between, or NULL. */
struct version *ro_new(struct service *s);
/* The fresh baseline of the rollout (--baseline), or NULL. */
struct version *ro_base(struct service *s);
struct version *ro_old(struct service *s);
struct version *version_by_num(struct service *s, long long num);
/* Remember a stopped version (at most HISTORY, oldest dropped). */
void history_add(struct service *s, int num, const char *how);

#endif /* BATON_MODEL_H */
