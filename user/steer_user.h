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
	int pins_fd;
	int extras_fd;
};

/*
 * Load the steer program with its maps pinned under pin_dir (reusing maps
 * already pinned there, so a restarted agent sees the state it left).
 * Returns 0 or -errno with a one-line reason and fix in err.
 */
int steer_open(struct steer *st, const char *pin_dir, char *err, size_t errlen);
/*
 * After a failed load of obj with pinned maps: the first pin that is not
 * a map this build can reuse (a directory, another map type or size), as
 * one line in buf, and -EINVAL; 0 when every pin fits.
 */
struct bpf_object;
int pin_mismatch(struct bpf_object *obj, char *buf, size_t len);
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
/*
 * Probe pins of a group of service: connections from src (the probe
 * socket's bound address and port, as getsockname() gives them) go to one
 * socket.  -EINVAL for port 0 or a wildcard address, -EAFNOSUPPORT for
 * neither IPv4 nor IPv6.
 */
int steer_probe_add(struct steer *st, __u32 service, __u32 group, const struct sockaddr *src,
		    __u32 vslot, __u32 instance);
int steer_probe_del(struct steer *st, __u32 service, __u32 group, const struct sockaddr *src);
/* The probes key of connections from src to a group; 0 or -errno as steer_probe_add. */
int steer_probe_key_from(__u32 group, const struct sockaddr *src, struct steer_probe_key *k);
/* Remove every probe pin (a restarted agent's predecessor's); returns how many. */
int steer_probe_clear(struct steer *st);
/*
 * Count each service's probe and CIDR pins again and write the counts
 * (extras) exactly: after a restart, whatever the last agent left.
 */
int steer_extras_sync(struct steer *st);
/* A service's counts as the program sees them. */
int steer_extras_get(struct steer *st, __u32 service, struct steer_extras *e);
/* Counters of one group, summed over CPUs. */
int steer_group_stats(struct steer *st, __u32 group, struct steer_stats *sum);

/*
 * A client CIDR: family AF_INET (address in the first 4 bytes of addr) or
 * AF_INET6; network byte order; len in 0..32 or 0..128, host bits zero.
 */
struct steer_cidr {
	int family;
	__u8 addr[16];
	int len;
};

/*
 * Parse "10.1.0.0/16", "2001:db8::/32", or a bare address (/32, /128).
 * Returns 0, or -1 with a one-line message in err that names what is wrong;
 * host bits set are an error that suggests the network meant.
 */
int steer_cidr_parse(const char *s, struct steer_cidr *c, char *err, size_t errlen);
/* "a.b.c.d/len" or "x::/len" into buf: 0, -EINVAL (bad cidr) or -ENOSPC. */
int steer_cidr_format(const struct steer_cidr *c, char *buf, size_t len);

/*
 * CIDR pins: clients of service in c go to version (its user-visible number)
 * while a slot of that version is ACTIVE, whatever the weights; otherwise
 * the weights decide.  The longest matching prefix wins.  IPv4 pins are
 * stored IPv4-mapped, so an IPv6 prefix shorter than /96 that covers
 * ::ffff:0:0/96 (::/0 .. ::/80) would also catch every IPv4 client: those
 * are refused with -EINVAL, as are version 0, host bits and bad lengths.
 */
/* Add or replace: 0 or -errno. */
int steer_pin_set(struct steer *st, __u32 service, const struct steer_cidr *c, __u32 version);
/* 0, -ENOENT if there is no pin for exactly c, or -errno. */
int steer_pin_del(struct steer *st, __u32 service, const struct steer_cidr *c);
/*
 * The pins of service, at most max of them into out[] and versions[]
 * (either may be NULL when max is 0).  Returns how many were stored, or
 * -errno; max = MAX_PINS always gets them all.
 */
int steer_pin_list(struct steer *st, __u32 service, struct steer_cidr *out, __u32 *versions,
		   int max);
/* Remove every pin of service that points at version: how many, or -errno. */
int steer_pin_del_version(struct steer *st, __u32 service, __u32 version);

/* Is dir on a bpf filesystem?  0, -ENOENT (no such dir), -ENODEV (not bpffs). */
int bpffs_check(const char *dir);

#endif /* BATON_STEER_USER_H */
