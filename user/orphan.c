/* SPDX-License-Identifier: MIT */
/*
 * The previous agent's sockets map when its pin is gone.  A listener can be
 * in one reuseport socket array only, and the previous agent's program
 * keeps its array (and every listener in it) alive while any group still
 * runs it, so a new agent with a new array could place nothing.  The map is
 * found by the socket cookies the state file lists (the kernel answers a
 * lookup in a reuseport array with the cookie of the socket at that index).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "orphan.h"

static bool has_cookie(const __u64 *cookies, int n, __u64 c)
{
	int i;

	for (i = 0; i < n; i++)
		if (cookies[i] == c)
			return true;
	return false;
}

/* Every index of the array at fd that holds one of cookies, into o; how many. */
static int scan(struct orphan *o, int fd, __u32 max_entries, const __u64 *cookies, int n)
{
	__u32 k;

	o->n = 0;
	for (k = 0; k < max_entries && o->n < n; k++) {
		__u64 c;

		if (bpf_map_lookup_elem(fd, &k, &c) || !has_cookie(cookies, n, c))
			continue;
		o->e[o->n].cookie = c;
		o->e[o->n].slot = k;
		o->n++;
	}
	return o->n;
}

int orphan_find(struct orphan *o, const __u64 *cookies, int n)
{
	__u32 id = 0;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (n <= 0)
		return -ENOENT;
	o->e = calloc(n, sizeof(*o->e));
	if (!o->e)
		return -ENOMEM;
	/* Bounded: map ids only grow, and get_next_id ends at the last one. */
	while (!bpf_map_get_next_id(id, &id)) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_map_get_fd_by_id(id);

		if (fd < 0)
			continue; /* freed since */
		if (bpf_obj_get_info_by_fd(fd, &info, &len) ||
		    info.type != BPF_MAP_TYPE_REUSEPORT_SOCKARRAY || info.key_size != 4 ||
		    info.value_size != 8 || strcmp(info.name, "sockets") ||
		    !scan(o, fd, info.max_entries, cookies, n)) {
			close(fd);
			continue;
		}
		o->fd = fd;
		o->id = id;
		o->max_entries = info.max_entries;
		return 0;
	}
	free(o->e);
	o->e = NULL;
	return -ENOENT;
}

int orphan_slot(const struct orphan *o, __u64 cookie, __u32 *slot)
{
	int i;

	for (i = 0; i < o->n; i++)
		if (o->e[i].cookie == cookie) {
			*slot = o->e[i].slot;
			return 0;
		}
	return -ENOENT;
}

int orphan_evict(struct orphan *o, __u64 cookie)
{
	__u32 slot;

	if (o->fd < 0 || orphan_slot(o, cookie, &slot))
		return -ENOENT;
	if (bpf_map_delete_elem(o->fd, &slot) && errno != ENOENT)
		return -errno;
	return 0;
}

void orphan_close(struct orphan *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	free(o->e);
	o->e = NULL;
	o->n = 0;
}
