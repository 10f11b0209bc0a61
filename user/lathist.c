/* SPDX-License-Identifier: MIT */
/* Arithmetic of the latency histograms: merging per-CPU values, differences, quantiles. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lathist.h"

void lat_sum_cpus(struct lat_hist *out, const struct lat_hist *cpus, int ncpu)
{
	int c, k, i;

	memset(out, 0, sizeof(*out));
	for (c = 0; c < ncpu; c++)
		for (k = 0; k < LAT_KINDS; k++) {
			for (i = 0; i < (int)LAT_BUCKETS; i++)
				out->bucket[k][i] += cpus[c].bucket[k][i];
			out->sum_us[k] += cpus[c].sum_us[k];
		}
}

__u64 lat_count(const struct lat_hist *h, enum lat_kind kind)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < (int)LAT_BUCKETS; i++)
		n += h->bucket[kind][i];
	return n;
}

void lat_diff(struct lat_hist *out, const struct lat_hist *now, const struct lat_hist *then)
{
	int k, i;

	for (k = 0; k < LAT_KINDS; k++) {
		if (lat_count(now, k) < lat_count(then, k)) {
			/* The entry was re-created (counts went down): all of now is new. */
			memcpy(out->bucket[k], now->bucket[k], sizeof(out->bucket[k]));
			out->sum_us[k] = now->sum_us[k];
			continue;
		}
		for (i = 0; i < (int)LAT_BUCKETS; i++)
			out->bucket[k][i] = now->bucket[k][i] >= then->bucket[k][i]
						? now->bucket[k][i] - then->bucket[k][i]
						: now->bucket[k][i];
		out->sum_us[k] = now->sum_us[k] >= then->sum_us[k]
				     ? now->sum_us[k] - then->sum_us[k]
				     : now->sum_us[k];
	}
}

__u64 lat_count_below(const struct lat_hist *h, enum lat_kind kind, __u64 bound_us)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < (int)LAT_BUCKETS && lat_upper(i) <= bound_us; i++)
		n += h->bucket[kind][i];
	return n;
}

__u64 lat_quantile(const struct lat_hist *h, enum lat_kind kind, double q)
{
	__u64 n = lat_count(h, kind), rank, before = 0, c, lo, hi;
	int i;

	if (!n || q <= 0)
		return 0;
	if (q > 1)
		q = 1;
	rank = (__u64)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < (int)LAT_BUCKETS; i++) {
		c = h->bucket[kind][i];
		if (before + c < rank) {
			before += c;
			continue;
		}
		lo = lat_lower(i);
		hi = lat_upper(i);
		if (hi == ~0ULL || hi - lo <= 1)
			return lo;
		/* The rank-th of c samples spread evenly over [lo, hi): the middle of its share. */
		return lo +
		       (__u64)((double)(hi - lo) * ((double)(rank - before) - 0.5) / (double)c);
	}
	return lat_lower(LAT_BUCKETS - 1);
}

void lat_stats_of(const struct lat_hist *h, enum lat_kind kind, struct lat_stats *s)
{
	s->n = lat_count(h, kind);
	s->mean_us = s->n ? h->sum_us[kind] / s->n : 0;
	s->p50_us = lat_quantile(h, kind, 0.50);
	s->p90_us = lat_quantile(h, kind, 0.90);
	s->p99_us = lat_quantile(h, kind, 0.99);
}

const char *lat_fmt(__u64 us, char *buf, int len)
{
	if (us >= 10000000)
		snprintf(buf, len, "%.0f s", us / 1e6);
	else if (us >= 1000000)
		snprintf(buf, len, "%.2f s", us / 1e6);
	else if (us >= 100000)
		snprintf(buf, len, "%.0f ms", us / 1e3);
	else if (us >= 1000)
		snprintf(buf, len, "%.3g ms", us / 1e3);
	else
		snprintf(buf, len, "%llu us", (unsigned long long)us);
	return buf;
}
