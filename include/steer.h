/* SPDX-License-Identifier: MIT */
/*
 * ABI between bpf/steer.bpf.c and user/steer.c: map keys and values, limits
 * and constants.  Only __u8..__u64 here: this file is compiled by clang
 * -target bpf (against vmlinux.h) and by the host compiler (against
 * <linux/types.h>).
 */
#ifndef BATON_STEER_H
#define BATON_STEER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Listen addresses over all services; each is one reuseport group. */
#ifndef MAX_GROUPS
#define MAX_GROUPS 128
#endif
#ifndef MAX_SERVICES
#define MAX_SERVICES 64
#endif
/* Version slots per service: the active one, a canary, and those draining. */
#ifndef MAX_VERSIONS
#define MAX_VERSIONS 8
#endif
#ifndef MAX_INSTANCES
#define MAX_INSTANCES 32
#endif
/* Outstanding agent health/readiness probes (each pins one source port). */
#ifndef MAX_PROBES
#define MAX_PROBES 1024
#endif

_Static_assert((MAX_VERSIONS & (MAX_VERSIONS - 1)) == 0, "MAX_VERSIONS must be a power of 2");

#define SLOTS_PER_GROUP (MAX_VERSIONS * MAX_INSTANCES)
#define SOCKARRAY_SIZE	(MAX_GROUPS * SLOTS_PER_GROUP)

/* Weights are basis points of new connections. */
#define WEIGHT_MAX 10000

enum steer_mode {
	STEER_STICKY = 0,	  /* version is a function of the client address */
	STEER_PER_CONNECTION = 1, /* version is a function of the connection hash */
};

enum version_state {
	VSTATE_EMPTY = 0,    /* slot unused */
	VSTATE_STARTING = 1, /* sockets placed, not ready: probes only */
	VSTATE_ACTIVE = 2,   /* takes its weight of new connections */
	VSTATE_DRAINING = 3, /* weight 0; serves what it has, then exits */
};

/* groups: one reuseport group (a listen address), found from the listener. */
struct steer_group_key {
	__u16 family;  /* AF_INET or AF_INET6 */
	__u16 port;    /* host byte order */
	__u32 addr[4]; /* network byte order; IPv4 in addr[0]; zero when bound to any */
};

struct steer_group {
	__u32 service; /* key into services */
	__u32 group;   /* index of the group's block in sockets */
};

/* One version slot of a service. */
struct steer_version {
	__u32 version;	 /* version number shown to users (v1, v2, ...); 0 = slot unused */
	__u32 weight;	 /* basis points of new connections, 0..WEIGHT_MAX */
	__u32 instances; /* instances placed in sockets, 0..MAX_INSTANCES */
	__u32 state;	 /* enum version_state */
};

/*
 * services: the whole steering policy of a service, replaced in one map
 * update (a no-prealloc hash, so readers see the old or the new value, never
 * a mix).  Weights of all slots add up to WEIGHT_MAX, or to 0 while nothing
 * is active.
 */
struct steer_service {
	__u32 mode;  /* enum steer_mode */
	__u32 flags; /* reserved, 0 */
	struct steer_version v[MAX_VERSIONS];
};

/* probes: a connection from the agent's probe source port goes to one socket. */
struct steer_probe_key {
	__u32 group;
	__u16 sport; /* host byte order */
	__u16 pad;
};

struct steer_probe {
	__u32 vslot;
	__u32 instance;
};

/* stats: per-CPU counters per group, for tests, status and metrics. */
struct steer_stats {
	__u64 selected; /* new connections placed by weight */
	__u64 probes;	/* agent probes placed on their pinned socket */
	__u64 migrated; /* requests of a closing listener placed on a live one */
	__u64 fallback; /* the chosen slot was empty; another live one was used */
	__u64 dropped;	/* no live socket for the service: SK_DROP */
};

/* Index of one listening socket in the sockets map. */
static inline __u32 steer_slot(__u32 group, __u32 vslot, __u32 instance)
{
	return group * SLOTS_PER_GROUP + vslot * MAX_INSTANCES + instance;
}

/* Spread a 32-bit hash so that low and high bits both vary (murmur3 fmix32). */
static inline __u32 steer_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/*
 * Version slot for a point in 0..WEIGHT_MAX-1: walk the cumulative weights.
 * Returns MAX_VERSIONS when no slot has weight.
 */
static inline __u32 steer_pick_version(const struct steer_service *s, __u32 point)
{
	__u32 acc = 0;
	__u32 i;

	for (i = 0; i < MAX_VERSIONS; i++) {
		if (s->v[i].state != VSTATE_ACTIVE || !s->v[i].weight)
			continue;
		acc += s->v[i].weight;
		if (point < acc)
			return i;
	}
	return MAX_VERSIONS;
}

#endif /* BATON_STEER_H */
