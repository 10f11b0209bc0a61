/* SPDX-License-Identifier: MIT */
/* Loads bpf/latency.bpf.c and reads its per-version histograms. */
#ifndef BATON_LATENCY_USER_H
#define BATON_LATENCY_USER_H

#include <stddef.h>
#include <linux/types.h>

#include "latency.h"

struct latency_bpf;
struct bpf_link;

struct latency {
	struct latency_bpf *skel;
	struct bpf_link *recv, *send; /* tcp_probe; sock_graft (NULL: no accept waits) */
	int hist_fd;		      /* -1: not measuring */
	int ncpu;
	struct lat_hist *buf; /* one value per possible CPU, for lookups */
};

/*
 * Load latency with its maps pinned under pin_dir (shared with track) and
 * attach its tracepoint and return probe (not pinned: the incoming side and
 * accept waits are measured while this agent runs).  0, or -errno with a one-line reason in err; on
 * failure nothing is measured and every call below returns -ENOTSUP.
 */
int latency_open(struct latency *l, const char *pin_dir, char *err, size_t errlen);
void latency_close(struct latency *l);
/* Start (zeroed) or stop measuring a version. */
int latency_register(struct latency *l, __u32 service, __u32 version);
int latency_forget(struct latency *l, __u32 service, __u32 version);
/* A version's histograms since it was registered, summed over the CPUs. */
int latency_read(struct latency *l, __u32 service, __u32 version, struct lat_hist *out);

#endif /* BATON_LATENCY_USER_H */
