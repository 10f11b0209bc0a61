/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps shared by steer and track.  Both objects define them identically and
 * pin them by name, so whichever loads first creates them and the other
 * reuses them.
 */
#ifndef BATON_CONNS_BPF_H
#define BATON_CONNS_BPF_H

#include "track.h"

/*
 * decisions: the version steer chose for a SYN or a migrating request,
 * until track sees its handshake complete.  Set-associative tables indexed
 * by conn_hash() (include/track.h), the hot one first, written with
 * compare-and-swap: recording a decision is a few stores to one cache line
 * that is usually in the first-level cache, with no lock and no allocation.
 * steer writes, track takes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DECISION_HOT_SETS + DECISION_SETS);
	__type(key, __u32);
	__type(value, struct decision_set);
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

/*
 * inst_live: live connections per instance of each (service, version);
 * track and steer count, the agent creates entries.  Per-CPU, so that the
 * count of a connection is an uncontended add on the CPU that handles it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct version_key);
	__type(value, struct inst_counts);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} inst_live SEC(".maps");

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

/*
 * One connection of o's instance more (d = 1) or less (-1).  Atomic although
 * per-CPU: a softirq may run track on this CPU while a close in process
 * context is between the read and the write.
 */
static __always_inline void inst_count(const struct conn_owner *o, __s64 d)
{
	struct version_key k = {.service = o->service, .version = o->version};
	struct inst_counts *c;
	__u32 i = (__u32)o->inst - 1;

	if (i >= MAX_INSTANCES)
		return; /* inst 0: not known */
	c = bpf_map_lookup_elem(&inst_live, &k);
	if (c)
		__sync_fetch_and_add(&c->live[i], d);
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

/* Seconds, as decisions stamp them. */
static __always_inline __u16 decision_now(void)
{
	return (__u16)(bpf_ktime_get_coarse_ns() / 1000000000ULL);
}

/*
 * Put a decision (tag, its stamp, own) in the large table: a free way, a
 * stale one (older than DECISION_TTL_S), the connection's own, or else the
 * oldest.  Returns 1 when a pending decision of another connection was
 * replaced (or this one could not be stored): that connection will not be
 * counted.
 */
static __always_inline int decision_put_large(__u64 tag, __u16 stamp, const struct conn_owner *own,
					      __u16 now)
{
	__u32 idx = decision_large_set(tag), i, victim = 0, oldest = 0;
	__u64 mine = tag << 16 | stamp, cur;
	struct decision_set *set;
	struct decision *d;

	set = bpf_map_lookup_elem(&decisions, &idx);
	if (!set)
		return 1;
	for (i = 0; i < DECISION_WAYS; i++) {
		__u32 age;

		d = &set->way[i];
		cur = d->claim;
		age = (__u16)(now - DECISION_STAMP(cur));
		if (!cur || DECISION_TAG(cur) == tag || age > DECISION_TTL_S) {
			if (__sync_val_compare_and_swap(&d->claim, cur, mine) != cur)
				continue; /* another CPU took it: try the next way */
			d->owner = *own;
			return 0;
		}
		if (age >= oldest) {
			oldest = age;
			victim = i;
		}
	}
	/* Every way holds a handshake in flight younger than the TTL. */
	d = &set->way[victim & (DECISION_WAYS - 1)];
	cur = d->claim;
	if (__sync_val_compare_and_swap(&d->claim, cur, mine) == cur)
		d->owner = *own;
	return 1;
}

/*
 * Record that connection k goes to own: in its hot set (a free way, its
 * own, or one whose decision is DECISION_HOT_S old, which moves to the large
 * table), else in the large table.  Returns what decision_put_large() does.
 */
static __always_inline int decision_put(const struct conn_key *k, const struct conn_owner *own)
{
	__u16 now = decision_now();
	struct decision_set *set;
	struct conn_owner moved;
	struct decision *d;
	__u32 hot, i;
	__u64 tag, cur;

	conn_hash(k, &tag, &hot);
	set = bpf_map_lookup_elem(&decisions, &hot);
	if (!set)
		return 1;
	for (i = 0; i < DECISION_WAYS; i++) {
		d = &set->way[i];
		cur = d->claim;
		if (cur && DECISION_TAG(cur) != tag &&
		    (__u16)(now - DECISION_STAMP(cur)) < DECISION_HOT_S)
			continue;
		if (__sync_val_compare_and_swap(&d->claim, cur, tag << 16 | now) != cur)
			continue; /* another CPU took it: try the next way */
		moved = d->owner;
		d->owner = *own;
		if (!cur || DECISION_TAG(cur) == tag)
			return 0;
		/* A slow handshake's decision: keep it, in the large table. */
		return decision_put_large(DECISION_TAG(cur), DECISION_STAMP(cur), &moved, now);
	}
	return decision_put_large(tag, now, own, now);
}

/* Give tag's decision in set to own: 0, or -1 if set holds none. */
static __always_inline int decision_refresh_in(struct decision_set *set, __u64 tag,
					       const struct conn_owner *own)
{
	struct decision *d;
	__u32 i;
	__u64 cur;

	for (i = 0; i < DECISION_WAYS; i++) {
		d = &set->way[i];
		cur = d->claim;
		if (!cur || DECISION_TAG(cur) != tag)
			continue;
		/* Still its own (not evicted since the read): as decision_put, claim then owner. */
		if (__sync_val_compare_and_swap(&d->claim, cur, cur) != cur)
			return -1;
		d->owner = *own;
		return 0;
	}
	return -1;
}

/*
 * Give connection k's pending decision, if it has one, to own; never take a
 * way or change a stamp.  For segments that are not SYNs (steer's
 * seg_key()): a SYN-cookie ACK creates its connection on the listener it is
 * steered to now, which differs from its SYN's when the policy changed in
 * between; any other segment finds no decision, or one for its own 4-tuple
 * that gets the version a cookie ACK would get, and cannot evict another.
 */
static __always_inline void decision_refresh(const struct conn_key *k, const struct conn_owner *own)
{
	struct decision_set *set;
	__u32 hot, idx;
	__u64 tag;

	conn_hash(k, &tag, &hot);
	set = bpf_map_lookup_elem(&decisions, &hot);
	if (set && !decision_refresh_in(set, tag, own))
		return;
	idx = decision_large_set(tag);
	set = bpf_map_lookup_elem(&decisions, &idx);
	if (set)
		decision_refresh_in(set, tag, own);
}

/* Take a decision of tag from set: 0, or -1 if it holds none. */
static __always_inline int decision_take_from(struct decision_set *set, __u64 tag,
					      struct conn_owner *own)
{
	struct decision *d;
	__u32 i;
	__u64 cur;

	for (i = 0; i < DECISION_WAYS; i++) {
		d = &set->way[i];
		cur = d->claim;
		if (!cur || DECISION_TAG(cur) != tag)
			continue;
		*own = d->owner;
		/* Replaced meanwhile (evicted): the owner read may be another's. */
		return __sync_val_compare_and_swap(&d->claim, cur, 0) == cur ? 0 : -1;
	}
	return -1;
}

/* Take (read and free) connection k's decision: 0, or -1 if there is none. */
static __always_inline int decision_take(const struct conn_key *k, struct conn_owner *own)
{
	struct decision_set *set;
	__u32 hot, idx;
	__u64 tag;

	conn_hash(k, &tag, &hot);
	set = bpf_map_lookup_elem(&decisions, &hot);
	if (set && !decision_take_from(set, tag, own))
		return 0;
	idx = decision_large_set(tag);
	set = bpf_map_lookup_elem(&decisions, &idx);
	return set ? decision_take_from(set, tag, own) : -1;
}

#endif /* BATON_CONNS_BPF_H */
