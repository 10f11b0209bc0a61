/* SPDX-License-Identifier: MIT */
#ifndef BATON_STEER_USER_H
#define BATON_STEER_USER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <linux/types.h>

#include "steer.h"

struct steer_bpf;

struct steer {
	struct steer_bpf *skel;
	int prog_fd;
	int sockets_fd;
	int groups_fd;
	int services_fd;
	int probes_fd;
	int stats_fd;
};

/*
 * Load the steer program with its maps pinned under pin_dir (reusing maps
 * already pinned there, so a restarted agent sees the state it left).
 * Returns 0 or -errno with a one-line reason and fix in err.
 */
int steer_open(struct steer *st, const char *pin_dir, char *err, size_t errlen);
void steer_close(struct steer *st);
/* Remove the pins (the maps live on while programs or fds use them). */
int steer_unpin(const char *pin_dir);

int steer_group_key_from(const struct sockaddr *sa, struct steer_group_key *k);
int steer_add_group(struct steer *st, const struct sockaddr *sa, __u32 service, __u32 group);
int steer_del_group(struct steer *st, const struct sockaddr *sa);
/* Put a listening SO_REUSEPORT socket at a slot / take it out. */
int steer_place(struct steer *st, __u32 slot, int fd);
int steer_remove(struct steer *st, __u32 slot);
/* Attach the program to the reuseport group fd belongs to. */
int steer_attach(struct steer *st, int fd);
int steer_set_service(struct steer *st, __u32 service, const struct steer_service *p);
int steer_get_service(struct steer *st, __u32 service, struct steer_service *p);
int steer_del_service(struct steer *st, __u32 service);
int steer_probe_add(struct steer *st, __u32 group, __u16 sport, __u32 vslot, __u32 instance);
int steer_probe_del(struct steer *st, __u32 group, __u16 sport);
/* Counters of one group, summed over CPUs. */
int steer_group_stats(struct steer *st, __u32 group, struct steer_stats *sum);

/* Is dir on a bpf filesystem?  0, -ENOENT (no such dir), -ENODEV (not bpffs). */
int bpffs_check(const char *dir);

#endif /* BATON_STEER_USER_H */
