/* SPDX-License-Identifier: GPL-2.0 */
/*
 * latgraft: the accept-wait part of latency (latency.bpf.c), from the
 * completed handshake (track) to accept() handing the connection to the
 * server, on the connections track gave a lat_socks entry.
 *
 * Its own object because a BPF LSM program names its attach point by the
 * kernel's BTF: libbpf reads and parses /sys/kernel/btf/vmlinux (5.5 MB on
 * 6.18; 13-100 ms of CPU, 10-50 times that under qemu TCG) for every object
 * holding such a program, and some kernels refuse the program anyway.  Kept
 * apart, latency's cgroup_skb programs load without that BTF at every agent
 * start, and this one is loaded (once, reusing latency's maps) only when the
 * agent first measures something.  Needs "bpf" among the active LSMs, else
 * accept waits are not measured.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "latency.bpf.h"

char LICENSE[] SEC("license") = "GPL";

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
