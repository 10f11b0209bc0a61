/* SPDX-License-Identifier: MIT */
/* The state machine's rules for operator commands, removal, shutdown and restart. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"
#include "log.h"

/* ---- operator commands ---------------------------------------------------------- */

bool fsm_in_rollout(struct fsm *f, struct client *c, const char *cmd)
{
	struct service *s = f->s;

	if (s->ro.stage == RO_STEPPING || s->ro.stage == RO_ROLLING)
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

void fsm_op_pause(struct fsm *f, struct client *c)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;

	if (!fsm_in_rollout(f, c, "pause"))
		return;
	if (ro->stage == RO_ROLLING) {
		fsm_rolling_pause(f, c);
		return;
	}
	if (ro->paused) {
		reply_err(f, c, "%s: the rollout is already paused (baton promote %s continues it)",
			  s->conf.name, s->conf.name);
		return;
	}
	ro->paused = true;
	fsm_confirm_stop(f); /* the operator holds it now; promote asks again */
	ro->bake_left = ro->bake_end ? ro->bake_end - f->now : 0;
	if (ro->bake_left < 0)
		ro->bake_left = 0;
	fsm_ro_timer(f, 0);
	log_info("%s: rollout of v%d paused at %.2f%%", s->conf.name, ro->new_num,
		 ro_new(s)->weight / 100.0);
	reply_ok(f, c,
		 "%s: rollout of v%d paused at %.2f%%; health checks go on; baton promote %s "
		 "continues, baton abort %s rolls back",
		 s->conf.name, ro->new_num, ro_new(s)->weight / 100.0, s->conf.name, s->conf.name);
}

void fsm_op_abort(struct fsm *f, struct client *c)
{
	struct service *s = f->s;
	int num = s->ro.new_num, old = s->ro.old_num;

	if (s->ro.stage == RO_NONE || (s->ro.stage >= RO_DRAIN_OLD && s->ro.stage != RO_ROLLING)) {
		reply_err(f, c,
			  "%s: no rollout to abort (baton rollback gives traffic back to the "
			  "previous version while it runs)",
			  s->conf.name);
		return;
	}
	fsm_rollout_fail(f, RB_OPERATOR, "aborted by the operator (baton abort)");
	if (old)
		reply_ok(f, c, "%s: rollout of v%d aborted; v%d has all new connections",
			 s->conf.name, num, old);
	else
		reply_ok(f, c, "%s: deploy of v%d aborted", s->conf.name, num);
}

/* Weights by hand for the rollout's two versions (the other gets the rest). */
void fsm_op_weight(struct fsm *f, const struct fsm_event *e)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv, *ov;
	long long wn = -1, wo = -1;
	int k;

	if (!fsm_in_rollout(f, e->c, "weight"))
		return;
	if (e->why) {
		reply_err(f, e->c, "%s", e->why);
		return;
	}
	if (ro->stage == RO_ROLLING) {
		reply_err(f, e->c,
			  "weight: in a rolling rollout each version's weight is its share of "
			  "serving instances; use baton pause / promote / abort %s",
			  s->conf.name);
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
	if (ro_base(s) && wo >= 0) {
		reply_err(f, e->c,
			  "weight: the rollout has a baseline (v%d): give v%d's weight only; the "
			  "baseline takes the same share (at most 100%% minus it), v%d the rest",
			  ro->base_num, ro->new_num, ro->old_num);
		return;
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
	fsm_rollout_weights(f, (unsigned)wn);
	if (ov)
		wo = ov->weight; /* less the baseline's share, if any */
	if (!ro->paused)
		ro->bake_left = ro->bake_end ? ro->bake_end - f->now : 0;
	ro->paused = true;
	ro->manual = true;
	fsm_confirm_stop(f);
	fsm_ro_timer(f, 0);
	log_info("%s: v%d %.2f%%, v%d %.2f%%; rollout paused", s->conf.name, ro->new_num,
		 wn / 100.0, ro->old_num, wo / 100.0);
	reply_ok(f, e->c,
		 "%s: v%d %.2f%%, v%d %.2f%%; rollout paused (baton promote %s continues from "
		 "the next step above)",
		 s->conf.name, ro->new_num, wn / 100.0, ro->old_num, wo / 100.0, s->conf.name);
}

/* Every version drains and stops: the service left the configuration, or shutdown --stop. */
void fsm_stop_all(struct fsm *f, bool removed, const char *why)
{
	struct service *s = f->s;
	int vs;

	if (removed)
		s->removed = true;
	fsm_hook_kill(f);
	if (s->ro.stage != RO_NONE)
		fsm_rollout_end(f, false, why, false);
	s->active = -1;
	if (removed)
		s->previous = -1;
	for (vs = 0; vs < MAX_VERSIONS; vs++) {
		struct version *v = s->slot[vs];

		if (!v)
			continue;
		fsm_emit(f, FA_STOP_CHECKS, v, -1, 0);
		if (v->phase == VP_STARTING) {
			fsm_version_abort(f, v, why);
		} else if (v->phase == VP_ACTIVE || v->phase == VP_DRAIN_DELAY ||
			   v->phase == VP_DRAIN_WAIT) {
			v->phase = VP_DRAIN_DELAY;
			if (removed)
				v->weight = 0;
			fsm_policy(f);
			fsm_drain_begin(f, v);
			/* No drain-delay: a removed service drains by policy, a shutdown signals.
			 */
			if (s->slot[vs] != v)
				continue;
			if (removed && v->phase == VP_DRAIN_DELAY)
				fsm_drain_next(f, v);
			else if (!removed &&
				 (v->phase == VP_DRAIN_DELAY || v->phase == VP_DRAIN_WAIT))
				fsm_drain_signal(f, v);
		}
	}
	for (vs = 0; vs < MAX_VERSIONS && !s->slot[vs]; vs++)
		;
	if (removed && vs == MAX_VERSIONS && !s->gone) {
		s->gone = true;
		fsm_emit(f, FA_SERVICE_GONE, NULL, -1, 0);
	}
}

/* ---- restart: what a previous agent left ---------------------------------------- */

/* Whether this step already started instance i of v again. */
static bool spawned_now(const struct fsm *f, const struct version *v, int i)
{
	int k;

	for (k = 0; k < f->out->n; k++)
		if (f->out->a[k].type == FA_SPAWN_INST && f->out->a[k].v == v &&
		    f->out->a[k].inst == i)
			return true;
	return false;
}

void fsm_restored(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	enum vphase was[MAX_VERSIONS];
	int i, vs;

	for (vs = 0; vs < MAX_VERSIONS; vs++)
		was[vs] = s->slot[vs] ? s->slot[vs]->phase : VP_STARTING;
	fsm_policy(f);
	switch (ro->stage) {
	case RO_BEFORE_START:
	case RO_STARTING:
		/* Readiness reports sent while no agent listened are lost: start over. */
		fsm_rollout_fail(
		    f, RB_RESTART,
		    "the agent restarted while the new version was starting; deploy it "
		    "again");
		break;
	case RO_AFTER_SWITCH:
		if (ro->strategy == STRATEGY_ROLLING)
			fsm_rolling_restored(f);
		fsm_rollout_fail(
		    f, RB_RESTART,
		    "the agent restarted while the after-switch hook ran (its result is "
		    "unknown)");
		break;
	case RO_AFTER_DRAIN:
		fsm_rollout_end(f, false,
				"the agent restarted while the after-drain hook ran (its result is "
				"unknown)",
				false);
		log_warnx("%s: the after-drain hook's result is unknown: the agent restarted while "
			  "it ran",
			  s->conf.name);
		break;
	case RO_DRAIN_OLD:
		if (!ro_old(s))
			fsm_hook_start(f, HOOK_AFTER_DRAIN);
		break;
	case RO_ROLLING:
	case RO_ROLLING_BACK:
		/* Which old instances left and which new ones serve is not in the state. */
		ro->stage = RO_ROLLING;
		fsm_rolling_restored(f);
		fsm_rollout_fail(f, RB_RESTART,
				 "the agent restarted during the rolling rollout; the old version "
				 "is brought back");
		break;
	case RO_STEPPING:
		if (!nv) {
			fsm_rollout_end(f, false, "the new version is gone", false);
			break;
		}
		log_info("%s: continuing the rollout of v%d at %.2f%% (step %d of %d)",
			 s->conf.name, ro->new_num, nv->weight / 100.0, ro->step + 1, ro->nsteps);
		/* As fsm_rollout_ready: Prometheus gates are queried on the same tick. */
		if (s->conf.health != HEALTH_NONE || s->conf.max_error_bp != ERROR_RATE_OFF ||
		    s->conf.ngates || fsm_gates_on(&s->conf))
			fsm_emit(f, FA_HEALTH_CHECKS, nv, -1, 0);
		fsm_holds_restored(f);
		for (i = 0; i < nv->ninst; i++)
			if (!nv->inst[i].alive) {
				char why[200];

				snprintf(why, sizeof(why),
					 "%s instance %d (pid %d) exited while no agent ran",
					 vname(nv), i, nv->inst[i].pid);
				fsm_rollout_fail(f, RB_EXIT, why);
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
		if (!fsm_procs_left(v)) {
			fsm_version_stopped(f, v);
			continue;
		}
		/*
		 * Slots of instances that are gone leave the map; the rest is there
		 * already.  Not one started again by this step (a rolling rollback
		 * places it at its spawn when its probe needs the map).
		 */
		for (i = 0; i < v->ninst; i++)
			if (!v->inst[i].alive && !spawned_now(f, v, i))
				fsm_emit(f, FA_UNPLACE_INST, v, i, 0);
		switch (v->phase) {
		case VP_DRAIN_DELAY:
			if (s->ro.stage == RO_AFTER_SWITCH && s->ro.oldv == v->vslot)
				break; /* kept for the after-switch hook: handled with the rollout
					*/
			fsm_vtimer(f, v, v->t_switch + s->conf.drain_delay_ms);
			fsm_http_drain_restore(f, v);
			break;
		case VP_DRAIN_WAIT:
			fsm_vtimer(f, v, v->deadline);
			fsm_emit(f, FA_WATCH, v, -1, 1);
			fsm_http_drain_restore(f, v);
			break;
		case VP_DRAINING:
		case VP_TERMINATING:
		case VP_ABORTING:
			fsm_vtimer(f, v, v->deadline);
			break;
		default:
			break;
		}
	}
}

void fsm_adopt_first(struct fsm *f, struct version *v, struct client *c)
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
	fsm_history_adopted(f, v->num);
	/* Sockets and policy before the program: its first choice is one of them. */
	fsm_place(f, v);
	fsm_policy(f);
	fsm_emit(f, FA_ATTACH, v, -1, 0);
	reply_ok(f, c, "%s: adopted process %d as v%d (%d listener(s) per address)", s->conf.name,
		 (int)v->inst[0].pid, v->num, v->ninst);
}
