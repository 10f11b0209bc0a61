/* SPDX-License-Identifier: MIT */
/* Loads bpf/latency.bpf.c (and latgraft.bpf.c) and reads its per-version histograms. */
#ifndef BATON_LATENCY_USER_H
#define BATON_LATENCY_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "latency.h"
#include "track_user.h"

struct latency_bpf;
struct latgraft_bpf;
struct bpf_link;

/* cgroups the cgroup_skb programs follow track to: its main one and adopted servers'. */
#define LAT_MAX_CGROUPS (1 + TRACK_MAX_EXTRA)

struct latency {
	struct latency_bpf *skel;
	/* cgroup_skb ingress and egress, per cgroup track runs for */
	struct bpf_link *rx[LAT_MAX_CGROUPS], *tx[LAT_MAX_CGROUPS];
	__u64 cg_id[LAT_MAX_CGROUPS];
	int ncg;
	struct latgraft_bpf *gskel; /* the sock_graft program, on this one's maps */
	struct bpf_link *graft;	    /* sock_graft (NULL: no accept waits) */
	bool graft_tried;	    /* attached (or failed to) at the first latency_follow */
	int hist_fd;		    /* -1: not loaded */
	bool measure;		    /* false: latency = off, the map only (to forget) */
	int ncpu;
	struct lat_hist *buf; /* one value per possible CPU, for lookups */
};

/*
 * Load latency with its maps pinned under pin_dir (shared with track),
 * and forget the versions an earlier agent measured; nothing is attached
 * before latency_follow (links not pinned: latency is measured while this
 * agent runs).  Without measure nothing is attached
 * and latency_register refuses (latency = off).  0, or -errno with a
 * one-line reason in err; on failure nothing is measured and every call
 * below returns -ENOTSUP.
 */
int latency_open(struct latency *l, const char *pin_dir, bool measure, char *err, size_t errlen);
/*
 * Run the cgroup_skb programs for sockets made in exactly the cgroups
 * with these ids (track's: track_cgroups), so that no other socket of the
 * host runs them: attach where missing, detach where no longer listed;
 * the first call also attaches the accept hook.  0, or the
 * last -errno with err (the other cgroups are done).
 */
int latency_follow(struct latency *l, const __u64 *ids, int n, char *err, size_t errlen);
/* A cgroup v2 directory opened by its id: an fd, or -errno. */
int cgroup_open_id(__u64 id);
void latency_close(struct latency *l);
/* Start measuring a version (zeroed; kept if measured already), or stop. */
int latency_register(struct latency *l, __u32 service, __u32 version);
int latency_forget(struct latency *l, __u32 service, __u32 version);
/* A version's histograms since it was registered, summed over the CPUs. */
int latency_read(struct latency *l, __u32 service, __u32 version, struct lat_hist *out);

#endif /* BATON_LATENCY_USER_H */
