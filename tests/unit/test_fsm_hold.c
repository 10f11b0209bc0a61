/* SPDX-License-Identifier: MIT */
/*
 * The state machine's holds (fsm_confirm.c, fsm_gate.c), alone as
 * test_fsm.c does it: confirmation webhooks, approvals and Prometheus
 * gates, and the latency rank test against a baseline (fsm_gates.c:
 * max-p99-ratio, gate-mode = dry-run), each step's exact actions.
 */
#include "fsm_hold_harness.h"

static void test_confirm_rollout_and_promotion(void **state)
{
	struct service *s = service_new((1u << WH_CONFIRM_ROLLOUT) | (1u << WH_CONFIRM_PROMOTION));
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	/* Nothing starts before the confirm-rollout webhook's 2xx. */
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1}),
	       "confirm confirm-rollout; ro-timer +7000; progress");
	assert_int_equal(s->ro.stage, RO_BEFORE_START);
	/* A 2xx of another confirmation, or a failure, changes nothing. */
	EXPECT(s, ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_STEP, .ok = true}),
	       "");
	EXPECT(s,
	       ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_ROLLOUT, .ok = false}),
	       "");
	EXPECT(s,
	       ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_ROLLOUT, .ok = true}),
	       "confirm stop; ro-timer off; place v2; policy; attach v2; spawn v2");
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +2000; progress");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	/* The bake of the last step below 100% ends: held for confirm-promotion. */
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "confirm confirm-promotion; ro-timer +7000; progress");
	assert_int_equal(v2->weight, 5000);
	/* promote while held: still held, and said so. */
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2}), "reply ok");
	assert_string_equal(text_of(FA_REPLY), "waiting for the confirm-promotion webhook's 2xx");
	now += 1000;
	EXPECT(s,
	       ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_PROMOTION, .ok = true}),
	       "confirm stop; ro-timer off; policy; unplace v1; stop-checks v2; vtimer v2 off; "
	       "deploy-done ok; ro-timer off; watch v1 off; release v1; signal v1 SIGTERM; "
	       "vtimer v1 +3000");
	assert_int_equal(v2->weight, WEIGHT_MAX);
	service_free(s);
}

static void test_confirm_timeout_rolls_back(void **state)
{
	struct service *s = service_new(1u << WH_CONFIRM_STEP);
	struct version *v1, *v2;

	(void)state;
	v1 = first_version(s);
	v2 = version_make(s);
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1}),
	       "place v2; policy; attach v2; spawn v2");
	/* The first step needs no confirm-step; the second does. */
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +2000; progress");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "confirm confirm-step; ro-timer +7000; progress");
	/* Early: nothing. */
	now += 6999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; confirm stop; deploy-done rolled-back; ro-timer off; stop-checks v2; "
	       "unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: the confirm-step webhook did not answer 2xx within "
			    "confirm-timeout 7.0 s");
	assert_int_equal(v1->weight, WEIGHT_MAX);
	assert_int_equal(s->ro.confirm, 0);
	service_free(s);
}

static void test_pause_ends_the_wait(void **state)
{
	struct service *s = service_new(1u << WH_CONFIRM_STEP);
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +2000; progress");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "confirm confirm-step; ro-timer +7000; progress");
	EXPECT(s, ((struct fsm_event){.type = FE_PAUSE, .c = C2}),
	       "confirm stop; ro-timer off; reply ok");
	/* A late 2xx no longer moves anything; promote asks again. */
	EXPECT(s, ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_STEP, .ok = true}),
	       "");
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2}),
	       "confirm confirm-step; ro-timer +7000; progress; reply ok");
	EXPECT(s, ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_STEP, .ok = true}),
	       "confirm stop; ro-timer off; policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	service_free(s);
}

static void test_approval(void **state)
{
	struct service *s = service_new(0);
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){
		    .type = FE_DEPLOY,
		    .v = v2,
		    .c = C1,
		    .have_opts = true,
		    .opts = {.strategy = STRATEGY_CANARY, .bake_ms = 2000, .approve = true}});
	/* No bake: each step waits for promote, until approval-timeout. */
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +9000; progress");
	now += 5000;
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2}),
	       "policy; ro-timer +9000; progress; reply ok");
	assert_int_equal(v2->weight, 5000);
	now += 8999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: v2 was not approved within approval-timeout 9.0 s "
			    "(nobody ran baton promote web)");
	service_free(s);
}

/* exec.c's part: a gate's verdict on v. */
static const char *gate(struct service *s, struct version *v, int verdict, double value)
{
	return step(s, (struct fsm_event){.type = FE_GATE,
					  .v = v,
					  .inst = 0,
					  .verdict = verdict,
					  .value = value,
					  .why = verdict == GV_FAIL ? "errors = 0.1, fails < 0.05"
						 : verdict == GV_PASS
						     ? "errors = 0, passes < 0.05"
						     : "errors: no data (inconclusive)"});
}

static struct service *gated(void)
{
	struct service *s = service_new(0);

	s->conf.ngates = 1;
	snprintf(s->conf.gate[0].name, sizeof(s->conf.gate[0].name), "errors");
	s->conf.gate[0].op = GOP_LT;
	s->conf.gate[0].threshold = 0.05;
	s->conf.gate_timeout_ms = 5000;
	return s;
}

static void test_gate_fails_in_a_row(void **state)
{
	struct service *s = gated();
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	/* Gates alone start the rollout's checks. */
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	assert_string_equal(gate(s, v2, GV_FAIL, 0.1), "");
	/* Inconclusive neither counts nor clears; a pass clears. */
	assert_string_equal(gate(s, v2, GV_INCONCLUSIVE, 0), "");
	assert_int_equal(v2->gate[0].fails, 1);
	assert_string_equal(gate(s, v2, GV_PASS, 0), "");
	assert_int_equal(v2->gate[0].fails, 0);
	assert_string_equal(gate(s, v2, GV_FAIL, 0.1), "");
	assert_string_equal(gate(s, v2, GV_FAIL, 0.1), "");
	assert_string_equal(
	    gate(s, v2, GV_FAIL, 0.1),
	    "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	    "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: gate errors failed 3 times in a row: errors = 0.1, "
			    "fails < 0.05");
	assert_int_equal(s->rollbacks[RB_GATE], 1);
	service_free(s);
}

static void test_gate_inconclusive_holds_the_step(void **state)
{
	struct service *s = gated();
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	gate(s, v2, GV_INCONCLUSIVE, 0);
	/* The bake ends with no pass: the step waits up to gate-timeout. */
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "ro-timer +5000; progress");
	assert_int_equal(v2->weight, 1000);
	/* A pass: the next step at once. */
	now += 1000;
	assert_string_equal(gate(s, v2, GV_PASS, 0),
			    "ro-timer off; policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	/* Then inconclusive again until gate-timeout: rolled back. */
	gate(s, v2, GV_INCONCLUSIVE, 0);
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "ro-timer +5000; progress");
	now += 4999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: gate errors did not pass within gate-timeout 5.0 s "
			    "(last: errors: no data (inconclusive))");
	service_free(s);
}

static void test_gate_dry_run(void **state)
{
	struct service *s = gated();
	struct version *v2;
	int k;

	(void)state;
	s->conf.gate_dry_run = true;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	for (k = 0; k < 5; k++)
		assert_string_equal(gate(s, v2, GV_FAIL, 0.1), "");
	assert_int_equal(v2->gate[0].failures, 5);
	/* Nor does it hold the step. */
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "policy; ro-timer +2000; progress");
	service_free(s);
}

/* n response times around us: a quarter each at 0.8, 0.9, 1.0 and 1.1 times us. */
static void hist_around(struct lat_hist *h, unsigned long long n, unsigned long long us)
{
	static const unsigned pct[] = {80, 90, 100, 110};
	int k;

	memset(h, 0, sizeof(*h));
	for (k = 0; k < 4; k++)
		h->bucket[LAT_RESPONSE][lat_bucket(us * pct[k] / 100)] += n / 4;
}

static struct lat_hist canary_h, base_h;

/* A latency window: the canary's n around us against baseline v3's bn around bus. */
static struct fsm_event ratio_ev(struct version *v, unsigned long long n, unsigned long long us,
				 unsigned long long bn, unsigned long long bus)
{
	hist_around(&canary_h, n, us);
	hist_around(&base_h, bn, bus);
	return (struct fsm_event){.type = FE_LAT_SAMPLE,
				  .v = v,
				  .lat = {.n = n / 4 * 4,
					  .p99_us = lat_quantile(&canary_h, LAT_RESPONSE, 0.99),
					  .window_ms = 1000,
					  .win = &canary_h,
					  .cmp = &base_h,
					  .cmp_num = 3,
					  .cmp_baseline = true,
					  .cmp_n = bn / 4 * 4,
					  .cmp_p99_us = lat_quantile(&base_h, LAT_RESPONSE, 0.99)},
				  .why = "sample"};
}

static struct service *ratio_service(void)
{
	struct service *s = service_new(0);

	s->conf.max_p99_ratio = 1.2;
	s->conf.confidence_bp = 9500;
	s->conf.min_samples = 100;
	s->conf.analysis_timeout_ms = 10000;
	return s;
}

/* A canary three times slower than its baseline: rolled back after health-threshold windows. */
static void test_ratio_slow_canary_rolls_back(void **state)
{
	struct service *s = ratio_service();
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000), "");
	/* 10% slower is within 1.2 times: the run starts again. */
	EXPECT(s, ratio_ev(v2, 400, 11000, 400, 10000), "");
	assert_int_equal(s->ro.gate_bad, 0);
	assert_true(s->ro.gate_pass);
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000), "");
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000), "");
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: web v2 response time > 1.2 x baseline v3's at 95% "
			    "confidence (rank test p 1e-134; p99 36 ms vs 11 ms) over 400 and 400 "
			    "requests (max-p99-ratio)");
	assert_int_equal(s->rollbacks[RB_LATENCY], 1);
	service_free(s);
}

/* Too few on either side is inconclusive: the step holds, then fails at analysis-timeout. */
static void test_ratio_inconclusive(void **state)
{
	struct service *s = ratio_service();
	struct version *v2;
	struct fsm_event e;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	/* A slow canary, but its baseline has 40 requests: no verdict. */
	EXPECT(s, ratio_ev(v2, 400, 30000, 40, 10000), "");
	assert_int_equal(s->ro.gate_bad, 0);
	assert_string_equal(s->ro.gate_last,
			    "inconclusive: v3 (compared with) 40 of min-samples 100 requests in "
			    "1000 ms");
	/* Nothing to compare with: none either. */
	e = ratio_ev(v2, 400, 30000, 400, 10000);
	e.lat.cmp = NULL;
	EXPECT(s, e, "");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "progress");
	assert_int_equal(v2->weight, 1000);
	now += 8000;
	EXPECT(s, ratio_ev(v2, 400, 10000, 99, 10000),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: web v2 inconclusive: v3 it is compared with had 96 "
			    "requests in 1.0 s, fewer than min-samples 100 within analysis-timeout "
			    "10000 ms");
	service_free(s);
}

/* A canary as fast as its baseline passes: a held step promotes on the pass. */
static void test_ratio_healthy_promotes(void **state)
{
	struct service *s = ratio_service();
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "progress");
	assert_true(s->ro.gate_holding);
	EXPECT(s, ratio_ev(v2, 400, 10000, 400, 10000), "policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	assert_string_equal(s->ro.gate_last,
			    "pass: sample; web v2 response time within 1.2 x baseline v3's at 95% "
			    "confidence (rank test p 1; p99 11 ms vs 11 ms) over 400 and 400 "
			    "requests");
	service_free(s);
}

/* gate-mode = dry-run: every latency verdict reported with what it would do, nothing done. */
static void test_latency_dry_run(void **state)
{
	struct service *s = ratio_service();
	struct version *v2;
	int k;

	(void)state;
	s->conf.gate_dry_run = true;
	s->conf.max_error_bp = 100;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	for (k = 0; k < 5; k++)
		EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000), "");
	assert_int_equal(s->ro.gate_bad, 5);
	assert_true(strncmp(s->ro.gate_last,
			    "dry-run, would roll back: web v2 response time > 1.2 x baseline v3's",
			    67) == 0);
	/* The error gate: over max-error-rate 5 times, nothing done either. */
	for (k = 0; k < 5; k++)
		EXPECT(s,
		       ((struct fsm_event){.type = FE_ERROR_SAMPLE,
					   .v = v2,
					   .sample_clients = 100,
					   .sample_failed = 50,
					   .why = "50 of 100"}),
		       "");
	/* No pass: the bake's end would hold the step; dry-run goes on. */
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "policy; ro-timer +2000; progress");
	/* Inconclusive past analysis-timeout: reported, not acted on. */
	now += 10000;
	EXPECT(s, ratio_ev(v2, 40, 10000, 400, 10000), "");
	assert_true(strncmp(s->ro.gate_last, "dry-run, would roll back: web v2 inconclusive", 45) ==
		    0);
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; unplace v1; stop-checks v2; vtimer v2 off; deploy-done ok; ro-timer off; "
	       "watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	assert_int_equal(s->rollbacks[RB_LATENCY] + s->rollbacks[RB_ERRORS], 0);
	service_free(s);
}

/* deploy --baseline: v3, a fresh v1, starts with the canary v2, shares each step, leaves at the
 * end. */
static void test_baseline(void **state)
{
	struct service *s = ratio_service();
	struct version *v1, *v2, *v3;

	(void)state;
	v1 = first_version(s);
	v2 = version_make(s);
	v3 = version_make(s);
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_DEPLOY,
		   .v = v2,
		   .base = v3,
		   .c = C1,
		   .have_opts = true,
		   .opts = {.strategy = STRATEGY_CANARY, .bake_ms = 2000, .baseline = true}}),
	       "place v2; place v3; policy; attach v2; spawn v2; attach v3; spawn v3");
	assert_int_equal(s->ro.base_num, 3);
	/* The canary ready first: the first step waits for its baseline. */
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	v2->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v2, .inst = 0}), "");
	spawned(v3);
	EXPECT(s, ((struct fsm_event){.type = FE_SPAWNED, .v = v3, .ok = true}), "ready-checks v3");
	v3->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v3, .inst = 0}),
	       "vtimer v2 off; vtimer v3 off; health-checks v2; policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 1000);
	assert_int_equal(v3->weight, 1000);
	assert_int_equal(v1->weight, 8000);
	/* 50%: the baseline 50%, the old version nothing. */
	now += 2000;
	EXPECT(s, ratio_ev(v2, 400, 10000, 400, 10000), "");
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "policy; ro-timer +2000; progress");
	assert_int_equal(v2->weight, 5000);
	assert_int_equal(v3->weight, 5000);
	assert_int_equal(v1->weight, 0);
	/* Slower than 1.2 x the baseline: rolled back; v1 takes all, v2 and v3 drain. */
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000), "");
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000), "");
	EXPECT(s, ratio_ev(v2, 400, 30000, 400, 10000),
	       "policy; deploy-done rolled-back; stop-checks v3; unplace v3; watch v3 off; "
	       "release v3; signal v3 SIGTERM; vtimer v3 +3000; ro-timer off; stop-checks v2; "
	       "unplace v2; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(v1->weight, WEIGHT_MAX);
	assert_int_equal(v3->weight, 0);
	assert_int_equal(s->ro.base_num, 0);
	service_free(s);

	/* Promoted: at 100% the baseline takes nothing and drains with the old version. */
	s = ratio_service();
	v1 = first_version(s);
	v2 = version_make(s);
	v3 = version_make(s);
	step(s, (struct fsm_event){
		    .type = FE_DEPLOY,
		    .v = v2,
		    .base = v3,
		    .c = C1,
		    .have_opts = true,
		    .opts = {.strategy = STRATEGY_CANARY, .bake_ms = 2000, .baseline = true}});
	spawned(v3);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v3, .ok = true});
	v3->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v3, .inst = 0}), "");
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	v2->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v2, .inst = 0}),
	       "vtimer v2 off; vtimer v3 off; health-checks v2; policy; ro-timer +2000; progress");
	EXPECT(s, ((struct fsm_event){.type = FE_PROMOTE, .c = C2, .full = true}),
	       "policy; unplace v1; stop-checks v2; vtimer v2 off; deploy-done ok; stop-checks v3; "
	       "unplace v3; watch v3 off; release v3; signal v3 SIGTERM; vtimer v3 +3000; "
	       "ro-timer off; watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000; "
	       "reply ok");
	assert_int_equal(v2->weight, WEIGHT_MAX);
	assert_int_equal(s->ro.base_num, 0);
	service_free(s);

	/* The baseline cannot start: the deploy fails, the canary stops, v1 keeps everything. */
	s = ratio_service();
	v1 = first_version(s);
	v2 = version_make(s);
	v3 = version_make(s);
	step(s, (struct fsm_event){
		    .type = FE_DEPLOY,
		    .v = v2,
		    .base = v3,
		    .c = C1,
		    .have_opts = true,
		    .opts = {.strategy = STRATEGY_CANARY, .bake_ms = 2000, .baseline = true}});
	EXPECT(s, ((struct fsm_event){.type = FE_SPAWNED, .v = v3, .ok = false, .why = "ENOEXEC"}),
	       "deploy-done failed; unplace v3; policy; release v3; signal v3 SIGTERM; vtimer v3 "
	       "+1000; ro-timer off; unplace v2; policy; release v2; policy; forget v2");
	assert_string_equal(text_of(FA_DEPLOY_DONE), "baseline web v3 cannot start: ENOEXEC");
	assert_int_equal(v1->weight, WEIGHT_MAX);
	service_free(s);

	/* baton weight: the canary's weight alone; the baseline takes the same, v1 the rest. */
	s = ratio_service();
	v1 = first_version(s);
	v2 = version_make(s);
	v3 = version_make(s);
	step(s, (struct fsm_event){
		    .type = FE_DEPLOY,
		    .v = v2,
		    .base = v3,
		    .c = C1,
		    .have_opts = true,
		    .opts = {.strategy = STRATEGY_CANARY, .bake_ms = 2000, .baseline = true}});
	spawned(v2);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	step(s, (struct fsm_event){.type = FE_READY, .v = v2, .inst = 0});
	spawned(v3);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v3, .ok = true});
	step(s, (struct fsm_event){.type = FE_READY, .v = v3, .inst = 0});
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_WEIGHT, .c = C2, .nweights = 1, .wnum = {2}, .wbp = {3000}}),
	       "policy; ro-timer off; reply ok");
	assert_string_equal(text_of(FA_REPLY), "web: v2 30.00%, v1 40.00%; rollout paused (baton "
					       "promote web continues from the next step above)");
	assert_int_equal(v3->weight, 3000);
	assert_int_equal(v1->weight, 4000);
	EXPECT(s,
	       ((struct fsm_event){
		   .type = FE_WEIGHT, .c = C2, .nweights = 1, .wnum = {1}, .wbp = {5000}}),
	       "reply err");
	assert_string_equal(text_of(FA_REPLY),
			    "weight: the rollout has a baseline (v3): give v2's weight only; the "
			    "baseline takes the same share (at most 100% minus it), v1 the rest");
	assert_int_equal(v1->weight, 4000);
	service_free(s);
}

/* ---- holds across an agent restart ---------------------------------------------- */

/*
 * The agent is killed and started again: the rollout as the state file
 * keeps it (its holds through stateholds.c's round trip, as JSON text),
 * what only the dead agent knew gone (the gates' verdicts, the timer).
 */
static const char *restart(struct service *s)
{
	json_t *j = state_holds(s);
	char *text = json_dumps(j, 0);
	struct version *nv = ro_new(s);

	json_decref(j);
	j = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(j);
	s->ro.approve = s->ro.gate_hold = s->ro.gate_pass = s->ro.gate_holding = false;
	s->ro.confirm = s->ro.hold_step = s->ro.gate_bad = s->ro.released = s->ro.confirmed = 0;
	s->ro.confirm_deadline = s->ro.gate_deadline = s->ro.gate_step_t = 0;
	s->ro.approve_deadline = 0;
	s->ro.gate_last[0] = '\0';
	s->ro_deadline = 0;
	s->ro.waiter = NULL;
	if (nv)
		memset(nv->gate, 0, sizeof(nv->gate));
	state_holds_restore(s, j);
	json_decref(j);
	return step(s, (struct fsm_event){.type = FE_RESTORED});
}

static void test_restart_keeps_approval_deadline(void **state)
{
	struct service *s = service_new(0);
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY,
				   .v = v2,
				   .c = C1,
				   .have_opts = true,
				   .opts = {.strategy = STRATEGY_CANARY, .approve = true}});
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +9000; progress");
	/* Killed 4 s into the wait: the restarted agent waits the 5 s left, not 9 s again. */
	now += 4000;
	assert_string_equal(restart(s), "policy; ro-timer +5000");
	assert_true(s->ro.approve);
	now += 4999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	now += 1;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; ro-timer off; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->rollbacks[RB_OPERATOR], 1);
	service_free(s);
}

static void test_restart_keeps_confirm_deadline(void **state)
{
	struct service *s = service_new(1u << WH_CONFIRM_STEP);
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +2000; progress");
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "confirm confirm-step; ro-timer +7000; progress");
	/* 3 s later: asked again, with the 4 s left. */
	now += 3000;
	assert_string_equal(restart(s), "policy; ro-timer +4000; confirm confirm-step");
	now += 3999;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "");
	assert_int_equal(s->ro.confirm, WH_CONFIRM_STEP);
	/* Killed again; the deadline passes while no agent runs: it fires at once. */
	now += 2000;
	assert_string_equal(restart(s), "policy; ro-timer -1999; confirm confirm-step");
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; confirm stop; ro-timer off; stop-checks v2; unplace v2; watch v2 off; "
	       "release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->rollbacks[RB_HOOK], 1);
	service_free(s);
}

static void test_restart_keeps_gate_and_bake_deadlines(void **state)
{
	struct service *s = gated();
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	/* A bake: it ends when it would have. */
	now += 1500;
	assert_string_equal(restart(s), "policy; health-checks v2; ro-timer +500");
	now += 500;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}), "ro-timer +5000");
	/* Held for the gates: their deadline stays; the verdicts are asked for again. */
	now += 3000;
	assert_string_equal(restart(s), "policy; health-checks v2; ro-timer +2000");
	assert_true(s->ro.gate_hold);
	now += 2000;
	EXPECT(s, ((struct fsm_event){.type = FE_RO_TIMER}),
	       "policy; ro-timer off; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->rollbacks[RB_GATE], 1);
	service_free(s);
}

static void test_restart_bounds_a_far_deadline(void **state)
{
	struct service *s = service_new(0);
	struct version *v2;
	json_t *j;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY,
				   .v = v2,
				   .have_opts = true,
				   .opts = {.strategy = STRATEGY_CANARY, .approve = true}});
	ready_new(s, v2, "vtimer v2 off; policy; ro-timer +9000");
	/* A deadline from another clock (another boot): never more than the timeout from now. */
	j = state_holds(s);
	json_object_set_new(j, "timer", json_integer(now + 1000000));
	state_holds_restore(s, j);
	json_decref(j);
	assert_string_equal(step(s, (struct fsm_event){.type = FE_RESTORED}),
			    "policy; ro-timer +9000");
	/* A state file without holds (an older agent): as before, the wait starts again. */
	s->ro.approve = true;
	s->ro_deadline = 0;
	assert_string_equal(step(s, (struct fsm_event){.type = FE_RESTORED}),
			    "policy; ro-timer +9000");
	service_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_confirm_rollout_and_promotion),
	    cmocka_unit_test(test_confirm_timeout_rolls_back),
	    cmocka_unit_test(test_pause_ends_the_wait),
	    cmocka_unit_test(test_approval),
	    cmocka_unit_test(test_gate_fails_in_a_row),
	    cmocka_unit_test(test_gate_inconclusive_holds_the_step),
	    cmocka_unit_test(test_gate_dry_run),
	    cmocka_unit_test(test_ratio_slow_canary_rolls_back),
	    cmocka_unit_test(test_ratio_inconclusive),
	    cmocka_unit_test(test_ratio_healthy_promotes),
	    cmocka_unit_test(test_latency_dry_run),
	    cmocka_unit_test(test_baseline),
	    cmocka_unit_test(test_restart_keeps_approval_deadline),
	    cmocka_unit_test(test_restart_keeps_confirm_deadline),
	    cmocka_unit_test(test_restart_keeps_gate_and_bake_deadlines),
	    cmocka_unit_test(test_restart_bounds_a_far_deadline),
	};

	log_init("test_fsm_hold", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
