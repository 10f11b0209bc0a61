/* SPDX-License-Identifier: MIT */
/* Arithmetic of the latency histograms (include/latency.h): pure, unit-tested. */
#ifndef BATON_LATHIST_H
#define BATON_LATHIST_H

#include <stdbool.h>
#include <linux/types.h>

#include "latency.h"

/* One kind of a histogram in figures: samples, their mean and quantiles, in microseconds. */
struct lat_stats {
	__u64 n;
	__u64 mean_us;
	__u64 p50_us, p90_us, p99_us;
};

/* latview.c's view of one version (embedded in struct version). */
struct lat_view {
	bool have;			  /* cum was read at least once */
	struct lat_hist cum;		  /* since the version was registered, last read */
	struct lat_hist prev;		  /* cum at the start of the last display interval */
	struct lat_stats last[LAT_KINDS]; /* the last display interval (LAT_TICK_MS) */
	bool win_on;			  /* a gate window is open */
	long long win_t;		  /* ms: it opened */
	struct lat_hist base;		  /* cum when the gate window opened */
	int cmp_num;			  /* max-p99-ratio: the version compared with, 0: none */
	struct lat_hist cmp_base;	  /* its cum when the gate window opened */
};

/* Sum ncpu per-CPU values as a per-CPU map lookup returns them (one after the other). */
void lat_sum_cpus(struct lat_hist *out, const struct lat_hist *cpus, int ncpu);
/* out = now - then, bucket by bucket; a bucket that went down (a re-created entry) counts as now's.
 */
void lat_diff(struct lat_hist *out, const struct lat_hist *now, const struct lat_hist *then);
__u64 lat_count(const struct lat_hist *h, enum lat_kind kind);
/* Samples below bound_us, which must be a bucket bound (a power of two from LAT_SUB). */
__u64 lat_count_below(const struct lat_hist *h, enum lat_kind kind, __u64 bound_us);
/*
 * The q-quantile (0 < q <= 1) in microseconds: the bucket holding the
 * ceil(q * n)-th smallest sample, interpolated linearly inside it (samples
 * taken as spread evenly over the bucket); 0 with no samples.
 */
__u64 lat_quantile(const struct lat_hist *h, enum lat_kind kind, double q);
void lat_stats_of(const struct lat_hist *h, enum lat_kind kind, struct lat_stats *s);
/* "812 ms", "1.25 ms", "640 us": a duration of us microseconds, three figures. */
const char *lat_fmt(__u64 us, char *buf, int len);

#endif /* BATON_LATHIST_H */
