/* SPDX-License-Identifier: MIT */
/* Loads bpf/latency.bpf.c: open -> load (lat_socks shared by pin) -> attach; reads its histograms.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "latency.skel.h"
#include "latgraft.skel.h"
#include "lathist.h"
#include "latency_user.h"
#include "log.h"
#include "track.h"
#include "track_user.h"

/* Forget every version an earlier agent measured: only registered versions get measured. */
static void forget_all(int fd)
{
	struct version_key k, next;
	int n = 0;

	/* Deleting as we go: always ask for the first key again (bounded by the map's size). */
	while (n++ <= MAX_TRACKED_VERSIONS && !bpf_map_get_next_key(fd, NULL, &next)) {
		k = next;
		if (bpf_map_delete_elem(fd, &k))
			break;
	}
}

int latency_open(struct latency *l, const char *pin_dir, bool measure, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	int r;

	memset(l, 0, sizeof(*l));
	l->hist_fd = -1;
	l->ncpu = libbpf_num_possible_cpus();
	if (l->ncpu <= 0) {
		r = l->ncpu ? l->ncpu : -EINVAL;
		snprintf(err, errlen, "cannot count the CPUs: %s", strerror(-r));
		return r;
	}
	l->buf = calloc(l->ncpu, sizeof(*l->buf));
	if (!l->buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->skel = latency_bpf__open_opts(&opts);
	if (!l->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the latency program: %s", strerror(errno));
		goto fail;
	}
	r = latency_bpf__load(l->skel);
	if (r) {
		snprintf(err, errlen,
			 "cannot load the latency program: %s (needs cgroup_skb programs and "
			 "socket storage, Linux 5.11 or later; -v shows libbpf's messages)",
			 strerror(-r));
		goto fail;
	}
	l->hist_fd = bpf_map__fd(l->skel->maps.latency);
	forget_all(l->hist_fd);
	l->measure = measure;
	/* Attached at the first latency_follow: until a version is measured, nothing runs. */
	return 0;
fail:
	latency_close(l);
	return r;
}

/*
 * A cgroup v2 directory, opened by its id: kernfs file handles carry the
 * 64-bit id (the handle's type is the one name_to_handle_at gives the mount).
 */
int cgroup_open_id(__u64 id)
{
	struct {
		struct file_handle fh;
		unsigned char buf[MAX_HANDLE_SZ];
	} h;
	char root[4096];
	int mnt, mount_id, fd;

	if (cgroup2_root(root, sizeof(root)))
		return -ENOENT;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, root, &h.fh, &mount_id, 0) < 0)
		return -errno;
	if (h.fh.handle_bytes != sizeof(id))
		return -EOPNOTSUPP;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	mnt = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mnt < 0)
		return -errno;
	fd = open_by_handle_at(mnt, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(mnt);
	return fd;
}

/* Drop the attachments to the i-th cgroup. */
static void unfollow(struct latency *l, int i)
{
	bpf_link__destroy(l->rx[i]);
	bpf_link__destroy(l->tx[i]);
	l->ncg--;
	l->rx[i] = l->rx[l->ncg];
	l->tx[i] = l->tx[l->ncg];
	l->cg_id[i] = l->cg_id[l->ncg];
}

/* Attach both programs to the cgroup with this id: 0 or -errno with err. */
static int follow(struct latency *l, __u64 id, char *err, size_t errlen)
{
	struct bpf_link *rx, *tx = NULL;
	int fd, r = 0;

	if (l->ncg == LAT_MAX_CGROUPS) {
		snprintf(err, errlen, "attached to %d cgroups already", LAT_MAX_CGROUPS);
		return -ENOSPC;
	}
	fd = cgroup_open_id(id);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the cgroup with id %llu: %s",
			 (unsigned long long)id, strerror(-fd));
		return fd;
	}
	/* Both or neither: a request seen without its response would never end. */
	rx = bpf_program__attach_cgroup(l->skel->progs.lat_rx, fd);
	if (rx)
		tx = bpf_program__attach_cgroup(l->skel->progs.lat_tx, fd);
	if (!tx)
		r = errno ? -errno : -EINVAL;
	close(fd);
	if (!tx) {
		bpf_link__destroy(rx);
		snprintf(err, errlen, "cannot attach the latency programs to cgroup %llu: %s",
			 (unsigned long long)id, strerror(-r));
		return r;
	}
	l->cg_id[l->ncg] = id;
	l->rx[l->ncg] = rx;
	l->tx[l->ncg++] = tx;
	return 0;
}

/*
 * Whether the kernel refuses every BPF LSM program: EPERM before it looks at
 * the hook (as the 6.18 development host does), asked with a 2-instruction
 * program naming no hook (BTF id 1), so without the kernel's BTF that the
 * real program makes libbpf parse.  Any other answer (EINVAL where LSM
 * programs load): the real program says.
 */
static bool lsm_refused(void)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_LSM_MAC, .attach_btf_id = 1);
	int fd = bpf_prog_load(BPF_PROG_TYPE_LSM, NULL, "GPL", insns, 2, &o);

	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == EPERM;
}

/*
 * Load and attach the accept-wait program (latgraft.bpf.c) on latency's
 * maps.  Its own object, loaded only now: a BPF LSM program makes libbpf
 * parse the kernel's BTF, which latency's other programs no longer need.
 * Without it (a kernel that refuses BPF LSM programs, or "bpf" not among
 * the active LSMs) only accept waits go unmeasured.
 */
static void graft_open(struct latency *l)
{
	struct bpf_map *m;
	int r;

	if (lsm_refused()) {
		log_warnx("accept waits are not measured: this kernel refuses BPF LSM "
			  "programs (sock_graft); response times are");
		return;
	}
	l->gskel = latgraft_bpf__open();
	if (!l->gskel) {
		log_warnx("accept waits are not measured: cannot open the sock_graft program: %s",
			  strerror(errno));
		return;
	}
	/* latency's maps, by fd: the same ones whatever is pinned where. */
	for (m = bpf_object__next_map(l->gskel->obj, NULL); m;
	     m = bpf_object__next_map(l->gskel->obj, m)) {
		const struct bpf_map *own =
		    bpf_object__find_map_by_name(l->skel->obj, bpf_map__name(m));

		r = own ? bpf_map__set_pin_path(m, NULL) : -ENOENT;
		if (!r)
			r = bpf_map__reuse_fd(m, bpf_map__fd(own));
		if (r) {
			log_warnx("accept waits are not measured: cannot share map %s: %s",
				  bpf_map__name(m), strerror(-r));
			goto fail;
		}
	}
	/* The kernel's refusal is the answer here, not a problem: libbpf's messages at -v. */
	log_libbpf_quiet(true);
	r = latgraft_bpf__load(l->gskel);
	log_libbpf_quiet(false);
	if (r) {
		log_warnx("accept waits are not measured: this kernel refuses BPF LSM "
			  "programs (sock_graft); response times are");
		goto fail;
	}
	l->graft = bpf_program__attach(l->gskel->progs.lat_graft);
	if (!l->graft) {
		log_warnx("accept waits are not measured: cannot attach to the sock_graft "
			  "LSM hook: %s (is \"bpf\" in the kernel's lsm= list?)",
			  strerror(errno));
		goto fail;
	}
	return;
fail:
	latgraft_bpf__destroy(l->gskel);
	l->gskel = NULL;
}

int latency_follow(struct latency *l, const __u64 *ids, int n, char *err, size_t errlen)
{
	int i, j, r = 0, e;

	if (!l->measure)
		return 0;
	/*
	 * The accept hook runs for every accept() of the host (a lookup that
	 * finds nothing on others): attached once something is measured.
	 */
	if (!l->graft_tried) {
		l->graft_tried = true;
		graft_open(l);
	}
	/* Attachments to cgroups track left go (track_scope moved its main one). */
	for (i = 0; i < l->ncg;) {
		for (j = 0; j < n && ids[j] != l->cg_id[i]; j++)
			;
		if (j < n)
			i++;
		else
			unfollow(l, i);
	}
	for (j = 0; j < n; j++) {
		for (i = 0; i < l->ncg && l->cg_id[i] != ids[j]; i++)
			;
		if (i == l->ncg && ids[j] && (e = follow(l, ids[j], err, errlen)))
			r = e;
	}
	return r;
}

void latency_close(struct latency *l)
{
	bpf_link__destroy(l->graft);
	latgraft_bpf__destroy(l->gskel);
	while (l->ncg > 0)
		unfollow(l, l->ncg - 1);
	latency_bpf__destroy(l->skel);
	free(l->buf);
	memset(l, 0, sizeof(*l));
	l->hist_fd = -1;
}

int latency_register(struct latency *l, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};

	if (l->hist_fd < 0 || !l->measure)
		return -ENOTSUP;
	memset(l->buf, 0, l->ncpu * sizeof(*l->buf));
	/* Measured already (a reload that kept latency on): its histograms stay. */
	if (bpf_map_update_elem(l->hist_fd, &k, l->buf, BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	return 0;
}

int latency_forget(struct latency *l, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};

	if (l->hist_fd < 0)
		return -ENOTSUP;
	if (bpf_map_delete_elem(l->hist_fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int latency_read(struct latency *l, __u32 service, __u32 version, struct lat_hist *out)
{
	struct version_key k = {.service = service, .version = version};

	if (l->hist_fd < 0)
		return -ENOTSUP;
	if (bpf_map_lookup_elem(l->hist_fd, &k, l->buf))
		return -errno;
	lat_sum_cpus(out, l->buf, l->ncpu);
	return 0;
}
