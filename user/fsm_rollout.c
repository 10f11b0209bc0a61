/* SPDX-License-Identifier: MIT */
/* The state machine's rules for a rollout: deploy, readiness, steps, hooks, rollback. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"
#include "log.h"

/* ---- rollouts ------------------------------------------------------------------ */

/* The deploy is over, one way or the other: answer the client waiting for it. */
void fsm_rollout_end(struct fsm *f, bool ok, const char *why, bool rolled_back)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;

	s->rollouts[ok ? RR_COMPLETED : rolled_back ? RR_ROLLED_BACK : RR_FAILED]++;
	fsm_history_rollout_end(f, ok, why, rolled_back);
	fsm_confirm_stop(f);
	if (ro->waiter)
		fsm_emit_text(f, FA_DEPLOY_DONE, ro->waiter, ok, rolled_back, "%s", why ? why : "");
	fsm_baseline_leave(f);
	if (ok)
		log_info("%s: rollout of v%d complete in %.1f s", s->conf.name, ro->new_num,
			 (f->now - ro->t_start) / 1000.0);
	ro->waiter = NULL;
	ro->stage = RO_NONE;
	ro->newv = ro->oldv = -1;
	fsm_ro_timer(f, 0);
}

void fsm_hook_kill(struct fsm *f)
{
	if (!f->s->ro.hook_running)
		return;
	fsm_emit(f, FA_KILL_HOOK, NULL, -1, 0);
	f->s->ro.hook_running = false;
}

/* Stop steering to a failed new version and let it drain: nothing comes back to it. */
void fsm_drain_failed(struct fsm *f, struct version *v)
{
	fsm_emit(f, FA_STOP_CHECKS, v, -1, 0);
	v->phase = VP_DRAIN_DELAY;
	v->t_switch = f->now;
	fsm_unplace(f, v);
	if (!fsm_procs_left(v)) {
		fsm_version_stopped(f, v);
		return;
	}
	fsm_drain_next(f, v);
}

void fsm_note_rollback(struct service *s, int num, time_t wall, const char *why)
{
	s->last_rollback.num = num;
	s->last_rollback.when = wall;
	snprintf(s->last_rollback.why, sizeof(s->last_rollback.why), "%s", why);
}

/*
 * Something went wrong: give the old version all new connections again (one
 * map update), drain and stop the new one, record why, and fail the deploy.
 */
void fsm_rollout_fail(struct fsm *f, enum rb_reason reason, const char *why)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	char msg[FSM_TEXT];

	if (fsm_rolling_fail(f, reason, why))
		return;
	switch (ro->stage) {
	case RO_NONE:
		return;
	case RO_BEFORE_START:
	case RO_STARTING:
		fsm_hook_kill(f);
		fsm_rollout_end(f, false, why, false);
		if (nv)
			fsm_version_abort(f, nv, why);
		return;
	case RO_STEPPING:
	case RO_AFTER_SWITCH:
		fsm_hook_kill(f);
		fsm_note_rollback(s, ro->new_num, f->wall, why);
		if (!ov || !ov->nalive) {
			snprintf(msg, sizeof(msg),
				 "%s; cannot roll back: v%d has no running instance, so v%d keeps "
				 "the traffic",
				 why, ro->old_num, ro->new_num);
			log_warnx("%s: %s", s->conf.name, msg);
			if (nv) {
				fsm_emit(f, FA_STOP_CHECKS, nv, -1, 0);
				fsm_vtimer(f, nv, 0);
				nv->weight = WEIGHT_MAX;
				s->active = nv->vslot;
			}
			fsm_baseline_off(f);
			/* The dead old version gives up its weight, then its slot. */
			if (ov) {
				ov->weight = 0;
				if (s->previous == ov->vslot)
					s->previous = -1;
			}
			fsm_policy(f);
			fsm_rollout_end(f, false, msg, false);
			if (ov)
				fsm_version_stopped(f, ov);
			return;
		}
		if (ov->phase != VP_ACTIVE) {
			/* Kept for the after-switch hook: its sockets are still the agent's. */
			fsm_vtimer(f, ov, 0);
			fsm_emit(f, FA_WATCH, ov, -1, 0);
			fsm_http_drain_end(f, ov, -1);
			fsm_place(f, ov);
			ov->phase = VP_ACTIVE;
		}
		ov->weight = WEIGHT_MAX;
		s->active = ov->vslot;
		s->previous = -1;
		if (nv) {
			nv->weight = 0;
			nv->phase = VP_DRAIN_DELAY;
		}
		fsm_baseline_off(f);
		fsm_policy(f);
		log_warnx("%s: rolled back to v%d: %s", s->conf.name, ov->num, why);
		s->rollbacks[reason]++;
		snprintf(msg, sizeof(msg), "rolled back to v%d: %s", ov->num, why);
		fsm_rollout_end(f, false, msg, true);
		if (nv)
			fsm_drain_failed(f, nv);
		return;
	case RO_DRAIN_OLD:
	case RO_AFTER_DRAIN:
		fsm_hook_kill(f);
		snprintf(msg, sizeof(msg),
			 "%s (v%d was already switched out and cannot take traffic back)", why,
			 ro->old_num);
		log_warnx("%s: %s", s->conf.name, msg);
		fsm_rollout_end(f, false, msg, false);
		return;
	case RO_ROLLING:
	case RO_ROLLING_BACK:
		return; /* fsm_rolling_fail above */
	}
}

/* Weights of the versions of a rollout (the baseline's too); one map update. */
void fsm_rollout_weights(struct fsm *f, unsigned w_new)
{
	struct version *nv = ro_new(f->s), *ov = ro_old(f->s), *b = ro_base(f->s);
	unsigned w_base = fsm_baseline_weight(f->s, w_new);

	if (nv)
		nv->weight = w_new;
	if (b && b->phase == VP_ACTIVE)
		b->weight = w_base;
	if (ov)
		ov->weight = WEIGHT_MAX - w_new - w_base;
	fsm_policy(f);
}

/* The switch stands: stop checking the new version, drain the old one. */
void fsm_rollout_switched(struct fsm *f)
{
	struct service *s = f->s;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	if (nv) {
		fsm_emit(f, FA_STOP_CHECKS, nv, -1, 0);
		fsm_vtimer(f, nv, 0);
	}
	if (ov && s->conf.hook[HOOK_AFTER_DRAIN][0]) {
		s->ro.stage = RO_DRAIN_OLD;
		fsm_progress(f, "%s: draining v%d; the after-drain hook runs once it exited",
			     s->conf.name, ov->num);
		fsm_drain_begin(f, ov);
		return;
	}
	fsm_rollout_end(f, true, NULL, false);
	if (ov)
		fsm_drain_begin(f, ov);
}

/* The new version takes 100%: the old one is kept (unsignalled) until after-switch passed. */
void fsm_rollout_shifted(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	nv->weight = WEIGHT_MAX;
	s->active = nv->vslot;
	fsm_baseline_off(f);
	if (ov) {
		ov->weight = 0;
		ov->phase = VP_DRAIN_DELAY;
		ov->t_switch = f->now;
		s->previous = ov->vslot;
	}
	/* Policy first, then the old sockets leave the map (keep-warm: later). */
	fsm_policy(f);
	if (ov && !s->conf.keep_warm)
		fsm_unplace(f, ov);
	log_info("%s: active, ready in %lld ms%s%s", vname(nv), ro->ready_ms,
		 ov ? "; switching out " : "", ov ? vname(ov) : "");
	if (ov && s->conf.hook[HOOK_AFTER_SWITCH][0]) {
		ro->stage = RO_AFTER_SWITCH;
		fsm_hook_start(f, HOOK_AFTER_SWITCH);
		return;
	}
	fsm_rollout_switched(f);
}

/* Apply the current step's weight; bake it, or wait for promote. */
void fsm_rollout_apply(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	unsigned w = ro->steps[ro->step];

	if (w >= WEIGHT_MAX) {
		fsm_rollout_shifted(f);
		return;
	}
	fsm_rollout_weights(f, w);
	fsm_gates_step(f);
	if (ro->bake_ms) {
		ro->bake_end = f->now + ro->bake_ms;
		fsm_ro_timer(f, ro->bake_end);
	} else {
		/* Waiting for promote; with approve, until approval-timeout. */
		ro->bake_end = 0;
		fsm_ro_timer(f, ro->approve ? f->now + s->conf.approval_timeout_ms : 0);
	}
	if (ro_base(s))
		log_info("%s: v%d takes %.2f%% of new connections (step %d of %d), baseline v%d "
			 "%.2f%%%s",
			 s->conf.name, ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
			 ro->base_num, ro_base(s)->weight / 100.0,
			 ro->bake_ms ? "" : "; waiting for baton promote");
	else
		log_info("%s: v%d takes %.2f%% of new connections (step %d of %d)%s", s->conf.name,
			 ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
			 ro->bake_ms ? "" : "; waiting for baton promote");
	if (ro->bake_ms)
		fsm_progress(f, "%s: v%d at %.2f%% (step %d of %d), baking %.1f s", s->conf.name,
			     ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
			     ro->bake_ms / 1000.0);
	else
		fsm_progress(f, "%s: v%d at %.2f%% (step %d of %d); waiting for: baton promote %s",
			     s->conf.name, ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
			     s->conf.name);
}

/* Next step (or the last, with full); continues a paused rollout. */
void fsm_rollout_promote(struct fsm *f, bool full)
{
	struct rollout *ro = &f->s->ro;
	struct version *nv = ro_new(f->s);
	int k;

	if (fsm_rolling(f->s)) {
		fsm_rolling_promote(f, full);
		return;
	}
	ro->gate_hold = false; /* the bake's end, the gates, or the operator moves it */
	for (k = 0; k < ro->nsteps - 1 && ro->steps[k] <= nv->weight; k++)
		;
	if (full)
		k = ro->nsteps - 1;
	/* Before each step after the first, and before 100%: a confirmation, if asked. */
	if (fsm_confirm_hold(f, ro->steps[k] >= WEIGHT_MAX ? WH_CONFIRM_PROMOTION : WH_CONFIRM_STEP,
			     k))
		return;
	ro->step = k;
	ro->paused = false;
	ro->manual = false;
	fsm_rollout_apply(f);
}

/* Every instance of the new version is ready: give it its first step. */
void fsm_rollout_ready(struct fsm *f, struct version *v)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;

	ro->ready_ms = f->now - ro->t_start;
	s->starting = -1;
	v->phase = VP_ACTIVE;
	fsm_vtimer(f, v, 0);
	ro->stage = RO_STEPPING;
	ro->step = 0;
	log_info("%s: %d instance(s) ready in %lld ms", vname(v), v->ninst, ro->ready_ms);
	fsm_baseline_ready(f);
	/* Checks run while the old version can still take traffic back. */
	if ((ro->steps[0] < WEIGHT_MAX || c->hook[HOOK_AFTER_SWITCH][0]) &&
	    (c->health != HEALTH_NONE || c->max_error_bp != ERROR_RATE_OFF || c->ngates ||
	     fsm_gates_on(c)))
		fsm_emit(f, FA_HEALTH_CHECKS, v, -1, 0);
	fsm_rollout_apply(f);
}

/* A first version has nothing to switch from: it was active all along. */
void fsm_first_version_done(struct fsm *f, struct version *v)
{
	struct service *s = f->s;

	if (s->starting == v->vslot)
		s->starting = -1;
	fsm_vtimer(f, v, 0);
	s->ro.ready_ms = f->now - v->t_start;
	log_info("%s: active, %d instance(s) ready in %lld ms", vname(v), v->ninst, s->ro.ready_ms);
	fsm_rollout_end(f, true, NULL, false);
}

/*
 * READY=1 from instance i (ready = notify).  A server may send it from a
 * master before any worker accepts, and a version whose queue nobody reads
 * must not get traffic: the instance is ready only once a connection through
 * its own socket was accepted (FA_ACCEPT_PROBE, the tcp readiness probe,
 * answered by FE_READY), within the same ready-timeout.  Outside a wait for
 * readiness nothing depends on it: ready at once, as it always was.
 */
void fsm_instance_notified(struct fsm *f, struct version *v, int i)
{
	struct service *s = f->s;
	struct instance *in;

	if (i < 0 || i >= v->ninst || s->conf.ready != READY_NOTIFY)
		return;
	in = &v->inst[i];
	if (in->ready || in->notified || !in->alive)
		return;
	if (!fsm_starting(s, v) && !fsm_rolling_ticks(s, v)) {
		fsm_instance_ready(f, v, i);
		return;
	}
	in->notified = true;
	log_debug("%s: instance %d (pid %d) sent READY=1; ready once it accepts a connection",
		  vname(v), i, in->pid);
	fsm_emit(f, FA_ACCEPT_PROBE, v, i, 0);
}

void fsm_instance_ready(struct fsm *f, struct version *v, int i)
{
	struct service *s = f->s;

	if (i < 0 || i >= v->ninst || v->inst[i].ready)
		return;
	v->inst[i].ready = true;
	v->inst[i].notified = false;
	v->nready++;
	log_debug("%s: instance %d (pid %d) ready", vname(v), i, v->inst[i].pid);
	if (fsm_rolling(s)) {
		fsm_rolling_ready(f, v, i);
		return;
	}
	if (v->nready != v->ninst)
		return;
	if (v->phase == VP_STARTING && s->ro.stage == RO_STARTING &&
	    (ro_new(s) == v || ro_base(s) == v)) {
		/* The first step waits for the canary and its baseline both. */
		if (ro_new(s)->nready == ro_new(s)->ninst && !fsm_baseline_waits(s))
			fsm_rollout_ready(f, ro_new(s));
	} else if (v->phase == VP_ACTIVE && s->starting == v->vslot)
		fsm_first_version_done(f, v);
}

/* ---- hooks ------------------------------------------------------------------- */

void fsm_hook_done(struct fsm *f, bool ok, const char *desc);

void fsm_hook_start(struct fsm *f, enum hook_point h)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;

	ro->hook = h;
	if (h == HOOK_AFTER_DRAIN)
		ro->stage = RO_AFTER_DRAIN;
	if (!c->hook[h][0]) {
		fsm_hook_done(f, true, NULL);
		return;
	}
	ro->hook_running = true;
	fsm_emit(f, FA_RUN_HOOK, NULL, -1, h);
	fsm_ro_timer(f, f->now + c->hook_timeout_ms);
	fsm_progress(f, "%s: running the %s hook (timeout %.1f s)", c->name, hook_name(h),
		     c->hook_timeout_ms / 1000.0);
}

void fsm_deploy_start(struct fsm *f);
void fsm_deploy_spawned(struct fsm *f, struct version *v, bool ok, const char *why);

void fsm_hook_done(struct fsm *f, bool ok, const char *desc)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char why[400];

	ro->hook_running = false;
	fsm_ro_timer(f, 0);
	if (ok)
		log_info("%s: %s hook passed", s->conf.name, hook_name(ro->hook));
	else
		snprintf(why, sizeof(why), "%s hook failed: %s", hook_name(ro->hook),
			 desc ? desc : "?");
	switch (ro->hook) {
	case HOOK_BEFORE_START:
		if (ok)
			fsm_deploy_start(f);
		else
			fsm_rollout_fail(f, RB_HOOK, why);
		break;
	case HOOK_AFTER_SWITCH:
		if (ok)
			fsm_rollout_switched(f);
		else
			fsm_rollout_fail(f, RB_HOOK, why);
		break;
	case HOOK_AFTER_DRAIN:
		if (ok) {
			fsm_rollout_end(f, true, NULL, false);
		} else {
			char msg[500];

			snprintf(msg, sizeof(msg),
				 "%s (v%d has exited, so v%d stays; nothing was rolled back)", why,
				 ro->old_num, ro->new_num);
			log_warnx("%s: %s", s->conf.name, msg);
			fsm_rollout_end(f, false, msg, false);
		}
		break;
	default:
		break;
	}
}

void fsm_on_ro_timer(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char why[128];

	/* Rolling: its own timer, holds' deadlines among its other bounds (fsm_rollhold.c). */
	if (fsm_rolling(s)) {
		fsm_rolling_timer(f);
		return;
	}
	if (fsm_hold_timer(f) || fsm_gate_timer(f))
		return;
	if (ro->hook_running && f->now >= s->ro_deadline) {
		fsm_emit(f, FA_KILL_HOOK, NULL, -1, 0);
		snprintf(why, sizeof(why), "did not finish within hook-timeout %u ms (killed)",
			 s->conf.hook_timeout_ms);
		fsm_hook_done(f, false, why);
		return;
	}
	if (ro->stage == RO_STEPPING && !ro->paused && ro->bake_end && f->now >= ro->bake_end &&
	    !fsm_gate_hold(f) && !fsm_gates_hold(f))
		fsm_rollout_promote(f, false);
}

/* ---- deploy ------------------------------------------------------------------- */

int fsm_can_deploy(const struct service *s, char *err, size_t errlen)
{
	const struct rollout *ro = &s->ro;

	if (ro->stage != RO_NONE) {
		snprintf(
		    err, errlen,
		    "%s: the rollout of v%d is in progress (%s); wait for it, or: baton abort %s",
		    s->conf.name, ro->new_num, stage_names[ro->stage], s->conf.name);
		return -EBUSY;
	}
	if (s->starting >= 0 && s->slot[s->starting]) {
		snprintf(err, errlen,
			 "%s: v%d is being deployed; wait for it, or: baton rollback %s",
			 s->conf.name, s->slot[s->starting]->num, s->conf.name);
		return -EBUSY;
	}
	return 0;
}

void fsm_deploy(struct fsm *f, const struct fsm_event *e)
{
	struct service *s = f->s;
	const struct service_conf *conf = &s->conf;
	struct rollout *ro = &s->ro;
	struct version *v = e->v;
	const struct deploy_opts *o = e->have_opts ? &e->opts : NULL;

	memset(ro, 0, sizeof(*ro));
	ro->hook_pidfd = -1; /* 0 would name stdin: no hook runs */
	ro->hook_execfd = -1;
	ro->t_start = f->now;
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
		ro->approve = o ? o->approve : conf->approve;
		if (ro->approve)
			ro->bake_ms = 0; /* approval replaces the bake */
	} else {
		ro->nsteps = 1;
		ro->steps[0] = WEIGHT_MAX;
	}
	if (ro->strategy == STRATEGY_ROLLING) {
		fsm_rolling_deploy_opts(ro, conf, o);
		ro->approve =
		    o ? o->approve : conf->approve; /* before each batch after the first */
	}
	ro->waiter = e->c;
	fsm_baseline_deploy(f, e->base);
	if (ro->oldv >= 0 && fsm_confirm_hold(f, WH_CONFIRM_ROLLOUT, 0))
		return;
	fsm_deploy_go(f);
}

/* Confirmed (or nothing to confirm): the before-start hook, or the start. */
void fsm_deploy_go(struct fsm *f)
{
	struct service *s = f->s;

	if (s->ro.oldv >= 0 && s->conf.hook[HOOK_BEFORE_START][0]) {
		s->ro.stage = RO_BEFORE_START;
		fsm_hook_start(f, HOOK_BEFORE_START);
		return;
	}
	fsm_deploy_start(f);
}

/* Place the new version's sockets and start its processes (FE_SPAWNED follows). */
void fsm_deploy_start(struct fsm *f)
{
	struct service *s = f->s;
	struct version *v = ro_new(s);

	if (s->ro.strategy == STRATEGY_ROLLING && fsm_rolling_begin(f))
		return;
	s->ro.stage = RO_STARTING;
	v->t_start = f->now;
	s->starting = v->vslot;
	if (s->active < 0) {
		/* A first version takes connections at once; they queue until it accepts. */
		v->phase = VP_ACTIVE;
		v->weight = WEIGHT_MAX;
		s->active = v->vslot;
	} else {
		v->phase = VP_STARTING;
	}
	fsm_place(f, v);
	fsm_baseline_place(f);
	fsm_policy(f);
	/*
	 * (Re)attach per group: harmless when attached, and needed when every
	 * socket of a group had closed, which takes the program with it.
	 */
	fsm_emit(f, FA_ATTACH, v, -1, 0);
	if (v->adopted) {
		fsm_deploy_spawned(f, v, true, NULL);
		return;
	}
	fsm_emit(f, FA_SPAWN, v, -1, 0);
	fsm_baseline_spawn(f);
}

/* The new version's processes run (or not): wait for readiness. */
void fsm_deploy_spawned(struct fsm *f, struct version *v, bool ok, const char *why)
{
	struct service *s = f->s;
	const struct service_conf *conf = &s->conf;
	int i;

	if (fsm_baseline_spawned(f, v, ok, why))
		return;
	if (s->ro.stage != RO_STARTING || ro_new(s) != v)
		return;
	if (!ok) {
		fsm_rollout_fail(f, RB_EXIT, why ? why : "cannot start");
		return;
	}
	if (conf->ready == READY_NONE) {
		for (i = 0; i < v->ninst && s->slot[v->vslot] == v; i++)
			fsm_instance_ready(f, v, i);
		return;
	}
	fsm_progress(f, "%s: %s %d instance(s), waiting for readiness (%s, timeout %u ms)",
		     vname(v), v->adopted ? "adopted" : "started", v->ninst,
		     ready_kind_name(conf->ready), conf->ready_timeout_ms);
	/* Probes and checks tick; the ready deadline is checked on each tick (FE_VTIMER). */
	v->deadline = v->t_start + conf->ready_timeout_ms;
	fsm_emit(f, FA_READY_CHECKS, v, -1, 0);
}

bool fsm_starting(const struct service *s, const struct version *v)
{
	return v->phase == VP_STARTING || (v->phase == VP_ACTIVE && s->starting == v->vslot);
}

/* ---- rollback ------------------------------------------------------------------ */

/* The rollout running when baton rollback comes: 1 when there is none, else as fsm_rollback. */
static int rollback_rollout(struct fsm *f, char *msg, size_t msglen)
{
	struct service *s = f->s;
	struct version *cur = s->active >= 0 ? s->slot[s->active] : NULL;
	struct rollout *ro = &s->ro;

	if (ro->stage == RO_BEFORE_START || ro->stage == RO_STARTING) {
		snprintf(msg, msglen, "deploy of %s v%d aborted; %s stays active", s->conf.name,
			 ro->new_num, cur ? vname(cur) : "nothing");
		fsm_rollout_fail(f, RB_OPERATOR, "aborted by baton rollback");
		return 0;
	}
	if (ro->stage == RO_ROLLING_BACK) {
		snprintf(msg, msglen, "%s: the rolling rollout of v%d is already rolling back",
			 s->conf.name, ro->new_num);
		return -EALREADY;
	}
	if (ro->stage == RO_STEPPING || ro->stage == RO_AFTER_SWITCH || ro->stage == RO_ROLLING) {
		int num = ro->new_num, old = ro->old_num;

		fsm_rollout_fail(f, RB_OPERATOR, "rolled back by baton rollback");
		snprintf(msg, msglen, "%s: rollout of v%d aborted; v%d has all new connections",
			 s->conf.name, num, old);
		return 0;
	}
	return 1;
}

/* Give prev (still draining, unsignalled) the traffic back: one policy update. */
static void rollback_instant(struct fsm *f, struct version *prev, const char *why, char *msg,
			     size_t msglen)
{
	struct service *s = f->s;
	struct version *cur = s->active >= 0 ? s->slot[s->active] : NULL;

	if (s->ro.stage != RO_NONE)
		/* Draining the old version for after-drain: that is over now. */
		fsm_rollout_end(f, false,
				"rolled back by the operator while the old version drained", false);
	fsm_history_switch(f, cur ? cur->num : 0, prev->num, why);
	/* Its sockets are still the agent's copies: put them back, then switch. */
	if (prev->resetting) {
		fsm_emit(f, FA_RESET_STOP, prev, -1, 0);
		prev->resetting = false;
	}
	fsm_vtimer(f, prev, 0);
	fsm_emit(f, FA_WATCH, prev, -1, 0);
	fsm_http_drain_end(f, prev, -1);
	if (!prev->placed)
		fsm_place(f, prev); /* kept warm, it still is: the policy alone switches */
	prev->phase = VP_ACTIVE;
	prev->weight = WEIGHT_MAX;
	s->active = prev->vslot;
	s->previous = cur ? cur->vslot : -1;
	if (cur) {
		cur->phase = VP_DRAIN_DELAY;
		cur->weight = 0;
	}
	fsm_policy(f);
	if (cur)
		snprintf(msg, msglen, "%s: v%d active again, draining v%d", s->conf.name, prev->num,
			 cur->num);
	else
		snprintf(msg, msglen, "%s: v%d active again", s->conf.name, prev->num);
	log_info("%s", msg);
	if (cur)
		fsm_drain_begin(f, cur);
}

/*
 * Give the previous version (still draining, unsignalled) the traffic back:
 * the version that took over lost every instance (why: s->last_rollback).
 */
int fsm_rollback(struct fsm *f, char *msg, size_t msglen)
{
	struct service *s = f->s;
	struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;
	int r = rollback_rollout(f, msg, msglen);

	if (r <= 0)
		return r;
	if (!prev || (prev->phase != VP_DRAIN_DELAY && prev->phase != VP_DRAIN_WAIT)) {
		snprintf(msg, msglen, "%s: no previous version can take the traffic back",
			 s->conf.name);
		return -ENOENT;
	}
	rollback_instant(f, prev, s->last_rollback.why, msg, msglen);
	return 0;
}

/*
 * baton rollback [--to to]: a rollout running is aborted (without --to); a
 * version that still drains unsignalled takes the traffic back at once; one
 * that exited starts again (fsm_history.c).  0 or -errno with msg, or 1:
 * the client waits for the rollout FA_REDEPLOY starts.
 */
int fsm_rollback_to(struct fsm *f, int to, struct client *c, char *msg, size_t msglen)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;
	struct version *tv;
	int r;

	if (ro->stage != RO_NONE && to) {
		snprintf(msg, msglen,
			 "%s: the rollout of v%d is in progress (%s); wait for it, or end it "
			 "first (baton rollback %s), then use --to",
			 s->conf.name, ro->new_num, stage_names[ro->stage], s->conf.name);
		return -EBUSY;
	}
	r = rollback_rollout(f, msg, msglen);
	if (r <= 0)
		return r;
	if (ro->stage != RO_NONE) {
		/* The old version drains for the after-drain hook: back to it while it can. */
		if (prev && (prev->phase == VP_DRAIN_DELAY || prev->phase == VP_DRAIN_WAIT)) {
			rollback_instant(f, prev, "by baton rollback", msg, msglen);
			return 0;
		}
		snprintf(msg, msglen,
			 "%s: v%d was told to exit and the after-drain hook of v%d's rollout "
			 "has not run yet; once it has: baton rollback %s",
			 s->conf.name, ro->old_num, ro->new_num, s->conf.name);
		return -EBUSY;
	}
	r = fsm_rollback_target(f, to, c, &tv, msg, msglen);
	if (r < 0 || r == 1)
		return r;
	rollback_instant(f, tv, "by baton rollback", msg, msglen);
	return 0;
}

/* ---- gates: health checks and the error rate the kernel saw ------------------------ */

/* A health check's verdict: health-threshold failures in a row roll back. */
void fsm_on_check(struct fsm *f, struct version *v, int i, bool pass, const char *detail)
{
	const struct service_conf *c = &f->s->conf;
	struct check *k;
	char why[300];

	if (i < 0 || i >= v->ninst)
		return;
	k = &v->inst[i].chk;
	if (pass) {
		k->passes++;
		k->fails = 0;
		return;
	}
	k->failures++;
	k->fails++;
	log_warnx("%s: instance %d (pid %d) failed a health check (%d of %d in a row): %s",
		  vname(v), i, v->inst[i].pid, k->fails, c->health_threshold, detail);
	if (k->fails >= c->health_threshold) {
		snprintf(why, sizeof(why),
			 "%s instance %d (pid %d) failed %d health checks in a row (last: %s)",
			 vname(v), i, v->inst[i].pid, k->fails, detail);
		fsm_rollout_fail(f, RB_HEALTH, why);
	}
}

/*
 * One health-interval of the version under rollout: clients (new
 * connections and accept-queue drops) and failed ones (server resets and
 * drops).  Above max-error-rate health-threshold times in a row rolls back.
 */
void fsm_on_error_sample(struct fsm *f, struct version *v, unsigned long long clients,
			 unsigned long long failed, const char *text)
{
	const struct service_conf *c = &f->s->conf;
	char why[300];

	if (c->max_error_bp == ERROR_RATE_OFF || !failed ||
	    failed * WEIGHT_MAX <= (unsigned long long)c->max_error_bp * clients) {
		v->bad_intervals = 0;
		return;
	}
	v->bad_intervals++;
	log_warnx("%s: %s, above max-error-rate %.2f%% (%d of %d in a row)%s", vname(v), text,
		  c->max_error_bp / 100.0, v->bad_intervals, c->health_threshold,
		  c->gate_dry_run && v->bad_intervals >= c->health_threshold
		      ? ": would roll back (dry-run)"
		      : "");
	if (v->bad_intervals >= c->health_threshold && !c->gate_dry_run) {
		snprintf(why, sizeof(why), "%s failing clients: %s, above max-error-rate %.2f%%",
			 vname(v), text, c->max_error_bp / 100.0);
		fsm_rollout_fail(f, RB_ERRORS, why);
	}
}
