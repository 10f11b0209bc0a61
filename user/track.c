/* SPDX-License-Identifier: MIT */
/* Loads bpf/track.bpf.c: open -> pin root -> load -> attach to the cgroup v2 root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "track.skel.h"
#include "steer_user.h"
#include "nlack.h"
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

/* The cgroup id a cgroup link is attached to, or 0. */
static __u64 link_cgroup(struct bpf_link *l)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (!l || bpf_obj_get_info_by_fd(bpf_link__fd(l), &info, &len) ||
	    info.type != BPF_LINK_TYPE_CGROUP)
		return 0;
	return info.cgroup.cgroup_id;
}

/* A cgroup v2 directory's id: its inode number (kernfs ids are 64-bit inode numbers). */
static __u64 cgroup_id(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (__u64)st.st_ino;
}

/* Links an earlier agent pinned for adopted servers' cgroups: this program, in place. */
static void reopen_extra(struct track *t)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(t->pin_dir);

	if (!d)
		return;
	while ((e = readdir(d)) && t->nextra < TRACK_MAX_EXTRA) {
		struct bpf_link *l;

		if (strncmp(e->d_name, "track_link_", 11))
			continue;
		snprintf(path, sizeof(path), "%s/%s", t->pin_dir, e->d_name);
		l = bpf_link__open(path);
		if (!l)
			continue;
		if (bpf_link__update_program(l, t->skel->progs.track)) {
			bpf_link__unpin(l);
			bpf_link__destroy(l);
			continue;
		}
		t->extra_id[t->nextra] = link_cgroup(l);
		t->extra[t->nextra++] = l;
	}
	closedir(d);
}

static struct bpf_link *attach_at(struct track *t, const char *path, char *err, size_t errlen)
{
	struct bpf_link *l;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the cgroup %s: %s", path, strerror(errno));
		return NULL;
	}
	l = bpf_program__attach_cgroup(t->skel->progs.track, fd);
	close(fd);
	if (!l)
		snprintf(err, errlen, "cannot attach the track program to %s: %s", path,
			 strerror(errno));
	return l;
}

int track_scope(struct track *t, const char *path, char *err, size_t errlen)
{
	char link_path[PATH_MAX];
	struct bpf_link *l, *old = t->link;
	__u64 id = cgroup_id(path);
	int r;

	if (!id) {
		snprintf(err, errlen, "cannot find the cgroup %s: %s", path, strerror(errno));
		return -ENOENT;
	}
	if (old && link_cgroup(old) == id)
		return 0;
	l = attach_at(t, path, err, errlen);
	if (!l)
		return -errno ? -errno : -EINVAL;
	/* Counting goes on through the old attachment until the new one is pinned. */
	snprintf(link_path, sizeof(link_path), "%s/track_link", t->pin_dir);
	if (old)
		bpf_link__unpin(old);
	r = bpf_link__pin(l, link_path);
	if (r) {
		snprintf(err, errlen, "cannot pin %s: %s", link_path, strerror(-r));
		if (old)
			bpf_link__pin(old, link_path);
		bpf_link__destroy(l);
		return r;
	}
	bpf_link__destroy(old);
	t->link = l;
	return 0;
}

/* Whether the program runs for sockets made in the cgroup with this id. */
static bool attached_to(struct track *t, __u64 id)
{
	int i;

	if (id && id == link_cgroup(t->link))
		return true;
	for (i = 0; i < t->nextra; i++)
		if (id && t->extra_id[i] == id)
			return true;
	return false;
}

int track_cover(struct track *t, const char *path, char *err, size_t errlen)
{
	char p[PATH_MAX], root[PATH_MAX], link_path[PATH_MAX + 32];
	struct bpf_link *l;
	__u64 id = cgroup_id(path);
	int r;

	if (!id) {
		snprintf(err, errlen, "cannot find the cgroup %s: %s", path, strerror(errno));
		return -ENOENT;
	}
	if (cgroup2_root(root, sizeof(root)) || strlen(path) >= sizeof(p))
		return -ENOENT;
	/* It, or a cgroup above it up to the mount, has the program already. */
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		char *slash;

		if (attached_to(t, cgroup_id(p)))
			return 0;
		if (strlen(p) <= strlen(root))
			break;
		slash = strrchr(p, '/');
		if (!slash || (size_t)(slash - p) < strlen(root))
			snprintf(p, sizeof(p), "%s", root);
		else
			*slash = '\0';
	}
	if (t->nextra == TRACK_MAX_EXTRA) {
		snprintf(err, errlen,
			 "the track program is attached to %d cgroups already (adopted servers "
			 "in as many cgroups); cannot count connections made in %s",
			 TRACK_MAX_EXTRA, path);
		return -ENOSPC;
	}
	l = attach_at(t, path, err, errlen);
	if (!l)
		return -errno ? -errno : -EINVAL;
	snprintf(link_path, sizeof(link_path), "%s/track_link_%llu", t->pin_dir,
		 (unsigned long long)id);
	r = bpf_link__pin(l, link_path);
	if (r) {
		snprintf(err, errlen, "cannot pin %s: %s", link_path, strerror(-r));
		bpf_link__destroy(l);
		return r;
	}
	t->extra_id[t->nextra] = id;
	t->extra[t->nextra++] = l;
	return 0;
}

int track_extra(struct track *t, __u64 *ids, int max)
{
	int i;

	for (i = 0; i < t->nextra && i < max; i++)
		ids[i] = t->extra_id[i];
	return i;
}

int track_uncover(struct track *t, __u64 id)
{
	int i;

	for (i = 0; i < t->nextra && t->extra_id[i] != id; i++)
		;
	if (i == t->nextra)
		return -ENOENT;
	bpf_link__unpin(t->extra[i]);
	bpf_link__destroy(t->extra[i]);
	t->nextra--;
	t->extra[i] = t->extra[t->nextra];
	t->extra_id[i] = t->extra_id[t->nextra];
	return 0;
}

int track_cgroups(struct track *t, __u64 *ids, int max)
{
	int n = 0, i;

	if (t->link && n < max)
		ids[n++] = link_cgroup(t->link);
	for (i = 0; i < t->nextra && n < max; i++)
		ids[n++] = t->extra_id[i];
	return n;
}

int track_open(struct track *t, const char *pin_dir, bool attach_root, track_zero_fn fn, void *ctx,
	       char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	char cg[PATH_MAX], link_path[PATH_MAX];
	int r;

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
	if (r && pin_mismatch(t->skel->obj, link_path, sizeof(link_path))) {
		snprintf(err, errlen,
			 "cannot load the track program: %s (remove the pins: rm -r %s, then "
			 "restart)",
			 link_path, pin_dir);
		goto fail;
	}
	if (r) {
		snprintf(err, errlen,
			 "cannot load the track program: %s (needs sock_ops and BTF; maps pinned "
			 "in %s from another build? remove them with: rm -r %s; -v shows libbpf's "
			 "messages)",
			 strerror(-r), pin_dir, pin_dir);
		goto fail;
	}
	snprintf(t->pin_dir, sizeof(t->pin_dir), "%s", pin_dir);
	snprintf(link_path, sizeof(link_path), "%s/track_link", pin_dir);
	/* A pinned link from an earlier agent: swap in this program, keep one attachment. */
	t->link = access(link_path, F_OK) == 0 ? bpf_link__open(link_path) : NULL;
	if (!t->link && access(link_path, F_OK) == 0) {
		r = -EEXIST;
		snprintf(err, errlen,
			 "cannot load the track program: %s is not a pinned link (remove the "
			 "pins: rm -r %s, then restart)",
			 link_path, pin_dir);
		goto fail;
	}
	if (t->link && bpf_link__update_program(t->link, t->skel->progs.track)) {
		bpf_link__unpin(t->link);
		bpf_link__destroy(t->link);
		t->link = NULL;
	}
	reopen_extra(t);
	if (!t->link && attach_root) {
		r = track_scope(t, cg, err, errlen);
		if (r)
			goto fail;
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
	t->inst_fd = bpf_map__fd(t->skel->maps.inst_live);
	t->ncpu = libbpf_num_possible_cpus();
	if (t->ncpu <= 0) {
		r = t->ncpu ? t->ncpu : -EINVAL;
		snprintf(err, errlen, "cannot read the number of possible CPUs: %s", strerror(-r));
		goto fail;
	}
	return 0;
fail:
	track_close(t);
	return r;
}

void track_close(struct track *t)
{
	ring_buffer__free(t->rb);
	/* Dropping our references leaves the pinned links (and counting) in place. */
	bpf_link__destroy(t->link);
	while (t->nextra > 0)
		bpf_link__destroy(t->extra[--t->nextra]);
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

/*
 * inst_live's entry of a version, zero on every CPU (flags as for
 * bpf_map_update_elem).  Made before the version's counters: track counts
 * a connection's instance only when its version is counted, so no
 * connection is counted down on an instance without having been counted
 * up.
 */
static int inst_make(struct track *t, const struct version_key *k, __u64 flags)
{
	struct inst_counts *z = calloc((size_t)t->ncpu, sizeof(*z));
	int r;

	if (!z)
		return -ENOMEM;
	r = bpf_map_update_elem(t->inst_fd, k, z, flags) && errno != EEXIST ? -errno : 0;
	free(z);
	return r;
}

int track_register(struct track *t, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};
	struct version_counts c = {0};
	int r = inst_make(t, &k, BPF_ANY);

	if (r)
		return r;
	return bpf_map_update_elem(t->versions_fd, &k, &c, BPF_ANY) ? -errno : 0;
}

int track_ensure(struct track *t, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};
	struct version_counts c = {0};
	int r = inst_make(t, &k, BPF_NOEXIST);

	if (r)
		return r;
	if (bpf_map_update_elem(t->versions_fd, &k, &c, BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	return 0;
}

int track_forget(struct track *t, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};

	bpf_map_delete_elem(t->watch_fd, &k);
	if (bpf_map_delete_elem(t->versions_fd, &k) && errno != ENOENT)
		return -errno;
	if (bpf_map_delete_elem(t->inst_fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int track_inst_live(struct track *t, __u32 service, __u32 version, long long n[MAX_INSTANCES])
{
	struct version_key k = {.service = service, .version = version};
	struct inst_counts *v = calloc((size_t)t->ncpu, sizeof(*v));
	int cpu, i;

	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(t->inst_fd, &k, v)) {
		int r = -errno;

		free(v);
		return r;
	}
	for (i = 0; i < MAX_INSTANCES; i++) {
		n[i] = 0;
		for (cpu = 0; cpu < t->ncpu; cpu++)
			n[i] += v[cpu].live[i];
		/*
		 * Below 0 only for connections counted up before this entry
		 * existed (an older agent's maps): none is left on it.
		 */
		if (n[i] < 0)
			n[i] = 0;
	}
	free(v);
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

/*
 * drain-reset: SOCK_DESTROY over sock_diag netlink, the path that works on
 * 6.1 (bpf_sock_destroy from a TCP iterator needs 6.5).  The kernel handles
 * a netlink request inside the sendmsg() that carries it, so every ack is
 * queued on our socket before send() returns: many requests go in one
 * datagram, and their acks are then read without waiting.
 */

/*
 * Requests per send.  Their acks sit in the receive buffer together, and an
 * ack that does not fit is dropped: each is an skb of 832 bytes truesize
 * (measured on 6.18), so 64 take 52 KiB of the default 208 KiB.
 */
#define RESET_BATCH 64
/* Map entries read per walk call: one syscall, about 45 KiB copied. */
#define RESET_WALK 1024
/* An ack: its header, the error code and the request echoed (92 bytes). */
#define RESET_ACK_MAX 256

struct destroy_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
};

struct track_reset {
	int conns_fd;
	int nl;
	__u32 service, version;
	bool started; /* token holds the walk's position */
	bool walked;  /* the walk reached the end of the map */
	__u32 token;  /* the hash map's batch position (a bucket index) */
	__u32 seq;    /* next request's nlmsg_seq */
	long reset;
	/* keys[next..npend): connections of the version found by the walk, not yet destroyed. */
	unsigned next, npend;
	struct conn_key keys[RESET_WALK];
	struct conn_owner vals[RESET_WALK];
	char acks[RESET_BATCH][RESET_ACK_MAX];
};

int track_reset_begin(struct track *t, __u32 service, __u32 version, struct track_reset **out)
{
	struct track_reset *r = calloc(1, sizeof(*r));
	struct timespec ts;
	int err;

	if (!r)
		return -ENOMEM;
	r->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (r->nl < 0) {
		err = -errno;
		free(r);
		return err;
	}
	r->conns_fd = bpf_map__fd(t->skel->maps.conns);
	r->service = service;
	r->version = version;
	/* Not 0, and different for each reset: an ack can only match a request of this one. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->seq = (__u32)(ts.tv_nsec ^ ts.tv_sec) | 1;
	*out = r;
	return 0;
}

/* Read the next RESET_WALK map entries; keep the version's keys in keys[0..npend). */
static int reset_walk(struct track_reset *r)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 in = r->token, out = 0, count = RESET_WALK, i, n = 0;
	int err;

	/*
	 * The batch position is a bucket, not a key: entries deleted behind it
	 * (the connections this reset destroys) do not move it, unlike
	 * bpf_map_get_next_key, which restarts from the first key when its
	 * key is gone.  Connections added meanwhile may be missed; a draining
	 * version gets none.
	 */
	err = bpf_map_lookup_batch(r->conns_fd, r->started ? &in : NULL, &out, r->keys, r->vals,
				   &count, &opts);
	if (err == -ENOENT)
		r->walked = true; /* the last entries, if any, are in keys */
	else if (err)
		return err;
	r->started = true;
	r->token = out;
	for (i = 0; i < count && i < RESET_WALK; i++)
		if (r->vals[i].service == r->service && r->vals[i].version == r->version)
			r->keys[n++] = r->keys[i];
	r->next = 0;
	r->npend = n;
	return 0;
}

/* Destroy up to RESET_BATCH connections from keys[next..npend) with one send. */
static int reset_destroy(struct track_reset *r)
{
	struct destroy_req req[RESET_BATCH];
	const struct conn_key *sent[RESET_BATCH];
	bool acked[RESET_BATCH] = {false};
	struct mmsghdr mm[RESET_BATCH];
	struct iovec iov[RESET_BATCH];
	struct conn_owner o;
	__u32 base = r->seq;
	unsigned n = 0, got = 0, i;
	int m, err = 0;

	while (n < RESET_BATCH && r->next < r->npend) {
		const struct conn_key *k = &r->keys[r->next++];

		/* The walk may be a few steps old: destroy only what is still this version's. */
		if (bpf_map_lookup_elem(r->conns_fd, k, &o) || o.service != r->service ||
		    o.version != r->version)
			continue;
		memset(&req[n], 0, sizeof(req[n]));
		req[n].nlh.nlmsg_len = sizeof(req[n]);
		req[n].nlh.nlmsg_type = SOCK_DESTROY;
		req[n].nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		req[n].nlh.nlmsg_seq = base + n;
		req[n].req.sdiag_family = (__u8)k->family;
		req[n].req.sdiag_protocol = IPPROTO_TCP;
		req[n].req.idiag_states = ~0U;
		req[n].req.id.idiag_sport = htons(k->lport);
		req[n].req.id.idiag_dport = htons(k->rport);
		req[n].req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
		req[n].req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
		memcpy(req[n].req.id.idiag_src, k->laddr, sizeof(k->laddr));
		memcpy(req[n].req.id.idiag_dst, k->raddr, sizeof(k->raddr));
		sent[n++] = k;
	}
	if (!n)
		return 0;
	r->seq += n;
	if (send(r->nl, req, n * sizeof(req[0]), 0) < 0)
		return -errno;
	/* The acks are queued already; an empty queue means the rest were dropped. */
	while (got < n) {
		for (i = 0; i < RESET_BATCH; i++) {
			iov[i].iov_base = r->acks[i];
			iov[i].iov_len = sizeof(r->acks[i]);
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		m = recvmmsg(r->nl, mm, RESET_BATCH, MSG_DONTWAIT, NULL);
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0 && errno == ENOBUFS)
			continue; /* reported once: some acks were dropped; read the rest */
		if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (m < 0)
			return -errno;
		if (!m)
			break;
		for (i = 0; i < (unsigned)m; i++) {
			const struct nlmsghdr *h = (const struct nlmsghdr *)r->acks[i];
			const struct nlmsgerr *e = NLMSG_DATA(h);
			int idx = nl_ack_index(h, mm[i].msg_len, base, n, acked);

			if (idx < 0)
				continue; /* not one of this batch's acks */
			acked[idx] = true;
			got++;
			if (!e->error)
				r->reset++;
			else if (e->error == -EOPNOTSUPP)
				err = -EOPNOTSUPP; /* no CONFIG_INET_DIAG_DESTROY */
			else /* gone meanwhile, or not in this namespace: stop counting it */
				bpf_map_delete_elem(r->conns_fd, sent[idx]);
		}
	}
	/*
	 * Requests left without an ack (dropped on a full receive buffer) are
	 * not counted: whether they were reset is unknown.
	 */
	return err;
}

static __u64 mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int track_reset_step(struct track_reset *r, unsigned budget_us)
{
	__u64 end = mono_us() + budget_us;
	int err;

	/* Each round is one map read or one send of RESET_BATCH requests: the bound's grain. */
	do {
		if (r->next == r->npend) {
			if (r->walked)
				return 0;
			err = reset_walk(r);
		} else {
			err = reset_destroy(r);
		}
		if (err)
			return err;
	} while (mono_us() < end);
	return r->walked && r->next == r->npend ? 0 : 1;
}

long track_reset_count(const struct track_reset *r)
{
	return r->reset;
}

void track_reset_end(struct track_reset *r)
{
	if (!r)
		return;
	close(r->nl);
	free(r);
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
