/* SPDX-License-Identifier: MIT */
/*
 * A canary's fresh baseline (baton deploy --strategy canary --baseline, or
 * baseline = yes): a new instance set of the current version, started with
 * the canary and given the same share of new connections at every step, so
 * that max-p99-ratio compares the canary with a version just as fresh (warm
 * caches and uptime skew a comparison with long-running instances).  Part
 * of the pure state machine: no I/O, no clock.
 *
 *  - it is placed and started with the canary; the first step waits until
 *    both are ready, and either failing to start fails the deploy;
 *  - at a step of weight w it takes min(w, 100% - w), the old version the
 *    rest (above 50% the canary's share is more than the baseline's);
 *  - when the rollout ends (promoted, rolled back, failed or aborted) it
 *    takes nothing new and drains like a rolled-back canary.
 */
#include <stdio.h>

#include "fsm_int.h"
#include "log.h"

/* FE_DEPLOY with a baseline: it belongs to the rollout (canary with a current version only). */
void fsm_baseline_deploy(struct fsm *f, struct version *b)
{
	struct rollout *ro = &f->s->ro;

	if (!b)
		return;
	if (ro->strategy != STRATEGY_CANARY || ro->oldv < 0) {
		/* The request's checks keep this from happening: nothing to compare with. */
		fsm_version_abort(f, b, "a baseline needs a canary rollout from a current version");
		return;
	}
	ro->base_num = b->num;
}

/* With the canary: its sockets into the map (no weight yet), before the policy update. */
void fsm_baseline_place(struct fsm *f)
{
	struct version *b = ro_base(f->s);

	if (!b)
		return;
	b->t_start = f->now;
	b->phase = VP_STARTING;
	fsm_place(f, b);
}

/* After the canary's: attach and start it (FE_SPAWNED follows). */
void fsm_baseline_spawn(struct fsm *f)
{
	struct version *b = ro_base(f->s);

	if (!b)
		return;
	fsm_emit(f, FA_ATTACH, b, -1, 0);
	fsm_emit(f, FA_SPAWN, b, -1, 0);
	log_info("%s: starting baseline %s of %s's current version v%d", f->s->conf.name, vname(b),
		 f->s->conf.name, f->s->ro.old_num);
}

/* FE_SPAWNED: true when v is the baseline (then handled here). */
bool fsm_baseline_spawned(struct fsm *f, struct version *v, bool ok, const char *why)
{
	struct service *s = f->s;
	char msg[300];
	int i;

	if (v != ro_base(s) || s->ro.stage != RO_STARTING)
		return v == ro_base(s);
	if (!ok) {
		snprintf(msg, sizeof(msg), "baseline %s cannot start: %s", vname(v),
			 why ? why : "?");
		fsm_rollout_fail(f, RB_EXIT, msg);
		return true;
	}
	if (s->conf.ready == READY_NONE) {
		for (i = 0; i < v->ninst && s->slot[v->vslot] == v; i++)
			fsm_instance_ready(f, v, i);
		return true;
	}
	v->deadline = v->t_start + s->conf.ready_timeout_ms;
	fsm_emit(f, FA_READY_CHECKS, v, -1, 0);
	return true;
}

/* Whether the first step still waits for the baseline's readiness. */
bool fsm_baseline_waits(struct service *s)
{
	struct version *b = ro_base(s);

	return b && b->nready < b->ninst;
}

/* The first step: the baseline takes connections from now on. */
void fsm_baseline_ready(struct fsm *f)
{
	struct version *b = ro_base(f->s);

	if (!b)
		return;
	b->phase = VP_ACTIVE;
	fsm_vtimer(f, b, 0);
}

/* Its share at the canary's weight w. */
unsigned fsm_baseline_weight(struct service *s, unsigned w)
{
	struct version *b = ro_base(s);

	if (!b || b->phase != VP_ACTIVE)
		return 0;
	return w < WEIGHT_MAX - w ? w : WEIGHT_MAX - w;
}

/* It takes no new connection from the next policy update on. */
void fsm_baseline_off(struct fsm *f)
{
	struct version *b = ro_base(f->s);

	if (b && b->phase == VP_ACTIVE) {
		b->weight = 0;
		b->phase = VP_DRAIN_DELAY;
	}
}

/* The rollout ended: the baseline leaves (drains, or stops if it never was ready). */
void fsm_baseline_leave(struct fsm *f)
{
	struct service *s = f->s;
	struct version *b = ro_base(s);

	s->ro.base_num = 0;
	if (!b || b->phase == VP_ABORTING)
		return;
	log_info("%s: baseline %s leaves with the rollout", s->conf.name, vname(b));
	if (b->phase == VP_STARTING) {
		fsm_version_abort(f, b, "its rollout ended before it was ready");
		return;
	}
	if (b->phase == VP_ACTIVE) {
		b->weight = 0;
		b->phase = VP_DRAIN_DELAY;
		fsm_policy(f);
	}
	if (b->phase == VP_DRAIN_DELAY && b->placed)
		fsm_drain_failed(f, b);
}
