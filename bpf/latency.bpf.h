/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps and helpers shared by track (sock_ops: creates a measured
 * connection's state) and latency (sees its segments in and out and its
 * accept).  Both objects define the maps identically and pin them by name.
 */
#ifndef BATON_LATENCY_BPF_H
#define BATON_LATENCY_BPF_H

#include "latency.h"
#include "track.h"

/* lat_socks: a counted connection's version and pending request time; track creates, both update.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct lat_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lat_socks SEC(".maps");

/* latency: per-CPU histograms of each (service, version); the agent creates entries. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__type(key, struct version_key);
	__type(value, struct lat_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} latency SEC(".maps");

/* One sample of ns for ls's version. */
static __always_inline void lat_record(const struct lat_sock *ls, __u32 kind, __u64 ns)
{
	struct version_key k = {.service = ls->service, .version = ls->version};
	struct lat_hist *h = bpf_map_lookup_elem(&latency, &k);
	__u64 us = ns / 1000;
	__u32 idx;

	if (!h)
		return; /* the agent does not measure this version (or forgot it) */
	idx = lat_bucket(us);
	/* Hide what the compiler knows of idx, so the bound the verifier needs stays. */
	asm volatile("" : "+r"(idx));
	if (idx >= LAT_BUCKETS || kind >= LAT_KINDS)
		return;
	/*
	 * Per-CPU; BPF programs run with migration disabled.  A softirq on
	 * this CPU may interrupt a process-context update of the same
	 * counter: atomic adds keep both.
	 */
	__sync_fetch_and_add(&h->bucket[kind][idx], 1);
	__sync_fetch_and_add(&h->sum_us[kind], us);
}

#endif /* BATON_LATENCY_BPF_H */
