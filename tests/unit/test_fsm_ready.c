/* SPDX-License-Identifier: MIT */
/*
 * Readiness by notify, alone as test_fsm.c does it: READY=1 (FE_NOTIFIED)
 * does not make an instance ready; it asks for a connection to be accepted
 * through the instance's own socket (FA_ACCEPT_PROBE), and only that probe's
 * pass (FE_READY) does, within ready-timeout.  Each step's exact actions.
 */
#include "fsm_harness.h"

#define EV(t, v_, i) ((struct fsm_event){.type = (t), .v = (v_), .inst = (i)})

/* Blue-green, 2 instances, readiness as the test asks, no health checks. */
static struct service *service_new(enum ready_kind ready)
{
	struct service *s = service_base();

	snprintf(s->conf.listen[0].text, sizeof(s->conf.listen[0].text), "127.0.0.1:8080");
	s->conf.instances = 2;
	s->conf.ready = ready;
	s->conf.nsteps = 1;
	s->conf.steps[0] = WEIGHT_MAX;
	return s;
}

/*
 * The first version, from the configuration: READY=1 asks for the accept
 * probe like any other; it is active (it has all traffic) from the start.
 */
static struct version *first_version(struct service *s)
{
	struct version *v = version_make(s);

	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v}),
	       "place v1; policy; attach v1; spawn v1");
	spawned(v);
	EXPECT(s, ((struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true}), "ready-checks v1");
	EXPECT(s, EV(FE_NOTIFIED, v, 0), "accept-probe v1/0");
	EXPECT(s, EV(FE_NOTIFIED, v, 1), "accept-probe v1/1");
	EXPECT(s, EV(FE_READY, v, 0), "");
	EXPECT(s, EV(FE_READY, v, 1), "vtimer v1 off; ro-timer off");
	assert_int_equal(s->active, v->vslot);
	assert_int_equal(s->ro.stage, RO_NONE);
	return v;
}

/* v2 started and waiting for readiness. */
static struct version *deploy_v(struct service *s)
{
	struct version *v = version_make(s);
	char want[128];

	snprintf(want, sizeof(want), "place v%d; policy; attach v%d; spawn v%d", v->num, v->num,
		 v->num);
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v, .c = C1}), want);
	spawned(v);
	snprintf(want, sizeof(want), "progress; ready-checks v%d", v->num);
	EXPECT(s, ((struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true}), want);
	return v;
}

/*
 * READY=1 alone switches nothing: the switch waits until every instance
 * also accepted a connection (the accept probe's FE_READY).
 */
static void test_notify_then_accept(void **state)
{
	struct service *s = service_new(READY_NOTIFY);
	struct version *v1, *v2;

	(void)state;
	v1 = first_version(s);
	v2 = deploy_v(s);
	EXPECT(s, EV(FE_NOTIFIED, v2, 0), "accept-probe v2/0");
	EXPECT(s, EV(FE_NOTIFIED, v2, 1), "accept-probe v2/1");
	/* Both said READY=1, neither accepted yet: not ready, v1 keeps all traffic. */
	assert_int_equal(v2->nready, 0);
	assert_int_equal(v2->phase, VP_STARTING);
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(v1->weight, WEIGHT_MAX);
	/* A second READY=1 asks for no second probe. */
	EXPECT(s, EV(FE_NOTIFIED, v2, 0), "");
	EXPECT(s, EV(FE_READY, v2, 0), "");
	assert_int_equal(s->active, v1->vslot);
	/* A READY=1 after the instance is ready changes nothing. */
	EXPECT(s, EV(FE_NOTIFIED, v2, 0), "");
	EXPECT(s, EV(FE_READY, v2, 1),
	       "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; deploy-done ok; "
	       "ro-timer off; watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	assert_int_equal(s->active, v2->vslot);
	assert_int_equal(v2->weight, WEIGHT_MAX);
	service_free(s);
}

/*
 * READY=1 but no accept by ready-timeout: the deploy fails, saying so, and
 * the old version never stopped serving.
 */
static void test_notified_never_accepts(void **state)
{
	struct service *s = service_new(READY_NOTIFY);
	struct version *v1, *v2;

	(void)state;
	v1 = first_version(s);
	v2 = deploy_v(s);
	EXPECT(s, EV(FE_NOTIFIED, v2, 0), "accept-probe v2/0");
	EXPECT(s, EV(FE_NOTIFIED, v2, 1), "accept-probe v2/1");
	EXPECT(s, EV(FE_READY, v2, 0), "");
	now += 4999;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v2}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v2}),
	       "stop-checks v2; deploy-done failed; ro-timer off; unplace v2; policy; release v2; "
	       "signal v2 SIGTERM; vtimer v2 +1000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "1 of 2 instance(s) not ready within ready-timeout 5000 ms (instance 1 "
			    "sent READY=1 but accepted no connection on 127.0.0.1:8080)");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(v1->weight, WEIGHT_MAX);
	/* The probe's answer after the failure changes nothing. */
	EXPECT(s, EV(FE_READY, v2, 1), "");
	assert_int_equal(s->active, v1->vslot);
	service_free(s);
}

/*
 * Without READY=1 at all the old message stands; a dead instance's READY=1
 * (a late datagram) asks for no probe.
 */
static void test_not_notified(void **state)
{
	struct service *s = service_new(READY_NOTIFY);
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = deploy_v(s);
	v2->inst[1].alive = false;
	EXPECT(s, EV(FE_NOTIFIED, v2, 1), "");
	EXPECT(s, EV(FE_NOTIFIED, v2, 7), ""); /* no such instance */
	now += 5000;
	step(s, (struct fsm_event){.type = FE_VTIMER, .v = v2});
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "2 of 2 instance(s) not ready within ready-timeout 5000 ms");
	service_free(s);
}

/*
 * READY=1 for a service whose readiness is another check (tcp) is not its
 * readiness: nothing follows.  And outside a wait for readiness (a version
 * already active) READY=1 makes the instance ready at once, as before.
 */
static void test_notified_elsewhere(void **state)
{
	struct service *s = service_new(READY_TCP);
	struct version *v1, *v2;

	(void)state;
	v1 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v1});
	spawned(v1);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v1, .ok = true});
	EXPECT(s, EV(FE_NOTIFIED, v1, 0), "");
	assert_false(v1->inst[0].ready);
	assert_false(v1->inst[0].notified);
	service_free(s);

	s = service_new(READY_NOTIFY);
	v1 = first_version(s);
	v2 = deploy_v(s);
	(void)v2;
	/* v1 is active, not starting: an instance of it not marked ready is ready at once. */
	v1->inst[1].ready = false;
	v1->nready--;
	EXPECT(s, EV(FE_NOTIFIED, v1, 1), "");
	assert_true(v1->inst[1].ready);
	assert_int_equal(v1->nready, 2);
	service_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_notify_then_accept),
	    cmocka_unit_test(test_notified_never_accepts),
	    cmocka_unit_test(test_not_notified),
	    cmocka_unit_test(test_notified_elsewhere),
	};

	log_init("test_fsm_ready", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
