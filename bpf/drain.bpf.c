/* SPDX-License-Identifier: GPL-2.0 */
/*
 * drain: the kernel-assisted HTTP drain (drain-http = close).
 *
 * drain_join (iter/tcp) walks the agent's network namespace and puts every
 * established connection whose version (track's `conns`) is in
 * drain_versions into drain_socks, a sockhash; a connection whose version
 * left drain_versions (rolled back into service) is taken out again.
 * With sticky steering and drain-http, a connection of a version with
 * weight joins too when its client now maps to another version (steer's
 * pure functions over its policy and pins: drain_resteer), so a canary's
 * keep-alive clients follow the weights after one response; it leaves when
 * its client maps back.  A connection of one instance in drain_insts joins
 * too (a rolling rollout retired that instance while its version serves on
 * through the others: conns' owner names the instance), and leaves if the
 * instance serves again.  Nothing else ever joins the sockhash: other
 * connections never run drain_msg, and keep exactly their usual send path.
 *
 * drain_msg (sk_msg, the sockhash's verdict program) sees every sendmsg,
 * writev and sendfile page of those connections.  A write is the first of a
 * response when the client sent bytes since the last response began (tcp
 * bytes_received moved) and it starts with "HTTP/1.".  Then:
 *   - 101 (an upgrade) or a head that already says Connection: close:
 *     untouched, and the connection is left alone from then on;
 *   - Connection: keep-alive: rewritten in place to "close     " (trailing
 *     spaces are optional whitespace; the length stays);
 *   - otherwise "Connection: close\r\n" is inserted after the status line
 *     (bpf_msg_push_data).
 * A head that continues in later writes is scanned there too (a keep-alive
 * token is rewritten in place), until its blank line.  After that the
 * connection is done: later writes (the body, and whatever it contains)
 * pass untouched.  Writes that are not a response's first (a body, a chunk
 * that happens to begin with "HTTP/1.1 200") are never parsed: no request
 * bytes arrived since the response began.
 *
 * Needs Linux 6.0 or later: iter/tcp takes each socket's lock with
 * lock_sock() there (5.15-5.19 held the spinlock, under which a sockhash
 * update would deadlock), bpf_loop (5.17), sk_storage from iterators (5.11)
 * and sk_msg (5.8).  No kfuncs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "drain.h"

#define AF_INET		2
#define AF_INET6	10
#define TCP_ESTABLISHED 1

char LICENSE[] SEC("license") = "GPL";

/* conns: track's per-connection owner (pinned, shared; see bpf/conns.bpf.h); read here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conns SEC(".maps");

/* drain_versions: versions drained with drain-http -> their stats; the agent adds/removes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__type(key, struct version_key);
	__type(value, struct drain_stats);
} drain_versions SEC(".maps");

/*
 * drain_insts: single instances drained with drain-http while their version
 * serves on (rolling rollouts) -> their stats; the agent adds and removes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DRAIN_MAX_INSTS);
	__type(key, struct drain_inst_key);
	__type(value, struct drain_stats);
} drain_insts SEC(".maps");

/*
 * steer's policy, pins and their counts (pinned, shared; see bpf/steer.bpf.c):
 * read here to tell where a client maps now.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct steer_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_PINS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct steer_pin_key);
	__type(value, struct steer_pin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct steer_extras);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} extras SEC(".maps");

/*
 * drain_resteer: services (sticky, drain-http) whose connections are asked
 * to close when their client now maps to another version -> their stats;
 * the agent adds and removes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct drain_stats);
} drain_resteer SEC(".maps");

/*
 * http_versions: versions under analysis with measure-http -> their status
 * class counts; the agent adds and removes, drain_msg counts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__type(key, struct version_key);
	__type(value, struct http_counts);
} http_versions SEC(".maps");

/* drain_socks: the connections drain_msg runs on; drain_join adds and removes. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, DRAIN_MAX_SOCKS);
	__type(key, struct conn_key);
	__type(value, __u64);
} drain_socks SEC(".maps");

/* drain_skst: each joined connection's state; freed with its socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct drain_sk);
} drain_skst SEC(".maps");

/*
 * scratch: a copy of the bytes being scanned and the scan's state (per CPU);
 * drain_msg writes and reads.  The state is here, not on the stack: older
 * verifiers (6.1's) follow a bpf_loop callback once, so they take a stack
 * copy's fields for the values one call can leave there (the Connection
 * flags still 0) and remove the code that reads other values as dead (seen
 * on 6.1: every keep-alive response got a second Connection header).  No
 * verifier assumes what a map value holds.
 */
struct drain_buf {
	__u8 b[DRAIN_SCAN_MAX];
	struct drain_scan s;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drain_buf);
} scratch SEC(".maps");

/* ---- joining and leaving: iter/tcp --------------------------------------------------- */

static __always_inline int key_of(const struct sock_common *skc, struct conn_key *k)
{
	k->family = skc->skc_family;
	k->lport = skc->skc_num;
	k->rport = bpf_ntohs(skc->skc_dport);
	if (k->family == AF_INET) {
		k->laddr[0] = skc->skc_rcv_saddr;
		k->raddr[0] = skc->skc_daddr;
		return 0;
	}
	if (k->family == AF_INET6) {
		k->laddr[0] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		k->laddr[1] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		k->laddr[2] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		k->laddr[3] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		k->raddr[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		k->raddr[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		k->raddr[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		k->raddr[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
		return 0;
	}
	return -1;
}

/*
 * The version a connection's client maps to now, if its service re-steers
 * (drain_resteer) in sticky mode: a CIDR pin's, else the weights'.  0: do
 * not ask (not re-steered, per-connection mode, no version with weight).
 */
static __always_inline __u32 maps_to(const struct conn_key *k, __u32 service)
{
	struct steer_service *pol;
	struct steer_extras *ex;
	struct steer_pin_key pk;
	struct steer_pin *pin;
	__u32 sfamily, addr[4];

	if (!bpf_map_lookup_elem(&drain_resteer, &service))
		return 0;
	pol = bpf_map_lookup_elem(&services, &service);
	if (!pol || pol->mode != STEER_STICKY)
		return 0;
	ex = bpf_map_lookup_elem(&extras, &service);
	if (ex && ex->pins) {
		drain_client_addr(k->family, k->raddr, &sfamily, addr);
		steer_pin_key_init(&pk, service, sfamily, addr,
				   sfamily == STEER_AF_INET ? 32 : 128);
		pin = bpf_map_lookup_elem(&pins, &pk);
		if (pin)
			return pin->version;
	}
	return drain_sticky_version(pol, k->family, k->raddr);
}

/* The stats of one instance's drain, or NULL when it is not drained (inst as conn_owner's). */
static __always_inline struct drain_stats *inst_drain(__u32 service, __u32 version, __u32 inst)
{
	struct drain_inst_key ik = {.service = service, .version = version, .inst = inst};

	if (!inst)
		return NULL; /* instance not known: only its version's drain can ask it */
	return bpf_map_lookup_elem(&drain_insts, &ik);
}

SEC("iter/tcp")
int drain_join(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct version_key vk = {};
	struct conn_key k = {};
	struct drain_stats *ds = NULL;
	struct http_counts *hs = NULL;
	struct conn_owner *o;
	struct tcp_sock *tp;
	struct drain_sk *st;
	__u32 to, why = DW_DRAIN;
	__u8 one = 1;

	if (!skc || skc->skc_state != TCP_ESTABLISHED)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	if (key_of(skc, &k))
		return 0;
	st = bpf_sk_storage_get(&drain_skst, tp, 0, 0);
	if (st) {
		vk.service = st->service;
		vk.version = st->version;
		if (bpf_map_lookup_elem(&drain_versions, &vk)) {
			st->why = DW_DRAIN;
			return 0; /* joined, and its version still drains */
		}
		if (st->why == DW_INST && inst_drain(st->service, st->version, st->inst))
			return 0; /* joined, and its instance still drains */
		to = maps_to(&k, st->service);
		if (st->why == DW_RESTEER && to && to != st->version)
			return 0; /* its client still maps elsewhere */
		if (st->why == DW_MEASURE && to && to != st->version) {
			/* Measured, and now its client maps elsewhere: asked to close too. */
			ds = bpf_map_lookup_elem(&drain_resteer, &vk.service);
			if (ds) {
				st->why = DW_RESTEER;
				__sync_fetch_and_add(&ds->joined, 1);
			}
			return 0;
		}
		if (st->why == DW_MEASURE) {
			/* Measured, and now its instance leaves (rolling): asked to close too. */
			ds = inst_drain(st->service, st->version, st->inst);
			if (ds) {
				st->why = DW_INST;
				__sync_fetch_and_add(&ds->joined, 1);
				return 0;
			}
		}
		if (bpf_map_lookup_elem(&http_versions, &vk)) {
			st->why = DW_MEASURE;
			return 0; /* its version is still under analysis */
		}
		/*
		 * Its version is back in service, or its client maps to it again:
		 * nothing of the drain stays on it.
		 */
		bpf_map_delete_elem(&drain_socks, &k);
		bpf_sk_storage_delete(&drain_skst, tp);
		/* One byte out per socket changed: the reader's buffer bounds a batch. */
		bpf_seq_write(seq, &one, 1);
		return 0;
	}
	o = bpf_map_lookup_elem(&conns, &k);
	if (!o)
		return 0; /* not a connection baton counts */
	vk.service = o->service;
	vk.version = o->version;
	ds = bpf_map_lookup_elem(&drain_versions, &vk);
	if (!ds) {
		ds = inst_drain(o->service, o->version, o->inst);
		if (ds)
			why = DW_INST;
	}
	if (!ds) {
		to = maps_to(&k, o->service);
		if (to && to != o->version) {
			ds = bpf_map_lookup_elem(&drain_resteer, &vk.service);
			why = DW_RESTEER;
		}
	}
	if (!ds) {
		hs = bpf_map_lookup_elem(&http_versions, &vk);
		if (!hs)
			return 0; /* not drained, its client stays on its version, not measured */
		why = DW_MEASURE;
	}
	st = bpf_sk_storage_get(&drain_skst, tp, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	/* A response under way now is not a new one: only a request after this starts one. */
	st->rx_mark = tp->bytes_received;
	st->state = DS_WAIT;
	st->flags = 0;
	st->service = o->service;
	st->version = o->version;
	st->why = why;
	st->inst = o->inst;
	st->sl_len = 0;
	st->sl_on = 0;
	if (bpf_map_update_elem(&drain_socks, &k, tp, BPF_NOEXIST)) {
		bpf_sk_storage_delete(&drain_skst, tp);
		return 0; /* sockhash full, or not a socket it takes: drained as without drain-http
			   */
	}
	if (ds)
		__sync_fetch_and_add(&ds->joined, 1);
	else if (hs)
		__sync_fetch_and_add(&hs->joined, 1);
	bpf_seq_write(seq, &one, 1);
	return 0;
}

/* ---- joining at the handshake: sock_ops (measure-http) ------------------------------- */

/* The agent's network namespace (SO_NETNS_COOKIE); set before load. */
const volatile __u64 netns_cookie = 0;

/*
 * http_est: a connection of a measured version joins when its handshake
 * completes, so that every response it carries is counted, also on
 * connections shorter than the gap between two passes of drain_join.  It
 * runs after track (attached later to the same cgroups), which has put the
 * connection's owner in conns by then; a connection it misses joins at the
 * next pass, counted from its next request.
 */
SEC("sockops")
int http_est(struct bpf_sock_ops *skops)
{
	struct version_key vk = {};
	struct conn_key k = {};
	struct http_counts *hs;
	struct conn_owner *o;
	struct drain_sk *st;
	struct bpf_sock *sk;

	/* sock_ops: 1 lets the socket proceed; this program only joins connections. */
	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (netns_cookie && bpf_get_netns_cookie(skops) != netns_cookie)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	k.family = skops->family;
	k.lport = (__u16)skops->local_port;
	k.rport = (__u16)bpf_ntohl(skops->remote_port);
	if (k.family == AF_INET) {
		k.laddr[0] = skops->local_ip4;
		k.raddr[0] = skops->remote_ip4;
	} else if (k.family == AF_INET6) {
		k.laddr[0] = skops->local_ip6[0];
		k.laddr[1] = skops->local_ip6[1];
		k.laddr[2] = skops->local_ip6[2];
		k.laddr[3] = skops->local_ip6[3];
		k.raddr[0] = skops->remote_ip6[0];
		k.raddr[1] = skops->remote_ip6[1];
		k.raddr[2] = skops->remote_ip6[2];
		k.raddr[3] = skops->remote_ip6[3];
	} else {
		return 1;
	}
	o = bpf_map_lookup_elem(&conns, &k);
	if (!o)
		return 1; /* not a connection baton counts */
	vk.service = o->service;
	vk.version = o->version;
	hs = bpf_map_lookup_elem(&http_versions, &vk);
	if (!hs)
		return 1; /* its version is not under analysis: its send path stays plain */
	st = bpf_sk_storage_get(&drain_skst, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 1;
	/* Nothing was sent yet: the first request starts the first response. */
	st->rx_mark = skops->bytes_received;
	st->state = DS_WAIT;
	st->flags = 0;
	st->service = o->service;
	st->version = o->version;
	st->why = DW_MEASURE;
	st->inst = o->inst;
	st->sl_len = 0;
	st->sl_on = 0;
	if (bpf_sock_hash_update(skops, &drain_socks, &k, BPF_NOEXIST)) {
		bpf_sk_storage_delete(&drain_skst, sk);
		return 1; /* sockhash full: this connection is not measured */
	}
	__sync_fetch_and_add(&hs->joined, 1);
	return 1;
}

/* ---- the rewrite: sk_msg ------------------------------------------------------------- */

static long scan_byte(__u64 i, void *ctx)
{
	struct drain_buf *b;
	__u32 z = 0;

	(void)ctx;
	b = bpf_map_lookup_elem(&scratch, &z);
	if (!b)
		return 1;
	return drain_scan_step(&b->s, (__u32)i, b->b[i & (DRAIN_SCAN_MAX - 1)]);
}

/* Rewrite a keep-alive token at off to "close" and five spaces, after checking it is one. */
static __always_inline int rewrite_keepalive(struct sk_msg_md *msg, __u32 off)
{
	__u8 *p = (__u8 *)(long)msg->data;
	void *end = (void *)(long)msg->data_end;
	int i;

	p += off & (DRAIN_SCAN_MAX - 1);
	if ((void *)(p + 10) > end)
		return -1;
	for (i = 0; i < 10; i++)
		if (drain_lower(p[i]) != drain_char(DRAIN_KA_LO, DRAIN_KA_HI, i))
			return -1; /* the scratch copy was not this write's: leave it */
	for (i = 0; i < 10; i++)
		p[i] = i < 5 ? drain_char(DRAIN_CLOSE_LO, 0, i) : ' ';
	return 0;
}

/* Insert DRAIN_HDR at off, the end of the status line (checked: a LF before it). */
static __always_inline int insert_close(struct sk_msg_md *msg, __u32 off)
{
	/* DRAIN_HDR, "Connection: close\r\n", in words */
	const __u64 h0 = DRAIN_W('C', 'o', 'n', 'n', 'e', 'c', 't', 'i');
	const __u64 h1 = DRAIN_W('o', 'n', ':', ' ', 'c', 'l', 'o', 's');
	const __u64 h2 = DRAIN_W('e', '\r', '\n', 0, 0, 0, 0, 0);
	__u8 *p = (__u8 *)(long)msg->data;
	void *end = (void *)(long)msg->data_end;
	__u32 idx;
	__u8 *lf;
	int i;

	off &= DRAIN_SCAN_MAX - 1;
	if (!off)
		return -1;
	/*
	 * 6.1's verifier loses the bound of a 32-bit "off - 1" (it tracks no
	 * subregister ranges through the add): mask it again where it cannot
	 * be folded away.
	 */
	idx = off - 1;
	asm volatile("%[i] &= %[m]" : [i] "+r"(idx) : [m] "i"(DRAIN_SCAN_MAX - 1));
	lf = p + idx;
	if ((void *)(lf + 1) > end || *lf != '\n')
		return -1;
	if (bpf_msg_push_data(msg, off, DRAIN_HDR_LEN, 0))
		return -1;
	if (bpf_msg_pull_data(msg, off, off + DRAIN_HDR_LEN, 0))
		goto undo;
	p = (__u8 *)(long)msg->data;
	end = (void *)(long)msg->data_end;
	if ((void *)(p + DRAIN_HDR_LEN) > end)
		goto undo;
	for (i = 0; i < DRAIN_HDR_LEN; i++)
		p[i] = i < 16 ? drain_char(h0, h1, i) : drain_char(h2, 0, i - 16);
	return 0;
undo:
	/* Never send the pushed bytes unwritten. */
	bpf_msg_pop_data(msg, off, DRAIN_HDR_LEN, 0);
	return -1;
}

static __always_inline int is_status_line(const __u8 *b)
{
	return b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' && b[4] == '/' &&
	       b[5] == '1' && b[6] == '.';
}

/*
 * measure-http: take this write's first bytes (n of them in b) into the
 * status line under way; once its class is known, count it.  A status line
 * split over writes is put together here (st->sl), up to HTTP_SL_LEN bytes.
 */
static __always_inline void http_collect(struct drain_sk *st, struct http_counts *hs, const __u8 *b,
					 __u32 n)
{
	__u32 i, idx;
	int cls;

	for (i = 0; i < HTTP_SL_LEN; i++) {
		if (i >= n || st->sl_len >= HTTP_SL_LEN)
			break;
		idx = st->sl_len;
		/* The compiler drops a mask it can prove idle; the verifier cannot prove it. */
		asm volatile("%[i] &= 15" : [i] "+r"(idx));
		st->sl[idx] = b[i];
		st->sl_len++;
	}
	cls = http_status_class(st->sl, st->sl_len);
	if (cls < 0)
		return; /* the status line goes on in the next write */
	st->sl_on = 0;
	idx = (__u32)cls;
	/* Hide what the compiler knows of idx, so the bound the verifier needs stays. */
	asm volatile("" : "+r"(idx));
	if (idx >= HC_COUNT)
		return;
	__sync_fetch_and_add(&hs->n[idx], 1);
	/* 101: no longer HTTP.  Drained connections see the same in the rewrite below. */
	if (st->sl[9] == '1' && st->sl[10] == '0' && st->sl[11] == '1')
		st->state = DS_DONE;
}

SEC("sk_msg")
int drain_msg(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	struct version_key vk = {};
	struct drain_stats *ds;
	struct http_counts *hs;
	struct drain_scan s;
	struct drain_buf *b;
	struct tcp_sock *tp;
	struct drain_sk *st;
	bool first, rewrote = false;
	__u32 n, z = 0;

	/* Every verdict here is SK_PASS: the program edits a response, it never drops one. */
	if (!sk)
		return SK_PASS;
	st = bpf_sk_storage_get(&drain_skst, sk, 0, 0);
	if (!st || st->state == DS_DONE)
		return SK_PASS; /* left alone: done, upgraded, or not (or no longer) drained */
	vk.service = st->service;
	vk.version = st->version;
	if (st->why == DW_RESTEER)
		ds = bpf_map_lookup_elem(&drain_resteer, &vk.service);
	else if (st->why == DW_INST)
		ds = inst_drain(vk.service, vk.version, st->inst);
	else
		ds = NULL;
	/* A retired instance's connection whose whole version drains now: the version's. */
	if (!ds && st->why != DW_RESTEER)
		ds = bpf_map_lookup_elem(&drain_versions, &vk);
	hs = bpf_map_lookup_elem(&http_versions, &vk);
	if (!ds) {
		if (!hs)
			/* neither asked to close nor measured: leaves at the next pass */
			return SK_PASS;
		if (st->state == DS_HEADERS)
			/* its drain ended mid-head: the next response is new */
			st->state = DS_WAIT;
	}
	first = false;
	if (st->state == DS_WAIT) {
		tp = bpf_skc_to_tcp_sock(sk);
		if (!tp)
			return SK_PASS;
		if (tp->bytes_received != st->rx_mark) {
			first = true;
			st->rx_mark = tp->bytes_received;
			st->flags = 0;
			st->sl_len = 0;
			st->sl_on = hs != NULL;
		} else if (!(hs && st->sl_on)) {
			/* no request since the last response began: not a new one */
			return SK_PASS;
		}
	}
	n = msg->size;
	if (n > DRAIN_SCAN_MAX)
		n = DRAIN_SCAN_MAX;
	if (!ds && n > HTTP_SL_LEN)
		n = HTTP_SL_LEN; /* measured only: the status line's first bytes are all it reads */
	if (!n || bpf_msg_pull_data(msg, 0, n, 0))
		return SK_PASS;
	b = bpf_map_lookup_elem(&scratch, &z);
	if (!b)
		return SK_PASS;
	if (n > (__u32)((long)msg->data_end - (long)msg->data))
		return SK_PASS;
	if (bpf_probe_read_kernel(b->b, n & (2 * DRAIN_SCAN_MAX - 1), (void *)(long)msg->data))
		return SK_PASS;
	if (hs && st->sl_on)
		http_collect(st, hs, b->b, n);
	if (!ds || st->state == DS_DONE)
		return SK_PASS; /* measured only (or upgraded): nothing to rewrite */
	if (!first && st->state == DS_WAIT)
		return SK_PASS; /* the rest of a status line, counted above; not a new response */
	if (first) {
		if (n < 7 || !is_status_line(b->b)) {
			__sync_fetch_and_add(&ds->not_http, 1);
			return SK_PASS; /* not HTTP/1.x (TLS, HTTP/2, binary): drained as without */
		}
		if (n < 13) {
			__sync_fetch_and_add(&ds->partial, 1);
			return SK_PASS; /* status line split over writes: the next response */
		}
		if (b->b[9] == '1' && b->b[10] == '0' && b->b[11] == '1') {
			st->state = DS_DONE;
			__sync_fetch_and_add(&ds->kept, 1);
			return SK_PASS; /* 101: the connection is no longer HTTP */
		}
	}
	__builtin_memset(&b->s, 0, sizeof(b->s));
	if (!first)
		b->s.sl_end = 1; /* a later write of the head: header lines only */
	bpf_loop(n, scan_byte, NULL, 0);
	s = b->s;
	if (first && !s.sl_end) {
		__sync_fetch_and_add(&ds->partial, 1);
		return SK_PASS; /* no whole status line in the first write: the next response */
	}
	if ((s.conn & DC_KEEPALIVE) && !rewrite_keepalive(msg, s.ka_off))
		rewrote = true;
	if (first && !(s.conn & (DC_CLOSE | DC_KEEPALIVE))) {
		/* The pull above is still in place: data is byte 0. */
		if (!insert_close(msg, s.sl_end)) {
			st->flags |= DF_INSERTED;
			rewrote = true;
		}
	}
	/*
	 * One piece again: tcp_bpf sends each scatterlist element of the
	 * message with its own tcp_sendmsg_locked() and no MSG_MORE, so an
	 * inserted header (or the tail after the scanned bytes) would go as a
	 * small segment of its own, which Nagle holds until the client's
	 * delayed ACK: 40 ms more per rewritten response (measured).
	 */
	if (msg->size <= DRAIN_LINEAR_MAX)
		bpf_msg_pull_data(msg, 0, msg->size, 0);
	if (rewrote && !(st->flags & DF_COUNTED)) {
		st->flags |= DF_COUNTED;
		__sync_fetch_and_add(&ds->rewritten, 1);
	}
	if (first && (s.conn & DC_CLOSE) && !rewrote)
		__sync_fetch_and_add(&ds->kept, 1);
	st->state = s.hdr_end ? DS_DONE : DS_HEADERS;
	return SK_PASS;
}
