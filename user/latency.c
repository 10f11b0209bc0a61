/* SPDX-License-Identifier: MIT */
/* Loads bpf/latency.bpf.c: open -> load (lat_socks shared by pin) -> attach; reads its histograms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "latency.skel.h"
#include "lathist.h"
#include "latency_user.h"
#include "log.h"
#include "track.h"

int latency_open(struct latency *l, const char *pin_dir, char *err, size_t errlen)
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
		/*
		 * The accept-wait program is a BPF LSM one (a trampoline): some
		 * kernels refuse those.  Response times need only the rest.
		 */
		latency_bpf__destroy(l->skel);
		l->skel = latency_bpf__open_opts(&opts);
		if (!l->skel) {
			r = -errno;
			snprintf(err, errlen, "cannot open the latency program: %s",
				 strerror(errno));
			goto fail;
		}
		bpf_program__set_autoload(l->skel->progs.lat_graft, false);
		r = latency_bpf__load(l->skel);
		if (!r)
			log_warnx("accept waits are not measured: this kernel refuses BPF LSM "
				  "programs (sock_graft); response times are");
	}
	if (r) {
		snprintf(err, errlen,
			 "cannot load the latency program: %s (needs BTF tracepoints and "
			 "socket storage, Linux 5.11 or later; -v shows libbpf's messages)",
			 strerror(-r));
		goto fail;
	}
	l->recv = bpf_program__attach(l->skel->progs.lat_rx);
	if (!l->recv) {
		r = -errno;
		snprintf(err, errlen, "cannot attach to the tcp_probe tracepoint: %s",
			 strerror(errno));
		goto fail;
	}
	/* Without the BPF LSM (not among the active LSMs) only accept waits go unmeasured. */
	l->send = bpf_program__autoload(l->skel->progs.lat_graft)
		      ? bpf_program__attach(l->skel->progs.lat_graft)
		      : NULL;
	if (!l->send && bpf_program__autoload(l->skel->progs.lat_graft))
		log_warnx("accept waits are not measured: cannot attach to the sock_graft LSM "
			  "hook: %s (is \"bpf\" in the kernel's lsm= list?)",
			  strerror(errno));
	l->hist_fd = bpf_map__fd(l->skel->maps.latency);
	return 0;
fail:
	latency_close(l);
	return r;
}

void latency_close(struct latency *l)
{
	bpf_link__destroy(l->send);
	bpf_link__destroy(l->recv);
	latency_bpf__destroy(l->skel);
	free(l->buf);
	memset(l, 0, sizeof(*l));
	l->hist_fd = -1;
}

int latency_register(struct latency *l, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};

	if (l->hist_fd < 0)
		return -ENOTSUP;
	memset(l->buf, 0, l->ncpu * sizeof(*l->buf));
	return bpf_map_update_elem(l->hist_fd, &k, l->buf, BPF_ANY) ? -errno : 0;
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
