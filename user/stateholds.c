/* SPDX-License-Identifier: MIT */
/*
 * A rollout's holds and their deadlines in the state file, and back: JSON
 * only, no I/O (statefile.c writes it, restore.c reads it; the state
 * machine's tests make the same round trip).
 */
#include <stdio.h>

#include "model.h"
#include "statefile.h"

/*
 * What the rollout waits for and until when: the rollout timer's deadline
 * (a bake's end, an approval's, a confirmation's, the gates'), a
 * confirmation webhook asked, the gates held for, the latency gates' step
 * (analysis-timeout counts from it).  A restarted agent keeps every
 * deadline where it was instead of starting its clock again.  Not the
 * latency gates' verdict text: it changes every interval (the file would be
 * written each time) and the next sample gives it again.
 */
json_t *state_holds(const struct service *s)
{
	const struct rollout *ro = &s->ro;

	return json_pack(
	    "{s:I, s:b, s:i, s:i, s:I, s:b, s:I, s:I, s:b, s:b, s:i, s:b, s:I, s:i, s:i}", "timer",
	    (json_int_t)s->ro_deadline, "approve", ro->approve, "confirm", ro->confirm, "hold_step",
	    ro->hold_step, "confirm_deadline", (json_int_t)ro->confirm_deadline, "gate_hold",
	    ro->gate_hold, "gate_deadline", (json_int_t)ro->gate_deadline, "gate_step_t",
	    (json_int_t)ro->gate_step_t, "gate_pass", ro->gate_pass, "gate_holding",
	    ro->gate_holding, "gate_bad", ro->gate_bad, "gate_timed_out", ro->gate_timed_out,
	    "approve_deadline", (json_int_t)ro->approve_deadline, "released", ro->released,
	    "confirmed", ro->confirmed);
}

/*
 * What the rollout waited for, with its deadlines as they were (CLOCK_MONOTONIC
 * ms: the same clock for this agent, within the boot the state file's tmpfs
 * lives in; the wall clock could be stepped by NTP or an operator while no
 * agent runs).  A state file written before they were kept has none: the
 * rules then restart the clocks (fsm_restored).  The rules bound a deadline
 * past its timeout from now (fsm_restored), so a wrong value cannot hold forever.
 */
void state_holds_restore(struct service *s, json_t *h)
{
	struct rollout *ro = &s->ro;

	if (!json_is_object(h))
		return;
	s->ro_deadline = json_integer_value(json_object_get(h, "timer"));
	ro->approve = json_is_true(json_object_get(h, "approve"));
	ro->confirm = json_integer_value(json_object_get(h, "confirm"));
	if (ro->confirm < WH_CONFIRM_ROLLOUT || ro->confirm > WH_CONFIRM_PROMOTION)
		ro->confirm = 0;
	ro->hold_step = json_integer_value(json_object_get(h, "hold_step"));
	if (ro->hold_step < 0 || ro->hold_step >= MAX_STEPS)
		ro->hold_step = 0;
	ro->confirm_deadline = json_integer_value(json_object_get(h, "confirm_deadline"));
	ro->gate_hold = json_is_true(json_object_get(h, "gate_hold"));
	ro->gate_deadline = json_integer_value(json_object_get(h, "gate_deadline"));
	ro->gate_step_t = json_integer_value(json_object_get(h, "gate_step_t"));
	ro->gate_pass = json_is_true(json_object_get(h, "gate_pass"));
	ro->gate_holding = json_is_true(json_object_get(h, "gate_holding"));
	ro->gate_bad = json_integer_value(json_object_get(h, "gate_bad"));
	ro->gate_timed_out = json_is_true(json_object_get(h, "gate_timed_out"));
	ro->approve_deadline = json_integer_value(json_object_get(h, "approve_deadline"));
	ro->released = json_integer_value(json_object_get(h, "released"));
	ro->confirmed = json_integer_value(json_object_get(h, "confirmed"));
}
