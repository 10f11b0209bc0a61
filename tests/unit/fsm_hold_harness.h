/* SPDX-License-Identifier: MIT */
/*
 * What the state machine's hold tests (test_fsm_hold.c, test_fsm_http.c)
 * add to fsm_harness.h: a canary service of one instance with its holds'
 * bounds, and its versions started by hand.  Included once by each test
 * program (its functions are static).
 */
#ifndef BATON_FSM_HOLD_HARNESS_H
#define BATON_FSM_HOLD_HARNESS_H

#include "fsm_harness.h"
#include "lathist.h"
#include "statefile.h"

/* A canary service: 1 instance ready by notify, steps 10%, 50%, 100%, bake 2 s. */
static struct service *service_new(unsigned webhook_events)
{
	struct service *s = service_base();

	s->conf.strategy = STRATEGY_CANARY;
	canary_steps(s);
	s->conf.webhook_events = webhook_events;
	s->conf.confirm_interval_ms = 500;
	s->conf.confirm_timeout_ms = 7000;
	s->conf.approval_timeout_ms = 9000;
	trees_linger = true; /* the tests end processes by FE_EXIT alone */
	return s;
}

static struct version *first_version(struct service *s)
{
	struct version *v = version_make(s);

	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v}),
	       "place v1; policy; attach v1; spawn v1");
	spawned(v);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	v->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 0}),
	       "vtimer v1 off; ro-timer off");
	return v;
}

/* v2 started and ready: its first step's actions are at_ready. */
static struct version *ready_new(struct service *s, struct version *v, const char *at_ready)
{
	spawned(v);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	v->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 0}), at_ready);
	return v;
}

#endif /* BATON_FSM_HOLD_HARNESS_H */
