/* SPDX-License-Identifier: MIT */
/*
 * The holds between the batches of a rolling rollout, as a canary's between
 * its steps.  Before each batch after the first (once the pause is over):
 *  - every Prometheus gate must have passed its last query; held up to
 *    gate-timeout (fsm_gate.c), then rolled back;
 *  - the latency gates (max-p99, max-accept-wait-p99, max-p99-ratio
 *    against the old version) and the HTTP gates (min-success-rate,
 *    max-error-ratio against the old version) must have given a passing
 *    verdict over a window of the new version's that began after the last
 *    batch began serving; held while inconclusive, up to analysis-timeout
 *    from then (fsm_gates.c), then rolled back;
 *  - with approve = yes (deploy --approve), baton promote; held up to
 *    approval-timeout (not counted while paused), then rolled back;
 *  - a confirm-step webhook (confirm-promotion before the last batch) must
 *    answer 2xx; asked every confirm-interval up to confirm-timeout
 *    (fsm_confirm.c), then rolled back.
 * In that order.  promote releases the gates and the approval of the batch
 * held, not a confirmation webhook's (as for a canary's step).  A gate that
 * fails health-threshold times in a row rolls back at any time (fsm_gate.c).
 */
#include <stdio.h>

#include "fsm_int.h"
#include "log.h"

/* Whether the batch about to start is the last: it starts every instance left. */
static bool last_batch(const struct service *s, const struct version *nv)
{
	int i, started = 0;

	for (i = 0; i < nv->ninst; i++)
		started += nv->inst[i].started;
	return nv->ninst - started <= s->ro.surge + s->ro.unavail;
}

bool fsm_rollhold(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	struct version *nv = ro_new(s);
	int next = ro->batch + 1;

	if (ro->stage != RO_ROLLING || !nv || ro->batch < 1)
		return false;
	if (ro->released < next) {
		if (fsm_gate_hold(f))
			return true;
		ro->gate_hold = false;
		if (fsm_gates_hold(f))
			return true;
		ro->gate_holding = false;
		if (ro->approve) {
			if (ro->approve_deadline)
				return true;
			ro->approve_deadline = f->now + c->approval_timeout_ms;
			log_info("%s: batch %d of v%d waits for baton promote (approval-timeout "
				 "%.1f s)",
				 c->name, next, ro->new_num, c->approval_timeout_ms / 1000.0);
			fsm_progress(f, "%s: batch %d of v%d waits for: baton promote %s", c->name,
				     next, ro->new_num, c->name);
			return true;
		}
	}
	if (ro->confirmed < next &&
	    fsm_confirm_hold(f, last_batch(s, nv) ? WH_CONFIRM_PROMOTION : WH_CONFIRM_STEP, next))
		return true;
	return false;
}

/* The earliest deadline of a hold (0: none), for the rollout timer. */
long long fsm_rollhold_deadline(const struct service *s)
{
	const struct rollout *ro = &s->ro;
	long long at = 0;

	if (ro->confirm)
		at = ro->confirm_deadline;
	if (ro->gate_hold && (!at || ro->gate_deadline < at))
		at = ro->gate_deadline;
	if (ro->approve_deadline && !ro->paused && (!at || ro->approve_deadline < at))
		at = ro->approve_deadline;
	return at;
}

/* The rollout timer: a hold's deadline passed rolls back.  True: it did. */
bool fsm_rollhold_timer(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	char why[300];

	if (ro->stage != RO_ROLLING)
		return false;
	if (ro->confirm && f->now >= ro->confirm_deadline)
		return fsm_hold_timer(f);
	if (ro->gate_hold && f->now >= ro->gate_deadline)
		return fsm_gate_timer(f);
	if (ro->approve_deadline && !ro->paused && f->now >= ro->approve_deadline) {
		snprintf(why, sizeof(why),
			 "batch %d of v%d was not approved within approval-timeout %.1f s (nobody "
			 "ran baton promote %s)",
			 ro->batch + 1, ro->new_num, s->conf.approval_timeout_ms / 1000.0,
			 s->conf.name);
		ro->approve_deadline = 0;
		fsm_rollout_fail(f, RB_OPERATOR, why);
		return true;
	}
	return false;
}

/* baton promote: the batch held for its gates or its approval goes; --full: no more approvals. */
void fsm_rollhold_promote(struct fsm *f, bool full)
{
	struct rollout *ro = &f->s->ro;

	if (ro->gate_hold || ro->gate_holding || ro->approve_deadline) {
		ro->released = ro->batch + 1;
		log_info("%s: batch %d of v%d released by baton promote", f->s->conf.name,
			 ro->batch + 1, ro->new_num);
	}
	ro->gate_hold = false;
	ro->gate_holding = false;
	ro->approve_deadline = 0;
	if (full)
		ro->approve = false;
}

/* A confirmation webhook answered 2xx for the batch it held. */
void fsm_rollhold_confirmed(struct fsm *f)
{
	struct rollout *ro = &f->s->ro;

	ro->confirmed = ro->hold_step;
	fsm_rolling_resume(f);
}

/* The rollout ends or rolls back: nothing is held any more. */
void fsm_rollhold_end(struct fsm *f)
{
	struct rollout *ro = &f->s->ro;

	fsm_confirm_stop(f);
	ro->gate_hold = false;
	ro->gate_holding = false;
	ro->approve_deadline = 0;
}
