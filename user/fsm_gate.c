/* SPDX-License-Identifier: MIT */
/*
 * The state machine's rules for Prometheus gates (gate = NAME: <PromQL>
 * <op> <threshold>), judged every health-interval while a canary shifts
 * traffic, beside the health checks and the kernel's error rate:
 *  - a failing verdict health-threshold times in a row rolls back;
 *  - no data, an error or a timeout is inconclusive: never a pass;
 *  - a bake ends only into the next step when every gate's last verdict
 *    passed; otherwise the step waits for them up to gate-timeout, then
 *    the rollout fails (rolled back) naming the gate;
 *  - with gate-dry-run, verdicts are shown and logged, never acted on.
 */
#include <stdio.h>

#include "fsm_int.h"
#include "log.h"

/* Whether every gate of v passed its last query (or gates only watch). */
bool fsm_gates_pass(const struct service *s, const struct version *v)
{
	int g;

	if (s->conf.gate_dry_run)
		return true;
	for (g = 0; g < s->conf.ngates; g++)
		if (v->gate[g].verdict != GV_PASS)
			return false;
	return true;
}

/* The first gate of v that has not passed, for a reason. */
static int first_not_passing(const struct service *s, const struct version *v)
{
	int g;

	for (g = 0; g < s->conf.ngates && v->gate[g].verdict == GV_PASS; g++)
		;
	return g < s->conf.ngates ? g : 0;
}

void fsm_on_gate(struct fsm *f, struct version *v, int g, int verdict, double value,
		 const char *text)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	struct gate_state *st;
	char why[400];

	if (g < 0 || g >= c->ngates || (ro->stage != RO_STEPPING && ro->stage != RO_ROLLING) ||
	    ro_new(s) != v || verdict < GV_PASS || verdict > GV_INCONCLUSIVE)
		return;
	st = &v->gate[g];
	st->verdict = (enum gate_verdict)verdict;
	st->value = value;
	snprintf(st->last, sizeof(st->last), "%s", text);
	switch (st->verdict) {
	case GV_PASS:
		st->passes++;
		st->fails = 0;
		break;
	case GV_FAIL:
		st->failures++;
		st->fails++;
		log_warnx("%s: gate %s fails: %s (%d of %d in a row)%s", vname(v), c->gate[g].name,
			  text, st->fails, c->health_threshold,
			  c->gate_dry_run ? " (dry-run)" : "");
		if (!c->gate_dry_run && st->fails >= c->health_threshold) {
			snprintf(why, sizeof(why), "gate %s failed %d times in a row: %s",
				 c->gate[g].name, st->fails, text);
			fsm_rollout_fail(f, RB_GATE, why);
			return;
		}
		break;
	default:
		st->inconclusive++;
		log_warnx("%s: gate %s inconclusive: %s%s", vname(v), c->gate[g].name, text,
			  c->gate_dry_run ? " (dry-run)" : "");
		break;
	}
	/* The bake is over and this was the last gate it waited for. */
	if (ro->gate_hold && !ro->paused && fsm_gates_pass(s, v)) {
		ro->gate_hold = false;
		log_info("%s: every gate passes; next %s", vname(v),
			 ro->stage == RO_ROLLING ? "batch" : "step");
		if (ro->stage == RO_ROLLING) {
			fsm_rolling_resume(f); /* its next hold, if any, or the batch */
			return;
		}
		fsm_ro_timer(f, 0);
		fsm_rollout_promote(f, false);
	}
}

/* The bake ended: hold the step while a gate has not passed.  True: held. */
bool fsm_gate_hold(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	int g;

	if (!nv || !s->conf.ngates || fsm_gates_pass(s, nv))
		return false;
	if (ro->gate_hold)
		return true;
	g = first_not_passing(s, nv);
	ro->gate_hold = true;
	ro->gate_deadline = f->now + s->conf.gate_timeout_ms;
	if (!fsm_rolling(s)) /* rolling: its timer has other bounds too (fsm_rollhold.c) */
		fsm_ro_timer(f, ro->gate_deadline);
	log_info("%s: bake over; waiting for gate %s to pass (%s; gate-timeout %.1f s)", vname(nv),
		 s->conf.gate[g].name, nv->gate[g].verdict ? nv->gate[g].last : "no verdict yet",
		 s->conf.gate_timeout_ms / 1000.0);
	fsm_progress(f, "%s: waiting for gate %s to pass (%s)", s->conf.name, s->conf.gate[g].name,
		     nv->gate[g].verdict ? nv->gate[g].last : "no verdict yet");
	return true;
}

/* The rollout timer while held for gates: true when it was that timer. */
bool fsm_gate_timer(struct fsm *f)
{
	struct service *s = f->s;
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	char why[400];
	int g;

	if (!ro->gate_hold)
		return false;
	if (f->now < ro->gate_deadline || !nv)
		return true;
	g = first_not_passing(s, nv);
	snprintf(why, sizeof(why), "gate %s did not pass within gate-timeout %.1f s (last: %s)",
		 s->conf.gate[g].name, s->conf.gate_timeout_ms / 1000.0,
		 nv->gate[g].verdict ? nv->gate[g].last : "no verdict");
	ro->gate_hold = false;
	fsm_rollout_fail(f, RB_GATE, why);
	return true;
}
