/* SPDX-License-Identifier: MIT */
#ifndef BATON_TRACK_USER_H
#define BATON_TRACK_USER_H

#include <stddef.h>
#include <linux/types.h>

#include "track.h"

struct track_bpf;
struct bpf_link;
struct ring_buffer;

struct track {
	struct track_bpf *skel;
	struct bpf_link *link;
	struct ring_buffer *rb;
	int versions_fd;
	int watch_fd;
};

typedef void (*track_zero_fn)(void *ctx, const struct track_event *e);

/*
 * Load track with its maps pinned under pin_dir (sharing steer's), attach it
 * to the cgroup v2 root through a link pinned as pin_dir/track_link (an
 * existing pinned link is updated in place, so there is never a second
 * attachment).  Returns 0 or -errno with a one-line reason and fix in err.
 */
int track_open(struct track *t, const char *pin_dir, track_zero_fn fn, void *ctx, char *err,
	       size_t errlen);
void track_close(struct track *t);
/* The ring buffer's epoll fd, and draining it. */
int track_ring_fd(struct track *t);
int track_ring_consume(struct track *t);

int track_register(struct track *t, __u32 service, __u32 version);
int track_forget(struct track *t, __u32 service, __u32 version);
/*
 * A version's counters.  lost (connections the kernel closed because the
 * process holding them exited) is complete once that process is reaped:
 * its exit closes its sockets before its pidfd becomes readable.
 */
int track_counts(struct track *t, __u32 service, __u32 version, struct version_counts *c);
int track_watch(struct track *t, __u32 service, __u32 version, int on);

/*
 * Reset (SOCK_DESTROY) every live connection of a version in the caller's
 * network namespace.  Returns how many were reset, or -errno.
 */
int track_reset_version(struct track *t, __u32 service, __u32 version);

/*
 * How many packets the socket fd has dropped (SO_MEMINFO's
 * SK_MEMINFO_DROPS, the kernel's sk_drops).  For a TCP listener these are
 * mainly the SYNs and handshake-completing ACKs it refused because its
 * accept queue was full (its share of the namespace's TcpExtListenDrops):
 * a client's SYN retransmissions count again, so this counts packets, not
 * clients.  The kernel's counter is 32 bits wide and wraps.  0 or -errno.
 */
int listener_drops(int fd, __u64 *drops);

/* The cgroup v2 mount point from /proc/self/mounts; -ENOENT if none. */
int cgroup2_root(char *buf, size_t len);

#endif /* BATON_TRACK_USER_H */
