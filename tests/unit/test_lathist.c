/* SPDX-License-Identifier: MIT */
/*
 * The latency histograms' arithmetic (include/latency.h, user/lathist.c):
 * bucketing, bounds, summing per-CPU values, differences and quantiles
 * against distributions whose quantiles are known.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lathist.h"

static struct lat_hist *hist(void)
{
	struct lat_hist *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	return h;
}

static void add(struct lat_hist *h, enum lat_kind k, __u64 us)
{
	h->bucket[k][lat_bucket(us)]++;
	h->sum_us[k] += us;
}

/* Within pct percent of want. */
static void near(__u64 got, __u64 want, double pct)
{
	double d = (double)got - (double)want;

	if (d < 0)
		d = -d;
	if (d > want * pct / 100) {
		fail_msg("%llu is not within %.1f%% of %llu", (unsigned long long)got, pct,
			 (unsigned long long)want);
	}
}

static void test_bucket_edges(void **state)
{
	(void)state;
	/* Exact below 2 * LAT_SUB. */
	assert_int_equal(lat_bucket(0), 0);
	assert_int_equal(lat_bucket(7), 7);
	assert_int_equal(lat_bucket(8), 8);
	assert_int_equal(lat_bucket(15), 15);
	/* Then LAT_SUB per octave: [16, 18) is 16, [30, 32) is 23, [32, 36) is 24. */
	assert_int_equal(lat_bucket(16), 16);
	assert_int_equal(lat_bucket(17), 16);
	assert_int_equal(lat_bucket(18), 17);
	assert_int_equal(lat_bucket(31), 23);
	assert_int_equal(lat_bucket(32), 24);
	assert_int_equal(lat_bucket(35), 24);
	assert_int_equal(lat_bucket(36), 25);
	/* 500 ms: octave 2^18, width 2^15: [491520, 524288). */
	assert_int_equal(lat_lower(lat_bucket(500000)), 491520);
	assert_int_equal(lat_upper(lat_bucket(500000)), 524288);
	/* Everything past the last bound lands in the last bucket. */
	assert_int_equal(lat_bucket(1ULL << 27), LAT_BUCKETS - 1);
	assert_int_equal(lat_bucket(~0ULL), LAT_BUCKETS - 1);
	assert_true(lat_upper(LAT_BUCKETS - 1) == ~0ULL);
}

/* Every bucket holds exactly [lower, upper), the bounds meet, and widths stay within 1/LAT_SUB. */
static void test_bucket_bounds(void **state)
{
	__u32 i;

	(void)state;
	for (i = 0; i + 1 < LAT_BUCKETS; i++) {
		__u64 lo = lat_lower(i), hi = lat_upper(i);

		assert_true(lo < hi);
		assert_int_equal(lat_bucket(lo), i);
		assert_int_equal(lat_bucket(hi - 1), i);
		assert_int_equal(lat_bucket(hi), i + 1);
		if (lo >= 2 * LAT_SUB)
			assert_true((hi - lo) * LAT_SUB <= lo);
	}
	for (i = 0; i < 20; i++)
		assert_int_equal(lat_msb(1ULL << i), i);
	assert_int_equal(lat_msb(~0ULL), 63);
}

static void test_sum_cpus_and_diff(void **state)
{
	struct lat_hist *cpus = calloc(3, sizeof(*cpus)), *sum = hist(), *then = hist(),
			*d = hist();

	(void)state;
	assert_non_null(cpus);
	add(&cpus[0], LAT_RESPONSE, 100);
	add(&cpus[1], LAT_RESPONSE, 100);
	add(&cpus[2], LAT_RESPONSE, 5000);
	add(&cpus[2], LAT_ACCEPT, 40);
	lat_sum_cpus(sum, cpus, 3);
	assert_int_equal(lat_count(sum, LAT_RESPONSE), 3);
	assert_int_equal(lat_count(sum, LAT_ACCEPT), 1);
	assert_int_equal(sum->bucket[LAT_RESPONSE][lat_bucket(100)], 2);
	assert_int_equal(sum->sum_us[LAT_RESPONSE], 5200);
	*then = *sum;
	add(sum, LAT_RESPONSE, 7000);
	add(sum, LAT_RESPONSE, 7000);
	lat_diff(d, sum, then);
	assert_int_equal(lat_count(d, LAT_RESPONSE), 2);
	assert_int_equal(lat_count(d, LAT_ACCEPT), 0);
	assert_int_equal(d->bucket[LAT_RESPONSE][lat_bucket(7000)], 2);
	assert_int_equal(d->sum_us[LAT_RESPONSE], 14000);
	/* An entry re-created behind our back (counts went down) reads as its new counts. */
	lat_diff(d, then, sum);
	assert_int_equal(lat_count(d, LAT_RESPONSE), 3);
	free(cpus);
	free(sum);
	free(then);
	free(d);
}

static void test_quantiles(void **state)
{
	struct lat_hist *h = hist();
	struct lat_stats s;
	__u64 i;

	(void)state;
	assert_int_equal(lat_quantile(h, LAT_RESPONSE, 0.99), 0);
	/* 1..10000 us, once each: the q-quantile is 10000 q. */
	for (i = 1; i <= 10000; i++)
		add(h, LAT_RESPONSE, i);
	lat_stats_of(h, LAT_RESPONSE, &s);
	assert_int_equal(s.n, 10000);
	assert_int_equal(s.mean_us, 5000);
	/* Within a bucket's error: the top bucket is only partly filled here. */
	near(s.p50_us, 5000, 3);
	near(s.p90_us, 9000, 3);
	near(s.p99_us, 9900, 3);
	/* Exact small values. */
	memset(h, 0, sizeof(*h));
	for (i = 0; i < 99; i++)
		add(h, LAT_ACCEPT, 3);
	add(h, LAT_ACCEPT, 9);
	assert_int_equal(lat_quantile(h, LAT_ACCEPT, 0.5), 3);
	assert_int_equal(lat_quantile(h, LAT_ACCEPT, 0.99), 3);
	assert_int_equal(lat_quantile(h, LAT_ACCEPT, 1.0), 9);
	/* A fixed 20 ms and a fixed 200 ms: within the bucket width (12.5%). */
	memset(h, 0, sizeof(*h));
	for (i = 0; i < 1000; i++)
		add(h, LAT_RESPONSE, 20000 + i % 50);
	near(lat_quantile(h, LAT_RESPONSE, 0.5), 20000, 12.5);
	near(lat_quantile(h, LAT_RESPONSE, 0.99), 20000, 12.5);
	memset(h, 0, sizeof(*h));
	/* 90% at 1 ms, 10% at 200 ms: p50 1 ms, p99 200 ms. */
	for (i = 0; i < 900; i++)
		add(h, LAT_RESPONSE, 1000);
	for (i = 0; i < 100; i++)
		add(h, LAT_RESPONSE, 200000);
	near(lat_quantile(h, LAT_RESPONSE, 0.5), 1000, 6.25);
	near(lat_quantile(h, LAT_RESPONSE, 0.9), 1000, 6.25);
	near(lat_quantile(h, LAT_RESPONSE, 0.99), 200000, 12.5);
	/* Prometheus' cumulative buckets at powers of two. */
	assert_int_equal(lat_count_below(h, LAT_RESPONSE, 1024), 900);
	assert_int_equal(lat_count_below(h, LAT_RESPONSE, 1 << 17), 900);
	assert_int_equal(lat_count_below(h, LAT_RESPONSE, 1 << 18), 1000);
	free(h);
}

static void test_fmt(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(lat_fmt(640, b, sizeof(b)), "640 us");
	assert_string_equal(lat_fmt(1250, b, sizeof(b)), "1.25 ms");
	assert_string_equal(lat_fmt(812000, b, sizeof(b)), "812 ms");
	assert_string_equal(lat_fmt(2500000, b, sizeof(b)), "2.50 s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_edges),
	    cmocka_unit_test(test_bucket_bounds),
	    cmocka_unit_test(test_sum_cpus_and_diff),
	    cmocka_unit_test(test_quantiles),
	    cmocka_unit_test(test_fmt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
