/* SPDX-License-Identifier: GPL-2.0 */
/*
 * steer: decides, for every new connection to a service's reuseport group,
 * which version and instance gets it, and where requests queued on a closing
 * listener go.  Attached per group with SO_ATTACH_REUSEPORT_EBPF and attach
 * type BPF_SK_REUSEPORT_SELECT_OR_MIGRATE.
 *
 * It always selects explicitly: SK_PASS without a selection would let the
 * kernel hash over every socket in the group, including ones baton has not
 * placed (a new version still starting, or a stray process's socket).
 */
/*
 * No CO-RE: steer reads only UAPI structs (sk_reuseport_md, bpf_sock: the
 * verifier rewrites context accesses, their layout is ABI) and packet bytes
 * (tcphdr: the wire format), so vmlinux.h's offsets hold on every kernel.
 * Without preserve_access_index the object has no CO-RE relocations and
 * libbpf does not read and parse the kernel's BTF (5.5 MB on 6.18) to load
 * it: that parse was most of an agent start's CPU time.
 */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "steer.h"
#include "conns.bpf.h"

#define AF_INET		2
#define AF_INET6	10
#define IPPROTO_TCP	6
#define TCP_ESTABLISHED 1
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD

char LICENSE[] SEC("license") = "GPL";

/* sockets: every listener baton placed, at steer_slot(group, vslot, instance); agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, SOCKARRAY_SIZE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sockets SEC(".maps");

/* groups: listen address -> service and group index; agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_GROUPS);
	__type(key, struct steer_group_key);
	__type(value, struct steer_group);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} groups SEC(".maps");

/* services: steering policy per service, replaced whole; agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct steer_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services SEC(".maps");

/*
 * probe_srcs: agent probe source address and port -> the one socket it checks;
 * agent writes.  (Named anew when its key became the whole source: an older
 * build's "probes" pin, keyed by port, is left alone, so the maps that did
 * not change are taken over across the upgrade.)
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PROBES);
	__type(key, struct steer_probe_key);
	__type(value, struct steer_probe);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} probe_srcs SEC(".maps");

/* pins: (service, client CIDR) -> version, longest prefix wins; agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_PINS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct steer_pin_key);
	__type(value, struct steer_pin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pins SEC(".maps");

/* extras: per service, whether it has probes and pins to look up at all; agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct steer_extras);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} extras SEC(".maps");

/* steer_stats: per-CPU decision counters per group; this program writes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_GROUPS);
	__type(key, __u32);
	__type(value, struct steer_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} steer_stats SEC(".maps");

static __always_inline int select_slot(struct sk_reuseport_md *md, __u32 group, __u32 vslot,
				       __u32 instance)
{
	__u32 key = steer_slot(group, vslot, instance);

	return bpf_sk_select_reuseport(md, &sockets, &key, 0);
}

/* select_instances(): the instance selected, and whether it was not the first choice. */
#define SEL_INST     0xff
#define SEL_FALLBACK 0x100

/*
 * Try the n instances of one version, starting at the one the hash names:
 * the instance selected, with SEL_FALLBACK when it is not that one (that
 * one was gone), or -1 when none is live.
 *
 * A global function on purpose, against the always_inline habit: the
 * verifier checks it once instead of at every call site.  Inlined, its loop
 * at the pin, weight and fallback call sites took the program past the
 * verifier's 1M-instruction limit (555k before pins; 34k processed now, and
 * loading takes 50 ms instead of 0.7 s).
 */
__noinline int select_instances(struct sk_reuseport_md *md, __u32 group, __u32 vslot, __u32 n,
				__u32 hash)
{
	__u32 first, i;

	if (vslot >= MAX_VERSIONS || !n || n > MAX_INSTANCES || group >= MAX_GROUPS)
		return -1;
	first = hash % n;
	for (i = 0; i < MAX_INSTANCES; i++) {
		__u32 inst;

		if (i >= n)
			break;
		inst = first + i;
		if (inst >= n)
			inst -= n;
		if (!select_slot(md, group, vslot, inst))
			return (int)inst | (i ? SEL_FALLBACK : 0);
	}
	return -1;
}

static __always_inline int select_version(struct sk_reuseport_md *md, __u32 group,
					  const struct steer_service *svc, __u32 vslot, __u32 hash)
{
	if (vslot >= MAX_VERSIONS)
		return -1;
	return select_instances(md, group, vslot, svc->v[vslot].instances, hash);
}

/* The 4-tuple of a migrating request or connection (src is the server side). */
static __always_inline void sock_key(struct bpf_sock *sk, struct conn_key *k)
{
	k->family = sk->family;
	k->lport = (__u16)sk->src_port;
	k->rport = bpf_ntohs((__u16)sk->dst_port);
	if (k->family == AF_INET) {
		k->laddr[0] = sk->src_ip4;
		k->raddr[0] = sk->dst_ip4;
	} else {
		k->laddr[0] = sk->src_ip6[0];
		k->laddr[1] = sk->src_ip6[1];
		k->laddr[2] = sk->src_ip6[2];
		k->laddr[3] = sk->src_ip6[3];
		k->raddr[0] = sk->dst_ip6[0];
		k->raddr[1] = sk->dst_ip6[1];
		k->raddr[2] = sk->dst_ip6[2];
		k->raddr[3] = sk->dst_ip6[3];
	}
}

/* What seg_key() says a segment is. */
enum seg_kind {
	SEG_SYN = 0,   /* a SYN that a listener turns into a new request */
	SEG_OTHER = 1, /* any other segment: steered, never recorded or counted */
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

static __always_inline int seg_kind(__u8 flags)
{
	flags &= TCP_FLAG_FIN | TCP_FLAG_SYN | TCP_FLAG_RST | TCP_FLAG_ACK;
	return flags == TCP_FLAG_SYN ? SEG_SYN : SEG_OTHER;
}

/*
 * The 4-tuple of a segment as a listener of family will see it, and whether
 * it opens a connection: SEG_SYN, SEG_OTHER, or -1 if it cannot be read.
 * The TCP header is at data (the kernel pulled it before the lookup), the
 * addresses are read from the IP header in one load.  The packet's own
 * protocol decides the header: a dual-stack IPv6 listener gets IPv4 SYNs,
 * and its connections see them IPv4-mapped (::ffff:a.b.c.d), as track does.
 *
 * Not only SYNs get here.  tcp_v4_rcv() and tcp_v6_rcv() try the
 * established hash first (requests in their handshake live there too), and
 * any segment that matches nothing goes to listener lookup, so through this
 * program: a stray or spoofed ACK, a late segment of a closed connection,
 * and with SYN cookies the client's final ACK, for which the kernel kept no
 * request.  That ACK is checked on, and its connection created in, the
 * listener this program selects (the kernel's select_reuseport selftest
 * counts a run for the SYN and one for the cookie ACK), so every segment is
 * steered as its SYN was: the same hash and policy pick the same socket.
 * Only a SYN without ACK, RST or FIN (what a listener turns into a request;
 * it ignores or resets the rest) may write a decision or a count; anything
 * else writing them would let an ACK spray evict real handshakes'
 * decisions.
 */
static __always_inline int seg_key(struct sk_reuseport_md *md, __u32 family, struct conn_key *k)
{
	struct tcphdr *th = md->data;
	__u8 flags;
	__u32 a[8];

	if (md->ip_protocol != IPPROTO_TCP || (void *)(th + 1) > md->data_end)
		return -1;
	/* The flags byte: FIN, SYN, RST, PSH, ACK, ... from the low bit. */
	flags = ((const __u8 *)th)[13];
	k->family = family;
	k->lport = bpf_ntohs(th->dest);
	k->rport = bpf_ntohs(th->source);
	if (md->eth_protocol == bpf_htons(ETH_P_IP)) {
		/* saddr, daddr */
		if (bpf_skb_load_bytes_relative(md, __builtin_offsetof(struct iphdr, saddr), a, 8,
						BPF_HDR_START_NET))
			return -1;
		if (family == AF_INET) {
			k->raddr[0] = a[0];
			k->laddr[0] = a[1];
			return seg_kind(flags);
		}
		k->raddr[2] = k->laddr[2] = bpf_htonl(0xffff);
		k->raddr[3] = a[0];
		k->laddr[3] = a[1];
		return seg_kind(flags);
	}
	if (md->eth_protocol != bpf_htons(ETH_P_IPV6) || family != AF_INET6)
		return -1;
	/* saddr, daddr */
	if (bpf_skb_load_bytes_relative(md, __builtin_offsetof(struct ipv6hdr, saddr), a, 32,
					BPF_HDR_START_NET))
		return -1;
	__builtin_memcpy(k->raddr, &a[0], 16);
	__builtin_memcpy(k->laddr, &a[4], 16);
	return seg_kind(flags);
}

/* A client's address: IPv4 in addr[0]; network byte order. */
struct client_addr {
	__u32 family;
	__u32 addr[4];
};

/*
 * The client of a connection: the remote end of its key.  An IPv4 client
 * seen through a dual-stack socket is the same client as over IPv4.
 */
static __always_inline int client_of(const struct conn_key *k, struct client_addr *c)
{
	if (k->family == AF_INET) {
		c->family = AF_INET;
		c->addr[0] = k->raddr[0];
		return 0;
	}
	if (k->family != AF_INET6)
		return -1;
	if (!k->raddr[0] && !k->raddr[1] && k->raddr[2] == bpf_htonl(0xffff)) {
		c->family = AF_INET;
		c->addr[0] = k->raddr[3];
		return 0;
	}
	c->family = AF_INET6;
	__builtin_memcpy(c->addr, k->raddr, 16);
	return 0;
}

/*
 * The version slot a CIDR pin sends this client to, or MAX_VERSIONS: no pin,
 * or its version is not in an ACTIVE slot (draining, starting, gone), in
 * which case the weights decide.  A pinned version may have weight 0.
 */
static __always_inline __u32 pinned_vslot(const struct steer_service *svc, __u32 service,
					  const struct client_addr *c)
{
	struct steer_pin_key k = {};
	struct steer_pin *pin;
	__u32 i;

	steer_pin_key_init(&k, service, c->family, c->addr, c->family == AF_INET ? 32 : 128);
	pin = bpf_map_lookup_elem(&pins, &k);
	if (!pin || !pin->version)
		return MAX_VERSIONS;
	for (i = 0; i < MAX_VERSIONS; i++)
		if (svc->v[i].version == pin->version && svc->v[i].state == VSTATE_ACTIVE)
			return i;
	return MAX_VERSIONS;
}

/*
 * selected: placed by the weights; pinned: placed by a CIDR pin; migrated:
 * every migrating request placed (by pin or weights); fallback: not on the
 * first choice.
 */
static __always_inline void count_placed(struct steer_stats *st, int migrating, int pinned,
					 int fallback)
{
	if (!st)
		return;
	if (migrating)
		st->migrated++;
	else if (!pinned)
		st->selected++;
	if (pinned)
		st->pinned++;
	if (fallback)
		st->fallback++;
}

/*
 * Remember who got the connection, for track.  A new connection's SYN, or a
 * request still in its handshake, gets a decision that track turns into a
 * count when the handshake completes; an established connection that moves
 * from a closing listener changes owner, and its count moves with it.
 */
static __always_inline void record(struct steer_stats *st, struct bpf_sock *msk,
				   const struct conn_key *k, __u32 service, __u32 version,
				   __u32 inst, __u8 flags)
{
	struct conn_owner own = {.service = (__u16)service,
				 .inst = (__u8)(inst + 1),
				 .flags = flags,
				 .version = version},
			  *cur, old;
	struct version_counts *c;

	if (!msk) {
		if (decision_put(k, &own) && st)
			st->evicted++;
		return;
	}
	cur = bpf_map_lookup_elem(&conns, k);
	if (!cur) {
		if (msk->state != TCP_ESTABLISHED && decision_put(k, &own) && st)
			st->evicted++;
		return;
	}
	if (cur->service == service && cur->version == version && cur->inst == own.inst)
		return;
	old = *cur;
	if (old.service == service && old.version == version) {
		/* Another instance of its own version (a retiring one's listener closed). */
		if (bpf_map_update_elem(&conns, k, &own, BPF_EXIST))
			return;
		inst_count(&own, 1);
		inst_count(&old, -1);
		return;
	}
	c = counts_of(&own);
	if (!c)
		return;
	if (bpf_map_update_elem(&conns, k, &own, BPF_EXIST))
		return;
	__sync_fetch_and_add(&c->live, 1);
	__sync_fetch_and_add(&c->migrated_in, 1);
	inst_count(&own, 1);
	inst_count(&old, -1);
	conn_leave(&old, 0);
}

/*
 * A segment other than a SYN only updates a decision its own SYN left: a
 * SYN-cookie ACK placed by a policy newer than its SYN's is counted for the
 * version that got it.  Out of line on purpose, against the always_inline
 * habit: such segments are rare, and inlined at each placement it added
 * some 500 instructions around the SYN path.
 */
static __noinline void refresh(const struct conn_key *k, __u32 service, __u32 version, __u32 inst,
			       __u8 flags)
{
	struct conn_owner own = {.service = (__u16)service,
				 .inst = (__u8)(inst + 1),
				 .flags = flags,
				 .version = version};

	decision_refresh(k, &own);
}

/*
 * Count a placement, and record it when the connection's 4-tuple is known;
 * for a segment that is not a SYN (st is NULL: it counts nothing) see
 * refresh().  The decision carries the service's OWN_* flags (byte-counts:
 * track gives the connection byte storage).
 */
static __always_inline void placed(struct steer_stats *st, struct bpf_sock *msk,
				   const struct conn_key *k, const struct steer_service *svc,
				   __u32 service, __u32 version, int pinned, int sel, int seg)
{
	__u32 inst = sel & SEL_INST;
	__u8 flags = svc->flags & OWN_BYTES;

	if (k->family) {
		if (seg == SEG_OTHER)
			refresh(k, service, version, inst, flags);
		else
			record(st, msk, k, service, version, inst, flags);
	}
	count_placed(st, msk != NULL, pinned, (sel & SEL_FALLBACK) != 0);
}

SEC("sk_reuseport/migrate")
int steer(struct sk_reuseport_md *md)
{
	struct steer_group_key gk = {};
	struct steer_group *gi;
	struct steer_service *svc;
	struct steer_extras *ex;
	struct steer_stats *st;
	struct bpf_sock *sk = md->sk;
	struct bpf_sock *msk = md->migrating_sk;
	struct client_addr cl = {};
	struct conn_key key = {};
	__u32 group, spread, point, vslot, i;
	int have_client, r, seg = SEG_SYN, pinned = 0;

	if (!sk)
		/* No listener to identify the group by; cannot happen for TCP.  Refuse. */
		return SK_DROP;
	gk.family = sk->family;
	gk.port = sk->src_port;
	/*
	 * A request still in its handshake migrates after its listener was
	 * closed, and a closed listener's port reads 0: the request's own local
	 * port is the service's port.
	 */
	if (msk) {
		gk.port = msk->src_port;
	} else if (!gk.port) {
		/*
		 * The listener this lookup picked was closed under it (a member
		 * that joined the group and left, a version's listener going):
		 * its port reads 0 until it is freed.  The segment's own
		 * destination port is the service's; without it the group is
		 * unknown and the client would be refused.
		 */
		struct tcphdr *th = md->data;

		if ((void *)(th + 1) <= md->data_end)
			gk.port = bpf_ntohs(th->dest);
	}
	if (gk.family == AF_INET) {
		gk.addr[0] = sk->src_ip4;
	} else {
		gk.addr[0] = sk->src_ip6[0];
		gk.addr[1] = sk->src_ip6[1];
		gk.addr[2] = sk->src_ip6[2];
		gk.addr[3] = sk->src_ip6[3];
	}
	gi = bpf_map_lookup_elem(&groups, &gk);
	if (!gi)
		/*
		 * A group baton does not know (the agent registers a group before
		 * attaching, so this is a broken setup).  Refuse rather than let
		 * the kernel hash onto sockets nobody placed: the client gets a
		 * RST, a migrating request is reset.
		 */
		return SK_DROP;
	group = gi->group;
	if (group >= MAX_GROUPS)
		return SK_DROP; /* corrupt entry; same reasoning as above */
	st = bpf_map_lookup_elem(&steer_stats, &group);

	svc = bpf_map_lookup_elem(&services, &gi->service);
	if (!svc)
		goto drop;

	/* No entry (a service id out of range) means: look everything up. */
	ex = bpf_map_lookup_elem(&extras, &gi->service);

	/* The connection's 4-tuple (family 0 when it cannot be read). */
	if (msk) {
		sock_key(msk, &key);
	} else {
		seg = seg_key(md, gk.family, &key);
		if (seg < 0)
			key.family = 0;
	}
	/* Not a new connection (see seg_key): steer it, count nothing. */
	if (seg == SEG_OTHER)
		st = NULL;

	have_client = key.family && !client_of(&key, &cl);

	if (!msk && have_client && (!ex || ex->probes)) {
		struct steer_probe_key pk;
		struct steer_probe *pt;

		steer_probe_key_init(&pk, group, cl.family, cl.addr, key.rport);
		pt = bpf_map_lookup_elem(&probe_srcs, &pk);

		if (pt) {
			if (pt->vslot < MAX_VERSIONS && pt->instance < MAX_INSTANCES &&
			    !select_slot(md, group, pt->vslot, pt->instance)) {
				if (st)
					st->probes++;
				/* The agent's probe reaches exactly the socket it checks. */
				return SK_PASS;
			}
			/*
			 * The probed socket is gone: the probe is refused rather than
			 * landing on another version and reporting it healthy.
			 */
			goto drop;
		}
	}

	spread = steer_mix(md->hash);

	if (have_client && (!ex || ex->pins)) {
		vslot = pinned_vslot(svc, gi->service, &cl);
		if (vslot < MAX_VERSIONS) {
			r = select_version(md, group, svc, vslot, spread / WEIGHT_MAX);
			if (r >= 0) {
				/* A live socket of this client's pinned version. */
				pinned = 1;
				goto place;
			}
			/* The pinned version has no live socket: the weights decide. */
		}
	}

	/*
	 * Sticky: the version is a function of the client address alone, so a
	 * client keeps its version over reconnects.  Per connection (or when
	 * the address cannot be read): a function of the connection hash.  The
	 * instance always comes from the connection hash, to spread a client's
	 * connections over the version's instances.
	 */
	if (svc->mode == STEER_STICKY && have_client)
		point = steer_addr_point(cl.family, cl.addr);
	else
		point = spread % WEIGHT_MAX;
	vslot = steer_pick_version(svc, point);
	r = select_version(md, group, svc, vslot, spread / WEIGHT_MAX);
	if (r >= 0)
		goto place; /* a live socket of the version the weights chose */

	/* That version has no live socket: any other version with weight. */
	for (i = 0; i < MAX_VERSIONS; i++) {
		if (i == vslot || svc->v[i].state != VSTATE_ACTIVE || !svc->v[i].weight)
			continue;
		r = select_version(md, group, svc, i, spread / WEIGHT_MAX);
		if (r >= 0) {
			/* A live socket of another active version. */
			vslot = i;
			r |= SEL_FALLBACK;
			goto place;
		}
	}
drop:
	if (st)
		st->dropped++;
	/*
	 * No live socket of an active version: nothing can serve this client.
	 * The kernel answers a SYN with RST (connection refused) and resets a
	 * migrating request.  The agent never leaves a service in this state
	 * while it runs a version; see tests/bpf/test_steer.c.
	 */
	return SK_DROP;
place:
	/*
	 * One place for the three placements above, so that the program holds
	 * one copy of the recording code, not one per placement.
	 */
	placed(st, msk, &key, svc, gi->service, svc->v[vslot & (MAX_VERSIONS - 1)].version, pinned,
	       r, seg);
	/* Selected a live socket of the version chosen above (pin, weights or fallback). */
	return SK_PASS;
}
