/* SPDX-License-Identifier: MIT */
/*
 * The rollout state machine (fsm.h): the step and its invariants, and the
 * helpers every rule uses to change state and emit actions.  The rules:
 * fsm_rollout.c (deploy, readiness, steps, hooks, rollback), fsm_version.c
 * (a version's drain and end, and its events), fsm_ops.c (operator
 * commands, removal, shutdown, restart).  Every phase and stage change of
 * the agent happens in these files; the only outputs are the new state and
 * the actions.  Logging is the one side effect, and it changes nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"
#include "log.h"

const char *const fsm_ev_names[FE_COUNT] = {
    [FE_DEPLOY] = "deploy",
    [FE_SPAWNED] = "spawned",
    [FE_READY] = "ready",
    [FE_EXIT] = "exit",
    [FE_CHECK] = "check",
    [FE_ERROR_SAMPLE] = "error-sample",
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
    [FE_TREE_EMPTY] = "tree-empty",
    [FE_CONFIRMED] = "confirmed",
    [FE_GATE] = "gate",
    [FE_INST_CONNS] = "inst-conns",
    [FE_LAT_SAMPLE] = "latency-sample",
    [FE_NOTIFIED] = "notified",
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
    [FA_SIGNAL_TREE] = "signal-tree",
    [FA_WATCH] = "watch",
    [FA_RESET] = "reset",
    [FA_RESET_STOP] = "reset-stop",
    [FA_HTTP_DRAIN] = "http-drain",
    [FA_HTTP_RESTEER] = "http-resteer",
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
    [FA_CONFIRM] = "confirm",
    [FA_PLACE_INST] = "place-inst",
    [FA_SPAWN_INST] = "spawn-inst",
    [FA_SIGNAL_INST] = "signal-inst",
    [FA_INST_CONNS] = "inst-conns",
    [FA_REDEPLOY] = "redeploy",
    [FA_KILL_INST] = "kill-inst",
    [FA_ACCEPT_PROBE] = "accept-probe",
};

struct fsm_action *fsm_emit(struct fsm *f, enum fsm_act t, struct version *v, int inst,
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

void fsm_emit_text(struct fsm *f, enum fsm_act t, struct client *c, bool ok, bool rolled_back,
		   const char *fmt, ...)
{
	struct fsm_action *a = fsm_emit(f, t, NULL, -1, 0);
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

void fsm_progress(struct fsm *f, const char *fmt, ...)
{
	struct fsm_action *a;
	va_list ap;

	if (!f->s->ro.waiter)
		return;
	a = fsm_emit(f, FA_PROGRESS, NULL, -1, 0);
	if (!a)
		return;
	a->c = f->s->ro.waiter;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

void fsm_vtimer(struct fsm *f, struct version *v, long long at)
{
	v->deadline = at;
	fsm_emit(f, FA_VTIMER, v, -1, at);
}

void fsm_ro_timer(struct fsm *f, long long at)
{
	f->s->ro_deadline = at;
	fsm_emit(f, FA_RO_TIMER, NULL, -1, at);
}

void fsm_policy(struct fsm *f)
{
	struct service *s = f->s;
	bool resteer = s->conf.drain_http && s->conf.steering == STEER_STICKY;

	fsm_emit(f, FA_POLICY, NULL, -1, 0);
	/*
	 * drain-http, sticky: after every policy change, connections whose
	 * client now maps to another version are asked to close after their
	 * next response, so keep-alive clients follow the weights too.
	 */
	if (resteer || s->resteering)
		fsm_emit(f, FA_HTTP_RESTEER, NULL, -1, resteer);
	s->resteering = resteer;
}

void fsm_place(struct fsm *f, struct version *v)
{
	fsm_emit(f, FA_PLACE, v, -1, 0);
	v->placed = true;
}

void fsm_unplace(struct fsm *f, struct version *v)
{
	if (!v->placed)
		return;
	fsm_emit(f, FA_UNPLACE, v, -1, 0);
	v->placed = false;
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
			fsm_deploy(&f, e);
		break;
	case FE_SPAWNED:
		/* Even a start that failed half-way may have left processes (FE_TREE_EMPTY says).
		 */
		if (v && !v->adopted)
			v->tree = true;
		if (v && fsm_rolling(s))
			fsm_rolling_spawned(&f, v, e->inst, e->ok, e->why);
		else if (v)
			fsm_deploy_spawned(&f, v, e->ok, e->why);
		break;
	case FE_READY:
		if (v)
			fsm_instance_ready(&f, v, e->inst);
		break;
	case FE_NOTIFIED:
		if (v)
			fsm_instance_notified(&f, v, e->inst);
		break;
	case FE_EXIT:
		if (v)
			fsm_on_exit(&f, v, e->inst, e->why ? e->why : "exited");
		break;
	case FE_CHECK:
		if (v)
			fsm_on_check(&f, v, e->inst, e->ok, e->why ? e->why : "");
		break;
	case FE_LAT_SAMPLE:
		if (v)
			fsm_on_latency_sample(&f, v, &e->lat, e->why ? e->why : "");
		break;
	case FE_ERROR_SAMPLE:
		if (v)
			fsm_on_error_sample(&f, v, e->sample_clients, e->sample_failed,
					    e->why ? e->why : "");
		break;
	case FE_VTIMER:
		if (v)
			fsm_on_vtimer(&f, v);
		break;
	case FE_RO_TIMER:
		fsm_on_ro_timer(&f);
		break;
	case FE_HOOK_DONE:
		if (s->ro.hook_running)
			fsm_hook_done(&f, e->ok, e->why);
		break;
	case FE_ZERO:
		if (v)
			fsm_on_zero(&f, v, e);
		break;
	case FE_RESET_DONE:
		if (v && v->phase == VP_DRAIN_WAIT && v->resetting) {
			v->resetting = false;
			fsm_drain_signal(&f, v);
		}
		break;
	case FE_PROMOTE:
		if (!fsm_in_rollout(&f, e->c, "promote"))
			break;
		fsm_rollout_promote(&f, e->full);
		if (s->ro.confirm)
			reply_ok(&f, e->c, "waiting for the %s webhook's 2xx",
				 wh_event_names[s->ro.confirm]);
		else
			reply_ok(&f, e->c, "%s",
				 e->full ? "promoted to 100%" : "promoted to the next step");
		break;
	case FE_PAUSE:
		fsm_op_pause(&f, e->c);
		break;
	case FE_WEIGHT:
		fsm_op_weight(&f, e);
		break;
	case FE_ABORT:
		fsm_op_abort(&f, e->c);
		break;
	case FE_ROLLBACK:
		switch (fsm_rollback_to(&f, e->to, e->c, msg, sizeof(msg))) {
		case 0:
			reply_ok(&f, e->c, "%s", msg);
			break;
		case 1:
			break; /* the client waits for the rollout FA_REDEPLOY starts */
		default:
			reply_err(&f, e->c, "%s", msg);
		}
		break;
	case FE_REMOVE:
		fsm_stop_all(&f, true, "the service was removed from the configuration");
		break;
	case FE_SHUTDOWN:
		fsm_stop_all(&f, false, "the agent is shutting down");
		break;
	case FE_RESTORED:
		fsm_restored(&f);
		break;
	case FE_ADOPT_FIRST:
		if (v)
			fsm_adopt_first(&f, v, e->c);
		break;
	case FE_TREE_EMPTY:
		if (v)
			fsm_on_tree_empty(&f, v);
		break;
	case FE_CONFIRMED:
		fsm_on_confirmed(&f, e->inst, e->ok);
		break;
	case FE_GATE:
		if (v)
			fsm_on_gate(&f, v, e->inst, e->verdict, e->value, e->why ? e->why : "");
		break;
	case FE_INST_CONNS:
		if (v && v->phase == VP_DRAIN_WAIT)
			fsm_roll_left_conns(&f, v, e);
		else if (v)
			fsm_rolling_conns(&f, v, e);
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
		if (!fsm_procs_left(v) && v->phase != VP_ACTIVE && v->phase != VP_STARTING &&
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
