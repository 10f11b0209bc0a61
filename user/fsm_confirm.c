/* SPDX-License-Identifier: MIT */
/*
 * The state machine's rules for holding a rollout: confirmation webhooks
 * (confirm-rollout before anything starts, confirm-step before each step
 * after the first, confirm-promotion before the new version takes 100%),
 * which only a 2xx answer ends, and approvals (approve = yes, deploy
 * --approve), which only baton promote ends.  Each has a deadline
 * (confirm-timeout, approval-timeout) on the rollout timer: a dead webhook
 * or an absent operator fails the rollout then, never holds it forever.
 */
#include <stdio.h>

#include "fsm_int.h"
#include "log.h"

/*
 * Hold the rollout before point (WH_CONFIRM_*), which would apply step (a
 * confirm-rollout holds step 0: the start), when a webhook of the service
 * asks for it.  True while held: the caller goes no further.
 */
bool fsm_confirm_hold(struct fsm *f, int point, int step)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;

	if (!(c->webhook_events & (1u << point)))
		return false;
	if (ro->confirm == point) {
		ro->hold_step = step; /* promote --full while held: the hold is for 100% now */
		return true;
	}
	fsm_confirm_stop(f);
	ro->confirm = point;
	ro->confirm_last[0] = '\0';
	ro->hold_step = step;
	ro->confirm_deadline = f->now + c->confirm_timeout_ms;
	if (point == WH_CONFIRM_ROLLOUT)
		ro->stage = RO_BEFORE_START;
	fsm_emit(f, FA_CONFIRM, NULL, -1, point);
	if (!fsm_rolling(s)) /* rolling: its timer has other bounds too (fsm_rollhold.c) */
		fsm_ro_timer(f, ro->confirm_deadline);
	log_info("%s: v%d waits for the %s webhook's 2xx (asked every %.1f s, confirm-timeout "
		 "%.1f s)",
		 c->name, ro->new_num, wh_event_names[point], c->confirm_interval_ms / 1000.0,
		 c->confirm_timeout_ms / 1000.0);
	fsm_progress(f, "%s: waiting for the %s webhook to answer 2xx (confirm-timeout %.1f s)",
		     c->name, wh_event_names[point], c->confirm_timeout_ms / 1000.0);
	return true;
}

/* Stop asking (confirmed, the rollout ended, or the operator took over). */
void fsm_confirm_stop(struct fsm *f)
{
	struct rollout *ro = &f->s->ro;

	if (!ro->confirm)
		return;
	ro->confirm = 0;
	fsm_emit(f, FA_CONFIRM, NULL, -1, -1);
}

/* The rollout timer of a hold: its deadline passed, or not yet.  True: handled. */
bool fsm_hold_timer(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	char why[300];

	if (ro->confirm) {
		if (f->now < ro->confirm_deadline)
			return true;
		snprintf(why, sizeof(why),
			 "the %s webhook did not answer 2xx within confirm-timeout %.1f s",
			 wh_event_names[ro->confirm], c->confirm_timeout_ms / 1000.0);
		fsm_rollout_fail(f, RB_HOOK, why);
		return true;
	}
	if (ro->stage == RO_STEPPING && ro->approve && !ro->paused && !ro->bake_end &&
	    s->ro_deadline && f->now >= s->ro_deadline) {
		snprintf(why, sizeof(why),
			 "v%d was not approved within approval-timeout %.1f s (nobody ran baton "
			 "promote %s)",
			 ro->new_num, c->approval_timeout_ms / 1000.0, c->name);
		fsm_rollout_fail(f, RB_OPERATOR, why);
		return true;
	}
	return false;
}

/* A confirmation webhook answered 2xx: the step it held back goes ahead. */
void fsm_on_confirmed(struct fsm *f, int point, bool ok)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;

	if (!ok || !ro->confirm || ro->confirm != point)
		return;
	fsm_confirm_stop(f);
	log_info("%s: the %s webhook confirmed v%d", s->conf.name, wh_event_names[point],
		 ro->new_num);
	if (ro->stage == RO_ROLLING) {
		fsm_rollhold_confirmed(f); /* the rolling timer has other bounds: not stopped */
		return;
	}
	fsm_ro_timer(f, 0);
	if (point == WH_CONFIRM_ROLLOUT) {
		fsm_deploy_go(f);
		return;
	}
	if (ro->stage != RO_STEPPING)
		return;
	ro->step = ro->hold_step;
	ro->paused = false;
	ro->manual = false;
	fsm_rollout_apply(f);
}

/*
 * Taken over from an earlier agent mid step: the rollout timer at the
 * deadline the state file had (a bake's end, an approval's, a
 * confirmation's, the gates'), not a new one from now, so a restart neither
 * restarts a hold's clock nor loses it; a deadline passed while no agent
 * ran fires at once.  Never further than its own timeout from now (a state
 * file from another boot's clock cannot hold forever).  A confirmation
 * webhook is asked again.  Paused: nothing runs until promote.
 */
void fsm_holds_restored(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	long long at = 0, bound = 0, *field = NULL, approve_at = s->ro_deadline;

	s->ro_deadline = 0; /* the state file's; no timer is armed yet */
	if (ro->paused) {
		ro->confirm = 0;
		return;
	}
	if (ro->confirm) {
		field = &ro->confirm_deadline;
		bound = c->confirm_timeout_ms;
	} else if (ro->gate_hold) {
		field = &ro->gate_deadline;
		bound = c->gate_timeout_ms;
	} else if (ro->bake_end) {
		field = &ro->bake_end;
		bound = ro->bake_ms;
	} else if (ro->approve) {
		/* The approval's deadline is the timer's own (an older state: from now). */
		field = &approve_at;
		bound = c->approval_timeout_ms;
		if (!approve_at)
			approve_at = f->now + bound;
	}
	if (field) {
		if (*field > f->now + bound) {
			log_warnx(
			    "%s: the state file's deadline is %.1f s away, more than its timeout "
			    "%.1f s: %.1f s from now",
			    c->name, (*field - f->now) / 1000.0, bound / 1000.0, bound / 1000.0);
			*field = f->now + bound;
		}
		at = *field;
		log_info("%s: v%d waits as before the restart: %.1f s left", c->name, ro->new_num,
			 (at - f->now) / 1000.0);
	}
	if (at)
		fsm_ro_timer(f, at);
	if (ro->confirm)
		fsm_emit(f, FA_CONFIRM, NULL, -1, ro->confirm);
	if (ro->gate_step_t > f->now)
		ro->gate_step_t = f->now;
}
