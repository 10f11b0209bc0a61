/* SPDX-License-Identifier: MIT */
/*
 * measure-http's gates in the state machine (fsm_gates.c: min-success-rate,
 * max-error-ratio, gate-mode = dry-run), each step's exact actions, with
 * the hold tests' harness.
 */
#include "fsm_hold_harness.h"

/* ---- measure-http's gates (fsm_gates.c: min-success-rate, max-error-ratio) ---- */

/* A window of 400 fast requests, n final responses with e5 5xx; the baseline v3's (bn 0: none). */
static struct fsm_event http_ev(struct version *v, unsigned long long n, unsigned long long e5,
				unsigned long long bn, unsigned long long be5)
{
	return (struct fsm_event){.type = FE_LAT_SAMPLE,
				  .v = v,
				  .lat = {.n = 400,
					  .p99_us = 1000,
					  .window_ms = 1000,
					  .cmp_num = 3,
					  .cmp_baseline = true,
					  .cmp_n = 400,
					  .http = true,
					  .http_n = n,
					  .http_5xx = e5,
					  .http_cmp = bn > 0,
					  .cmp_http_n = bn,
					  .cmp_http_5xx = be5},
				  .why = "sample"};
}

static struct service *http_service(unsigned min_success_bp, double max_error_ratio)
{
	struct service *s = service_new(0);

	s->conf.measure_http = true;
	s->conf.min_success_bp = min_success_bp;
	s->conf.max_error_ratio = max_error_ratio;
	s->conf.confidence_bp = 9500;
	s->conf.min_samples = 100;
	s->conf.analysis_timeout_ms = 10000;
	return s;
}

/* 10% 500s against min-success-rate 99%: health-threshold windows in a row roll back. */
static void test_http_success_rolls_back(void **state)
{
	struct service *s = http_service(9900, 0);
	struct version *v2;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	/* Fewer than min-samples counted responses: inconclusive, not bad. */
	EXPECT(s, http_ev(v2, 40, 20, 0, 0), "");
	assert_int_equal(s->ro.gate_bad, 0);
	assert_string_equal(s->ro.gate_last, "inconclusive: 40 of min-samples 100 HTTP responses "
					     "counted in 1000 ms");
	/* 99.0% exactly passes; the run of bad windows starts over. */
	EXPECT(s, http_ev(v2, 1204, 124, 0, 0), "");
	EXPECT(s, http_ev(v2, 1000, 10, 0, 0), "");
	assert_int_equal(s->ro.gate_bad, 0);
	assert_string_equal(s->ro.gate_last, "pass: sample; success 99.0% over 1000 responses");
	EXPECT(s, http_ev(v2, 1204, 124, 0, 0), "");
	EXPECT(s, http_ev(v2, 1204, 124, 0, 0), "");
	assert_string_equal(s->ro.gate_last, "fail: web v2 success 89.7% < 99% over 1204 responses "
					     "(min-success-rate)");
	/* Windows judged so far (/metrics): one pass, three fails, one inconclusive. */
	assert_int_equal(s->ro.gate_windows[0], 1);
	assert_int_equal(s->ro.gate_windows[1], 3);
	assert_int_equal(s->ro.gate_windows[2], 1);
	EXPECT(s, http_ev(v2, 1204, 124, 0, 0),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(text_of(FA_DEPLOY_DONE),
			    "rolled back to v1: web v2 success 89.7% < 99% "
			    "over 1204 responses (min-success-rate)");
	assert_int_equal(s->rollbacks[RB_HTTP], 1);
	assert_int_equal(s->rollbacks[RB_LATENCY], 0);
	service_free(s);
}

/* max-error-ratio 2 against the baseline: the two-proportion test decides. */
static void test_http_error_ratio(void **state)
{
	struct service *s = http_service(0, 2);
	struct version *v2;
	int k;

	(void)state;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	/* The baseline not counted yet, then short of min-samples: inconclusive. */
	EXPECT(s, http_ev(v2, 1000, 100, 0, 0), "");
	assert_string_equal(s->ro.gate_last,
			    "inconclusive: v3 (compared with) 0 of min-samples 100 "
			    "HTTP responses counted in 1000 ms");
	EXPECT(s, http_ev(v2, 1000, 100, 99, 1), "");
	assert_int_equal(s->ro.gate_bad, 0);
	/* 3% against 1%: above 2 x, but not at 95% confidence (p 0.11). */
	EXPECT(s, http_ev(v2, 1000, 30, 1000, 10), "");
	assert_int_equal(s->ro.gate_bad, 0);
	assert_string_equal(
	    s->ro.gate_last,
	    "pass: sample; success 97.0% over 1000 responses; 5xx rate 3% within 2 x "
	    "baseline v3's 1% at 95% confidence (p 0.11) over 1000 and 1000 responses");
	for (k = 0; k < 2; k++)
		EXPECT(s, http_ev(v2, 1000, 100, 1000, 10), "");
	EXPECT(s, http_ev(v2, 1000, 100, 1000, 10),
	       "policy; deploy-done rolled-back; ro-timer off; stop-checks v2; unplace v2; "
	       "watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_string_equal(
	    text_of(FA_DEPLOY_DONE),
	    "rolled back to v1: web v2 5xx rate 10% > 2 x baseline v3's 1% at 95% "
	    "confidence (p 1.1e-12) over 1000 and 1000 responses (max-error-ratio)");
	assert_int_equal(s->rollbacks[RB_HTTP], 1);
	service_free(s);
}

/*
 * Windows that stay inconclusive past analysis-timeout roll back with the
 * reason of the gates that lacked data: http when only HTTP gates are set or
 * HTTP responses were missing, latency when requests were.
 */
static void test_http_inconclusive_reason(void **state)
{
	static const struct {
		unsigned max_p99_ms;
		unsigned long long n, http_n;
		enum rb_reason want;
		const char *why;
	} cases[] = {
	    {0, 400, 40, RB_HTTP, "40 HTTP responses counted"},
	    {0, 40, 40, RB_HTTP, "40 requests"},
	    {100, 400, 40, RB_HTTP, "40 HTTP responses counted"},
	    {100, 40, 40, RB_LATENCY, "40 requests"},
	};
	char want[300];
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct service *s = http_service(9900, 0);
		struct fsm_event e;
		struct version *v2;
		int i;

		s->conf.max_p99_ms = cases[k].max_p99_ms;
		first_version(s);
		v2 = version_make(s);
		step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
		ready_new(s, v2,
			  "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
		e = http_ev(v2, cases[k].http_n, 0, 0, 0);
		e.lat.n = cases[k].n;
		for (i = 0; i < 10; i++) {
			EXPECT(s, e, "");
			now += 1000;
		}
		/* 10 s after the step began: analysis-timeout. */
		assert_string_equal(step(s, e), "policy; deploy-done rolled-back; ro-timer off; "
						"stop-checks v2; unplace v2; watch v2 off; "
						"release v2; signal v2 SIGTERM; vtimer v2 +3000");
		snprintf(want, sizeof(want),
			 "rolled back to v1: web v2 inconclusive: %s in 1.0 s, fewer than "
			 "min-samples 100 within analysis-timeout 10000 ms",
			 cases[k].why);
		assert_string_equal(text_of(FA_DEPLOY_DONE), want);
		assert_int_equal(s->rollbacks[cases[k].want], 1);
		assert_int_equal(s->rollbacks[RB_HTTP] + s->rollbacks[RB_LATENCY], 1);
		service_free(s);
	}
}

/* gate-mode = dry-run: a failing success rate reported with what it would do, nothing done. */
static void test_http_dry_run(void **state)
{
	struct service *s = http_service(9900, 0);
	struct version *v2;
	int k;

	(void)state;
	s->conf.gate_dry_run = true;
	first_version(s);
	v2 = version_make(s);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	ready_new(s, v2, "vtimer v2 off; health-checks v2; policy; ro-timer +2000; progress");
	for (k = 0; k < 5; k++)
		EXPECT(s, http_ev(v2, 1204, 124, 0, 0), "");
	assert_int_equal(s->ro.gate_bad, 5);
	assert_string_equal(s->ro.gate_last, "dry-run, would roll back: web v2 success 89.7% < 99% "
					     "over 1204 responses (min-success-rate)");
	assert_int_equal(s->rollbacks[RB_HTTP], 0);
	service_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_success_rolls_back),
	    cmocka_unit_test(test_http_error_ratio),
	    cmocka_unit_test(test_http_dry_run),
	    cmocka_unit_test(test_http_inconclusive_reason),
	};

	log_init("test_fsm_http", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
