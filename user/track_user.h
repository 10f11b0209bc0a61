/* SPDX-License-Identifier: MIT */
#ifndef BATON_TRACK_USER_H
#define BATON_TRACK_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "track.h"

struct track_bpf;
struct bpf_link;
struct ring_buffer;

/* cgroups the track program is attached to besides the main one (adopted servers'). */
#define TRACK_MAX_EXTRA 16

struct track {
	struct track_bpf *skel;
	struct bpf_link *link; /* the main attachment (pin_dir/track_link), or NULL */
	struct bpf_link
	    *extra[TRACK_MAX_EXTRA]; /* pin_dir/track_link_<cgroup id> (bpffs takes no dot) */
	__u64 extra_id[TRACK_MAX_EXTRA];
	int nextra;
	char pin_dir[256];
	struct ring_buffer *rb;
	int versions_fd;
	int watch_fd;
	int inst_fd; /* inst_live */
	int ncpu;    /* possible CPUs: inst_live's values are per CPU */
};

typedef void (*track_zero_fn)(void *ctx, const struct track_event *e);

/*
 * Load track with its maps pinned under pin_dir (sharing steer's).  Links
 * pinned by an earlier agent (pin_dir/track_link and track_link_<id>) get
 * this program in place, so counting never stops and there is never a
 * second attachment.  Without a pinned main link, attach_root says whether
 * to attach to the cgroup v2 root now (the tests), or to leave it to
 * track_scope (the agent).  Returns 0 or -errno with a one-line reason and
 * fix in err.
 */
int track_open(struct track *t, const char *pin_dir, bool attach_root, track_zero_fn fn, void *ctx,
	       char *err, size_t errlen);
/*
 * Attach the program (the main link) to the cgroup at path, the subtree
 * whose sockets baton counts, instead of where it was: a connection counts
 * when its listener was made in a cgroup under it.  The new attachment is
 * made before the old one goes.  0 or -errno with err.
 */
int track_scope(struct track *t, const char *path, char *err, size_t errlen);
/*
 * Make sure the program runs for sockets made in the cgroup at path (an
 * adopted server's): nothing when path or a cgroup above it has it
 * already, else one more link, pinned.  0 or -errno with err.
 */
int track_cover(struct track *t, const char *path, char *err, size_t errlen);
/* The cgroup ids of the links track_cover made (at most max): how many. */
int track_extra(struct track *t, __u64 *ids, int max);
/* The link track_cover made for cgroup id goes (unpinned, detached): 0 or -ENOENT. */
int track_uncover(struct track *t, __u64 id);
/* The cgroups it runs for: ids of the main and the extra attachments (at most max). */
int track_cgroups(struct track *t, __u64 *ids, int max);
void track_close(struct track *t);
/* The ring buffer's epoll fd, and draining it. */
int track_ring_fd(struct track *t);
int track_ring_consume(struct track *t);

int track_register(struct track *t, __u32 service, __u32 version);
/* Register a version's counters unless they exist (a restarted agent's, kept). */
int track_ensure(struct track *t, __u32 service, __u32 version);
int track_forget(struct track *t, __u32 service, __u32 version);
/*
 * A version's counters.  lost (connections the kernel closed because the
 * process holding them exited) is complete once that process is reaped:
 * its exit closes its sockets before its pidfd becomes readable.
 */
int track_counts(struct track *t, __u32 service, __u32 version, struct version_counts *c);
int track_watch(struct track *t, __u32 service, __u32 version, int on);
/*
 * The live connections of each instance of a version (n[i] for the
 * instance in slot i), summed over CPUs: one map read, whatever the
 * number of connections.  0 or -errno (-ENOENT: not registered).
 */
int track_inst_live(struct track *t, __u32 service, __u32 version, long long n[MAX_INSTANCES]);

/*
 * drain-reset: reset (SOCK_DESTROY) every live connection of a version in
 * the caller's network namespace, in steps of bounded time, so that an event
 * loop keeps serving between them (no step blocks):
 *
 *	struct track_reset *r;
 *	int err = track_reset_begin(t, service, version, &r);
 *	while (!err && (err = track_reset_step(r, budget_us)) > 0)
 *		... back to the event loop for one turn ...
 *	log(track_reset_count(r)), and err if < 0;
 *	track_reset_end(r);
 *
 * begin opens a netlink socket and allocates the cursor (about 60 KiB); it
 * does no work.  step walks the connections map and destroys what belongs
 * to the version until budget_us has passed (at least one round: one map
 * read of 1024 entries or one netlink send of 64 requests); it returns 1
 * while there is more to do, 0 when the walk is complete, or -errno
 * (-EOPNOTSUPP: the kernel lacks CONFIG_INET_DIAG_DESTROY), after which only
 * count and end may be called.  count is how many connections the kernel
 * confirmed reset so far.  end frees the cursor (NULL is fine); ending it
 * early just stops.  Kernel 5.6 or later (hash map batch reads).
 */
struct track_reset;

int track_reset_begin(struct track *t, __u32 service, __u32 version, struct track_reset **out);
int track_reset_step(struct track_reset *r, unsigned budget_us);
long track_reset_count(const struct track_reset *r);
void track_reset_end(struct track_reset *r);

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
