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
/* Client CIDR pins over all services. */
#ifndef MAX_PINS
#define MAX_PINS 4096
#endif

_Static_assert((MAX_VERSIONS & (MAX_VERSIONS - 1)) == 0, "MAX_VERSIONS must be a power of 2");

#define SLOTS_PER_GROUP (MAX_VERSIONS * MAX_INSTANCES)
#define SOCKARRAY_SIZE	(MAX_GROUPS * SLOTS_PER_GROUP)

/* Weights are basis points of new connections. */
#define WEIGHT_MAX 10000

/* Address families as the kernel numbers them (no libc here). */
#define STEER_AF_INET  2
#define STEER_AF_INET6 10

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
 * steer_service.flags: the service counts payload bytes per version
 * (byte-counts = yes): steer copies it into the connection's decision
 * (conn_owner.flags, the same bit, OWN_BYTES), so that track needs no
 * lookup to know.
 */
#define STEER_F_BYTES 0x1

/*
 * services: the whole steering policy of a service, replaced in one map
 * update (a no-prealloc hash, so readers see the old or the new value, never
 * a mix).  Weights of all slots add up to WEIGHT_MAX, or to 0 while nothing
 * is active.
 */
struct steer_service {
	__u32 mode;  /* enum steer_mode */
	__u32 flags; /* STEER_F_*; other bits 0 */
	struct steer_version v[MAX_VERSIONS];
};

/*
 * probes: the agent's own probe connection goes to one socket.  The key is
 * the probe's whole source, address and port, as the agent bound it (the
 * checked address, loopback for a wildcard): the port alone would also
 * catch any client whose ephemeral port happens to be the probe's.  The
 * address is the client as steer sees it: IPv4 (also an IPv4 client of a
 * dual-stack listener, ::ffff:a.b.c.d) in addr[0] with family
 * STEER_AF_INET, so an IPv6 address can never match an IPv4 one.
 */
struct steer_probe_key {
	__u32 group;
	__u16 family;  /* STEER_AF_INET or STEER_AF_INET6 */
	__u16 sport;   /* host byte order */
	__u32 addr[4]; /* network byte order; IPv4 in addr[0], the rest 0 */
};

struct steer_probe {
	__u32 vslot;
	__u32 instance;
};

/*
 * pins: client CIDR -> version, per service; longest prefix wins, and a pin
 * wins over the weights.  One LPM trie for all services and both families:
 * the service is the first 32 bits of the prefix (always matched whole), and
 * an IPv4 address is stored IPv4-mapped (::ffff:a.b.c.d), so an IPv4 /len
 * is a prefix of 32 + 96 + len bits and an IPv6 /len one of 32 + len bits.
 */
#define STEER_PIN_SERVICE_BITS	32
#define STEER_PIN_V4MAPPED_BITS 96
#define STEER_PIN_MAX_PREFIX	(STEER_PIN_SERVICE_BITS + 128)

struct steer_pin_key {
	__u32 prefixlen; /* bits of service + addr that must match */
	__u32 service;
	__u8 addr[16]; /* IPv6, or IPv4-mapped IPv6; network byte order */
};

struct steer_pin {
	__u32 version; /* version number as in steer_version.version, never 0 */
	__u32 flags;   /* reserved, 0 */
};

/*
 * extras: per service, how many probe pins and CIDR pins it has, so that
 * steer skips the probes and pins lookups of a service with none.  The agent
 * raises a count before it adds an entry and lowers it after it removed
 * one: a count may be high for a moment, never low.
 */
struct steer_extras {
	__u32 probes;
	__u32 pins;
};

/*
 * stats: per-CPU counters per group, for tests, status and metrics.  Only
 * SYNs and migrating requests count; other segments that reach steer (a
 * stray ACK, a SYN-cookie ACK) are steered but count nothing.
 */
struct steer_stats {
	__u64 selected; /* new connections placed by weight */
	__u64 probes;	/* agent probes placed on their pinned socket */
	__u64 migrated; /* requests of a closing listener placed on a live one */
	__u64 fallback; /* the chosen slot was empty; another live one was used */
	__u64 dropped;	/* no live socket for the service: SK_DROP */
	__u64 pinned;	/* placed by a CIDR pin (new or migrating; those also count in migrated) */
	/*
	 * A decision waiting for its handshake was replaced, because every way
	 * of its set held a younger one (a SYN flood, or more handshakes in
	 * flight than the table holds): that connection, if it completes, is
	 * not counted.
	 */
	__u64 evicted;
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
 *
 * The walk is in slot order and only slots with weight take a range, so
 * each version owns one interval of points, [sum of the weights of the
 * weighted slots before it, that + its weight).  With two versions sharing
 * WEIGHT_MAX, the first weighted slot owns [0, w) and the second [w,
 * WEIGHT_MAX): both ranges are anchored at an end.  Raising one version's
 * weight therefore only adds points to its range and never moves a point it
 * had, so in sticky mode a client that is in the canary at 5% is still in it
 * at 10%, and going back to 5% gives exactly the 5% set again.  Slots
 * without weight (draining, starting, empty) take no range and do not shift
 * the others.  This does not hold when a third weighted version sits between
 * two others; keep the walk in slot order and do not sort or rotate it.
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

static inline __u32 steer_rotl(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

/*
 * Sticky mode's point in 0..WEIGHT_MAX-1 for a client address (never its
 * port): murmur3's 32-bit body over the address words, then steer_mix().
 * family is STEER_AF_INET (address in addr[0]) or STEER_AF_INET6 (all 16
 * bytes); addresses in network byte order, as the kernel has them.  An
 * IPv4-mapped IPv6 client (::ffff:a.b.c.d on a dual-stack listener) is
 * passed as IPv4 so it hashes the same whichever socket it reaches.  The
 * point does not depend on the weights, which is what lets
 * steer_pick_version() keep canary clients in the canary as it grows.
 * Pure: user code and tests compute the same point as the program.
 */
static inline __u32 steer_addr_point(__u32 family, const __u32 addr[4])
{
	__u32 n = family == STEER_AF_INET6 ? 4 : 1;
	__u32 h = 0x6261746fU; /* seed: any constant, fixed forever (it decides who is canary) */
	__u32 i, k;

	for (i = 0; i < 4; i++) {
		if (i >= n)
			break;
		k = addr[i] * 0xcc9e2d51U;
		k = steer_rotl(k, 15) * 0x1b873593U;
		h ^= k;
		h = steer_rotl(h, 13) * 5 + 0xe6546b64U;
	}
	h ^= n * 4;
	return steer_mix(h) % WEIGHT_MAX;
}

/* The probes key of a connection from (family, addr, sport), as steer_probe_key says. */
static inline void steer_probe_key_init(struct steer_probe_key *k, __u32 group, __u32 family,
					const __u32 addr[4], __u16 sport)
{
	__u32 i;

	k->group = group;
	k->family = (__u16)family;
	k->sport = sport;
	for (i = 0; i < 4; i++)
		k->addr[i] = family == STEER_AF_INET && i ? 0 : addr[i];
}

/*
 * A pins key for an address and a prefix length in that family's bits
 * (0..32 for IPv4, 0..128 for IPv6).  To look a client up, pass the
 * family's full length.  Host bits are copied as given: the trie ignores
 * them in a lookup, user code rejects them in a pin.
 */
static inline void steer_pin_key_init(struct steer_pin_key *k, __u32 service, __u32 family,
				      const __u32 addr[4], __u32 len)
{
	const __u8 *b = (const __u8 *)addr;
	__u32 i;

	k->service = service;
	if (family == STEER_AF_INET) {
		for (i = 0; i < 10; i++)
			k->addr[i] = 0;
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		for (i = 0; i < 4; i++)
			k->addr[12 + i] = b[i];
		k->prefixlen = STEER_PIN_SERVICE_BITS + STEER_PIN_V4MAPPED_BITS + len;
		return;
	}
	for (i = 0; i < 16; i++)
		k->addr[i] = b[i];
	k->prefixlen = STEER_PIN_SERVICE_BITS + len;
}

#endif /* BATON_STEER_H */
