/* SPDX-License-Identifier: MIT */
#ifndef BATON_CONFIG_H
#define BATON_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "steer.h"

#define MAX_LISTEN   8	/* listen addresses per service */
#define MAX_ARGS     64 /* argv entries of a command */
#define MAX_ENV	     32 /* environment entries a config may give */
#define NAME_MAX_LEN 32 /* service names: [a-z0-9_-], first a letter */
#define CONF_ERR_LEN 256

/* keep-versions: the rollback window's length (model.h: MAX_KEEP_VERSIONS). */
#define KEEP_VERSIONS_DEFAULT 5
#define KEEP_VERSIONS_MAX     20

enum ready_kind {
	READY_NONE = 0,	  /* ready as soon as started */
	READY_NOTIFY = 1, /* sd_notify READY=1 from every instance */
	READY_TCP = 2,	  /* a TCP probe through each instance's own socket is accepted */
	READY_HTTP = 3,	  /* GET health-path through each instance's own socket answers 2xx */
	READY_EXEC = 4,	  /* health-command exits 0 for each instance */
};

/* Continuous health checks of a new version while a rollout runs. */
enum health_kind {
	HEALTH_NONE = 0,
	HEALTH_TCP = 1,	 /* a connection through the instance's socket completes */
	HEALTH_HTTP = 2, /* GET health-path through the instance's socket answers 2xx */
	HEALTH_EXEC = 3, /* health-command exits 0 */
};

enum strategy {
	STRATEGY_BLUEGREEN = 0, /* one step: all new connections move at once */
	STRATEGY_CANARY = 1,	/* steps of weight, each baked, health-gated */
	STRATEGY_ROLLING = 2,	/* instance by instance, never two whole copies (rolling.h) */
};

/* max-surge / max-unavailable as given: a count, or a percentage of instances. */
struct roll_amount {
	int n;
	bool pct;
};

enum hook_point {
	HOOK_BEFORE_START = 0, /* before the new version starts; failure: nothing starts */
	HOOK_AFTER_SWITCH = 1, /* the new version has all traffic, the old one is kept */
	HOOK_AFTER_DRAIN = 2,  /* the old version has exited */
	HOOK_COUNT = 3,
};

#define MAX_STEPS 16
/* max_error_bp value meaning: no rollback on kernel-observed errors. */
#define ERROR_RATE_OFF (-1)

enum drain_policy {
	DRAIN_WAIT_THEN_SIGNAL = 0, /* wait until the version has no connections, then signal */
	DRAIN_SIGNAL_THEN_WAIT = 1, /* exit signal at drain start, then wait for exit */
};

/*
 * What a webhook is sent for (webhook = EVENTS URL): event kinds of the
 * event log, and the three confirmations a rollout waits for.
 */
enum wh_event {
	WH_ROLLOUT_START,
	WH_STEP,
	WH_PAUSED,
	WH_GATE,
	WH_PROMOTED,
	WH_COMPLETED,
	WH_FAILED,
	WH_ROLLED_BACK,
	WH_DRAINING,
	WH_DRAINED,
	WH_STOPPED,
	WH_CRASHED,
	WH_LOST_CONNECTIONS,
	WH_AGENT_RESTART,
	WH_CONFIRM_ROLLOUT,   /* before a rollout starts anything */
	WH_CONFIRM_STEP,      /* before each step after the first */
	WH_CONFIRM_PROMOTION, /* before the new version takes 100% */
	WH_COUNT,
};
#define WH_CONFIRM_MASK                                                                            \
	((1u << WH_CONFIRM_ROLLOUT) | (1u << WH_CONFIRM_STEP) | (1u << WH_CONFIRM_PROMOTION))
#define MAX_WEBHOOKS	8
#define WEBHOOK_URL_MAX 512

struct webhook_conf {
	unsigned events; /* 1 << enum wh_event */
	char url[WEBHOOK_URL_MAX];
};

extern const char *const wh_event_names[WH_COUNT];
/* The webhook event of an event log kind ("step"), or -1. */
int wh_event_of(const char *kind);

/* gate = NAME: <PromQL> <op> <threshold>: a Prometheus query judged each health-interval. */
#define MAX_GATES      8
#define GATE_QUERY_MAX 1024
enum gate_op { GOP_LT, GOP_LE, GOP_GT, GOP_GE, GOP_EQ, GOP_NE };

struct gate_conf {
	char name[32];
	char query[GATE_QUERY_MAX]; /* as written, $SERVICE etc. not yet replaced */
	enum gate_op op;
	double threshold;
};

extern const char *const gate_op_names[];
/*
 * The query of g for one rollout: $SERVICE, $VERSION, $PREVIOUS_VERSION and
 * $BASELINE_VERSION replaced ("web", "v3", "v2", "v2").  0, or -1 when it
 * does not fit in len.
 */
int gate_expand(const struct gate_conf *g, const char *service, int version, int previous,
		char *out, size_t len);
/* Whether value passes g (a NaN never does). */
bool gate_passes(const struct gate_conf *g, double value);

struct listen_addr {
	struct sockaddr_storage ss; /* AF_INET or AF_INET6, port set */
	socklen_t len;
	char text[64]; /* as written: "0.0.0.0:8080", "[::1]:8080" */
};

/* latency = auto | on | off (docs/latency.md): whether a service's versions are measured. */
enum latency_mode {
	LATENCY_AUTO = 0, /* measured when the service has a latency gate */
	LATENCY_ON,
	LATENCY_OFF,
};

/* Whether a service's versions are measured (with the agent's latency on). */
#define LATENCY_MEASURED(c)                                                                        \
	((c)->latency == LATENCY_ON || ((c)->latency == LATENCY_AUTO && latency_gate_key(c)))

struct service_conf {
	char name[NAME_MAX_LEN];
	struct listen_addr listen[MAX_LISTEN];
	int nlisten;
	char *argv[MAX_ARGS + 1]; /* first version's command, NULL-terminated; malloc'd; none
				     with adopt */
	int argc;
	char *env[MAX_ENV + 1]; /* "KEY=VALUE", NULL-terminated; malloc'd */
	int nenv;
	int instances;		   /* 1..MAX_INSTANCES, default 1 */
	char user[64];		   /* empty: run as the agent's user */
	char workdir[256];	   /* empty: / */
	enum ready_kind ready;	   /* default READY_NOTIFY */
	unsigned ready_timeout_ms; /* default 10000 */
	enum drain_policy drain;
	int exit_signal;	   /* default SIGTERM */
	bool exit_signal_all;	   /* exit-signal-to = all: exit signal and SIGTERM to every process
				      of the version, not only those baton started */
	unsigned drain_delay_ms;   /* default 0: time a drained version is kept, unsignalled, for
				      rollback */
	unsigned drain_timeout_ms; /* default 30000 */
	unsigned kill_after_ms;	   /* default 5000 */
	bool drain_reset; /* default false: at drain-timeout, reset what is left (SOCK_DESTROY) */
	bool
	    drain_http; /* default false (off); close: draining connections get Connection: close */
	int backlog;	/* listen backlog, default 1024 */

	bool adopt;	  /* versions are started outside baton and adopted (baton adopt) */
	bool byte_counts; /* byte-counts = yes: payload bytes per version (bytes.c) */

	/* Limits of each version's cgroup (0: none); each needs its cgroup v2 controller. */
	unsigned long long memory_max; /* memory-max, bytes */
	unsigned cpu_max_pct;	       /* cpu-max, percent of one CPU */
	unsigned pids_max;	       /* pids-max */

	/* Steering and rollouts (issue 4). */
	enum steer_mode steering;	 /* default STEER_STICKY */
	enum strategy strategy;		 /* default STRATEGY_BLUEGREEN */
	unsigned steps[MAX_STEPS];	 /* basis points, strictly increasing, last WEIGHT_MAX */
	int nsteps;			 /* default 4: 500,2500,5000,10000 */
	unsigned bake_ms;		 /* default 30000; 0: each step waits for promote */
	enum health_kind health;	 /* default: like ready when tcp/http/exec, else none */
	char health_path[256];		 /* default "/" */
	char *health_argv[MAX_ARGS + 1]; /* health-command; NULL-terminated; malloc'd */
	unsigned health_interval_ms;	 /* default 1000 */
	unsigned health_timeout_ms;	 /* default 1000 */
	int health_threshold;		 /* consecutive failures that roll back, default 3 */
	int max_error_bp;		 /* basis points, default 100 (1%); ERROR_RATE_OFF */
	/* Latency gates (fsm_gates.c): 0 = off. */
	unsigned max_p99_ms;	      /* response time p99 of the new version */
	unsigned max_accept_p99_ms;   /* accept wait p99 of the new version */
	unsigned min_samples;	      /* responses a verdict needs, default 100 */
	unsigned analysis_timeout_ms; /* a step inconclusive this long fails, default 300 s */
	double max_p99_ratio;	      /* > 1: canary slower than this times its baseline fails */
	unsigned confidence_bp;	      /* of the rank test (max-p99-ratio), default 9500 */
	bool measure_http;	      /* count status classes of versions under analysis */
	unsigned min_success_bp;      /* non-5xx share of the new version's responses, 0: off */
	double max_error_ratio;	      /* > 1: canary 5xx rate above this times its comparison's */
	bool baseline;		      /* canary deploys start a fresh baseline (--baseline) */
	enum latency_mode latency;    /* default LATENCY_AUTO */
	char *hook[HOOK_COUNT][MAX_ARGS + 1]; /* NULL-terminated argv or hook[i][0] NULL */
	unsigned hook_timeout_ms;	      /* default 60000 */
	/* Webhooks, confirmations and approvals (confhooks.c). */
	struct webhook_conf webhook[MAX_WEBHOOKS];
	int nwebhooks;
	unsigned webhook_events;      /* every webhook's events together */
	unsigned webhook_timeout_ms;  /* one request, default 5000 */
	unsigned confirm_interval_ms; /* a confirmation not given is asked again, default 10000 */
	unsigned confirm_timeout_ms;  /* a rollout not confirmed by then fails, default 600000 */
	bool approve;		      /* each step waits for baton promote */
	unsigned approval_timeout_ms; /* not promoted by then: rolled back, default 3600000 */
	/* Prometheus gates (confhooks.c, promgate.c). */
	struct gate_conf gate[MAX_GATES];
	int ngates;
	bool gate_dry_run;	  /* verdicts shown and logged, never acted on */
	unsigned gate_timeout_ms; /* a step waits this long for its gates to pass, default 300000 */
	int line;		  /* line of the [service ...] header */
	/* strategy = rolling (issue 18): resolved by roll_resolve() against instances. */
	struct roll_amount max_surge;	/* default 1 */
	struct roll_amount max_unavail; /* default 0 */
	unsigned pause_ms;		/* default 0: between batches of new instances */
	int keep_versions; /* versions remembered for baton rollback, default 5 (history.c) */
	bool keep_warm;	   /* the replaced version stays running, placed, with no traffic, */
	unsigned rollback_window_ms; /* this long (default 600000): rollback is one policy update */
};

/* The first latency gate a service has ("max-p99", ...), or NULL: latency is needed. */
static inline const char *latency_gate_key(const struct service_conf *c)
{
	if (c->max_p99_ms)
		return "max-p99";
	if (c->max_accept_p99_ms)
		return "max-accept-wait-p99";
	if (c->max_p99_ratio > 0)
		return "max-p99-ratio";
	/* The HTTP gates are judged in the latency gates' window (fsm_gates.c). */
	if (c->min_success_bp)
		return "min-success-rate";
	if (c->max_error_ratio > 0)
		return "max-error-ratio";
	return NULL;
}

struct agent_conf {
	char control[108];	    /* control socket path, default /run/baton/control.sock */
	char bpf_dir[256];	    /* pin directory, default /sys/fs/bpf/baton */
	char run_dir[256];	    /* state and notify sockets, default /run/baton */
	char control_group[64];	    /* members may use read-only commands; empty: root only */
	char cgroup_dir[256];	    /* cgroup v2 subtree for the versions; "": the agent's own
				       cgroup (/baton from the root); "off": process groups */
	struct listen_addr metrics; /* Prometheus /metrics; len 0: off */
	char prometheus[256];	    /* the server gates query, http(s)://HOST:PORT; "": none */
	bool latency_off; /* latency = off: nothing measured, latency programs not attached */
	gid_t control_gid;
};

struct config {
	struct agent_conf agent;
	struct service_conf services[MAX_SERVICES];
	int nservices;
};

/*
 * Parse a config file.  Returns 0, or -1 with a one-line message naming the
 * file, the line and the problem in err (e.g. "web.conf:7: instances must be
 * 1..32, not 0").  On error *cfg holds nothing that needs freeing.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);

/* Helpers, exported for the CLI, the control protocol and unit tests.
 * Each returns 0, or -1 with a message (no file/line prefix) in err. */
int parse_duration_ms(const char *s, unsigned *ms, char *err, size_t errlen);
int parse_listen(const char *s, struct listen_addr *la, char *err, size_t errlen);
int parse_signal(const char *s, int *sig, char *err, size_t errlen);
int parse_service_name(const char *s, char *err, size_t errlen);
/* Split a command line into argv (whitespace; '...' and "..." quote; \ escapes
 * inside "..." and outside quotes).  Fills argv with malloc'd strings and a
 * NULL end; returns argc, or -1 with err on unbalanced quotes, empty command
 * or more than max args. */
int split_command(const char *s, char **argv, int max, char *err, size_t errlen);
void free_argv(char **argv);
/*
 * Environment variables: a name of letters, digits and _ (not starting with
 * a digit), not one baton sets itself (LISTEN_*, NOTIFY_SOCKET, BATON_*).
 */
bool env_name_valid(const char *name, size_t len);
bool env_name_reserved(const char *name, size_t len);
#define DEPLOY_ENV_LEN 1024 /* bytes of one deploy --env KEY=VALUE */
/*
 * A version's own environment (deploy --env): n entries, each "KEY=VALUE" of
 * len[i] bytes (a NUL inside one is an error), at most MAX_ENV, no name twice.
 * The same rules in the CLI and the agent: 0, or -1 with a one-line reason in
 * err that says what to change.
 */
int env_list_check(const char *const *kv, const size_t *len, int n, char *err, size_t errlen);

const char *ready_kind_name(enum ready_kind k);
const char *health_kind_name(enum health_kind k);
const char *hook_name(enum hook_point h); /* "before-start", ... */
/*
 * A weight as written by people: a percentage with at most two decimals
 * ("5", "2.5", "0.01", "100", an optional trailing "%") -> basis points
 * 0..WEIGHT_MAX.  Returns 0, or -1 with err.
 */
int parse_percent_bp(const char *s, unsigned *bp, char *err, size_t errlen);
/*
 * Rollout steps: a comma-separated list of percentages ("5,25,50,100"),
 * each > 0, strictly increasing, at most 100; 100 is appended when the
 * list does not end with it.  Fills steps (basis points), returns the count
 * (1..MAX_STEPS), or -1 with err.
 */
int parse_steps(const char *s, unsigned *steps, char *err, size_t errlen);
const char *signal_name(int sig);

#endif /* BATON_CONFIG_H */
