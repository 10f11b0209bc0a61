/* SPDX-License-Identifier: MIT */
/*
 * Latency gates of a canary rollout (part of the pure state machine: no I/O,
 * no clock).  Every health-interval the agent reports the new version's
 * response time and accept wait over its gate window (FE_LAT_SAMPLE):
 * the window closes with a verdict once it holds min-samples responses,
 * else it stays open and the sample is inconclusive.
 *
 *  - a conclusive sample over max-p99 or max-accept-wait-p99,
 *    health-threshold times in a row, rolls back;
 *  - a step whose bake is over is held until a conclusive sample within
 *    the bounds arrives (then it promotes);
 *  - a step with no conclusive sample analysis-timeout after its weight
 *    was applied fails: too little traffic to judge is not a pass.
 */
#include <stdio.h>

#include "fsm_int.h"
#include "log.h"
#include "model.h"

bool fsm_gates_on(const struct service_conf *c)
{
	return c->max_p99_ms || c->max_accept_p99_ms;
}

/* A new step's weight is applied: its verdict starts over. */
void fsm_gates_step(struct fsm *f)
{
	struct rollout *ro = &f->s->ro;

	ro->gate_step_t = f->now;
	ro->gate_pass = false;
	ro->gate_holding = false;
}

/* The bake of the step is over: hold it unless a conclusive sample passed. */
bool fsm_gates_hold(struct fsm *f)
{
	const struct service_conf *c = &f->s->conf;
	struct rollout *ro = &f->s->ro;

	if (!fsm_gates_on(c) || ro->gate_pass)
		return false;
	if (!ro->gate_holding) {
		ro->gate_holding = true;
		log_info("%s: v%d holds its step: no verdict yet (fewer than min-samples %u "
			 "responses); fails after analysis-timeout %u ms",
			 c->name, ro->new_num, c->min_samples, c->analysis_timeout_ms);
		fsm_progress(f, "%s: v%d held: inconclusive, waiting for %u requests", c->name,
			     ro->new_num, c->min_samples);
	}
	return true;
}

static void fmt_ms(unsigned long long us, char *buf, int len)
{
	if (us >= 10000)
		snprintf(buf, len, "%llu ms", us / 1000);
	else
		snprintf(buf, len, "%.2f ms", us / 1000.0);
}

void fsm_on_latency_sample(struct fsm *f, struct version *v, const struct fsm_lat_sample *l,
			   const char *text)
{
	const struct service_conf *c = &f->s->conf;
	struct rollout *ro = &f->s->ro;
	char why[256], a[32], b[32];
	bool over_p99, over_acc;

	if (!fsm_gates_on(c) || ro->stage != RO_STEPPING || ro->new_num != v->num)
		return;
	if (!ro->gate_step_t)
		ro->gate_step_t = f->now; /* a rollout taken over from an earlier agent */
	if (!l->conclusive) {
		snprintf(ro->gate_last, sizeof(ro->gate_last),
			 "inconclusive: %llu of min-samples %u requests in %llu ms", l->n,
			 c->min_samples, l->window_ms);
		if (!ro->gate_pass &&
		    f->now - ro->gate_step_t >= (long long)c->analysis_timeout_ms) {
			snprintf(why, sizeof(why),
				 "%s inconclusive: %llu requests in %.1f s, fewer than min-samples "
				 "%u within analysis-timeout %u ms",
				 vname(v), l->n, l->window_ms / 1000.0, c->min_samples,
				 c->analysis_timeout_ms);
			fsm_rollout_fail(f, RB_LATENCY, why);
		}
		return;
	}
	over_p99 = c->max_p99_ms && l->p99_us > (unsigned long long)c->max_p99_ms * 1000;
	over_acc = c->max_accept_p99_ms && l->acc_n &&
		   l->acc_p99_us > (unsigned long long)c->max_accept_p99_ms * 1000;
	if (over_p99) {
		fmt_ms(l->p99_us, a, sizeof(a));
		fmt_ms((unsigned long long)c->max_p99_ms * 1000, b, sizeof(b));
		snprintf(why, sizeof(why), "%s p99 %s > max-p99 %s over %llu requests", vname(v), a,
			 b, l->n);
	} else if (over_acc) {
		fmt_ms(l->acc_p99_us, a, sizeof(a));
		fmt_ms((unsigned long long)c->max_accept_p99_ms * 1000, b, sizeof(b));
		snprintf(why, sizeof(why),
			 "%s accept wait p99 %s > max-accept-wait-p99 %s over %llu connections",
			 vname(v), a, b, l->acc_n);
	} else {
		ro->gate_bad = 0;
		ro->gate_pass = true;
		snprintf(ro->gate_last, sizeof(ro->gate_last), "pass: %s", text);
		log_info("%s: latency gates pass: %s", vname(v), text);
		if (ro->gate_holding && !ro->paused) {
			ro->gate_holding = false;
			fsm_rollout_promote(f, false);
		}
		return;
	}
	ro->gate_bad++;
	snprintf(ro->gate_last, sizeof(ro->gate_last), "fail: %s", why);
	log_warnx("%s (%d of %d in a row)", why, ro->gate_bad, c->health_threshold);
	if (ro->gate_bad >= c->health_threshold)
		fsm_rollout_fail(f, RB_LATENCY, why);
}
