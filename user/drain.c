/* SPDX-License-Identifier: MIT */
/* Loads bpf/drain.bpf.c: open -> share conns -> load -> attach sk_msg to the sockhash, iter link.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "drain.skel.h"
#include "drain_user.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int drain_supported(char *err, size_t errlen)
{
	return drain_supported_for("drain-http", err, errlen);
}

int drain_supported_for(const char *key, char *err, size_t errlen)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL) != 1) {
		snprintf(err, errlen,
			 "%s needs sk_msg BPF programs, which this kernel lacks "
			 "(CONFIG_BPF_STREAM_PARSER); remove %s or use Linux 6.0 or later",
			 key, key);
		return -EOPNOTSUPP;
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL) != 1) {
		snprintf(err, errlen,
			 "%s needs the sockhash BPF map, which this kernel lacks "
			 "(CONFIG_BPF_STREAM_PARSER); remove %s",
			 key, key);
		return -EOPNOTSUPP;
	}
	/*
	 * iter/tcp took each socket's spinlock (lock_sock_fast) from 5.15 to
	 * 5.19, under which the sockhash update of drain_join would deadlock;
	 * 6.0 takes lock_sock().  The kernel has no feature bit for it.
	 */
	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2 || major < 6) {
		snprintf(err, errlen,
			 "%s needs Linux 6.0 or later (iter/tcp with sockhash updates), "
			 "this is %s; remove %s",
			 key, u.release, key);
		return -EOPNOTSUPP;
	}
	return drain_probe_for(key, err, errlen);
}

int drain_probe(char *err, size_t errlen)
{
	return drain_probe_for("drain-http", err, errlen);
}

int drain_probe_for(const char *key, char *err, size_t errlen)
{
	struct drain_bpf *skel = drain_bpf__open();
	struct bpf_link *iter = NULL;
	struct bpf_map *m;
	int r;

	if (!skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the drain program: %s", strerror(errno));
		return r;
	}
	/* Nothing pinned: the probe's maps go with it. */
	bpf_object__for_each_map(m, skel->obj) bpf_map__set_pin_path(m, NULL);
	r = drain_bpf__load(skel);
	if (r) {
		snprintf(err, errlen,
			 "this kernel refuses the drain program (%s); remove %s "
			 "(baton -v ... shows the verifier's log; docs/kernels.md)",
			 strerror(-r), key);
		goto out;
	}
	iter = bpf_program__attach_iter(skel->progs.drain_join, NULL);
	if (!iter) {
		r = -errno;
		snprintf(err, errlen,
			 "this kernel cannot make the drain iterator (iter/tcp): %s; remove %s",
			 strerror(errno), key);
	}
out:
	bpf_link__destroy(iter);
	drain_bpf__destroy(skel);
	return r ? -EOPNOTSUPP : 0;
}

int drain_open(struct drain *d, const char *pin_dir, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	int r;

	memset(d, 0, sizeof(*d));
	d->iter_fd = -1;
	d->skel = drain_bpf__open_opts(&opts);
	if (!d->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the drain program: %s", strerror(errno));
		return r;
	}
	/* http_est sees every TCP socket of its cgroups, in every network namespace. */
	{
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		__u64 cookie = 0;
		socklen_t len = sizeof(cookie);

		if (fd >= 0 && !getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
			d->skel->rodata->netns_cookie = cookie;
		if (fd >= 0)
			close(fd);
	}
	r = drain_bpf__load(d->skel);
	if (r) {
		snprintf(err, errlen,
			 "cannot load the drain program: %s (drain-http needs sk_msg, sockhash, "
			 "iter/tcp and bpf_loop: Linux 6.0 or later)",
			 strerror(-r));
		goto fail;
	}
	d->versions_fd = bpf_map__fd(d->skel->maps.drain_versions);
	d->socks_fd = bpf_map__fd(d->skel->maps.drain_socks);
	r = bpf_prog_attach(bpf_program__fd(d->skel->progs.drain_msg), d->socks_fd,
			    BPF_SK_MSG_VERDICT, 0);
	if (r) {
		r = -errno;
		snprintf(err, errlen, "cannot attach the drain sk_msg program: %s",
			 strerror(errno));
		goto fail;
	}
	d->iter = bpf_program__attach_iter(d->skel->progs.drain_join, NULL);
	if (!d->iter) {
		r = -errno;
		snprintf(err, errlen, "cannot make the drain iterator (iter/tcp): %s",
			 strerror(errno));
		goto fail;
	}
	return 0;
fail:
	drain_close(d);
	return r;
}

void drain_close(struct drain *d)
{
	int i;

	for (i = 0; i < d->nest; i++)
		bpf_link__destroy(d->est[i]);
	if (d->iter_fd >= 0)
		close(d->iter_fd);
	bpf_link__destroy(d->iter);
	/* The sockhash goes with the object: its connections go back to the plain path. */
	drain_bpf__destroy(d->skel);
	memset(d, 0, sizeof(*d));
	d->iter_fd = -1;
}

int drain_version(struct drain *d, __u32 service, __u32 version, int on)
{
	struct version_key k = {.service = service, .version = version};
	struct drain_stats z = {0};

	if (on)
		return bpf_map_update_elem(d->versions_fd, &k, &z, BPF_NOEXIST) && errno != EEXIST
			   ? -errno
			   : 0;
	if (bpf_map_delete_elem(d->versions_fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int drain_stats(struct drain *d, __u32 service, __u32 version, struct drain_stats *st)
{
	struct version_key k = {.service = service, .version = version};

	return bpf_map_lookup_elem(d->versions_fd, &k, st) ? -errno : 0;
}

int drain_inst(struct drain *d, __u32 service, __u32 version, __u32 inst, int on)
{
	struct drain_inst_key k = {.service = service, .version = version, .inst = inst + 1};
	int fd = bpf_map__fd(d->skel->maps.drain_insts);
	struct drain_stats z = {0};

	if (on)
		return bpf_map_update_elem(fd, &k, &z, BPF_NOEXIST) && errno != EEXIST ? -errno : 0;
	if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int drain_inst_stats(struct drain *d, __u32 service, __u32 version, __u32 inst,
		     struct drain_stats *st)
{
	struct drain_inst_key k = {.service = service, .version = version, .inst = inst + 1};

	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.drain_insts), &k, st) ? -errno : 0;
}

int drain_resteer(struct drain *d, __u32 service, int on)
{
	int fd = bpf_map__fd(d->skel->maps.drain_resteer);
	struct drain_stats z = {0};

	if (on)
		return bpf_map_update_elem(fd, &service, &z, BPF_NOEXIST) && errno != EEXIST
			   ? -errno
			   : 0;
	if (bpf_map_delete_elem(fd, &service) && errno != ENOENT)
		return -errno;
	return 0;
}

int drain_resteer_stats(struct drain *d, __u32 service, struct drain_stats *st)
{
	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.drain_resteer), &service, st) ? -errno
											   : 0;
}

int drain_pass_step(struct drain *d, int budget, int *changed)
{
	char buf[512];
	ssize_t n;

	*changed = 0;
	if (budget > (int)sizeof(buf))
		budget = sizeof(buf);
	if (budget < 1)
		budget = 1;
	if (d->iter_fd < 0) {
		d->iter_fd = bpf_iter_create(bpf_link__fd(d->iter));
		if (d->iter_fd < 0)
			return -errno;
	}
	/* drain_join writes one byte per connection it moved: budget bytes, budget moves. */
	n = read(d->iter_fd, buf, budget);
	if (n < 0) {
		int r = -errno;

		if (r == -EAGAIN || r == -EINTR)
			return 1;
		close(d->iter_fd);
		d->iter_fd = -1;
		return r;
	}
	*changed = (int)n;
	if (n > 0)
		return 1;
	close(d->iter_fd);
	d->iter_fd = -1;
	return 0;
}

int drain_members(struct drain *d)
{
	struct conn_key k, next;
	int n = 0;
	void *prev = NULL;

	while (n < DRAIN_MAX_SOCKS && !bpf_map_get_next_key(d->socks_fd, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

int drain_measure(struct drain *d, __u32 service, __u32 version, int on)
{
	int fd = bpf_map__fd(d->skel->maps.http_versions);
	struct version_key k = {.service = service, .version = version};
	struct http_counts z = {0};

	if (on)
		return bpf_map_update_elem(fd, &k, &z, BPF_NOEXIST) && errno != EEXIST ? -errno : 0;
	if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int drain_http_counts(struct drain *d, __u32 service, __u32 version, struct http_counts *c)
{
	struct version_key k = {.service = service, .version = version};

	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.http_versions), &k, c) ? -errno : 0;
}

int drain_measure_attach(struct drain *d, __u64 id, int cgfd, char *err, size_t errlen)
{
	struct bpf_link *l;
	int j;

	for (j = 0; j < d->nest && d->est_id[j] != id; j++)
		;
	if (j < d->nest)
		return 0;
	if (d->nest == DRAIN_MAX_CGROUPS) {
		snprintf(err, errlen, "measure-http follows %d cgroups already", DRAIN_MAX_CGROUPS);
		return -ENOSPC;
	}
	l = bpf_program__attach_cgroup(d->skel->progs.http_est, cgfd);
	if (!l) {
		int r = -errno;

		snprintf(err, errlen, "cannot attach the measure-http sock_ops program: %s",
			 strerror(errno));
		return r;
	}
	d->est_id[d->nest] = id;
	d->est[d->nest++] = l;
	return 0;
}
