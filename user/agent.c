/* SPDX-License-Identifier: MIT */
/*
 * The agent: one epoll loop over a signalfd, the control socket and its
 * clients, the sd_notify socket, one pidfd per child and one timerfd per
 * version.  Nothing polls: an idle agent sleeps in epoll_wait.
 *
 * A version moves through
 *   STARTING -> ACTIVE -> DRAIN_DELAY -> DRAINING -> TERMINATING -> KILLED -> stopped
 * Every step after ACTIVE has a deadline; DRAIN_DELAY is the window in which
 * `baton rollback` can give traffic back without starting anything.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent.h"
#include "config.h"
#include "control.h"
#include "health.h"
#include "log.h"
#include "proc.h"
#include "steer_user.h"
#include "track_user.h"

#ifndef BATON_VERSION_STR
#define BATON_VERSION_STR "0.1.0"
#endif
#define MAX_CLIENTS    64
#define PROBE_TICK_MS  50
#define HEALTH_TICK_MS 100 /* timer of a version under rollout: checks and error samples */
#define READY_RETRY_MS 100 /* a failed http/exec readiness check is repeated after this */
#define HISTORY	       8

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
};

struct evsrc {
	enum ev_type type;
	void *p;
	int idx;
};

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

static const char *const phase_names[] = {
    [VP_STARTING] = "starting",	  [VP_ACTIVE] = "active",     [VP_DRAIN_DELAY] = "draining",
    [VP_DRAIN_WAIT] = "draining", [VP_DRAINING] = "draining", [VP_TERMINATING] = "draining",
    [VP_KILLED] = "draining",	  [VP_ABORTING] = "stopping",
};

struct client;
struct version;

/* One instance's readiness or health check (one at a time). */
struct check {
	bool busy;	    /* a check is in flight */
	bool for_ready;	    /* readiness (before traffic), not a health check */
	long long deadline; /* ms: no answer by then is a failure */
	long long next_at;  /* ms: when the next check may start */
	struct hcheck hc;   /* tcp/http */
	bool hc_pinned;
	pid_t pid; /* exec: the check process, until reaped */
	int pidfd;
	int fails; /* consecutive failures */
	unsigned long passes, failures;
	char last[128];
	struct evsrc ev;
};

struct instance {
	pid_t pid;
	int pidfd;
	bool ready;
	bool alive;
	char exit_desc[64];
	int lfd[MAX_LISTEN];	      /* the agent's copies of this instance's listeners */
	__u64 cookie[MAX_LISTEN];     /* their SO_COOKIE, to find them again after a restart */
	unsigned long long starttime; /* /proc/PID/stat start time: guards against pid reuse */
	int probe_fd;		      /* READY_TCP: connection through this instance's own socket */
	__u16 probe_sport;
	struct check chk;
	struct evsrc ev;
};

struct version {
	struct service *svc;
	int num;
	int vslot;
	enum vphase phase;
	char *argv[MAX_ARGS + 1];
	int ninst;
	int nalive;
	int nready;
	struct instance inst[MAX_INSTANCES];
	bool placed;	    /* sockets in the map */
	bool adopted;	    /* a server baton did not start: instance 0's process owns all */
	unsigned weight;    /* basis points of new connections while active */
	int tfd;	    /* timerfd for this version's current deadline */
	long long deadline; /* ms, monotonic; 0: none */
	long long t_start, t_switch, t_signal;
	long long zero_to_signal_us; /* last close (kernel time) to exit signal; -1: not by zero */
	/* Kernel-observed errors while under rollout, per health-interval. */
	long long next_sample;
	bool sampled;
	__u64 base_accepted, base_resets, base_drops;
	int bad_intervals;
	char errors_last[160];
	__u64 lost_seen;	   /* connections lost to dead processes, already reported */
	bool freed;		   /* freed: events still queued for it are ignored */
	struct version *next_dead; /* freed versions, released after the epoll batch */
	struct evsrc ev;
};

struct history {
	int num;
	char how[96];
	struct version_counts counts; /* its connections, final */
};

enum ro_stage {
	RO_NONE = 0,
	RO_BEFORE_START, /* before-start hook running; nothing started */
	RO_STARTING,	 /* new version started, waiting for readiness */
	RO_STEPPING,	 /* new version takes steps[step] of new connections */
	RO_AFTER_SWITCH, /* 100%: after-switch hook running, old version kept */
	RO_DRAIN_OLD,	 /* old version draining; after-drain hook follows */
	RO_AFTER_DRAIN,	 /* after-drain hook running */
};

static const char *const stage_names[] = {
    [RO_NONE] = "none",
    [RO_BEFORE_START] = "before-start hook",
    [RO_STARTING] = "starting",
    [RO_STEPPING] = "shifting traffic",
    [RO_AFTER_SWITCH] = "after-switch hook",
    [RO_DRAIN_OLD] = "draining the old version",
    [RO_AFTER_DRAIN] = "after-drain hook",
};

/* Why a rollout failed or rolled back; metrics label them. */
enum rb_reason { RB_HEALTH, RB_ERRORS, RB_EXIT, RB_HOOK, RB_OPERATOR, RB_RESTART, RB_COUNT };

static const char *const rb_names[] = {
    [RB_HEALTH] = "health", [RB_ERRORS] = "errors",	[RB_EXIT] = "exit",
    [RB_HOOK] = "hook",	    [RB_OPERATOR] = "operator", [RB_RESTART] = "restart",
};

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
	int new_num, old_num;
	long long t_start;
	long long ready_ms;
	struct client *waiter; /* the CLI waiting for this deploy */
	/* the hook running, if any */
	enum hook_point hook;
	pid_t hook_pid;
	int hook_pidfd;
	struct evsrc hook_ev;
	char hook_err[200]; /* after-drain failure, reported at the end */
};

struct rollback_note {
	int num;     /* the version rolled back; 0: none yet */
	time_t when; /* wall clock, for status */
	char why[320];
};

struct service {
	struct service_conf conf;
	int id;
	int group[MAX_LISTEN];
	struct version *slot[MAX_VERSIONS];
	int active;   /* vslot or -1 */
	int previous; /* vslot of the version replaced last, or -1 */
	int starting; /* vslot being deployed, or -1 */
	int next_num;
	struct history hist[HISTORY];
	int nhist;
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
};

struct client {
	int fd;
	char buf[CTL_MAX_LINE];
	size_t len;
	struct service *waiting; /* a deploy (rollout) this client waits for */
	bool closed;		 /* closed: events still queued for it are ignored */
	struct client *next_dead;
	bool readonly; /* a control-group member, not root */
	uid_t uid;
	pid_t pid;
	int tfd; /* read deadline: a request must be complete in time */
	bool timer_armed;
	double tokens;	  /* rate limit: requests left in the bucket */
	long long refill; /* ms of the last refill */
	struct evsrc ev, tev;
};

static struct {
	struct config cfg;
	struct steer st;
	struct track tr;
	struct service svc[MAX_SERVICES];
	int nsvc;
	int ngroups;
	int epfd;
	int sigfd;
	int ctlfd;
	int notifyfd;
	char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct client *clients[MAX_CLIENTS];
	struct evsrc ev_sig, ev_ctl, ev_notify, ev_ring;
	bool quit;
	bool stop_children; /* shutdown request: stop every version first */
	struct client *shutdown_waiter;
	struct version *dead; /* freed in this epoll batch; free()d after it */
	char *state_last;     /* the state file's content as last written */
	const char *config_path;
	struct client *dead_clients;
	int metricsfd;
	struct evsrc ev_metrics;
	long long notify_warned; /* last "not a baton child" warning, ms */
} A;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int ep_add(int fd, struct evsrc *ev, int type, void *p, int idx, unsigned events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	ev->type = type;
	ev->p = p;
	ev->idx = idx;
	return epoll_ctl(A.epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static void ep_del(int fd)
{
	epoll_ctl(A.epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Arm a one-shot timerfd for at_ms (monotonic ms), or disarm it with 0. */
static void timerfd_at(int fd, long long at_ms)
{
	struct itimerspec its = {0};
	long long d;

	if (at_ms) {
		d = at_ms - now_ms();
		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(fd, 0, &its, NULL);
}

static void timer_set(struct version *v, long long at_ms)
{
	v->deadline = at_ms;
	timerfd_at(v->tfd, at_ms);
}

static const char *vname(const struct version *v)
{
	static char buf[2][64];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s v%d", v->svc->conf.name, v->num);
	return buf[k];
}

/* ---- replies ---------------------------------------------------------- */

static void client_close(struct client *c);

static void reply(struct client *c, json_t *msg)
{
	if (c && ctl_send(c->fd, msg) < 0)
		log_debug("control client went away before its reply");
	json_decref(msg);
}

static void reply_err(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_err(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	reply(c, json_pack("{s:b, s:s}", "ok", 0, "error", buf));
}

static void progress(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!c)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	reply(c, json_pack("{s:s}", "progress", buf));
}

/* ---- steering policy ---------------------------------------------------- */

static int push_policy(struct service *s)
{
	struct steer_service p = {.mode = s->conf.steering};
	int i, r;

	for (i = 0; i < MAX_VERSIONS; i++) {
		struct version *v = s->slot[i];

		if (!v)
			continue;
		p.v[i].version = v->num;
		p.v[i].instances = v->ninst;
		switch (v->phase) {
		case VP_STARTING:
			p.v[i].state = VSTATE_STARTING;
			break;
		case VP_ACTIVE:
			p.v[i].state = VSTATE_ACTIVE;
			p.v[i].weight = v->weight;
			break;
		default:
			p.v[i].state = VSTATE_DRAINING;
			break;
		}
	}
	r = steer_set_service(&A.st, s->id, &p);
	if (r)
		log_warnx("%s: cannot update the steering policy: %s", s->conf.name, strerror(-r));
	return r;
}

static void place_version(struct version *v)
{
	struct service *s = v->svc;
	int i, j, r;

	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < s->conf.nlisten; j++) {
			if (v->inst[i].lfd[j] < 0)
				continue;
			r = steer_place(&A.st, steer_slot(s->group[j], v->vslot, i),
					v->inst[i].lfd[j]);
			if (r)
				log_warnx("%s: cannot place instance %d's socket: %s", vname(v), i,
					  strerror(-r));
		}
	v->placed = true;
}

static void unplace_version(struct version *v)
{
	struct service *s = v->svc;
	int i, j;

	if (!v->placed)
		return;
	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < s->conf.nlisten; j++)
			steer_remove(&A.st, steer_slot(s->group[j], v->vslot, i));
	v->placed = false;
}

/*
 * Give up the agent's copy of a version's listeners.  Done only after they
 * left the map: from now on the version's own processes hold the sockets,
 * and when they close them the kernel moves anything still queued to a live
 * version through the steer program.
 */
static void release_listeners(struct version *v, int only)
{
	int i, j;

	for (i = 0; i < v->ninst; i++) {
		if (only >= 0 && i != only)
			continue;
		for (j = 0; j < MAX_LISTEN; j++)
			if (v->inst[i].lfd[j] >= 0) {
				close(v->inst[i].lfd[j]);
				v->inst[i].lfd[j] = -1;
			}
	}
}

/* ---- sockets -------------------------------------------------------------- */

static int make_listener(const struct service_conf *c, int j, char *err, size_t errlen)
{
	const struct listen_addr *la = &c->listen[j];
	int one = 1, fd;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", la->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (la->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		snprintf(err, errlen, "listen %s: setsockopt: %s", la->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&la->ss, la->len) < 0) {
		snprintf(err, errlen, "listen %s: bind: %s", la->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, c->backlog) < 0) {
		snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Refuse an address someone else listens on.  A plain bind (no
 * SO_REUSEPORT) fails on any listener there, so this also catches a process
 * whose SO_REUSEPORT socket our sockets would silently join.
 */
static int check_port_free(const struct listen_addr *la, char *err, size_t errlen)
{
	int one = 1, fd, r = 0;
	unsigned port;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (la->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&la->ss, la->len) < 0) {
		port = la->ss.ss_family == AF_INET
			   ? ntohs(((struct sockaddr_in *)&la->ss)->sin_port)
			   : ntohs(((struct sockaddr_in6 *)&la->ss)->sin6_port);
		if (errno == EADDRINUSE)
			snprintf(err, errlen,
				 "listen %s: address in use by another process (see: ss -ltnp "
				 "'sport = :%u'; stop it or choose another port)",
				 la->text, port);
		else
			snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}

/* ---- versions ------------------------------------------------------------- */

static void history_add(struct service *s, int num, const char *how)
{
	struct history *h;

	if (s->nhist == HISTORY) {
		memmove(&s->hist[0], &s->hist[1], sizeof(s->hist[0]) * (HISTORY - 1));
		s->nhist--;
	}
	h = &s->hist[s->nhist++];
	memset(h, 0, sizeof(*h));
	h->num = num;
	snprintf(h->how, sizeof(h->how), "%s", how);
}

static void check_close(struct version *v, int i);
static unsigned long long proc_starttime(pid_t pid);

static void version_free(struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++) {
		struct check *k = &v->inst[i].chk;

		if (v->inst[i].pidfd >= 0) {
			ep_del(v->inst[i].pidfd);
			close(v->inst[i].pidfd);
		}
		if (v->inst[i].probe_fd >= 0) {
			steer_probe_del(&A.st, v->svc->id, v->svc->group[0],
					v->inst[i].probe_sport);
			close(v->inst[i].probe_fd);
		}
		check_close(v, i);
		if (k->pidfd >= 0) {
			/* An exec check still running: it was just killed; reap it here. */
			ep_del(k->pidfd);
			proc_kill_reap(k->pid, k->pidfd);
			close(k->pidfd);
		}
	}
	release_listeners(v, -1);
	if (v->tfd >= 0) {
		ep_del(v->tfd);
		close(v->tfd);
	}
	free_argv(v->argv);
	/* Later events of this epoll batch may still name v: free it after the batch. */
	v->freed = true;
	v->next_dead = A.dead;
	A.dead = v;
}

/* A zeroed version of s with every fd marked absent, so version_free is always safe. */
static struct version *version_alloc(struct service *s, char *err, size_t errlen)
{
	struct version *v = calloc(1, sizeof(*v));
	int i, j;

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->svc = s;
	v->tfd = -1;
	v->zero_to_signal_us = -1;
	for (i = 0; i < MAX_INSTANCES; i++) {
		v->inst[i].pidfd = -1;
		v->inst[i].probe_fd = -1;
		v->inst[i].chk.hc.fd = -1;
		v->inst[i].chk.pidfd = -1;
		for (j = 0; j < MAX_LISTEN; j++)
			v->inst[i].lfd[j] = -1;
	}
	return v;
}

static void bury_dead(void)
{
	while (A.dead) {
		struct version *v = A.dead;

		A.dead = v->next_dead;
		free(v);
	}
	while (A.dead_clients) {
		struct client *c = A.dead_clients;

		A.dead_clients = c->next_dead;
		free(c);
	}
}

static void check_shutdown_done(void);
static void hook_start(struct service *s, enum hook_point h);
static void service_gone(struct service *s);
static int reload(char *msg, size_t msglen);

/* All processes of a version are gone: free its slot. */
static void version_stopped(struct version *v)
{
	struct service *s = v->svc;
	bool old_of_rollout = s->ro.stage == RO_DRAIN_OLD && s->ro.oldv == v->vslot;
	char how[96];
	int n;

	unplace_version(v);
	if (v->t_switch)
		snprintf(how, sizeof(how), "stopped %.3f s after switch-out",
			 (now_ms() - v->t_switch) / 1000.0);
	else
		snprintf(how, sizeof(how), "stopped without taking traffic");
	log_info("%s: all processes exited, %s", vname(v), how);
	history_add(s, v->num, how);
	track_counts(&A.tr, s->id, v->num, &s->hist[s->nhist - 1].counts);
	if (s->active == v->vslot)
		s->active = -1;
	if (s->previous == v->vslot)
		s->previous = -1;
	if (s->starting == v->vslot)
		s->starting = -1;
	s->slot[v->vslot] = NULL;
	push_policy(s);
	n = steer_pin_del_version(&A.st, s->id, v->num);
	if (n > 0)
		log_info("%s: removed %d client pin(s) to it", vname(v), n);
	track_forget(&A.tr, s->id, v->num);
	version_free(v);
	if (old_of_rollout) {
		s->ro.oldv = -1;
		hook_start(s, HOOK_AFTER_DRAIN);
	}
	if (s->removed && !s->gone) {
		int k;

		for (k = 0; k < MAX_VERSIONS && !s->slot[k]; k++)
			;
		if (k == MAX_VERSIONS)
			service_gone(s);
	}
	check_shutdown_done();
}

static void signal_all(struct version *v, int sig)
{
	int i, r;

	for (i = 0; i < v->ninst; i++)
		if (v->inst[i].alive && v->inst[i].pidfd >= 0) {
			r = proc_signal(v->inst[i].pidfd, sig);
			if (r && r != -ESRCH)
				log_warnx("%s: cannot signal pid %d: %s", vname(v), v->inst[i].pid,
					  strerror(-r));
		}
}
/*
 * Drain, last step: the exit signal.  With signal-then-wait the version has
 * drain-timeout to exit (then SIGTERM, then SIGKILL after kill-after); with
 * wait-then-signal it had its drain-timeout already and gets kill-after.
 */
static void drain_signal(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;

	track_watch(&A.tr, v->svc->id, v->num, 0);
	v->t_signal = now_ms();
	release_listeners(v, -1);
	log_info("%s: draining, sending %s to %d process(es)", vname(v),
		 signal_name(c->exit_signal), v->nalive);
	signal_all(v, c->exit_signal);
	if (c->drain == DRAIN_SIGNAL_THEN_WAIT) {
		v->phase = VP_DRAINING;
		timer_set(v, v->t_signal + c->drain_timeout_ms);
	} else {
		v->phase = VP_TERMINATING;
		timer_set(v, v->t_signal + c->kill_after_ms);
	}
}

/* wait-then-signal: watch the live count; the kernel reports when it is 0. */
static void drain_wait(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct version_counts n;

	v->phase = VP_DRAIN_WAIT;
	timer_set(v, now_ms() + c->drain_timeout_ms);
	/* Watch first, then look: a close between the two is reported or seen. */
	track_watch(&A.tr, v->svc->id, v->num, 1);
	if (!track_counts(&A.tr, v->svc->id, v->num, &n) && n.live <= 0) {
		log_info("%s: no connections left", vname(v));
		drain_signal(v);
		return;
	}
	log_info("%s: waiting for %lld connection(s) to close (drain-timeout %u ms)", vname(v),
		 (long long)n.live, c->drain_timeout_ms);
}

static void drain_next(struct version *v)
{
	if (v->svc->conf.drain == DRAIN_WAIT_THEN_SIGNAL)
		drain_wait(v);
	else
		drain_signal(v);
}

/* Drain step 1: out of the map; rollback can still take it back until it is signalled. */
static void drain_begin(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;

	v->phase = VP_DRAIN_DELAY;
	v->t_switch = now_ms();
	unplace_version(v);
	if (!v->nalive) {
		version_stopped(v);
		return;
	}
	if (c->drain_delay_ms)
		timer_set(v, v->t_switch + c->drain_delay_ms);
	else
		drain_next(v);
}

/* The kernel saw the last connection of a watched version close. */
static void on_zero(void *ctx, const struct track_event *e)
{
	struct timespec ts;
	int i;

	(void)ctx;
	for (i = 0; i < A.nsvc; i++) {
		struct service *s = &A.svc[i];
		int vs;

		if (s->id != (int)e->service)
			continue;
		for (vs = 0; vs < MAX_VERSIONS; vs++) {
			struct version *v = s->slot[vs];

			if (!v || v->num != (int)e->version || v->phase != VP_DRAIN_WAIT)
				continue;
			drain_signal(v);
			clock_gettime(CLOCK_MONOTONIC, &ts);
			v->zero_to_signal_us = ((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec -
						(long long)e->ktime_ns) /
					       1000;
			log_info("%s: last connection closed; signalled %lld us later", vname(v),
				 v->zero_to_signal_us);
		}
	}
}

/* Stop a version that never took traffic: TERM now, KILL after kill-after. */
static void version_abort(struct version *v, const char *why)
{
	struct service *s = v->svc;

	log_warnx("%s: deploy failed: %s", vname(v), why);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	if (s->starting == v->vslot)
		s->starting = -1;
	if (s->active == v->vslot)
		s->active = -1; /* a first version that never became ready */
	unplace_version(v);
	push_policy(s);
	release_listeners(v, -1);
	v->phase = VP_ABORTING;
	if (!v->nalive) {
		version_stopped(v);
		return;
	}
	signal_all(v, SIGTERM);
	timer_set(v, now_ms() + s->conf.kill_after_ms);
}

static struct version *ro_new(struct service *s)
{
	return s->ro.newv >= 0 ? s->slot[s->ro.newv] : NULL;
}

static struct version *ro_old(struct service *s)
{
	return s->ro.oldv >= 0 ? s->slot[s->ro.oldv] : NULL;
}

static void ro_timer(struct service *s, long long at_ms)
{
	s->ro_deadline = at_ms;
	timerfd_at(s->ro_tfd, at_ms);
}

/* A version's timer ticking every ms (probes, checks). */
static void timer_tick(struct version *v, int ms)
{
	struct itimerspec its = {.it_interval.tv_sec = ms / 1000,
				 .it_interval.tv_nsec = (ms % 1000) * 1000000L,
				 .it_value.tv_sec = ms / 1000,
				 .it_value.tv_nsec = (ms % 1000) * 1000000L};

	timerfd_settime(v->tfd, 0, &its, NULL);
}

/* ---- readiness and health checks through each instance's own socket ---- */

static void rollout_fail(struct service *s, enum rb_reason reason, const char *why);
static void instance_ready(struct version *v, int i);

/* End the check in flight: close its socket and unpin it; kill an exec check. */
static void check_close(struct version *v, int i)
{
	struct check *k = &v->inst[i].chk;

	if (k->hc.fd >= 0) {
		ep_del(k->hc.fd);
		if (k->hc_pinned)
			steer_probe_del(&A.st, v->svc->id, v->svc->group[0], k->hc.sport);
		hc_end(&k->hc);
		k->hc.fd = -1;
	}
	k->hc_pinned = false;
	if (k->busy && k->pidfd >= 0) {
		kill(-k->pid, SIGKILL);		/* its group: the check leads its own session */
		proc_signal(k->pidfd, SIGKILL); /* reaped when its pidfd fires */
	}
	k->busy = false;
}

static void check_result(struct version *v, int i, bool pass, const char *detail)
{
	const struct service_conf *c = &v->svc->conf;
	struct check *k = &v->inst[i].chk;
	char why[300];

	snprintf(k->last, sizeof(k->last), "%s", detail);
	check_close(v, i);
	if (k->for_ready) {
		if (pass) {
			instance_ready(v, i);
			return;
		}
		log_debug("%s: instance %d not ready yet: %s", vname(v), i, k->last);
		k->next_at = now_ms() + READY_RETRY_MS;
		return;
	}
	if (pass) {
		k->passes++;
		k->fails = 0;
		return;
	}
	k->failures++;
	k->fails++;
	log_warnx("%s: instance %d (pid %d) failed a health check (%d of %d in a row): %s",
		  vname(v), i, v->inst[i].pid, k->fails, c->health_threshold, k->last);
	if (k->fails >= c->health_threshold) {
		snprintf(why, sizeof(why),
			 "%s instance %d (pid %d) failed %d health checks in a row (last: %s)",
			 vname(v), i, v->inst[i].pid, k->fails, k->last);
		rollout_fail(v->svc, RB_HEALTH, why);
	}
}

static void check_start(struct version *v, int i, bool for_ready)
{
	const struct service_conf *c = &v->svc->conf;
	const struct listen_addr *la = &c->listen[0];
	struct check *k = &v->inst[i].chk;
	enum health_kind kind;
	char err[256], detail[sizeof(k->hc.detail)];
	int r;

	if (k->busy || k->pidfd >= 0)
		return;
	if (for_ready)
		kind = c->ready == READY_HTTP ? HEALTH_HTTP : HEALTH_EXEC;
	else
		kind = c->health;
	k->for_ready = for_ready;
	k->busy = true;
	k->deadline = now_ms() + c->health_timeout_ms;
	k->next_at = now_ms() + c->health_interval_ms;
	if (kind == HEALTH_EXEC) {
		char pid_env[40], kind_env[40];
		char *env2[] = {pid_env, kind_env, NULL};
		struct spawn_req req = {
		    .argv = c->health_argv,
		    .env = c->env,
		    .env2 = env2,
		    .service = c->name,
		    .version = v->num,
		    .instance = i,
		    .user = c->user,
		    .workdir = c->workdir,
		};

		snprintf(pid_env, sizeof(pid_env), "BATON_PID=%d", v->inst[i].pid);
		snprintf(kind_env, sizeof(kind_env), "BATON_CHECK=%s",
			 for_ready ? "ready" : "health");
		if (proc_spawn(&req, &k->pid, &k->pidfd, err, sizeof(err))) {
			k->pidfd = -1;
			check_result(v, i, false, err);
			return;
		}
		ep_add(k->pidfd, &k->ev, EV_CHECK, v, i, EPOLLIN);
		return;
	}
	if (hc_begin(&k->hc, kind == HEALTH_HTTP ? HC_HTTP : HC_TCP,
		     (const struct sockaddr *)&la->ss, la->len, c->health_path, err, sizeof(err))) {
		k->hc.fd = -1;
		check_result(v, i, false, err);
		return;
	}
	/* Pin before the SYN leaves, so the steer program sends it to this instance. */
	if (steer_probe_add(&A.st, v->svc->id, v->svc->group[0], k->hc.sport, v->vslot, i)) {
		check_result(v, i, false, "cannot pin the check's source port");
		return;
	}
	k->hc_pinned = true;
	r = hc_connect(&k->hc);
	if (r != HC_PENDING) {
		snprintf(detail, sizeof(detail), "%s", k->hc.detail);
		check_result(v, i, r == HC_PASS, detail);
		return;
	}
	ep_add(k->hc.fd, &k->ev, EV_CHECK, v, i, hc_events(&k->hc));
}

static void on_check(struct version *v, int i)
{
	struct check *k = &v->inst[i].chk;
	char detail[sizeof(k->hc.detail)], desc[64];
	struct epoll_event e = {.data.ptr = &k->ev};
	int status = 0, r;

	if (v->freed)
		return;
	if (k->pidfd >= 0) {
		if (proc_reap(k->pidfd, &status, desc, sizeof(desc)) <= 0)
			return;
		ep_del(k->pidfd);
		close(k->pidfd);
		k->pidfd = -1;
		if (!k->busy)
			return; /* it had timed out and was killed */
		k->busy = false;
		check_result(v, i, status == 0, status == 0 ? "exit status 0" : desc);
		return;
	}
	if (!k->busy || k->hc.fd < 0)
		return;
	r = hc_step(&k->hc);
	if (r == HC_PENDING) {
		e.events = hc_events(&k->hc);
		epoll_ctl(A.epfd, EPOLL_CTL_MOD, k->hc.fd, &e);
		return;
	}
	snprintf(detail, sizeof(detail), "%s", k->hc.detail);
	check_result(v, i, r == HC_PASS, detail);
}

/* Bound the check in flight by health-timeout. */
static bool check_timed_out(struct version *v, int i, long long now)
{
	struct check *k = &v->inst[i].chk;
	char why[96];

	if (!k->busy || now < k->deadline)
		return false;
	snprintf(why, sizeof(why), "no answer within health-timeout %u ms",
		 v->svc->conf.health_timeout_ms);
	check_result(v, i, false, why); /* kills an exec check */
	return true;
}

static void checks_stop(struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++)
		check_close(v, i);
}

/*
 * Errors the kernel saw on the new version during the last health-interval:
 * connections it reset, and connections dropped because its accept queue
 * was full.  health-threshold bad intervals in a row roll back.
 */
static void sample_errors(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct version_counts n = {0};
	__u64 drops = 0, d, da, dr, dd;
	char why[300];
	int i, j;

	if (track_counts(&A.tr, v->svc->id, v->num, &n))
		return;
	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < c->nlisten; j++)
			if (v->inst[i].lfd[j] >= 0 && !listener_drops(v->inst[i].lfd[j], &d))
				drops += d;
	if (!v->sampled) {
		v->sampled = true;
		v->base_accepted = n.accepted;
		v->base_resets = n.resets;
		v->base_drops = drops;
		return;
	}
	da = n.accepted - v->base_accepted;
	dr = n.resets - v->base_resets;
	/* The kernel's counters are 32-bit per socket: a wrap reads as no drops. */
	dd = drops >= v->base_drops ? drops - v->base_drops : 0;
	v->base_accepted = n.accepted;
	v->base_resets = n.resets;
	v->base_drops = drops;
	snprintf(v->errors_last, sizeof(v->errors_last),
		 "%llu new connections, %llu reset by the server, %llu dropped (accept queue "
		 "full) in %u ms",
		 (unsigned long long)da, (unsigned long long)dr, (unsigned long long)dd,
		 c->health_interval_ms);
	if (c->max_error_bp == ERROR_RATE_OFF || !(dr + dd) ||
	    (dr + dd) * WEIGHT_MAX <= (__u64)c->max_error_bp * (da + dd)) {
		v->bad_intervals = 0;
		return;
	}
	v->bad_intervals++;
	log_warnx("%s: %s, above max-error-rate %.2f%% (%d of %d in a row)", vname(v),
		  v->errors_last, c->max_error_bp / 100.0, v->bad_intervals, c->health_threshold);
	if (v->bad_intervals >= c->health_threshold) {
		snprintf(why, sizeof(why), "%s failing clients: %s, above max-error-rate %.2f%%",
			 vname(v), v->errors_last, c->max_error_bp / 100.0);
		rollout_fail(v->svc, RB_ERRORS, why);
	}
}

/* The new version under rollout, every HEALTH_TICK_MS. */
static void health_tick(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	long long now = now_ms();
	struct service *s = v->svc;
	int i;

	/*
	 * A failure below may roll back.  That ends the rollout but does not
	 * free v: it still has live instances, which now drain.
	 */
	for (i = 0; i < v->ninst; i++) {
		if (!v->inst[i].alive)
			continue;
		check_timed_out(v, i, now);
		if (s->ro.stage == RO_NONE || ro_new(s) != v)
			return;
		if (c->health != HEALTH_NONE && now >= v->inst[i].chk.next_at)
			check_start(v, i, false);
		if (s->ro.stage == RO_NONE || ro_new(s) != v)
			return;
	}
	if (now >= v->next_sample) {
		v->next_sample = now + c->health_interval_ms;
		sample_errors(v);
	}
}

/* ---- TCP readiness: a probe through the instance's own socket ------------ */
static void probe_stop(struct version *v, int i)
{
	struct instance *in = &v->inst[i];

	if (in->probe_fd < 0)
		return;
	steer_probe_del(&A.st, v->svc->id, v->svc->group[0], in->probe_sport);
	close(in->probe_fd);
	in->probe_fd = -1;
}

static void probe_start(struct version *v, int i)
{
	const struct listen_addr *la = &v->svc->conf.listen[0];
	struct sockaddr_storage src, dst = la->ss;
	socklen_t slen = sizeof(src);
	struct instance *in = &v->inst[i];
	int fd;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* A wildcard listen address is probed on loopback. */
	if (dst.ss_family == AF_INET) {
		struct sockaddr_in *d = (void *)&dst;

		if (d->sin_addr.s_addr == htonl(INADDR_ANY))
			d->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memcpy(&src, d, sizeof(*d));
		((struct sockaddr_in *)&src)->sin_port = 0;
	} else {
		struct sockaddr_in6 *d = (void *)&dst;

		if (IN6_IS_ADDR_UNSPECIFIED(&d->sin6_addr))
			d->sin6_addr = in6addr_loopback;
		memcpy(&src, d, sizeof(*d));
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	}
	if (bind(fd, (struct sockaddr *)&src, la->len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&src, &slen) < 0) {
		log_warn("%s: instance %d: probe: bind", vname(v), i);
		close(fd);
		return;
	}
	in->probe_sport =
	    ntohs(src.ss_family == AF_INET ? ((struct sockaddr_in *)&src)->sin_port
					   : ((struct sockaddr_in6 *)&src)->sin6_port);
	/* Pin before the SYN leaves, so the steer program sends it to this instance. */
	if (steer_probe_add(&A.st, v->svc->id, v->svc->group[0], in->probe_sport, v->vslot, i)) {
		log_warn("%s: instance %d: probe: cannot pin source port", vname(v), i);
		close(fd);
		return;
	}
	in->probe_fd = fd;
	if (connect(fd, (struct sockaddr *)&dst, la->len) < 0 && errno != EINPROGRESS) {
		log_debug("%s: instance %d: probe: connect: %s", vname(v), i, strerror(errno));
		probe_stop(v, i);
	}
}

/*
 * A probe is passed when its connection was established through the
 * instance's socket and the instance accepted it: the listener's accept
 * queue (tcpi_unacked on a listening socket) is empty again.  Nothing else
 * reaches a starting version, so the queue holds only the probe.
 */
static void probe_check(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	struct pollfd p = {.fd = in->probe_fd, .events = POLLOUT};
	struct tcp_info ti;
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (in->probe_fd < 0) {
		probe_start(v, i);
		return;
	}
	if (poll(&p, 1, 0) == 0)
		return; /* handshake still in flight */
	getsockopt(in->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr) {
		log_debug("%s: instance %d: probe: %s", vname(v), i, strerror(soerr));
		probe_stop(v, i); /* try again next tick */
		return;
	}
	len = sizeof(ti);
	if (in->lfd[0] < 0 || getsockopt(in->lfd[0], IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
		log_debug("%s: instance %d: probe: no listener to check", vname(v), i);
		return;
	}
	if (ti.tcpi_unacked == 0) {
		probe_stop(v, i);
		instance_ready(v, i);
	} else {
		log_debug("%s: instance %d: probe connected, %u queued", vname(v), i,
			  ti.tcpi_unacked);
	}
}

/* ---- adopting servers that open their own SO_REUSEPORT listeners ---------------- */

#define ADOPT_MAX_PIDS	256
#define ADOPT_MAX_SOCKS (MAX_INSTANCES * MAX_LISTEN)

struct adopted_sock {
	int fd;
	int j; /* listen address index */
	__u64 cookie;
};

/* pid and its descendants (nginx: the master and its workers), at most max. */
static int process_tree(pid_t pid, pid_t *out, int max)
{
	int n = 0, k;

	out[n++] = pid;
	for (k = 0; k < n && n < max; k++) {
		char path[64], buf[4096];
		ssize_t len;
		char *p, *end;
		int fd;

		/* Children of the main thread; nginx and most servers fork from it. */
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)out[k], (int)out[k]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (p = buf; n < max; p = end) {
			long c = strtol(p, &end, 10);

			if (end == p)
				break;
			out[n++] = (pid_t)c;
		}
	}
	return n;
}

static bool same_addr(const struct sockaddr_storage *a, const struct listen_addr *la)
{
	if (a->ss_family != la->ss.ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&la->ss;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&la->ss;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
}

/*
 * Copy the listening sockets of pid (and its descendants) that are on the
 * service's listen addresses.  Returns how many, or -1 with err naming what
 * is wrong and what to do.
 */
static int adopt_collect(struct service *s, pid_t pid, struct adopted_sock *out, int max, char *err,
			 size_t errlen)
{
	const struct service_conf *c = &s->conf;
	pid_t pids[ADOPT_MAX_PIDS];
	char path[64], a[64], b[64];
	int np, k, n = 0, j;
	ssize_t la, lb;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	la = readlink(path, a, sizeof(a) - 1);
	lb = readlink("/proc/self/ns/net", b, sizeof(b) - 1);
	if (la < 0) {
		snprintf(err, errlen, "no process %d (%s)", (int)pid, strerror(errno));
		return -1;
	}
	if (lb < 0 || la != lb || memcmp(a, b, la)) {
		snprintf(err, errlen,
			 "process %d is in another network namespace: its sockets cannot join "
			 "this agent's reuseport groups (run the agent in that namespace)",
			 (int)pid);
		return -1;
	}
	np = process_tree(pid, pids, ADOPT_MAX_PIDS);
	for (k = 0; k < np; k++) {
		int pidfd = (int)syscall(SYS_pidfd_open, pids[k], 0);
		struct dirent *de;
		DIR *d;

		if (pidfd < 0) {
			if (!k) {
				snprintf(err, errlen, "cannot open process %d: %s", (int)pid,
					 errno == EPERM ? "not permitted (run the agent as root)"
							: strerror(errno));
				return -1;
			}
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pids[k]);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			int fd, on = 0, i;
			__u64 cookie = 0;
			struct stat st;

			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
			if (fd < 0) {
				if (errno == EPERM && !k) {
					snprintf(
					    err, errlen,
					    "cannot copy process %d's sockets: not permitted "
					    "(pidfd_getfd needs root; check Yama ptrace_scope)",
					    (int)pid);
					closedir(d);
					close(pidfd);
					goto fail;
				}
				continue;
			}
			len = sizeof(on);
			if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
			    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on) {
				close(fd);
				continue;
			}
			len = sizeof(ss);
			if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
				close(fd);
				continue;
			}
			for (j = 0; j < c->nlisten && !same_addr(&ss, &c->listen[j]); j++)
				;
			len = sizeof(cookie);
			getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
			for (i = 0; i < n && out[i].cookie != cookie; i++)
				;
			if (j == c->nlisten || i < n) {
				close(fd); /* another address, or a socket already seen */
				continue;
			}
			len = sizeof(on);
			on = 0;
			getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len);
			if (!on) {
				snprintf(err, errlen,
					 "process %d listens on %s without SO_REUSEPORT: baton's "
					 "sockets cannot join it (nginx: listen ... reuseport)",
					 (int)pids[k], c->listen[j].text);
				close(fd);
				closedir(d);
				close(pidfd);
				goto fail;
			}
			if (st.st_uid != geteuid()) {
				snprintf(
				    err, errlen,
				    "process %d's socket on %s belongs to uid %u: a reuseport "
				    "group is one owner's, and baton's sockets are uid %u's (let "
				    "the server open its listeners as root, as nginx's master "
				    "does)",
				    (int)pids[k], c->listen[j].text, (unsigned)st.st_uid,
				    (unsigned)geteuid());
				close(fd);
				closedir(d);
				close(pidfd);
				goto fail;
			}
			if (n == max) {
				snprintf(err, errlen,
					 "process %d has more than %d listeners on %s's addresses",
					 (int)pid, MAX_INSTANCES, c->name);
				close(fd);
				closedir(d);
				close(pidfd);
				goto fail;
			}
			out[n].fd = fd;
			out[n].j = j;
			out[n].cookie = cookie;
			n++;
		}
		if (d)
			closedir(d);
		close(pidfd);
	}
	for (j = 0; j < c->nlisten; j++) {
		for (k = 0; k < n && out[k].j != j; k++)
			;
		if (k == n) {
			snprintf(
			    err, errlen,
			    "process %d has no listening socket on %s (see: ss -ltnp; the server "
			    "must listen on every address of [service %s])",
			    (int)pid, c->listen[j].text, c->name);
			goto fail;
		}
	}
	return n;
fail:
	for (k = 0; k < n; k++)
		close(out[k].fd);
	return -1;
}

/* The command line of pid as argv, for status. */
static void argv_of(pid_t pid, char **argv)
{
	char path[64], buf[4096];
	ssize_t len;
	int fd, n = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	len = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (len <= 0) {
		argv[0] = strdup("(adopted)");
		return;
	}
	buf[len] = '\0';
	for (p = buf; p < buf + len && n < MAX_ARGS; p += strlen(p) + 1)
		argv[n++] = strdup(p);
}

/*
 * A version made of a running server's own listeners: instance k holds the
 * k-th socket of each listen address; the process (instance 0's pid) is
 * the one signalled, and its exit ends every instance.
 */
static struct version *version_adopt(struct service *s, pid_t pid, char *err, size_t errlen)
{
	struct adopted_sock socks[ADOPT_MAX_SOCKS];
	int count[MAX_LISTEN] = {0};
	struct version *v;
	int n, vslot, i, k;

	for (vslot = 0; vslot < MAX_VERSIONS && s->slot[vslot]; vslot++)
		;
	if (vslot == MAX_VERSIONS) {
		snprintf(err, errlen,
			 "%s has %d versions still running (draining); wait for them to exit",
			 s->conf.name, MAX_VERSIONS);
		return NULL;
	}
	for (i = 0; i < MAX_VERSIONS; i++)
		for (k = 0; s->slot[i] && k < s->slot[i]->ninst; k++)
			if (s->slot[i]->inst[k].alive && s->slot[i]->inst[k].pid == pid) {
				snprintf(err, errlen, "process %d is already %s", (int)pid,
					 vname(s->slot[i]));
				return NULL;
			}
	n = adopt_collect(s, pid, socks, ADOPT_MAX_SOCKS, err, errlen);
	if (n < 0)
		return NULL;
	v = version_alloc(s, err, errlen);
	if (!v) {
		for (k = 0; k < n; k++)
			close(socks[k].fd);
		return NULL;
	}
	v->vslot = vslot;
	v->num = s->next_num;
	v->adopted = true;
	for (k = 0; k < n; k++) {
		i = count[socks[k].j]++;
		if (i >= MAX_INSTANCES) {
			close(socks[k].fd);
			continue;
		}
		v->inst[i].lfd[socks[k].j] = socks[k].fd;
		v->inst[i].cookie[socks[k].j] = socks[k].cookie;
		if (i + 1 > v->ninst)
			v->ninst = i + 1;
	}
	argv_of(pid, v->argv);
	v->inst[0].pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	v->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->inst[0].pidfd < 0 || v->tfd < 0 || ep_add(v->tfd, &v->ev, EV_TIMER, v, 0, EPOLLIN) ||
	    track_register(&A.tr, s->id, v->num) < 0) {
		snprintf(err, errlen, "cannot watch process %d: %s", (int)pid, strerror(errno));
		version_free(v);
		return NULL;
	}
	for (i = 0; i < v->ninst; i++) {
		v->inst[i].pid = pid;
		v->inst[i].starttime = proc_starttime(pid);
		v->inst[i].alive = true;
	}
	v->nalive = v->ninst;
	ep_add(v->inst[0].pidfd, &v->inst[0].ev, EV_PIDFD, v, 0, EPOLLIN);
	log_info("%s: adopted process %d: %d listener(s) on %d address(es)", vname(v), (int)pid, n,
		 s->conf.nlisten);
	s->next_num++;
	s->slot[vslot] = v;
	return v;
}

/*
 * baton adopt: a running server becomes the service's active version.  Its
 * sockets are placed and the policy written before the program is
 * attached, so from the first steered connection on, every choice is one
 * of its sockets: nothing is refused during the takeover.
 */
static int adopt_first(struct service *s, pid_t pid, char *msg, size_t msglen)
{
	struct version *v;
	int i, j, r;

	if (s->active >= 0 || s->ro.stage != RO_NONE) {
		snprintf(
		    msg, msglen,
		    "%s already has %s; adopt a new build with: baton deploy %s --adopt-pid PID",
		    s->conf.name,
		    s->active >= 0 ? vname(s->slot[s->active]) : "a deploy in progress",
		    s->conf.name);
		return -EBUSY;
	}
	v = version_adopt(s, pid, msg, msglen);
	if (!v)
		return -EINVAL;
	v->t_start = now_ms();
	v->phase = VP_ACTIVE;
	v->weight = WEIGHT_MAX;
	for (i = 0; i < v->ninst; i++) {
		v->inst[i].ready = true;
		v->nready++;
	}
	s->active = v->vslot;
	place_version(v);
	push_policy(s);
	for (j = 0; j < s->conf.nlisten; j++)
		for (i = 0; i < v->ninst; i++)
			if (v->inst[i].lfd[j] >= 0) {
				r = steer_attach(&A.st, v->inst[i].lfd[j]);
				if (r)
					log_warnx("%s: cannot attach the steer program to %s: %s",
						  vname(v), s->conf.listen[j].text, strerror(-r));
				break;
			}
	snprintf(msg, msglen, "%s: adopted process %d as v%d (%d listener(s) per address)",
		 s->conf.name, (int)pid, v->num, v->ninst);
	log_info("%s", msg);
	return 0;
}

/* ---- rollouts -------------------------------------------------------------- */

/* The deploy is over, one way or the other: answer the CLI waiting for it. */
static void rollout_end(struct service *s, bool ok, const char *why, bool rolled_back)
{
	struct rollout *ro = &s->ro;
	struct client *c = ro->waiter;

	s->rollouts[ok ? RR_COMPLETED : rolled_back ? RR_ROLLED_BACK : RR_FAILED]++;
	if (c) {
		if (ok)
			reply(c, json_pack("{s:b, s:i, s:I, s:o, s:s, s:I}", "ok", 1, "version",
					   ro->new_num, "ready_ms", (json_int_t)ro->ready_ms,
					   "previous",
					   ro->old_num ? json_integer(ro->old_num) : json_null(),
					   "strategy",
					   ro->strategy == STRATEGY_CANARY ? "canary" : "bluegreen",
					   "rollout_ms", (json_int_t)(now_ms() - ro->t_start)));
		else
			reply(c, json_pack("{s:b, s:s, s:i, s:b}", "ok", 0, "error", why, "version",
					   ro->new_num, "rolled_back", rolled_back));
		c->waiting = NULL;
	}
	if (ok)
		log_info("%s: rollout of v%d complete in %.1f s", s->conf.name, ro->new_num,
			 (now_ms() - ro->t_start) / 1000.0);
	ro->waiter = NULL;
	ro->stage = RO_NONE;
	ro->newv = ro->oldv = -1;
	ro_timer(s, 0);
}

static void hook_kill(struct service *s)
{
	struct rollout *ro = &s->ro;

	if (ro->hook_pidfd < 0)
		return;
	ep_del(ro->hook_pidfd);
	proc_kill_reap(ro->hook_pid, ro->hook_pidfd);
	close(ro->hook_pidfd);
	ro->hook_pidfd = -1;
	log_warnx("%s: killed the %s hook (pid %d): the rollout ended", s->conf.name,
		  hook_name(ro->hook), ro->hook_pid);
}

/* Stop steering to a failed new version and let it drain: nothing comes back to it. */
static void drain_failed(struct version *v)
{
	checks_stop(v);
	v->phase = VP_DRAIN_DELAY;
	v->t_switch = now_ms();
	unplace_version(v);
	if (!v->nalive) {
		version_stopped(v);
		return;
	}
	drain_next(v);
}

/*
 * Something went wrong: give the old version all new connections again (one
 * map update), drain and stop the new one, record why, and fail the deploy.
 */
static void rollout_fail(struct service *s, enum rb_reason reason, const char *why)
{
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	char msg[600];

	switch (ro->stage) {
	case RO_NONE:
		return;
	case RO_BEFORE_START:
	case RO_STARTING:
		hook_kill(s);
		rollout_end(s, false, why, false);
		if (nv)
			version_abort(nv, why);
		return;
	case RO_STEPPING:
	case RO_AFTER_SWITCH:
		hook_kill(s);
		s->last_rollback.num = ro->new_num;
		s->last_rollback.when = time(NULL);
		snprintf(s->last_rollback.why, sizeof(s->last_rollback.why), "%s", why);
		if (!ov || !ov->nalive) {
			snprintf(msg, sizeof(msg),
				 "%s; cannot roll back: v%d has no running instance, so v%d keeps "
				 "the traffic",
				 why, ro->old_num, ro->new_num);
			log_warnx("%s: %s", s->conf.name, msg);
			if (nv) {
				checks_stop(nv);
				timer_set(nv, 0);
				nv->weight = WEIGHT_MAX;
				s->active = nv->vslot;
			}
			push_policy(s);
			rollout_end(s, false, msg, false);
			return;
		}
		if (ov->phase != VP_ACTIVE) {
			/* Kept for the after-switch hook: its sockets are still the agent's. */
			timer_set(ov, 0);
			track_watch(&A.tr, s->id, ov->num, 0);
			place_version(ov);
			ov->phase = VP_ACTIVE;
		}
		ov->weight = WEIGHT_MAX;
		s->active = ov->vslot;
		s->previous = -1;
		if (nv) {
			nv->weight = 0;
			nv->phase = VP_DRAIN_DELAY;
		}
		push_policy(s);
		log_warnx("%s: rolled back to v%d: %s", s->conf.name, ov->num, why);
		s->rollbacks[reason]++;
		snprintf(msg, sizeof(msg), "rolled back to v%d: %s", ov->num, why);
		rollout_end(s, false, msg, true);
		if (nv)
			drain_failed(nv);
		return;
	case RO_DRAIN_OLD:
	case RO_AFTER_DRAIN:
		hook_kill(s);
		snprintf(msg, sizeof(msg),
			 "%s (v%d was already switched out and cannot take traffic back)", why,
			 ro->old_num);
		log_warnx("%s: %s", s->conf.name, msg);
		rollout_end(s, false, msg, false);
		return;
	}
}

/* Weights of the two versions of a rollout; one map update. */
static void rollout_weights(struct service *s, unsigned w_new)
{
	struct version *nv = ro_new(s), *ov = ro_old(s);

	if (nv)
		nv->weight = w_new;
	if (ov)
		ov->weight = WEIGHT_MAX - w_new;
	push_policy(s);
}

static void rollout_switched(struct service *s);

/* The new version takes 100%: the old one is kept (unsignalled) until after-switch passed. */
static void rollout_shifted(struct service *s)
{
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	nv->weight = WEIGHT_MAX;
	s->active = nv->vslot;
	if (ov) {
		ov->weight = 0;
		ov->phase = VP_DRAIN_DELAY;
		ov->t_switch = now_ms();
		s->previous = ov->vslot;
	}
	/* Policy first, then the old sockets leave the map: nothing is steered to a gap. */
	push_policy(s);
	if (ov)
		unplace_version(ov);
	log_info("%s: active, ready in %lld ms%s%s", vname(nv), ro->ready_ms,
		 ov ? "; switching out " : "", ov ? vname(ov) : "");
	if (ov && s->conf.hook[HOOK_AFTER_SWITCH][0]) {
		ro->stage = RO_AFTER_SWITCH;
		hook_start(s, HOOK_AFTER_SWITCH);
		return;
	}
	rollout_switched(s);
}

/* The switch stands: stop checking the new version, drain the old one. */
static void rollout_switched(struct service *s)
{
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	if (nv) {
		checks_stop(nv);
		timer_set(nv, 0);
	}
	if (ov && s->conf.hook[HOOK_AFTER_DRAIN][0]) {
		ro->stage = RO_DRAIN_OLD;
		progress(ro->waiter, "%s: draining v%d; the after-drain hook runs once it exited",
			 s->conf.name, ov->num);
		drain_begin(ov);
		return;
	}
	rollout_end(s, true, NULL, false);
	if (ov)
		drain_begin(ov);
}

/* Apply the current step's weight; bake it, or wait for promote. */
static void rollout_apply(struct service *s)
{
	struct rollout *ro = &s->ro;
	unsigned w = ro->steps[ro->step];

	if (w >= WEIGHT_MAX) {
		rollout_shifted(s);
		return;
	}
	rollout_weights(s, w);
	if (ro->bake_ms) {
		ro->bake_end = now_ms() + ro->bake_ms;
		ro_timer(s, ro->bake_end);
	} else {
		ro->bake_end = 0;
		ro_timer(s, 0);
	}
	log_info("%s: v%d takes %.2f%% of new connections (step %d of %d)%s", s->conf.name,
		 ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
		 ro->bake_ms ? "" : "; waiting for baton promote");
	if (ro->bake_ms)
		progress(ro->waiter, "%s: v%d at %.2f%% (step %d of %d), baking %.1f s",
			 s->conf.name, ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
			 ro->bake_ms / 1000.0);
	else
		progress(
		    ro->waiter, "%s: v%d at %.2f%% (step %d of %d); waiting for: baton promote %s",
		    s->conf.name, ro->new_num, w / 100.0, ro->step + 1, ro->nsteps, s->conf.name);
}

/* Next step (or the last, with full); continues a paused rollout. */
static void rollout_promote(struct service *s, bool full)
{
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	int k;

	for (k = 0; k < ro->nsteps - 1 && ro->steps[k] <= nv->weight; k++)
		;
	ro->step = full ? ro->nsteps - 1 : k;
	ro->paused = false;
	ro->manual = false;
	rollout_apply(s);
}

/* Every instance of the new version is ready: give it its first step. */
static void rollout_ready(struct version *v)
{
	struct service *s = v->svc;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	int i;

	ro->ready_ms = now_ms() - ro->t_start;
	s->starting = -1;
	v->phase = VP_ACTIVE;
	timer_set(v, 0);
	ro->stage = RO_STEPPING;
	ro->step = 0;
	log_info("%s: %d instance(s) ready in %lld ms", vname(v), v->ninst, ro->ready_ms);
	if (ro->steps[0] < WEIGHT_MAX || s->conf.hook[HOOK_AFTER_SWITCH][0]) {
		/* Checks run while the old version can still take traffic back. */
		for (i = 0; i < v->ninst; i++)
			v->inst[i].chk.next_at = now_ms();
		v->next_sample = now_ms();
		v->sampled = false;
		v->bad_intervals = 0;
		if (c->health != HEALTH_NONE || c->max_error_bp != ERROR_RATE_OFF)
			timer_tick(v, HEALTH_TICK_MS);
	}
	rollout_apply(s);
}

/* ---- hooks ------------------------------------------------------------------ */

static void hook_done(struct service *s, bool ok, const char *desc);
static int deploy_start(struct service *s);

static void hook_start(struct service *s, enum hook_point h)
{
	const struct service_conf *c = &s->conf;
	struct rollout *ro = &s->ro;
	char hook_env[48], prev_env[48], err[300];
	char *env2[] = {hook_env, prev_env, NULL};
	struct spawn_req req = {
	    .argv = c->hook[h],
	    .env = c->env,
	    .env2 = env2,
	    .service = c->name,
	    .version = ro->new_num,
	    .instance = -1,
	    .user = c->user,
	    .workdir = c->workdir,
	};

	if (!c->hook[h][0]) {
		hook_done(s, true, NULL);
		return;
	}
	ro->hook = h;
	if (h == HOOK_AFTER_DRAIN)
		ro->stage = RO_AFTER_DRAIN;
	snprintf(hook_env, sizeof(hook_env), "BATON_HOOK=%s", hook_name(h));
	if (ro->old_num)
		snprintf(prev_env, sizeof(prev_env), "BATON_PREVIOUS_VERSION=v%d", ro->old_num);
	else
		snprintf(prev_env, sizeof(prev_env), "BATON_PREVIOUS_VERSION=");
	if (proc_spawn(&req, &ro->hook_pid, &ro->hook_pidfd, err, sizeof(err))) {
		ro->hook_pidfd = -1;
		hook_done(s, false, err);
		return;
	}
	ep_add(ro->hook_pidfd, &ro->hook_ev, EV_HOOK, s, 0, EPOLLIN);
	ro_timer(s, now_ms() + c->hook_timeout_ms);
	log_info("%s: running the %s hook %s (pid %d)", s->conf.name, hook_name(h), c->hook[h][0],
		 ro->hook_pid);
	progress(ro->waiter, "%s: running the %s hook (timeout %.1f s)", s->conf.name, hook_name(h),
		 c->hook_timeout_ms / 1000.0);
}

static void hook_done(struct service *s, bool ok, const char *desc)
{
	struct rollout *ro = &s->ro;
	char why[400];

	ro_timer(s, 0);
	if (ok)
		log_info("%s: %s hook passed", s->conf.name, hook_name(ro->hook));
	else
		snprintf(why, sizeof(why), "%s hook failed: %s", hook_name(ro->hook), desc);
	switch (ro->hook) {
	case HOOK_BEFORE_START:
		if (ok)
			deploy_start(s);
		else
			rollout_fail(s, RB_HOOK, why);
		break;
	case HOOK_AFTER_SWITCH:
		if (ok)
			rollout_switched(s);
		else
			rollout_fail(s, RB_HOOK, why);
		break;
	case HOOK_AFTER_DRAIN:
		if (ok) {
			rollout_end(s, true, NULL, false);
		} else {
			char msg[500];

			snprintf(msg, sizeof(msg),
				 "%s (v%d has exited, so v%d stays; nothing was rolled back)", why,
				 ro->old_num, ro->new_num);
			log_warnx("%s: %s", s->conf.name, msg);
			rollout_end(s, false, msg, false);
		}
		break;
	default:
		break;
	}
}

static void on_hook(struct service *s)
{
	struct rollout *ro = &s->ro;
	char desc[64];
	int status = 0;

	if (ro->hook_pidfd < 0 || proc_reap(ro->hook_pidfd, &status, desc, sizeof(desc)) <= 0)
		return;
	ep_del(ro->hook_pidfd);
	close(ro->hook_pidfd);
	ro->hook_pidfd = -1;
	hook_done(s, status == 0, desc);
}

static void on_ro_timer(struct service *s)
{
	struct rollout *ro = &s->ro;
	uint64_t n;
	char why[128];

	if (read(s->ro_tfd, &n, sizeof(n)) < 0)
		return;
	if (ro->hook_pidfd >= 0 && now_ms() >= s->ro_deadline) {
		ep_del(ro->hook_pidfd);
		proc_kill_reap(ro->hook_pid, ro->hook_pidfd);
		close(ro->hook_pidfd);
		ro->hook_pidfd = -1;
		snprintf(why, sizeof(why), "did not finish within hook-timeout %u ms (killed)",
			 s->conf.hook_timeout_ms);
		hook_done(s, false, why);
		return;
	}
	if (ro->stage == RO_STEPPING && !ro->paused && ro->bake_end && now_ms() >= ro->bake_end)
		rollout_promote(s, false);
}

static struct version *version_new(struct service *s, char *const *argv, char *err, size_t errlen)
{
	const struct service_conf *c = &s->conf;
	struct version *v;
	int vslot, i, j, n;

	for (vslot = 0; vslot < MAX_VERSIONS && s->slot[vslot]; vslot++)
		;
	if (vslot == MAX_VERSIONS) {
		snprintf(err, errlen,
			 "%s has %d versions still running (draining); wait for them to exit",
			 c->name, MAX_VERSIONS);
		return NULL;
	}
	v = version_alloc(s, err, errlen);
	if (!v)
		return NULL;
	v->vslot = vslot;
	v->num = s->next_num;
	v->ninst = c->instances;
	for (n = 0; argv[n] && n < MAX_ARGS; n++) {
		v->argv[n] = strdup(argv[n]);
		if (!v->argv[n]) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < c->nlisten; j++) {
			socklen_t clen = sizeof(v->inst[i].cookie[j]);

			v->inst[i].lfd[j] = make_listener(c, j, err, errlen);
			if (v->inst[i].lfd[j] < 0)
				goto fail;
			getsockopt(v->inst[i].lfd[j], SOL_SOCKET, SO_COOKIE, &v->inst[i].cookie[j],
				   &clen);
		}
	v->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->tfd < 0 || ep_add(v->tfd, &v->ev, EV_TIMER, v, 0, EPOLLIN)) {
		snprintf(err, errlen, "timerfd: %s", strerror(errno));
		goto fail;
	}
	if (track_register(&A.tr, s->id, v->num) < 0) {
		snprintf(err, errlen, "cannot create the connection counters: %s", strerror(errno));
		goto fail;
	}
	s->next_num++;
	s->slot[vslot] = v;
	return v;
fail:
	version_free(v);
	return NULL;
}

static int version_spawn(struct version *v, char *err, size_t errlen)
{
	const struct service_conf *c = &v->svc->conf;
	char names[MAX_LISTEN * 40] = "";
	int fds[MAX_LISTEN];
	int i, j, r;

	for (j = 0; j < c->nlisten; j++) {
		if (j)
			strcat(names, ":");
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s-%d", c->name, j);
	}
	for (i = 0; i < v->ninst; i++) {
		struct instance *in = &v->inst[i];
		struct spawn_req req = {
		    .argv = v->argv,
		    .env = c->env,
		    .fds = fds,
		    .nfds = c->nlisten,
		    .fdnames = names,
		    .notify = c->ready == READY_NOTIFY ? A.notify_path : NULL,
		    .service = c->name,
		    .version = v->num,
		    .instance = i,
		    .user = c->user,
		    .workdir = c->workdir,
		};

		for (j = 0; j < c->nlisten; j++)
			fds[j] = in->lfd[j];
		r = proc_spawn(&req, &in->pid, &in->pidfd, err, errlen);
		if (r)
			return r;
		in->alive = true;
		in->starttime = proc_starttime(in->pid);
		v->nalive++;
		ep_add(in->pidfd, &in->ev, EV_PIDFD, v, i, EPOLLIN);
		log_debug("%s: instance %d started, pid %d", vname(v), i, in->pid);
	}
	return 0;
}

static void instance_ready(struct version *v, int i)
{
	if (v->inst[i].ready)
		return;
	v->inst[i].ready = true;
	v->nready++;
	log_debug("%s: instance %d (pid %d) ready", vname(v), i, v->inst[i].pid);
	if (v->phase == VP_STARTING && v->nready == v->ninst)
		rollout_ready(v);
}

/* ---- deploy / rollback ------------------------------------------------------ */

struct deploy_opts {
	pid_t adopt_pid; /* adopt this running server instead of starting argv */
	enum strategy strategy;
	unsigned steps[MAX_STEPS];
	int nsteps;
	unsigned bake_ms;
};

/*
 * Start a new version.  Returns -errno with err when nothing was started;
 * 0 once the version exists, whatever happens to it next (the waiting
 * client, if any, gets exactly one final reply).
 */
static int deploy(struct service *s, char *const *argv, const struct deploy_opts *o,
		  struct client *c, char *err, size_t errlen)
{
	const struct service_conf *conf = &s->conf;
	struct rollout *ro = &s->ro;
	struct version *v;

	if (ro->stage != RO_NONE) {
		snprintf(
		    err, errlen,
		    "%s: the rollout of v%d is in progress (%s); wait for it, or: baton abort %s",
		    conf->name, ro->new_num, stage_names[ro->stage], conf->name);
		return -EBUSY;
	}
	if (s->starting >= 0) {
		snprintf(err, errlen,
			 "%s: v%d is being deployed; wait for it, or: baton rollback %s",
			 conf->name, s->slot[s->starting]->num, conf->name);
		return -EBUSY;
	}
	if (o && o->adopt_pid)
		v = version_adopt(s, o->adopt_pid, err, errlen);
	else
		v = version_new(s, argv, err, errlen);
	if (!v)
		return -ENOMEM;
	memset(ro, 0, sizeof(*ro));
	ro->hook_pidfd = -1;
	ro->t_start = now_ms();
	ro->newv = v->vslot;
	ro->new_num = v->num;
	ro->oldv = s->active;
	ro->old_num = s->active >= 0 ? s->slot[s->active]->num : 0;
	ro->strategy = o ? o->strategy : conf->strategy;
	if (ro->strategy == STRATEGY_CANARY) {
		ro->nsteps = o && o->nsteps ? o->nsteps : conf->nsteps;
		memcpy(ro->steps, o && o->nsteps ? o->steps : conf->steps,
		       sizeof(ro->steps[0]) * ro->nsteps);
		ro->bake_ms = o ? o->bake_ms : conf->bake_ms;
	} else {
		ro->nsteps = 1;
		ro->steps[0] = WEIGHT_MAX;
	}
	if (c) {
		ro->waiter = c;
		c->waiting = s;
	}
	if (ro->oldv >= 0 && conf->hook[HOOK_BEFORE_START][0]) {
		ro->stage = RO_BEFORE_START;
		hook_start(s, HOOK_BEFORE_START);
		return 0;
	}
	deploy_start(s);
	return 0;
}

/* Place the new version's sockets, start its processes, wait for readiness. */
static int deploy_start(struct service *s)
{
	const struct service_conf *conf = &s->conf;
	struct rollout *ro = &s->ro;
	struct version *v = ro_new(s);
	char err[300];
	int i, j, r;

	ro->stage = RO_STARTING;
	v->t_start = now_ms();
	s->starting = v->vslot;
	if (s->active < 0) {
		/* A first version takes connections at once; they queue until it accepts. */
		v->phase = VP_ACTIVE;
		v->weight = WEIGHT_MAX;
		s->active = v->vslot;
	} else {
		v->phase = VP_STARTING;
	}
	place_version(v);
	push_policy(s);
	/*
	 * (Re)attach per group: harmless when attached, and needed when every
	 * socket of a group had closed, which takes the program with it.
	 */
	for (j = 0; j < conf->nlisten; j++) {
		r = steer_attach(&A.st, v->inst[0].lfd[j]);
		if (r)
			log_warnx("%s: cannot attach the steer program to %s: %s", vname(v),
				  conf->listen[j].text, strerror(-r));
	}
	if (!v->adopted && version_spawn(v, err, sizeof(err))) {
		rollout_fail(s, RB_EXIT, err);
		return -1;
	}
	if (!v->adopted)
		log_info("%s: started %d instance(s) of %s", vname(v), v->ninst, v->argv[0]);
	if (conf->ready == READY_NONE) {
		for (i = 0; i < v->ninst && s->slot[v->vslot] == v; i++)
			instance_ready(v, i);
		return 0;
	}
	progress(ro->waiter, "%s: %s %d instance(s), waiting for readiness (%s, timeout %u ms)",
		 vname(v), v->adopted ? "adopted" : "started", v->ninst,
		 ready_kind_name(conf->ready), conf->ready_timeout_ms);
	/* Probes and checks tick; the ready deadline is checked on each tick. */
	timer_tick(v, PROBE_TICK_MS);
	v->deadline = v->t_start + conf->ready_timeout_ms;
	if (conf->ready == READY_TCP)
		for (i = 0; i < v->ninst; i++)
			probe_start(v, i);
	if (conf->ready == READY_HTTP || conf->ready == READY_EXEC)
		for (i = 0; i < v->ninst && s->slot[v->vslot] == v && s->ro.stage == RO_STARTING;
		     i++)
			check_start(v, i, true);
	return 0;
}

/* The first version of a service, started with the agent. */
static void first_version_done(struct version *v)
{
	struct service *s = v->svc;

	/* A first version has nothing to switch from: it was active all along. */
	if (s->starting == v->vslot)
		s->starting = -1;
	timer_set(v, 0);
	s->ro.ready_ms = now_ms() - v->t_start;
	log_info("%s: active, %d instance(s) ready in %lld ms", vname(v), v->ninst, s->ro.ready_ms);
	rollout_end(s, true, NULL, false);
}

static int rollback(struct service *s, char *msg, size_t msglen)
{
	struct version *cur = s->active >= 0 ? s->slot[s->active] : NULL;
	struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;
	struct rollout *ro = &s->ro;

	if (ro->stage == RO_BEFORE_START || ro->stage == RO_STARTING) {
		snprintf(msg, msglen, "deploy of %s v%d aborted; %s stays active", s->conf.name,
			 ro->new_num, cur ? vname(cur) : "nothing");
		rollout_fail(s, RB_OPERATOR, "aborted by baton rollback");
		return 0;
	}
	if (ro->stage == RO_STEPPING || ro->stage == RO_AFTER_SWITCH) {
		int num = ro->new_num, old = ro->old_num;

		rollout_fail(s, RB_OPERATOR, "rolled back by baton rollback");
		snprintf(msg, msglen, "%s: rollout of v%d aborted; v%d has all new connections",
			 s->conf.name, num, old);
		return 0;
	}
	if (!prev) {
		snprintf(msg, msglen,
			 "%s: no previous version is running (it has exited); deploy it again: "
			 "baton deploy %s -- COMMAND",
			 s->conf.name, s->conf.name);
		return -ENOENT;
	}
	if (prev->phase != VP_DRAIN_DELAY && prev->phase != VP_DRAIN_WAIT) {
		snprintf(msg, msglen,
			 "%s was told to exit %.1f s ago and cannot take traffic back (keep it "
			 "with drain-delay); deploy it again: baton deploy %s -- COMMAND",
			 vname(prev), (now_ms() - prev->t_signal) / 1000.0, s->conf.name);
		return -ESTALE;
	}
	if (ro->stage != RO_NONE)
		/* Draining the old version for after-drain: that is over now. */
		rollout_end(s, false, "rolled back by the operator while the old version drained",
			    false);
	/* Its sockets are still the agent's copies: put them back, then switch. */
	timer_set(prev, 0);
	track_watch(&A.tr, s->id, prev->num, 0);
	place_version(prev);
	prev->phase = VP_ACTIVE;
	prev->weight = WEIGHT_MAX;
	s->active = prev->vslot;
	s->previous = cur ? cur->vslot : -1;
	if (cur) {
		cur->phase = VP_DRAIN_DELAY;
		cur->weight = 0;
	}
	push_policy(s);
	if (cur)
		snprintf(msg, msglen, "%s: v%d active again, draining v%d", s->conf.name, prev->num,
			 cur->num);
	else
		snprintf(msg, msglen, "%s: v%d active again", s->conf.name, prev->num);
	log_info("%s", msg);
	if (cur)
		drain_begin(cur);
	return 0;
}

/* ---- events ----------------------------------------------------------------- */

/*
 * Connections the kernel closed because a process of v died holding them
 * (counted by track): the one loss baton cannot prevent, said with its count.
 */
static void report_lost(struct version *v, int i, const char *desc)
{
	struct version_counts n = {0};

	if (track_counts(&A.tr, v->svc->id, v->num, &n) || n.lost <= v->lost_seen)
		return;
	log_warnx("%s: instance %d (pid %d) %s: %llu open connection(s) lost with it", vname(v), i,
		  v->inst[i].pid, desc, (unsigned long long)(n.lost - v->lost_seen));
	v->lost_seen = n.lost;
}

static void on_exit_of(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	struct service *s = v->svc;
	int status = 0, r;
	char desc[64], why[300];

	if (v->freed)
		return;
	r = proc_reap(in->pidfd, &status, desc, sizeof(desc));
	if (r == -ECHILD)
		/* Started by an earlier agent: not ours to reap, but it is gone. */
		snprintf(desc, sizeof(desc),
			 "exited (started by an earlier agent: status unknown)");
	else if (r <= 0)
		return;
	ep_del(in->pidfd);
	close(in->pidfd);
	in->pidfd = -1;
	in->alive = false;
	snprintf(in->exit_desc, sizeof(in->exit_desc), "%s", desc);
	v->nalive--;
	if (v->adopted) {
		/* Its process held every instance's sockets: they are all gone. */
		int k;

		for (k = 0; k < v->ninst; k++)
			if (v->inst[k].alive) {
				v->inst[k].alive = false;
				snprintf(v->inst[k].exit_desc, sizeof(v->inst[k].exit_desc), "%s",
					 desc);
				v->nalive--;
				check_close(v, k);
				if (v->phase == VP_ACTIVE)
					for (int j = 0; j < s->conf.nlisten; j++)
						steer_remove(&A.st,
							     steer_slot(s->group[j], v->vslot, k));
			}
	}
	check_close(v, i);
	report_lost(v, i, desc);
	switch (v->phase) {
	case VP_STARTING:
		snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
			 in->pid, desc);
		rollout_fail(s, RB_EXIT, why);
		return;
	case VP_ACTIVE:
		if (s->starting == v->vslot) {
			/* first version, still starting */
			snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
				 in->pid, desc);
			rollout_fail(s, RB_EXIT, why);
			return;
		}
		/*
		 * A running instance died.  Its slot leaves the map and the agent's
		 * copy closes, so what was queued on it moves to a sibling, or
		 * (when the new version of a rollout dies) back to the old version.
		 */
		log_warnx("%s: instance %d (pid %d) %s", vname(v), i, in->pid, desc);
		/*
		 * Before the dead sockets leave the map: while the policy still
		 * names this version, an empty slot set would refuse new clients.
		 */
		if (!v->nalive && s->active == v->vslot && s->ro.stage == RO_NONE) {
			struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;
			char msg[300];

			if (prev && prev->nalive &&
			    (prev->phase == VP_DRAIN_DELAY || prev->phase == VP_DRAIN_WAIT)) {
				/*
				 * The version that took over is gone and the one it replaced
				 * can still serve: give it back, before the dead one's
				 * listeners close, so what was queued on them migrates to it.
				 */
				snprintf(why, sizeof(why), "%s: every instance exited (last: %s)",
					 vname(v), desc);
				log_warnx("%s; rolling back", why);
				s->last_rollback.num = v->num;
				s->last_rollback.when = time(NULL);
				snprintf(s->last_rollback.why, sizeof(s->last_rollback.why), "%s",
					 why);
				s->rollbacks[RB_EXIT]++;
				rollback(s, msg, sizeof(msg)); /* v is freed: it has no process */
				return;
			}
		}
		if (ro_new(s) == v &&
		    (s->ro.stage == RO_STEPPING || s->ro.stage == RO_AFTER_SWITCH)) {
			bool last = !v->nalive;

			snprintf(why, sizeof(why), "%s instance %d (pid %d) %s during the rollout",
				 vname(v), i, in->pid, desc);
			rollout_fail(s, RB_EXIT, why);
			if (last)
				return; /* v is gone: it had no process left */
		}
		for (int j = 0; j < s->conf.nlisten; j++)
			steer_remove(&A.st, steer_slot(s->group[j], v->vslot, i));
		release_listeners(v, i);
		if (!v->nalive && s->active == v->vslot)
			log_warnx(
			    "%s: no instance left; %s has no live version until the next deploy",
			    vname(v), s->conf.name);
		return;
	default:
		log_debug("%s: pid %d %s", vname(v), in->pid, desc);
		if (!v->nalive)
			version_stopped(v);
		return;
	}
}

static void on_timer(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct service *s = v->svc;
	long long now;
	uint64_t n;
	int i;

	if (v->freed || read(v->tfd, &n, sizeof(n)) < 0)
		return;
	now = now_ms();
	if (v->phase == VP_STARTING || (v->phase == VP_ACTIVE && s->starting == v->vslot)) {
		for (i = 0; i < v->ninst; i++) {
			if (v->inst[i].ready)
				continue;
			if (c->ready == READY_TCP)
				probe_check(v, i);
			if (c->ready == READY_HTTP || c->ready == READY_EXEC) {
				check_timed_out(v, i, now);
				if (!v->inst[i].chk.busy && now >= v->inst[i].chk.next_at)
					check_start(v, i, true);
			}
			/* A readiness result may have switched or ended the deploy. */
			if (s->ro.stage != RO_STARTING || ro_new(s) != v)
				return;
		}
		if (v->nready == v->ninst)
			return;
		if (now >= v->deadline) {
			char why[256];

			snprintf(why, sizeof(why),
				 "%d of %d instance(s) not ready within ready-timeout %u ms",
				 v->ninst - v->nready, v->ninst, c->ready_timeout_ms);
			for (i = 0; i < v->ninst; i++) {
				probe_stop(v, i);
				check_close(v, i);
			}
			rollout_fail(s, RB_HEALTH, why);
		}
		return;
	}
	if (v->phase == VP_ACTIVE) {
		if (ro_new(s) == v &&
		    (s->ro.stage == RO_STEPPING || s->ro.stage == RO_AFTER_SWITCH))
			health_tick(v);
		return;
	}
	switch (v->phase) {
	case VP_DRAIN_DELAY:
		drain_next(v);
		break;
	case VP_DRAIN_WAIT: {
		struct version_counts n = {0};

		track_counts(&A.tr, v->svc->id, v->num, &n);
		log_warnx("%s: %lld connection(s) still open at drain-timeout %u ms", vname(v),
			  (long long)n.live, c->drain_timeout_ms);
		if (c->drain_reset) {
			int r = track_reset_version(&A.tr, v->svc->id, v->num);

			if (r < 0)
				log_warnx("%s: cannot reset its connections: %s%s", vname(v),
					  strerror(-r),
					  r == -EOPNOTSUPP
					      ? " (kernel without CONFIG_INET_DIAG_DESTROY)"
					      : "");
			else
				log_warnx("%s: reset %d connection(s) (drain-reset)", vname(v), r);
		}
		drain_signal(v);
		break;
	}
	case VP_DRAINING:
		log_warnx("%s: %d process(es) still running at drain-timeout %u ms%s", vname(v),
			  v->nalive, c->drain_timeout_ms,
			  c->exit_signal != SIGTERM ? ", sending SIGTERM" : "");
		if (c->exit_signal != SIGTERM)
			signal_all(v, SIGTERM);
		v->phase = VP_TERMINATING;
		timer_set(v, now_ms() + c->kill_after_ms);
		break;
	case VP_TERMINATING:
	case VP_ABORTING:
		log_warnx(
		    "%s: %d process(es) still running after kill-after %u ms, sending SIGKILL",
		    vname(v), v->nalive, c->kill_after_ms);
		signal_all(v, SIGKILL);
		v->phase = VP_KILLED;
		timer_set(v, 0);
		break;
	default:
		break;
	}
}

static void on_notify(void)
{
	char buf[4096 + 1], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct ucred *cred = NULL;
	struct cmsghdr *cm;
	ssize_t n;
	int k, i, vs;

	for (k = 0; k < 64; k++) {
		mh.msg_controllen = sizeof(cbuf);
		n = recvmsg(A.notifyfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			log_warnx("notify: dropped an oversized message");
			continue;
		}
		buf[n] = '\0';
		cred = NULL;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS)
				cred = (struct ucred *)CMSG_DATA(cm);
		if (!cred) {
			log_warnx("notify: dropped a message without credentials");
			continue;
		}
		/* Only a child of ours may report; the pid tells which instance. */
		for (i = 0; i < A.nsvc; i++)
			for (vs = 0; vs < MAX_VERSIONS; vs++) {
				struct version *v = A.svc[i].slot[vs];
				int in;

				if (!v)
					continue;
				for (in = 0; in < v->ninst; in++)
					if (v->inst[in].alive && v->inst[in].pid == cred->pid) {
						if (proc_notify_ready(buf, (size_t)n))
							instance_ready(v, in);
						goto next;
					}
			}
		/* Anyone may send to the socket: say so, but not more than once a second. */
		if (now_ms() - A.notify_warned >= 1000) {
			log_warnx("notify: dropped a message from pid %d, not a baton child",
				  cred->pid);
			A.notify_warned = now_ms();
		}
	next:;
	}
}

/* ---- control protocol ------------------------------------------------------- */

static struct service *find_service(const char *name)
{
	int i;

	for (i = 0; i < A.nsvc; i++)
		if (!A.svc[i].gone && !strcmp(A.svc[i].conf.name, name))
			return &A.svc[i];
	return NULL;
}

static json_t *health_json(struct version *v)
{
	json_t *arr = json_array();
	int k;

	for (k = 0; k < v->ninst; k++) {
		struct check *ck = &v->inst[k].chk;

		json_array_append_new(arr, json_pack("{s:i, s:I, s:I, s:i, s:s}", "instance", k,
						     "passes", (json_int_t)ck->passes, "failures",
						     (json_int_t)ck->failures, "failing", ck->fails,
						     "last", ck->last));
	}
	return arr;
}

static json_t *rollout_json(struct service *s)
{
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	json_t *steps, *j;
	long long left = 0;
	int k;

	if (ro->stage == RO_NONE)
		return json_null();
	steps = json_array();
	for (k = 0; k < ro->nsteps; k++)
		json_array_append_new(steps, json_real(ro->steps[k] / 100.0));
	if (ro->paused)
		left = ro->bake_left;
	else if (ro->bake_end)
		left = ro->bake_end - now_ms() > 0 ? ro->bake_end - now_ms() : 0;
	j = json_pack("{s:s, s:s, s:i, s:o, s:i, s:i, s:o, s:b, s:b, s:I, s:I}", "stage",
		      stage_names[ro->stage], "strategy",
		      ro->strategy == STRATEGY_CANARY ? "canary" : "bluegreen", "version",
		      ro->new_num, "from", ro->old_num ? json_integer(ro->old_num) : json_null(),
		      "step", ro->step + 1, "nsteps", ro->nsteps, "steps", steps, "paused",
		      ro->paused, "manual", ro->manual, "bake_left_ms", (json_int_t)left,
		      "elapsed_ms", (json_int_t)(now_ms() - ro->t_start));
	json_object_set_new(j, "weight",
			    json_integer(nv && nv->phase == VP_ACTIVE ? nv->weight : 0));
	json_object_set_new(j, "bake_ms", json_integer(ro->bake_ms));
	json_object_set_new(j, "waiting_for_promote",
			    json_boolean(ro->stage == RO_STEPPING && !ro->bake_end));
	if (ro->hook_pidfd >= 0)
		json_object_set_new(j, "hook", json_string(hook_name(ro->hook)));
	if (nv && ro->stage >= RO_STEPPING) {
		json_object_set_new(j, "health", health_json(nv));
		json_object_set_new(j, "errors", json_string(nv->errors_last));
	}
	return j;
}

static json_t *pins_json(struct service *s)
{
	struct steer_cidr cidrs[256];
	__u32 vers[256];
	json_t *arr = json_array();
	char buf[64];
	int n, k;

	n = steer_pin_list(&A.st, s->id, cidrs, vers, 256);
	for (k = 0; k < n; k++) {
		steer_cidr_format(&cidrs[k], buf, sizeof(buf));
		json_array_append_new(arr,
				      json_pack("{s:s, s:i}", "cidr", buf, "version", vers[k]));
	}
	return arr;
}

static json_t *status_json(struct service *s)
{
	json_t *vs = json_array(), *listen = json_array(), *hist = json_array(), *j;
	struct steer_stats st = {0}, g;
	int i, k, jx;

	for (jx = 0; jx < s->conf.nlisten; jx++) {
		json_array_append_new(listen, json_string(s->conf.listen[jx].text));
		if (!steer_group_stats(&A.st, s->group[jx], &g)) {
			st.selected += g.selected;
			st.probes += g.probes;
			st.migrated += g.migrated;
			st.fallback += g.fallback;
			st.dropped += g.dropped;
			st.pinned += g.pinned;
			st.evicted += g.evicted;
		}
	}
	for (i = 0; i < MAX_VERSIONS; i++) {
		struct version *v = s->slot[i];
		json_t *insts, *argv;

		if (!v)
			continue;
		insts = json_array();
		argv = json_array();
		for (k = 0; v->argv[k]; k++)
			json_array_append_new(argv, json_string(v->argv[k]));
		for (k = 0; k < v->ninst; k++)
			json_array_append_new(
			    insts, json_pack("{s:i, s:i, s:b, s:b, s:s}", "instance", k, "pid",
					     v->inst[k].pid, "ready", v->inst[k].ready, "alive",
					     v->inst[k].alive, "exit",
					     v->inst[k].alive ? "" : v->inst[k].exit_desc));
		struct version_counts n = {0};
		json_t *jv;

		track_counts(&A.tr, s->id, v->num, &n);
		jv = json_pack("{s:i, s:i, s:s, s:i, s:i, s:i, s:I, s:o, s:o}", "version", v->num,
			       "slot", v->vslot, "state", phase_names[v->phase], "weight",
			       v->phase == VP_ACTIVE ? (int)v->weight : 0, "instances", v->ninst,
			       "alive", v->nalive, "age_ms", (json_int_t)(now_ms() - v->t_start),
			       "processes", insts, "command", argv);
		json_object_set_new(jv, "live", json_integer(n.live));
		json_object_set_new(jv, "accepted", json_integer((json_int_t)n.accepted));
		json_object_set_new(jv, "closed", json_integer((json_int_t)n.closed));
		json_object_set_new(jv, "migrated_in", json_integer((json_int_t)n.migrated_in));
		json_object_set_new(jv, "resets", json_integer((json_int_t)n.resets));
		json_object_set_new(jv, "signalled", json_boolean(v->t_signal != 0));
		json_object_set_new(jv, "adopted", json_boolean(v->adopted));
		if (v->zero_to_signal_us >= 0)
			json_object_set_new(jv, "zero_to_signal_us",
					    json_integer(v->zero_to_signal_us));
		json_array_append_new(vs, jv);
	}
	for (i = 0; i < s->nhist; i++)
		json_array_append_new(
		    hist, json_pack("{s:i, s:s, s:s, s:I, s:I, s:I}", "version", s->hist[i].num,
				    "state", "stopped", "how", s->hist[i].how, "accepted",
				    (json_int_t)s->hist[i].counts.accepted, "resets",
				    (json_int_t)s->hist[i].counts.resets, "migrated_in",
				    (json_int_t)s->hist[i].counts.migrated_in));
	j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "name",
		      s->conf.name, "listen", listen, "active",
		      s->active >= 0 ? json_integer(s->slot[s->active]->num) : json_null(),
		      "versions", vs, "stopped", hist, "steer", "selected", (json_int_t)st.selected,
		      "migrated", (json_int_t)st.migrated, "probes", (json_int_t)st.probes,
		      "fallback", (json_int_t)st.fallback, "dropped", (json_int_t)st.dropped,
		      "pinned", (json_int_t)st.pinned, "evicted", (json_int_t)st.evicted);
	json_object_set_new(
	    j, "steering",
	    json_string(s->conf.steering == STEER_STICKY ? "sticky" : "per-connection"));
	json_object_set_new(j, "rollout", rollout_json(s));
	json_object_set_new(j, "settings",
			    json_pack("{s:s, s:i, s:I, s:s, s:s, s:I, s:I, s:I}", "strategy",
				      s->conf.strategy == STRATEGY_CANARY ? "canary" : "bluegreen",
				      "instances", s->conf.instances, "bake_ms",
				      (json_int_t)s->conf.bake_ms, "ready",
				      ready_kind_name(s->conf.ready), "drain_policy",
				      s->conf.drain == DRAIN_WAIT_THEN_SIGNAL ? "wait-then-signal"
									      : "signal-then-wait",
				      "drain_delay_ms", (json_int_t)s->conf.drain_delay_ms,
				      "drain_timeout_ms", (json_int_t)s->conf.drain_timeout_ms,
				      "kill_after_ms", (json_int_t)s->conf.kill_after_ms));
	if (s->removed)
		json_object_set_new(j, "removed", json_true());
	json_object_set_new(j, "pins", pins_json(s));
	if (s->last_rollback.num) {
		char when[32];

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&s->last_rollback.when));
		json_object_set_new(j, "last_rollback",
				    json_pack("{s:i, s:s, s:s}", "version", s->last_rollback.num,
					      "at", when, "reason", s->last_rollback.why));
	} else {
		json_object_set_new(j, "last_rollback", json_null());
	}
	return j;
}

/* ---- commands on one service --------------------------------------------------- */

static struct version *version_by_num(struct service *s, json_int_t num)
{
	int i;

	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->slot[i] && s->slot[i]->num == num)
			return s->slot[i];
	return NULL;
}

static void req_deploy(struct client *c, struct service *s, json_t *req)
{
	json_t *argv = json_object_get(req, "argv"), *a, *jv;
	struct deploy_opts o = {.strategy = s->conf.strategy, .bake_ms = s->conf.bake_ms};
	char *args[MAX_ARGS + 1] = {NULL}, err[512];
	size_t i, n;

	jv = json_object_get(req, "adopt_pid");
	if (jv || s->conf.adopt) {
		if (!s->conf.adopt) {
			reply_err(c,
				  "deploy: %s starts its own versions (exec); --adopt-pid is for "
				  "services with adopt = yes",
				  s->conf.name);
			return;
		}
		if (!json_is_integer(jv) || json_integer_value(jv) < 2 ||
		    json_integer_value(jv) > 0x3fffffff) {
			reply_err(c,
				  "deploy: %s adopts its versions: give the new server's pid "
				  "(baton deploy %s --adopt-pid PID)",
				  s->conf.name, s->conf.name);
			return;
		}
		if (argv) {
			reply_err(c, "deploy: give either a command or --adopt-pid, not both");
			return;
		}
		o.adopt_pid = (pid_t)json_integer_value(jv);
		goto options;
	}
	if (!json_is_array(argv) || !(n = json_array_size(argv)) || n > MAX_ARGS) {
		reply_err(c, "deploy needs a command of 1..%d arguments", MAX_ARGS);
		return;
	}
	json_array_foreach(argv, i, a)
	{
		if (!json_is_string(a) || json_string_length(a) > 4096) {
			reply_err(c,
				  "deploy: every argument must be a string of at most 4096 bytes");
			return;
		}
		args[i] = (char *)json_string_value(a);
	}
	args[n] = NULL;
	if (args[0][0] != '/') {
		reply_err(c, "deploy: %s is not an absolute path", args[0]);
		return;
	}
	if (access(args[0], X_OK) < 0) {
		reply_err(c, "deploy: %s: %s", args[0], strerror(errno));
		return;
	}
options:
	jv = json_object_get(req, "strategy");
	if (jv) {
		const char *st = json_string_value(jv);

		if (st && !strcmp(st, "canary"))
			o.strategy = STRATEGY_CANARY;
		else if (st && !strcmp(st, "bluegreen"))
			o.strategy = STRATEGY_BLUEGREEN;
		else {
			reply_err(c, "deploy: strategy must be \"canary\" or \"bluegreen\"");
			return;
		}
	}
	jv = json_object_get(req, "steps");
	if (jv) {
		unsigned prev = 0;

		if (!json_is_array(jv) || !json_array_size(jv) || json_array_size(jv) > MAX_STEPS) {
			reply_err(c, "deploy: steps must be a list of 1..%d weights", MAX_STEPS);
			return;
		}
		json_array_foreach(jv, i, a)
		{
			json_int_t w = json_integer_value(a);

			if (!json_is_integer(a) || w <= (json_int_t)prev || w > WEIGHT_MAX) {
				reply_err(c, "deploy: steps must be increasing weights in basis "
					     "points, 1..10000");
				return;
			}
			o.steps[o.nsteps++] = prev = (unsigned)w;
		}
		if (prev != WEIGHT_MAX) {
			reply_err(c, "deploy: the last step must be 10000 (100%%)");
			return;
		}
	}
	jv = json_object_get(req, "bake_ms");
	if (jv) {
		if (!json_is_integer(jv) || json_integer_value(jv) < 0 ||
		    json_integer_value(jv) > 7 * 24 * 3600 * 1000LL) {
			reply_err(c, "deploy: bake_ms must be 0..604800000");
			return;
		}
		o.bake_ms = (unsigned)json_integer_value(jv);
	}
	if (deploy(s, args, &o, c, err, sizeof(err)))
		reply_err(c, "%s", err);
}

static bool in_rollout(struct client *c, struct service *s, const char *cmd)
{
	if (s->ro.stage == RO_STEPPING)
		return true;
	if (s->ro.stage == RO_NONE)
		reply_err(c,
			  "%s: no rollout in progress (baton deploy %s --strategy canary -- CMD "
			  "starts one)",
			  s->conf.name, s->conf.name);
	else
		reply_err(c, "%s: the rollout of v%d is at \"%s\"; %s applies while traffic shifts",
			  s->conf.name, s->ro.new_num, stage_names[s->ro.stage], cmd);
	return false;
}

static void req_promote(struct client *c, struct service *s, json_t *req)
{
	bool full = json_is_true(json_object_get(req, "full"));

	if (!in_rollout(c, s, "promote"))
		return;
	rollout_promote(s, full);
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message",
			   full ? "promoted to 100%" : "promoted to the next step"));
}

static void req_pause(struct client *c, struct service *s)
{
	struct rollout *ro = &s->ro;
	char msg[200];

	if (!in_rollout(c, s, "pause"))
		return;
	if (ro->paused) {
		reply_err(c, "%s: the rollout is already paused (baton promote %s continues it)",
			  s->conf.name, s->conf.name);
		return;
	}
	ro->paused = true;
	ro->bake_left = ro->bake_end ? ro->bake_end - now_ms() : 0;
	if (ro->bake_left < 0)
		ro->bake_left = 0;
	ro_timer(s, 0);
	snprintf(msg, sizeof(msg),
		 "%s: rollout of v%d paused at %.2f%%; health checks go on; baton promote %s "
		 "continues, baton abort %s rolls back",
		 s->conf.name, ro->new_num, ro_new(s)->weight / 100.0, s->conf.name, s->conf.name);
	log_info("%s", msg);
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
}

static void req_abort(struct client *c, struct service *s)
{
	char msg[300];
	int num = s->ro.new_num, old = s->ro.old_num;

	if (s->ro.stage == RO_NONE || s->ro.stage >= RO_DRAIN_OLD) {
		reply_err(c,
			  "%s: no rollout to abort (baton rollback gives traffic back to the "
			  "previous version while it runs)",
			  s->conf.name);
		return;
	}
	rollout_fail(s, RB_OPERATOR, "aborted by the operator (baton abort)");
	if (old)
		snprintf(msg, sizeof(msg),
			 "%s: rollout of v%d aborted; v%d has all new connections", s->conf.name,
			 num, old);
	else
		snprintf(msg, sizeof(msg), "%s: deploy of v%d aborted", s->conf.name, num);
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
}

/* {"weights": {"2": 1000}}: version numbers to basis points. */
static void req_weight(struct client *c, struct service *s, json_t *req)
{
	json_t *ws = json_object_get(req, "weights"), *jv;
	struct rollout *ro = &s->ro;
	struct version *nv, *ov;
	long long wn = -1, wo = -1;
	const char *key;
	char msg[200];

	if (!json_is_object(ws) || !json_object_size(ws)) {
		reply_err(c, "weight needs {\"weights\": {\"VERSION\": BASIS_POINTS, ...}}");
		return;
	}
	if (!in_rollout(c, s, "weight"))
		return;
	nv = ro_new(s);
	ov = ro_old(s);
	json_object_foreach(ws, key, jv)
	{
		char *end;
		long num = strtol(key, &end, 10);

		if (*end || !json_is_integer(jv) || json_integer_value(jv) < 0 ||
		    json_integer_value(jv) > WEIGHT_MAX) {
			reply_err(c,
				  "weight: \"%s\": expected a version number and 0..10000 basis "
				  "points",
				  key);
			return;
		}
		if (nv && num == nv->num)
			wn = json_integer_value(jv);
		else if (ov && num == ov->num)
			wo = json_integer_value(jv);
		else {
			reply_err(c,
				  "weight: v%ld does not take part in the rollout (v%d -> v%d); "
				  "only those two take weights",
				  num, ro->old_num, ro->new_num);
			return;
		}
	}
	if (wn < 0)
		wn = WEIGHT_MAX - wo;
	if (wo < 0)
		wo = WEIGHT_MAX - wn;
	if (wn + wo != WEIGHT_MAX) {
		reply_err(c, "weight: v%d and v%d must add up to 100%% (given %.2f%%)", ro->new_num,
			  ro->old_num, (wn + wo) / 100.0);
		return;
	}
	if (!ov && wn != WEIGHT_MAX) {
		reply_err(c, "weight: v%d has no running instance; v%d must keep 100%%",
			  ro->old_num, ro->new_num);
		return;
	}
	rollout_weights(s, (unsigned)wn);
	if (!ro->paused)
		ro->bake_left = ro->bake_end ? ro->bake_end - now_ms() : 0;
	ro->paused = true;
	ro->manual = true;
	ro_timer(s, 0);
	snprintf(msg, sizeof(msg),
		 "%s: v%d %.2f%%, v%d %.2f%%; rollout paused (baton promote %s continues from "
		 "the next step above)",
		 s->conf.name, ro->new_num, wn / 100.0, ro->old_num, wo / 100.0, s->conf.name);
	log_info("%s", msg);
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
}

static void req_pin(struct client *c, struct service *s, json_t *req, bool add)
{
	const char *text = json_string_value(json_object_get(req, "cidr"));
	json_t *jv = json_object_get(req, "version");
	struct steer_cidr cidr;
	char err[256], buf[64];
	struct version *v = NULL;
	int r;

	if (!text || steer_cidr_parse(text, &cidr, err, sizeof(err))) {
		reply_err(c, "%s: %s", add ? "pin" : "unpin",
			  text ? err : "needs a client CIDR such as 10.1.0.0/16 or 2001:db8::/32");
		return;
	}
	steer_cidr_format(&cidr, buf, sizeof(buf));
	if (!add) {
		r = steer_pin_del(&A.st, s->id, &cidr);
		if (r == -ENOENT)
			reply_err(c, "unpin: %s has no pin for %s (baton status %s lists them)",
				  s->conf.name, buf, s->conf.name);
		else if (r)
			reply_err(c, "unpin: %s", strerror(-r));
		else
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", "pin removed"));
		if (!r)
			log_info("%s: unpinned %s", s->conf.name, buf);
		return;
	}
	if (json_is_integer(jv))
		v = version_by_num(s, json_integer_value(jv));
	if (!v || v->phase == VP_ABORTING) {
		reply_err(c, "pin: %s has no running v%lld (baton status %s lists its versions)",
			  s->conf.name, json_is_integer(jv) ? (long long)json_integer_value(jv) : 0,
			  s->conf.name);
		return;
	}
	r = steer_pin_set(&A.st, s->id, &cidr, v->num);
	if (r) {
		reply_err(c, "pin: %s%s", strerror(-r),
			  r == -E2BIG || r == -ENOSPC ? " (too many pins; remove some)" : "");
		return;
	}
	log_info("%s: clients in %s pinned to v%d", s->conf.name, buf, v->num);
	snprintf(err, sizeof(err), "clients in %s go to v%d%s", buf, v->num,
		 v->phase == VP_ACTIVE ? "" : " once it is active (until then: by weight)");
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", err));
}

static void handle_request(struct client *c, json_t *req)
{
	const char *cmd = NULL, *name = NULL;
	struct service *s = NULL;
	char err[512];
	json_t *jv;

	if (!json_is_object(req) || json_unpack(req, "{s:s}", "cmd", &cmd)) {
		reply_err(c, "bad request: expected a JSON object with a \"cmd\" string");
		return;
	}
	jv = json_object_get(req, "service");
	if (jv) {
		if (!json_is_string(jv)) {
			reply_err(c, "bad request: \"service\" must be a string");
			return;
		}
		name = json_string_value(jv);
		s = find_service(name);
	}
	if (!strcmp(cmd, "status")) {
		json_t *arr = json_array();
		int i;

		if (name && !s) {
			json_decref(arr);
			reply_err(c, "unknown service %s (baton status lists them)", name);
			return;
		}
		for (i = 0; i < A.nsvc; i++)
			if (!A.svc[i].gone && (!s || s == &A.svc[i]))
				json_array_append_new(arr, status_json(&A.svc[i]));
		reply(c, json_pack("{s:b, s:o}", "ok", 1, "services", arr));
		return;
	}
	if (c->readonly) {
		log_warnx("control: refused \"%s\" from uid %d pid %d (group %s is read-only)", cmd,
			  (int)c->uid, (int)c->pid, A.cfg.agent.control_group);
		reply_err(c,
			  "permission denied: %s changes state; members of group %s may only use "
			  "status and watch (run it as root)",
			  cmd, A.cfg.agent.control_group);
		return;
	}
	if (!strcmp(cmd, "reload")) {
		char msg[1024];

		if (reload(msg, sizeof(msg)))
			reply_err(c, "%s", msg);
		else
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
		return;
	}
	if (!strcmp(cmd, "shutdown")) {
		int i, vs, n = 0;

		A.stop_children = json_is_true(json_object_get(req, "stop"));
		if (!A.stop_children) {
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message",
					   "agent exiting; services keep running"));
			A.quit = true;
			return;
		}
		for (i = 0; i < A.nsvc; i++) {
			hook_kill(&A.svc[i]);
			if (A.svc[i].ro.stage != RO_NONE)
				rollout_end(&A.svc[i], false, "the agent is shutting down", false);
			for (vs = 0; vs < MAX_VERSIONS; vs++) {
				struct version *v = A.svc[i].slot[vs];

				if (!v)
					continue;
				n++;
				checks_stop(v);
				if (v->phase == VP_STARTING)
					version_abort(v, "agent shutting down");
				else if (v->phase == VP_ACTIVE || v->phase == VP_DRAIN_DELAY ||
					 v->phase == VP_DRAIN_WAIT) {
					A.svc[i].active = -1;
					v->phase = VP_DRAIN_DELAY;
					push_policy(&A.svc[i]);
					drain_begin(v);
					if (A.svc[i].slot[vs] && (v->phase == VP_DRAIN_DELAY ||
								  v->phase == VP_DRAIN_WAIT))
						drain_signal(v);
				}
			}
		}
		A.shutdown_waiter = c;
		c->waiting = NULL;
		log_info("shutdown: stopping %d version(s)", n);
		check_shutdown_done();
		return;
	}
	{
		static const char *const known[] = {"deploy",  "rollback", "abort",
						    "promote", "pause",	   "weight",
						    "pin",     "unpin",	   "adopt"};
		size_t k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (!strcmp(cmd, known[k]))
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			reply_err(c,
				  "unknown command \"%s\" (known: status, deploy, rollback, abort, "
				  "promote, pause, weight, pin, unpin, adopt, reload, shutdown)",
				  cmd);
			return;
		}
	}
	if (!name) {
		reply_err(c, "%s needs a service name", cmd);
		return;
	}
	if (!s) {
		reply_err(c, "unknown service %s (baton status lists them)", name);
		return;
	}
	if (!strcmp(cmd, "rollback")) {
		if (rollback(s, err, sizeof(err)))
			reply_err(c, "%s", err);
		else
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", err));
	} else if (!strcmp(cmd, "deploy")) {
		req_deploy(c, s, req);
	} else if (!strcmp(cmd, "abort")) {
		req_abort(c, s);
	} else if (!strcmp(cmd, "promote")) {
		req_promote(c, s, req);
	} else if (!strcmp(cmd, "pause")) {
		req_pause(c, s);
	} else if (!strcmp(cmd, "weight")) {
		req_weight(c, s, req);
	} else if (!strcmp(cmd, "pin")) {
		req_pin(c, s, req, true);
	} else if (!strcmp(cmd, "adopt")) {
		json_t *jp = json_object_get(req, "pid");

		if (!s->conf.adopt)
			reply_err(c,
				  "adopt: %s starts its own versions (exec); set adopt = yes in "
				  "[service %s] to adopt servers started outside baton",
				  s->conf.name, s->conf.name);
		else if (!json_is_integer(jp) || json_integer_value(jp) < 2 ||
			 json_integer_value(jp) > 0x3fffffff)
			reply_err(c, "adopt needs the server's pid (baton adopt %s --pid PID)",
				  s->conf.name);
		else if (adopt_first(s, (pid_t)json_integer_value(jp), err, sizeof(err)))
			reply_err(c, "adopt: %s", err);
		else
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", err));
	} else {
		req_pin(c, s, req, false);
	}
}

static void client_close(struct client *c)
{
	int i;

	if (c->closed)
		return;
	if (c->waiting) {
		c->waiting->ro.waiter = NULL; /* the deploy goes on without a listener */
		c->waiting = NULL;
	}
	if (A.shutdown_waiter == c)
		A.shutdown_waiter = NULL;
	ep_del(c->fd);
	close(c->fd);
	if (c->tfd >= 0) {
		ep_del(c->tfd);
		close(c->tfd);
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (A.clients[i] == c)
			A.clients[i] = NULL;
	/* Later events of this epoll batch may still name c: free it after the batch. */
	c->closed = true;
	c->next_dead = A.dead_clients;
	A.dead_clients = c;
}

/* Is uid (primary group gid) a member of group want? */
static bool in_group(uid_t uid, gid_t gid, gid_t want)
{
	gid_t groups[256];
	int n = 256, i;
	struct passwd *pw;

	if (gid == want)
		return true;
	pw = getpwuid(uid);
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

static void refuse(int fd, const char *msg)
{
	json_t *m = json_pack("{s:b, s:s}", "ok", 0, "error", msg);

	ctl_send(fd, m);
	json_decref(m);
	close(fd);
}

/* Deadline for the request being read: CTL_READ_TIMEOUT_MS from its first byte. */
static void client_timer(struct client *c, bool on)
{
	struct itimerspec its = {0};

	if (on == c->timer_armed)
		return;
	if (on) {
		its.it_value.tv_sec = CTL_READ_TIMEOUT_MS / 1000;
		its.it_value.tv_nsec = (CTL_READ_TIMEOUT_MS % 1000) * 1000000L;
	}
	timerfd_settime(c->tfd, 0, &its, NULL);
	c->timer_armed = on;
}

static void on_control(void)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct client *c;
	bool readonly;
	char msg[256];
	int fd, i;

	for (;;) {
		fd = accept4(A.ctlfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
			refuse(fd, "permission denied: cannot tell who is calling");
			continue;
		}
		readonly = cr.uid != 0;
		if (readonly && !(A.cfg.agent.control_gid &&
				  in_group(cr.uid, cr.gid, A.cfg.agent.control_gid))) {
			log_warnx("control: refused uid %d pid %d (not root%s%s)", (int)cr.uid,
				  (int)cr.pid, A.cfg.agent.control_gid ? " nor in group " : "",
				  A.cfg.agent.control_group);
			snprintf(msg, sizeof(msg),
				 "permission denied: the baton agent answers root%s%s",
				 A.cfg.agent.control_gid ? " and, read-only, members of group "
							 : " only",
				 A.cfg.agent.control_group);
			refuse(fd, msg);
			continue;
		}
		for (i = 0; i < MAX_CLIENTS && A.clients[i]; i++)
			;
		c = i < MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			refuse(fd, "agent busy: too many control clients, try again");
			continue;
		}
		c->fd = fd;
		c->readonly = readonly;
		c->uid = cr.uid;
		c->pid = cr.pid;
		c->tokens = CTL_BURST;
		c->refill = now_ms();
		c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (c->tfd < 0) {
			free(c);
			refuse(fd, "agent busy: out of timers, try again");
			continue;
		}
		A.clients[i] = c;
		ep_add(fd, &c->ev, EV_CLIENT, c, 0, EPOLLIN | EPOLLRDHUP);
		ep_add(c->tfd, &c->tev, EV_CLIENT_TIMER, c, 0, EPOLLIN);
		client_timer(c, true); /* the first request must come in time too */
	}
}

static void on_client_timer(struct client *c)
{
	if (c->closed)
		return;
	log_warnx("control: uid %d pid %d sent no complete request within %d ms; closing",
		  (int)c->uid, (int)c->pid, CTL_READ_TIMEOUT_MS);
	reply_err(c, "timeout: no complete request line within %d ms", CTL_READ_TIMEOUT_MS);
	client_close(c);
}

/* Token bucket: CTL_BURST requests, refilled at CTL_RATE per second. */
static bool client_rate_ok(struct client *c)
{
	long long t = now_ms();

	c->tokens += (t - c->refill) * CTL_RATE / 1000.0;
	if (c->tokens > CTL_BURST)
		c->tokens = CTL_BURST;
	c->refill = t;
	if (c->tokens < 1)
		return false;
	c->tokens -= 1;
	return true;
}

static void on_client(struct client *c, unsigned events)
{
	json_error_t jerr;
	json_t *req;
	char *nl;
	ssize_t n;

	if (c->closed)
		return;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		client_close(c);
		return;
	}
	(void)events;
	c->len += n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t line = nl - c->buf;

		if (!client_rate_ok(c)) {
			log_warnx("control: uid %d pid %d sends more than %d requests per second; "
				  "closing",
				  (int)c->uid, (int)c->pid, CTL_RATE);
			reply_err(c,
				  "too many requests (more than %d per second after a burst of "
				  "%d); slow down",
				  CTL_RATE, CTL_BURST);
			client_close(c);
			return;
		}
		req = json_loadb(c->buf, line, 0, &jerr);
		memmove(c->buf, nl + 1, c->len - line - 1);
		c->len -= line + 1;
		if (!req) {
			reply_err(c, "bad request: not JSON (%s)", jerr.text);
			continue;
		}
		handle_request(c, req);
		json_decref(req);
		if (A.quit || c->closed)
			return;
	}
	if (c->len == sizeof(c->buf)) {
		reply_err(c, "bad request: line longer than %d bytes", CTL_MAX_LINE);
		client_close(c);
		return;
	}
	/* Waiting for the rest of a line is bounded; an idle client between requests is not. */
	client_timer(c, c->len > 0);
}

static void check_shutdown_done(void)
{
	int i, vs;

	if (!A.stop_children)
		return;
	for (i = 0; i < A.nsvc; i++)
		for (vs = 0; vs < MAX_VERSIONS; vs++)
			if (A.svc[i].slot[vs])
				return;
	if (A.shutdown_waiter) {
		reply(A.shutdown_waiter, json_pack("{s:b, s:s}", "ok", 1, "message",
						   "all versions stopped; agent exiting"));
		A.shutdown_waiter = NULL;
	}
	A.quit = true;
}

/* ---- state file: what a restarted agent needs to take over ------------------ */

/*
 * The pinned maps keep steering and counting while no agent runs; the
 * state file keeps what only the agent knew: which processes belong to
 * which version, each version's phase and deadlines, the listeners' socket
 * cookies (to find them again in the children), and the rollout.  Times
 * are CLOCK_MONOTONIC milliseconds, which mean the same to every process
 * until the next boot (which also empties /run and bpffs).
 */
#define STATE_FORMAT 1

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot; 0 if gone. */
static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd, k;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (k = 2; k < 22 && p; k++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

static json_t *state_version(struct version *v)
{
	json_t *insts = json_array(), *argv = json_array(), *j;
	int i, k;

	for (k = 0; v->argv[k]; k++)
		json_array_append_new(argv, json_string(v->argv[k]));
	for (i = 0; i < v->ninst; i++) {
		struct instance *in = &v->inst[i];
		json_t *cookies = json_array();

		for (k = 0; k < v->svc->conf.nlisten; k++)
			json_array_append_new(cookies, json_integer((json_int_t)in->cookie[k]));
		json_array_append_new(
		    insts, json_pack("{s:i, s:I, s:b, s:b, s:s, s:o}", "pid", in->pid, "starttime",
				     (json_int_t)in->starttime, "ready", in->ready, "alive",
				     in->alive, "exit", in->exit_desc, "cookies", cookies));
	}
	j = json_pack("{s:i, s:i, s:i, s:i, s:b, s:b, s:I, s:I, s:I, s:I, s:o, s:o}", "num", v->num,
		      "vslot", v->vslot, "phase", v->phase, "weight", v->weight, "placed",
		      v->placed, "adopted", v->adopted, "t_start", (json_int_t)v->t_start,
		      "t_switch", (json_int_t)v->t_switch, "t_signal", (json_int_t)v->t_signal,
		      "deadline", (json_int_t)v->deadline, "argv", argv, "instances", insts);
	return j;
}

static json_t *state_rollout(struct service *s)
{
	struct rollout *ro = &s->ro;
	json_t *steps = json_array();
	int k;

	for (k = 0; k < ro->nsteps; k++)
		json_array_append_new(steps, json_integer(ro->steps[k]));
	return json_pack("{s:i, s:i, s:o, s:i, s:i, s:b, s:b, s:I, s:I, s:i, s:i, s:i, s:i, s:I, "
			 "s:I, s:i, s:i, s:I}",
			 "stage", ro->stage, "strategy", ro->strategy, "steps", steps, "bake_ms",
			 ro->bake_ms, "step", ro->step, "paused", ro->paused, "manual", ro->manual,
			 "bake_end", (json_int_t)ro->bake_end, "bake_left",
			 (json_int_t)ro->bake_left, "newv", ro->newv, "oldv", ro->oldv, "new_num",
			 ro->new_num, "old_num", ro->old_num, "t_start", (json_int_t)ro->t_start,
			 "ready_ms", (json_int_t)ro->ready_ms, "hook", ro->hook, "hook_pid",
			 ro->hook_pidfd >= 0 ? ro->hook_pid : 0, "hook_starttime",
			 (json_int_t)(ro->hook_pidfd >= 0 ? proc_starttime(ro->hook_pid) : 0));
}

static char *state_text(void)
{
	json_t *svcs = json_array(), *root;
	char *text;
	int i, k;

	for (i = 0; i < A.nsvc; i++) {
		struct service *s = &A.svc[i];
		json_t *vs, *groups, *j;

		if (s->gone)
			continue;
		vs = json_array();
		groups = json_array();
		for (k = 0; k < s->conf.nlisten; k++)
			json_array_append_new(groups, json_pack("{s:s, s:i}", "listen",
								s->conf.listen[k].text, "group",
								s->group[k]));
		for (k = 0; k < MAX_VERSIONS; k++)
			if (s->slot[k])
				json_array_append_new(vs, state_version(s->slot[k]));
		j = json_pack("{s:s, s:b, s:i, s:o, s:i, s:i, s:i, s:o, s:o}", "name", s->conf.name,
			      "removed", s->removed, "id", s->id, "groups", groups, "next_num",
			      s->next_num, "active", s->active, "previous", s->previous, "versions",
			      vs, "rollout", state_rollout(s));
		if (s->last_rollback.num)
			json_object_set_new(j, "last_rollback",
					    json_pack("{s:i, s:I, s:s}", "num",
						      s->last_rollback.num, "when",
						      (json_int_t)s->last_rollback.when, "why",
						      s->last_rollback.why));
		json_array_append_new(svcs, j);
	}
	root = json_pack("{s:i, s:i, s:o}", "format", STATE_FORMAT, "agent_pid", (int)getpid(),
			 "services", svcs);
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

/* Write the state file if it changed: a temporary file renamed over it, mode 0600. */
static void state_save(void)
{
	char path[300], tmp[310];
	char *text = state_text();
	size_t len;
	int fd;

	if (!text)
		return;
	if (A.state_last && !strcmp(A.state_last, text)) {
		free(text);
		return;
	}
	snprintf(path, sizeof(path), "%s/state.json", A.cfg.agent.run_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    close(fd) < 0 || rename(tmp, path) < 0) {
		log_warn("cannot write the state file %s", path);
		if (fd >= 0)
			unlink(tmp);
		free(text);
		return;
	}
	free(A.state_last);
	A.state_last = text;
}

static void state_remove(void)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/state.json", A.cfg.agent.run_dir);
	unlink(path);
}

/* ---- taking over from an agent that died or was stopped ------------------------ */

static int pidfd_getfd(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

/*
 * Copy back, from a running instance, the listener whose socket cookie is
 * cookie: the agent's copies died with the previous agent.  Looks at fd 3
 * (and what follows: LISTEN_FDS order) first, then every fd the process has.
 */
static int listener_from(struct instance *in, __u64 cookie)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)in->pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		__u64 c = 0;
		socklen_t len = sizeof(c);
		int n, cand;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		n = atoi(de->d_name);
		cand = pidfd_getfd(in->pidfd, n);
		if (cand < 0)
			continue;
		if (!getsockopt(cand, SOL_SOCKET, SO_COOKIE, &c, &len) && c == cookie) {
			fd = cand;
			break;
		}
		close(cand);
	}
	closedir(d);
	return fd;
}

static bool holds_listeners(enum vphase p)
{
	/* The agent keeps copies until the exit signal (drain_signal releases them). */
	return p == VP_STARTING || p == VP_ACTIVE || p == VP_DRAIN_DELAY || p == VP_DRAIN_WAIT;
}

static struct version *version_restore(struct service *s, json_t *jv, char *err, size_t errlen)
{
	json_t *insts = json_object_get(jv, "instances"), *ji, *a;
	struct version *v;
	size_t i, k;
	int j;

	v = version_alloc(s, err, errlen);
	if (!v)
		return NULL;
	v->num = json_integer_value(json_object_get(jv, "num"));
	v->vslot = json_integer_value(json_object_get(jv, "vslot"));
	v->phase = json_integer_value(json_object_get(jv, "phase"));
	v->weight = json_integer_value(json_object_get(jv, "weight"));
	v->placed = json_is_true(json_object_get(jv, "placed"));
	v->adopted = json_is_true(json_object_get(jv, "adopted"));
	v->t_start = json_integer_value(json_object_get(jv, "t_start"));
	v->t_switch = json_integer_value(json_object_get(jv, "t_switch"));
	v->t_signal = json_integer_value(json_object_get(jv, "t_signal"));
	v->deadline = json_integer_value(json_object_get(jv, "deadline"));
	if (v->num < 1 || v->vslot < 0 || v->vslot >= MAX_VERSIONS || s->slot[v->vslot] ||
	    (int)v->phase < VP_STARTING || v->phase > VP_ABORTING || v->weight > WEIGHT_MAX ||
	    !json_is_array(insts) || json_array_size(insts) > MAX_INSTANCES ||
	    !json_array_size(json_object_get(jv, "argv")) ||
	    json_array_size(json_object_get(jv, "argv")) > MAX_ARGS) {
		snprintf(err, errlen, "%s: the state file has a bad version entry", s->conf.name);
		free(v);
		return NULL;
	}
	json_array_foreach(json_object_get(jv, "argv"), k, a) v->argv[k] =
	    strdup(json_string_value(a) ?: "");
	v->ninst = json_array_size(insts);
	v->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->tfd < 0 || ep_add(v->tfd, &v->ev, EV_TIMER, v, 0, EPOLLIN)) {
		snprintf(err, errlen, "timerfd: %s", strerror(errno));
		version_free(v);
		return NULL;
	}
	json_array_foreach(insts, i, ji)
	{
		struct instance *in = &v->inst[i];
		json_t *cookies = json_object_get(ji, "cookies");

		in->pid = json_integer_value(json_object_get(ji, "pid"));
		in->starttime = json_integer_value(json_object_get(ji, "starttime"));
		in->ready = json_is_true(json_object_get(ji, "ready"));
		snprintf(in->exit_desc, sizeof(in->exit_desc), "%s",
			 json_string_value(json_object_get(ji, "exit")) ?: "");
		for (k = 0; k < json_array_size(cookies) && k < MAX_LISTEN; k++)
			in->cookie[k] = json_integer_value(json_array_get(cookies, k));
		if (in->ready)
			v->nready++;
		if (!json_is_true(json_object_get(ji, "alive")))
			continue;
		if (v->adopted && i > 0) {
			/* Instance 0's process holds these sockets too. */
			if (v->inst[0].alive) {
				in->alive = true;
				v->nalive++;
				for (j = 0; j < s->conf.nlisten && holds_listeners(v->phase); j++)
					if (in->cookie[j])
						in->lfd[j] =
						    listener_from(&v->inst[0], in->cookie[j]);
			}
			continue;
		}
		/* The same pid and start time: the same process, not a reused pid. */
		if (in->pid <= 1 || !in->starttime || proc_starttime(in->pid) != in->starttime ||
		    (in->pidfd = (int)syscall(SYS_pidfd_open, in->pid, 0)) < 0) {
			in->pidfd = -1;
			snprintf(in->exit_desc, sizeof(in->exit_desc), "exited while no agent ran");
			log_warnx("%s v%d: instance %d (pid %d) exited while no agent ran",
				  s->conf.name, v->num, (int)i, in->pid);
			continue;
		}
		in->alive = true;
		v->nalive++;
		ep_add(in->pidfd, &in->ev, EV_PIDFD, v, i, EPOLLIN);
		if (!holds_listeners(v->phase))
			continue;
		for (j = 0; j < s->conf.nlisten; j++) {
			if (v->adopted && !in->cookie[j])
				continue; /* this instance had no socket on that address */
			in->lfd[j] = listener_from(in, in->cookie[j]);
			if (in->lfd[j] < 0)
				log_warnx("%s v%d: instance %d (pid %d) no longer has its %s "
					  "listener",
					  s->conf.name, v->num, (int)i, in->pid,
					  s->conf.listen[j].text);
		}
	}
	s->slot[v->vslot] = v;
	return v;
}

/* Put a version back on its timers, as its phase had them. */
static void version_resume(struct version *v)
{
	struct service *s = v->svc;
	struct version_counts n;
	int i, j;

	/* Slots of instances that are gone leave the map; the rest is there already. */
	for (i = 0; i < v->ninst; i++)
		if (!v->inst[i].alive)
			for (j = 0; j < s->conf.nlisten; j++)
				steer_remove(&A.st, steer_slot(s->group[j], v->vslot, i));
	switch (v->phase) {
	case VP_DRAIN_DELAY:
		if (s->ro.stage == RO_AFTER_SWITCH && s->ro.oldv == v->vslot)
			break; /* kept for the after-switch hook: handled with the rollout */
		timer_set(v, v->t_switch + s->conf.drain_delay_ms);
		break;
	case VP_DRAIN_WAIT:
		timer_set(v, v->deadline);
		track_watch(&A.tr, s->id, v->num, 1);
		if (!track_counts(&A.tr, s->id, v->num, &n) && n.live <= 0) {
			log_info("%s: no connections left", vname(v));
			drain_signal(v);
		}
		break;
	case VP_DRAINING:
	case VP_TERMINATING:
	case VP_ABORTING:
		timer_set(v, v->deadline);
		break;
	default:
		break;
	}
}

static void kill_orphan_hook(struct service *s, json_t *jr)
{
	pid_t pid = json_integer_value(json_object_get(jr, "hook_pid"));
	unsigned long long st = json_integer_value(json_object_get(jr, "hook_starttime"));

	if (pid > 1 && st && proc_starttime(pid) == st) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		log_warnx(
		    "%s: killed the %s hook (pid %d) the previous agent left running", s->conf.name,
		    hook_name((enum hook_point)json_integer_value(json_object_get(jr, "hook"))),
		    (int)pid);
	}
}

/* The rollout the previous agent was running: continue it, or end it safely. */
static void rollout_resume(struct service *s, json_t *jr)
{
	struct rollout *ro = &s->ro;
	struct version *nv;
	json_t *a;
	size_t k;
	int i;

	memset(ro, 0, sizeof(*ro));
	ro->hook_pidfd = -1;
	ro->newv = ro->oldv = -1;
	ro->stage = json_integer_value(json_object_get(jr, "stage"));
	if (ro->stage == RO_NONE || ro->stage > RO_AFTER_DRAIN) {
		ro->stage = RO_NONE;
		return;
	}
	ro->strategy = json_integer_value(json_object_get(jr, "strategy"));
	json_array_foreach(json_object_get(jr, "steps"), k, a) if (k < MAX_STEPS)
	    ro->steps[ro->nsteps++] = json_integer_value(a);
	ro->bake_ms = json_integer_value(json_object_get(jr, "bake_ms"));
	ro->step = json_integer_value(json_object_get(jr, "step"));
	ro->paused = json_is_true(json_object_get(jr, "paused"));
	ro->manual = json_is_true(json_object_get(jr, "manual"));
	ro->bake_end = json_integer_value(json_object_get(jr, "bake_end"));
	ro->bake_left = json_integer_value(json_object_get(jr, "bake_left"));
	ro->newv = json_integer_value(json_object_get(jr, "newv"));
	ro->oldv = json_integer_value(json_object_get(jr, "oldv"));
	ro->new_num = json_integer_value(json_object_get(jr, "new_num"));
	ro->old_num = json_integer_value(json_object_get(jr, "old_num"));
	ro->t_start = json_integer_value(json_object_get(jr, "t_start"));
	ro->ready_ms = json_integer_value(json_object_get(jr, "ready_ms"));
	ro->hook = json_integer_value(json_object_get(jr, "hook"));
	if (ro->newv < -1 || ro->newv >= MAX_VERSIONS || ro->oldv < -1 ||
	    ro->oldv >= MAX_VERSIONS || !ro->nsteps || ro->step < 0 || ro->step >= ro->nsteps) {
		log_warnx("%s: the state file has a bad rollout entry; ignoring it", s->conf.name);
		ro->stage = RO_NONE;
		ro->newv = ro->oldv = -1;
		return;
	}
	/* A slot that now holds another version is not the one the rollout meant. */
	if (ro->newv >= 0 && (!s->slot[ro->newv] || s->slot[ro->newv]->num != ro->new_num))
		ro->newv = -1;
	if (ro->oldv >= 0 && (!s->slot[ro->oldv] || s->slot[ro->oldv]->num != ro->old_num))
		ro->oldv = -1;
	nv = ro_new(s);
	kill_orphan_hook(s, jr);
	switch (ro->stage) {
	case RO_BEFORE_START:
	case RO_STARTING:
		/* Readiness reports sent while no agent listened are lost: start over. */
		rollout_fail(s, RB_RESTART,
			     "the agent restarted while the new version was starting; deploy "
			     "it again");
		return;
	case RO_AFTER_SWITCH:
		rollout_fail(s, RB_RESTART,
			     "the agent restarted while the after-switch hook ran (its result "
			     "is unknown)");
		return;
	case RO_AFTER_DRAIN:
		rollout_end(s, false,
			    "the agent restarted while the after-drain hook ran (its "
			    "result is unknown)",
			    false);
		log_warnx("%s: the after-drain hook's result is unknown: the agent restarted while "
			  "it ran",
			  s->conf.name);
		return;
	case RO_DRAIN_OLD:
		if (!ro_old(s))
			hook_start(s, HOOK_AFTER_DRAIN);
		return;
	case RO_STEPPING:
		if (!nv) {
			rollout_end(s, false, "the new version is gone", false);
			return;
		}
		log_info("%s: continuing the rollout of v%d at %.2f%% (step %d of %d)",
			 s->conf.name, ro->new_num, nv->weight / 100.0, ro->step + 1, ro->nsteps);
		for (i = 0; i < nv->ninst; i++)
			nv->inst[i].chk.next_at = now_ms();
		nv->next_sample = now_ms();
		if (s->conf.health != HEALTH_NONE || s->conf.max_error_bp != ERROR_RATE_OFF)
			timer_tick(nv, HEALTH_TICK_MS);
		if (!ro->paused && ro->bake_end)
			ro_timer(s, ro->bake_end);
		for (i = 0; i < nv->ninst; i++)
			if (!nv->inst[i].alive) {
				char why[200];

				snprintf(why, sizeof(why),
					 "%s instance %d (pid %d) exited while no agent ran",
					 vname(nv), i, nv->inst[i].pid);
				rollout_fail(s, RB_EXIT, why);
				return;
			}
		return;
	default:
		return;
	}
}

/*
 * Take over the services the previous agent left.  Returns 1 when there was
 * a state to take over, 0 when there was none, -1 with err when it does not
 * fit this configuration.
 */
static json_t *state_load(char *err, size_t errlen)
{
	char path[300];
	json_error_t je;
	json_t *st;

	snprintf(path, sizeof(path), "%s/state.json", A.cfg.agent.run_dir);
	if (access(path, F_OK) < 0)
		return NULL;
	st = json_load_file(path, 0, &je);
	if (!st || json_integer_value(json_object_get(st, "format")) != STATE_FORMAT ||
	    !json_is_array(json_object_get(st, "services"))) {
		snprintf(err, errlen,
			 "%.200s is unreadable or from another baton version (%.100s); if no "
			 "services are running, remove it",
			 path, st ? "unknown format" : je.text);
		json_decref(st);
		return json_null();
	}
	return st;
}

/* Is listen address j of service s in the state as the same group? */
static json_t *state_service(json_t *st, const char *name)
{
	json_t *js;
	size_t i;

	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		if (!json_is_true(json_object_get(js, "removed")) &&
		    !strcmp(json_string_value(json_object_get(js, "name")) ?: "", name))
			return js;
	}
	return NULL;
}

/* ---- Prometheus metrics: GET /metrics on [agent] metrics ------------------------- */

#define METRICS_CLIENTS	   16
#define METRICS_TIMEOUT_MS 2000

struct mclient {
	int fd;
	long long t0;
	size_t len;
	char buf[1024];
	struct evsrc ev;
};

static struct mclient *mclients[METRICS_CLIENTS];
/* Closed in this epoll batch, freed after it (each client is closed once). */
static struct mclient *mclient_dead[METRICS_CLIENTS];
static int nmclient_dead;

static void mclient_close(struct mclient *m)
{
	int i;

	ep_del(m->fd);
	close(m->fd);
	m->fd = -1;
	for (i = 0; i < METRICS_CLIENTS; i++)
		if (mclients[i] == m) {
			mclients[i] = NULL;
			mclient_dead[nmclient_dead++] = m;
		}
}

/* Label values: backslash, double quote and newline escaped, as the format asks. */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

static void metric_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static char *metrics_text(size_t *len)
{
	static const char *const result_names[] = {"completed", "rolled_back", "failed"};
	struct version_counts n;
	struct steer_stats st, g;
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	int i, k, j;

	if (!f)
		return NULL;
	metric_head(f, "baton_info", "gauge", "The baton agent's build.");
	fprintf(f, "baton_info{version=\"%s\"} 1\n", BATON_VERSION_STR);

	/* Per version, from the kernel's counters. */
	static const struct {
		const char *name, *type, *help;
	} vm[] = {
	    {"baton_version_live_connections", "gauge",
	     "Connections of the version established and not closed (accepted or queued)."},
	    {"baton_version_accepted_connections_total", "counter",
	     "Connections of the version that completed the handshake."},
	    {"baton_version_closed_connections_total", "counter",
	     "Connections of the version closed."},
	    {"baton_version_migrated_in_connections_total", "counter",
	     "Connections moved to the version from a closing listener."},
	    {"baton_version_resets_total", "counter",
	     "Connections the version's server side aborted with a RST."},
	    {"baton_version_lost_connections_total", "counter",
	     "Connections closed because the process holding them exited."},
	    {"baton_version_weight_ratio", "gauge",
	     "Share of new connections the version takes by weight, 0 to 1."},
	};
	for (k = 0; k < (int)(sizeof(vm) / sizeof(vm[0])); k++) {
		metric_head(f, vm[k].name, vm[k].type, vm[k].help);
		for (i = 0; i < A.nsvc; i++)
			for (j = 0; j < MAX_VERSIONS; j++) {
				struct version *v = A.svc[i].slot[j];
				unsigned long long val = 0;

				if (!v || A.svc[i].gone)
					continue;
				memset(&n, 0, sizeof(n));
				track_counts(&A.tr, A.svc[i].id, v->num, &n);
				switch (k) {
				case 0:
					val = n.live > 0 ? (unsigned long long)n.live : 0;
					break;
				case 1:
					val = n.accepted;
					break;
				case 2:
					val = n.closed;
					break;
				case 3:
					val = n.migrated_in;
					break;
				case 4:
					val = n.resets;
					break;
				case 5:
					val = n.lost;
					break;
				}
				fprintf(f, "%s{service=\"", vm[k].name);
				put_label(f, A.svc[i].conf.name);
				fprintf(f, "\",version=\"v%d\"", v->num);
				if (k == 0)
					fprintf(f, ",state=\"%s\"", phase_names[v->phase]);
				if (k == 6)
					fprintf(f, "} %.4f\n",
						v->phase == VP_ACTIVE
						    ? v->weight / (double)WEIGHT_MAX
						    : 0.0);
				else
					fprintf(f, "} %llu\n", val);
			}
	}

	/* Per service, from the steering program. */
	static const char *const sm[][2] = {
	    {"baton_steer_selected_total", "New connections placed by weight."},
	    {"baton_steer_pinned_total", "New connections placed by a client pin."},
	    {"baton_steer_migrated_total", "Requests of a closing listener placed on a live one."},
	    {"baton_steer_fallback_total",
	     "Placements where the chosen socket was gone and another live one was used."},
	    {"baton_steer_dropped_total", "New connections refused: no live socket."},
	    {"baton_steer_evicted_total",
	     "Pending decisions replaced before their handshake completed (each such "
	     "connection is not counted)."},
	};
	for (k = 0; k < 6; k++) {
		metric_head(f, sm[k][0], "counter", sm[k][1]);
		for (i = 0; i < A.nsvc; i++) {
			if (A.svc[i].gone)
				continue;
			memset(&st, 0, sizeof(st));
			for (j = 0; j < A.svc[i].conf.nlisten; j++)
				if (!steer_group_stats(&A.st, A.svc[i].group[j], &g)) {
					st.selected += g.selected;
					st.pinned += g.pinned;
					st.migrated += g.migrated;
					st.fallback += g.fallback;
					st.dropped += g.dropped;
					st.evicted += g.evicted;
				}
			fprintf(f, "%s{service=\"", sm[k][0]);
			put_label(f, A.svc[i].conf.name);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)(k == 0   ? st.selected
						     : k == 1 ? st.pinned
						     : k == 2 ? st.migrated
						     : k == 3 ? st.fallback
						     : k == 4 ? st.dropped
							      : st.evicted));
		}
	}
	metric_head(f, "baton_rollouts_total", "counter", "Deploys that ended, by result.");
	for (i = 0; i < A.nsvc; i++)
		for (k = 0; k < RR_COUNT && !A.svc[i].gone; k++) {
			fputs("baton_rollouts_total{service=\"", f);
			put_label(f, A.svc[i].conf.name);
			fprintf(f, "\",result=\"%s\"} %lu\n", result_names[k],
				A.svc[i].rollouts[k]);
		}
	metric_head(f, "baton_rollbacks_total", "counter",
		    "Rollbacks to the previous version, by reason.");
	for (i = 0; i < A.nsvc; i++)
		for (k = 0; k < RB_COUNT && !A.svc[i].gone; k++) {
			fputs("baton_rollbacks_total{service=\"", f);
			put_label(f, A.svc[i].conf.name);
			fprintf(f, "\",reason=\"%s\"} %lu\n", rb_names[k], A.svc[i].rollbacks[k]);
		}
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

static void mclient_answer(struct mclient *m)
{
	char head[256], *body = NULL;
	size_t blen = 0;
	const char *status = "200 OK";
	int hl;

	if (strncmp(m->buf, "GET /metrics ", 13) && strncmp(m->buf, "GET /metrics?", 13)) {
		status = strncmp(m->buf, "GET ", 4) ? "405 Method Not Allowed" : "404 Not Found";
		body = strdup("baton serves GET /metrics only\n");
		blen = body ? strlen(body) : 0;
	} else {
		body = metrics_text(&blen);
		if (!body)
			status = "500 Internal Server Error";
	}
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, blen);
	/* Small answers to a loopback client: a bounded blocking write is enough. */
	{
		struct timeval tv = {.tv_sec = 1};
		int fl = fcntl(m->fd, F_GETFL);

		fcntl(m->fd, F_SETFL, fl & ~O_NONBLOCK);
		setsockopt(m->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (send(m->fd, head, hl, MSG_NOSIGNAL) == hl && blen)
			send(m->fd, body, blen, MSG_NOSIGNAL);
		shutdown(m->fd, SHUT_WR);
	}
	free(body);
	mclient_close(m);
}

static void on_metrics_client(struct mclient *m)
{
	ssize_t r;

	if (m->fd < 0)
		return;
	r = read(m->fd, m->buf + m->len, sizeof(m->buf) - 1 - m->len);
	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		mclient_close(m);
		return;
	}
	m->len += r;
	m->buf[m->len] = '\0';
	if (strstr(m->buf, "\r\n\r\n") || strstr(m->buf, "\n\n") || m->len == sizeof(m->buf) - 1)
		mclient_answer(m);
}

static void on_metrics(void)
{
	long long t = now_ms();
	int fd, i;

	for (;;) {
		fd = accept4(A.metricsfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* At most METRICS_CLIENTS at once; slow ones are dropped to make room. */
		for (i = 0; i < METRICS_CLIENTS; i++)
			if (mclients[i] && t - mclients[i]->t0 > METRICS_TIMEOUT_MS)
				mclient_close(mclients[i]);
		for (i = 0; i < METRICS_CLIENTS && mclients[i]; i++)
			;
		if (i == METRICS_CLIENTS) {
			close(fd);
			continue;
		}
		mclients[i] = calloc(1, sizeof(*mclients[i]));
		if (!mclients[i]) {
			close(fd);
			continue;
		}
		mclients[i]->fd = fd;
		mclients[i]->t0 = t;
		ep_add(fd, &mclients[i]->ev, EV_METRICS_CLIENT, mclients[i], 0, EPOLLIN);
	}
}

/* Free metrics clients closed in this batch. */
static void metrics_bury(void)
{
	while (nmclient_dead)
		free(mclient_dead[--nmclient_dead]);
}

static int metrics_open(char *err, size_t errlen)
{
	const struct listen_addr *la = &A.cfg.agent.metrics;
	int one = 1, fd;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&la->ss, la->len) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "metrics %s: %s (choose another address, or metrics = off)",
			 la->text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---- setup -------------------------------------------------------------------- */

static int notify_open(char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int one = 1, fd;

	if (snprintf(A.notify_path, sizeof(A.notify_path), "%s/notify.sock", A.cfg.agent.run_dir) >=
	    (int)sizeof(A.notify_path)) {
		snprintf(err, errlen, "run-dir too long for a socket path: %s",
			 A.cfg.agent.run_dir);
		return -1;
	}
	strcpy(sun.sun_path, A.notify_path);
	unlink(A.notify_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, errlen, "notify socket %s: %s", A.notify_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Children may run as another user; the pid check decides who is heard. */
	chmod(A.notify_path, 0666);
	return fd;
}

/*
 * Everything baton needs from the kernel, checked before anything changes,
 * each missing piece named in one line with what to do.
 */
static int features_check(const char *bpf_dir, char *err, size_t errlen)
{
	struct bpf_insn pass[] = {
	    {.code = 0xb7, .dst_reg = 0, .imm = 1}, /* r0 = SK_PASS */
	    {.code = 0x95},			    /* exit */
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		    .expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE);
	char parent[256], cg[256], magic[4] = {0};
	char *slash;
	int fd, r;

	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) ||
	    (unsigned char)magic[0] != 0x9f || (unsigned char)magic[1] != 0xeb) {
		snprintf(err, errlen,
			 "kernel BTF missing (/sys/kernel/btf/vmlinux): baton needs a kernel built "
			 "with CONFIG_DEBUG_INFO_BTF=y");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(parent, sizeof(parent), "%s", bpf_dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	r = bpffs_check(parent);
	if (r) {
		snprintf(err, errlen, "bpffs not mounted at %.200s (mount -t bpf bpf %.200s)",
			 parent, parent);
		return -1;
	}
	if (cgroup2_root(cg, sizeof(cg))) {
		snprintf(err, errlen,
			 "no cgroup v2 mount in /proc/self/mounts (mount -t cgroup2 none "
			 "/sys/fs/cgroup/unified): baton counts connections with a cgroup sock_ops "
			 "program");
		return -1;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_REUSEPORT, NULL) != 1) {
		snprintf(err, errlen,
			 "the kernel cannot load sk_reuseport BPF programs (baton "
			 "needs Linux 5.14 or later with CONFIG_BPF_SYSCALL)");
		return -1;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL) != 1) {
		snprintf(err, errlen,
			 "the kernel cannot load sock_ops BPF programs (baton needs "
			 "CONFIG_CGROUP_BPF)");
		return -1;
	}
	fd = bpf_prog_load(BPF_PROG_TYPE_SK_REUSEPORT, NULL, "GPL", pass, 2, &opts);
	if (fd < 0) {
		snprintf(err, errlen,
			 "the kernel cannot migrate requests between reuseport listeners "
			 "(BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, Linux 5.14 or later): %s",
			 strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Tell systemd (Type=notify) the agent is up: READY=1 on $NOTIFY_SOCKET. */
static void notify_systemd(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		return;
	strcpy(sun.sun_path, path);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		log_warn("cannot notify systemd on %s", path);
	close(fd);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[256];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/*
 * The state a previous agent left must fit the configuration: every
 * service it ran is still configured, on the same listen addresses (ids and
 * groups key the maps, and are taken over from the state).
 */
static int state_fits(json_t *st, char *err, size_t errlen)
{
	json_t *js, *jg;
	size_t i, k;
	int c;

	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		const char *name = json_string_value(json_object_get(js, "name")) ?: "?";
		json_t *groups = json_object_get(js, "groups");
		json_int_t id = json_integer_value(json_object_get(js, "id"));
		bool same;

		if (json_is_true(json_object_get(js, "removed")))
			continue; /* services_start ends what is left of it */
		for (c = 0; c < A.cfg.nservices && strcmp(A.cfg.services[c].name, name); c++)
			;
		if (c == A.cfg.nservices) {
			snprintf(
			    err, errlen,
			    "service %s is running but not in this configuration: add it back, "
			    "or stop it first (baton shutdown --stop with the old configuration)",
			    name);
			return -1;
		}
		same = id >= 0 && id < MAX_SERVICES &&
		       json_array_size(groups) == (size_t)A.cfg.services[c].nlisten;
		json_array_foreach(groups, k, jg) if (same) same =
		    !strcmp(json_string_value(json_object_get(jg, "listen")) ?: "",
			    A.cfg.services[c].listen[k].text) &&
		    json_integer_value(json_object_get(jg, "group")) >= 0 &&
		    json_integer_value(json_object_get(jg, "group")) < MAX_GROUPS;
		if (!same) {
			snprintf(
			    err, errlen,
			    "service %s runs on other listen addresses than this configuration "
			    "gives it: restore them, or stop it first (baton shutdown --stop)",
			    name);
			return -1;
		}
	}
	return 0;
}

/* Attach this agent's program to a group through a short-lived member socket. */
static void reattach(struct service *s, int j)
{
	char err[256];
	int fd = make_listener(&s->conf, j, err, sizeof(err)), r;

	if (fd < 0) {
		log_warnx("%s: cannot reattach the steer program to %s: %s", s->conf.name,
			  s->conf.listen[j].text, err);
		return;
	}
	/*
	 * The program chooses only sockets in the map, so this member never
	 * gets a connection; closing it migrates nothing.
	 */
	r = steer_attach(&A.st, fd);
	if (r)
		log_warnx("%s: cannot reattach the steer program to %s: %s", s->conf.name,
			  s->conf.listen[j].text, strerror(-r));
	close(fd);
}

static void service_restore(struct service *s, json_t *js)
{
	json_t *jv, *lr;
	size_t k;
	int i, j, n = 0;
	char err[256];

	s->next_num = json_integer_value(json_object_get(js, "next_num"));
	s->active = json_integer_value(json_object_get(js, "active"));
	s->previous = json_integer_value(json_object_get(js, "previous"));
	if (s->next_num < 1)
		s->next_num = 1;
	lr = json_object_get(js, "last_rollback");
	if (json_is_object(lr)) {
		s->last_rollback.num = json_integer_value(json_object_get(lr, "num"));
		s->last_rollback.when = json_integer_value(json_object_get(lr, "when"));
		snprintf(s->last_rollback.why, sizeof(s->last_rollback.why), "%s",
			 json_string_value(json_object_get(lr, "why")) ?: "");
	}
	json_array_foreach(json_object_get(js, "versions"), k, jv)
	{
		if (!version_restore(s, jv, err, sizeof(err)))
			log_warnx("%s", err);
		else
			n++;
	}
	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->slot[i] && s->slot[i]->num >= s->next_num)
			s->next_num = s->slot[i]->num + 1;
	if (s->active >= MAX_VERSIONS || (s->active >= 0 && !s->slot[s->active]))
		s->active = -1;
	if (s->previous >= MAX_VERSIONS || (s->previous >= 0 && !s->slot[s->previous]))
		s->previous = -1;
	log_info("%s: took over %d version(s) from the previous agent", s->conf.name, n);
	for (j = 0; j < s->conf.nlisten; j++)
		reattach(s, j);
	push_policy(s);
	rollout_resume(s, json_object_get(js, "rollout"));
	for (i = 0; i < MAX_VERSIONS; i++) {
		struct version *v = s->slot[i];

		if (!v)
			continue;
		if (!v->nalive)
			version_stopped(v);
		else
			version_resume(v);
	}
}

static bool id_used(int id)
{
	int i;

	for (i = 0; i < A.nsvc; i++)
		if (!A.svc[i].gone && A.svc[i].id == id)
			return true;
	return false;
}

static bool group_used(int g)
{
	int i, j;

	for (i = 0; i < A.nsvc; i++)
		for (j = 0; !A.svc[i].gone && j < A.svc[i].conf.nlisten; j++)
			if (A.svc[i].group[j] == g)
				return true;
	return false;
}

/*
 * Add a service from its configuration: the id and groups the state gives
 * it (a service taken over), or the lowest free ones.  Registers its
 * groups; starts nothing.
 */
static struct service *service_add(const struct service_conf *c, json_t *js, char *err,
				   size_t errlen)
{
	struct service *s = NULL;
	int i, j, g;

	for (i = 0; i < A.nsvc; i++)
		if (A.svc[i].gone) {
			s = &A.svc[i]; /* a removed service's slot */
			break;
		}
	if (!s) {
		if (A.nsvc == MAX_SERVICES) {
			snprintf(err, errlen, "more than %d services", MAX_SERVICES);
			return NULL;
		}
		s = &A.svc[A.nsvc];
	}
	memset(s, 0, sizeof(*s));
	memcpy(&s->conf, c, sizeof(s->conf));
	s->gone = true; /* not counted by id_used/group_used until placed */
	if (js) {
		s->id = json_integer_value(json_object_get(js, "id"));
		for (j = 0; j < c->nlisten; j++)
			s->group[j] = json_integer_value(json_object_get(
			    json_array_get(json_object_get(js, "groups"), j), "group"));
	} else {
		for (s->id = 0; s->id < MAX_SERVICES && id_used(s->id); s->id++)
			;
		for (j = 0, g = 0; j < c->nlisten; j++, g++) {
			while (g < MAX_GROUPS && group_used(g))
				g++;
			if (g == MAX_GROUPS) {
				snprintf(err, errlen, "more than %d listen addresses in all",
					 MAX_GROUPS);
				return NULL;
			}
			s->group[j] = g;
		}
		if (s->id == MAX_SERVICES) {
			snprintf(err, errlen, "more than %d services", MAX_SERVICES);
			return NULL;
		}
	}
	s->active = s->previous = s->starting = -1;
	s->ro.newv = s->ro.oldv = -1;
	s->ro.hook_pidfd = -1;
	s->next_num = 1;
	s->ro_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->ro_tfd < 0 || ep_add(s->ro_tfd, &s->ro_ev, EV_RO_TIMER, s, 0, EPOLLIN)) {
		snprintf(err, errlen, "timerfd: %s", strerror(errno));
		if (s->ro_tfd >= 0)
			close(s->ro_tfd);
		return NULL;
	}
	for (j = 0; j < c->nlisten; j++)
		if (steer_add_group(&A.st, (struct sockaddr *)&c->listen[j].ss, s->id,
				    s->group[j])) {
			snprintf(err, errlen, "%s: cannot register %s: %s", c->name,
				 c->listen[j].text, strerror(errno));
			ep_del(s->ro_tfd);
			close(s->ro_tfd);
			return NULL;
		}
	s->gone = false;
	if (s == &A.svc[A.nsvc])
		A.nsvc++;
	return s;
}

/* A service taken over, or a new one: its first version, unless it adopts. */
static int service_first(struct service *s, bool taken_over, char *err, size_t errlen)
{
	if (s->active >= 0 || s->ro.stage != RO_NONE)
		return 0;
	if (s->conf.adopt) {
		log_info("%s: no version yet; waiting for: baton adopt %s --pid PID", s->conf.name,
			 s->conf.name);
		return 0;
	}
	if (taken_over)
		log_warnx("%s: no version survived; starting the configured one", s->conf.name);
	if (deploy(s, s->conf.argv, NULL, NULL, err, errlen))
		return -1;
	if (s->active < 0) {
		snprintf(err, errlen, "%s: first version failed to start: %s", s->conf.name,
			 s->last_error);
		return -1;
	}
	return 0;
}

/*
 * A service removed by a reload was still draining when the previous agent
 * died: its versions get their exit signal now (their drain bound died with
 * that agent), and are not taken over.
 */
static void removed_leftovers(json_t *st)
{
	json_t *js, *jv, *ji;
	size_t i, k, n;

	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		if (!json_is_true(json_object_get(js, "removed")))
			continue;
		json_array_foreach(json_object_get(js, "versions"), k, jv)
		{
			json_array_foreach(json_object_get(jv, "instances"), n, ji)
			{
				pid_t pid = json_integer_value(json_object_get(ji, "pid"));
				unsigned long long t =
				    json_integer_value(json_object_get(ji, "starttime"));

				if (pid <= 1 || !json_is_true(json_object_get(ji, "alive")) ||
				    proc_starttime(pid) != t)
					continue;
				kill(pid, SIGTERM);
				log_warnx("%s: removed from the configuration before the agent "
					  "restarted; sent SIGTERM to pid %d",
					  json_string_value(json_object_get(js, "name")), (int)pid);
			}
		}
	}
}

static int services_start(json_t *st, char *err, size_t errlen)
{
	struct service *s;
	int pass, i;

	if (st)
		removed_leftovers(st);
	/* Services taken over first: their ids and groups are fixed by the state. */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < A.cfg.nservices; i++) {
			json_t *js = st ? state_service(st, A.cfg.services[i].name) : NULL;

			if ((js != NULL) != (pass == 0))
				continue;
			if (!service_add(&A.cfg.services[i], js, err, errlen))
				return -1;
		}
	/* Pins of the previous agent's probes: their source ports mean nothing now. */
	steer_probe_clear(&A.st);
	/* What lets steer skip the probe and pin lookups: counted again, exactly. */
	i = steer_extras_sync(&A.st);
	if (i)
		log_warnx("cannot count the probe and CIDR pins: %s", strerror(-i));
	for (i = 0; i < A.nsvc; i++) {
		json_t *js;

		s = &A.svc[i];
		js = st ? state_service(st, s->conf.name) : NULL;
		if (js)
			service_restore(s, js);
		else
			push_policy(s);
		if (service_first(s, js != NULL, err, errlen))
			return -1;
	}
	return 0;
}

/* ---- reload: SIGHUP and baton reload ----------------------------------------- */

/* A removed service's last version stopped: free its ids and groups. */
static void service_gone(struct service *s)
{
	int j;

	for (j = 0; j < s->conf.nlisten; j++)
		steer_del_group(&A.st, (struct sockaddr *)&s->conf.listen[j].ss);
	steer_del_service(&A.st, s->id);
	if (s->ro_tfd >= 0) {
		ep_del(s->ro_tfd);
		close(s->ro_tfd);
		s->ro_tfd = -1;
	}
	log_info("%s: removed from the configuration; its last version stopped", s->conf.name);
	s->gone = true;
}

/* Drain and stop every version of a service that left the configuration. */
static void service_remove(struct service *s)
{
	int vs;

	s->removed = true;
	hook_kill(s);
	if (s->ro.stage != RO_NONE)
		rollout_end(s, false, "the service was removed from the configuration", false);
	s->active = -1;
	s->previous = -1;
	for (vs = 0; vs < MAX_VERSIONS; vs++) {
		struct version *v = s->slot[vs];

		if (!v)
			continue;
		checks_stop(v);
		if (v->phase == VP_STARTING) {
			version_abort(v, "the service was removed from the configuration");
		} else if (v->phase == VP_ACTIVE || v->phase == VP_DRAIN_DELAY ||
			   v->phase == VP_DRAIN_WAIT) {
			v->phase = VP_DRAIN_DELAY;
			v->weight = 0;
			push_policy(s);
			drain_begin(v);
			/* The drain policy decides when it is signalled; no drain-delay. */
			if (s->slot[vs] == v && v->phase == VP_DRAIN_DELAY)
				drain_next(v);
		}
	}
	for (vs = 0; vs < MAX_VERSIONS && !s->slot[vs]; vs++)
		;
	if (vs == MAX_VERSIONS && !s->gone)
		service_gone(s);
}

static bool listens_equal(const struct service_conf *a, const struct service_conf *b)
{
	int j;

	if (a->nlisten != b->nlisten)
		return false;
	for (j = 0; j < a->nlisten; j++)
		if (a->listen[j].len != b->listen[j].len ||
		    memcmp(&a->listen[j].ss, &b->listen[j].ss, a->listen[j].len))
			return false;
	return true;
}

/* The service's pointers into a configuration about to be freed: none are used again. */
static void conf_detach(struct service_conf *c)
{
	memset(c->argv, 0, sizeof(c->argv));
	memset(c->env, 0, sizeof(c->env));
	memset(c->health_argv, 0, sizeof(c->health_argv));
	memset(c->hook, 0, sizeof(c->hook));
	c->argc = c->nenv = 0;
}

static bool argv_equal(char *const *a, char *const *b)
{
	int i;

	for (i = 0; a[i] || b[i]; i++)
		if (!a[i] || !b[i] || strcmp(a[i], b[i]))
			return false;
	return true;
}

/* The same settings (the line a section starts on aside). */
static bool conf_same(const struct service_conf *a, const struct service_conf *b)
{
	static struct service_conf x, y; /* large: off the stack */
	int h;

	x = *a;
	y = *b;
	conf_detach(&x);
	conf_detach(&y);
	x.line = y.line = 0;
	if (memcmp(&x, &y, sizeof(x)) || !argv_equal(a->argv, b->argv) ||
	    !argv_equal(a->env, b->env) || !argv_equal(a->health_argv, b->health_argv))
		return false;
	for (h = 0; h < HOOK_COUNT; h++)
		if (!argv_equal(a->hook[h], b->hook[h]))
			return false;
	return true;
}

/*
 * Read the configuration again and apply the difference: added services
 * start, removed ones drain and stop, changed settings of the others apply
 * to what they do next; no service's traffic is touched.  A configuration
 * that is invalid, or that changes what cannot change while running, is
 * refused as a whole.  Returns 0 with a summary in msg, or -1 with why.
 */
static int reload(char *msg, size_t msglen)
{
	struct config *nc = calloc(1, sizeof(*nc)), old;
	struct service *match[MAX_SERVICES];
	char err[2048], added[256] = "", removed[256] = "", changed[256] = "";
	int i, k, nadd = 0, nrem = 0, nchg = 0, nsame = 0;

	if (!nc) {
		snprintf(msg, msglen, "reload: out of memory");
		return -1;
	}
	if (config_load(A.config_path, nc, err, sizeof(err))) {
		for (char *p = err; (p = strchr(p, '\n'));)
			*p = ';';
		snprintf(msg, msglen, "reload refused, the running configuration stays: %.900s",
			 err);
		goto fail;
	}
	if (strcmp(nc->agent.control, A.cfg.agent.control) ||
	    strcmp(nc->agent.bpf_dir, A.cfg.agent.bpf_dir) ||
	    strcmp(nc->agent.run_dir, A.cfg.agent.run_dir) ||
	    strcmp(nc->agent.control_group, A.cfg.agent.control_group) ||
	    strcmp(nc->agent.metrics.text, A.cfg.agent.metrics.text) ||
	    nc->agent.metrics.len != A.cfg.agent.metrics.len) {
		snprintf(msg, msglen,
			 "reload refused: [agent] settings change only with a restart of the agent "
			 "(baton shutdown, then start it; services keep running)");
		goto fail;
	}
	if (!nc->nservices) {
		snprintf(msg, msglen,
			 "reload refused: the new configuration has no service "
			 "(baton shutdown --stop ends them all)");
		goto fail;
	}
	/* Check everything before changing anything. */
	for (k = 0; k < nc->nservices; k++) {
		struct service *s = find_service(nc->services[k].name);
		int j;

		match[k] = s;
		if (s && s->removed) {
			snprintf(msg, msglen,
				 "reload refused: %s is still being removed; reload again once its "
				 "versions stopped",
				 s->conf.name);
			goto fail;
		}
		if (s && (!listens_equal(&s->conf, &nc->services[k]) ||
			  s->conf.adopt != nc->services[k].adopt)) {
			snprintf(
			    msg, msglen,
			    "reload refused: %s changes its listen addresses or adopt; remove the "
			    "service, reload, then add it back",
			    s->conf.name);
			goto fail;
		}
		for (j = 0; !s && !nc->services[k].adopt && j < nc->services[k].nlisten; j++)
			if (check_port_free(&nc->services[k].listen[j], err, sizeof(err))) {
				snprintf(msg, msglen, "reload refused: %s: %.1000s",
					 nc->services[k].name, err);
				goto fail;
			}
	}
	/* Removed services drain and stop; their pointers into the old configuration go. */
	for (i = 0; i < A.nsvc; i++) {
		struct service *s = &A.svc[i];

		if (s->gone || s->removed)
			continue;
		for (k = 0; k < nc->nservices && match[k] != s; k++)
			;
		if (k < nc->nservices)
			continue;
		nrem++;
		snprintf(removed + strlen(removed), sizeof(removed) - strlen(removed), " %s",
			 s->conf.name);
		conf_detach(&s->conf);
		service_remove(s);
	}
	/* Kept services take their new settings. */
	for (k = 0; k < nc->nservices; k++) {
		struct service *s = match[k];

		if (!s)
			continue;
		if (conf_same(&s->conf, &nc->services[k])) {
			nsame++;
		} else {
			nchg++;
			snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed),
				 " %s", s->conf.name);
		}
		memcpy(&s->conf, &nc->services[k], sizeof(s->conf));
		push_policy(s); /* the steering mode may have changed */
	}
	old = A.cfg;
	A.cfg = *nc;
	free(nc);
	nc = NULL;
	config_free(&old); /* nothing points into it any more */
	/* Added services start as at agent start. */
	for (k = 0; k < A.cfg.nservices; k++) {
		struct service *s;

		if (match[k])
			continue;
		s = service_add(&A.cfg.services[k], NULL, err, sizeof(err));
		if (s) {
			push_policy(s);
			if (service_first(s, false, err, sizeof(err)))
				s = NULL;
		}
		snprintf(added + strlen(added), sizeof(added) - strlen(added), " %s%s",
			 A.cfg.services[k].name, s ? "" : " (failed to start: see the log)");
		if (!s)
			log_warnx("reload: %s: %s", A.cfg.services[k].name, err);
		else
			nadd++;
	}
	snprintf(msg, msglen, "reloaded: %d added%s, %d removed%s, %d changed%s, %d unchanged",
		 nadd, added, nrem, removed, nchg, changed, nsame);
	log_info("%s", msg);
	return 0;
fail:
	log_warnx("%s", msg);
	if (nc)
		config_free(nc);
	free(nc);
	return -1;
}

/* A first version's readiness completes the start rather than a switch. */
static void first_versions_check(void)
{
	int i;

	for (i = 0; i < A.nsvc; i++) {
		struct service *s = &A.svc[i];
		struct version *v = s->starting >= 0 ? s->slot[s->starting] : NULL;

		if (v && v->phase == VP_ACTIVE && v->nready == v->ninst)
			first_version_done(v);
	}
}

int agent_main(const struct agent_opts *o)
{
	char err[512];
	struct epoll_event evs[64];
	json_t *st = NULL;
	sigset_t mask;
	int i, n, j;

	log_init("baton", o->verbose);
	/* Privileges first; checking a configuration needs none. */
	if (!o->check_only && geteuid() != 0) {
		fprintf(stderr,
			"baton: the agent must run as root (it loads BPF programs): sudo baton "
			"agent ...\n");
		return 1;
	}
	A.config_path = o->config;
	if (config_load(o->config, &A.cfg, err, sizeof(err))) {
		/* One line per file with an error. */
		for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
			fprintf(stderr, "baton: %s\n", line);
		return 1;
	}
	if (o->check_only) {
		printf("configuration OK\n");
		config_free(&A.cfg);
		return 0;
	}
	if (!A.cfg.nservices) {
		fprintf(stderr, "baton: %s defines no [service NAME] section; nothing to run\n",
			o->config);
		config_free(&A.cfg);
		return 1;
	}
	/* Before the ports: a running agent's children hold them. */
	if (ctl_running(A.cfg.agent.control)) {
		fprintf(stderr,
			"baton: another agent is running on %s (stop it first: baton shutdown)\n",
			A.cfg.agent.control);
		config_free(&A.cfg);
		return 1;
	}
	/* Services a previous agent left running are taken over, not started. */
	st = state_load(err, sizeof(err));
	if (json_is_null(st) || (st && state_fits(st, err, sizeof(err)))) {
		fprintf(stderr, "baton: %s\n", err);
		json_decref(st);
		config_free(&A.cfg);
		return 1;
	}
	for (i = 0; i < A.cfg.nservices; i++)
		for (j = 0; j < A.cfg.services[i].nlisten; j++)
			if ((!st || !state_service(st, A.cfg.services[i].name)) &&
			    !A.cfg.services[i].adopt &&
			    check_port_free(&A.cfg.services[i].listen[j], err, sizeof(err))) {
				fprintf(stderr, "baton: %s: %s\n", A.cfg.services[i].name, err);
				json_decref(st);
				config_free(&A.cfg);
				return 1;
			}
	if (features_check(A.cfg.agent.bpf_dir, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		json_decref(st);
		config_free(&A.cfg);
		return 1;
	}
	libbpf_set_print(log_libbpf);
	if (steer_open(&A.st, A.cfg.agent.bpf_dir, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		json_decref(st);
		config_free(&A.cfg);
		return 1;
	}
	if (track_open(&A.tr, A.cfg.agent.bpf_dir, on_zero, NULL, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
	}
	if (mkdir_p(A.cfg.agent.run_dir, 0755) < 0) {
		fprintf(stderr, "baton: cannot create %s: %s\n", A.cfg.agent.run_dir,
			strerror(errno));
		goto fail;
	}
	A.ctlfd = ctl_listen(A.cfg.agent.control, A.cfg.agent.control_gid, err, sizeof(err));
	if (A.ctlfd < 0) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
	}
	A.notifyfd = notify_open(err, sizeof(err));
	if (A.notifyfd < 0) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
	}
	A.metricsfd = -1;
	if (A.cfg.agent.metrics.len) {
		A.metricsfd = metrics_open(err, sizeof(err));
		if (A.metricsfd < 0) {
			fprintf(stderr, "baton: %s\n", err);
			goto fail;
		}
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	A.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	A.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (A.sigfd < 0 || A.epfd < 0) {
		fprintf(stderr, "baton: epoll/signalfd: %s\n", strerror(errno));
		goto fail;
	}
	ep_add(A.sigfd, &A.ev_sig, EV_SIGNAL, NULL, 0, EPOLLIN);
	ep_add(A.ctlfd, &A.ev_ctl, EV_CONTROL, NULL, 0, EPOLLIN);
	ep_add(A.notifyfd, &A.ev_notify, EV_NOTIFY, NULL, 0, EPOLLIN);
	ep_add(track_ring_fd(&A.tr), &A.ev_ring, EV_RING, NULL, 0, EPOLLIN);
	if (A.metricsfd >= 0)
		ep_add(A.metricsfd, &A.ev_metrics, EV_METRICS, NULL, 0, EPOLLIN);
	if (services_start(st, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
	}
	json_decref(st);
	st = NULL;
	state_save();
	{
		char msg[128];

		snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=%d service(s)",
			 (int)getpid(), A.nsvc);
		notify_systemd(msg);
	}
	log_info("agent running: %d service(s), control %s, maps in %s", A.nsvc,
		 A.cfg.agent.control, A.cfg.agent.bpf_dir);
	first_versions_check();

	while (!A.quit) {
		n = epoll_wait(A.epfd, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fatal("epoll_wait");
		for (i = 0; i < n && !A.quit; i++) {
			struct evsrc *ev = evs[i].data.ptr;

			switch (ev->type) {
			case EV_SIGNAL: {
				struct signalfd_siginfo si;

				while (read(A.sigfd, &si, sizeof(si)) == sizeof(si))
					if (si.ssi_signo == SIGHUP) {
						char msg[1024];

						log_info("SIGHUP: reloading %s", A.config_path);
						reload(msg, sizeof(msg));
					} else if (si.ssi_signo == SIGTERM ||
						   si.ssi_signo == SIGINT) {
						log_info(
						    "%s: agent exiting; services keep running and "
						    "steering stays as programmed",
						    signal_name(si.ssi_signo));
						A.quit = true;
					}
				break;
			}
			case EV_CONTROL:
				on_control();
				break;
			case EV_CLIENT:
				on_client(ev->p, evs[i].events);
				break;
			case EV_NOTIFY:
				on_notify();
				break;
			case EV_PIDFD:
				on_exit_of(ev->p, ev->idx);
				break;
			case EV_TIMER:
				on_timer(ev->p);
				break;
			case EV_RING:
				track_ring_consume(&A.tr);
				break;
			case EV_CHECK:
				on_check(ev->p, ev->idx);
				break;
			case EV_HOOK:
				on_hook(ev->p);
				break;
			case EV_RO_TIMER:
				on_ro_timer(ev->p);
				break;
			case EV_CLIENT_TIMER:
				on_client_timer(ev->p);
				break;
			case EV_METRICS:
				on_metrics();
				break;
			case EV_METRICS_CLIENT:
				on_metrics_client(ev->p);
				break;
			}
			first_versions_check();
		}
		bury_dead();
		metrics_bury();
		state_save();
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (A.clients[i])
			client_close(A.clients[i]);
	for (i = 0; i < A.nsvc; i++)
		for (j = 0; j < MAX_VERSIONS; j++)
			if (A.svc[i].slot[j])
				version_free(A.svc[i].slot[j]);
	for (i = 0; i < METRICS_CLIENTS; i++)
		if (mclients[i])
			mclient_close(mclients[i]);
	metrics_bury();
	bury_dead();
	if (A.stop_children)
		state_remove(); /* nothing left to take over */
	free(A.state_last);
	unlink(A.cfg.agent.control);
	track_close(&A.tr);
	steer_close(&A.st);
	config_free(&A.cfg);
	return 0;
fail:
	json_decref(st);
	bury_dead();
	track_close(&A.tr);
	steer_close(&A.st);
	config_free(&A.cfg);
	return 1;
}
