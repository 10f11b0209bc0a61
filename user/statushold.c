/* SPDX-License-Identifier: MIT */
/*
 * baton status: what a held rollout waits for (a confirmation webhook's
 * 2xx, baton promote, its Prometheus gates, a conclusive latency sample),
 * since when, until when (the deadline that rolls it back), and the last
 * answer or verdict it got.  Only one hold is shown: the one that decides
 * now, in the order the state machine checks them.
 */
#include <stdio.h>
#include <time.h>

#include "fsm.h"
#include "loop.h"
#include "status.h"

/* A monotonic ms deadline as wall-clock UTC text, for people. */
static json_t *wall(long long at, long long now)
{
	time_t t = time(NULL) + (time_t)((at - now) / 1000);
	char buf[32];

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	return json_string(buf);
}

static json_t *hold(const char *kind, const char *what, long long since, long long until,
		    const char *last, long long now)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "for", kind, "what", what, "since_ms",
			      (json_int_t)(now - since > 0 ? now - since : 0), "last", last);

	if (until) {
		json_object_set_new(j, "left_ms", json_integer(until > now ? until - now : 0));
		json_object_set_new(j, "until", wall(until, now));
	} else {
		json_object_set_new(j, "left_ms", json_null());
	}
	return j;
}

/* The first Prometheus gate of v that has not passed: its name and last verdict. */
static void gate_not_passing(const struct service *s, const struct version *v, char *buf,
			     size_t len)
{
	int g;

	for (g = 0; g < s->conf.ngates && v->gate[g].verdict == GV_PASS; g++)
		;
	if (g == s->conf.ngates) {
		snprintf(buf, len, "every gate passes");
		return;
	}
	snprintf(buf, len, "gate %s: %s", s->conf.gate[g].name,
		 v->gate[g].verdict ? v->gate[g].last : "no verdict yet");
}

json_t *status_hold(struct service *s)
{
	const struct rollout *ro = &s->ro;
	const struct service_conf *c = &s->conf;
	struct version *nv = ro_new(s);
	long long now = now_ms(), until;
	char what[160], last[240];

	if (ro->stage == RO_NONE)
		return json_null();
	if (ro->confirm) {
		snprintf(what, sizeof(what), "the %s webhook to answer 2xx (asked every %.1f s)",
			 wh_event_names[ro->confirm], c->confirm_interval_ms / 1000.0);
		return hold("webhook", what, ro->confirm_deadline - c->confirm_timeout_ms,
			    ro->confirm_deadline,
			    ro->confirm_last[0] ? ro->confirm_last : "no answer yet", now);
	}
	if (ro->gate_hold && nv) {
		gate_not_passing(s, nv, last, sizeof(last));
		return hold("gates", "every Prometheus gate to pass",
			    ro->gate_deadline - c->gate_timeout_ms, ro->gate_deadline, last, now);
	}
	until = ro->stage == RO_ROLLING					   ? ro->approve_deadline
		: ro->stage == RO_STEPPING && ro->approve && !ro->bake_end ? s->ro_deadline
									   : 0;
	if (until && !ro->paused) {
		snprintf(what, sizeof(what), "baton promote %s", c->name);
		return hold("approval", what, until - c->approval_timeout_ms, until, "", now);
	}
	if (ro->stage == RO_STEPPING && ro->gate_holding && !ro->gate_pass && !c->gate_dry_run &&
	    fsm_gates_on(c)) {
		snprintf(what, sizeof(what), "a conclusive latency sample (min-samples %u)",
			 c->min_samples);
		return hold("latency", what, ro->gate_step_t,
			    ro->gate_step_t + c->analysis_timeout_ms, ro->gate_last, now);
	}
	return json_null();
}
