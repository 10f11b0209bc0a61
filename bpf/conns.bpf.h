/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps shared by steer and track.  Both objects define them identically and
 * pin them by name, so whichever loads first creates them and the other
 * reuses them.
 */
#ifndef BATON_CONNS_BPF_H
#define BATON_CONNS_BPF_H

#include "track.h"

/* decisions: 4-tuple -> version chosen for a SYN or a migrating request; steer writes, track moves
 * it to conns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_DECISIONS);
	__type(key, struct conn_key);
	__type(value, struct conn_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} decisions SEC(".maps");

/* conns: every live connection baton steered -> its version; track writes, steer updates on
 * migration. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conns SEC(".maps");

/* versions: live/accepted/closed/resets per (service, version); track and steer count, the agent
 * creates entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__type(key, struct version_key);
	__type(value, struct version_counts);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} versions SEC(".maps");

/* drain_watch: versions whose reaching zero the agent waits for; agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__type(key, struct version_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drain_watch SEC(".maps");

/* events: "version V of service S reached zero"; track and steer write, the agent reads. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

static __always_inline struct version_counts *counts_of(const struct conn_owner *o)
{
	struct version_key k = {.service = o->service, .version = o->version};

	return bpf_map_lookup_elem(&versions, &k);
}

static __always_inline int watched(const struct conn_owner *o)
{
	struct version_key k = {.service = o->service, .version = o->version};

	return bpf_map_lookup_elem(&drain_watch, &k) != NULL;
}

/* One connection left version o: count it, and report the version's last one. */
static __always_inline void conn_leave(const struct conn_owner *o, int closed)
{
	struct version_counts *c = counts_of(o);
	struct track_event *e;

	if (!c)
		return;
	if (closed)
		__sync_fetch_and_add(&c->closed, 1);
	if (__sync_fetch_and_add(&c->live, -1) != 1 || !watched(o))
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return; /* the agent re-reads live at its drain deadline */
	e->service = o->service;
	e->version = o->version;
	e->ktime_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
}

#endif /* BATON_CONNS_BPF_H */
