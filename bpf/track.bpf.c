/* SPDX-License-Identifier: GPL-2.0 */
/*
 * track: counts the live connections of every version baton steers.
 * Attached to the cgroup v2 root (a link, multi-attach, so other users'
 * sock_ops programs keep running).
 *
 * The steer program writes its decision per 4-tuple into `decisions`.  When
 * the handshake completes (PASSIVE_ESTABLISHED: the connection exists,
 * accepted or still queued) the decision moves to `conns` and the version's
 * live count goes up; when the socket reaches TCP_CLOSE it goes down, and
 * if the server side aborted it (sent a RST), the version's resets go up.
 * A connection without a decision is not baton's and is never counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "conns.bpf.h"

#define AF_INET	 2
#define AF_INET6 10

char LICENSE[] SEC("license") = "GPL";

static __always_inline int key_of(const struct bpf_sock_ops *skops, struct conn_key *k)
{
	k->family = skops->family;
	k->lport = (__u16)skops->local_port;
	/* remote_port holds the network-order port in its upper half. */
	k->rport = (__u16)bpf_ntohl(skops->remote_port);
	if (k->family == AF_INET) {
		k->laddr[0] = skops->local_ip4;
		k->raddr[0] = skops->remote_ip4;
		return 0;
	}
	if (k->family == AF_INET6) {
		k->laddr[0] = skops->local_ip6[0];
		k->laddr[1] = skops->local_ip6[1];
		k->laddr[2] = skops->local_ip6[2];
		k->laddr[3] = skops->local_ip6[3];
		k->raddr[0] = skops->remote_ip6[0];
		k->raddr[1] = skops->remote_ip6[1];
		k->raddr[2] = skops->remote_ip6[2];
		k->raddr[3] = skops->remote_ip6[3];
		return 0;
	}
	return -1;
}

static __always_inline void established(struct bpf_sock_ops *skops)
{
	struct conn_key k = {};
	struct conn_owner own, *d;
	struct version_counts *c;

	if (key_of(skops, &k))
		return;
	d = bpf_map_lookup_elem(&decisions, &k);
	if (!d)
		return; /* not steered by baton */
	own = *d;
	bpf_map_delete_elem(&decisions, &k);
	c = counts_of(&own);
	if (!c)
		return; /* the agent has not registered this version: not counted */
	if (bpf_map_update_elem(&conns, &k, &own, BPF_NOEXIST))
		return; /* conns full or a duplicate: not counted rather than miscounted */
	__sync_fetch_and_add(&c->accepted, 1);
	__sync_fetch_and_add(&c->live, 1);
	/* Ask for state changes on this socket, to see its close. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/*
 * Did this side abort the connection (send a RST) as it went to TCP_CLOSE?
 *
 * A connection that ends normally passes through FIN_WAIT or LAST_ACK, so
 * only a jump straight from ESTABLISHED or CLOSE_WAIT is an abort.  The
 * kernel records every abort it did not choose itself in sk_err before
 * the state changes: a RST received (ECONNRESET, or EPIPE in CLOSE_WAIT),
 * a retransmission or keepalive timeout (ETIMEDOUT), SOCK_DESTROY as in
 * baton's drain-reset (ECONNABORTED).  When the owner closes with unread
 * data, with SO_LINGER {1, 0}, or its listener drops it from the accept
 * queue, the state changes first and sk_err is still 0.  Measured on 6.18.
 */
static __always_inline int aborted_here(const struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct tcp_sock *tp;

	if (skops->args[0] != BPF_TCP_ESTABLISHED && skops->args[0] != BPF_TCP_CLOSE_WAIT)
		return 0;
	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	return tp->inet_conn.icsk_inet.sk.sk_err == 0;
}

static __always_inline void closed(struct bpf_sock_ops *skops)
{
	struct conn_key k = {};
	struct conn_owner own, *o;
	struct version_counts *c;

	if (key_of(skops, &k))
		return;
	o = bpf_map_lookup_elem(&conns, &k);
	if (!o)
		return;
	own = *o;
	/* Only the caller whose delete succeeds counts the close. */
	if (bpf_map_delete_elem(&conns, &k))
		return;
	/* Before conn_leave: whoever sees live reach 0 also sees this reset. */
	if (aborted_here(skops)) {
		c = counts_of(&own);
		if (c)
			__sync_fetch_and_add(&c->resets, 1);
	}
	conn_leave(&own, 1);
}

SEC("sockops")
int track(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		established(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			closed(skops);
		break;
	}
	/* sock_ops: 1 lets the socket proceed; this program only observes. */
	return 1;
}
