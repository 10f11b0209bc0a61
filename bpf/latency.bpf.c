/* SPDX-License-Identifier: GPL-2.0 */
/*
 * latency: the incoming half of what the clients of each version wait
 * for, on the connections baton counts (those track gave a lat_socks
 * entry), into per-CPU log-linear histograms per version (latency.bpf.h);
 * no per-request events.
 *
 *  - response time starts when a segment carrying data reaches a counted
 *    connection while no request is pending (cgroup_skb/ingress: every
 *    segment tcp_v4_rcv()/tcp_v6_rcv() hands a socket, before the fast or
 *    slow path), and ends at the connection's next outgoing segment
 *    carrying data (track's sock_ops HDR_OPT_LEN_CB, enabled on counted
 *    connections only);
 *  - accept wait: from the completed handshake (track) to accept()
 *    handing the connection to the server (the sock_graft LSM hook; needs
 *    "bpf" among the active LSMs, else accept waits are not measured).
 *
 * Why these hooks: the ingress program is attached to the same cgroups as
 * track (the agent's, where it makes every listener, and adopted servers'),
 * so a segment for any other socket of the host never runs it (the kernel
 * checks the socket's cgroup's program array, empty, and goes on); the
 * tcp_probe tracepoint used before ran for every segment of the host,
 * about 100 ns each.  sock_ops' PARSE_HDR_OPT_CB runs from
 * tcp_validate_incoming(), the slow path only, so an in-order keep-alive
 * request is never seen; sock_recv_length / sock_send_length appeared in
 * 6.3 and baton runs on 6.1; fentry/fexit programs could not be loaded
 * where baton is tested (EPERM) and kprobes not attached (no kprobe PMU).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "latency.bpf.h"

#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86DD
#define IPPROTO_TCP_ 6

char LICENSE[] SEC("license") = "GPL";

/*
 * Whether the segment carries data.  skb->data is the IP header here (the
 * kernel pushes it back for the program); TCP's receive path has made the
 * IP and TCP headers linear before, so they are read directly.
 */
static __always_inline int has_payload(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 ip_len, tcp_off;
	__u8 *p = data;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (p + 20 > (__u8 *)end)
			return 0;
		ip_len = (p[0] & 0xf) * 4;
		if (ip_len < 20 || ip_len > 60)
			return 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (p + 40 > (__u8 *)end || p[6] != IPPROTO_TCP_)
			return 0; /* extension headers: not measured rather than misread */
		ip_len = 40;
	} else {
		return 0;
	}
	p += ip_len;
	if (p + 13 > (__u8 *)end)
		return 0;
	tcp_off = (__u32)(p[12] >> 4) * 4;
	return skb->len > ip_len + tcp_off;
}

SEC("cgroup_skb/ingress")
int lat_rx(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct lat_sock *ls;

	/* cgroup_skb: 1 lets the segment in; this program only observes. */
	if (!sk)
		return 1;
	ls = bpf_sk_storage_get(&lat_socks, sk, 0, 0);
	if (!ls || ls->req_ns)
		return 1; /* not a connection baton measures, or a request is already pending */
	if (has_payload(skb))
		ls->req_ns = bpf_ktime_get_ns();
	return 1;
}

/*
 * accept() hands the connection to the server: inet_accept() grafts it onto
 * its new socket, and the sock_graft LSM hook sees that (void hook: 0).
 */
SEC("lsm/sock_graft")
int BPF_PROG(lat_graft, struct sock *sk, struct socket *parent)
{
	struct lat_sock *ls;
	__u64 now;

	ls = bpf_sk_storage_get(&lat_socks, sk, 0, 0);
	if (!ls || !ls->est_ns)
		return 0;
	now = bpf_ktime_get_ns();
	if (now > ls->est_ns)
		lat_record(ls, LAT_ACCEPT, now - ls->est_ns);
	ls->est_ns = 0;
	return 0;
}
