/* SPDX-License-Identifier: MIT */
/*
 * ABI between bpf/bytes.bpf.c, bpf/track.bpf.c and user/bytes.c: the
 * payload bytes each version's server received and sent on the connections
 * baton steers to it, for services with byte-counts = yes.
 *
 * steer marks a connection's decision (conn_owner.flags OWN_BYTES) when
 * its service counts bytes (steer_service.flags STEER_F_BYTES, which the
 * agent writes with the rest of the policy); track gives such a connection
 * a byte_socks entry at PASSIVE_ESTABLISHED, and the two tracepoint
 * programs add what the server's recvmsg/sendmsg calls returned on it.
 */
#ifndef BATON_BYTES_H
#define BATON_BYTES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* byte_socks: per-socket storage of one counted connection; track creates it. */
struct byte_sock {
	__u32 service;
	__u32 version;
};

/* bytes: one version's totals on one CPU (a per-CPU hash value); the agent creates entries. */
struct byte_counts {
	__u64 rx; /* payload bytes the server read (recv, read, recvmsg; MSG_PEEK not counted) */
	__u64 tx; /* payload bytes the server's send, write, sendmsg calls took */
};

#endif /* BATON_BYTES_H */
