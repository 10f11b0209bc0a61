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
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "proc.h"
#include "steer_user.h"
#include "track_user.h"

#define MAX_CLIENTS   64
#define PROBE_TICK_MS 50
#define HISTORY	      8

enum ev_type { EV_SIGNAL, EV_CONTROL, EV_CLIENT, EV_NOTIFY, EV_PIDFD, EV_TIMER, EV_RING };

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

struct instance {
	pid_t pid;
	int pidfd;
	bool ready;
	bool alive;
	char exit_desc[64];
	int lfd[MAX_LISTEN]; /* the agent's copies of this instance's listeners */
	int probe_fd;	     /* READY_TCP: connection through this instance's own socket */
	__u16 probe_sport;
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
	int tfd;	    /* timerfd for this version's current deadline */
	long long deadline; /* ms, monotonic; 0: none */
	long long t_start, t_switch, t_signal;
	long long zero_to_signal_us; /* last close (kernel time) to exit signal; -1: not by zero */
	struct client *waiter;	     /* the CLI waiting for this deploy */
	struct evsrc ev;
};

struct history {
	int num;
	char how[96];
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
};

struct client {
	int fd;
	char buf[CTL_MAX_LINE];
	size_t len;
	struct version *waiting;
	struct evsrc ev;
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

static void timer_set(struct version *v, long long at_ms)
{
	struct itimerspec its = {0};
	long long d;

	v->deadline = at_ms;
	if (at_ms) {
		d = at_ms - now_ms();
		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(v->tfd, 0, &its, NULL);
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
	struct steer_service p = {.mode = STEER_PER_CONNECTION};
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
			p.v[i].weight = WEIGHT_MAX;
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
	h->num = num;
	snprintf(h->how, sizeof(h->how), "%s", how);
}

static void version_free(struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++) {
		if (v->inst[i].pidfd >= 0) {
			ep_del(v->inst[i].pidfd);
			close(v->inst[i].pidfd);
		}
		if (v->inst[i].probe_fd >= 0) {
			steer_probe_del(&A.st, v->svc->group[0], v->inst[i].probe_sport);
			close(v->inst[i].probe_fd);
		}
	}
	release_listeners(v, -1);
	if (v->tfd >= 0) {
		ep_del(v->tfd);
		close(v->tfd);
	}
	free_argv(v->argv);
	free(v);
}

static void check_shutdown_done(void);

/* All processes of a version are gone: free its slot. */
static void version_stopped(struct version *v)
{
	struct service *s = v->svc;
	char how[96];

	unplace_version(v);
	if (v->t_switch)
		snprintf(how, sizeof(how), "stopped %.3f s after switch-out",
			 (now_ms() - v->t_switch) / 1000.0);
	else
		snprintf(how, sizeof(how), "stopped without taking traffic");
	log_info("%s: all processes exited, %s", vname(v), how);
	history_add(s, v->num, how);
	if (s->active == v->vslot)
		s->active = -1;
	if (s->previous == v->vslot)
		s->previous = -1;
	if (s->starting == v->vslot)
		s->starting = -1;
	s->slot[v->vslot] = NULL;
	push_policy(s);
	track_forget(&A.tr, s->id, v->num);
	version_free(v);
	check_shutdown_done();
}

static void signal_all(struct version *v, int sig)
{
	int i, r;

	for (i = 0; i < v->ninst; i++)
		if (v->inst[i].alive) {
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

/* Stop a version that never became active: TERM now, KILL after kill-after. */
static void version_abort(struct version *v, const char *why)
{
	struct service *s = v->svc;

	log_warnx("%s: deploy failed: %s", vname(v), why);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	if (v->waiter) {
		reply(v->waiter,
		      json_pack("{s:b, s:s, s:i}", "ok", 0, "error", why, "version", v->num));
		v->waiter->waiting = NULL;
		v->waiter = NULL;
	}
	if (s->starting == v->vslot)
		s->starting = -1;
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

/* The new version is ready: one map update moves all new connections to it. */
static void version_switch(struct version *v)
{
	struct service *s = v->svc;
	struct version *old = s->active >= 0 ? s->slot[s->active] : NULL;
	long long t = now_ms();

	v->phase = VP_ACTIVE;
	timer_set(v, 0);
	s->starting = -1;
	s->active = v->vslot;
	if (old) {
		old->phase = VP_DRAIN_DELAY;
		s->previous = old->vslot;
	}
	push_policy(s);
	log_info("%s: active, %d instance(s) ready in %lld ms%s%s", vname(v), v->ninst,
		 t - v->t_start, old ? "; draining " : "", old ? vname(old) : "");
	if (v->waiter) {
		reply(v->waiter, json_pack("{s:b, s:i, s:I, s:o}", "ok", 1, "version", v->num,
					   "ready_ms", (json_int_t)(t - v->t_start), "previous",
					   old ? json_integer(old->num) : json_null()));
		v->waiter->waiting = NULL;
		v->waiter = NULL;
	}
	if (old)
		drain_begin(old);
}

static void instance_ready(struct version *v, int i)
{
	if (v->inst[i].ready)
		return;
	v->inst[i].ready = true;
	v->nready++;
	log_debug("%s: instance %d (pid %d) ready", vname(v), i, v->inst[i].pid);
	if (v->phase == VP_STARTING && v->nready == v->ninst)
		version_switch(v);
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
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->svc = s;
	v->vslot = vslot;
	v->num = s->next_num;
	v->ninst = c->instances;
	v->tfd = -1;
	for (n = 0; argv[n] && n < MAX_ARGS; n++) {
		v->argv[n] = strdup(argv[n]);
		if (!v->argv[n]) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (i = 0; i < MAX_INSTANCES; i++) {
		v->inst[i].pidfd = -1;
		v->inst[i].probe_fd = -1;
		for (j = 0; j < MAX_LISTEN; j++)
			v->inst[i].lfd[j] = -1;
	}
	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < c->nlisten; j++) {
			v->inst[i].lfd[j] = make_listener(c, j, err, errlen);
			if (v->inst[i].lfd[j] < 0)
				goto fail;
		}
	v->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->tfd < 0 || ep_add(v->tfd, &v->ev, EV_TIMER, v, 0, EPOLLIN)) {
		snprintf(err, errlen, "timerfd: %s", strerror(errno));
		goto fail;
	}
	v->zero_to_signal_us = -1;
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
		v->nalive++;
		ep_add(in->pidfd, &in->ev, EV_PIDFD, v, i, EPOLLIN);
		log_debug("%s: instance %d started, pid %d", vname(v), i, in->pid);
	}
	return 0;
}

/* ---- readiness: TCP probes through the instance's own socket --------------- */

static void probe_stop(struct version *v, int i)
{
	struct instance *in = &v->inst[i];

	if (in->probe_fd < 0)
		return;
	steer_probe_del(&A.st, v->svc->group[0], in->probe_sport);
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
	if (steer_probe_add(&A.st, v->svc->group[0], in->probe_sport, v->vslot, i)) {
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

/* ---- deploy / rollback ------------------------------------------------------ */

/*
 * Start a new version.  Returns -errno with err when nothing was started;
 * 0 once the version exists, whatever happens to it next (the waiting
 * client, if any, gets exactly one final reply).
 */
static int deploy(struct service *s, char *const *argv, struct client *c, char *err, size_t errlen)
{
	const struct service_conf *conf = &s->conf;
	struct version *v;
	int i, j, r;

	if (s->starting >= 0) {
		snprintf(err, errlen,
			 "%s: v%d is being deployed; wait for it, or: baton rollback %s",
			 conf->name, s->slot[s->starting]->num, conf->name);
		return -EBUSY;
	}
	v = version_new(s, argv, err, errlen);
	if (!v)
		return -ENOMEM;
	v->t_start = now_ms();
	s->starting = v->vslot;
	if (s->active < 0) {
		/* A first version takes connections at once; they queue until it accepts. */
		v->phase = VP_ACTIVE;
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
	if (c) {
		v->waiter = c;
		c->waiting = v;
	}
	if (version_spawn(v, err, errlen)) {
		char why[300];

		snprintf(why, sizeof(why), "%s", err);
		if (s->active == v->vslot)
			s->active = -1;
		version_abort(v, why);
		return 0;
	}
	log_info("%s: started %d instance(s) of %s", vname(v), v->ninst, v->argv[0]);
	if (conf->ready != READY_NONE)
		progress(c, "%s: started %d instance(s), waiting for readiness (%s, timeout %u ms)",
			 vname(v), v->ninst, ready_kind_name(conf->ready), conf->ready_timeout_ms);
	if (conf->ready == READY_NONE) {
		for (i = 0; i < v->ninst; i++)
			instance_ready(v, i);
		return 0;
	}
	timer_set(v, v->t_start + conf->ready_timeout_ms);
	if (conf->ready == READY_TCP) {
		struct itimerspec its = {.it_interval.tv_nsec = PROBE_TICK_MS * 1000000,
					 .it_value.tv_nsec = PROBE_TICK_MS * 1000000};

		/* Probes tick; the ready deadline is checked on each tick. */
		timerfd_settime(v->tfd, 0, &its, NULL);
		for (i = 0; i < v->ninst; i++)
			probe_start(v, i);
	}
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
	log_info("%s: active, %d instance(s) ready in %lld ms", vname(v), v->ninst,
		 now_ms() - v->t_start);
	if (v->waiter) {
		reply(v->waiter,
		      json_pack("{s:b, s:i, s:I, s:n}", "ok", 1, "version", v->num, "ready_ms",
				(json_int_t)(now_ms() - v->t_start), "previous"));
		v->waiter->waiting = NULL;
		v->waiter = NULL;
	}
}

static int rollback(struct service *s, char *msg, size_t msglen)
{
	struct version *cur = s->active >= 0 ? s->slot[s->active] : NULL;
	struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;

	if (s->starting >= 0 && s->slot[s->starting] != cur) {
		struct version *v = s->slot[s->starting];

		snprintf(msg, msglen, "deploy of %s aborted; %s stays active", vname(v),
			 cur ? vname(cur) : "nothing");
		version_abort(v, "aborted by baton rollback");
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
	/* Its sockets are still the agent's copies: put them back, then switch. */
	timer_set(prev, 0);
	track_watch(&A.tr, s->id, prev->num, 0);
	place_version(prev);
	prev->phase = VP_ACTIVE;
	s->active = prev->vslot;
	s->previous = cur ? cur->vslot : -1;
	if (cur)
		cur->phase = VP_DRAIN_DELAY;
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

static void on_exit_of(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	struct service *s = v->svc;
	int status = 0;
	char desc[64];

	if (proc_reap(in->pidfd, &status, desc, sizeof(desc)) <= 0)
		return;
	ep_del(in->pidfd);
	close(in->pidfd);
	in->pidfd = -1;
	in->alive = false;
	snprintf(in->exit_desc, sizeof(in->exit_desc), "%s", desc);
	v->nalive--;
	switch (v->phase) {
	case VP_STARTING: {
		char why[256];

		snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
			 in->pid, desc);
		version_abort(v, why);
		return;
	}
	case VP_ACTIVE:
		/*
		 * A running instance died.  Its slot leaves the map and the agent's
		 * copy closes, so what was queued on it moves to a sibling.
		 */
		log_warnx("%s: instance %d (pid %d) %s", vname(v), i, in->pid, desc);
		if (s->starting == v->vslot) {
			/* first version, still starting */
			char why[256];

			snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
				 in->pid, desc);
			s->active = -1;
			version_abort(v, why);
			return;
		}
		for (int j = 0; j < s->conf.nlisten; j++)
			steer_remove(&A.st, steer_slot(s->group[j], v->vslot, i));
		release_listeners(v, i);
		if (!v->nalive)
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
	uint64_t n;
	int i;

	if (read(v->tfd, &n, sizeof(n)) < 0)
		return;
	if (v->phase == VP_STARTING || (v->phase == VP_ACTIVE && v->svc->starting == v->vslot)) {
		if (c->ready == READY_TCP)
			for (i = 0; i < v->ninst; i++)
				if (!v->inst[i].ready)
					probe_check(v, i);
		if (v->nready == v->ninst)
			return;
		if (now_ms() >= v->deadline) {
			char why[256];

			snprintf(why, sizeof(why),
				 "%d of %d instance(s) not ready within ready-timeout %u ms",
				 v->ninst - v->nready, v->ninst, c->ready_timeout_ms);
			for (i = 0; i < v->ninst; i++)
				probe_stop(v, i);
			if (v->svc->active == v->vslot)
				v->svc->active = -1;
			version_abort(v, why);
		}
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
						if (strstr(buf, "READY=1") &&
						    (buf == strstr(buf, "READY=1") ||
						     strstr(buf, "\nREADY=1")))
							instance_ready(v, in);
						goto next;
					}
			}
		log_warnx("notify: dropped a message from pid %d, not a baton child", cred->pid);
	next:;
	}
}

/* ---- control protocol ------------------------------------------------------- */

static struct service *find_service(const char *name)
{
	int i;

	for (i = 0; i < A.nsvc; i++)
		if (!strcmp(A.svc[i].conf.name, name))
			return &A.svc[i];
	return NULL;
}

static json_t *status_json(struct service *s)
{
	json_t *vs = json_array(), *listen = json_array(), *hist = json_array();
	struct steer_stats st = {0}, g;
	int i, k, j;

	for (j = 0; j < s->conf.nlisten; j++) {
		json_array_append_new(listen, json_string(s->conf.listen[j].text));
		if (!steer_group_stats(&A.st, s->group[j], &g)) {
			st.selected += g.selected;
			st.probes += g.probes;
			st.migrated += g.migrated;
			st.fallback += g.fallback;
			st.dropped += g.dropped;
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
			       v->phase == VP_ACTIVE ? WEIGHT_MAX : 0, "instances", v->ninst,
			       "alive", v->nalive, "age_ms", (json_int_t)(now_ms() - v->t_start),
			       "processes", insts, "command", argv);
		json_object_set_new(jv, "live", json_integer(n.live));
		json_object_set_new(jv, "accepted", json_integer((json_int_t)n.accepted));
		json_object_set_new(jv, "closed", json_integer((json_int_t)n.closed));
		json_object_set_new(jv, "migrated_in", json_integer((json_int_t)n.migrated_in));
		json_object_set_new(jv, "signalled", json_boolean(v->t_signal != 0));
		if (v->zero_to_signal_us >= 0)
			json_object_set_new(jv, "zero_to_signal_us",
					    json_integer(v->zero_to_signal_us));
		json_array_append_new(vs, jv);
	}
	for (i = 0; i < s->nhist; i++)
		json_array_append_new(hist, json_pack("{s:i, s:s, s:s}", "version", s->hist[i].num,
						      "state", "stopped", "how", s->hist[i].how));
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "name",
			 s->conf.name, "listen", listen, "active",
			 s->active >= 0 ? json_integer(s->slot[s->active]->num) : json_null(),
			 "versions", vs, "stopped", hist, "steer", "selected",
			 (json_int_t)st.selected, "migrated", (json_int_t)st.migrated, "probes",
			 (json_int_t)st.probes, "fallback", (json_int_t)st.fallback, "dropped",
			 (json_int_t)st.dropped);
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
			if (!s || s == &A.svc[i])
				json_array_append_new(arr, status_json(&A.svc[i]));
		reply(c, json_pack("{s:b, s:o}", "ok", 1, "services", arr));
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
		for (i = 0; i < A.nsvc; i++)
			for (vs = 0; vs < MAX_VERSIONS; vs++) {
				struct version *v = A.svc[i].slot[vs];

				if (!v)
					continue;
				n++;
				if (v->phase == VP_STARTING)
					version_abort(v, "agent shutting down");
				else if (v->phase == VP_ACTIVE || v->phase == VP_DRAIN_DELAY ||
					 v->phase == VP_DRAIN_WAIT) {
					A.svc[i].active = -1;
					push_policy(&A.svc[i]);
					drain_begin(v);
					if (A.svc[i].slot[vs] && (v->phase == VP_DRAIN_DELAY ||
								  v->phase == VP_DRAIN_WAIT))
						drain_signal(v);
				}
			}
		A.shutdown_waiter = c;
		c->waiting = NULL;
		log_info("shutdown: stopping %d version(s)", n);
		check_shutdown_done();
		return;
	}
	if (strcmp(cmd, "deploy") && strcmp(cmd, "rollback")) {
		reply_err(c, "unknown command \"%s\" (known: status, deploy, rollback, shutdown)",
			  cmd);
		return;
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
		return;
	}
	/* deploy */
	{
		json_t *argv = json_object_get(req, "argv"), *a;
		char *args[MAX_ARGS + 1];
		size_t i, n;

		if (!json_is_array(argv) || !(n = json_array_size(argv)) || n > MAX_ARGS) {
			reply_err(c, "deploy needs a command of 1..%d arguments", MAX_ARGS);
			return;
		}
		json_array_foreach(argv, i, a)
		{
			if (!json_is_string(a) || json_string_length(a) > 4096) {
				reply_err(c, "deploy: every argument must be a string of at most "
					     "4096 bytes");
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
		if (deploy(s, args, c, err, sizeof(err)))
			reply_err(c, "%s", err);
	}
}

static void client_close(struct client *c)
{
	int i;

	if (c->waiting) {
		c->waiting->waiter = NULL; /* the deploy goes on without a listener */
		c->waiting = NULL;
	}
	if (A.shutdown_waiter == c)
		A.shutdown_waiter = NULL;
	ep_del(c->fd);
	close(c->fd);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (A.clients[i] == c)
			A.clients[i] = NULL;
	free(c);
}

static void on_control(void)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct client *c;
	int fd, i;

	for (;;) {
		fd = accept4(A.ctlfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != 0) {
			json_t *m =
			    json_pack("{s:b, s:s}", "ok", 0, "error",
				      "permission denied: the baton agent answers root only");

			log_warnx("control: refused uid %d pid %d (not root)", (int)cr.uid,
				  (int)cr.pid);
			ctl_send(fd, m);
			json_decref(m);
			close(fd);
			continue;
		}
		for (i = 0; i < MAX_CLIENTS && A.clients[i]; i++)
			;
		c = i < MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			json_t *m = json_pack("{s:b, s:s}", "ok", 0, "error",
					      "agent busy: too many control clients, try again");

			ctl_send(fd, m);
			json_decref(m);
			close(fd);
			continue;
		}
		c->fd = fd;
		A.clients[i] = c;
		ep_add(fd, &c->ev, EV_CLIENT, c, 0, EPOLLIN | EPOLLRDHUP);
	}
}

static void on_client(struct client *c, unsigned events)
{
	json_error_t jerr;
	json_t *req;
	char *nl;
	ssize_t n;

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

		req = json_loadb(c->buf, line, 0, &jerr);
		memmove(c->buf, nl + 1, c->len - line - 1);
		c->len -= line + 1;
		if (!req) {
			reply_err(c, "bad request: not JSON (%s)", jerr.text);
			continue;
		}
		handle_request(c, req);
		json_decref(req);
		if (A.quit)
			return;
	}
	if (c->len == sizeof(c->buf)) {
		reply_err(c, "bad request: line longer than %d bytes", CTL_MAX_LINE);
		client_close(c);
	}
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

static int services_start(char *err, size_t errlen)
{
	int i, j;

	for (i = 0; i < A.cfg.nservices; i++) {
		struct service *s = &A.svc[A.nsvc];

		memcpy(&s->conf, &A.cfg.services[i], sizeof(s->conf));
		s->id = A.nsvc;
		s->active = s->previous = s->starting = -1;
		s->next_num = 1;
		A.nsvc++;
		for (j = 0; j < s->conf.nlisten; j++) {
			if (A.ngroups == MAX_GROUPS) {
				snprintf(err, errlen, "more than %d listen addresses in all",
					 MAX_GROUPS);
				return -1;
			}
			s->group[j] = A.ngroups++;
			if (steer_add_group(&A.st, (struct sockaddr *)&s->conf.listen[j].ss, s->id,
					    s->group[j])) {
				snprintf(err, errlen, "%s: cannot register %s: %s", s->conf.name,
					 s->conf.listen[j].text, strerror(errno));
				return -1;
			}
		}
		push_policy(s);
	}
	for (i = 0; i < A.nsvc; i++) {
		struct service *s = &A.svc[i];

		if (deploy(s, s->conf.argv, NULL, err, errlen))
			return -1;
		if (s->active < 0) {
			snprintf(err, errlen, "%s: first version failed to start: %s", s->conf.name,
				 s->last_error);
			return -1;
		}
	}
	return 0;
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
	if (config_load(o->config, &A.cfg, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
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
	for (i = 0; i < A.cfg.nservices; i++)
		for (j = 0; j < A.cfg.services[i].nlisten; j++)
			if (check_port_free(&A.cfg.services[i].listen[j], err, sizeof(err))) {
				fprintf(stderr, "baton: %s: %s\n", A.cfg.services[i].name, err);
				config_free(&A.cfg);
				return 1;
			}
	libbpf_set_print(log_libbpf);
	if (steer_open(&A.st, A.cfg.agent.bpf_dir, err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
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
	A.ctlfd = ctl_listen(A.cfg.agent.control, err, sizeof(err));
	if (A.ctlfd < 0) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
	}
	A.notifyfd = notify_open(err, sizeof(err));
	if (A.notifyfd < 0) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
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
	if (services_start(err, sizeof(err))) {
		fprintf(stderr, "baton: %s\n", err);
		goto fail;
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
					if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
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
			}
			first_versions_check();
		}
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (A.clients[i])
			client_close(A.clients[i]);
	for (i = 0; i < A.nsvc; i++)
		for (j = 0; j < MAX_VERSIONS; j++)
			if (A.svc[i].slot[j])
				version_free(A.svc[i].slot[j]);
	unlink(A.cfg.agent.control);
	track_close(&A.tr);
	steer_close(&A.st);
	config_free(&A.cfg);
	return 0;
fail:
	track_close(&A.tr);
	steer_close(&A.st);
	config_free(&A.cfg);
	return 1;
}
