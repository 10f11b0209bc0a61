/* SPDX-License-Identifier: MIT */
/*
 * The cgroup a listening socket was made in, asked of the kernel (sock_diag
 * reports each socket's cgroup v2 id, INET_DIAG_CGROUP_ID, since 5.9), not
 * of the process that holds it: systemd makes a socket unit's listeners in
 * its own cgroup and hands them to the server, and a process can move after
 * making them.  Connections accepted from a listener belong to its cgroup,
 * so that is where the track program must run.
 */
#ifndef BATON_SOCKCG_H
#define BATON_SOCKCG_H

#include <stddef.h>
#include <linux/types.h>

/*
 * For each of the n listener cookies, the cgroup v2 id of its socket (0 when
 * not found): one dump of the host's TCP listeners (IPv4 and IPv6), bounded
 * by a 1 s receive timeout.  Returns 0, or -errno when the kernel did not
 * answer (ids are then all 0).
 */
int sock_cgroup_ids(const __u64 *cookies, int n, __u64 *ids);
/* The path of the cgroup v2 with this id (open_by_handle_at on the mount), or -errno. */
int cgroup_path_of(__u64 id, char *path, size_t len);

#endif
