/* SPDX-License-Identifier: MIT */
/* The cgroup a listening socket was made in (see sockcg.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "sockcg.h"
#include "track_user.h"

/* The kernfs file handle type of a cgroup: its 64-bit id (include/linux/exportfs.h). */
#define FILEID_KERNFS 0xfe

static __u64 cgroup_attr(const struct nlmsghdr *h)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct rtattr *a = (const struct rtattr *)(m + 1);
	__u64 id;

	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == INET_DIAG_CGROUP_ID && RTA_PAYLOAD(a) >= sizeof(id)) {
			memcpy(&id, RTA_DATA(a), sizeof(id));
			return id;
		}
	return 0;
}

/* One family's listeners: fill the ids of the cookies found. */
static int dump(int fd, int family, const __u64 *cookies, int n, __u64 *ids)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
	    .nlh = {.nlmsg_len = sizeof(req),
		    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
	    .r = {.sdiag_family = (__u8)family,
		  .sdiag_protocol = IPPROTO_TCP,
		  .idiag_states = 1u << TCP_LISTEN},
	};
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			return -errno;
		if (len == 0)
			return -EPROTO;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			__u64 cookie;
			int k;

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -EPROTO;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			cookie = (__u64)m->id.idiag_cookie[0] | (__u64)m->id.idiag_cookie[1] << 32;
			for (k = 0; k < n; k++)
				if (cookies[k] == cookie)
					ids[k] = cgroup_attr(h);
		}
	}
}

int sock_cgroup_ids(const __u64 *cookies, int n, __u64 *ids)
{
	struct timeval tv = {.tv_sec = 1};
	int fd, r;

	memset(ids, 0, sizeof(*ids) * (size_t)n);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = dump(fd, AF_INET, cookies, n, ids);
	if (!r)
		r = dump(fd, AF_INET6, cookies, n, ids);
	close(fd);
	if (r)
		memset(ids, 0, sizeof(*ids) * (size_t)n);
	return r;
}

int cgroup_path_of(__u64 id, char *path, size_t len)
{
	union {
		struct file_handle fh;
		char b[sizeof(struct file_handle) + sizeof(__u64)];
	} h;
	char root[PATH_MAX], proc[64];
	int mfd, fd, r = 0;
	ssize_t l;

	if (cgroup2_root(root, sizeof(root)))
		return -ENOENT;
	mfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = sizeof(id);
	h.fh.handle_type = FILEID_KERNFS;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	close(mfd);
	if (r)
		return r;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	l = readlink(proc, path, len - 1);
	if (l < 0)
		r = -errno;
	else
		path[l] = '\0';
	close(fd);
	return r;
}
