/* SPDX-License-Identifier: MIT */
/*
 * ABI between bpf/track.bpf.c (sock_ops), bpf/steer.bpf.c and user/track.c:
 * per-connection attribution and per-version connection counts.
 */
#ifndef BATON_TRACK_H
#define BATON_TRACK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "steer.h"

/* Connections tracked at once (exact map: one entry per live connection). */
#ifndef MAX_CONNS
#define MAX_CONNS 262144
#endif
/*
 * Steering decisions waiting for their handshake to complete: a small hot
 * table of DECISION_HOT_SETS sets (16 KiB, so it stays in the first-level
 * cache) in front of a large one of DECISION_SETS sets, each set one cache
 * line of DECISION_WAYS decisions.  A decision goes to the hot table; one
 * that waited there DECISION_HOT_S or more moves to the large table when its
 * way is needed, and a new decision also goes there when its hot set is full
 * of younger ones.  In the large table a decision older than DECISION_TTL_S
 * may be taken over (its handshake never completed); when every way of a
 * set holds a younger one, the oldest is replaced and counted as evicted.
 */
#define DECISION_HOT_SETS 256
#ifndef DECISION_SETS
#define DECISION_SETS 16384
#endif
#define DECISION_WAYS  4
#define DECISION_HOT_S 2
#define DECISION_TTL_S 120

/* (service, version) pairs with counters. */
#ifndef MAX_TRACKED_VERSIONS
#define MAX_TRACKED_VERSIONS 1024
#endif

/* A TCP connection as the server sees it. */
struct conn_key {
	__u32 family;	/* AF_INET or AF_INET6 */
	__u16 lport;	/* host byte order, the service's port */
	__u16 rport;	/* host byte order, the client's port */
	__u32 laddr[4]; /* network byte order; IPv4 in [0] */
	__u32 raddr[4];
};

/*
 * Who a connection belongs to: its version, and the instance whose listener
 * steer placed it on (its slot in the version's block of the sockets map).
 * inst is that instance + 1; 0 means not known, and such a connection is
 * counted for its version only.  An older build wrote service as 32 bits
 * (always below MAX_SERVICES): its entries read as inst 0 here, so the
 * layout, and the pinned maps holding it, stay compatible.
 */
struct conn_owner {
	__u16 service;
	__u8 inst;  /* instance + 1; 0: not known */
	__u8 flags; /* OWN_*, from the service's policy when steer decided; older builds wrote 0 */
	__u32 version;
};

/* conn_owner.flags: the service counts payload bytes (byte-counts; include/bytes.h). */
#define OWN_BYTES 0x1

_Static_assert(sizeof(struct conn_owner) == 8, "conn_owner keeps its size: pinned maps hold it");
_Static_assert(MAX_SERVICES <= 0xffff && MAX_INSTANCES < 0xff, "conn_owner's fields hold them");

/*
 * decisions: one way of a set.  claim is changed only by compare-and-swap:
 * the connection's 48-bit tag (conn_hash(), never 0) above the decision's
 * time in seconds (CLOCK_MONOTONIC, coarse, low 16 bits); 0 = free.  The
 * owner is written after a claim and read before a release, which cannot
 * race for one connection: track reads it a round trip after steer wrote it.
 */
struct decision {
	__u64 claim;
	struct conn_owner owner;
};

struct decision_set {
	struct decision way[DECISION_WAYS];
};

_Static_assert(sizeof(struct decision_set) == 64, "a decision set is one cache line");

#define DECISION_TAG(claim)   ((claim) >> 16)
#define DECISION_STAMP(claim) ((__u16)(claim))

/*
 * Where a connection's decision lives: its 48-bit tag and its hot set, from
 * two independent hashes of the 4-tuple (murmur3's 32-bit body with two
 * seeds); its large set is decision_large_set(tag).  Pure: steer, track and
 * tests compute the same.
 */
/*
 * The key is hashed as 32-bit words, but written as __u16 ports: without
 * may_alias, type-based alias analysis lets an inlined hash read the words
 * before the port stores (gcc -O2 did, in a test: every key hashed alike).
 */
typedef __u32 __attribute__((__may_alias__)) conn_word;

static inline void conn_hash(const struct conn_key *k, __u64 *tag, __u32 *hot)
{
	const conn_word *w = (const conn_word *)k;
	__u32 a = 0x6465636aU, b = 0x73696f6eU; /* seeds: any two different constants */
	__u32 i, x;

	for (i = 0; i < sizeof(*k) / 4; i++) {
		x = steer_rotl(w[i] * 0xcc9e2d51U, 15) * 0x1b873593U;
		a = steer_rotl(a ^ x, 13) * 5 + 0xe6546b64U;
		b = steer_rotl(b ^ x, 17) * 5 + 0x561ccd1bU;
	}
	a = steer_mix(a ^ sizeof(*k));
	b = steer_mix(b ^ sizeof(*k));
	*tag = ((__u64)b << 16 | (a & 0xffff)) | 1;
	*hot = (a >> 16) % DECISION_HOT_SETS;
}

/* Index of a tag's set in the large table (after the hot one, in one map). */
static inline __u32 decision_large_set(__u64 tag)
{
	return DECISION_HOT_SETS + (__u32)(tag >> 16) % DECISION_SETS;
}

/* versions: counters of one version of one service. */
struct version_key {
	__u32 service;
	__u32 version;
};

struct version_counts {
	__s64 live;	   /* connections established and not yet closed (accepted or queued) */
	__u64 accepted;	   /* connections established in total (handshake completed) */
	__u64 closed;	   /* connections closed in total */
	__u64 migrated_in; /* connections moved here from a closing listener */
	/*
	 * Connections this version's side aborted: it sent a RST (closed with
	 * unread data, SO_LINGER {1, 0}, a closing listener's unaccepted
	 * queue, ...).  Not resets received from clients, not timeouts, and
	 * not baton's own drain-reset (SOCK_DESTROY).  Each is also in closed.
	 */
	__u64 resets;
	/*
	 * Connections closed by the kernel because the process holding them
	 * exited (crash, kill -9, exit without closing them): the exit closed
	 * a connection that was still ESTABLISHED or CLOSE_WAIT.  Connections
	 * the process closed itself before it died are not counted; each is
	 * counted once, and is also in closed when it reaches TCP_CLOSE.
	 * Appended last: older fields keep their offsets.
	 */
	__u64 lost;
};

/*
 * inst_live: per (service, version), the live connections of each instance
 * (per-CPU: a connection counted up on one CPU may be counted down on
 * another, so only the sum over CPUs means anything).  Counted as live is
 * in version_counts: up when the handshake completes, down at close, and
 * moved to the instance a closing listener's queued connection migrates
 * to.  Connections whose instance is not known (conn_owner.inst 0) are not
 * in it.
 */
struct inst_counts {
	__s64 live[MAX_INSTANCES];
};

/* Ring buffer record: live of (service, version) reached 0 while in drain_watch. */
struct track_event {
	__u32 service;
	__u32 version;
	__u64 ktime_ns; /* bpf_ktime_get_ns() at the close that reached zero */
};

#endif /* BATON_TRACK_H */
