/* SPDX-License-Identifier: MIT */
/*
 * A version's sockets and processes: making and starting them, signalling
 * them, freeing them; and the events they give (an instance exited, the
 * version's timer fired, its last connection closed), fed to the state
 * machine (fsm.c), which decides what follows.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cgroup.h"
#include "checks.h"
#include "dp.h"
#include "events.h"
#include "listen.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "exec.h"
#include "fsm.h"
#include "history.h"
#include "services.h"
#include "versions.h"

static struct version *dead; /* freed in this epoll batch; free()d after it */

void versions_bury(void)
{
	while (dead) {
		struct version *v = dead;

		dead = v->next_dead;
		free(v);
	}
}

/*
 * Give up the agent's copy of a version's listeners.  Done only after they
 * left the map: from now on the version's own processes hold the sockets,
 * and when they close them the kernel moves anything still queued to a live
 * version through the steer program.
 */
void release_listeners(struct version *v, int only)
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

void version_free(struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++) {
		struct check *k = &v->inst[i].chk;

		if (v->inst[i].pidfd >= 0) {
			ep_del(v->inst[i].pidfd);
			close(v->inst[i].pidfd);
		}
		if (v->inst[i].exec_watched)
			ep_del(v->inst[i].execfd);
		proc_exec_close(&v->inst[i].execfd);
		if (v->inst[i].probe_fd >= 0) {
			dp_probe_del(v, v->inst[i].probe_addr, &v->inst[i].probe_src);
			close(v->inst[i].probe_fd);
		}
		check_close(v, i);
		if (k->pidfd >= 0) {
			/* An exec check still running: killed, reaped once it is gone. */
			ep_del(k->pidfd);
			proc_exec_close(&k->execfd);
			reap_later(k->pid, k->pidfd);
			k->pidfd = -1;
		}
	}
	reset_stop(v);
	release_listeners(v, -1);
	if (v->cg_wd >= 0)
		cg_unwatch(v->cg_wd);
	if (v->cg_fd >= 0)
		close(v->cg_fd);
	v->cg_fd = v->cg_wd = -1;
	if (v->tfd >= 0) {
		ep_del(v->tfd);
		close(v->tfd);
	}
	spawn_desc_free(&v->spec);
	/* Later events of this epoll batch may still name v: free it after the batch. */
	v->freed = true;
	v->next_dead = dead;
	dead = v;
}

/* A zeroed version of s with every fd marked absent, so version_free is always safe. */
struct version *version_alloc(struct service *s, char *err, size_t errlen)
{
	struct version *v = calloc(1, sizeof(*v));
	int i, j;

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->svc = s;
	v->tfd = -1;
	v->cg_fd = v->cg_wd = -1;
	v->zero_to_signal_us = -1;
	for (i = 0; i < MAX_INSTANCES; i++) {
		v->inst[i].pidfd = v->inst[i].execfd = -1;
		v->inst[i].probe_fd = -1;
		v->inst[i].chk.hc.fd = -1;
		v->inst[i].chk.pidfd = v->inst[i].chk.execfd = -1;
		for (j = 0; j < MAX_LISTEN; j++)
			v->inst[i].lfd[j] = -1;
	}
	return v;
}

void signal_one(struct version *v, int i, int sig)
{
	int r;

	if (i < 0 || i >= v->ninst || !v->inst[i].alive || v->inst[i].pidfd < 0)
		return;
	r = proc_signal(v->inst[i].pidfd, sig);
	if (r && r != -ESRCH)
		log_warnx("%s: cannot signal pid %d: %s", vname(v), v->inst[i].pid, strerror(-r));
}

void signal_all(struct version *v, int sig)
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
 * Without a cgroup, an instance's tree is its process group: it leads its
 * own session (proc.c), and the group outlives it while a member runs.
 */
static bool pgroups(const struct version *v)
{
	return v->cg_fd < 0 && !v->adopted;
}

void adopted_tree_note(struct version *v)
{
	pid_t pids[ADOPT_TREE_MAX];
	int n, k;

	n = v->inst[0].pid > 1 ? proc_descendants(&v->inst[0].pid, 1, pids, ADOPT_TREE_MAX) : 0;
	for (k = 0, v->nadopt_tree = 0; k < n; k++) {
		v->adopt_tree[v->nadopt_tree] = pids[k];
		v->adopt_start[v->nadopt_tree] = proc_starttime(pids[k]);
		if (v->adopt_start[v->nadopt_tree])
			v->nadopt_tree++;
	}
	log_debug("%s: %d process(es) in the adopted tree", vname(v), v->nadopt_tree);
}

/*
 * An adopted server cannot be moved into a cgroup: SIGKILL reaches every
 * process found at adoption that is still the same process (start time),
 * and all descendants of those and of its main process now.
 */
static void kill_adopted_tree(struct version *v)
{
	pid_t roots[ADOPT_TREE_MAX + 1], pids[4 * ADOPT_TREE_MAX];
	int n = 0, k, m;

	if (v->inst[0].pid > 1 && v->inst[0].alive)
		roots[n++] = v->inst[0].pid;
	for (k = 0; k < v->nadopt_tree; k++)
		if (proc_starttime(v->adopt_tree[k]) == v->adopt_start[k])
			roots[n++] = v->adopt_tree[k];
	m = proc_descendants(roots, n, pids, 4 * ADOPT_TREE_MAX);
	for (k = 0; k < m; k++)
		kill(pids[k], SIGKILL);
	log_info("%s: SIGKILL to the %d process(es) of its adopted tree", vname(v), m);
}

/* Processes of one instance's tree looked for at its kill-after bound. */
#define INST_TREE_MAX 1024

void kill_inst_tree(struct version *v, int i)
{
	pid_t pids[INST_TREE_MAX], root;
	int n, k;

	if (i < 0 || i >= v->ninst || !v->inst[i].alive || v->inst[i].pid <= 1)
		return;
	root = v->inst[i].pid;
	/* Found before anything dies: a killed parent's children are reparented. */
	n = proc_descendants(&root, 1, pids, INST_TREE_MAX);
	signal_one(v, i, SIGKILL);
	/* A spawned instance leads its own session: its group outlives it while a member runs. */
	if (!v->adopted)
		kill(-root, SIGKILL);
	for (k = 0; k < n; k++)
		if (pids[k] != root)
			kill(pids[k], SIGKILL);
	log_info("%s: SIGKILL to instance %d (pid %d)%s and %d process(es) below it", vname(v), i,
		 root, v->adopted ? "" : ", its process group", n > 0 ? n - 1 : 0);
}

void signal_tree(struct version *v, int sig)
{
	struct fsm_event e = {.type = FE_TREE_EMPTY, .v = v};
	int i, r = 0;

	if (v->adopted) {
		if (sig == SIGKILL)
			kill_adopted_tree(v);
		signal_all(v, sig);
		return;
	}
	if (v->cg_fd >= 0) {
		r = sig == SIGKILL ? cg_kill(v->cg_fd) : cg_signal(v->cg_fd, sig);
		if (r < 0)
			log_warnx("%s: cannot signal its cgroup: %s", vname(v), strerror(-r));
		else
			return;
	}
	/* pid is still our child (not reaped) or its group outlived it. */
	for (i = 0; i < v->ninst; i++)
		if (v->inst[i].pid > 1)
			kill(-v->inst[i].pid, sig);
	signal_all(v, sig);
	/*
	 * Nothing tells when a process group is empty: after SIGKILL, which
	 * nothing escapes, it counts as empty; its leader's exit still counts.
	 */
	if (sig == SIGKILL && pgroups(v))
		fsm_feed(v->svc, &e);
}

/* Whether any process of v's tree runs: 1, 0, or -1 when that cannot be read. */
static int tree_runs(struct version *v)
{
	int i, r;

	/*
	 * An instance not reaped yet is a process of its tree, and one just
	 * forked may not be in its cgroup or lead its process group yet:
	 * proc_spawn() returns before the child's first step.
	 */
	for (i = 0; i < v->ninst && !v->adopted; i++)
		if (v->inst[i].pidfd >= 0)
			return 1;
	if (v->cg_fd >= 0) {
		r = cg_populated(v->cg_fd);
		return r < 0 ? -1 : r;
	}
	if (!pgroups(v))
		return 0;
	for (i = 0; i < v->ninst; i++)
		if (v->inst[i].pid > 1 && (kill(-v->inst[i].pid, 0) == 0 || errno == EPERM))
			return 1;
	return 0;
}

void tree_check(struct version *v)
{
	struct fsm_event e = {.type = FE_TREE_EMPTY, .v = v};

	/* Also before FE_SPAWNED sets tree (queued, it is applied first). */
	if (v->freed || tree_runs(v) != 0)
		return;
	fsm_feed(v->svc, &e);
}

void on_cgroup_events(void)
{
	struct service *s;
	int i, vs;

	cg_events_drain();
	/* Which watch fired matters less than what each file says now. */
	for (i = 0; (s = service_at(i)); i++)
		for (vs = 0; vs < MAX_VERSIONS; vs++)
			if (s->slot[vs] && s->slot[vs]->cg_fd >= 0 && s->slot[vs]->tree)
				tree_check(s->slot[vs]);
}

int version_cgroup_open(struct version *v, bool make, char *err, size_t errlen)
{
	struct cg_limits lim = {
	    .memory_max = v->svc->conf.memory_max,
	    .cpu_max_pct = v->svc->conf.cpu_max_pct,
	    .pids_max = v->svc->conf.pids_max,
	};
	unsigned long long n;
	int fd;

	if (!cg_enabled() || v->adopted)
		return 0;
	fd = make ? cg_version_make(v->svc->conf.name, v->num, &lim, err, errlen)
		  : cg_version_find(v->svc->conf.name, v->num);
	if (fd < 0)
		return fd;
	v->cg_fd = fd;
	/* OOM kills from before (an earlier agent's) are not this agent's to name. */
	if (cg_read_key(fd, "memory.events", "oom_kill", &n) == 0)
		v->oom_seen = n;
	v->cg_wd = cg_watch(fd);
	if (v->cg_wd < 0) {
		snprintf(err, errlen, "cannot watch %s's cgroup: %s", vname(v),
			 strerror(-v->cg_wd));
		return v->cg_wd;
	}
	return 0;
}

void version_restore_tree(struct version *v)
{
	char err[200];

	if (v->adopted) {
		/* What was found at adoption is not in the state: its main process's tree now. */
		if (v->inst[0].alive)
			adopted_tree_note(v);
		return;
	}
	if (cg_enabled() && version_cgroup_open(v, false, err, sizeof(err)) < 0)
		log_warnx("%s: has no cgroup (started without cgroups?): its tree is its "
			  "instances' process groups",
			  vname(v));
	/* Unknown (-1) counts as running: the drain deadlines still bound it. */
	v->tree = tree_runs(v) != 0;
}

void version_cgroup_remove(struct version *v)
{
	if (v->cg_fd < 0)
		return;
	cg_unwatch(v->cg_wd);
	close(v->cg_fd);
	v->cg_fd = v->cg_wd = -1;
	cg_version_remove(v->svc->conf.name, v->num);
}

int version_tree(struct version *v, pid_t *pids, int max)
{
	if (v->cg_fd < 0)
		return -ENOENT;
	return cg_pids(v->cg_fd, pids, max);
}

int version_tree_stats(struct version *v, struct tree_stats *ts)
{
	pid_t pids[TREE_STATS_MAX];
	int n, k;

	memset(ts, 0, sizeof(*ts));
	if (v->cg_fd < 0)
		return -ENOENT;
	n = cg_pids(v->cg_fd, pids, TREE_STATS_MAX);
	if (n < 0)
		return n;
	ts->procs = n;
	for (k = 0; k < n && k < TREE_STATS_MAX; k++) {
		char st, comm[32];

		if (!proc_state(pids[k], &st, comm, sizeof(comm)) && (st == 'T' || st == 't'))
			ts->stopped++;
	}
	if (!cg_cpu_usec(v->cg_fd, &ts->cpu_usec))
		ts->have_cpu = true;
	ts->have_mem = !cg_read_u64(v->cg_fd, "memory.current", &ts->mem);
	ts->have_mem_peak = !cg_read_u64(v->cg_fd, "memory.peak", &ts->mem_peak);
	return 0;
}

/* The kernel saw the last connection of a watched version close. */
void on_zero(const struct track_event *te)
{
	struct timespec ts;
	struct service *s;
	int i, vs;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (i = 0; (s = service_at(i)); i++) {
		if (s->gone || s->id != (int)te->service)
			continue;
		for (vs = 0; vs < MAX_VERSIONS; vs++) {
			struct version *v = s->slot[vs];
			struct fsm_event e = {
			    .type = FE_ZERO,
			    .v = v,
			    .zero_ns = (long long)te->ktime_ns,
			    .now_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
			    .turn_cpu_us = loop_turn_cpu_us(),
			};

			if (v && v->num == (int)te->version && v->phase == VP_DRAIN_WAIT)
				fsm_feed(s, &e);
		}
	}
}

/* A version's timer ticking every ms (probes, checks). */

/* A new version of s started as spec says. */
struct version *version_new_spec(struct service *s, const struct spawn_desc *spec, char *err,
				 size_t errlen)
{
	const struct service_conf *c = &s->conf;
	struct version *v;
	int vslot, i, j;

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
	if (spawn_desc_copy(&v->spec, spec)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
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
	if (version_cgroup_open(v, true, err, errlen) < 0)
		goto fail;
	if (dp_register(v) < 0) {
		snprintf(err, errlen, "cannot create the connection counters: %s", strerror(errno));
		goto fail;
	}
	s->next_num++;
	s->slot[vslot] = v;
	return v;
fail:
	version_cgroup_remove(v);
	version_free(v);
	return NULL;
}

int version_listeners(struct version *v, int i, char *err, size_t errlen)
{
	const struct service_conf *c = &v->svc->conf;
	struct instance *in = &v->inst[i];
	int j;

	for (j = 0; j < c->nlisten; j++)
		if (in->lfd[j] < 0) {
			socklen_t clen = sizeof(in->cookie[j]);

			in->lfd[j] = make_listener(c, j, err, errlen);
			if (in->lfd[j] < 0)
				return -EADDRNOTAVAIL;
			getsockopt(in->lfd[j], SOL_SOCKET, SO_COOKIE, &in->cookie[j], &clen);
		}
	return 0;
}

struct version *version_new(struct service *s, char *const *argv, char *const *env, char *err,
			    size_t errlen)
{
	struct spawn_desc d = {0};
	int r = spawn_desc_from_conf(&d, &s->conf, argv, env);
	struct version *v;

	if (r == -E2BIG) {
		snprintf(err, errlen,
			 "%s: more than %d environment variables with --env and the service's "
			 "environment lines; pass fewer",
			 s->conf.name, MAX_ENV);
		return NULL;
	}
	if (r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v = version_new_spec(s, &d, err, errlen);
	spawn_desc_free(&d);
	return v;
}

/* Start instance i of v on its listeners (made again if a retired process closed them). */
int version_spawn_one(struct version *v, int i, char *err, size_t errlen)
{
	const struct service_conf *c = &v->svc->conf;
	struct instance *in = &v->inst[i];
	char names[MAX_LISTEN * 40] = "";
	int fds[MAX_LISTEN];
	int j, r, cgp = -1;
	struct spawned sp;
	struct spawn_req req = {
	    .argv = v->spec.argv,
	    .env = v->spec.env,
	    .fds = fds,
	    .nfds = c->nlisten,
	    .fdnames = names,
	    .notify = c->ready == READY_NOTIFY ? notify_path() : NULL,
	    .service = c->name,
	    .version = v->num,
	    .instance = i,
	    .user = v->spec.user,
	    .workdir = v->spec.workdir,
	    .in_cgroup = v->cg_fd >= 0,
	    .cg_procs = -1,
	};

	for (j = 0; j < c->nlisten; j++) {
		if (j)
			strcat(names, ":");
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s-%d", c->name, j);
	}
	r = version_listeners(v, i, err, errlen);
	if (r)
		return r;
	if (v->cg_fd >= 0) {
		cgp = cg_procs_fd(v->cg_fd);
		if (cgp < 0) {
			snprintf(err, errlen, "%s: cannot open its cgroup.procs: %s", vname(v),
				 strerror(-cgp));
			return cgp;
		}
		req.cg_procs = cgp;
	}
	for (j = 0; j < c->nlisten; j++)
		fds[j] = in->lfd[j];
	/*
	 * Returns before the child's exec: a failure there (user, cgroup,
	 * workdir, exec) is this instance exiting, "cannot start ..." (proc.h),
	 * and the state machine fails the start with it.
	 */
	r = proc_spawn(&req, &sp, err, errlen);
	if (cgp >= 0)
		close(cgp);
	if (r)
		return r;
	in->pid = sp.pid;
	in->pidfd = sp.pidfd;
	in->execfd = sp.execfd;
	in->alive = true;
	in->starttime = proc_starttime(in->pid);
	in->exit_desc[0] = '\0';
	v->nalive++;
	ep_add(in->pidfd, &in->ev, EV_PIDFD, v, i, EPOLLIN);
	/*
	 * ready = none counts an instance ready once started: its exec, not
	 * its fork.  Its exec pipe says when (EPOLLHUP at the exec; text, with
	 * its exit, if it failed).  One that cannot be watched counts at once.
	 */
	in->exec_watched = false;
	in->execd = true;
	if (c->ready == READY_NONE && in->execfd >= 0 &&
	    !ep_add(in->execfd, &in->exec_ev, EV_EXEC, v, i, EPOLLIN)) {
		in->exec_watched = true;
		in->execd = false;
	}
	log_debug("%s: instance %d started, pid %d", vname(v), i, in->pid);
	return 0;
}

static bool version_execd(const struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++)
		if (!v->inst[i].execd)
			return false;
	return true;
}

bool version_spawn_waits(struct version *v)
{
	if (v->svc->conf.ready != READY_NONE || v->adopted || version_execd(v))
		return false;
	v->spawn_wait = true;
	v->spawn_deadline = now_ms() + v->svc->conf.ready_timeout_ms;
	timerfd_at(v->tfd, v->spawn_deadline);
	return true;
}

/* The start FA_SPAWN left open: every instance exec'd, or not in time. */
static void spawn_done(struct version *v, bool ok, const char *why)
{
	struct fsm_event e = {.type = FE_SPAWNED, .v = v, .ok = ok, .why = why};

	v->spawn_wait = false;
	fsm_feed(v->svc, &e);
}

void on_exec(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	struct pollfd p = {.fd = in->execfd, .events = POLLIN};

	if (v->freed || !in->exec_watched || in->execfd < 0 || poll(&p, 1, 0) <= 0)
		return;
	ep_del(in->execfd);
	in->exec_watched = false;
	/* Text: it failed; its exit (proc_reap) reads it and fails the start. */
	if (p.revents & POLLIN)
		return;
	proc_exec_close(&in->execfd);
	in->execd = true;
	if (v->spawn_wait && version_execd(v))
		spawn_done(v, true, NULL);
}

int version_spawn(struct version *v, char *err, size_t errlen)
{
	int i, r;

	for (i = 0; i < v->ninst; i++) {
		r = version_spawn_one(v, i, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/* READY=1 from instance i: the state machine says whether it is ready yet. */
void instance_notified(struct version *v, int i)
{
	struct fsm_event e = {.type = FE_NOTIFIED, .v = v, .inst = i};

	if (v->freed || v->inst[i].ready)
		return;
	fsm_feed(v->svc, &e);
}

void instance_ready(struct version *v, int i)
{
	struct fsm_event e = {.type = FE_READY, .v = v, .inst = i};

	if (v->freed || v->inst[i].ready)
		return;
	fsm_feed(v->svc, &e);
}

/*
 * Connections the kernel closed because a process of v died holding them
 * (counted by track): the one loss baton cannot prevent, said with its count.
 */
static void report_lost(struct version *v, int i, const char *desc)
{
	struct version_counts n = {0};

	if (dp_counts(v, &n) || n.lost <= v->lost_seen)
		return;
	log_warnx("%s: instance %d (pid %d) %s: %llu open connection(s) lost with it", vname(v), i,
		  v->inst[i].pid, desc, (unsigned long long)(n.lost - v->lost_seen));
	events_add(v->svc->conf.name, "lost-connections", v->num,
		   "%s: v%d instance %d (pid %d) %s: %llu open connection(s) lost with it",
		   v->svc->conf.name, v->num, i, v->inst[i].pid, desc,
		   (unsigned long long)(n.lost - v->lost_seen));
	v->lost_seen = n.lost;
}

/*
 * A SIGKILL that the kernel's OOM killer sent inside the version's cgroup
 * (its memory.events oom_kill went up): said in the exit's description, so
 * the crash report and a canary's rollback say so (memory-max, or the host's memory).
 */
static void oom_note(struct version *v, char *desc, size_t len)
{
	unsigned long long n;
	size_t l = strlen(desc);

	if (v->cg_fd < 0 || cg_read_key(v->cg_fd, "memory.events", "oom_kill", &n) ||
	    n <= v->oom_seen)
		return;
	v->oom_seen = n;
	snprintf(desc + l, len - l, " (OOM killer)");
}

void on_exit_of(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	struct fsm_event e = {.type = FE_EXIT, .v = v, .inst = i};
	int status = 0, r;
	char desc[EXIT_DESC_MAX];

	if (v->freed)
		return;
	r = proc_reap(in->pidfd, &in->execfd, &status, desc, sizeof(desc));
	if (r > 0 || r == -ECHILD) {
		if (in->exec_watched)
			ep_del(in->execfd);
		in->exec_watched = false;
		proc_exec_close(&in->execfd);
	}
	if (r == -ECHILD)
		/* Started by an earlier agent: not ours to reap, but it is gone. */
		snprintf(desc, sizeof(desc),
			 "exited (started by an earlier agent: status unknown)");
	else if (r <= 0)
		return;
	else if (status == 128 + SIGKILL)
		oom_note(v, desc, sizeof(desc));
	ep_del(in->pidfd);
	close(in->pidfd);
	in->pidfd = -1;
	snprintf(in->exit_desc, sizeof(in->exit_desc), "%s", desc);
	report_lost(v, i, desc);
	e.why = desc;
	/* ready = none, its start still open: it did not start ("cannot start ..."). */
	if (v->spawn_wait) {
		spawn_done(v, false, desc);
		if (v->freed)
			return;
	}
	/* The rest of its tree may be gone already: said first, the exit then ends it. */
	tree_check(v);
	if (!v->freed)
		fsm_feed(v->svc, &e);
}

/*
 * A version's timer: while it starts, the readiness tick (probes and checks,
 * then the state machine looks at the deadline); while it is the new
 * version of a rollout, the health tick; else a drain deadline.
 */
void on_timer(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct service *s = v->svc;
	struct fsm_event e = {.type = FE_VTIMER, .v = v};
	long long now;
	uint64_t n;
	int i;

	if (v->freed || read(v->tfd, &n, sizeof(n)) < 0)
		return;
	now = now_ms();
	/* A start given up (the deploy failed or was aborted): the timer is the state machine's. */
	if (v->spawn_wait &&
	    !(v->phase == VP_STARTING || (v->phase == VP_ACTIVE && s->starting == v->vslot)))
		v->spawn_wait = false;
	if (v->spawn_wait) {
		char why[160];

		if (now < v->spawn_deadline) {
			timerfd_at(v->tfd, v->spawn_deadline);
			return;
		}
		for (i = 0; i < v->ninst && v->inst[i].execd; i++)
			;
		snprintf(why, sizeof(why),
			 "instance %d (pid %d) had not started its program within ready-timeout "
			 "%u ms",
			 i, i < v->ninst ? v->inst[i].pid : 0, c->ready_timeout_ms);
		spawn_done(v, false, why);
		return;
	}
	if (v->phase == VP_STARTING || (v->phase == VP_ACTIVE && s->starting == v->vslot) ||
	    fsm_rolling_ticks(s, v)) {
		/* rolling: the new version's serving instances are health-checked meanwhile */
		if (v->phase == VP_ACTIVE && ro_new(s) == v && s->ro.stage == RO_ROLLING)
			health_tick(v);
		for (i = 0; i < v->ninst && !v->freed; i++) {
			if (v->inst[i].ready || !v->inst[i].alive)
				continue;
			if (c->ready == READY_TCP ||
			    (c->ready == READY_NOTIFY && v->inst[i].notified))
				probe_check(v, i);
			if (c->ready == READY_HTTP || c->ready == READY_EXEC) {
				check_timed_out(v, i, now);
				if (!v->inst[i].chk.busy && now >= v->inst[i].chk.next_at)
					check_start(v, i, true);
			}
			/* A readiness result may have switched or ended the deploy. */
			if (v->freed || !(v->phase == VP_STARTING ||
					  (v->phase == VP_ACTIVE && s->starting == v->vslot) ||
					  fsm_rolling_ticks(s, v)))
				return;
		}
		fsm_feed(s, &e);
		return;
	}
	if (v->phase == VP_ACTIVE) {
		if (ro_new(s) == v && (s->ro.stage == RO_STEPPING ||
				       s->ro.stage == RO_AFTER_SWITCH || s->ro.stage == RO_ROLLING))
			health_tick(v);
		return;
	}
	/* Without cgroups nothing says when a process group empties: look at each deadline. */
	if (pgroups(v))
		tree_check(v);
	if (v->freed)
		return;
	/* (A rolling rollout's old version also ticks before it, for its instances' counts.) */
	if (v->phase == VP_DRAIN_WAIT && v->deadline && now_ms() >= v->deadline) {
		struct version_counts cn = {0};

		dp_counts(v, &cn);
		log_warnx("%s: %lld connection(s) still open at drain-timeout %u ms", vname(v),
			  (long long)cn.live, c->drain_timeout_ms);
	}
	fsm_feed(s, &e);
}
