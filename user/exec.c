/* SPDX-License-Identifier: MIT */
/*
 * The executor: feeds an event to the state machine (fsm.c) and performs
 * the actions it returns, in order.  What an action learns that the rules
 * must hear (a spawn failed, a hook could not run, a watched version is
 * already empty) is queued as the next event, after the current actions.
 * Nothing here decides anything about a rollout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adopt.h"
#include "agent.h"
#include "checks.h"
#include "ctlserver.h"
#include "dp.h"
#include "events.h"
#include "history.h"
#include "exec.h"
#include "httpdrain.h"
#include "httpstat.h"
#include "log.h"
#include "proc.h"
#include "services.h"
#include "versions.h"
#include "webhook.h"

/* Events learned while performing actions: fed once the current actions are done. */
#define QUEUE_MAX 64

struct queued {
	struct service *s;
	struct fsm_event e;
	char why[300];
};

static struct queued queue[QUEUE_MAX];
static int q_head, q_len;
static int depth;
static struct fsm_out out;

static void enqueue(struct service *s, const struct fsm_event *e)
{
	struct queued *q;

	if (q_len == QUEUE_MAX) {
		/* The rules produce a handful per step; this is a bug, said loudly. */
		log_warnx("%s: event queue full: %s dropped", s->conf.name, fsm_ev_names[e->type]);
		return;
	}
	q = &queue[(q_head + q_len++) % QUEUE_MAX];
	q->s = s;
	q->e = *e;
	if (e->why) {
		snprintf(q->why, sizeof(q->why), "%s", e->why);
		q->e.why = q->why;
	}
}

/* ---- processes that were killed: reaped when their pidfd says so ---------------- */

#define REAP_MAX 64

struct reaping {
	pid_t pid;
	int pidfd;
	struct evsrc ev;
};

static struct reaping *reaping[REAP_MAX];

void reap_later(pid_t pid, int pidfd)
{
	int i;

	/* Not reaped yet, so pid still names our child and its group. */
	kill(-pid, SIGKILL);
	proc_signal(pidfd, SIGKILL);
	for (i = 0; i < REAP_MAX && reaping[i]; i++)
		;
	if (i < REAP_MAX)
		reaping[i] = calloc(1, sizeof(*reaping[i]));
	if (i == REAP_MAX || !reaping[i] ||
	    ep_add(pidfd, &reaping[i]->ev, EV_REAP, reaping[i], 0, EPOLLIN)) {
		/* No room to wait for it: the kernel reaps it when the agent exits. */
		log_warnx("cannot wait for killed pid %d; it stays a zombie until the agent exits",
			  (int)pid);
		if (i < REAP_MAX) {
			free(reaping[i]);
			reaping[i] = NULL;
		}
		close(pidfd);
		return;
	}
	reaping[i]->pid = pid;
	reaping[i]->pidfd = pidfd;
}

void on_reap(struct reaping *r)
{
	siginfo_t si = {0};
	int i, rc;

	rc = waitid(P_PIDFD, r->pidfd, &si, WEXITED | WNOHANG);
	if (rc < 0 && errno != ECHILD)
		return;
	if (rc == 0 && !si.si_pid)
		return; /* not yet (errno is stale after a success) */
	ep_del(r->pidfd);
	close(r->pidfd);
	for (i = 0; i < REAP_MAX; i++)
		if (reaping[i] == r)
			reaping[i] = NULL;
	free(r);
}

/* ---- actions -------------------------------------------------------------------- */

static void attach(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	int i, j, r;

	for (j = 0; j < c->nlisten; j++)
		for (i = 0; i < v->ninst; i++)
			if (v->inst[i].lfd[j] >= 0) {
				r = dp_attach(v->inst[i].lfd[j]);
				if (r)
					log_warnx("%s: cannot attach the steer program to %s: %s",
						  vname(v), c->listen[j].text, strerror(-r));
				break;
			}
}

static void run_hook(struct service *s, enum hook_point h)
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
	struct fsm_event e = {.type = FE_HOOK_DONE, .ok = false};
	struct spawned sp;

	snprintf(hook_env, sizeof(hook_env), "BATON_HOOK=%s", hook_name(h));
	if (ro->old_num)
		snprintf(prev_env, sizeof(prev_env), "BATON_PREVIOUS_VERSION=v%d", ro->old_num);
	else
		snprintf(prev_env, sizeof(prev_env), "BATON_PREVIOUS_VERSION=");
	/* A failure before its exec is its exit, "cannot start ...": the hook failed. */
	if (proc_spawn(&req, &sp, err, sizeof(err))) {
		ro->hook_pidfd = -1;
		e.why = err;
		enqueue(s, &e);
		return;
	}
	ro->hook_pid = sp.pid;
	ro->hook_pidfd = sp.pidfd;
	ro->hook_execfd = sp.execfd;
	ep_add(ro->hook_pidfd, &ro->hook_ev, EV_HOOK, s, 0, EPOLLIN);
	log_info("%s: running the %s hook %s (pid %d)", c->name, hook_name(h), c->hook[h][0],
		 ro->hook_pid);
}

static void kill_hook(struct service *s)
{
	struct rollout *ro = &s->ro;

	if (ro->hook_pidfd < 0)
		return;
	ep_del(ro->hook_pidfd);
	proc_exec_close(&ro->hook_execfd);
	reap_later(ro->hook_pid, ro->hook_pidfd);
	ro->hook_pidfd = -1;
	log_warnx("%s: killed the %s hook (pid %d)", s->conf.name, hook_name(ro->hook),
		  ro->hook_pid);
}

/* Watching for zero: a version already empty is reported now (watch first, then look). */
static void watch(struct service *s, struct version *v, bool on)
{
	struct version_counts n = {0};
	struct fsm_event e = {.type = FE_ZERO, .v = v};
	int r;

	dp_watch(v, on);
	if (!on)
		return;
	r = dp_counts(v, &n);
	if (!r && n.live <= 0) {
		enqueue(s, &e);
		return;
	}
	if (r)
		log_warnx("%s: cannot read its connection count (%s); waiting for the kernel's "
			  "report or drain-timeout %u ms",
			  vname(v), strerror(-r), s->conf.drain_timeout_ms);
	else
		log_info("%s: waiting for %lld connection(s) to close (drain-timeout %u ms)",
			 vname(v), (long long)n.live, s->conf.drain_timeout_ms);
}

/* ---- drain-reset in bounded steps ------------------------------------------------ */

#define RESET_STEP_US 2000 /* reset work per loop turn: what a status request may wait */

static int reset_tfd = -1;
static struct evsrc reset_ev;

/* End a version's drain-reset cursor: complete, signalled, back in service or gone. */
void reset_stop(struct version *v)
{
	if (!v->reset)
		return;
	log_warnx("%s: reset %ld connection(s) (drain-reset)", vname(v),
		  track_reset_count(v->reset));
	track_reset_end(v->reset);
	v->reset = NULL;
}

static void reset_arm(void)
{
	if (reset_tfd < 0) {
		reset_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (reset_tfd < 0 || ep_add(reset_tfd, &reset_ev, EV_RESET, NULL, 0, EPOLLIN)) {
			log_warn("drain-reset: timerfd");
			if (reset_tfd >= 0)
				close(reset_tfd);
			reset_tfd = -1;
			return;
		}
	}
	/* Next turn of the loop, after what else is ready. */
	timerfd_at(reset_tfd, now_ms());
}

static void reset_done(struct service *s, struct version *v, int r)
{
	struct fsm_event e = {.type = FE_RESET_DONE, .v = v};

	if (r < 0)
		log_warnx("%s: cannot reset its connections: %s%s", vname(v), strerror(-r),
			  r == -EOPNOTSUPP ? " (kernel without CONFIG_INET_DIAG_DESTROY)" : "");
	reset_stop(v);
	fsm_feed(s, &e);
}

static void reset_start(struct service *s, struct version *v)
{
	int r = dp_reset_begin(v, &v->reset);

	if (r) {
		v->reset = NULL;
		reset_done(s, v, r);
		return;
	}
	reset_arm();
}

/* One bounded step of every drain-reset under way; the timer brings the next. */
void on_reset_tick(void)
{
	struct service *s;
	uint64_t n;
	int i, vs, r;
	bool more = false;

	if (read(reset_tfd, &n, sizeof(n)) < 0)
		return;
	for (i = 0; (s = service_at(i)); i++)
		for (vs = 0; vs < MAX_VERSIONS; vs++) {
			struct version *v = s->slot[vs];

			if (!v || !v->reset || v->freed)
				continue;
			r = track_reset_step(v->reset, RESET_STEP_US);
			if (r > 0)
				more = true;
			else
				reset_done(s, v, r);
		}
	if (more)
		reset_arm();
}

static void ready_checks(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct service *s = v->svc;
	int i;

	timerfd_every(v->tfd, PROBE_TICK_MS);
	/* Only instances that run and are not ready (rolling starts them a few at a time). */
	if (c->ready == READY_TCP)
		for (i = 0; i < v->ninst; i++)
			if (v->inst[i].alive && !v->inst[i].ready)
				probe_start(v, i);
	if (c->ready == READY_HTTP || c->ready == READY_EXEC)
		for (i = 0; i < v->ninst && s->slot[v->vslot] == v && !v->freed; i++)
			if (v->inst[i].alive && !v->inst[i].ready && !v->inst[i].chk.busy)
				check_start(v, i, true);
}

static void health_checks(struct version *v)
{
	long long now = now_ms();
	int i;

	for (i = 0; i < v->ninst; i++)
		v->inst[i].chk.next_at = now;
	v->next_sample = now;
	v->sampled = false;
	v->bad_intervals = 0;
	v->lat.win_on = false;
	timerfd_every(v->tfd, HEALTH_TICK_MS);
}

static void stop_checks(struct version *v, int only)
{
	int i;

	for (i = 0; i < v->ninst; i++)
		if (only < 0 || i == only) {
			probe_stop(v, i);
			check_close(v, i);
		}
}

/* Final counts into its history entry, pins and counters gone, its memory after the batch. */
static void forget(struct service *s, struct version *v)
{
	bool adopted = v->adopted;
	int k, n;

	for (k = s->nhist - 1; k >= 0 && s->hist[k].num != v->num; k--)
		;
	if (k >= 0)
		dp_counts(v, &s->hist[k].counts);
	n = dp_pin_del_version(v);
	if (n > 0)
		log_info("%s: removed %d client pin(s) to it", vname(v), n);
	httpstat_leave(v);
	dp_forget(v);
	version_cgroup_remove(v);
	version_free(v);
	/* The track link made for its listeners' cgroup may be needed no more. */
	if (adopted)
		adopt_track_prune();
}

static void deploy_done(struct service *s, const struct fsm_action *a)
{
	const struct rollout *ro = &s->ro;

	const struct vrecord *r = history_find(s, ro->new_num);

	if (a->ok && r && r->rollback_of) {
		/* baton rollback started a version again: which one, for its answer. */
		reply(a->c,
		      json_pack("{s:b, s:i, s:i, s:I, s:o}", "ok", 1, "version", ro->new_num,
				"rollback_of", r->rollback_of, "ready_ms", (json_int_t)ro->ready_ms,
				"previous", ro->old_num ? json_integer(ro->old_num) : json_null()));
		return;
	}
	if (a->ok)
		reply(a->c,
		      json_pack("{s:b, s:i, s:I, s:o, s:s, s:I}", "ok", 1, "version", ro->new_num,
				"ready_ms", (json_int_t)ro->ready_ms, "previous",
				ro->old_num ? json_integer(ro->old_num) : json_null(), "strategy",
				ro->strategy == STRATEGY_CANARY	   ? "canary"
				: ro->strategy == STRATEGY_ROLLING ? "rolling"
								   : "bluegreen",
				"rollout_ms", (json_int_t)(now_ms() - ro->t_start)));
	else
		reply(a->c, json_pack("{s:b, s:s, s:i, s:b}", "ok", 0, "error", a->text, "version",
				      ro->new_num, "rolled_back", a->rolled_back));
}

/* One instance (rolling): FE_SPAWNED with inst says whether it started. */
static void spawn_one(struct service *s, struct version *v, int i)
{
	struct fsm_event e = {.type = FE_SPAWNED, .v = v, .inst = i, .ok = true};
	char err[300];

	if (version_spawn_one(v, i, err, sizeof(err))) {
		e.ok = false;
		e.why = err;
	} else {
		log_info("%s: started instance %d (pid %d) of %s", vname(v), i, v->inst[i].pid,
			 v->spec.argv[0]);
	}
	enqueue(s, &e);
	tree_check(v);
}

static void redeploy(struct service *s, int num, struct client *c);

static void perform(struct service *s, const struct fsm_action *a)
{
	struct version *v = a->v;
	char err[300];

	if (v && v->freed)
		return;
	switch (a->type) {
	case FA_POLICY:
		/* Versions coming under analysis are counted before they take traffic. */
		httpstat_sync(s);
		dp_policy(s);
		break;
	case FA_PLACE:
		dp_place(v);
		break;
	case FA_UNPLACE:
		dp_unplace(v);
		break;
	case FA_UNPLACE_INST:
		dp_unplace_instance(v, a->inst);
		break;
	case FA_RELEASE:
		release_listeners(v, a->inst);
		/* An adopted server's listeners gone: the track link made for them may go. */
		if (v->adopted)
			adopt_track_prune();
		break;
	case FA_ATTACH:
		attach(v);
		break;
	case FA_SPAWN: {
		struct fsm_event e = {.type = FE_SPAWNED, .v = v, .ok = true};

		if (version_spawn(v, err, sizeof(err))) {
			e.ok = false;
			e.why = err;
		} else {
			log_info("%s: started %d instance(s) of %s", vname(v), v->ninst,
				 v->spec.argv[0]);
		}
		/* ready = none: FE_SPAWNED once every instance exec'd (versions.c). */
		if (!e.ok || !version_spawn_waits(v))
			enqueue(s, &e);
		/* A tree already empty (all died at once, or none started) gives no cgroup event.
		 */
		tree_check(v);
		break;
	}
	case FA_SIGNAL:
		signal_all(v, (int)a->arg);
		break;
	case FA_PLACE_INST:
		/*
		 * An instance started again (rolling rollback) gets new listeners:
		 * made here, so that they are the ones placed (and probed).
		 */
		if (!v->adopted && version_listeners(v, a->inst, err, sizeof(err)))
			log_warnx("%s: instance %d: %s", vname(v), a->inst, err);
		dp_place_instance(v, a->inst);
		break;
	case FA_SPAWN_INST:
		spawn_one(s, v, a->inst);
		break;
	case FA_SIGNAL_INST:
		signal_one(v, a->inst, (int)a->arg);
		break;
	case FA_KILL_INST:
		kill_inst_tree(v, a->inst);
		break;
	case FA_INST_CONNS: {
		struct fsm_event e = {.type = FE_INST_CONNS, .v = v};

		e.ok = !dp_inst_conns(v, e.inst_conns);
		enqueue(s, &e);
		break;
	}
	case FA_SIGNAL_TREE:
		signal_tree(v, (int)a->arg);
		break;
	case FA_WATCH:
		watch(s, v, a->arg != 0);
		break;
	case FA_RESET:
		reset_start(s, v);
		break;
	case FA_RESET_STOP:
		reset_stop(v);
		break;
	case FA_HTTP_DRAIN:
		http_drain_perform(s, v, a->inst, (int)a->arg);
		break;
	case FA_HTTP_RESTEER:
		http_resteer_perform(s, (int)a->arg);
		break;
	case FA_VTIMER:
		timerfd_at(v->tfd, a->arg);
		break;
	case FA_ACCEPT_PROBE:
		if (v->inst[a->inst].probe_fd < 0)
			probe_start(v, a->inst); /* checked at each readiness tick (on_timer) */
		break;
	case FA_READY_CHECKS:
		ready_checks(v);
		break;
	case FA_HEALTH_CHECKS:
		health_checks(v);
		break;
	case FA_STOP_CHECKS:
		stop_checks(v, a->inst);
		break;
	case FA_RO_TIMER:
		if (s->ro_tfd >= 0)
			timerfd_at(s->ro_tfd, a->arg);
		break;
	case FA_RUN_HOOK:
		run_hook(s, (enum hook_point)a->arg);
		break;
	case FA_KILL_HOOK:
		kill_hook(s);
		break;
	case FA_FORGET:
		forget(s, v);
		break;
	case FA_SERVICE_GONE:
		http_resteer_perform(s, 0);
		dp_service_del(s);
		history_clear(s);
		if (s->ro_tfd >= 0) {
			ep_del(s->ro_tfd);
			close(s->ro_tfd);
			s->ro_tfd = -1;
		}
		log_info("%s: removed from the configuration; its last version stopped",
			 s->conf.name);
		break;
	case FA_REPLY:
		if (a->ok)
			reply_ok(a->c, a->text);
		else
			reply_err(a->c, "%s", a->text);
		break;
	case FA_DEPLOY_DONE:
		deploy_done(s, a);
		break;
	case FA_PROGRESS:
		progress(a->c, "%s", a->text);
		break;
	case FA_CONFIRM:
		webhook_confirm(s, (int)a->arg);
		break;
	case FA_REDEPLOY:
		redeploy(s, (int)a->arg, a->c);
		break;
	case FA_COUNT:
		break;
	}
}

static void step(struct service *s, const struct fsm_event *e)
{
	struct ev_snap snap;
	const char *broken;
	int i;

	events_before(s, e, &snap);
	out.n = 0;
	out.overflow = false;
	fsm_step(s, e, now_ms(), &out);
	broken = fsm_check(s, &out);
	if (broken)
		log_warnx("%s: after %s: invariant broken: %s", s->conf.name, fsm_ev_names[e->type],
			  broken);
	/* An event an action leads to is queued (depth > 0), so out stays as it is. */
	for (i = 0; i < out.n; i++)
		perform(s, &out.a[i]);
	events_after(s, e, &snap, &out);
}

void fsm_feed(struct service *s, const struct fsm_event *ev)
{
	struct fsm_event e = *ev;

	if (!e.wall)
		e.wall = time(NULL);
	if (depth) {
		/* An action led here (a runtime callback): after the current actions. */
		enqueue(s, &e);
		return;
	}
	depth++;
	step(s, &e);
	while (q_len) {
		struct queued q = queue[q_head];

		q_head = (q_head + 1) % QUEUE_MAX;
		q_len--;
		if (q.e.why)
			q.e.why = q.why;
		if (!q.e.wall)
			q.e.wall = time(NULL);
		step(q.s, &q.e);
	}
	depth--;
	agent_check_shutdown();
}

/* v joins the rollback window (without a record it only cannot be started again). */
static void remember(struct service *s, struct version *v, int rollback_of)
{
	if (history_record(s, v, rollback_of, time(NULL)) < 0)
		log_warnx("%s: out of memory: not remembered for baton rollback", vname(v));
}

/*
 * baton rollback to a version that exited: it starts again from its record
 * (command, environment, user, directory) as a new version, rolled out
 * with the service's strategy; c waits for that rollout as for a deploy.
 */
static void redeploy(struct service *s, int num, struct client *c)
{
	struct fsm_event e = {.type = FE_DEPLOY, .c = c};
	const struct vrecord *r = history_find(s, num);
	struct version *v;
	char err[400];

	if (!r || !r->spec.argv[0]) {
		reply_err(c, "%s: v%d is no longer remembered (baton history %s)", s->conf.name,
			  num, s->conf.name);
		return;
	}
	if (access(r->spec.argv[0], X_OK) < 0) {
		reply_err(
		    c, "rollback: %.200s (the command of v%d): %s; restore it, or deploy another",
		    r->spec.argv[0], num, strerror(errno));
		return;
	}
	if (fsm_can_deploy(s, err, sizeof(err))) {
		reply_err(c, "%s", err);
		return;
	}
	v = version_new_spec(s, &r->spec, err, sizeof(err));
	if (!v) {
		reply_err(c, "%s", err);
		return;
	}
	log_info("%s: v%d is v%d started again (baton rollback)", s->conf.name, v->num, num);
	remember(s, v, num);
	e.v = v;
	fsm_feed(s, &e);
}

int deploy(struct service *s, char *const *argv, char *const *env, const struct deploy_opts *o,
	   struct client *c, char *err, size_t errlen)
{
	struct fsm_event e = {.type = FE_DEPLOY, .c = c};
	struct version *v;
	int r;

	r = fsm_can_deploy(s, err, errlen);
	if (r)
		return r;
	if (o && o->baseline && (s->active < 0 || s->slot[s->active]->adopted)) {
		snprintf(err, errlen,
			 "deploy: %s has %s to start a baseline of: deploy without --baseline",
			 s->conf.name,
			 s->active < 0 ? "no current version"
				       : "an adopted current version, not one");
		return -EINVAL;
	}
	if (o && o->adopt_pid)
		v = version_adopt(s, o->adopt_pid, err, errlen);
	else
		v = version_new(s, argv, env, err, errlen);
	if (!v)
		return -ENOMEM;
	if (o && o->baseline) {
		/* A fresh copy of the current version: same command, environment, user. */
		e.base = version_new_spec(s, &s->slot[s->active]->spec, err, errlen);
		if (!e.base) {
			/* Undo v: the state machine never saw it. */
			s->slot[v->vslot] = NULL;
			s->next_num--;
			dp_forget(v);
			version_cgroup_remove(v);
			version_free(v);
			return -ENOMEM;
		}
	}
	remember(s, v, 0);
	e.v = v;
	if (o) {
		e.opts = *o;
		e.have_opts = true;
	}
	fsm_feed(s, &e);
	return 0;
}

void on_hook(struct service *s)
{
	struct rollout *ro = &s->ro;
	struct fsm_event e = {.type = FE_HOOK_DONE};
	char desc[EXIT_DESC_MAX];
	int status = 0;

	if (ro->hook_pidfd < 0 ||
	    proc_reap(ro->hook_pidfd, &ro->hook_execfd, &status, desc, sizeof(desc)) <= 0)
		return;
	ep_del(ro->hook_pidfd);
	close(ro->hook_pidfd);
	ro->hook_pidfd = -1;
	e.ok = status == 0;
	e.why = desc;
	fsm_feed(s, &e);
}

void on_ro_timer(struct service *s)
{
	struct fsm_event e = {.type = FE_RO_TIMER};
	uint64_t n;

	if (read(s->ro_tfd, &n, sizeof(n)) < 0)
		return;
	fsm_feed(s, &e);
}
