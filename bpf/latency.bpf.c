/* SPDX-License-Identifier: GPL-2.0 */
/*
 * latency: the incoming half of what the clients of each version wait
 * for, on the connections baton counts (those track gave a lat_socks
 * entry), into per-CPU log-linear histograms per version (latency.bpf.h);
 * no per-request events.
 *
 *  - response time starts when a segment carrying data reaches a counted
 *    connection while no request is pending (tcp_probe, called for every
 *    segment tcp_rcv_established() handles, fast path or not), and ends at
 *    the connection's next outgoing segment carrying data (track's
 *    sock_ops HDR_OPT_LEN_CB, enabled on counted connections only);
 *  - accept wait: from the completed handshake (track) to accept()
 *    handing the connection to the server (the sock_graft LSM hook; needs
 *    "bpf" among the active LSMs, else accept waits are not measured).
 *
 * Why these hooks: sock_ops' PARSE_HDR_OPT_CB runs from
 * tcp_validate_incoming(), the slow path only, so an in-order keep-alive
 * request is never seen; sock_recv_length / sock_send_length appeared in
 * 6.3 and baton runs on 6.1; fentry/fexit programs could not be loaded
 * where baton is tested (EPERM) and kprobes not attached (no kprobe PMU),
 * while tp_btf, BPF LSM and sock_ops programs could.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "latency.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/tcp_probe")
int BPF_PROG(lat_rx, struct sock *sk, const struct sk_buff *skb)
{
	struct lat_sock *ls;
	unsigned char *data;
	__u8 off = 0;
	__u32 len;

	ls = bpf_sk_storage_get(&lat_socks, sk, 0, 0);
	if (!ls || ls->req_ns)
		return 0; /* not a connection baton counts, or a request is already pending */
	/* skb->data is the TCP header here: the data offset is its 13th byte's high nibble. */
	data = BPF_CORE_READ(skb, data);
	len = BPF_CORE_READ(skb, len);
	if (bpf_probe_read_kernel(&off, 1, data + 12))
		return 0;
	if (len > (__u32)(off >> 4) * 4)
		ls->req_ns = bpf_ktime_get_ns();
	return 0;
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
