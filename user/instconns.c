/* SPDX-License-Identifier: MIT */
/*
 * Each instance's live connections (instconns.h): one sock_diag dump per
 * family for the inodes of established sockets on the service's ports,
 * then each instance's /proc/PID/fd.  Bounded: at most INODES_MAX sockets
 * are looked at, and it runs once per retired instance.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "instconns.h"

#define INODES_MAX (1 << 18)

struct inodes {
	unsigned long *ino;
	size_t n;
};

static bool port_of(const struct service_conf *c, unsigned port)
{
	int j;

	for (j = 0; j < c->nlisten; j++) {
		const struct sockaddr_storage *ss = &c->listen[j].ss;
		unsigned p = ss->ss_family == AF_INET6
				 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
				 : ntohs(((const struct sockaddr_in *)ss)->sin_port);

		if (p == port)
			return true;
	}
	return false;
}

/*
 * One sock_diag dump of a family's TCP sockets in the established and
 * close-wait states (the kernel filters the states: TIME_WAIT, which
 * connection-per-request load leaves by the ten thousand, is never read).
 * Local, answered at once by the kernel: no wait on anyone.
 */
static int scan(int family, const struct service_conf *c, struct inodes *set)
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
		  .idiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_CLOSE_WAIT)},
	};
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	int fd, r = 0;
	bool done = false;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, sizeof(req), 0) < 0) {
		r = -errno;
		goto out;
	}
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				r = -EPROTO;
				done = true;
				break;
			}
			if (set->n < INODES_MAX && m->idiag_inode &&
			    port_of(c, ntohs(m->id.idiag_sport)))
				set->ino[set->n++] = m->idiag_inode;
		}
	}
out:
	close(fd);
	return r;
}

static int cmp_ino(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

static long long count_pid(pid_t pid, const struct inodes *set)
{
	char dir[64], path[384], link[64];
	struct dirent *de;
	long long n = 0;
	unsigned long ino;
	ssize_t len;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1 &&
		    bsearch(&ino, set->ino, set->n, sizeof(ino), cmp_ino))
			n++;
	}
	closedir(d);
	return n;
}

int instance_conns(const struct version *v, long long n[MAX_INSTANCES])
{
	const struct service_conf *c = &v->svc->conf;
	struct inodes set = {.ino = malloc(INODES_MAX * sizeof(unsigned long))};
	int i, r;

	if (!set.ino)
		return -ENOMEM;
	r = scan(AF_INET, c, &set);
	if (!r)
		r = scan(AF_INET6, c, &set);
	if (r) {
		free(set.ino);
		return r;
	}
	qsort(set.ino, set.n, sizeof(set.ino[0]), cmp_ino);
	for (i = 0; i < MAX_INSTANCES; i++)
		n[i] = i < v->ninst && v->inst[i].alive ? count_pid(v->inst[i].pid, &set) : -1;
	free(set.ino);
	return 0;
}
