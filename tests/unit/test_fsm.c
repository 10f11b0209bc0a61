/* SPDX-License-Identifier: MIT */
/*
 * The rollout state machine alone: no root, no BPF, no processes.  Each test
 * plays the executor's part by hand (it answers a spawn, a hook, a watch as
 * exec.c would) and asserts the exact actions of every step, in order, and
 * the invariants after it.
 */
#include "fsm_harness.h"

static char *hook_cmd[] = {"/bin/hook", NULL};

/* A service as the configuration gives it: 2 instances, health checks over HTTP, an error gate. */
static struct service *service_new(void)
{
	struct service *s = service_base();

	s->conf.instances = 2;
	canary_steps(s);
	s->conf.health = HEALTH_HTTP;
	s->conf.max_error_bp = 100;
	return s;
}

/* A first version, started and ready: v1 active with all traffic; its deploy's actions. */
static struct version *first_version_expect(struct service *s, const char *deploy)
{
	struct version *v = version_make(s);

	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v}), deploy);
	spawned(v);
	EXPECT(s, ((struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true}), "ready-checks v1");
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 0}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 1}),
	       "vtimer v1 off; ro-timer off");
	assert_int_equal(s->active, v->vslot);
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(v->weight, WEIGHT_MAX);
	return v;
}

static struct version *first_version(struct service *s)
{
	return first_version_expect(s, "place v1; policy; attach v1; spawn v1");
}

/* A new version of s started and ready up to its first step; returns it. */
static struct version *start_new(struct service *s, struct client *c, const char *at_ready)
{
	struct version *v = version_make(s);
	char want[128];

	snprintf(want, sizeof(want), "place v%d; policy; attach v%d; spawn v%d", v->num, v->num,
		 v->num);
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v, .c = c}), want);
	spawned(v);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 0}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 1}), at_ready);
	return v;
}

/* Every process of v exits: the last exit forgets v (its actions returned). */
static const char *all_exit(struct service *s, struct version *v)
{
	const char *r = "";
	int i;

	for (i = 0; i < v->ninst; i++)
		if (v->inst[i].alive)
			r = step(s, (struct fsm_event){
					.type = FE_EXIT, .v = v, .inst = i, .why = "exited"});
	return r;
}

/* ---- blue-green -------------------------------------------------------------------- */

static void test_bluegreen(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	v1 = first_version(s);
	v2 = start_new(s, C1,
		       "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; "
		       "deploy-done ok; ro-timer off; watch v1 off; release v1; signal v1 SIGTERM; "
		       "vtimer v1 +3000");
	assert_int_equal(s->active, v2->vslot);
	assert_int_equal(v2->weight, WEIGHT_MAX);
	assert_int_equal(v1->phase, VP_DRAINING);
	assert_int_equal(s->rollouts[RR_COMPLETED], 2);
	/* No hook ran: no descriptor is its (0 would be stdin, and the state file read /proc/0). */
	assert_int_equal(s->ro.hook_pidfd, -1);
	/* It overstays drain-timeout: SIGTERM was its signal, so kill-after, then SIGKILL. */
	now += 3000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}), "vtimer v1 +1000");
	assert_int_equal(v1->phase, VP_TERMINATING);
	now += 1000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}),
	       "signal-tree v1 SIGKILL; vtimer v1 off");
	assert_string_equal(all_exit(s, v1), "stop-checks v1/1; policy; forget v1");
	assert_null(s->slot[0]);
	assert_int_equal(s->nhist, 1);
	assert_int_equal(s->hist[0].num, 1);
	service_free(s);
}

/*
 * A pre-forking server: its workers outlive the process baton started.  The
 * version is stopped only when its tree is empty, its drain deadlines still
 * run after the master's exit, and SIGKILL at kill-after goes to the whole
 * tree.  With exit-signal-to = all the exit signal goes to the tree too.
 */
static void test_tree_outlives_instances(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	v1 = first_version(s);
	assert_true(v1->tree);
	v2 = start_new(s, C1,
		       "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; "
		       "deploy-done ok; ro-timer off; watch v1 off; release v1; signal v1 SIGTERM; "
		       "vtimer v1 +3000");
	trees_linger = true;
	/* The masters exit, their workers do not: v1 stays, draining, on its deadlines. */
	assert_string_equal(all_exit(s, v1), "stop-checks v1/1");
	assert_ptr_equal(s->slot[v1->vslot], v1);
	assert_int_equal(v1->phase, VP_DRAINING);
	assert_null(fsm_check(s, NULL));
	now += 3000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}), "vtimer v1 +1000");
	now += 1000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}),
	       "signal-tree v1 SIGKILL; vtimer v1 off");
	assert_int_equal(v1->phase, VP_KILLED);
	EXPECT(s, ((struct fsm_event){.type = FE_TREE_EMPTY, .v = v1}), "policy; forget v1");
	assert_null(s->slot[v1->vslot]);
	/* An active version whose tree empties while its instances run: nothing changes. */
	EXPECT(s, ((struct fsm_event){.type = FE_TREE_EMPTY, .v = v2}), "");
	assert_false(v2->tree);
	v2->tree = true;
	/* exit-signal-to = all: the exit signal and SIGTERM reach every process. */
	s->conf.exit_signal_all = true;
	start_new(s, C1,
		  "vtimer v3 off; policy; unplace v2; stop-checks v3; vtimer v3 off; "
		  "deploy-done ok; ro-timer off; watch v2 off; release v2; signal-tree v2 SIGTERM; "
		  "vtimer v2 +3000");
	/* The tree empties first, the master's exit then ends the version. */
	EXPECT(s, ((struct fsm_event){.type = FE_TREE_EMPTY, .v = v2}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 0, .why = "exited"}),
	       "stop-checks v2/0");
	EXPECT(s, ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 1, .why = "exited"}),
	       "stop-checks v2/1; policy; forget v2");
	trees_linger = false;
	service_free(s);
}

/* wait-then-signal: the signal waits for zero, which the kernel (or a look) reports. */
static void test_drain_wait_for_zero(void **state)
{
	struct service *s = service_new();
	struct version *v1;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	v1 = first_version(s);
	start_new(s, NULL,
		  "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer off; "
		  "vtimer v1 +3000; watch v1 on");
	assert_int_equal(v1->phase, VP_DRAIN_WAIT);
	now += 10;
	EXPECT(s, ((struct fsm_event){.type = FE_ZERO, .v = v1, .zero_ns = 5000, .now_ns = 9000}),
	       "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +1000");
	assert_int_equal(v1->zero_to_signal_us, 4);
	/* A late zero report changes nothing. */
	EXPECT(s, ((struct fsm_event){.type = FE_ZERO, .v = v1}), "");
	service_free(s);
}

/* drain-reset: connections left at drain-timeout are reset, then the signal. */
static void test_drain_reset_at_timeout(void **state)
{
	struct service *s = service_new();
	struct version *v1;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	s->conf.drain_reset = true;
	v1 = first_version(s);
	start_new(s, NULL,
		  "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer off; "
		  "vtimer v1 +3000; watch v1 on");
	now += 3000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}), "vtimer v1 off; reset v1");
	assert_int_equal(v1->phase, VP_DRAIN_WAIT);
	assert_true(v1->resetting);
	/* Its timer does nothing while the reset runs; the reset's end signals it. */
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_RESET_DONE, .v = v1}),
	       "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +1000");
	assert_int_equal(v1->phase, VP_TERMINATING);
	service_free(s);

	/* The last connection closes during the reset: signalled at once, the reset stops. */
	s = service_new();
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	s->conf.drain_reset = true;
	v1 = first_version(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = version_make(s)});
	spawned(s->slot[1]);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = s->slot[1], .ok = true});
	step(s, (struct fsm_event){.type = FE_READY, .v = s->slot[1], .inst = 0});
	step(s, (struct fsm_event){.type = FE_READY, .v = s->slot[1], .inst = 1});
	now += 3000;
	step(s, (struct fsm_event){.type = FE_VTIMER, .v = v1});
	EXPECT(s, ((struct fsm_event){.type = FE_ZERO, .v = v1, .zero_ns = 1, .now_ns = 1001}),
	       "reset-stop v1; watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +1000");
	EXPECT(s, ((struct fsm_event){.type = FE_RESET_DONE, .v = v1}), "");
	service_free(s);
}

/*
 * drain-http: it begins once the old version's sockets left the map, ends
 * (and is counted) before the exit signal with wait-then-signal, at
 * drain-timeout with signal-then-wait, and is cancelled (nothing stays on
 * the connections) when the version goes back into service.
 */
static void test_drain_http(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.drain = DRAIN_WAIT_THEN_SIGNAL;
	s->conf.drain_http = true;
	s->conf.steering = STEER_PER_CONNECTION; /* no re-steer: see test_drain_http_resteer */
	v1 = first_version(s);
	start_new(s, NULL,
		  "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer off; "
		  "http-drain v1 begin; vtimer v1 +3000; watch v1 on");
	assert_true(v1->http_draining);
	now += 10;
	EXPECT(s, ((struct fsm_event){.type = FE_ZERO, .v = v1, .zero_ns = 5000, .now_ns = 9000}),
	       "watch v1 off; http-drain v1 end; release v1; signal v1 SIGTERM; vtimer v1 +1000");
	assert_false(v1->http_draining);
	/* Its exit: nothing more to end. */
	assert_string_equal(all_exit(s, v1), "stop-checks v1/1; policy; forget v1");
	service_free(s);

	/* signal-then-wait: the rewrite has until drain-timeout. */
	s = service_new();
	s->conf.drain = DRAIN_SIGNAL_THEN_WAIT;
	s->conf.drain_http = true;
	s->conf.steering = STEER_PER_CONNECTION; /* no re-steer: see test_drain_http_resteer */
	v1 = first_version(s);
	start_new(
	    s, NULL,
	    "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer off; "
	    "http-drain v1 begin; watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	now += 3000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}),
	       "http-drain v1 end; vtimer v1 +1000");
	service_free(s);

	/* A rollback within drain-delay: cancelled, and the other one begins. */
	s = service_new();
	s->conf.drain_delay_ms = 10000;
	s->conf.drain_http = true;
	s->conf.steering = STEER_PER_CONNECTION; /* no re-steer: see test_drain_http_resteer */
	v1 = first_version(s);
	v2 = start_new(s, NULL,
		       "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer "
		       "off; http-drain v1 begin; vtimer v1 +10000");
	now += 5000;
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}),
	       "vtimer v1 off; watch v1 off; http-drain v1 cancel; place v1; policy; unplace v2; "
	       "http-drain v2 begin; vtimer v2 +10000; reply ok");
	assert_false(v1->http_draining);
	assert_true(v2->http_draining);
	service_free(s);

	/* Without drain-http nothing of it appears (the other tests' exact lists say so too). */
}

/*
 * drain-http with sticky steering: every policy change asks the connections
 * whose client now maps to another version to close (a canary's keep-alive
 * clients follow the weights); a reload that turns drain-http off stops it.
 */
static void test_drain_http_resteer(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.drain_http = true;
	v1 = first_version_expect(s, "place v1; policy; http-resteer on; attach v1; spawn v1");
	v2 = version_make(s);
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1}),
	       "place v2; policy; http-resteer on; attach v2; spawn v2");
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v2, .inst = 0}), "");
	EXPECT(
	    s, ((struct fsm_event){.type = FE_READY, .v = v2, .inst = 1}),
	    "vtimer v2 off; health-checks v2; policy; http-resteer on; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 1000);
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; http-resteer on; ro-timer +2000; progress");
	assert_int_equal(v1->weight, 5000);
	/* drain-http turned off (a reload): the next policy change ends the re-steer, once. */
	s->conf.drain_http = false;
	now += 2000;
	EXPECT(
	    s, ((struct fsm_event){.type = FE_RO_TIMER}),
	    "policy; http-resteer off; unplace v1; stop-checks v2; vtimer v2 off; deploy-done ok; "
	    "ro-timer off; watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	assert_false(s->resteering);
	service_free(s);
}

/* ---- canary ------------------------------------------------------------------------ */

static void test_canary_steps_and_bake(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 1000);
	assert_int_equal(v1->weight, 9000);
	assert_int_equal(s->ro.stage, RO_STEPPING);
	/* Bake ends: the next step. */
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	/* A timer that fires early (or twice) does nothing. */
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	now += 1999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; unplace v1; stop-checks v2; vtimer v2 off; deploy-done ok; ro-timer off; "
	       "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	assert_int_equal(v2->weight, WEIGHT_MAX);
	assert_int_equal(v1->weight, 0);
	assert_int_equal(s->previous, v1->vslot);
	service_free(s);
}

static void test_promote_pause_weight_abort(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.bake_ms = 0; /* every step waits for promote */
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer off; progress");
	assert_string_equal(text_of(FA_PROGRESS),
			    "web: v2 at 10.00% (step 1 of 3); waiting for: baton promote web");
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2}),
	       "policy; ro-timer off; progress; reply ok");
	assert_int_equal(v2->weight, 5000);
	EXPECT(s, ((struct fsm_event){.type = FE_PAUSE, .c = C2}), "ro-timer off; reply ok");
	assert_true(s->ro.paused);
	EXPECT(s, ((struct fsm_event){.type = FE_PAUSE, .c = C2}), "reply err");
	/* Weights by hand: one version given, the other gets the rest. */
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_WEIGHT, .c = C2, .nweights = 1, .wnum = {2}, .wbp = {2500}}),
	       "policy; ro-timer off; reply ok");
	assert_int_equal(v2->weight, 2500);
	assert_int_equal(v1->weight, 7500);
	assert_true(s->ro.manual);
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_WEIGHT, .c = C2, .nweights = 1, .wnum = {7}, .wbp = {2500}}),
	       "reply err");
	assert_string_equal(text_of(FA_REPLY), "weight: v7 does not take part in the rollout "
					       "(v1 -> v2); only those two take weights");
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_WEIGHT, .c = C2, .nweights = 2, .wnum = {1, 2}, .wbp = {5000, 2500}}),
	       "reply err");
	/* Promote goes on from the next step above the weight set by hand. */
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2}),
	       "policy; ro-timer off; progress; reply ok");
	assert_int_equal(v2->weight, 5000);
	assert_false(s->ro.paused);
	/* Abort: the old version has everything again, the new one drains. */
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C2}),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000; reply ok");
	assert_int_equal(v1->weight, WEIGHT_MAX);
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(s->rollbacks[RB_OPERATOR], 1);
	assert_int_equal(s->last_rollback.num, 2);
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C2}), "reply err");
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2}), "reply err");
	assert_string_equal(text_of(FA_REPLY), "web: no rollout in progress (baton deploy web "
					       "--strategy canary -- CMD starts one)");
	service_free(s);
}

/* ---- rollback --------------------------------------------------------------------- */

static void test_rollback_within_drain_delay(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.drain_delay_ms = 10000;
	v1 = first_version(s);
	v2 = start_new(s, NULL,
		       "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer "
		       "off; vtimer v1 +10000");
	assert_int_equal(v1->phase, VP_DRAIN_DELAY);
	now += 5000;
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}),
	       "vtimer v1 off; watch v1 off; place v1; policy; unplace v2; vtimer v2 +10000; "
	       "reply ok");
	assert_string_equal(text_of(FA_REPLY), "web: v1 active again, draining v2");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(s->previous, v2->vslot);
	assert_int_equal(v1->weight, WEIGHT_MAX);
	assert_int_equal(v2->phase, VP_DRAIN_DELAY);
	/*
	 * Once signalled, a version cannot take traffic back at once; this test
	 * keeps no rollback window (exec.c records versions), so nothing can
	 * start it again either (tests/unit/test_history.c does that).
	 */
	now += 10000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v2}),
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}), "reply err");
	service_free(s);
}

/* The version that took over dies whole while the one it replaced still waits. */
static void test_new_version_dies_after_switch_rolls_back(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.drain_delay_ms = 10000;
	v1 = first_version(s);
	v2 = start_new(s, NULL,
		       "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; ro-timer "
		       "off; vtimer v1 +10000");
	step(s,
	     (struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 0, .why = "killed by SIGKILL"});
	assert_string_equal(render(), "stop-checks v2/0; unplace-inst v2/0; release v2/0");
	/* The last one: policy back to v1 before v2's sockets leave the map. */
	EXPECT(
	    s,
	    ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 1, .why = "killed by SIGKILL"}),
	    "stop-checks v2/1; vtimer v1 off; watch v1 off; place v1; policy; unplace v2; "
	    "policy; forget v2");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(s->rollbacks[RB_EXIT], 1);
	assert_null(s->slot[v2->vslot == 0 ? 0 : 1]);
	service_free(s);
}

/* ---- a crash of the new version at each phase ---------------------------------------- */

static void test_crash_while_starting(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	v1 = first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	EXPECT(
	    s, ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 1, .why = "exited 1"}),
	    "stop-checks v2/1; deploy-done failed; ro-timer off; unplace v2; policy; release v2; "
	    "signal v2 SIGTERM; vtimer v2 +1000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "instance 1 (pid 201) exited 1 before it was ready");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(v2->phase, VP_ABORTING);
	assert_string_equal(all_exit(s, v2), "stop-checks v2/0; policy; forget v2");
	assert_int_equal(s->rollouts[RR_FAILED], 1);
	service_free(s);
}

static void test_spawn_failure_and_ready_timeout(void **state)
{
	struct service *s = service_new();
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	/* What failed half-way may have left processes: their tree's end ends the version. */
	EXPECT(
	    s,
	    ((struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = false, .why = "no such file"}),
	    "deploy-done failed; ro-timer off; unplace v2; policy; release v2; signal v2 SIGTERM; "
	    "vtimer v2 +1000");
	EXPECT(s, ((struct fsm_event){.type = FE_TREE_EMPTY, .v = v2}), "policy; forget v2");
	/* Not ready by ready-timeout: the tick before it does nothing, the one after fails. */
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	step(s, (struct fsm_event){.type = FE_READY, .v = v2, .inst = 0});
	now += 4999;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v2}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v2}),
	       "stop-checks v3; deploy-done failed; ro-timer off; unplace v3; policy; release v3; "
	       "signal v3 SIGTERM; vtimer v3 +1000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "1 of 2 instance(s) not ready within ready-timeout 5000 ms");
	service_free(s);
}

static void test_crash_while_stepping(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(
	    s,
	    ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 0, .why = "killed by SIGSEGV"}),
	    "stop-checks v2/0; policy; deploy-done rolled-back; ro-timer off; stop-checks v2; "
	    "unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000; "
	    "unplace-inst v2/0; release v2/0");
	assert_int_equal(v1->weight, WEIGHT_MAX);
	assert_int_equal(v2->weight, 0);
	/* Policy before unplace: the rolled-back policy is written first. */
	assert_int_equal(out.a[1].type, FA_POLICY);
	assert_int_equal(s->last_rollback.num, 2);
	service_free(s);
}

/* The gates: health-threshold failed checks in a row, or bad error samples in a row, roll back. */
static void test_health_and_error_gates(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	/* Two failures, a pass (the run starts again), three failures: rolled back. */
	EXPECT(s, ((struct fsm_event){.type = FE_CHECK, .v = v2, .inst = 0, .why = "503"}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_CHECK, .v = v2, .inst = 0, .why = "503"}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_CHECK, .v = v2, .inst = 0, .ok = true}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_CHECK, .v = v2, .inst = 0, .why = "503"}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_CHECK, .v = v2, .inst = 0, .why = "503"}), "");
	assert_int_equal(v2->inst[0].chk.failures, 4);
	assert_int_equal(v2->inst[0].chk.passes, 1);
	EXPECT(
	    s, ((struct fsm_event){.type = FE_CHECK, .v = v2, .inst = 0, .why = "503"}),
	    "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; watch v2 "
	    "off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(
	    text_of(FA_DEPLOY_DONE),
	    "rolled back to v1: web v2 instance 0 (pid 200) failed 3 health checks in "
	    "a row (last: 503)");
	assert_int_equal(s->rollbacks[RB_HEALTH], 1);
	assert_int_equal(v1->weight, WEIGHT_MAX);
	service_free(s);

	/* max-error-rate 1%: 2 of 100 failed is bad, 1 of 100 is not (and resets the run). */
	s = service_new();
	s->conf.strategy = STRATEGY_CANARY;
	first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(s,
	       ((struct fsm_event){.type = FE_ERROR_SAMPLE,
				   .v = v2,
				   .sample_clients = 100,
				   .sample_failed = 2,
				   .why = "sample"}),
	       "");
	EXPECT(s,
	       ((struct fsm_event){.type = FE_ERROR_SAMPLE,
				   .v = v2,
				   .sample_clients = 100,
				   .sample_failed = 1,
				   .why = "sample"}),
	       "");
	assert_int_equal(v2->bad_intervals, 0);
	EXPECT(s,
	       ((struct fsm_event){.type = FE_ERROR_SAMPLE,
				   .v = v2,
				   .sample_clients = 100,
				   .sample_failed = 2,
				   .why = "sample"}),
	       "");
	EXPECT(s,
	       ((struct fsm_event){.type = FE_ERROR_SAMPLE,
				   .v = v2,
				   .sample_clients = 100,
				   .sample_failed = 50,
				   .why = "sample"}),
	       "");
	EXPECT(
	    s,
	    ((struct fsm_event){.type = FE_ERROR_SAMPLE,
				.v = v2,
				.sample_clients = 0,
				.sample_failed = 3,
				.why = "sample"}),
	    "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; watch v2 "
	    "off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->rollbacks[RB_ERRORS], 1);
	service_free(s);
}

/* One latency sample of v: n responses with p99_us; conclusive at min-samples (100 here). */
static struct fsm_event lat_ev(struct version *v, unsigned long long n, unsigned long long p99_us)
{
	return (struct fsm_event){.type = FE_LAT_SAMPLE,
				  .v = v,
				  .lat = {.n = n, .p99_us = p99_us, .window_ms = 1000},
				  .why = "sample"};
}

/*
 * Latency gates: over max-p99 health-threshold times in a row rolls back
 * with the numbers; a bake that ends without a conclusive sample holds the
 * step until one passes; inconclusive until analysis-timeout fails.
 */
static void test_latency_gates(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.max_p99_ms = 500;
	s->conf.min_samples = 100;
	s->conf.analysis_timeout_ms = 10000;
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	/* Over, within (the run starts again), then over three times: rolled back. */
	EXPECT(s, lat_ev(v2, 1204, 812000), "");
	EXPECT(s, lat_ev(v2, 1204, 100000), "");
	assert_int_equal(s->ro.gate_bad, 0);
	EXPECT(s, lat_ev(v2, 1204, 812000), "");
	/* An inconclusive sample (too few) neither counts nor resets the run. */
	EXPECT(s, lat_ev(v2, 40, 10), "");
	EXPECT(s, lat_ev(v2, 1204, 812000), "");
	EXPECT(
	    s, lat_ev(v2, 1204, 812000),
	    "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; watch v2 "
	    "off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(
	    text_of(FA_DEPLOY_DONE),
	    "rolled back to v1: web v2 p99 812 ms > max-p99 500 ms over 1204 requests");
	assert_int_equal(s->rollbacks[RB_LATENCY], 1);
	assert_int_equal(v1->weight, WEIGHT_MAX);
	service_free(s);

	/* The bake ends before a verdict: held; the first passing sample promotes. */
	s = service_new();
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.max_p99_ms = 500;
	s->conf.min_samples = 100;
	s->conf.analysis_timeout_ms = 10000;
	first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(s, lat_ev(v2, 40, 1000), "");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "progress");
	assert_int_equal(v2->weight, 1000);
	assert_true(s->ro.gate_holding);
	EXPECT(s, lat_ev(v2, 150, 20000), "policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	/* A passing verdict before the bake ends lets that step go on time. */
	EXPECT(s, lat_ev(v2, 150, 20000), "");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; unplace v1; stop-checks v2; vtimer v2 off; deploy-done ok; ro-timer off; "
	       "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	service_free(s);

	/* Too little traffic: inconclusive until analysis-timeout, then failed. */
	s = service_new();
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.max_p99_ms = 500;
	s->conf.min_samples = 100;
	s->conf.analysis_timeout_ms = 10000;
	first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	now += 9999;
	EXPECT(s, lat_ev(v2, 12, 1000), "");
	now += 2;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "progress");
	EXPECT(
	    s, lat_ev(v2, 13, 1000),
	    "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; watch v2 "
	    "off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: web v2 inconclusive: 13 requests in 1.0 s, fewer "
			    "than min-samples 100 within analysis-timeout 10000 ms");
	service_free(s);

	/* Gates off: samples change nothing. */
	s = service_new();
	s->conf.strategy = STRATEGY_CANARY;
	first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(s, lat_ev(v2, 1204, 9000000), "");
	EXPECT(s, lat_ev(v2, 1204, 9000000), "");
	EXPECT(s, lat_ev(v2, 1204, 9000000), "");
	assert_int_equal(v2->weight, 1000);
	service_free(s);
}

/* The old version is dead when the canary fails: nothing to give back, nothing leaks. */
static void test_canary_rollback_impossible(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.bake_ms = 0;
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer off; progress");
	step(s, (struct fsm_event){.type = FE_EXIT, .v = v1, .inst = 0, .why = "killed"});
	step(s, (struct fsm_event){.type = FE_EXIT, .v = v1, .inst = 1, .why = "killed"});
	assert_int_equal(v1->nalive, 0);
	EXPECT(s, ((struct fsm_event){.type = FE_ABORT, .c = C2}),
	       "stop-checks v2; vtimer v2 off; policy; deploy-done failed; ro-timer off; "
	       "unplace v1; policy; forget v1; reply ok");
	assert_int_equal(v2->weight, WEIGHT_MAX);
	assert_int_equal(s->active, v2->vslot);
	assert_null(s->slot[0]);
	service_free(s);
}

/* ---- hooks ---------------------------------------------------------------------------- */

static void test_hooks_and_failures(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.hook[HOOK_BEFORE_START][0] = hook_cmd[0];
	s->conf.hook[HOOK_AFTER_SWITCH][0] = hook_cmd[0];
	s->conf.hook[HOOK_AFTER_DRAIN][0] = hook_cmd[0];
	v1 = first_version(s); /* a first version runs no before-start hook */
	v2 = version_make(s);
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1}),
	       "run-hook before-start; ro-timer +4000; progress");
	assert_int_equal(s->ro.stage, RO_BEFORE_START);
	/* A hook that fails: nothing started. */
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = false, .why = "exit status 3"}),
	       "ro-timer off; deploy-done failed; ro-timer off; policy; release v2; policy; forget "
	       "v2");
	assert_string_equal(text_of(FA_DEPLOY_DONE), "before-start hook failed: exit status 3");
	assert_int_equal(s->active, v1->vslot);
	/* A hook that never ends: killed at hook-timeout. */
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	now += 3999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "kill-hook; ro-timer off; deploy-done failed; ro-timer off; policy; release v3; "
	       "policy; forget v3");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "before-start hook failed: did not finish within hook-timeout 4000 ms "
			    "(killed)");
	/* A late exit of the killed hook is not heard. */
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = true}), "");
	/* All three pass: after-switch keeps v1 placed-out but unsignalled, after-drain ends it. */
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = true}),
	       "ro-timer off; place v4; policy; attach v4; spawn v4");
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	step(s, (struct fsm_event){.type = FE_READY, .v = v2, .inst = 0});
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v2, .inst = 1}),
	       "vtimer v4 off; health-checks v4; policy; unplace v1; run-hook after-switch; "
	       "ro-timer +4000; progress");
	assert_int_equal(s->ro.stage, RO_AFTER_SWITCH);
	assert_int_equal(v1->phase, VP_DRAIN_DELAY);
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = true}),
	       "ro-timer off; stop-checks v4; vtimer v4 off; progress; watch v1 off; release v1; "
	       "signal v1 SIGTERM; vtimer v1 +3000");
	assert_int_equal(s->ro.stage, RO_DRAIN_OLD);
	EXPECT(s, ((struct fsm_event){.type = FE_EXIT, .v = v1, .inst = 0}), "stop-checks v1/0");
	EXPECT(
	    s, ((struct fsm_event){.type = FE_EXIT, .v = v1, .inst = 1}),
	    "stop-checks v1/1; policy; forget v1; run-hook after-drain; ro-timer +4000; progress");
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = true}),
	       "ro-timer off; deploy-done ok; ro-timer off");
	assert_int_equal(s->ro.stage, RO_NONE);
	service_free(s);
}

/* The new version crashes while the after-switch hook runs, then while the old one drains. */
static void test_crash_after_switch_and_while_old_drains(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.hook[HOOK_AFTER_SWITCH][0] = hook_cmd[0];
	v1 = first_version(s);
	v2 =
	    start_new(s, C1,
		      "vtimer v2 off; health-checks v2; policy; unplace v1; run-hook after-switch; "
		      "ro-timer +4000; progress");
	/* During after-switch: the hook is killed, the kept old version takes everything back. */
	EXPECT(
	    s,
	    ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 0, .why = "killed by SIGSEGV"}),
	    "stop-checks v2/0; kill-hook; vtimer v1 off; watch v1 off; place v1; policy; "
	    "deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; watch v2 off; "
	    "release v2; signal v2 SIGTERM; vtimer v2 +3000; unplace-inst v2/0; release v2/0");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(s->rollbacks[RB_EXIT], 1);
	service_free(s);

	/* While the old version drains for after-drain: nothing can go back; the rollout fails. */
	s = service_new();
	s->conf.hook[HOOK_AFTER_DRAIN][0] = hook_cmd[0];
	v1 = first_version(s);
	v2 =
	    start_new(s, C1,
		      "vtimer v2 off; policy; unplace v1; stop-checks v2; vtimer v2 off; progress; "
		      "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	assert_int_equal(s->ro.stage, RO_DRAIN_OLD);
	EXPECT(
	    s,
	    ((struct fsm_event){.type = FE_EXIT, .v = v2, .inst = 0, .why = "killed by SIGSEGV"}),
	    "stop-checks v2/0; unplace-inst v2/0; release v2/0");
	assert_int_equal(s->ro.stage, RO_DRAIN_OLD);
	assert_int_equal(s->active, v2->vslot);
	service_free(s);
}

/* A failed after-switch hook rolls back to the old version, which was kept for it. */
static void test_after_switch_hook_fails(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.hook[HOOK_AFTER_SWITCH][0] = hook_cmd[0];
	v1 = first_version(s);
	v2 =
	    start_new(s, C1,
		      "vtimer v2 off; health-checks v2; policy; unplace v1; run-hook after-switch; "
		      "ro-timer +4000; progress");
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = false, .why = "exit status 1"}),
	       "ro-timer off; vtimer v1 off; watch v1 off; place v1; policy; deploy-done "
	       "rolled-back; ro-timer off; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(v1->phase, VP_ACTIVE);
	assert_int_equal(v2->phase, VP_DRAINING);
	assert_int_equal(s->rollbacks[RB_HOOK], 1);
	service_free(s);
}

/* ---- restart ------------------------------------------------------------------------ */

/* A state as a previous agent left it: v1 active (or draining) and v2 in the stage given. */
static struct service *restored_state(enum ro_stage stage, struct version **v1p,
				      struct version **v2p)
{
	struct service *s = service_new();
	struct version *v1 = version_make(s), *v2 = version_make(s);

	spawned(v1);
	spawned(v2);
	v1->nready = v2->nready = 2;
	v1->inst[0].ready = v1->inst[1].ready = v2->inst[0].ready = v2->inst[1].ready = true;
	v1->placed = v2->placed = true;
	s->ro.stage = stage;
	s->ro.newv = v2->vslot;
	s->ro.oldv = v1->vslot;
	s->ro.new_num = 2;
	s->ro.old_num = 1;
	s->ro.nsteps = 2;
	s->ro.steps[0] = 1000;
	s->ro.steps[1] = WEIGHT_MAX;
	switch (stage) {
	case RO_STARTING:
		v1->phase = VP_ACTIVE;
		v1->weight = WEIGHT_MAX;
		v2->phase = VP_STARTING;
		s->active = v1->vslot;
		s->starting = v2->vslot;
		break;
	case RO_STEPPING:
		v1->phase = v2->phase = VP_ACTIVE;
		v1->weight = 9000;
		v2->weight = 1000;
		s->active = v1->vslot;
		s->ro.bake_ms = 2000;
		s->ro.bake_end = now + 500;
		break;
	default: /* after the switch */
		v2->phase = VP_ACTIVE;
		v2->weight = WEIGHT_MAX;
		v1->phase = VP_DRAIN_DELAY;
		v1->placed = false;
		v1->t_switch = now - 100;
		s->active = v2->vslot;
		s->previous = v1->vslot;
		break;
	}
	*v1p = v1;
	*v2p = v2;
	return s;
}

static void test_restore_each_stage(void **state)
{
	struct version *v1, *v2;
	struct service *s;

	(void)state;
	/* Starting: readiness reports were lost with the agent; start over. */
	s = restored_state(RO_STARTING, &v1, &v2);
	EXPECT(s, ((struct fsm_event){.type = FE_RESTORED}),
	       "policy; ro-timer off; unplace v2; policy; release v2; signal v2 SIGTERM; "
	       "vtimer v2 +1000");
	assert_int_equal(s->rollouts[RR_FAILED], 1);
	assert_int_equal(v2->phase, VP_ABORTING);
	service_free(s);
	/* Stepping: it goes on, bake and checks as they were. */
	s = restored_state(RO_STEPPING, &v1, &v2);
	EXPECT(s, ((struct fsm_event){.type = FE_RESTORED}),
	       "policy; health-checks v2; ro-timer +500");
	assert_int_equal(s->ro.stage, RO_STEPPING);
	service_free(s);
	/* Stepping, but an instance of the new version died while no agent ran: roll back. */
	s = restored_state(RO_STEPPING, &v1, &v2);
	v2->inst[1].alive = false;
	v2->nalive = 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RESTORED}),
	       "policy; health-checks v2; ro-timer +500; policy; ro-timer off; stop-checks v2; "
	       "unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->rollbacks[RB_EXIT], 1);
	service_free(s);
	/* After-switch: the hook's result is unknown: roll back to the kept old version. */
	s = restored_state(RO_AFTER_SWITCH, &v1, &v2);
	EXPECT(
	    s, ((struct fsm_event){.type = FE_RESTORED}),
	    "policy; vtimer v1 off; watch v1 off; place v1; policy; ro-timer off; stop-checks v2; "
	    "unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->active, v1->vslot);
	service_free(s);
	/* Draining the old one for after-drain: its drain goes on. */
	s = restored_state(RO_DRAIN_OLD, &v1, &v2);
	s->conf.hook[HOOK_AFTER_DRAIN][0] = hook_cmd[0];
	EXPECT(s, ((struct fsm_event){.type = FE_RESTORED}), "policy; vtimer v1 -100");
	service_free(s);
	/* The old one exited while no agent ran: after-drain runs now. */
	s = restored_state(RO_DRAIN_OLD, &v1, &v2);
	s->conf.hook[HOOK_AFTER_DRAIN][0] = hook_cmd[0];
	v1->inst[0].alive = v1->inst[1].alive = false;
	v1->nalive = 0;
	EXPECT(s, ((struct fsm_event){.type = FE_RESTORED}),
	       "policy; policy; forget v1; run-hook after-drain; ro-timer +4000");
	service_free(s);
	/* After-drain: its result is unknown; the rollout ends as failed, nothing rolls back. */
	s = restored_state(RO_AFTER_DRAIN, &v1, &v2);
	s->ro.oldv = -1;
	s->slot[v1->vslot] = NULL; /* gone before the restart (freed with s) */
	s->previous = -1;
	EXPECT(s, ((struct fsm_event){.type = FE_RESTORED}), "policy; ro-timer off");
	assert_int_equal(s->active, v2->vslot);
	service_free(s);
}

/* ---- reload --------------------------------------------------------------------------- */

static void test_remove_mid_rollout(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.strategy = STRATEGY_CANARY;
	v1 = first_version(s);
	v2 = start_new(s, C1, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(s, ((struct fsm_event){.type = FE_REMOVE}),
	       "deploy-done failed; ro-timer off; stop-checks v1; policy; unplace v1; "
	       "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000; stop-checks v2; "
	       "policy; unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "the service was removed from the configuration");
	assert_true(s->removed);
	assert_int_equal(s->active, -1);
	all_exit(s, v1);
	assert_false(s->gone);
	assert_string_equal(all_exit(s, v2), "stop-checks v2/1; policy; forget v2; service-gone");
	assert_true(s->gone);
	service_free(s);
}

/* Events about a version the service no longer has change nothing. */
static void test_stale_events(void **state)
{
	struct service *s = service_new(), *other = service_new();
	struct version *v1, *stranger;

	(void)state;
	v1 = first_version(s);
	stranger = version_make(other);
	EXPECT(s, ((struct fsm_event){.type = FE_EXIT, .v = stranger, .inst = 0}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v1, .inst = 0}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = false}), "");
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	service_free(s);
	service_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bluegreen),
	    cmocka_unit_test(test_tree_outlives_instances),
	    cmocka_unit_test(test_drain_wait_for_zero),
	    cmocka_unit_test(test_drain_reset_at_timeout),
	    cmocka_unit_test(test_drain_http),
	    cmocka_unit_test(test_drain_http_resteer),
	    cmocka_unit_test(test_canary_steps_and_bake),
	    cmocka_unit_test(test_promote_pause_weight_abort),
	    cmocka_unit_test(test_rollback_within_drain_delay),
	    cmocka_unit_test(test_new_version_dies_after_switch_rolls_back),
	    cmocka_unit_test(test_crash_while_starting),
	    cmocka_unit_test(test_spawn_failure_and_ready_timeout),
	    cmocka_unit_test(test_crash_while_stepping),
	    cmocka_unit_test(test_health_and_error_gates),
	    cmocka_unit_test(test_latency_gates),
	    cmocka_unit_test(test_canary_rollback_impossible),
	    cmocka_unit_test(test_hooks_and_failures),
	    cmocka_unit_test(test_after_switch_hook_fails),
	    cmocka_unit_test(test_crash_after_switch_and_while_old_drains),
	    cmocka_unit_test(test_restore_each_stage),
	    cmocka_unit_test(test_remove_mid_rollout),
	    cmocka_unit_test(test_stale_events),
	};

	log_init("test_fsm", -1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
