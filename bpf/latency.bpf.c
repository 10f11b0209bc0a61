/* SPDX-License-Identifier: GPL-2.0 */
/*
 * latency: what the clients of each version wait for, on the connections
 * baton counts (those track gave a lat_socks entry: versions the agent
 * measures), into per-CPU log-linear histograms per version
 * (latency.bpf.h); no per-request events.
 *
 *  - response time: from a segment carrying data reaching a measured
 *    connection while no request is pending (cgroup_skb/ingress: every
 *    segment tcp_v4_rcv()/tcp_v6_rcv() hands a socket, before TCP's fast or
 *    slow path) to the connection's next outgoing segment carrying data
 *    (cgroup_skb/egress: every packet a socket of the cgroup sends);
 *  - accept wait: from the completed handshake (track) to accept()
 *    handing the connection to the server (the sock_graft LSM hook, in
 *    latgraft.bpf.c; needs "bpf" among the active LSMs, else accept waits
 *    are not measured).
 *
 * Why these hooks: the two cgroup_skb programs are attached to the same
 * cgroups as track (the agent's, where it makes every listener, whose
 * connections keep their listener's cgroup, and adopted servers'), so a
 * packet of any other socket of the host never runs them: the kernel finds
 * the socket's cgroup's program array empty and goes on.  Measured before:
 * the tcp_probe tracepoint ran for every segment of the host (about 100 ns
 * each), and track's sock_ops write callback (HDR_OPT_LEN_CB) ran for
 * every segment and every MSS computation of a measured connection.  sock_ops'
 * PARSE_HDR_OPT_CB runs from tcp_validate_incoming(), the slow path only,
 * so an in-order keep-alive request is never seen; sock_recv_length /
 * sock_send_length appeared in 6.3 and baton runs on 6.1; fentry/fexit
 * programs could not be loaded where baton is tested (EPERM) and kprobes
 * not attached (no kprobe PMU).  cgroup_skb with socket storage and direct
 * packet reads: Linux 5.2.
 */
/*
 * No CO-RE: the cgroup_skb programs read only __sk_buff and bpf_sock (UAPI
 * context structs the verifier rewrites; their layout is ABI) and packet
 * bytes, so the object has no CO-RE relocations and libbpf loads it without
 * reading and parsing the kernel's BTF (5.5 MB on 6.18: most of an agent
 * start's CPU time).  The accept-wait program needs that BTF for its attach
 * point: it is its own object (latgraft.bpf.c), loaded at the first
 * latency_follow, when something is measured.
 */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "latency.bpf.h"

#define IPPROTO_TCP_ 6

char LICENSE[] SEC("license") = "GPL";

/*
 * Whether the packet (a TCP segment of a measured connection) carries
 * data.  skb->data is the IP header in both directions; TCP has made the IP
 * and TCP headers linear, so they are read directly.
 */
static __always_inline int has_payload(struct __sk_buff *skb)
{
	__u8 *p = (__u8 *)(long)skb->data, *end = (__u8 *)(long)skb->data_end;
	__u32 ip_len;

	if (p + 40 > end)
		return 0; /* shorter than an IPv4 and a TCP header: no data */
	if (p[0] >> 4 == 4) {
		ip_len = (p[0] & 0xf) * 4;
		if (ip_len < 20 || ip_len > 60)
			return 0;
	} else if (p[0] >> 4 == 6 && p[6] == IPPROTO_TCP_) {
		ip_len = 40;
	} else {
		return 0; /* IPv6 extension headers: not measured rather than misread */
	}
	p += ip_len;
	if (p + 13 > end)
		return 0;
	return skb->len > ip_len + (__u32)(p[12] >> 4) * 4;
}

/* A request begins: data in while none is pending.  1: cgroup_skb lets the packet pass. */
SEC("cgroup_skb/ingress")
int lat_rx(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct lat_sock *ls;

	if (!sk)
		return 1;
	ls = bpf_sk_storage_get(&lat_socks, sk, 0, 0);
	if (!ls || ls->req_ns)
		return 1; /* not a measured connection, or a request is pending already */
	if (has_payload(skb))
		ls->req_ns = bpf_ktime_get_ns();
	return 1;
}

/* Its response begins: data out while a request is pending. */
SEC("cgroup_skb/egress")
int lat_tx(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct lat_sock *ls;
	__u64 now;

	if (!sk)
		return 1;
	ls = bpf_sk_storage_get(&lat_socks, sk, 0, 0);
	if (!ls || !ls->req_ns || !has_payload(skb))
		return 1;
	now = bpf_ktime_get_ns();
	if (now > ls->req_ns)
		lat_record(ls, LAT_RESPONSE, now - ls->req_ns);
	ls->req_ns = 0;
	return 1;
}
