/* SPDX-License-Identifier: GPL-2.0 */
/*
 * drop_ack: a test helper for tests/bpf/test_migrate.c.  Attached to lo as
 * (generic) XDP, it drops the pure ACKs clients send to one port while the
 * switch is on, so the server never sees the final ACK of a handshake: the
 * server side stays a request (NEW_SYN_RECV), or a Fast Open child in
 * SYN_RECV, while the client is already ESTABLISHED.  Segments with a SYN,
 * FIN or RST flag or with payload always pass.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP    0x0800
#define ETH_P_IPV6  0x86DD
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "GPL";

/* The switch, the test writes it: drop pure ACKs to port (network order) while on. */
__u32 on;
__u16 port;
/* Pure ACKs dropped so far; this program writes. */
__u64 dropped;

SEC("xdp")
int drop_ack(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *th;
	__u32 len;

	if (!on || (void *)(eth + 1) > end)
		return XDP_PASS; /* switch off, or not a frame we parse: deliver */
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return XDP_PASS; /* not TCP: deliver */
		th = (void *)ip + ip->ihl * 4;
		len = bpf_ntohs(ip->tot_len) - ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		/* Loopback TCP carries no extension headers. */
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS; /* not TCP: deliver */
		th = (void *)(ip6 + 1);
		len = bpf_ntohs(ip6->payload_len);
	} else {
		return XDP_PASS; /* not IP: deliver */
	}
	if ((void *)(th + 1) > end || th->dest != port)
		return XDP_PASS; /* not to the service port: deliver */
	if (th->syn || th->fin || th->rst || !th->ack || len != th->doff * 4U)
		return XDP_PASS; /* not a pure ACK: deliver */
	__sync_fetch_and_add(&dropped, 1);
	/* A pure ACK from a client to the service: the server never sees it. */
	return XDP_DROP;
}
