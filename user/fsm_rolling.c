/* SPDX-License-Identifier: MIT */
/*
 * The state machine's rules for strategy = rolling: the new version's
 * instances start max-surge at a time and each takes traffic once ready;
 * old instances leave the map one by one (the one with the fewest live
 * connections first) as far as serving >= instances - max-unavailable
 * allows, and the processes never pass instances + max-surge.  Each
 * version's weight is its share of the serving instances.  A failed gate
 * or a new instance that exits or is not ready in time rolls back: the
 * new version drains and the old one is brought back to instances,
 * restarting the instances that already left.  What a retired instance
 * does until it exited (its drain, its signals) is fsm_rollretire.c's.
 *
 * Serving instances of the new version are always 0..serve_n-1 (steer
 * spreads over the first serve_n slots), so an instance placed only for
 * its readiness probe never gets a client.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"
#include "log.h"
#include "rollconf.h"

bool fsm_rolling(const struct service *s)
{
	return s->ro.stage == RO_ROLLING || s->ro.stage == RO_ROLLING_BACK;
}

/* An old instance that serves: alive, ready, not retiring. */
static bool old_serves(const struct instance *in)
{
	return in->alive && in->ready && !in->retiring;
}

static int old_serving(const struct version *ov)
{
	int i, n = 0;

	for (i = 0; ov && i < ov->ninst; i++)
		n += old_serves(&ov->inst[i]);
	return n;
}

/* Started, alive, not ready yet. */
static int starting(const struct version *v)
{
	int i, n = 0;

	for (i = 0; v && i < v->ninst; i++)
		n += v->inst[i].started && v->inst[i].alive && !v->inst[i].ready;
	return n;
}

bool fsm_rolling_ticks(const struct service *s, const struct version *v)
{
	return fsm_rolling(s) && (v->vslot == s->ro.newv || v->vslot == s->ro.oldv) &&
	       starting(v) > 0;
}

void fsm_rolling_deploy_opts(struct rollout *ro, const struct service_conf *c,
			     const struct deploy_opts *o)
{
	ro->pause_ms = o ? o->pause_ms : c->pause_ms;
	if (o && (o->max_surge || o->max_unavail)) {
		ro->surge = o->max_surge;
		ro->unavail = o->max_unavail;
		return;
	}
	/* The configuration was checked when it was loaded; 1 and 0 if it no longer fits. */
	if (roll_resolve(c->instances, c->max_surge, c->max_unavail, &ro->surge, &ro->unavail,
			 ro->fail_why, sizeof(ro->fail_why)) < 0) {
		ro->surge = 1;
		ro->unavail = 0;
	}
	ro->fail_why[0] = '\0';
}

/* Each version's share of new connections is its share of the serving instances. */
static void weights(struct fsm *f)
{
	struct service *s = f->s;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	int so = old_serving(ov), sn = nv ? nv->serve_n : 0;
	unsigned wn;

	if (!nv || (s->ro.stage == RO_ROLLING_BACK))
		return;
	wn = so + sn ? (unsigned)((sn * WEIGHT_MAX + (so + sn) / 2) / (so + sn)) : 0;
	if (!ov)
		wn = WEIGHT_MAX;
	if (sn && nv->phase == VP_STARTING)
		nv->phase = VP_ACTIVE;
	nv->weight = wn;
	if (ov)
		ov->weight = WEIGHT_MAX - wn;
	fsm_policy(f);
}

static void arm(struct fsm *f)
{
	struct service *s = f->s;
	long long at = s->ro.pause_end, hold = fsm_rollhold_deadline(s);
	long long ret = fsm_roll_retire_next(s);

	if (!fsm_rolling(s))
		return;
	if (hold && (!at || hold < at))
		at = hold;
	if (ret && (!at || ret < at))
		at = ret;
	if (at != s->ro_deadline)
		fsm_ro_timer(f, at);
}

/* Out of the policy (the others' weights follow), then drained on its own (fsm_rollretire.c). */
static void retire(struct fsm *f, struct version *ov, int i, long long conns)
{
	ov->inst[i].retiring = true;
	f->s->ro.retired++;
	weights(f);
	fsm_roll_retire(f, ov, i, conns);
}

/* Place one instance's sockets (for its probe; clients only once it is in serve_n). */
static void place_inst(struct fsm *f, struct version *v, int i)
{
	fsm_emit(f, FA_PLACE_INST, v, i, 0);
	v->placed = true;
}

static void spawn(struct fsm *f, struct version *v, int i)
{
	struct instance *in = &v->inst[i];

	if (in->ready) {
		in->ready = false;
		v->nready--;
	}
	in->notified = false;
	in->started = true;
	in->retiring = false;
	in->retire_at = 0;
	in->retire_step = 0;
	place_inst(f, v, i);
	fsm_emit(f, FA_SPAWN_INST, v, i, 0);
}

static void finish(struct fsm *f);
static void rollback_done(struct fsm *f);

/*
 * What can happen next: retire, wait, start the next batch, or finish.  A
 * batch is over when none of its instances still starts and the serving
 * instances are back to instances (the old ones it replaces retired): the
 * next one (its first retirement included, with max-surge 0) waits for
 * the pause, then for the holds (fsm_rollhold.c).
 */
static void roll_once(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	int n, so, sn, started = 0, room, k, i;

	if (ro->stage != RO_ROLLING || ro->counting || !nv)
		return;
	n = nv->ninst;
	so = old_serving(ov);
	sn = nv->serve_n;
	if (sn == n) {
		finish(f);
		return;
	}
	if (ro->paused)
		return;
	if (ro->batch >= 1 && !starting(nv) && so + sn <= n) {
		if (ro->pause_end && f->now < ro->pause_end)
			return;
		if (fsm_rollhold(f))
			return;
	}
	if (so > 0 && so + sn - 1 >= n - ro->unavail) {
		/* Which one goes: the kernel's count of each instance's connections. */
		ro->counting = true;
		fsm_emit(f, FA_INST_CONNS, ov, -1, 0);
		return;
	}
	if (ro->pause_end && f->now < ro->pause_end)
		return;
	ro->pause_end = 0;
	if (starting(nv))
		return; /* this batch is not ready yet */
	for (i = 0; i < n; i++)
		started += nv->inst[i].started;
	room = n + ro->surge - (nv->nalive + (ov ? ov->nalive : 0));
	k = n - started < room ? n - started : room;
	if (k <= 0)
		return; /* an old instance has yet to exit */
	ro->batch++;
	fsm_progress(f, "%s: batch %d: starting %d instance(s) of v%d (%d of %d serving)",
		     s->conf.name, ro->batch, k, nv->num, sn, n);
	for (i = 0; i < n && k > 0; i++)
		if (!nv->inst[i].started) {
			spawn(f, nv, i);
			k--;
		}
	nv->deadline = f->now + s->conf.ready_timeout_ms;
	fsm_emit(f, FA_READY_CHECKS, nv, -1, 0);
}

static void roll(struct fsm *f)
{
	roll_once(f);
	arm(f);
}

/* A hold released (a gate passed, a webhook confirmed): the next batch may go. */
void fsm_rolling_resume(struct fsm *f)
{
	roll(f);
}

bool fsm_rolling_begin(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	if (!ov || ov->phase != VP_ACTIVE || !ov->nalive || nv->adopted)
		return false;
	ro->stage = RO_ROLLING;
	nv->t_start = f->now;
	nv->phase = VP_STARTING;
	nv->serve_n = 0;
	nv->weight = 0;
	fsm_policy(f);
	fsm_emit(f, FA_ATTACH, nv, -1, 0);
	log_info("%s: rolling v%d -> v%d: %d instance(s), max-surge %d, max-unavailable %d, "
		 "pause %u ms",
		 s->conf.name, ov->num, nv->num, nv->ninst, ro->surge, ro->unavail, ro->pause_ms);
	roll(f);
	return true;
}

/*
 * FE_INST_CONNS: signal the waiting retired instances that have no
 * connection left; retire the serving old instance with the fewest live
 * connections when one was asked for.
 */
void fsm_rolling_conns(struct fsm *f, struct version *v, const struct fsm_event *e)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *ov = ro_old(s);
	int i, best = -1;

	if (ro->poll_at < 0)
		ro->poll_at = 0;
	/* A late answer (the rollout ended meanwhile) changes nothing. */
	if (!fsm_rolling(s)) {
		ro->counting = false;
		return;
	}
	if (v != ov)
		return;
	fsm_roll_retire_conns(f, ov, e);
	if (!ro->counting || ro->stage != RO_ROLLING) {
		ro->counting = false;
		arm(f);
		return;
	}
	ro->counting = false;
	for (i = 0; i < ov->ninst; i++)
		if (old_serves(&ov->inst[i]) &&
		    (best < 0 || (e->ok && e->inst_conns[i] < e->inst_conns[best])))
			best = i;
	if (best >= 0 && old_serving(ov) + ro_new(s)->serve_n - 1 >= ov->ninst - ro->unavail)
		retire(f, ov, best, e->ok ? e->inst_conns[best] : -1);
	arm(f);
	roll(f);
}

/* FE_READY of an instance under a rolling rollout (ready and nready already set). */
void fsm_rolling_ready(struct fsm *f, struct version *v, int i)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	int was;

	if (ro->stage == RO_ROLLING_BACK) {
		if (v->vslot != ro->oldv)
			return;
		/* A restarted old instance takes clients once ready (placed again if it was). */
		fsm_emit(f, FA_PLACE_INST, v, i, 0);
		rollback_done(f);
		return;
	}
	if (v->vslot != ro->newv)
		return;
	was = v->serve_n;
	while (v->serve_n < v->ninst && v->inst[v->serve_n].ready && v->inst[v->serve_n].alive)
		v->serve_n++;
	if (v->serve_n == was)
		return;
	if (v->serve_n == v->ninst) {
		roll(f); /* the last one: finish() moves every weight at once */
		return;
	}
	if (!was) {
		ro->ready_ms = f->now - ro->t_start;
		if (c->health != HEALTH_NONE || c->max_error_bp != ERROR_RATE_OFF || c->ngates ||
		    fsm_gates_on(c))
			fsm_emit(f, FA_HEALTH_CHECKS, v, -1, 0);
	}
	weights(f);
	fsm_gates_step(f); /* the latency verdict starts over with this weight */
	log_info("%s: %d of %d instance(s) serving, %.2f%% of new connections", vname(v),
		 v->serve_n, v->ninst, v->weight / 100.0);
	fsm_progress(f, "%s: %d of %d instance(s) serving (%.2f%%)", vname(v), v->serve_n, v->ninst,
		     v->weight / 100.0);
	if (!starting(v) && ro->pause_ms && v->serve_n < v->ninst) {
		ro->pause_end = f->now + ro->pause_ms;
		fsm_progress(f, "%s: pause %.1f s before the next batch", s->conf.name,
			     ro->pause_ms / 1000.0);
	}
	roll(f);
	arm(f);
}

/* All new instances serve: the old version has nothing left but what drains. */
static void finish(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	int i;

	fsm_rollhold_end(f);
	fsm_emit(f, FA_STOP_CHECKS, nv, -1, 0);
	fsm_vtimer(f, nv, 0);
	nv->weight = WEIGHT_MAX;
	nv->phase = VP_ACTIVE;
	s->active = nv->vslot;
	ro->pause_end = 0;
	if (ov) {
		ov->weight = 0;
		s->previous = ov->vslot;
	}
	fsm_policy(f);
	log_info("%s: all %d instance(s) replaced, first ready in %lld ms", vname(nv), nv->ninst,
		 ro->ready_ms);
	if (!ov) {
		fsm_rollout_end(f, true, NULL, false);
		return;
	}
	/*
	 * What is left of the old version drains as a version does, drain-policy
	 * and all (drain-delay, drain-http, wait-then-signal: its live count at
	 * 0, then the exit signal; drain-timeout, SIGTERM, kill-after): the
	 * instances still serving (max-surge = instances: every one), and those
	 * retired that still waited, unsignalled.  Those already told to exit
	 * are not told twice (fsm_version.c).
	 */
	ro->poll_at = 0;
	for (i = 0; i < ov->ninst; i++)
		if (ov->inst[i].alive &&
		    (!ov->inst[i].retiring || fsm_roll_unsignalled(&ov->inst[i]))) {
			ov->inst[i].retiring = true;
			ov->inst[i].retire_at = 0;
			ov->inst[i].retire_step = RETIRE_WITH_VERSION;
		}
	if (s->conf.hook[HOOK_AFTER_SWITCH][0]) {
		/*
		 * Once every new instance serves: what is left of the old version
		 * is kept, out of the map and unsignalled, until the hook passed
		 * (fsm_rollout_switched drains it then); a failure rolls back
		 * (fsm_rolling_fail), starting again the old instances that left.
		 */
		ov->phase = VP_DRAIN_DELAY;
		ov->t_switch = f->now;
		fsm_unplace(f, ov);
		ro->stage = RO_AFTER_SWITCH;
		fsm_hook_start(f, HOOK_AFTER_SWITCH);
		return;
	}
	if (s->conf.hook[HOOK_AFTER_DRAIN][0] && fsm_procs_left(ov)) {
		ro->stage = RO_DRAIN_OLD;
		fsm_ro_timer(f, 0);
		fsm_progress(f, "%s: draining v%d; the after-drain hook runs once it exited",
			     s->conf.name, ov->num);
		fsm_drain_begin(f, ov);
		return;
	}
	fsm_rollout_end(f, true, NULL, false);
	fsm_drain_begin(f, ov);
}

/* Rolling back: over once every old instance serves again (or cannot). */
static void rollback_done(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *ov = ro_old(s);
	char msg[FSM_TEXT];
	int i, serving = 0;

	for (i = 0; ov && i < ov->ninst; i++) {
		const struct instance *in = &ov->inst[i];

		if (old_serves(in))
			serving++;
		else if (in->alive || in->retiring || (in->started && !in->alive))
			return; /* starting again (or about to), or still to exit first */
	}
	if (ov && serving == ov->ninst)
		snprintf(msg, sizeof(msg), "rolled back to v%d (%d instance(s) serving): %s",
			 ro->old_num, serving, ro->fail_why);
	else
		snprintf(msg, sizeof(msg),
			 "rolled back to v%d, but only %d of %d instance(s) serve again: %s",
			 ro->old_num, serving, ov ? ov->ninst : 0, ro->fail_why);
	log_warnx("%s: %s", s->conf.name, msg);
	fsm_rollout_end(f, false, msg, true);
}

/*
 * Readiness probed through the instance's own socket: it must be in the map
 * for the probe.  READY=1 is followed by the accept probe (fsm_rollout.c).
 */
static bool probed_through_socket(const struct service_conf *c)
{
	return c->ready == READY_TCP || c->ready == READY_HTTP || c->ready == READY_NOTIFY;
}

/*
 * Bring one old instance back: it left (or crashed) and its slot is free.
 * Its listeners were released, so they exist only once it is spawned: it
 * is placed after the spawn when its readiness probe needs the map (the
 * old version takes clients on every slot: it may get some before it is
 * ready), otherwise only once it is ready (fsm_rolling_ready).
 */
static void restart_old(struct fsm *f, struct version *ov, int i)
{
	struct instance *in = &ov->inst[i];

	log_info("%s: starting instance %d again (%s)", vname(ov), i, ov->spec.argv[0]);
	if (in->ready) {
		in->ready = false;
		ov->nready--;
	}
	in->started = true;
	in->retiring = false;
	in->retire_at = 0;
	in->retire_step = 0;
	fsm_emit(f, FA_SPAWN_INST, ov, i, 0);
	if (probed_through_socket(&f->s->conf))
		fsm_emit(f, FA_PLACE_INST, ov, i, 0);
	ov->inst[i].restarted = true; /* a second exit is not restarted */
	ov->deadline = f->now + f->s->conf.ready_timeout_ms;
	fsm_emit(f, FA_READY_CHECKS, ov, -1, 0);
}

/*
 * A failed gate, a new instance that died or was not ready, or the
 * operator: the old version takes every new connection back (one policy
 * update), the new one drains, and the old instances that left start
 * again.  Returns false when the rollout is not a rolling one.
 */
bool fsm_rolling_fail(struct fsm *f, enum rb_reason reason, const char *why)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	int i;

	if (ro->stage == RO_ROLLING_BACK) {
		log_warnx("%s: %s (already rolling back)", s->conf.name, why);
		return true;
	}
	/* The after-switch hook failed (or the agent restarted while it ran). */
	if (ro->stage == RO_AFTER_SWITCH && ro->strategy == STRATEGY_ROLLING && ov && nv) {
		fsm_hook_kill(f);
		ov->phase = VP_ACTIVE;
		ov->placed = true; /* instance by instance below, as through the rollout */
		ro->stage = RO_ROLLING;
	}
	if (ro->stage != RO_ROLLING)
		return false;
	fsm_note_rollback(s, ro->new_num, f->wall, why);
	s->rollbacks[reason]++;
	fsm_rollhold_end(f);
	ro->stage = RO_ROLLING_BACK;
	ro->counting = false;
	ro->pause_end = 0;
	ro->poll_at = 0;
	ro->fail_reason = reason;
	snprintf(ro->fail_why, sizeof(ro->fail_why), "%s", why);
	log_warnx("%s: rolling back to v%d: %s", s->conf.name, ro->old_num, why);
	ov->weight = WEIGHT_MAX;
	ov->serve_n = 0;
	s->active = ov->vslot;
	if (nv) {
		nv->weight = 0;
		nv->serve_n = 0;
		fsm_vtimer(f, nv, 0);
		nv->phase = VP_DRAIN_DELAY;
	}
	fsm_policy(f);
	fsm_progress(f, "%s: rolling back to v%d: %s", s->conf.name, ro->old_num, why);
	if (nv)
		fsm_drain_failed(f, nv);
	/* Retired ones that were never signalled serve again at once: their listeners are held. */
	for (i = 0; i < ov->ninst; i++)
		if (fsm_roll_unsignalled(&ov->inst[i])) {
			ro->retired--;
			fsm_roll_unretire(f, ov, i);
		}
	for (i = 0; i < ov->ninst; i++)
		if (!ov->inst[i].alive) {
			ov->inst[i].retiring = false;
			restart_old(f, ov, i);
		}
	/* Retiring ones still running start again when they exited (fsm_rolling_exit). */
	arm(f);
	rollback_done(f);
	return true;
}

/* Whether a restored instance lost a listener it had: it closed it, told to exit. */
static bool lost_listeners(const struct service *s, const struct instance *in)
{
	int j;

	for (j = 0; j < s->conf.nlisten; j++)
		if (in->cookie[j] && in->lfd[j] < 0)
			return true;
	return false;
}

/*
 * A restarted agent took a rolling rollout over (the rollback follows): the
 * state does not say which old instances left.  One that closed its
 * listeners was told to exit: it leaves (bounded as a retired instance) and
 * starts again once it exited.  Every other one serves: in the map again
 * (one the previous agent had taken out for its drain-delay was never put
 * back otherwise).
 */
void fsm_rolling_restored(struct fsm *f)
{
	struct service *s = f->s;
	struct version *ov = ro_old(s);
	int i;

	for (i = 0; ov && i < ov->ninst; i++) {
		struct instance *in = &ov->inst[i];

		if (!in->alive)
			continue;
		if (lost_listeners(s, in)) {
			in->retiring = true;
			in->retire_step = 0;
			in->retire_at = f->now + s->conf.drain_timeout_ms;
			s->ro.retired++;
			log_info("%s: instance %d (pid %d) closed its listeners: it was told to "
				 "exit; it starts again once it has",
				 vname(ov), i, in->pid);
			continue;
		}
		fsm_emit(f, FA_PLACE_INST, ov, i, 0);
	}
}

/* FE_EXIT during a rolling rollout; false: not the rollout's (the usual rules apply). */
bool fsm_rolling_exit(struct fsm *f, struct version *v, int i, const char *desc)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct instance *in = &v->inst[i];
	char why[300];

	if (v->vslot == ro->newv && ro->stage == RO_ROLLING) {
		snprintf(why, sizeof(why), "%s instance %d (pid %d) %s during the rolling rollout",
			 vname(v), i, in->pid, desc);
		fsm_rolling_fail(f, RB_EXIT, why);
		return true;
	}
	if (v->vslot != ro->oldv)
		return false;
	in->retire_at = 0;
	if (!in->retiring) {
		log_warnx("%s: instance %d (pid %d) %s", vname(v), i, in->pid, desc);
		if (ro->stage == RO_ROLLING)
			weights(f);
		fsm_emit(f, FA_UNPLACE_INST, v, i, 0);
		fsm_emit(f, FA_RELEASE, v, i, 0);
	} else {
		log_info("%s: retired instance %d (pid %d) %s", vname(v), i, in->pid, desc);
		/* It waited, unsignalled: the agent still held its listeners. */
		if (in->retire_step < 0)
			fsm_emit(f, FA_RELEASE, v, i, 0);
	}
	if (ro->stage == RO_ROLLING) {
		roll(f);
		arm(f);
		return true;
	}
	/* Rolling back: its slot is free, start it again, once. */
	if (!in->restarted) {
		in->retiring = false;
		restart_old(f, v, i);
	} else {
		in->retiring = false;
		in->started = false;
		log_warnx("%s: instance %d exited again after its restart; not restarted", vname(v),
			  i);
	}
	arm(f);
	rollback_done(f);
	return true;
}

/* The new version's (or a restarted old instance's) readiness deadline. */
bool fsm_rolling_vtimer(struct fsm *f, struct version *v)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char why[256];
	int i;

	if (v->vslot != ro->newv && v->vslot != ro->oldv)
		return false;
	if (!starting(v) || !v->deadline || f->now < v->deadline)
		return true;
	for (i = 0; i < v->ninst; i++)
		if (v->inst[i].started && v->inst[i].alive && !v->inst[i].ready)
			break;
	snprintf(why, sizeof(why), "%s instance %d (pid %d) not ready within ready-timeout %u ms",
		 vname(v), i, v->inst[i].pid, s->conf.ready_timeout_ms);
	fsm_emit(f, FA_STOP_CHECKS, v, i, 0);
	if (v->vslot == ro->newv) {
		fsm_rolling_fail(f, RB_HEALTH, why);
		return true;
	}
	/* A restarted old instance that is not ready: stop it, and do not wait for it. */
	log_warnx("%s: %s; stopping it", s->conf.name, why);
	v->inst[i].retiring = true;
	fsm_emit(f, FA_UNPLACE_INST, v, i, 0);
	fsm_emit(f, FA_RELEASE, v, i, 0);
	fsm_emit(f, FA_KILL_INST, v, i, 0);
	v->deadline = 0;
	return true;
}

/* The rollout timer: a hold's deadline, the retired instances' bounds, the pause's end. */
void fsm_rolling_timer(struct fsm *f)
{
	struct service *s = f->s;

	if (fsm_rollhold_timer(f))
		return;
	fsm_roll_retire_timer(f);
	if (s->ro.pause_end && f->now >= s->ro.pause_end && !s->ro.paused) {
		s->ro.pause_end = 0;
		roll(f);
	}
	arm(f);
}

/* baton pause: no further batch (and no retirement) until promote. */
void fsm_rolling_pause(struct fsm *f, struct client *c)
{
	struct service *s = f->s;
	struct version *nv = ro_new(s);

	if (s->ro.paused) {
		reply_err(f, c, "%s: the rollout is already paused (baton promote %s continues it)",
			  s->conf.name, s->conf.name);
		return;
	}
	s->ro.paused = true;
	fsm_confirm_stop(f); /* the operator holds it now; promote asks again */
	arm(f);		     /* an approval's deadline does not run while paused */
	log_info("%s: rolling rollout of v%d paused with %d of %d instance(s) serving",
		 s->conf.name, s->ro.new_num, nv->serve_n, nv->ninst);
	reply_ok(f, c,
		 "%s: rolling rollout of v%d paused with %d of %d instance(s) serving; health "
		 "checks go on; baton promote %s continues, baton abort %s rolls back",
		 s->conf.name, s->ro.new_num, nv->serve_n, nv->ninst, s->conf.name, s->conf.name);
}

/* baton promote: continue (the pause between batches ends now); --full: no more pauses. */
void fsm_rolling_promote(struct fsm *f, bool full)
{
	struct rollout *ro = &f->s->ro;

	fsm_rollhold_promote(f, full);
	ro->paused = false;
	ro->pause_end = 0;
	if (full)
		ro->pause_ms = 0;
	roll(f);
}

/* FE_SPAWNED of one instance (FA_SPAWN_INST): only a failure changes anything. */
void fsm_rolling_spawned(struct fsm *f, struct version *v, int i, bool ok, const char *why)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char msg[300];

	/* Only a start that was asked for (started) and did not happen (not alive). */
	if (ok || i < 0 || i >= v->ninst || !v->inst[i].started || v->inst[i].alive)
		return;
	snprintf(msg, sizeof(msg), "%s instance %d cannot start: %s", vname(v), i, why ? why : "?");
	fsm_emit(f, FA_UNPLACE_INST, v, i, 0);
	if (v->vslot == ro->newv && ro->stage == RO_ROLLING) {
		fsm_rolling_fail(f, RB_EXIT, msg);
		return;
	}
	if (v->vslot == ro->oldv && ro->stage == RO_ROLLING_BACK) {
		log_warnx("%s: %s", s->conf.name, msg);
		v->inst[i].started = false;
		rollback_done(f);
	}
}
