/* SPDX-License-Identifier: MIT */
/*
 * The Mann-Whitney U (rank-sum) test on two latency histograms
 * (include/latency.h): is version a slower than ratio times version b?
 * Pure and unit-tested; the verdict rules that use it belong in
 * fsm_gates.c.
 */
#ifndef BATON_LATRANK_H
#define BATON_LATRANK_H

#include <linux/types.h>

#include "latency.h"

struct lat_rank {
	__u64 n_a, n_b; /* samples of each */
	double u;	/* U of a: pairs with a's sample above ratio * b's, ties count half */
	double z;	/* U standardized: tie-corrected variance, continuity-corrected */
	double p;	/* one-sided: the chance of a U this large if a were not slower */
};

/*
 * Compare kind's samples of a (the canary) with those of b (its baseline)
 * scaled by ratio (> 0; 1: plain comparison), by the normal approximation
 * of U with the tie correction (samples in one bucket are ties: each is
 * taken at its bucket's middle).  Returns 0, or -1 when either has no
 * sample or ratio is not positive (out is then zeroed, p = 1).
 */
int lat_rank_test(const struct lat_hist *a, const struct lat_hist *b, enum lat_kind kind,
		  double ratio, struct lat_rank *out);

#endif /* BATON_LATRANK_H */
