/* SPDX-License-Identifier: MIT */
/*
 * strategy = rolling in the state machine alone (user/fsm_rolling.c): no
 * root, no BPF, no processes.  The test plays exec.c (it starts the
 * instances a spawn-inst names, answers inst-conns with chosen counts) and
 * asserts the exact actions of each step, the invariants after it, and at
 * every step the bounds of the issue: processes <= instances + max-surge,
 * serving instances >= instances - max-unavailable.
 */
#include "rolling_harness.h"

/* max-surge 1, max-unavailable 0: one new instance, then the old one with fewest connections. */
static void test_surge_one(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1}),
	       "policy; attach v2; place-inst v2/0; spawn-inst v2/0; ready-checks v2");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	assert_int_equal(nv->phase, VP_STARTING);
	start_spawned();
	EXPECT(s, ev(FE_SPAWNED, nv, 0), "");
	/* Ready: v2 takes 1 of 5 serving instances' share, then one old instance is chosen. */
	EXPECT(s, ev(FE_READY, nv, 0), "policy; inst-conns v1");
	assert_int_equal(nv->weight, 2000);
	assert_int_equal(nv->serve_n, 1);
	/* The fewest live connections: instance 2. */
	EXPECT(s, conns(ov, 9, 4, 1, 7),
	       "policy; unplace-inst v1/2; release v1/2; signal-inst v1/2 SIGTERM; ro-timer +3000");
	assert_int_equal(nv->weight, 2500);
	assert_true(ov->inst[2].retiring);
	/* No room until it exits: 5 processes. */
	EXPECT(s, ev(FE_EXIT, ov, 2),
	       "stop-checks v1/2; place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 1), "policy; inst-conns v1");
	assert_int_equal(nv->weight, 4000);
	EXPECT(s, conns(ov, 3, 0, -1, 5),
	       "policy; unplace-inst v1/1; release v1/1; signal-inst v1/1 SIGTERM; ro-timer +3000");
	assert_int_equal(nv->weight, 5000);
	EXPECT(s, ev(FE_EXIT, ov, 1),
	       "stop-checks v1/1; place-inst v2/2; spawn-inst v2/2; ready-checks v2; ro-timer off");
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 2), "policy; inst-conns v1");
	EXPECT(s, conns(ov, 8, -1, -1, 2),
	       "policy; unplace-inst v1/3; release v1/3; signal-inst v1/3 SIGTERM; ro-timer +3000");
	assert_int_equal(nv->weight, 7500);
	EXPECT(s, ev(FE_EXIT, ov, 3),
	       "stop-checks v1/3; place-inst v2/3; spawn-inst v2/3; ready-checks v2; ro-timer off");
	start_spawned();
	/* The last one: v2 has all, the last old instance drains as a version does. */
	EXPECT(s, ev(FE_READY, nv, 3),
	       "stop-checks v2; vtimer v2 off; policy; deploy-done ok; ro-timer off; unplace v1; "
	       "watch v1 off; release v1; signal-inst v1/0 SIGTERM; vtimer v1 +3000");
	assert_int_equal(nv->weight, WEIGHT_MAX);
	assert_int_equal(s->active, nv->vslot);
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(ov->phase, VP_DRAINING);
	EXPECT(s, ev(FE_EXIT, ov, 0), "stop-checks v1/0; policy; forget v1");
	assert_int_equal(max_procs, 5);
	assert_int_equal(min_serving, 4);
	service_free(s);
}

/* max-surge 0, max-unavailable 1: in place, never more than 4 processes. */
static void test_in_place(void **state)
{
	struct service *s = service_new(0, 1);
	struct version *ov, *nv;
	int k;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = nv}),
	       "policy; attach v2; inst-conns v1");
	EXPECT(s, conns(ov, 2, 2, 2, 2),
	       "policy; unplace-inst v1/0; release v1/0; signal-inst v1/0 SIGTERM; ro-timer +3000");
	for (k = 0; k < 4; k++) {
		char want[256];

		snprintf(want, sizeof(want),
			 "stop-checks v1/%d; place-inst v2/%d; spawn-inst v2/%d; ready-checks v2; "
			 "ro-timer off",
			 k, k, k);
		EXPECT(s, ev(FE_EXIT, ov, k), want);
		start_spawned();
		if (k < 3) {
			EXPECT(s, ev(FE_READY, nv, k), "policy; inst-conns v1");
			snprintf(want, sizeof(want),
				 "policy; unplace-inst v1/%d; release v1/%d; signal-inst v1/%d "
				 "SIGTERM; ro-timer +3000",
				 k + 1, k + 1, k + 1);
			/* equal counts: the lowest index goes */
			EXPECT(s, conns(ov, -1, 0, 0, 0), want);
		}
	}
	EXPECT(
	    s, ev(FE_READY, nv, 3),
	    "stop-checks v2; vtimer v2 off; policy; ro-timer off; unplace v1; policy; forget v1");
	assert_int_equal(max_procs, 4);
	assert_int_equal(min_serving, 3);
	assert_null(s->slot[ov->vslot]);
	service_free(s);
}

/* A new instance not ready in the second batch: v1 back to 4 instances. */
static void test_ready_timeout_rolls_back(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 1, 0, 1, 1));
	step(s, ev(FE_EXIT, ov, 1));
	start_spawned();
	assert_true(nv->inst[1].alive);
	/* Before the deadline nothing; after it, the rollback. */
	now += 4999;
	EXPECT(s, ev(FE_VTIMER, nv, -1), "");
	now += 1;
	EXPECT(s, ev(FE_VTIMER, nv, -1),
	       "stop-checks v2/1; vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; "
	       "release v2; signal v2 SIGTERM; vtimer v2 +3000; spawn-inst v1/1; place-inst v1/1; "
	       "ready-checks v1");
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(ov->weight, WEIGHT_MAX);
	assert_int_equal(nv->weight, 0);
	assert_int_equal(s->active, ov->vslot);
	start_spawned();
	/* Ready: placed again (it was placed at its spawn, for the accept probe after READY=1). */
	EXPECT(s, ev(FE_READY, ov, 1), "place-inst v1/1; deploy-done rolled-back; ro-timer off");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(s->rollbacks[RB_HEALTH], 1);
	assert_int_equal(ov->nalive, 4);
	service_free(s);
}

/* A new instance that dies rolls back; an old one still draining restarts when it exited. */
static void test_crash_rolls_back(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 1, 1, 1, 0));
	assert_true(ov->inst[3].retiring);
	EXPECT(s, ev(FE_EXIT, nv, 0),
	       "stop-checks v2/0; vtimer v2 off; policy; stop-checks v2; unplace v2; policy; "
	       "forget v2");
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(ov->weight, WEIGHT_MAX);
	/* Instance 3 was told to exit: it starts again once it has. */
	EXPECT(s, ev(FE_EXIT, ov, 3),
	       "stop-checks v1/3; spawn-inst v1/3; place-inst v1/3; ready-checks v1; ro-timer off");
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 3), "place-inst v1/3; deploy-done rolled-back; ro-timer off");
	assert_int_equal(s->rollbacks[RB_EXIT], 1);
	service_free(s);
}

/* pause holds the next batch, promote continues, abort rolls back; weight is refused. */
static void test_pause_promote_abort(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.pause_ms = 2000;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 0), "policy; inst-conns v1; ro-timer +2000");
	EXPECT(s, conns(ov, 1, 0, 1, 1),
	       "policy; unplace-inst v1/1; release v1/1; signal-inst v1/1 SIGTERM");
	/* The pause between batches holds the next start. */
	EXPECT(s, ev(FE_EXIT, ov, 1), "stop-checks v1/1");
	now += 2000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1),
	       "place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	start_spawned();
	EXPECT(s, ((struct fsm_event){.type = FE_PAUSE, .c = C1}), "reply ok");
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_WEIGHT, .c = C1, .nweights = 1, .wnum = {2}, .wbp = {5000}}),
	       "reply err");
	EXPECT(s, ev(FE_READY, nv, 1), "policy; ro-timer +2000");
	assert_int_equal(nv->serve_n, 2);
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C1}),
	       "inst-conns v1; ro-timer off; reply ok");
	step(s, conns(ov, 1, -1, 1, 1));
	assert_true(ov->inst[0].retiring);
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C1}),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 "
	       "SIGTERM; vtimer v2 +3000; spawn-inst v1/1; place-inst v1/1; ready-checks v1; reply "
	       "ok");
	assert_int_equal(s->rollbacks[RB_OPERATOR], 1);
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 1), "place-inst v1/1");
	EXPECT(s, ev(FE_EXIT, ov, 0),
	       "stop-checks v1/0; spawn-inst v1/0; place-inst v1/0; ready-checks v1; ro-timer off");
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 0), "place-inst v1/0; deploy-done rolled-back; ro-timer off");
	assert_int_equal(ov->nalive, 4);
	assert_int_equal(s->ro.stage, RO_NONE);
	service_free(s);
}

/* A retired instance that does not exit: SIGKILL after drain-timeout (exit signal SIGTERM). */
static void test_retired_instance_bounded(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.exit_signal = SIGUSR1;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	EXPECT(s, conns(ov, 0, 1, 1, 1),
	       "policy; unplace-inst v1/0; release v1/0; signal-inst v1/0 SIGUSR1; ro-timer +3000");
	now += 3000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "signal-inst v1/0 SIGTERM; ro-timer +1000");
	now += 1000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "kill-inst v1/0; ro-timer off");
	service_free(s);
}

/*
 * drain-policy wait-then-signal: a retired instance leaves the map but keeps
 * its listeners and is not signalled; its own count (read every 100 ms)
 * reaching 0 sends the exit signal, SIGKILL to its tree after kill-after.
 */
static void test_wait_then_signal(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 0), "policy; inst-conns v1");
	/* Instance 1 has the fewest (2): out of the map, no release, no signal. */
	EXPECT(s, conns(ov, 9, 2, 5, 7), "policy; unplace-inst v1/1; ro-timer +100");
	assert_true(ov->inst[1].retiring);
	assert_int_equal(ov->inst[1].retire_step, -1);
	now += 100;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "inst-conns v1; ro-timer +2900");
	/* Still 1: look again in 100 ms. */
	EXPECT(s, conns(ov, 9, 1, 5, 7), "ro-timer +100");
	now += 100;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "inst-conns v1; ro-timer +2800");
	/* Its last connection closed: now its listeners go and it is told to exit. */
	EXPECT(s, conns(ov, 9, 0, 5, 7), "release v1/1; signal-inst v1/1 SIGTERM; ro-timer +1000");
	assert_int_equal(ov->inst[1].retire_step, 1);
	now += 1000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "kill-inst v1/1; ro-timer off");
	EXPECT(s, ev(FE_EXIT, ov, 1),
	       "stop-checks v1/1; place-inst v2/1; spawn-inst v2/1; ready-checks v2");
	assert_int_equal(max_procs, 5);
	assert_int_equal(min_serving, 4);
	service_free(s);
}

/*
 * drain-http: a retired instance's own connections are asked to close (its
 * version serves on through the others), from its retirement until the
 * wait is over; one that had none is not drained; a rollback ends the
 * drain of one that serves again; an exit ends it too.
 */
static void test_http_drain_per_instance(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	s->conf.drain_http = true;
	s->conf.steering = STEER_PER_CONNECTION; /* no re-steering (http-resteer) in the lines */
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	EXPECT(s, conns(ov, 9, 2, 5, 7),
	       "policy; unplace-inst v1/1; http-drain v1/1 begin; ro-timer +100");
	assert_true(ov->inst[1].http_draining);
	assert_false(ov->http_draining); /* the version is not drained: it serves */
	now += 100;
	step(s, ev(FE_RO_TIMER, NULL, -1));
	EXPECT(s, conns(ov, 9, 0, 5, 7),
	       "http-drain v1/1 end; release v1/1; signal-inst v1/1 SIGTERM; ro-timer +1000");
	assert_false(ov->inst[1].http_draining);
	EXPECT(s, ev(FE_EXIT, ov, 1),
	       "stop-checks v1/1; place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	start_spawned();
	step(s, ev(FE_READY, nv, 1));
	/* No connection: nothing to ask, signalled at once. */
	EXPECT(s, conns(ov, 9, -1, 0, 7),
	       "policy; unplace-inst v1/2; release v1/2; signal-inst v1/2 SIGTERM; ro-timer +3000");
	assert_false(ov->inst[2].http_draining);
	/* Instance 2 exits on its signal; instance 3 (7 connections) drains, then a rollback. */
	step(s, ev(FE_EXIT, ov, 2));
	start_spawned();
	step(s, ev(FE_READY, nv, 2));
	EXPECT(s, conns(ov, 9, -1, -1, 7),
	       "policy; unplace-inst v1/3; http-drain v1/3 begin; ro-timer +100");
	step(s, ((struct fsm_event){.type = FE_ABORT, .c = C1}));
	assert_false(ov->inst[3].retiring);
	assert_false(ov->inst[3].http_draining);
	assert_non_null(strstr(render(), "http-drain v1/3 cancel; place-inst v1/3"));
	service_free(s);
}

/* wait-then-signal: connections left at drain-timeout; 0 known at the pick: signalled at once. */
static void test_wait_then_signal_timeout(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	EXPECT(s, conns(ov, 3, 4, 5, 6), "policy; unplace-inst v1/0; ro-timer +100");
	now += 3000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1),
	       "release v1/0; signal-inst v1/0 SIGTERM; ro-timer +1000");
	/* The poll that was due answers late: nothing more for instance 0. */
	EXPECT(s, conns(ov, 0, 4, 5, 6), "");
	EXPECT(s, ev(FE_EXIT, ov, 0),
	       "stop-checks v1/0; place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	start_spawned();
	step(s, ev(FE_READY, nv, 1));
	EXPECT(s, conns(ov, -1, 0, 5, 6),
	       "policy; unplace-inst v1/1; release v1/1; signal-inst v1/1 SIGTERM; ro-timer +3000");
	service_free(s);
}

/* wait-then-signal: a rollback puts a retired instance that was never signalled back at once. */
static void test_wait_then_signal_rollback(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	EXPECT(s, conns(ov, 3, 4, 1, 6), "policy; unplace-inst v1/2; ro-timer +100");
	/* v2 drains as wait-then-signal says (watched); instance 2 is placed again. */
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C1}),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; vtimer v2 +3000; watch v2 on; "
	       "place-inst v1/2; ro-timer off; ro-timer off; reply ok");
	assert_false(ov->inst[2].retiring);
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(ov->weight, WEIGHT_MAX);
	service_free(s);
}

/*
 * A restarted old instance whose readiness is probed through its socket
 * (ready = tcp, http, and notify, whose READY=1 is followed by the accept
 * probe) is placed right after its spawn (its listeners are new then), so
 * the probe reaches it.
 */
static void test_restart_placed_for_probe(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.ready = READY_TCP;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 5, 1, 5, 5));
	EXPECT(s, ev(FE_EXIT, ov, 1),
	       "stop-checks v1/1; place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C1}),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 "
	       "SIGTERM; vtimer v2 +3000; spawn-inst v1/1; place-inst v1/1; ready-checks v1; reply "
	       "ok");
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 1), "place-inst v1/1; ro-timer off");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(ov->nready, 4);
	service_free(s);
}

/*
 * drain-delay: a retired instance is kept as it is (unsignalled, listeners
 * held) for drain-delay, then drains as drain-policy says; a rollback
 * within it places it back at once.
 */
static void test_drain_delay(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.drain_delay_ms = 2000;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	EXPECT(s, conns(ov, 3, 1, 5, 6), "policy; unplace-inst v1/1; ro-timer +2000");
	assert_int_equal(ov->inst[1].retire_step, -2);
	now += 2000;
	/* signal-then-wait: the exit signal when the delay is over, drain-timeout from then. */
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1),
	       "release v1/1; signal-inst v1/1 SIGTERM; ro-timer +3000");
	EXPECT(s, ev(FE_EXIT, ov, 1),
	       "stop-checks v1/1; place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	start_spawned();
	step(s, ev(FE_READY, nv, 1));
	EXPECT(s, conns(ov, 3, -1, 5, 6), "policy; unplace-inst v1/0; ro-timer +2000");
	now += 1000;
	/* Within the delay: the rollback gives instance 0 its place back, nothing restarts. */
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C1}),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 "
	       "SIGTERM; vtimer v2 +3000; place-inst v1/0; spawn-inst v1/1; place-inst v1/1; "
	       "ready-checks v1; ro-timer "
	       "off; reply ok");
	assert_false(ov->inst[0].retiring);
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 1), "place-inst v1/1; ro-timer off");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(ov->nready, 4);
	/* A count read late, after the rollout ended, changes nothing. */
	EXPECT(s, conns(ov, 0, 0, 0, 0), "");
	assert_false(ov->inst[2].retiring);
	service_free(s);
}

/* drain-delay, then wait-then-signal: its count is read once the delay is over. */
static void test_drain_delay_then_wait(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.drain_delay_ms = 2000;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	/* 0 connections, but the delay holds it anyway. */
	EXPECT(s, conns(ov, 3, 0, 5, 6), "policy; unplace-inst v1/1; ro-timer +2000");
	now += 2000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "ro-timer +100");
	now += 100;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "inst-conns v1; ro-timer +2900");
	EXPECT(s, conns(ov, 3, 0, 5, 6), "release v1/1; signal-inst v1/1 SIGTERM; ro-timer +1000");
	service_free(s);
}

/*
 * The last old instances follow drain-policy as the earlier leaving ones do
 * (max-surge = instances: three are left at the end): wait-then-signal
 * waits for the version's count at 0, then each is told to exit once; one
 * told already (instance 1, retired with no connection) is not told twice.
 */
static void test_finish_follows_drain_policy(void **state)
{
	struct service *s = service_new(4, 0);
	struct version *ov, *nv;
	int i;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 0), "policy; inst-conns v1");
	for (i = 1; i < 4; i++)
		step(s, ev(FE_READY, nv, i));
	/* Instance 1 leaves, signalled at once (0 connections); the rest at the version's 0. */
	EXPECT(s, conns(ov, 3, 0, 5, 5),
	       "policy; unplace-inst v1/1; release v1/1; signal-inst v1/1 SIGTERM; ro-timer +3000; "
	       "stop-checks v2; "
	       "vtimer v2 off; policy; deploy-done ok; ro-timer off; unplace v1; vtimer v1 +3000; "
	       "watch v1 on; vtimer v1 +100");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(nv->weight, WEIGHT_MAX);
	assert_int_equal(ov->phase, VP_DRAIN_WAIT);
	EXPECT(s, ((struct fsm_event){.type = FE_ZERO, .v = ov}),
	       "watch v1 off; release v1; signal-inst v1/0 SIGTERM; signal-inst v1/2 SIGTERM; "
	       "signal-inst v1/3 SIGTERM; vtimer v1 +1000");
	assert_int_equal(max_procs, 8);
	service_free(s);
}

/*
 * wait-then-signal at the rollout's end: each old instance left to its
 * version's drain is signalled at its own 0 (the version's count still
 * holds the others'), polled every 100 ms before drain-timeout; the
 * version's 0 signals the rest, none twice; drain-timeout stays the bound.
 */
static void test_left_instances_own_count(void **state)
{
	struct service *s = service_new(4, 0);
	struct version *ov, *nv;
	int i;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	for (i = 1; i < 4; i++)
		step(s, ev(FE_READY, nv, i));
	step(s, conns(ov, 3, 0, 5, 5));
	assert_int_equal(ov->phase, VP_DRAIN_WAIT);
	now += 100;
	EXPECT(s, ev(FE_VTIMER, ov, -1), "inst-conns v1");
	/* Instance 2's count is 0, not the version's: it goes now, alone. */
	EXPECT(s, conns(ov, 3, -1, 0, 5), "release v1/2; signal-inst v1/2 SIGTERM; vtimer v1 +100");
	assert_int_equal(ov->inst[2].retire_step, 3); /* RETIRE_ALONE_SIGNALLED */
	now += 100;
	step(s, ev(FE_VTIMER, ov, -1));
	EXPECT(s, conns(ov, 0, -1, 0, 0),
	       "release v1/0; signal-inst v1/0 SIGTERM; release v1/3; signal-inst v1/3 SIGTERM; "
	       "vtimer v1 +2800");
	/* The version's 0: every instance was told already, none twice. */
	EXPECT(s, ((struct fsm_event){.type = FE_ZERO, .v = ov}),
	       "watch v1 off; release v1; vtimer v1 +1000");
	service_free(s);
}

/* drain-timeout still bounds the wait of instances left to their version. */
static void test_left_instances_timeout(void **state)
{
	struct service *s = service_new(4, 0);
	struct version *ov, *nv;
	int i;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	for (i = 0; i < 4; i++)
		step(s, ev(FE_READY, nv, i));
	step(s, conns(ov, 3, 0, 5, 5));
	now += 2950;
	step(s, ev(FE_VTIMER, ov, -1));
	EXPECT(s, conns(ov, 3, -1, 5, 5), "vtimer v1 +50");
	now += 50;
	EXPECT(s, ev(FE_VTIMER, ov, -1),
	       "watch v1 off; release v1; signal-inst v1/0 SIGTERM; signal-inst v1/2 SIGTERM; "
	       "signal-inst v1/3 SIGTERM; vtimer v1 +1000");
	service_free(s);
}

/*
 * An agent restarted mid rolling rollout (kill -9; the state file does not
 * say which old instances left): it rolls back; an old instance that had
 * exited starts again and, probed through its socket (ready = tcp), is in
 * the map from its spawn on, not taken out again by the restart's cleanup
 * of gone instances' slots; one that was told to exit (its listener gone)
 * starts again once it exited; the others are placed again.
 */
static void test_restart_restores_old_slots(void **state)
{
	struct service *s = service_new(1, 0);
	struct version *ov, *nv;
	int i;

	(void)state;
	s->conf.ready = READY_TCP;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 5, 1, 5, 5));
	step(s, ev(FE_EXIT, ov, 1));
	start_spawned();
	/* What a restarted agent knows: processes by pid, no retirement, no counts. */
	for (i = 0; i < 4; i++) {
		ov->inst[i].retiring = false;
		ov->inst[i].retire_step = 0;
		ov->inst[i].retire_at = 0;
	}
	s->ro.counting = false;
	s->ro.poll_at = 0;
	/*
	 * Instance 3 had been told to exit (it closed its listener: the restored
	 * copy is gone); 0 and 2 serve, placed again (a drain-delay may have
	 * taken one out of the map without a signal).
	 */
	ov->inst[3].cookie[0] = 77;
	ov->inst[3].lfd[0] = -1;
	EXPECT(
	    s, ((struct fsm_event){.type = FE_RESTORED}),
	    "policy; place-inst v1/0; place-inst v1/2; vtimer v2 off; policy; stop-checks v2; "
	    "unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000; spawn-inst "
	    "v1/1; place-inst v1/1; ready-checks v1; ro-timer +3000");
	assert_int_equal(s->rollbacks[RB_RESTART], 1);
	assert_true(ov->inst[3].retiring);
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 1), "place-inst v1/1");
	/* Instance 3 exits: started again, then the rollback is over. */
	EXPECT(s, ev(FE_EXIT, ov, 3),
	       "stop-checks v1/3; spawn-inst v1/3; place-inst v1/3; ready-checks v1; ro-timer off");
	start_spawned();
	/* (the deploy's client went with the old agent: no answer) */
	EXPECT(s, ev(FE_READY, ov, 3), "place-inst v1/3; ro-timer off");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(ov->nready, 4);
	service_free(s);
}

/* roll_resolve: the bad input, and Kubernetes' rounding. */
static void test_resolve(void **state)
{
	char err[200];
	int su, un;

	(void)state;
	assert_int_equal(roll_resolve(4, (struct roll_amount){1, false},
				      (struct roll_amount){0, false}, &su, &un, err, sizeof(err)),
			 0);
	assert_int_equal(su, 1);
	assert_int_equal(un, 0);
	assert_int_equal(roll_resolve(4, (struct roll_amount){10, true},
				      (struct roll_amount){30, true}, &su, &un, err, sizeof(err)),
			 0);
	assert_int_equal(su, 1); /* 0.4 up */
	assert_int_equal(un, 1); /* 1.2 down */
	assert_int_equal(roll_resolve(4, (struct roll_amount){0, false},
				      (struct roll_amount){0, false}, &su, &un, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "both 0"));
	assert_int_equal(roll_resolve(1, (struct roll_amount){0, false},
				      (struct roll_amount){1, false}, &su, &un, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "would take the service down"));
	assert_int_equal(roll_resolve(4, (struct roll_amount){5, false},
				      (struct roll_amount){0, false}, &su, &un, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "above instances"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_surge_one),
	    cmocka_unit_test(test_in_place),
	    cmocka_unit_test(test_ready_timeout_rolls_back),
	    cmocka_unit_test(test_crash_rolls_back),
	    cmocka_unit_test(test_pause_promote_abort),
	    cmocka_unit_test(test_retired_instance_bounded),
	    cmocka_unit_test(test_wait_then_signal),
	    cmocka_unit_test(test_wait_then_signal_timeout),
	    cmocka_unit_test(test_wait_then_signal_rollback),
	    cmocka_unit_test(test_restart_placed_for_probe),
	    cmocka_unit_test(test_drain_delay),
	    cmocka_unit_test(test_drain_delay_then_wait),
	    cmocka_unit_test(test_finish_follows_drain_policy),
	    cmocka_unit_test(test_http_drain_per_instance),
	    cmocka_unit_test(test_left_instances_own_count),
	    cmocka_unit_test(test_left_instances_timeout),
	    cmocka_unit_test(test_restart_restores_old_slots),
	    cmocka_unit_test(test_resolve),
	};

	log_init("test_fsm_rolling", -1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
