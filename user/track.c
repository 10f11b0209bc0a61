/* SPDX-License-Identifier: MIT */
/* Loads bpf/track.bpf.c: open -> pin root -> load -> attach to the cgroup v2 root. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "track.skel.h"
#include "track_user.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int cgroup2_root(char *buf, size_t len)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/self/mounts", "r");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(buf, len, "%s", m->mnt_dir);
			r = 0;
			break;
		}
	endmntent(f);
	return r;
}

struct ring_ctx {
	track_zero_fn fn;
	void *ctx;
};

static struct ring_ctx ring_ctx;

static int on_sample(void *ctx, void *data, size_t len)
{
	struct ring_ctx *rc = ctx;

	if (len >= sizeof(struct track_event))
		rc->fn(rc->ctx, data);
	return 0;
}

int track_open(struct track *t, const char *pin_dir, track_zero_fn fn, void *ctx, char *err,
	       size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	char cg[PATH_MAX], link_path[PATH_MAX];
	int cgfd, r;

	memset(t, 0, sizeof(*t));
	r = cgroup2_root(cg, sizeof(cg));
	if (r) {
		snprintf(err, errlen,
			 "cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup/unified), "
			 "needed to count connections");
		return r;
	}
	t->skel = track_bpf__open_opts(&opts);
	if (!t->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the track program: %s", strerror(errno));
		return r;
	}
	/*
	 * The program sees every TCP socket of the host, in every network
	 * namespace; baton's are in the agent's.  Another namespace may hold a
	 * connection with the same 4-tuple (containers, or two agents), which
	 * must not take a decision or a count of ours.
	 */
	{
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		__u64 cookie = 0;
		socklen_t len = sizeof(cookie);

		if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0) {
			r = -errno;
			snprintf(err, errlen,
				 "cannot read this network namespace's cookie (SO_NETNS_COOKIE, "
				 "Linux 5.14 or later): %s",
				 strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
		t->skel->rodata->netns_cookie = cookie;
	}
	r = track_bpf__load(t->skel);
	if (r) {
		snprintf(err, errlen,
			 "cannot load the track program: %s (needs sock_ops and BTF; maps pinned "
			 "in %s from another build? remove them with: rm -r %s)",
			 strerror(-r), pin_dir, pin_dir);
		goto fail;
	}
	snprintf(link_path, sizeof(link_path), "%s/track_link", pin_dir);
	/* A pinned link from an earlier agent: swap in this program, keep one attachment. */
	t->link = access(link_path, F_OK) == 0 ? bpf_link__open(link_path) : NULL;
	if (t->link && bpf_link__update_program(t->link, t->skel->progs.track)) {
		bpf_link__unpin(t->link);
		bpf_link__destroy(t->link);
		t->link = NULL;
	}
	if (!t->link) {
		cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot open cgroup root %s: %s", cg,
				 strerror(errno));
			goto fail;
		}
		t->link = bpf_program__attach_cgroup(t->skel->progs.track, cgfd);
		close(cgfd);
		if (!t->link) {
			r = -errno;
			snprintf(err, errlen, "cannot attach the track program to %s: %s", cg,
				 strerror(errno));
			goto fail;
		}
		r = bpf_link__pin(t->link, link_path);
		if (r) {
			snprintf(err, errlen, "cannot pin %s: %s", link_path, strerror(-r));
			goto fail;
		}
	}
	ring_ctx.fn = fn;
	ring_ctx.ctx = ctx;
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_sample, &ring_ctx, NULL);
	if (!t->rb) {
		r = -errno;
		snprintf(err, errlen, "cannot open the event ring buffer: %s", strerror(errno));
		goto fail;
	}
	t->versions_fd = bpf_map__fd(t->skel->maps.versions);
	t->watch_fd = bpf_map__fd(t->skel->maps.drain_watch);
	return 0;
fail:
	track_close(t);
	return r;
}

void track_close(struct track *t)
{
	ring_buffer__free(t->rb);
	/* Dropping our reference leaves the pinned link (and counting) in place. */
	bpf_link__destroy(t->link);
	track_bpf__destroy(t->skel);
	memset(t, 0, sizeof(*t));
}

int track_ring_fd(struct track *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

int track_ring_consume(struct track *t)
{
	return ring_buffer__consume(t->rb);
}

int track_register(struct track *t, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};
	struct version_counts c = {0};

	return bpf_map_update_elem(t->versions_fd, &k, &c, BPF_ANY) ? -errno : 0;
}

int track_forget(struct track *t, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};

	bpf_map_delete_elem(t->watch_fd, &k);
	if (bpf_map_delete_elem(t->versions_fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int track_counts(struct track *t, __u32 service, __u32 version, struct version_counts *c)
{
	struct version_key k = {.service = service, .version = version};

	return bpf_map_lookup_elem(t->versions_fd, &k, c) ? -errno : 0;
}

int track_watch(struct track *t, __u32 service, __u32 version, int on)
{
	struct version_key k = {.service = service, .version = version};
	__u32 one = 1;

	if (on)
		return bpf_map_update_elem(t->watch_fd, &k, &one, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(t->watch_fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

/* One SOCK_DESTROY request over sock_diag for the connection k; 0 or -errno. */
static int destroy_one(int nl, const struct conn_key *k)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
	    .nlh = {.nlmsg_len = sizeof(msg),
		    .nlmsg_type = SOCK_DESTROY,
		    .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK},
	    .req = {.sdiag_family = (__u8)k->family,
		    .sdiag_protocol = IPPROTO_TCP,
		    .idiag_states = ~0U,
		    .id = {.idiag_sport = htons(k->lport),
			   .idiag_dport = htons(k->rport),
			   .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
	};
	struct {
		struct nlmsghdr nlh;
		struct nlmsgerr err;
	} ack;
	ssize_t n;

	memcpy(msg.req.id.idiag_src, k->laddr, sizeof(k->laddr));
	memcpy(msg.req.id.idiag_dst, k->raddr, sizeof(k->raddr));
	if (send(nl, &msg, sizeof(msg), 0) < 0)
		return -errno;
	n = recv(nl, &ack, sizeof(ack), 0);
	if (n < 0)
		return -errno;
	if (n < (ssize_t)sizeof(ack) || ack.nlh.nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ack.err.error;
}

int track_reset_version(struct track *t, __u32 service, __u32 version)
{
	int conns_fd = bpf_map__fd(t->skel->maps.conns);
	struct conn_key k, next, *prev = NULL;
	struct conn_key batch[256];
	struct conn_owner o;
	struct timeval tv = {.tv_sec = 1};
	int nl, n = 0, done = 0, r, i;

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Collect first: destroying while iterating would skip keys. */
	for (;;) {
		n = 0;
		prev = NULL;
		while (n < 256 && !bpf_map_get_next_key(conns_fd, prev, &next)) {
			k = next;
			prev = &k;
			if (!bpf_map_lookup_elem(conns_fd, &k, &o) && o.service == service &&
			    o.version == version)
				batch[n++] = k;
		}
		for (i = 0; i < n; i++) {
			r = destroy_one(nl, &batch[i]);
			if (r == -EOPNOTSUPP) {
				close(nl);
				return r;
			}
			if (!r)
				done++;
			else /* gone meanwhile, or not in this namespace: stop counting it */
				bpf_map_delete_elem(conns_fd, &batch[i]);
		}
		if (n < 256)
			break;
	}
	close(nl);
	return done;
}

int listener_drops(int fd, __u64 *drops)
{
	__u32 mem[SK_MEMINFO_VARS] = {0};
	socklen_t len = sizeof(mem);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0)
		return -errno;
	/* An older kernel may fill fewer fields than this header knows. */
	if (len < (SK_MEMINFO_DROPS + 1) * sizeof(mem[0]))
		return -EOPNOTSUPP;
	*drops = mem[SK_MEMINFO_DROPS];
	return 0;
}
