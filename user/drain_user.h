/* SPDX-License-Identifier: MIT */
#ifndef BATON_DRAIN_USER_H
#define BATON_DRAIN_USER_H

#include <stddef.h>
#include <linux/types.h>

#include "drain.h"

struct drain_bpf;
struct bpf_link;

/* Cgroups http_est follows (track's). */
#define DRAIN_MAX_CGROUPS 8

struct drain {
	struct drain_bpf *skel;
	struct bpf_link *iter;
	/* http_est, attached at measure-http's first use */
	struct bpf_link *est[DRAIN_MAX_CGROUPS];
	__u64 est_id[DRAIN_MAX_CGROUPS];
	int nest;
	int iter_fd; /* the pass under way, or -1 */
	int versions_fd;
	int socks_fd;
};

/*
 * Whether this kernel can run drain-http: 0, or -EOPNOTSUPP with a one-line
 * err naming the missing feature (sk_msg, sockhash, Linux 6.0, the programs load).
 */
int drain_supported(char *err, size_t errlen);
/* The same, the error naming the setting key ("drain-http", "measure-http"). */
int drain_supported_for(const char *key, char *err, size_t errlen);
/*
 * Whether this kernel loads the drain programs (nothing pinned, nothing
 * attached to a socket): 0, or -EOPNOTSUPP with a one-line err.  The
 * verifier is the only judge of which kernels can run them.
 */
int drain_probe(char *err, size_t errlen);
int drain_probe_for(const char *key, char *err, size_t errlen);
/*
 * Load drain, sharing track's pinned conns under pin_dir, and attach the
 * sk_msg program to its (empty) sockhash.  Its own maps are not pinned:
 * when the agent goes, the sockhash goes, and every connection in it goes
 * back to the plain send path.  0 or -errno with a one-line err.
 */
int drain_open(struct drain *d, const char *pin_dir, char *err, size_t errlen);
void drain_close(struct drain *d);
/* Drain (on) or stop draining (off) a version's connections; a pass applies it. */
int drain_version(struct drain *d, __u32 service, __u32 version, int on);
int drain_stats(struct drain *d, __u32 service, __u32 version, struct drain_stats *st);
/*
 * Drain (on) or stop draining (off) one instance's connections (inst from
 * 0) while its version serves on through the others; a pass applies it.
 */
int drain_inst(struct drain *d, __u32 service, __u32 version, __u32 inst, int on);
int drain_inst_stats(struct drain *d, __u32 service, __u32 version, __u32 inst,
		     struct drain_stats *st);
/* Re-steer a sticky service's connections whose client maps to another version now (on/off). */
int drain_resteer(struct drain *d, __u32 service, int on);
int drain_resteer_stats(struct drain *d, __u32 service, struct drain_stats *st);
/*
 * One bounded step of a pass over the namespace's TCP sockets: at most
 * budget connections join or leave the sockhash.  1: the pass goes on, 0:
 * it is complete (the next call starts another), -errno.  *changed gets
 * how many joined or left.
 */
int drain_pass_step(struct drain *d, int budget, int *changed);
/*
 * measure-http: count (on) or stop counting (off) the status classes of a
 * version's responses; its connections join at the next pass.  Turning it
 * on again starts its counts from zero.
 */
int drain_measure(struct drain *d, __u32 service, __u32 version, int on);
/*
 * Attach http_est (measured connections join at their handshake) to the
 * cgroup cgfd with this id (one of track's), once: 0 or -errno with err.
 */
int drain_measure_attach(struct drain *d, __u64 id, int cgfd, char *err, size_t errlen);
int drain_http_counts(struct drain *d, __u32 service, __u32 version, struct http_counts *c);
/* Connections in the sockhash now (a bounded walk of its keys; for tests and status). */
int drain_members(struct drain *d);

#endif /* BATON_DRAIN_USER_H */
