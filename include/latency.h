/* SPDX-License-Identifier: MIT */
/*
 * ABI between bpf/latency.bpf.c, bpf/track.bpf.c and user/latency.c: what
 * each version's clients wait for, measured in the kernel on the
 * connections baton counts, in per-CPU log-linear histograms per version.
 *
 * Buckets are of microseconds: exact below LAT_SUB * 2, then LAT_SUB
 * buckets per power of two, each 1/LAT_SUB of its octave wide (12.5%), up
 * to LAT_BUCKETS - 1 which holds everything from about 134 s.  Pure
 * functions: the BPF side and the unit tests compute the same.
 */
#ifndef BATON_LATENCY_H
#define BATON_LATENCY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LAT_SUB_BITS 3
#define LAT_SUB	     (1U << LAT_SUB_BITS)
/* Octaves above the exact range: 2^(LAT_SUB_BITS + LAT_OCTAVES) us is the last bound. */
#define LAT_OCTAVES 24
#define LAT_BUCKETS (LAT_SUB * (LAT_OCTAVES + 1))

/* The two things measured. */
enum lat_kind {
	LAT_RESPONSE = 0, /* a request's first segment in to the first response segment out */
	LAT_ACCEPT = 1,	  /* handshake completed to accept() returning the connection */
	LAT_KINDS = 2,
};

/* latency: one version's histograms on one CPU (a per-CPU hash value). */
struct lat_hist {
	__u64 bucket[LAT_KINDS][LAT_BUCKETS];
	__u64 sum_us[LAT_KINDS]; /* sum of the samples, for a mean and Prometheus' _sum */
};

/*
 * lat_socks: per-socket state (socket-local storage) of one connection baton
 * counts; created by track at PASSIVE_ESTABLISHED.
 */
struct lat_sock {
	__u32 service;
	__u32 version;
	__u64 est_ns; /* handshake completed; 0 once accepted */
	__u64 req_ns; /* a request arrived and no response segment left yet; 0: none pending */
};

/* Position of the highest set bit of x (x > 0), without a loop or a clz the BPF ISA lacks. */
static inline __u32 lat_msb(__u64 x)
{
	__u32 r = 0;

	if (x >> 32) {
		x >>= 32;
		r += 32;
	}
	if (x >> 16) {
		x >>= 16;
		r += 16;
	}
	if (x >> 8) {
		x >>= 8;
		r += 8;
	}
	if (x >> 4) {
		x >>= 4;
		r += 4;
	}
	if (x >> 2) {
		x >>= 2;
		r += 2;
	}
	if (x >> 1)
		r += 1;
	return r;
}

/* The bucket of a sample of us microseconds. */
static inline __u32 lat_bucket(__u64 us)
{
	__u32 e, idx;

	if (us < LAT_SUB)
		return (__u32)us;
	e = lat_msb(us); /* >= LAT_SUB_BITS */
	if (e >= LAT_SUB_BITS + LAT_OCTAVES)
		return LAT_BUCKETS - 1;
	idx = (e - LAT_SUB_BITS) * LAT_SUB + (__u32)(us >> (e - LAT_SUB_BITS));
	return idx < LAT_BUCKETS ? idx : LAT_BUCKETS - 1;
}

/* The smallest value (us) bucket idx holds. */
static inline __u64 lat_lower(__u32 idx)
{
	__u32 g = idx / LAT_SUB, m = idx % LAT_SUB;

	if (g == 0)
		return idx;
	return (__u64)(LAT_SUB + m) << (g - 1);
}

/* One past the largest value (us) bucket idx holds; the last bucket has no bound. */
static inline __u64 lat_upper(__u32 idx)
{
	return idx + 1 < LAT_BUCKETS ? lat_lower(idx + 1) : ~0ULL;
}

#endif /* BATON_LATENCY_H */
