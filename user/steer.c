/* SPDX-License-Identifier: MIT */
/*
 * Loads bpf/steer.bpf.c and programs its maps: open -> pin root -> load ->
 * attach per reuseport group.  The program itself is never pinned: each
 * group holds a reference to it, so steering survives the agent.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer.skel.h"
#include "steer_user.h"

int bpffs_check(const char *dir)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) < 0)
		return -errno;
	if (sfs.f_type != BPF_FS_MAGIC)
		return -ENODEV;
	return 0;
}

/* The directory above the pin dir must be bpffs; the pin dir is ours to make. */
static int pin_dir_prepare(const char *pin_dir, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	char *slash;
	int r;

	if (strlen(pin_dir) >= sizeof(parent) || pin_dir[0] != '/') {
		snprintf(err, errlen, "bpf pin directory must be an absolute path: %s", pin_dir);
		return -EINVAL;
	}
	strcpy(parent, pin_dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	r = bpffs_check(parent);
	if (r == -ENODEV || r == -ENOENT) {
		snprintf(err, errlen, "bpffs not mounted at %s (mount -t bpf bpf %s)", parent,
			 parent);
		return -ENODEV;
	}
	if (r) {
		snprintf(err, errlen, "cannot check %s: %s", parent, strerror(-r));
		return r;
	}
	if (mkdir(pin_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", pin_dir, strerror(errno));
		return r;
	}
	return 0;
}

int steer_open(struct steer *st, const char *pin_dir, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct steer_bpf *skel;
	int r;

	memset(st, 0, sizeof(*st));
	st->prog_fd = -1;
	r = pin_dir_prepare(pin_dir, err, errlen);
	if (r)
		return r;
	skel = steer_bpf__open_opts(&opts);
	if (!skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the steer program: %s", strerror(errno));
		return r;
	}
	r = steer_bpf__load(skel);
	if (r) {
		if (r == -EINVAL)
			snprintf(
			    err, errlen,
			    "cannot load the steer program: the maps pinned in %s do not match "
			    "this build (remove them with: rm -r %s, then restart)",
			    pin_dir, pin_dir);
		else if (r == -EPERM)
			snprintf(err, errlen,
				 "cannot load the steer program: not permitted (run as root)");
		else
			snprintf(
			    err, errlen,
			    "cannot load the steer program: %s (the kernel needs sk_reuseport "
			    "with migration, 5.14 or later; run with -vv for the verifier log)",
			    strerror(-r));
		steer_bpf__destroy(skel);
		return r;
	}
	st->skel = skel;
	st->prog_fd = bpf_program__fd(skel->progs.steer);
	st->sockets_fd = bpf_map__fd(skel->maps.sockets);
	st->groups_fd = bpf_map__fd(skel->maps.groups);
	st->services_fd = bpf_map__fd(skel->maps.services);
	st->probes_fd = bpf_map__fd(skel->maps.probes);
	st->stats_fd = bpf_map__fd(skel->maps.steer_stats);
	return 0;
}

void steer_close(struct steer *st)
{
	if (st->skel)
		steer_bpf__destroy(st->skel);
	memset(st, 0, sizeof(*st));
	st->prog_fd = -1;
}

/* Remove every pin in the directory (maps, the track link), then the directory. */
int steer_unpin(const char *pin_dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(pin_dir);
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
			if (unlink(path) < 0)
				r = -errno;
		}
	closedir(d);
	if (rmdir(pin_dir) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int steer_group_key_from(const struct sockaddr *sa, struct steer_group_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		k->family = AF_INET;
		k->port = ntohs(sin->sin_port);
		memcpy(&k->addr[0], &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		k->family = AF_INET6;
		k->port = ntohs(sin6->sin6_port);
		memcpy(k->addr, &sin6->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static int map_update(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int map_delete(int fd, const void *k)
{
	if (bpf_map_delete_elem(fd, k) && errno != ENOENT)
		return -errno;
	return 0;
}

int steer_add_group(struct steer *st, const struct sockaddr *sa, __u32 service, __u32 group)
{
	struct steer_group_key k;
	struct steer_group v = {.service = service, .group = group};
	int r;

	if (group >= MAX_GROUPS)
		return -ERANGE;
	r = steer_group_key_from(sa, &k);
	return r ? r : map_update(st->groups_fd, &k, &v);
}

int steer_del_group(struct steer *st, const struct sockaddr *sa)
{
	struct steer_group_key k;
	int r = steer_group_key_from(sa, &k);

	return r ? r : map_delete(st->groups_fd, &k);
}

int steer_place(struct steer *st, __u32 slot, int fd)
{
	__u64 v = (__u64)fd;

	if (slot >= SOCKARRAY_SIZE)
		return -ERANGE;
	return map_update(st->sockets_fd, &slot, &v);
}

int steer_remove(struct steer *st, __u32 slot)
{
	return map_delete(st->sockets_fd, &slot);
}

int steer_attach(struct steer *st, int fd)
{
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &st->prog_fd,
		       sizeof(st->prog_fd)) < 0)
		return -errno;
	return 0;
}

int steer_set_service(struct steer *st, __u32 service, const struct steer_service *p)
{
	return map_update(st->services_fd, &service, p);
}

int steer_get_service(struct steer *st, __u32 service, struct steer_service *p)
{
	return bpf_map_lookup_elem(st->services_fd, &service, p) ? -errno : 0;
}

int steer_del_service(struct steer *st, __u32 service)
{
	return map_delete(st->services_fd, &service);
}

int steer_probe_add(struct steer *st, __u32 group, __u16 sport, __u32 vslot, __u32 instance)
{
	struct steer_probe_key k = {.group = group, .sport = sport};
	struct steer_probe v = {.vslot = vslot, .instance = instance};

	return map_update(st->probes_fd, &k, &v);
}

int steer_probe_del(struct steer *st, __u32 group, __u16 sport)
{
	struct steer_probe_key k = {.group = group, .sport = sport};

	return map_delete(st->probes_fd, &k);
}

int steer_group_stats(struct steer *st, __u32 group, struct steer_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct steer_stats *per;
	int i;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc(ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(st->stats_fd, &group, per)) {
		int r = -errno;

		free(per);
		return r;
	}
	for (i = 0; i < ncpu; i++) {
		sum->selected += per[i].selected;
		sum->probes += per[i].probes;
		sum->migrated += per[i].migrated;
		sum->fallback += per[i].fallback;
		sum->dropped += per[i].dropped;
	}
	free(per);
	return 0;
}
