/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of user/latrank.c, the Mann-Whitney U test on latency
 * histograms, against scipy.stats.mannwhitneyu(a, b, alternative="greater",
 * method="asymptotic", use_continuity=True) on the same samples (scipy
 * 1.10.1, Debian 12's python3-scipy: tests/unit/latrank_expected.py prints
 * them).  Samples below 16 us fall in exact buckets; larger ones are taken
 * at their bucket's middle, and the cases give scipy those middles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "latrank.h"

static struct lat_hist a, b;

static void reset(void)
{
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
}

static void add(struct lat_hist *h, __u64 us, __u64 n)
{
	h->bucket[LAT_RESPONSE][lat_bucket(us)] += n;
}

/* U exactly, p to 1e-9 relative (scipy's float64 against ours). */
static void expect(double ratio, double u, double p)
{
	struct lat_rank r;

	assert_int_equal(lat_rank_test(&a, &b, LAT_RESPONSE, ratio, &r), 0);
	if (r.u != u)
		fail_msg("U %.17g, want %.17g", r.u, u);
	if (r.p < p * (1 - 1e-9) || r.p > p * (1 + 1e-9))
		fail_msg("p %.17g, want %.17g", r.p, p);
}

/* mannwhitneyu([1,2,3], [4,5,6]) and the reverse: the smallest U has p near 1. */
static void disjoint(void **state)
{
	(void)state;
	reset();
	add(&a, 1, 1), add(&a, 2, 1), add(&a, 3, 1);
	add(&b, 4, 1), add(&b, 5, 1), add(&b, 6, 1);
	expect(1, 0, 0.9854518341293739);
	reset();
	add(&a, 4, 1), add(&a, 5, 1), add(&a, 6, 1);
	add(&b, 1, 1), add(&b, 2, 1), add(&b, 3, 1);
	expect(1, 9, 0.04042779918502612);
}

/* mannwhitneyu([5,6,7,8,9], [1,2,3,4,5]): one tie, counted half. */
static void one_tie(void **state)
{
	(void)state;
	reset();
	for (__u64 v = 5; v <= 9; v++)
		add(&a, v, 1);
	for (__u64 v = 1; v <= 5; v++)
		add(&b, v, 1);
	expect(1, 24.5, 0.007985348176890061);
}

/*
 * 120 samples of 8..15 us against 90 of 6..13 (random.seed(19), as listed):
 * many ties, the tie correction matters.
 */
static void many_ties(void **state)
{
	static const __u64 ca[][2] = {{8, 12},	{9, 21}, {10, 12}, {11, 12},
				      {12, 20}, {13, 7}, {14, 16}, {15, 20}};
	static const __u64 cb[][2] = {{6, 11},	{7, 12},  {8, 9},  {9, 10},
				      {10, 12}, {11, 12}, {12, 9}, {13, 15}};

	(void)state;
	reset();
	for (size_t i = 0; i < 8; i++) {
		add(&a, ca[i][0], ca[i][1]);
		add(&b, cb[i][0], cb[i][1]);
	}
	expect(1, 7630.5, 1.3033799053315364e-07);
}

/* mannwhitneyu([10,12,14,15], [10,12,14]): b's 5, 6, 7 us scaled by 2. */
static void scaled(void **state)
{
	(void)state;
	reset();
	add(&a, 10, 1), add(&a, 12, 1), add(&a, 14, 1), add(&a, 15, 1);
	add(&b, 5, 1), add(&b, 6, 1), add(&b, 7, 1);
	expect(2, 7.5, 0.3581448752704214);
}

/*
 * Log buckets: 1000 us is in [960, 1024) (middle 991.5), 2000 us in
 * [1920, 2048) (1983.5).  mannwhitneyu([991.5]*50 + [1983.5]*50,
 * [991.5*1.2]*100), and mannwhitneyu([991.5]*60 + [1983.5]*40,
 * [991.5]*70 + [1983.5]*30).
 */
static void log_buckets(void **state)
{
	(void)state;
	reset();
	add(&a, 1000, 50), add(&a, 2000, 50);
	add(&b, 1000, 100);
	expect(1.2, 5000, 0.5005305914100795);
	reset();
	add(&a, 1000, 60), add(&a, 2000, 40);
	add(&b, 1000, 70), add(&b, 2000, 30);
	expect(1, 5500, 0.06979641937715413);
}

static void degenerate(void **state)
{
	struct lat_rank r;

	(void)state;
	reset();
	add(&a, 5, 3);
	/* No baseline sample, or a ratio that is not positive: no test, p = 1. */
	assert_int_equal(lat_rank_test(&a, &b, LAT_RESPONSE, 1, &r), -1);
	assert_true(r.p == 1);
	add(&b, 5, 2);
	assert_int_equal(lat_rank_test(&a, &b, LAT_RESPONSE, 0, &r), -1);
	assert_int_equal(lat_rank_test(&a, &b, LAT_RESPONSE, -1, &r), -1);
	/* All one value: nothing to rank, not slower. */
	assert_int_equal(lat_rank_test(&a, &b, LAT_RESPONSE, 1, &r), 0);
	assert_true(r.p == 1);
	assert_true(r.u == 3);
	/* The other kind of the same histograms is empty. */
	assert_int_equal(lat_rank_test(&a, &b, LAT_ACCEPT, 1, &r), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(disjoint), cmocka_unit_test(one_tie),     cmocka_unit_test(many_ties),
	    cmocka_unit_test(scaled),	cmocka_unit_test(log_buckets), cmocka_unit_test(degenerate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
