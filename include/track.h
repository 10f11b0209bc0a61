/* SPDX-License-Identifier: MIT */
/*
 * ABI between bpf/track.bpf.c (sock_ops), bpf/steer.bpf.c and user/track.c:
 * per-connection attribution and per-version connection counts.
 */
#ifndef BATON_TRACK_H
#define BATON_TRACK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Connections tracked at once (exact map: one entry per live connection). */
#ifndef MAX_CONNS
#define MAX_CONNS 262144
#endif
/* Steering decisions waiting for their handshake to complete (LRU). */
#ifndef MAX_DECISIONS
#define MAX_DECISIONS 65536
#endif
/* (service, version) pairs with counters. */
#ifndef MAX_TRACKED_VERSIONS
#define MAX_TRACKED_VERSIONS 1024
#endif

/* A TCP connection as the server sees it. */
struct conn_key {
	__u32 family;	/* AF_INET or AF_INET6 */
	__u16 lport;	/* host byte order, the service's port */
	__u16 rport;	/* host byte order, the client's port */
	__u32 laddr[4]; /* network byte order; IPv4 in [0] */
	__u32 raddr[4];
};

/* Who a connection belongs to. */
struct conn_owner {
	__u32 service;
	__u32 version;
};

/* versions: counters of one version of one service. */
struct version_key {
	__u32 service;
	__u32 version;
};

struct version_counts {
	__s64 live;	   /* connections established and not yet closed (accepted or queued) */
	__u64 accepted;	   /* connections established in total (handshake completed) */
	__u64 closed;	   /* connections closed in total */
	__u64 migrated_in; /* connections moved here from a closing listener */
	/*
	 * Connections this version's side aborted: it sent a RST (closed with
	 * unread data, SO_LINGER {1, 0}, a closing listener's unaccepted
	 * queue, ...).  Not resets received from clients, not timeouts, and
	 * not baton's own drain-reset (SOCK_DESTROY).  Each is also in closed.
	 */
	__u64 resets;
	/*
	 * Connections closed by the kernel because the process holding them
	 * exited (crash, kill -9, exit without closing them): the exit closed
	 * a connection that was still ESTABLISHED or CLOSE_WAIT.  Connections
	 * the process closed itself before it died are not counted; each is
	 * counted once, and is also in closed when it reaches TCP_CLOSE.
	 * Appended last: older fields keep their offsets.
	 */
	__u64 lost;
};

/* Ring buffer record: live of (service, version) reached 0 while in drain_watch. */
struct track_event {
	__u32 service;
	__u32 version;
	__u64 ktime_ns; /* bpf_ktime_get_ns() at the close that reached zero */
};

#endif /* BATON_TRACK_H */
