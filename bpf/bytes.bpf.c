/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bytes: the payload bytes each version's server received and sent, on the
 * connections baton steers to it, for services with byte-counts = yes;
 * counted as the server's calls return, not at close.
 *
 * sock_recv_length and sock_send_length (Linux 6.3) fire as every
 * recvmsg/sendmsg on a socket of the host returns (read, recv, recvfrom,
 * recvmsg, write, send, sendto, sendmsg, and io_uring's send/recv
 * operations), with what it returned: bytes, or -errno.  A socket without
 * a byte_socks entry (every socket baton does not count) costs one storage
 * lookup that misses.  sendfile() and splice() to a socket go through
 * sendmsg from Linux 6.5 (counted; measured on 6.18), not on 6.3 and 6.4;
 * splice() out of a socket does not go through recvmsg (not counted).
 * The agent attaches these programs only while some service has
 * byte-counts on.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bytes.bpf.h"

#define MSG_PEEK_ 2

char LICENSE[] SEC("license") = "GPL";

/* bytes: per-CPU totals of each (service, version); the agent creates entries. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_TRACKED_VERSIONS);
	__type(key, struct version_key);
	__type(value, struct byte_counts);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bytes SEC(".maps");

static __always_inline void count(struct sock *sk, __u64 n, int sent)
{
	struct byte_sock *bs = bpf_sk_storage_get(&byte_socks, sk, 0, 0);
	struct version_key k;
	struct byte_counts *c;

	if (!bs)
		return; /* not a connection baton counts bytes of */
	k.service = bs->service;
	k.version = bs->version;
	c = bpf_map_lookup_elem(&bytes, &k);
	if (!c)
		return; /* the agent does not count this version (or forgot it) */
	/*
	 * Per-CPU; a program in process context may be preempted by another
	 * task's call on this CPU: atomic adds keep both.
	 */
	if (sent)
		__sync_fetch_and_add(&c->tx, n);
	else
		__sync_fetch_and_add(&c->rx, n);
}

/* ret < 0: an error; 0: end of stream; MSG_PEEK: read again later. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(bytes_rx, struct sock *sk, int ret, int flags)
{
	if (ret > 0 && !(flags & MSG_PEEK_))
		count(sk, (__u64)ret, 0);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(bytes_tx, struct sock *sk, int ret, int flags)
{
	if (ret > 0)
		count(sk, (__u64)ret, 1);
	return 0;
}
