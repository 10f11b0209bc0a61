/* SPDX-License-Identifier: MIT */
/*
 * The rollout state machine (fsm.h): deploy, readiness, weight steps and
 * bake, hooks, the drain of a version and its bounds, rollback and abort,
 * the end of a version.  Every phase and stage change of the agent happens
 * here; the only outputs are the new state and the actions.  Logging is the
 * one side effect, and it changes nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fsm.h"
#include "log.h"

const char *const fsm_ev_names[FE_COUNT] = {
    [FE_DEPLOY] = "deploy",
    [FE_SPAWNED] = "spawned",
    [FE_READY] = "ready",
    [FE_EXIT] = "exit",
    [FE_UNHEALTHY] = "unhealthy",
    [FE_VTIMER] = "vtimer",
    [FE_RO_TIMER] = "ro-timer",
    [FE_HOOK_DONE] = "hook-done",
    [FE_ZERO] = "zero",
    [FE_RESET_DONE] = "reset-done",
    [FE_PROMOTE] = "promote",
    [FE_PAUSE] = "pause",
    [FE_WEIGHT] = "weight",
    [FE_ABORT] = "abort",
    [FE_ROLLBACK] = "rollback",
    [FE_REMOVE] = "remove",
    [FE_SHUTDOWN] = "shutdown",
    [FE_RESTORED] = "restored",
    [FE_ADOPT_FIRST] = "adopt-first",
};

const char *const fsm_act_names[FA_COUNT] = {
    [FA_POLICY] = "policy",
    [FA_PLACE] = "place",
    [FA_UNPLACE] = "unplace",
    [FA_UNPLACE_INST] = "unplace-inst",
    [FA_RELEASE] = "release",
    [FA_ATTACH] = "attach",
    [FA_SPAWN] = "spawn",
    [FA_SIGNAL] = "signal",
    [FA_WATCH] = "watch",
    [FA_RESET] = "reset",
    [FA_RESET_STOP] = "reset-stop",
    [FA_VTIMER] = "vtimer",
    [FA_READY_CHECKS] = "ready-checks",
    [FA_HEALTH_CHECKS] = "health-checks",
    [FA_STOP_CHECKS] = "stop-checks",
    [FA_RO_TIMER] = "ro-timer",
    [FA_RUN_HOOK] = "run-hook",
    [FA_KILL_HOOK] = "kill-hook",
    [FA_FORGET] = "forget",
    [FA_SERVICE_GONE] = "service-gone",
    [FA_REPLY] = "reply",
    [FA_DEPLOY_DONE] = "deploy-done",
    [FA_PROGRESS] = "progress",
};

/* One step: the service, the time, the wall clock and where actions go. */
struct fsm {
	struct service *s;
	long long now;
	time_t wall;
	struct fsm_out *out;
};

static struct fsm_action *emit(struct fsm *f, enum fsm_act t, struct version *v, int inst,
			       long long arg)
{
	struct fsm_action *a;

	if (f->out->n == FSM_MAX_ACTIONS) {
		f->out->overflow = true;
		return NULL;
	}
	a = &f->out->a[f->out->n++];
	memset(a, 0, offsetof(struct fsm_action, text) + 1);
	a->type = t;
	a->v = v;
	a->inst = inst;
	a->arg = arg;
	return a;
}

static void emit_text(struct fsm *f, enum fsm_act t, struct client *c, bool ok, bool rolled_back,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void emit_text(struct fsm *f, enum fsm_act t, struct client *c, bool ok, bool rolled_back,
		      const char *fmt, ...)
{
	struct fsm_action *a = emit(f, t, NULL, -1, 0);
	va_list ap;

	if (!a)
		return;
	a->c = c;
	a->ok = ok;
	a->rolled_back = rolled_back;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

#define reply_ok(f, c, ...)  emit_text(f, FA_REPLY, c, true, false, __VA_ARGS__)
#define reply_err(f, c, ...) emit_text(f, FA_REPLY, c, false, false, __VA_ARGS__)

static void progress(struct fsm *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct fsm *f, const char *fmt, ...)
{
	struct fsm_action *a;
	va_list ap;

	if (!f->s->ro.waiter)
		return;
	a = emit(f, FA_PROGRESS, NULL, -1, 0);
	if (!a)
		return;
	a->c = f->s->ro.waiter;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

static void vtimer(struct fsm *f, struct version *v, long long at)
{
	v->deadline = at;
	emit(f, FA_VTIMER, v, -1, at);
}

static void ro_timer(struct fsm *f, long long at)
{
	f->s->ro_deadline = at;
	emit(f, FA_RO_TIMER, NULL, -1, at);
}

static void policy(struct fsm *f)
{
	emit(f, FA_POLICY, NULL, -1, 0);
}

static void place(struct fsm *f, struct version *v)
{
	emit(f, FA_PLACE, v, -1, 0);
	v->placed = true;
}

static void unplace(struct fsm *f, struct version *v)
{
	if (!v->placed)
		return;
	emit(f, FA_UNPLACE, v, -1, 0);
	v->placed = false;
}

static void hook_start(struct fsm *f, enum hook_point h);
static void drain_next(struct fsm *f, struct version *v);

/* ---- the end of a version --------------------------------------------------- */

/* All processes of a version are gone: its slot is free. */
static void version_stopped(struct fsm *f, struct version *v)
{
	struct service *s = f->s;
	bool old_of_rollout = s->ro.stage == RO_DRAIN_OLD && s->ro.oldv == v->vslot;
	char how[96];
	int k;

	unplace(f, v);
	if (v->t_switch)
		snprintf(how, sizeof(how), "stopped %.3f s after switch-out",
			 (f->now - v->t_switch) / 1000.0);
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
	policy(f);
	emit(f, FA_FORGET, v, -1, 0);
	if (old_of_rollout) {
		s->ro.oldv = -1;
		hook_start(f, HOOK_AFTER_DRAIN);
	}
	if (s->removed && !s->gone) {
		for (k = 0; k < MAX_VERSIONS && !s->slot[k]; k++)
			;
		if (k == MAX_VERSIONS) {
			s->gone = true;
			emit(f, FA_SERVICE_GONE, NULL, -1, 0);
		}
	}
}

/* ---- the drain ---------------------------------------------------------------- */

/*
 * Drain, last step: the exit signal.  With signal-then-wait the version has
 * drain-timeout to exit (then SIGTERM, then SIGKILL after kill-after); with
 * wait-then-signal it had its drain-timeout already and gets kill-after.
 */
static void drain_signal(struct fsm *f, struct version *v)
{
	const struct service_conf *c = &f->s->conf;

	if (v->resetting) {
		emit(f, FA_RESET_STOP, v, -1, 0);
		v->resetting = false;
	}
	emit(f, FA_WATCH, v, -1, 0);
	v->t_signal = f->now;
	emit(f, FA_RELEASE, v, -1, 0);
	log_info("%s: draining, sending %s to %d process(es)", vname(v),
		 signal_name(c->exit_signal), v->nalive);
	emit(f, FA_SIGNAL, v, -1, c->exit_signal);
	if (c->drain == DRAIN_SIGNAL_THEN_WAIT) {
		v->phase = VP_DRAINING;
		vtimer(f, v, v->t_signal + c->drain_timeout_ms);
	} else {
		v->phase = VP_TERMINATING;
		vtimer(f, v, v->t_signal + c->kill_after_ms);
	}
}

/* wait-then-signal: watch the live count; the kernel reports when it is 0. */
static void drain_wait(struct fsm *f, struct version *v)
{
	v->phase = VP_DRAIN_WAIT;
	vtimer(f, v, f->now + f->s->conf.drain_timeout_ms);
	/* Watch first, then look (exec.c): a close between the two is reported or seen. */
	emit(f, FA_WATCH, v, -1, 1);
}

static void drain_next(struct fsm *f, struct version *v)
{
	if (f->s->conf.drain == DRAIN_WAIT_THEN_SIGNAL)
		drain_wait(f, v);
	else
		drain_signal(f, v);
}

/* Drain step 1: out of the map; rollback can still take it back until it is signalled. */
static void drain_begin(struct fsm *f, struct version *v)
{
	const struct service_conf *c = &f->s->conf;

	v->phase = VP_DRAIN_DELAY;
	v->t_switch = f->now;
	unplace(f, v);
	if (!v->nalive) {
		version_stopped(f, v);
		return;
	}
	if (c->drain_delay_ms)
		vtimer(f, v, v->t_switch + c->drain_delay_ms);
	else
		drain_next(f, v);
}

/* Stop a version that never took traffic: TERM now, KILL after kill-after. */
static void version_abort(struct fsm *f, struct version *v, const char *why)
{
	struct service *s = f->s;

	log_warnx("%s: deploy failed: %s", vname(v), why);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	if (s->starting == v->vslot)
		s->starting = -1;
	if (s->active == v->vslot)
		s->active = -1; /* a first version that never became ready */
	unplace(f, v);
	policy(f);
	emit(f, FA_RELEASE, v, -1, 0);
	v->phase = VP_ABORTING;
	if (!v->nalive) {
		version_stopped(f, v);
		return;
	}
	emit(f, FA_SIGNAL, v, -1, SIGTERM);
	vtimer(f, v, f->now + s->conf.kill_after_ms);
}

/* ---- rollouts ------------------------------------------------------------------ */

/* The deploy is over, one way or the other: answer the client waiting for it. */
static void rollout_end(struct fsm *f, bool ok, const char *why, bool rolled_back)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;

	s->rollouts[ok ? RR_COMPLETED : rolled_back ? RR_ROLLED_BACK : RR_FAILED]++;
	if (ro->waiter)
		emit_text(f, FA_DEPLOY_DONE, ro->waiter, ok, rolled_back, "%s", why ? why : "");
	if (ok)
		log_info("%s: rollout of v%d complete in %.1f s", s->conf.name, ro->new_num,
			 (f->now - ro->t_start) / 1000.0);
	ro->waiter = NULL;
	ro->stage = RO_NONE;
	ro->newv = ro->oldv = -1;
	ro_timer(f, 0);
}

static void hook_kill(struct fsm *f)
{
	if (!f->s->ro.hook_running)
		return;
	emit(f, FA_KILL_HOOK, NULL, -1, 0);
	f->s->ro.hook_running = false;
}

/* Stop steering to a failed new version and let it drain: nothing comes back to it. */
static void drain_failed(struct fsm *f, struct version *v)
{
	emit(f, FA_STOP_CHECKS, v, -1, 0);
	v->phase = VP_DRAIN_DELAY;
	v->t_switch = f->now;
	unplace(f, v);
	if (!v->nalive) {
		version_stopped(f, v);
		return;
	}
	drain_next(f, v);
}

static void note_rollback(struct service *s, int num, time_t wall, const char *why)
{
	s->last_rollback.num = num;
	s->last_rollback.when = wall;
	snprintf(s->last_rollback.why, sizeof(s->last_rollback.why), "%s", why);
}

/*
 * Something went wrong: give the old version all new connections again (one
 * map update), drain and stop the new one, record why, and fail the deploy.
 */
static void rollout_fail(struct fsm *f, enum rb_reason reason, const char *why)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);
	char msg[FSM_TEXT];

	switch (ro->stage) {
	case RO_NONE:
		return;
	case RO_BEFORE_START:
	case RO_STARTING:
		hook_kill(f);
		rollout_end(f, false, why, false);
		if (nv)
			version_abort(f, nv, why);
		return;
	case RO_STEPPING:
	case RO_AFTER_SWITCH:
		hook_kill(f);
		note_rollback(s, ro->new_num, f->wall, why);
		if (!ov || !ov->nalive) {
			snprintf(msg, sizeof(msg),
				 "%s; cannot roll back: v%d has no running instance, so v%d keeps "
				 "the traffic",
				 why, ro->old_num, ro->new_num);
			log_warnx("%s: %s", s->conf.name, msg);
			if (nv) {
				emit(f, FA_STOP_CHECKS, nv, -1, 0);
				vtimer(f, nv, 0);
				nv->weight = WEIGHT_MAX;
				s->active = nv->vslot;
			}
			/* The dead old version gives up its weight, then its slot. */
			if (ov) {
				ov->weight = 0;
				if (s->previous == ov->vslot)
					s->previous = -1;
			}
			policy(f);
			rollout_end(f, false, msg, false);
			if (ov)
				version_stopped(f, ov);
			return;
		}
		if (ov->phase != VP_ACTIVE) {
			/* Kept for the after-switch hook: its sockets are still the agent's. */
			vtimer(f, ov, 0);
			emit(f, FA_WATCH, ov, -1, 0);
			place(f, ov);
			ov->phase = VP_ACTIVE;
		}
		ov->weight = WEIGHT_MAX;
		s->active = ov->vslot;
		s->previous = -1;
		if (nv) {
			nv->weight = 0;
			nv->phase = VP_DRAIN_DELAY;
		}
		policy(f);
		log_warnx("%s: rolled back to v%d: %s", s->conf.name, ov->num, why);
		s->rollbacks[reason]++;
		snprintf(msg, sizeof(msg), "rolled back to v%d: %s", ov->num, why);
		rollout_end(f, false, msg, true);
		if (nv)
			drain_failed(f, nv);
		return;
	case RO_DRAIN_OLD:
	case RO_AFTER_DRAIN:
		hook_kill(f);
		snprintf(msg, sizeof(msg),
			 "%s (v%d was already switched out and cannot take traffic back)", why,
			 ro->old_num);
		log_warnx("%s: %s", s->conf.name, msg);
		rollout_end(f, false, msg, false);
		return;
	}
}

/* Weights of the two versions of a rollout; one map update. */
static void rollout_weights(struct fsm *f, unsigned w_new)
{
	struct version *nv = ro_new(f->s), *ov = ro_old(f->s);

	if (nv)
		nv->weight = w_new;
	if (ov)
		ov->weight = WEIGHT_MAX - w_new;
	policy(f);
}

/* The switch stands: stop checking the new version, drain the old one. */
static void rollout_switched(struct fsm *f)
{
	struct service *s = f->s;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	if (nv) {
		emit(f, FA_STOP_CHECKS, nv, -1, 0);
		vtimer(f, nv, 0);
	}
	if (ov && s->conf.hook[HOOK_AFTER_DRAIN][0]) {
		s->ro.stage = RO_DRAIN_OLD;
		progress(f, "%s: draining v%d; the after-drain hook runs once it exited",
			 s->conf.name, ov->num);
		drain_begin(f, ov);
		return;
	}
	rollout_end(f, true, NULL, false);
	if (ov)
		drain_begin(f, ov);
}

/* The new version takes 100%: the old one is kept (unsignalled) until after-switch passed. */
static void rollout_shifted(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s), *ov = ro_old(s);

	nv->weight = WEIGHT_MAX;
	s->active = nv->vslot;
	if (ov) {
		ov->weight = 0;
		ov->phase = VP_DRAIN_DELAY;
		ov->t_switch = f->now;
		s->previous = ov->vslot;
	}
	/* Policy first, then the old sockets leave the map: nothing is steered to a gap. */
	policy(f);
	if (ov)
		unplace(f, ov);
	log_info("%s: active, ready in %lld ms%s%s", vname(nv), ro->ready_ms,
		 ov ? "; switching out " : "", ov ? vname(ov) : "");
	if (ov && s->conf.hook[HOOK_AFTER_SWITCH][0]) {
		ro->stage = RO_AFTER_SWITCH;
		hook_start(f, HOOK_AFTER_SWITCH);
		return;
	}
	rollout_switched(f);
}

/* Apply the current step's weight; bake it, or wait for promote. */
static void rollout_apply(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	unsigned w = ro->steps[ro->step];

	if (w >= WEIGHT_MAX) {
		rollout_shifted(f);
		return;
	}
	rollout_weights(f, w);
	if (ro->bake_ms) {
		ro->bake_end = f->now + ro->bake_ms;
		ro_timer(f, ro->bake_end);
	} else {
		ro->bake_end = 0;
		ro_timer(f, 0);
	}
	log_info("%s: v%d takes %.2f%% of new connections (step %d of %d)%s", s->conf.name,
		 ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
		 ro->bake_ms ? "" : "; waiting for baton promote");
	if (ro->bake_ms)
		progress(f, "%s: v%d at %.2f%% (step %d of %d), baking %.1f s", s->conf.name,
			 ro->new_num, w / 100.0, ro->step + 1, ro->nsteps, ro->bake_ms / 1000.0);
	else
		progress(f, "%s: v%d at %.2f%% (step %d of %d); waiting for: baton promote %s",
			 s->conf.name, ro->new_num, w / 100.0, ro->step + 1, ro->nsteps,
			 s->conf.name);
}

/* Next step (or the last, with full); continues a paused rollout. */
static void rollout_promote(struct fsm *f, bool full)
{
	struct rollout *ro = &f->s->ro;
	struct version *nv = ro_new(f->s);
	int k;

	for (k = 0; k < ro->nsteps - 1 && ro->steps[k] <= nv->weight; k++)
		;
	ro->step = full ? ro->nsteps - 1 : k;
	ro->paused = false;
	ro->manual = false;
	rollout_apply(f);
}

/* Every instance of the new version is ready: give it its first step. */
static void rollout_ready(struct fsm *f, struct version *v)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;

	ro->ready_ms = f->now - ro->t_start;
	s->starting = -1;
	v->phase = VP_ACTIVE;
	vtimer(f, v, 0);
	ro->stage = RO_STEPPING;
	ro->step = 0;
	log_info("%s: %d instance(s) ready in %lld ms", vname(v), v->ninst, ro->ready_ms);
	/* Checks run while the old version can still take traffic back. */
	if ((ro->steps[0] < WEIGHT_MAX || c->hook[HOOK_AFTER_SWITCH][0]) &&
	    (c->health != HEALTH_NONE || c->max_error_bp != ERROR_RATE_OFF))
		emit(f, FA_HEALTH_CHECKS, v, -1, 0);
	rollout_apply(f);
}

/* A first version has nothing to switch from: it was active all along. */
static void first_version_done(struct fsm *f, struct version *v)
{
	struct service *s = f->s;

	if (s->starting == v->vslot)
		s->starting = -1;
	vtimer(f, v, 0);
	s->ro.ready_ms = f->now - v->t_start;
	log_info("%s: active, %d instance(s) ready in %lld ms", vname(v), v->ninst, s->ro.ready_ms);
	rollout_end(f, true, NULL, false);
}

static void instance_ready(struct fsm *f, struct version *v, int i)
{
	struct service *s = f->s;

	if (i < 0 || i >= v->ninst || v->inst[i].ready)
		return;
	v->inst[i].ready = true;
	v->nready++;
	log_debug("%s: instance %d (pid %d) ready", vname(v), i, v->inst[i].pid);
	if (v->nready != v->ninst)
		return;
	if (v->phase == VP_STARTING && s->ro.stage == RO_STARTING && ro_new(s) == v)
		rollout_ready(f, v);
	else if (v->phase == VP_ACTIVE && s->starting == v->vslot)
		first_version_done(f, v);
}

/* ---- hooks ------------------------------------------------------------------- */

static void hook_done(struct fsm *f, bool ok, const char *desc);

static void hook_start(struct fsm *f, enum hook_point h)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;

	ro->hook = h;
	if (h == HOOK_AFTER_DRAIN)
		ro->stage = RO_AFTER_DRAIN;
	if (!c->hook[h][0]) {
		hook_done(f, true, NULL);
		return;
	}
	ro->hook_running = true;
	emit(f, FA_RUN_HOOK, NULL, -1, h);
	ro_timer(f, f->now + c->hook_timeout_ms);
	progress(f, "%s: running the %s hook (timeout %.1f s)", c->name, hook_name(h),
		 c->hook_timeout_ms / 1000.0);
}

static void deploy_start(struct fsm *f);
static void deploy_spawned(struct fsm *f, struct version *v, bool ok, const char *why);

static void hook_done(struct fsm *f, bool ok, const char *desc)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char why[400];

	ro->hook_running = false;
	ro_timer(f, 0);
	if (ok)
		log_info("%s: %s hook passed", s->conf.name, hook_name(ro->hook));
	else
		snprintf(why, sizeof(why), "%s hook failed: %s", hook_name(ro->hook),
			 desc ? desc : "?");
	switch (ro->hook) {
	case HOOK_BEFORE_START:
		if (ok)
			deploy_start(f);
		else
			rollout_fail(f, RB_HOOK, why);
		break;
	case HOOK_AFTER_SWITCH:
		if (ok)
			rollout_switched(f);
		else
			rollout_fail(f, RB_HOOK, why);
		break;
	case HOOK_AFTER_DRAIN:
		if (ok) {
			rollout_end(f, true, NULL, false);
		} else {
			char msg[500];

			snprintf(msg, sizeof(msg),
				 "%s (v%d has exited, so v%d stays; nothing was rolled back)", why,
				 ro->old_num, ro->new_num);
			log_warnx("%s: %s", s->conf.name, msg);
			rollout_end(f, false, msg, false);
		}
		break;
	default:
		break;
	}
}

static void on_ro_timer(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char why[128];

	if (ro->hook_running && f->now >= s->ro_deadline) {
		emit(f, FA_KILL_HOOK, NULL, -1, 0);
		snprintf(why, sizeof(why), "did not finish within hook-timeout %u ms (killed)",
			 s->conf.hook_timeout_ms);
		hook_done(f, false, why);
		return;
	}
	if (ro->stage == RO_STEPPING && !ro->paused && ro->bake_end && f->now >= ro->bake_end)
		rollout_promote(f, false);
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

static void deploy(struct fsm *f, const struct fsm_event *e)
{
	struct service *s = f->s;
	const struct service_conf *conf = &s->conf;
	struct rollout *ro = &s->ro;
	struct version *v = e->v;
	const struct deploy_opts *o = e->have_opts ? &e->opts : NULL;

	memset(ro, 0, sizeof(*ro));
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
	} else {
		ro->nsteps = 1;
		ro->steps[0] = WEIGHT_MAX;
	}
	ro->waiter = e->c;
	if (ro->oldv >= 0 && conf->hook[HOOK_BEFORE_START][0]) {
		ro->stage = RO_BEFORE_START;
		hook_start(f, HOOK_BEFORE_START);
		return;
	}
	deploy_start(f);
}

/* Place the new version's sockets and start its processes (FE_SPAWNED follows). */
static void deploy_start(struct fsm *f)
{
	struct service *s = f->s;
	struct version *v = ro_new(s);

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
	place(f, v);
	policy(f);
	/*
	 * (Re)attach per group: harmless when attached, and needed when every
	 * socket of a group had closed, which takes the program with it.
	 */
	emit(f, FA_ATTACH, v, -1, 0);
	if (v->adopted) {
		deploy_spawned(f, v, true, NULL);
		return;
	}
	emit(f, FA_SPAWN, v, -1, 0);
}

/* The new version's processes run (or not): wait for readiness. */
static void deploy_spawned(struct fsm *f, struct version *v, bool ok, const char *why)
{
	struct service *s = f->s;
	const struct service_conf *conf = &s->conf;
	int i;

	if (s->ro.stage != RO_STARTING || ro_new(s) != v)
		return;
	if (!ok) {
		rollout_fail(f, RB_EXIT, why ? why : "cannot start");
		return;
	}
	if (conf->ready == READY_NONE) {
		for (i = 0; i < v->ninst && s->slot[v->vslot] == v; i++)
			instance_ready(f, v, i);
		return;
	}
	progress(f, "%s: %s %d instance(s), waiting for readiness (%s, timeout %u ms)", vname(v),
		 v->adopted ? "adopted" : "started", v->ninst, ready_kind_name(conf->ready),
		 conf->ready_timeout_ms);
	/* Probes and checks tick; the ready deadline is checked on each tick (FE_VTIMER). */
	v->deadline = v->t_start + conf->ready_timeout_ms;
	emit(f, FA_READY_CHECKS, v, -1, 0);
}

static bool starting(const struct service *s, const struct version *v)
{
	return v->phase == VP_STARTING || (v->phase == VP_ACTIVE && s->starting == v->vslot);
}

/* ---- rollback ------------------------------------------------------------------ */

/* Give the previous version (still draining, unsignalled) the traffic back. */
static int rollback(struct fsm *f, char *msg, size_t msglen)
{
	struct service *s = f->s;
	struct version *cur = s->active >= 0 ? s->slot[s->active] : NULL;
	struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;
	struct rollout *ro = &s->ro;

	if (ro->stage == RO_BEFORE_START || ro->stage == RO_STARTING) {
		snprintf(msg, msglen, "deploy of %s v%d aborted; %s stays active", s->conf.name,
			 ro->new_num, cur ? vname(cur) : "nothing");
		rollout_fail(f, RB_OPERATOR, "aborted by baton rollback");
		return 0;
	}
	if (ro->stage == RO_STEPPING || ro->stage == RO_AFTER_SWITCH) {
		int num = ro->new_num, old = ro->old_num;

		rollout_fail(f, RB_OPERATOR, "rolled back by baton rollback");
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
			 vname(prev), (f->now - prev->t_signal) / 1000.0, s->conf.name);
		return -ESTALE;
	}
	if (ro->stage != RO_NONE)
		/* Draining the old version for after-drain: that is over now. */
		rollout_end(f, false, "rolled back by the operator while the old version drained",
			    false);
	/* Its sockets are still the agent's copies: put them back, then switch. */
	if (prev->resetting) {
		emit(f, FA_RESET_STOP, prev, -1, 0);
		prev->resetting = false;
	}
	vtimer(f, prev, 0);
	emit(f, FA_WATCH, prev, -1, 0);
	place(f, prev);
	prev->phase = VP_ACTIVE;
	prev->weight = WEIGHT_MAX;
	s->active = prev->vslot;
	s->previous = cur ? cur->vslot : -1;
	if (cur) {
		cur->phase = VP_DRAIN_DELAY;
		cur->weight = 0;
	}
	policy(f);
	if (cur)
		snprintf(msg, msglen, "%s: v%d active again, draining v%d", s->conf.name, prev->num,
			 cur->num);
	else
		snprintf(msg, msglen, "%s: v%d active again", s->conf.name, prev->num);
	log_info("%s", msg);
	if (cur)
		drain_begin(f, cur);
	return 0;
}

/* ---- events of a version --------------------------------------------------------- */

static void on_exit(struct fsm *f, struct version *v, int i, const char *desc)
{
	struct service *s = f->s;
	struct instance *in = &v->inst[i];
	char why[300];
	int k;

	if (i < 0 || i >= v->ninst || !in->alive)
		return;
	in->alive = false;
	v->nalive--;
	if (v->adopted) {
		/* Its process held every instance's sockets: they are all gone. */
		for (k = 0; k < v->ninst; k++)
			if (v->inst[k].alive) {
				v->inst[k].alive = false;
				snprintf(v->inst[k].exit_desc, sizeof(v->inst[k].exit_desc), "%s",
					 desc);
				v->nalive--;
				emit(f, FA_STOP_CHECKS, v, k, 0);
				if (v->phase == VP_ACTIVE)
					emit(f, FA_UNPLACE_INST, v, k, 0);
			}
	}
	emit(f, FA_STOP_CHECKS, v, i, 0);
	switch (v->phase) {
	case VP_STARTING:
		snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
			 in->pid, desc);
		rollout_fail(f, RB_EXIT, why);
		return;
	case VP_ACTIVE:
		if (s->starting == v->vslot) {
			/* first version, still starting */
			snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
				 in->pid, desc);
			rollout_fail(f, RB_EXIT, why);
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
				note_rollback(s, v->num, f->wall, why);
				s->rollbacks[RB_EXIT]++;
				rollback(f, msg, sizeof(msg)); /* v is forgotten: no process */
				return;
			}
		}
		if (ro_new(s) == v &&
		    (s->ro.stage == RO_STEPPING || s->ro.stage == RO_AFTER_SWITCH)) {
			bool last = !v->nalive;

			snprintf(why, sizeof(why), "%s instance %d (pid %d) %s during the rollout",
				 vname(v), i, in->pid, desc);
			rollout_fail(f, RB_EXIT, why);
			if (last)
				return; /* v is gone: it had no process left */
		}
		emit(f, FA_UNPLACE_INST, v, i, 0);
		emit(f, FA_RELEASE, v, i, 0);
		if (!v->nalive && s->active == v->vslot)
			log_warnx(
			    "%s: no instance left; %s has no live version until the next deploy",
			    vname(v), s->conf.name);
		return;
	default:
		log_debug("%s: pid %d %s", vname(v), in->pid, desc);
		if (!v->nalive)
			version_stopped(f, v);
		return;
	}
}

static void on_vtimer(struct fsm *f, struct version *v)
{
	const struct service_conf *c = &f->s->conf;

	if (starting(f->s, v)) {
		char why[256];

		/* The readiness tick: only its deadline is a rule. */
		if (v->nready == v->ninst || !v->deadline || f->now < v->deadline)
			return;
		snprintf(why, sizeof(why),
			 "%d of %d instance(s) not ready within ready-timeout %u ms",
			 v->ninst - v->nready, v->ninst, c->ready_timeout_ms);
		emit(f, FA_STOP_CHECKS, v, -1, 0);
		rollout_fail(f, RB_HEALTH, why);
		return;
	}
	/* A drain deadline: only one that is set and due counts. */
	if (!v->deadline || f->now < v->deadline)
		return;
	switch (v->phase) {
	case VP_DRAIN_DELAY:
		drain_next(f, v);
		break;
	case VP_DRAIN_WAIT:
		/* exec.c said how many connections are still open. */
		if (c->drain_reset && !v->resetting) {
			/* Reset what is left, in bounded steps; the signal follows it. */
			v->resetting = true;
			vtimer(f, v, 0);
			emit(f, FA_RESET, v, -1, 0);
			break;
		}
		drain_signal(f, v);
		break;
	case VP_DRAINING:
		log_warnx("%s: %d process(es) still running at drain-timeout %u ms%s", vname(v),
			  v->nalive, c->drain_timeout_ms,
			  c->exit_signal != SIGTERM ? ", sending SIGTERM" : "");
		if (c->exit_signal != SIGTERM)
			emit(f, FA_SIGNAL, v, -1, SIGTERM);
		v->phase = VP_TERMINATING;
		vtimer(f, v, f->now + c->kill_after_ms);
		break;
	case VP_TERMINATING:
	case VP_ABORTING:
		log_warnx(
		    "%s: %d process(es) still running after kill-after %u ms, sending SIGKILL",
		    vname(v), v->nalive, c->kill_after_ms);
		emit(f, FA_SIGNAL, v, -1, SIGKILL);
		v->phase = VP_KILLED;
		vtimer(f, v, 0);
		break;
	default:
		break;
	}
}

static void on_zero(struct fsm *f, struct version *v, const struct fsm_event *e)
{
	if (v->phase != VP_DRAIN_WAIT)
		return;
	if (!e->zero_ns)
		log_info("%s: no connections left", vname(v));
	drain_signal(f, v);
	if (e->zero_ns) {
		v->zero_to_signal_us = (e->now_ns - e->zero_ns) / 1000;
		log_info("%s: last connection closed; signalled %lld us later", vname(v),
			 v->zero_to_signal_us);
	}
}

/* ---- operator commands ---------------------------------------------------------- */

static bool in_rollout(struct fsm *f, struct client *c, const char *cmd)
{
	struct service *s = f->s;

	if (s->ro.stage == RO_STEPPING)
		return true;
	if (s->ro.stage == RO_NONE)
		reply_err(f, c,
			  "%s: no rollout in progress (baton deploy %s --strategy canary -- CMD "
			  "starts one)",
			  s->conf.name, s->conf.name);
	else
		reply_err(f, c,
			  "%s: the rollout of v%d is at \"%s\"; %s applies while traffic shifts",
			  s->conf.name, s->ro.new_num, stage_names[s->ro.stage], cmd);
	return false;
}

static void op_pause(struct fsm *f, struct client *c)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;

	if (!in_rollout(f, c, "pause"))
		return;
	if (ro->paused) {
		reply_err(f, c, "%s: the rollout is already paused (baton promote %s continues it)",
			  s->conf.name, s->conf.name);
		return;
	}
	ro->paused = true;
	ro->bake_left = ro->bake_end ? ro->bake_end - f->now : 0;
	if (ro->bake_left < 0)
		ro->bake_left = 0;
	ro_timer(f, 0);
	log_info("%s: rollout of v%d paused at %.2f%%", s->conf.name, ro->new_num,
		 ro_new(s)->weight / 100.0);
	reply_ok(f, c,
		 "%s: rollout of v%d paused at %.2f%%; health checks go on; baton promote %s "
		 "continues, baton abort %s rolls back",
		 s->conf.name, ro->new_num, ro_new(s)->weight / 100.0, s->conf.name, s->conf.name);
}

static void op_abort(struct fsm *f, struct client *c)
{
	struct service *s = f->s;
	int num = s->ro.new_num, old = s->ro.old_num;

	if (s->ro.stage == RO_NONE || s->ro.stage >= RO_DRAIN_OLD) {
		reply_err(f, c,
			  "%s: no rollout to abort (baton rollback gives traffic back to the "
			  "previous version while it runs)",
			  s->conf.name);
		return;
	}
	rollout_fail(f, RB_OPERATOR, "aborted by the operator (baton abort)");
	if (old)
		reply_ok(f, c, "%s: rollout of v%d aborted; v%d has all new connections",
			 s->conf.name, num, old);
	else
		reply_ok(f, c, "%s: deploy of v%d aborted", s->conf.name, num);
}

/* Weights by hand for the rollout's two versions (the other gets the rest). */
static void op_weight(struct fsm *f, const struct fsm_event *e)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv, *ov;
	long long wn = -1, wo = -1;
	int k;

	if (!in_rollout(f, e->c, "weight"))
		return;
	if (e->why) {
		reply_err(f, e->c, "%s", e->why);
		return;
	}
	nv = ro_new(s);
	ov = ro_old(s);
	for (k = 0; k < e->nweights; k++) {
		if (nv && e->wnum[k] == nv->num) {
			wn = e->wbp[k];
		} else if (ov && e->wnum[k] == ov->num) {
			wo = e->wbp[k];
		} else {
			reply_err(f, e->c,
				  "weight: v%d does not take part in the rollout (v%d -> v%d); "
				  "only those two take weights",
				  e->wnum[k], ro->old_num, ro->new_num);
			return;
		}
	}
	if (wn < 0)
		wn = WEIGHT_MAX - wo;
	if (wo < 0)
		wo = WEIGHT_MAX - wn;
	if (wn + wo != WEIGHT_MAX || wn < 0 || wo < 0) {
		reply_err(f, e->c, "weight: v%d and v%d must add up to 100%% (given %.2f%%)",
			  ro->new_num, ro->old_num, (wn + wo) / 100.0);
		return;
	}
	if (!ov && wn != WEIGHT_MAX) {
		reply_err(f, e->c, "weight: v%d has no running instance; v%d must keep 100%%",
			  ro->old_num, ro->new_num);
		return;
	}
	rollout_weights(f, (unsigned)wn);
	if (!ro->paused)
		ro->bake_left = ro->bake_end ? ro->bake_end - f->now : 0;
	ro->paused = true;
	ro->manual = true;
	ro_timer(f, 0);
	log_info("%s: v%d %.2f%%, v%d %.2f%%; rollout paused", s->conf.name, ro->new_num,
		 wn / 100.0, ro->old_num, wo / 100.0);
	reply_ok(f, e->c,
		 "%s: v%d %.2f%%, v%d %.2f%%; rollout paused (baton promote %s continues from "
		 "the next step above)",
		 s->conf.name, ro->new_num, wn / 100.0, ro->old_num, wo / 100.0, s->conf.name);
}

/* Every version drains and stops: the service left the configuration, or shutdown --stop. */
static void stop_all(struct fsm *f, bool removed, const char *why)
{
	struct service *s = f->s;
	int vs;

	if (removed)
		s->removed = true;
	hook_kill(f);
	if (s->ro.stage != RO_NONE)
		rollout_end(f, false, why, false);
	s->active = -1;
	if (removed)
		s->previous = -1;
	for (vs = 0; vs < MAX_VERSIONS; vs++) {
		struct version *v = s->slot[vs];

		if (!v)
			continue;
		emit(f, FA_STOP_CHECKS, v, -1, 0);
		if (v->phase == VP_STARTING) {
			version_abort(f, v, why);
		} else if (v->phase == VP_ACTIVE || v->phase == VP_DRAIN_DELAY ||
			   v->phase == VP_DRAIN_WAIT) {
			v->phase = VP_DRAIN_DELAY;
			if (removed)
				v->weight = 0;
			policy(f);
			drain_begin(f, v);
			/* No drain-delay: a removed service drains by policy, a shutdown signals.
			 */
			if (s->slot[vs] != v)
				continue;
			if (removed && v->phase == VP_DRAIN_DELAY)
				drain_next(f, v);
			else if (!removed &&
				 (v->phase == VP_DRAIN_DELAY || v->phase == VP_DRAIN_WAIT))
				drain_signal(f, v);
		}
	}
	for (vs = 0; vs < MAX_VERSIONS && !s->slot[vs]; vs++)
		;
	if (removed && vs == MAX_VERSIONS && !s->gone) {
		s->gone = true;
		emit(f, FA_SERVICE_GONE, NULL, -1, 0);
	}
}

/* ---- restart: what a previous agent left ---------------------------------------- */

static void restored(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	enum vphase was[MAX_VERSIONS];
	int i, vs;

	for (vs = 0; vs < MAX_VERSIONS; vs++)
		was[vs] = s->slot[vs] ? s->slot[vs]->phase : VP_STARTING;
	policy(f);
	switch (ro->stage) {
	case RO_BEFORE_START:
	case RO_STARTING:
		/* Readiness reports sent while no agent listened are lost: start over. */
		rollout_fail(f, RB_RESTART,
			     "the agent restarted while the new version was starting; deploy it "
			     "again");
		break;
	case RO_AFTER_SWITCH:
		rollout_fail(f, RB_RESTART,
			     "the agent restarted while the after-switch hook ran (its result is "
			     "unknown)");
		break;
	case RO_AFTER_DRAIN:
		rollout_end(f, false,
			    "the agent restarted while the after-drain hook ran (its result is "
			    "unknown)",
			    false);
		log_warnx("%s: the after-drain hook's result is unknown: the agent restarted while "
			  "it ran",
			  s->conf.name);
		break;
	case RO_DRAIN_OLD:
		if (!ro_old(s))
			hook_start(f, HOOK_AFTER_DRAIN);
		break;
	case RO_STEPPING:
		if (!nv) {
			rollout_end(f, false, "the new version is gone", false);
			break;
		}
		log_info("%s: continuing the rollout of v%d at %.2f%% (step %d of %d)",
			 s->conf.name, ro->new_num, nv->weight / 100.0, ro->step + 1, ro->nsteps);
		if (s->conf.health != HEALTH_NONE || s->conf.max_error_bp != ERROR_RATE_OFF)
			emit(f, FA_HEALTH_CHECKS, nv, -1, 0);
		if (!ro->paused && ro->bake_end)
			ro_timer(f, ro->bake_end);
		for (i = 0; i < nv->ninst; i++)
			if (!nv->inst[i].alive) {
				char why[200];

				snprintf(why, sizeof(why),
					 "%s instance %d (pid %d) exited while no agent ran",
					 vname(nv), i, nv->inst[i].pid);
				rollout_fail(f, RB_EXIT, why);
				break;
			}
		break;
	default:
		break;
	}
	/* Each version the rollout left as it was: back on its timers, as its phase had them. */
	for (vs = 0; vs < MAX_VERSIONS; vs++) {
		struct version *v = s->slot[vs];

		if (!v || v->phase != was[vs])
			continue;
		if (!v->nalive) {
			version_stopped(f, v);
			continue;
		}
		/* Slots of instances that are gone leave the map; the rest is there already. */
		for (i = 0; i < v->ninst; i++)
			if (!v->inst[i].alive)
				emit(f, FA_UNPLACE_INST, v, i, 0);
		switch (v->phase) {
		case VP_DRAIN_DELAY:
			if (s->ro.stage == RO_AFTER_SWITCH && s->ro.oldv == v->vslot)
				break; /* kept for the after-switch hook: handled with the rollout
					*/
			vtimer(f, v, v->t_switch + s->conf.drain_delay_ms);
			break;
		case VP_DRAIN_WAIT:
			vtimer(f, v, v->deadline);
			emit(f, FA_WATCH, v, -1, 1);
			break;
		case VP_DRAINING:
		case VP_TERMINATING:
		case VP_ABORTING:
			vtimer(f, v, v->deadline);
			break;
		default:
			break;
		}
	}
}

static void adopt_first(struct fsm *f, struct version *v, struct client *c)
{
	struct service *s = f->s;
	int i;

	v->t_start = f->now;
	v->phase = VP_ACTIVE;
	v->weight = WEIGHT_MAX;
	for (i = 0; i < v->ninst; i++)
		if (!v->inst[i].ready) {
			v->inst[i].ready = true;
			v->nready++;
		}
	s->active = v->vslot;
	/* Sockets and policy before the program: its first choice is one of them. */
	place(f, v);
	policy(f);
	emit(f, FA_ATTACH, v, -1, 0);
	reply_ok(f, c, "%s: adopted process %d as v%d (%d listener(s) per address)", s->conf.name,
		 (int)v->inst[0].pid, v->num, v->ninst);
}

/* ---- the step ------------------------------------------------------------------ */

void fsm_step(struct service *s, const struct fsm_event *e, long long now, struct fsm_out *out)
{
	struct fsm f = {.s = s, .now = now, .wall = e->wall, .out = out};
	struct version *v = e->v;
	char msg[FSM_TEXT];

	/* An event about a version this service no longer has changes nothing. */
	if (v &&
	    (v->svc != s || v->vslot < 0 || v->vslot >= MAX_VERSIONS || s->slot[v->vslot] != v))
		return;
	switch (e->type) {
	case FE_DEPLOY:
		if (v)
			deploy(&f, e);
		break;
	case FE_SPAWNED:
		if (v)
			deploy_spawned(&f, v, e->ok, e->why);
		break;
	case FE_READY:
		if (v)
			instance_ready(&f, v, e->inst);
		break;
	case FE_EXIT:
		if (v)
			on_exit(&f, v, e->inst, e->why ? e->why : "exited");
		break;
	case FE_UNHEALTHY:
		rollout_fail(&f, e->reason == RB_ERRORS ? RB_ERRORS : RB_HEALTH,
			     e->why ? e->why : "unhealthy");
		break;
	case FE_VTIMER:
		if (v)
			on_vtimer(&f, v);
		break;
	case FE_RO_TIMER:
		on_ro_timer(&f);
		break;
	case FE_HOOK_DONE:
		if (s->ro.hook_running)
			hook_done(&f, e->ok, e->why);
		break;
	case FE_ZERO:
		if (v)
			on_zero(&f, v, e);
		break;
	case FE_RESET_DONE:
		if (v && v->phase == VP_DRAIN_WAIT && v->resetting) {
			v->resetting = false;
			drain_signal(&f, v);
		}
		break;
	case FE_PROMOTE:
		if (!in_rollout(&f, e->c, "promote"))
			break;
		rollout_promote(&f, e->full);
		reply_ok(&f, e->c, "%s",
			 e->full ? "promoted to 100%" : "promoted to the next step");
		break;
	case FE_PAUSE:
		op_pause(&f, e->c);
		break;
	case FE_WEIGHT:
		op_weight(&f, e);
		break;
	case FE_ABORT:
		op_abort(&f, e->c);
		break;
	case FE_ROLLBACK:
		if (rollback(&f, msg, sizeof(msg)))
			reply_err(&f, e->c, "%s", msg);
		else
			reply_ok(&f, e->c, "%s", msg);
		break;
	case FE_REMOVE:
		stop_all(&f, true, "the service was removed from the configuration");
		break;
	case FE_SHUTDOWN:
		stop_all(&f, false, "the agent is shutting down");
		break;
	case FE_RESTORED:
		restored(&f);
		break;
	case FE_ADOPT_FIRST:
		if (v)
			adopt_first(&f, v, e->c);
		break;
	case FE_COUNT:
		break;
	}
}

/* ---- invariants ------------------------------------------------------------------ */

const char *fsm_check(const struct service *s, const struct fsm_out *out)
{
	static char why[200];
	unsigned sum = 0;
	int vs, n = 0;

	if (out && out->overflow)
		return "more actions than FSM_MAX_ACTIONS";
	for (vs = 0; vs < MAX_VERSIONS; vs++) {
		const struct version *v = s->slot[vs];

		if (!v)
			continue;
		n++;
		if (v->vslot != vs || v->svc != s) {
			snprintf(why, sizeof(why), "slot %d holds a version of slot %d", vs,
				 v->vslot);
			return why;
		}
		if (v->nalive < 0 || v->nalive > v->ninst || v->nready < 0 ||
		    v->nready > v->ninst) {
			snprintf(why, sizeof(why), "v%d counts %d alive, %d ready of %d", v->num,
				 v->nalive, v->nready, v->ninst);
			return why;
		}
		if (v->phase == VP_ACTIVE) {
			sum += v->weight;
			if (v->weight && !v->placed) {
				snprintf(why, sizeof(why), "v%d has weight %u but is not placed",
					 v->num, v->weight);
				return why;
			}
		}
		/* A version with no process left is forgotten, unless it still is the service's. */
		if (!v->nalive && v->phase != VP_ACTIVE && v->phase != VP_STARTING &&
		    !(v->phase == VP_DRAIN_DELAY && s->ro.stage == RO_AFTER_SWITCH &&
		      s->ro.oldv == vs)) {
			snprintf(why, sizeof(why),
				 "v%d (%s) has no process left but was not forgotten", v->num,
				 phase_names[v->phase]);
			return why;
		}
	}
	if (sum != 0 && sum != WEIGHT_MAX) {
		snprintf(why, sizeof(why), "the active versions' weights sum to %u", sum);
		return why;
	}
	if (s->active >= 0 && (s->active >= MAX_VERSIONS || !s->slot[s->active]))
		return "active names an empty slot";
	if (s->previous >= 0 && (s->previous >= MAX_VERSIONS || !s->slot[s->previous]))
		return "previous names an empty slot";
	if (s->ro.stage != RO_NONE && s->ro.newv >= 0 && !s->slot[s->ro.newv] &&
	    s->ro.stage <= RO_AFTER_SWITCH)
		return "the rollout's new version is gone while it runs";
	(void)n;
	return NULL;
}
