/* SPDX-License-Identifier: MIT */
/*
 * Finding the previous agent's sockets map (a reuseport socket array whose
 * pin was removed) by the cookies of the listeners in it.
 */
#ifndef BATON_ORPHAN_H
#define BATON_ORPHAN_H

#include <stdbool.h>
#include <linux/types.h>

struct orphan {
	int fd; /* the map, or -1 */
	__u32 id;
	__u32 max_entries;
	int n;
	struct orphan_entry {
		__u64 cookie;
		__u32 slot;
	} * e; /* one per cookie found, at most one per index of the map */
};

/*
 * Find the map named "sockets" that holds any of cookies: 0 with o->fd and
 * where each of those cookies sits, or -ENOENT (o->fd is -1).
 */
int orphan_find(struct orphan *o, const __u64 *cookies, int n);
/* Where cookie sat in the map when it was found: 0, or -ENOENT. */
int orphan_slot(const struct orphan *o, __u64 cookie, __u32 *slot);
/* Take the socket with cookie out of the map, so that another map can hold it. */
int orphan_evict(struct orphan *o, __u64 cookie);
void orphan_close(struct orphan *o);

#endif
