/* SPDX-License-Identifier: MIT */
/* The Mann-Whitney U test on latency histograms (latrank.h). */
#include <math.h>
#include <string.h>

#include "latrank.h"

/* The value (us) a bucket's samples are taken at: its middle (exact buckets: the value). */
static double bucket_value(__u32 idx)
{
	__u64 lo = lat_lower(idx), hi = lat_upper(idx);

	if (idx + 1 >= LAT_BUCKETS || hi - lo <= 1)
		return (double)lo;
	return ((double)lo + (double)(hi - 1)) / 2;
}

int lat_rank_test(const struct lat_hist *a, const struct lat_hist *b, enum lat_kind kind,
		  double ratio, struct lat_rank *out)
{
	const __u64 *ca = a->bucket[kind], *cb = b->bucket[kind];
	double na = 0, nb = 0, n, u = 0, ties = 0, below_b = 0, mu, var;
	__u32 i = 0, j = 0;

	memset(out, 0, sizeof(*out));
	out->p = 1;
	for (__u32 k = 0; k < LAT_BUCKETS; k++) {
		na += (double)ca[k];
		nb += (double)cb[k];
	}
	out->n_a = (__u64)na;
	out->n_b = (__u64)nb;
	if (!(ratio > 0) || na == 0 || nb == 0)
		return -1;
	/*
	 * Merge a's values and b's scaled ones, both ascending, one distinct
	 * value at a time: a's samples there beat every b below and tie
	 * with b's there.
	 */
	while (i < LAT_BUCKETS || j < LAT_BUCKETS) {
		double va, vb, v, ta = 0, tb = 0;

		while (i < LAT_BUCKETS && !ca[i])
			i++;
		while (j < LAT_BUCKETS && !cb[j])
			j++;
		if (i == LAT_BUCKETS && j == LAT_BUCKETS)
			break;
		va = i < LAT_BUCKETS ? bucket_value(i) : INFINITY;
		vb = j < LAT_BUCKETS ? bucket_value(j) * ratio : INFINITY;
		v = va < vb ? va : vb;
		if (va == v)
			ta = (double)ca[i++];
		if (vb == v)
			tb = (double)cb[j++];
		u += ta * (below_b + tb / 2);
		below_b += tb;
		ties += (ta + tb) * (ta + tb) * (ta + tb) - (ta + tb);
	}
	n = na + nb;
	mu = na * nb / 2;
	var = na * nb / 12 * ((n + 1) - ties / (n * (n - 1)));
	out->u = u;
	if (var <= 0) {
		/* Every sample the same value: nothing to rank. */
		out->z = 0;
		out->p = 1;
		return 0;
	}
	out->z = (u - mu - 0.5) / sqrt(var);
	out->p = 0.5 * erfc(out->z / sqrt(2));
	return 0;
}
