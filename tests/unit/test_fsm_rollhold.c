/* SPDX-License-Identifier: MIT */
/*
 * The holds between rolling batches (user/fsm_rollhold.c) in the state
 * machine alone: Prometheus gates, latency gates, approvals and confirmation webhooks
 * before each batch after the first, their deadlines, promote, and their
 * order.  Exact actions of each step; the invariants and the bounds of
 * the issue after every step (rolling_harness.h).
 */
#include "rolling_harness.h"

#define GATE_TIMEOUT	 10000
#define APPROVAL_TIMEOUT 5000
#define CONFIRM_TIMEOUT	 4000

static struct service *hold_service(int surge, int unavail)
{
	struct service *s = service_new(surge, unavail);

	s->conf.gate_timeout_ms = GATE_TIMEOUT;
	s->conf.approval_timeout_ms = APPROVAL_TIMEOUT;
	s->conf.confirm_timeout_ms = CONFIRM_TIMEOUT;
	s->conf.confirm_interval_ms = 1000;
	snprintf(s->conf.gate[0].name, sizeof(s->conf.gate[0].name), "errors");
	return s;
}

static struct fsm_event gate(struct version *v, enum gate_verdict verdict)
{
	return (struct fsm_event){.type = FE_GATE,
				  .v = v,
				  .inst = 0,
				  .verdict = verdict,
				  .value = verdict == GV_PASS ? 0.001 : 0.2,
				  .why = verdict == GV_PASS ? "errors 0.001 < 0.01"
							    : "errors 0.2 < 0.01"};
}

static struct fsm_event confirmed(int point)
{
	return (struct fsm_event){.type = FE_CONFIRMED, .inst = point, .ok = true};
}

static struct fsm_event promote(void)
{
	return (struct fsm_event){.type = FE_PROMOTE, .c = C1};
}

/*
 * max-surge 1: batch 1 up to the retirement of old instance k (new instance
 * 0 serves): the batch is over once k exited, so the holds of batch 2 begin
 * here, while k drains.  Returns the last step's actions.
 */
static const char *batch_one(struct service *s, struct version *ov, struct version *nv, int k)
{
	long long c[4] = {5, 5, 5, 5};

	c[k] = 1;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, c[0], c[1], c[2], c[3]));
	assert_true(ov->inst[k].retiring);
	return render();
}

/* A latency window of v's: n responses, p99 ms. */
static struct fsm_event lat(struct version *v, unsigned long long n, unsigned p99_ms)
{
	struct fsm_event e = {.type = FE_LAT_SAMPLE, .v = v, .why = "p99 sample"};

	e.lat.n = n;
	e.lat.p99_us = p99_ms * 1000ULL;
	e.lat.window_ms = 1000;
	return e;
}

static struct service *lat_service(void)
{
	struct service *s = hold_service(1, 0);

	s->conf.max_p99_ms = 100;
	s->conf.min_samples = 50;
	s->conf.analysis_timeout_ms = 8000;
	s->conf.health_threshold = 2;
	return s;
}

/*
 * max-p99 between rolling batches: the next batch waits for a passing
 * window over the new version (inconclusive is not a pass); each batch's
 * verdict starts over when its instances serve; health-threshold windows
 * over max-p99 in a row roll back (reason latency), the old instance that
 * left starting again.
 */
static void test_latency_holds_batch(void **state)
{
	struct service *s = lat_service();
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	/* The latency gates need the health tick (it sends the windows). */
	EXPECT(s, ev(FE_READY, nv, 0), "health-checks v2; policy; inst-conns v1");
	step(s, conns(ov, 5, 1, 5, 5));
	/* Batch 1 over (instance 1 exited): held, no verdict yet. */
	EXPECT(s, ev(FE_EXIT, ov, 1), "stop-checks v1/1; ro-timer off");
	assert_true(s->ro.gate_holding);
	assert_int_equal(s->ro.batch, 1);
	EXPECT(s, lat(nv, 20, 500), ""); /* 20 < min-samples: inconclusive, not bad */
	assert_int_equal(s->ro.gate_bad, 0);
	/* A window within the bounds that began before batch 1 served does not judge it. */
	EXPECT(s, lat(nv, 60, 30), "");
	assert_true(s->ro.gate_holding);
	assert_string_equal(s->ro.gate_last, "pass, before this batch served: p99 sample");
	/* A passing window of batch 1's own: batch 2 starts. */
	now += 1000;
	EXPECT(s, lat(nv, 60, 30), "place-inst v2/1; spawn-inst v2/1; ready-checks v2");
	assert_int_equal(s->ro.batch, 2);
	assert_false(s->ro.gate_holding);
	start_spawned();
	step(s, ev(FE_READY, nv, 1));
	assert_false(s->ro.gate_pass); /* batch 2's weight: its verdict starts over */
	step(s, conns(ov, 5, -1, 1, 5));
	step(s, ev(FE_EXIT, ov, 2));
	assert_true(s->ro.gate_holding);
	assert_int_equal(s->ro.batch, 2);
	/* Held with 4 serving, never more than 5 processes. */
	assert_int_equal(min_serving, 4);
	assert_int_equal(max_procs, 5);
	/* Over max-p99 twice in a row (health-threshold 2): rolled back. */
	EXPECT(s, lat(nv, 80, 250), "");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	step(s, lat(nv, 80, 300));
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(s->rollbacks[RB_LATENCY], 1);
	assert_non_null(strstr(s->ro.fail_why, "p99 300 ms > max-p99 100 ms over 80 requests"));
	service_free(s);
}

/* Too little traffic to judge is not a pass: analysis-timeout from the batch's weight. */
static void test_latency_analysis_timeout(void **state)
{
	struct service *s = lat_service();
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 5, 1, 5, 5));
	step(s, ev(FE_EXIT, ov, 1));
	now += 7999;
	EXPECT(s, lat(nv, 10, 30), "");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	now += 1;
	step(s, lat(nv, 12, 30));
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(s->rollbacks[RB_LATENCY], 1);
	assert_non_null(strstr(s->ro.fail_why, "inconclusive"));
	service_free(s);
}

/* baton promote releases a batch held by the latency gates. */
static void test_latency_promote(void **state)
{
	struct service *s = lat_service();
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 5, 1, 5, 5));
	step(s, ev(FE_EXIT, ov, 1));
	assert_true(s->ro.gate_holding);
	step(s, promote());
	assert_int_equal(s->ro.batch, 2);
	assert_false(s->ro.gate_holding);
	service_free(s);
}

/*
 * A window of v's (200 requests, p99 30 ms, compared with v1) with its HTTP
 * counts: n responses, n5 of them 5xx; v1's on and on5 (none when on is 0).
 */
static struct fsm_event http_lat(struct version *v, unsigned long long n, unsigned long long n5,
				 unsigned long long on, unsigned long long on5)
{
	struct fsm_event e = lat(v, 200, 30);

	e.lat.cmp_num = 1;
	e.lat.http = true;
	e.lat.http_n = n;
	e.lat.http_5xx = n5;
	if (on) {
		e.lat.http_cmp = true;
		e.lat.cmp_http_n = on;
		e.lat.cmp_http_5xx = on5;
	}
	return e;
}

/* measure-http with min-success-rate 99% (and max-error-ratio when given), no latency gate. */
static struct service *http_service(double max_error_ratio)
{
	struct service *s = hold_service(1, 0);

	s->conf.measure_http = true;
	s->conf.min_success_bp = 9900;
	s->conf.max_error_ratio = max_error_ratio;
	s->conf.confidence_bp = 9500;
	s->conf.min_samples = 50;
	s->conf.analysis_timeout_ms = 8000;
	s->conf.health_threshold = 2;
	return s;
}

/* Batch 1 of v2 serves and its old instance 1 exits: batch 2 is held for the HTTP gates. */
static void http_batch_one(struct service *s, struct version *ov, struct version *nv)
{
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	/* The HTTP gates need the health tick too (it sends the windows). */
	EXPECT(s, ev(FE_READY, nv, 0), "health-checks v2; policy; inst-conns v1");
	step(s, conns(ov, 5, 1, 5, 5));
	EXPECT(s, ev(FE_EXIT, ov, 1), "stop-checks v1/1; ro-timer off");
	assert_true(s->ro.gate_holding);
	assert_int_equal(s->ro.batch, 1);
}

/*
 * min-success-rate between rolling batches: batch 1's window of 10% 500s,
 * health-threshold times in a row, rolls back (reason http) before batch 2;
 * the old instance that left starts again.
 */
static void test_http_success_rolls_back(void **state)
{
	struct service *s = http_service(0);
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	http_batch_one(s, ov, nv);
	/* Fewer than min-samples counted responses: inconclusive, held, not bad. */
	EXPECT(s, http_lat(nv, 40, 4, 0, 0), "");
	assert_int_equal(s->ro.gate_bad, 0);
	assert_string_equal(s->ro.gate_last,
			    "inconclusive: 40 of min-samples 50 HTTP responses counted in 1000 ms");
	EXPECT(s, http_lat(nv, 200, 20, 0, 0), "");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	assert_int_equal(s->ro.gate_bad, 1);
	assert_string_equal(
	    s->ro.gate_last,
	    "fail: web v2 success 90.0% < 99% over 200 responses (min-success-rate)");
	EXPECT(s, http_lat(nv, 200, 20, 0, 0),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 "
	       "SIGTERM; vtimer v2 +3000; spawn-inst v1/1; place-inst v1/1; ready-checks v1");
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(s->ro.batch, 1);
	assert_int_equal(s->rollbacks[RB_HTTP], 1);
	assert_int_equal(s->rollbacks[RB_LATENCY], 0);
	assert_string_equal(s->ro.fail_why,
			    "web v2 success 90.0% < 99% over 200 responses (min-success-rate)");
	/* Never fewer than 3 serving, never more than 5 processes. */
	assert_int_equal(min_serving, 3);
	assert_int_equal(max_procs, 5);
	service_free(s);
}

/* A healthy new version: each batch waits for its passing window, the rollout completes. */
static void test_http_healthy_completes(void **state)
{
	struct service *s = http_service(2);
	struct version *ov, *nv;
	char want[80];
	int k;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	http_batch_one(s, ov, nv);
	/* max-error-ratio compares with the old version: inconclusive without its counts. */
	EXPECT(s, http_lat(nv, 200, 0, 0, 0), "");
	assert_string_equal(s->ro.gate_last, "inconclusive: v1 (compared with) 0 of min-samples 50 "
					     "HTTP responses counted in 1000 ms");
	/* 1 5xx in 200 against 1 in 600 of the old: within 2 x at 95%. */
	now += 1000;
	EXPECT(s, http_lat(nv, 200, 1, 600, 1),
	       "place-inst v2/1; spawn-inst v2/1; ready-checks v2");
	assert_int_equal(s->ro.batch, 2);
	assert_false(s->ro.gate_holding);
	for (k = 2; k < 4; k++) {
		start_spawned();
		step(s, ev(FE_READY, nv, k - 1));
		assert_false(s->ro.gate_pass); /* this batch's weight: its verdict starts over */
		step(s, conns(ov, 5, -1, k == 2 ? 1 : -1, k == 3 ? 1 : 5));
		step(s, ev(FE_EXIT, ov, k));
		assert_true(s->ro.gate_holding);
		assert_int_equal(s->ro.batch, k);
		now += 1000; /* a window since this batch served */
		snprintf(want, sizeof(want), "place-inst v2/%d; spawn-inst v2/%d; ready-checks v2",
			 k, k);
		EXPECT(s, http_lat(nv, 300, 0, 300, 0), want);
		assert_int_equal(s->ro.batch, k + 1);
	}
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 3),
	       "stop-checks v2; vtimer v2 off; policy; deploy-done ok; ro-timer off; unplace v1; "
	       "watch v1 off; release v1; signal-inst v1/0 SIGTERM; vtimer v1 +3000");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(s->rollbacks[RB_HTTP], 0);
	service_free(s);
}

/*
 * Too few counted responses to judge batch 1: held, then failed at
 * analysis-timeout from its weight; baton promote releases such a hold.
 */
static void test_http_timeout_and_promote(void **state)
{
	struct service *s = http_service(0);
	struct version *ov, *nv;

	(void)state;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	http_batch_one(s, ov, nv);
	now += 7999;
	EXPECT(s, http_lat(nv, 30, 0, 0, 0), "");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	now += 1;
	step(s, http_lat(nv, 30, 0, 0, 0));
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(s->ro.batch, 1);
	assert_string_equal(s->ro.fail_why,
			    "web v2 inconclusive: 30 HTTP responses counted in 1.0 s, fewer than "
			    "min-samples 50 within analysis-timeout 8000 ms");
	service_free(s);

	s = http_service(0);
	setup_two(s);
	ov = ov_;
	nv = nv_;
	http_batch_one(s, ov, nv);
	EXPECT(s, http_lat(nv, 30, 0, 0, 0), "");
	EXPECT(s, promote(), "place-inst v2/1; spawn-inst v2/1; ready-checks v2; reply ok");
	assert_int_equal(s->ro.batch, 2);
	assert_false(s->ro.gate_holding);
	service_free(s);
}

/* gate-mode = dry-run: the same verdicts reported, no batch held, nothing rolled back. */
static void test_http_dry_run(void **state)
{
	struct service *s = http_service(0);
	struct version *ov, *nv;

	(void)state;
	s->conf.gate_dry_run = true;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	step(s, ev(FE_READY, nv, 0));
	step(s, conns(ov, 5, 1, 5, 5));
	/* Batch 1 over: not held (it would be), batch 2 starts at once. */
	EXPECT(s, ev(FE_EXIT, ov, 1),
	       "stop-checks v1/1; place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	assert_int_equal(s->ro.batch, 2);
	EXPECT(s, http_lat(nv, 200, 20, 0, 0), "");
	EXPECT(s, http_lat(nv, 200, 20, 0, 0), "");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	assert_int_equal(s->rollbacks[RB_HTTP], 0);
	assert_string_equal(s->ro.gate_last, "dry-run, would roll back: web v2 success 90.0% < 99% "
					     "over 200 responses (min-success-rate)");
	service_free(s);
}

/* A gate holds the next batch until it passes; inconclusive is not a pass. */
static void test_gate_holds_batch(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.ngates = 1;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
	start_spawned();
	/* The gates are queried (the health tick) once the first new instance serves. */
	EXPECT(s, ev(FE_READY, nv, 0), "health-checks v2; policy; inst-conns v1");
	step(s, conns(ov, 5, 1, 5, 5));
	/* No verdict yet: held up to gate-timeout, no batch 2. */
	EXPECT(s, ev(FE_EXIT, ov, 1), "stop-checks v1/1; ro-timer +10000");
	assert_true(s->ro.gate_hold);
	EXPECT(s, gate(nv, GV_INCONCLUSIVE), "");
	EXPECT(s, gate(nv, GV_FAIL), "");
	assert_int_equal(s->ro.batch, 1);
	/* Passing: batch 2 starts, the gate deadline goes. */
	EXPECT(s, gate(nv, GV_PASS),
	       "place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off");
	assert_false(s->ro.gate_hold);
	assert_int_equal(s->ro.batch, 2);
	/* Held with 4 serving, never more than 5 processes. */
	assert_int_equal(min_serving, 4);
	assert_int_equal(max_procs, 5);
	/* Failing health-threshold (3) times in a row rolls back, reason gate. */
	start_spawned();
	step(s, gate(nv, GV_FAIL));
	step(s, gate(nv, GV_FAIL));
	assert_int_equal(s->ro.stage, RO_ROLLING);
	EXPECT(s, gate(nv, GV_FAIL),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; "
	       "release v2; signal v2 SIGTERM; vtimer v2 +3000; spawn-inst v1/1; place-inst v1/1; "
	       "ready-checks v1");
	assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
	assert_int_equal(s->rollbacks[RB_GATE], 1);
	assert_non_null(strstr(s->ro.fail_why, "gate"));
	start_spawned();
	EXPECT(s, ev(FE_READY, ov, 1), "place-inst v1/1; deploy-done rolled-back; ro-timer off");
	assert_int_equal(ov->nalive, 4);
	service_free(s);
}

/* A gate that does not pass within gate-timeout rolls back, the deadline on the rollout timer. */
static void test_gate_timeout(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.ngates = 1;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	/* Held from the retirement on; the nearest bound is the retired instance's drain. */
	assert_string_equal(batch_one(s, ov, nv, 2), "policy; unplace-inst v1/2; release v1/2; "
						     "signal-inst v1/2 SIGTERM; ro-timer +3000");
	assert_true(s->ro.gate_hold);
	EXPECT(s, ev(FE_EXIT, ov, 2), "stop-checks v1/2; ro-timer +10000");
	step(s, gate(nv, GV_INCONCLUSIVE));
	now += GATE_TIMEOUT - 1;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "");
	now += 1;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 "
	       "SIGTERM; vtimer v2 +3000; spawn-inst v1/2; place-inst v1/2; ready-checks v1; "
	       "ro-timer off");
	assert_int_equal(s->rollbacks[RB_GATE], 1);
	assert_non_null(strstr(s->ro.fail_why, "did not pass within gate-timeout"));
	assert_false(s->ro.gate_hold);
	service_free(s);
}

/* approve: each batch after the first waits for promote; approval-timeout rolls back. */
static void test_approve(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.approve = true;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	batch_one(s, ov, nv, 0);
	assert_int_equal(s->ro.approve_deadline, now + APPROVAL_TIMEOUT);
	EXPECT(s, ev(FE_EXIT, ov, 0), "stop-checks v1/0; ro-timer +5000");
	now += 4000;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "");
	EXPECT(s, promote(),
	       "place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off; reply ok");
	assert_int_equal(s->ro.released, 2);
	start_spawned();
	EXPECT(s, ev(FE_READY, nv, 1), "policy; inst-conns v1");
	EXPECT(s, conns(ov, -1, 3, 1, 2),
	       "policy; unplace-inst v1/2; release v1/2; signal-inst v1/2 SIGTERM; ro-timer +3000");
	/* Batch 3 waits: the retired instance's drain-timeout is nearer than the deadline. */
	EXPECT(s, ev(FE_EXIT, ov, 2), "stop-checks v1/2; ro-timer +5000");
	now += APPROVAL_TIMEOUT;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1),
	       "vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; release v2; "
	       "signal v2 "
	       "SIGTERM; vtimer v2 +3000; spawn-inst v1/0; place-inst v1/0; ready-checks v1; "
	       "spawn-inst v1/2; place-inst v1/2; "
	       "ready-checks v1; ro-timer off");
	assert_int_equal(s->rollbacks[RB_OPERATOR], 1);
	assert_non_null(strstr(s->ro.fail_why, "batch 3 of v2 was not approved within "
					       "approval-timeout 5.0 s"));
	service_free(s);
}

/* approve with pause: the deadline does not run while paused; promote releases it. */
static void test_approve_paused(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.approve = true;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	batch_one(s, ov, nv, 3);
	EXPECT(s, ev(FE_EXIT, ov, 3), "stop-checks v1/3; ro-timer +5000");
	EXPECT(s, ((struct fsm_event){.type = FE_PAUSE, .c = C1}), "ro-timer off; reply ok");
	now += 10 * APPROVAL_TIMEOUT;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1), "");
	assert_int_equal(s->ro.stage, RO_ROLLING);
	EXPECT(s, promote(), "place-inst v2/1; spawn-inst v2/1; ready-checks v2; reply ok");
	service_free(s);
}

/* confirm-step before each batch after the first, confirm-promotion before the last. */
static void test_confirm_batches(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;
	int k;

	(void)state;
	s->conf.webhook_events = (1u << WH_CONFIRM_STEP) | (1u << WH_CONFIRM_PROMOTION);
	setup_two(s);
	ov = ov_;
	nv = nv_;
	assert_string_equal(batch_one(s, ov, nv, 0),
			    "policy; unplace-inst v1/0; release v1/0; signal-inst v1/0 SIGTERM; "
			    "ro-timer +3000; confirm confirm-step");
	assert_int_equal(s->ro.hold_step, 2);
	EXPECT(s, ev(FE_EXIT, ov, 0), "stop-checks v1/0; ro-timer +4000");
	/* A refusal (not 2xx) changes nothing: it is asked again. */
	EXPECT(s, ((struct fsm_event){.type = FE_CONFIRMED, .inst = WH_CONFIRM_STEP}), "");
	for (k = 1; k < 4; k++) {
		char want[256];

		snprintf(want, sizeof(want),
			 "confirm stop; place-inst v2/%d; spawn-inst v2/%d; ready-checks v2; "
			 "ro-timer off",
			 k, k);
		EXPECT(s, confirmed(k < 3 ? WH_CONFIRM_STEP : WH_CONFIRM_PROMOTION), want);
		assert_int_equal(s->ro.confirmed, k + 1);
		start_spawned();
		if (k == 3)
			break;
		EXPECT(s, ev(FE_READY, nv, k), "policy; inst-conns v1");
		/* Instance k retires: the hold of batch k + 2 begins; the last is a promotion. */
		snprintf(want, sizeof(want),
			 "policy; unplace-inst v1/%d; release v1/%d; signal-inst v1/%d SIGTERM; "
			 "ro-timer +3000; confirm %s",
			 k, k, k, k < 2 ? "confirm-step" : "confirm-promotion");
		EXPECT(s, conns(ov, -1, k == 1 ? 0 : -1, k == 1 ? 1 : 0, 1), want);
		snprintf(want, sizeof(want), "stop-checks v1/%d; ro-timer +4000", k);
		EXPECT(s, ev(FE_EXIT, ov, k), want);
	}
	EXPECT(s, ev(FE_READY, nv, 3),
	       "stop-checks v2; vtimer v2 off; policy; deploy-done ok; ro-timer off; unplace v1; "
	       "watch v1 off; release v1; signal-inst v1/3 SIGTERM; vtimer v1 +3000");
	assert_int_equal(s->ro.stage, RO_NONE);
	assert_int_equal(s->active, nv->vslot);
	assert_int_equal(s->rollouts[RR_COMPLETED], 2); /* v1's first start, then v2 */
	service_free(s);
}

/* A confirmation webhook that never answers 2xx: rolled back at confirm-timeout. */
static void test_confirm_timeout(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.webhook_events = 1u << WH_CONFIRM_STEP;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	batch_one(s, ov, nv, 1);
	EXPECT(s, ev(FE_EXIT, ov, 1), "stop-checks v1/1; ro-timer +4000");
	now += CONFIRM_TIMEOUT;
	EXPECT(s, ev(FE_RO_TIMER, NULL, -1),
	       "confirm stop; vtimer v2 off; policy; stop-checks v2; unplace v2; watch v2 off; "
	       "release "
	       "v2; signal v2 SIGTERM; vtimer v2 +3000; spawn-inst v1/1; place-inst v1/1; "
	       "ready-checks v1; ro-timer "
	       "off");
	assert_int_equal(s->rollbacks[RB_HOOK], 1);
	assert_non_null(strstr(s->ro.fail_why, "confirm-step webhook did not answer 2xx"));
	service_free(s);
}

/*
 * Gates, then approval, then confirmation; promote releases a gate hold
 * (as for a canary), not a confirmation.  max-surge 0: the hold comes
 * before the retirement that starts the next batch.
 */
static void test_order_in_place(void **state)
{
	struct service *s = hold_service(0, 1);
	struct version *ov, *nv;

	(void)state;
	s->conf.ngates = 1;
	s->conf.approve = true;
	s->conf.webhook_events = 1u << WH_CONFIRM_STEP;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	/* Batch 1 takes its room first, unheld. */
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = nv}),
	       "policy; attach v2; inst-conns v1");
	step(s, conns(ov, 2, 2, 2, 2));
	step(s, ev(FE_EXIT, ov, 0));
	start_spawned();
	/* Ready: 4 serve again; nothing more retires before the holds. */
	EXPECT(s, ev(FE_READY, nv, 0), "health-checks v2; policy; ro-timer +10000");
	assert_true(s->ro.gate_hold);
	EXPECT(s, gate(nv, GV_PASS), "ro-timer +5000");
	assert_int_equal(s->ro.approve_deadline, now + APPROVAL_TIMEOUT);
	EXPECT(s, promote(), "confirm confirm-step; ro-timer +4000; reply ok");
	/* promote again does not confirm: only the webhook's 2xx does. */
	EXPECT(s, promote(), "reply ok");
	EXPECT(s, confirmed(WH_CONFIRM_STEP), "confirm stop; inst-conns v1; ro-timer off");
	EXPECT(s, conns(ov, -1, 2, 2, 2),
	       "policy; unplace-inst v1/1; release v1/1; signal-inst v1/1 SIGTERM; ro-timer +3000");
	step(s, ev(FE_EXIT, ov, 1));
	start_spawned();
	/* Batch 3: the gate passed already; promote while held by the approval. */
	EXPECT(s, ev(FE_READY, nv, 1), "policy; ro-timer +5000");
	assert_int_equal(min_serving, 3);
	assert_int_equal(max_procs, 4);
	service_free(s);
}

/* promote releases a gate hold (the operator overrides the gates, as for a canary). */
static void test_promote_releases_gate(void **state)
{
	struct service *s = hold_service(1, 0);
	struct version *ov, *nv;

	(void)state;
	s->conf.ngates = 1;
	setup_two(s);
	ov = ov_;
	nv = nv_;
	batch_one(s, ov, nv, 2);
	EXPECT(s, ev(FE_EXIT, ov, 2), "stop-checks v1/2; ro-timer +10000");
	EXPECT(s, promote(),
	       "place-inst v2/1; spawn-inst v2/1; ready-checks v2; ro-timer off; reply ok");
	assert_false(s->ro.gate_hold);
	service_free(s);
}

/*
 * after-switch with strategy = rolling runs once every new instance serves
 * (v2 has all new connections); the old instance left is kept, out of the
 * map and unsignalled, until it passed; a failure rolls back, starting
 * again the old instances that left.
 */
static void test_after_switch(void **state)
{
	struct service *s;
	struct version *ov, *nv;
	int i, pass;

	(void)state;
	for (pass = 1; pass >= 0; pass--) {
		s = hold_service(1, 0);
		s->conf.hook[HOOK_AFTER_SWITCH][0] = "/bin/true";
		setup_two(s);
		ov = ov_;
		nv = nv_;
		step(s, (struct fsm_event){.type = FE_DEPLOY, .v = nv, .c = C1});
		for (i = 0; i < 3; i++) {
			long long c[4] = {-1, -1, -1, -1};
			int k;

			for (k = i; k < 4; k++)
				c[k] = k == i ? 1 : 5;
			start_spawned();
			step(s, ev(FE_READY, nv, i));
			step(s, conns(ov, c[0], c[1], c[2], c[3]));
			step(s, ev(FE_EXIT, ov, i));
		}
		start_spawned();
		/* The last one: all to v2; old instance 3 out of the map, unsignalled; the hook. */
		EXPECT(s, ev(FE_READY, nv, 3),
		       "stop-checks v2; vtimer v2 off; policy; unplace v1; run-hook after-switch; "
		       "ro-timer +4000");
		assert_int_equal(s->ro.stage, RO_AFTER_SWITCH);
		assert_int_equal(nv->weight, WEIGHT_MAX);
		assert_true(ov->inst[3].alive);
		if (pass) {
			EXPECT(
			    s, ((struct fsm_event){.type = FE_HOOK_DONE, .ok = true}),
			    "ro-timer off; stop-checks v2; vtimer v2 off; deploy-done ok; ro-timer "
			    "off; watch v1 off; release v1; signal-inst v1/3 SIGTERM; vtimer v1 "
			    "+3000");
			assert_int_equal(s->ro.stage, RO_NONE);
		} else {
			EXPECT(
			    s,
			    ((struct fsm_event){
				.type = FE_HOOK_DONE, .ok = false, .why = "exit 1"}),
			    "ro-timer off; vtimer v2 off; policy; stop-checks v2; unplace v2; "
			    "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000; "
			    "place-inst v1/3; "
			    "spawn-inst v1/0; place-inst v1/0; ready-checks v1; spawn-inst v1/1; "
			    "place-inst v1/1; ready-checks v1; "
			    "spawn-inst v1/2; place-inst v1/2; ready-checks v1");
			assert_int_equal(s->ro.stage, RO_ROLLING_BACK);
			assert_int_equal(s->active, ov->vslot);
			assert_int_equal(s->rollbacks[RB_HOOK], 1);
			start_spawned();
			for (i = 0; i < 3; i++)
				step(s, ev(FE_READY, ov, i));
			assert_int_equal(s->ro.stage, RO_NONE);
			assert_int_equal(ov->nready, 4);
		}
		service_free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gate_holds_batch),
	    cmocka_unit_test(test_gate_timeout),
	    cmocka_unit_test(test_approve),
	    cmocka_unit_test(test_approve_paused),
	    cmocka_unit_test(test_confirm_batches),
	    cmocka_unit_test(test_confirm_timeout),
	    cmocka_unit_test(test_order_in_place),
	    cmocka_unit_test(test_promote_releases_gate),
	    cmocka_unit_test(test_after_switch),
	    cmocka_unit_test(test_latency_holds_batch),
	    cmocka_unit_test(test_latency_analysis_timeout),
	    cmocka_unit_test(test_latency_promote),
	    cmocka_unit_test(test_http_success_rolls_back),
	    cmocka_unit_test(test_http_healthy_completes),
	    cmocka_unit_test(test_http_timeout_and_promote),
	    cmocka_unit_test(test_http_dry_run),
	};

	log_init("test_fsm_rollhold", -1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
