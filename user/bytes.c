/* SPDX-License-Identifier: MIT */
/*
 * Loads bpf/bytes.bpf.c (byte-counts): open -> load (byte_socks shared with
 * track by pin) -> attach the two tracepoint programs while some service
 * counts bytes; reads the per-version totals.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bytes.skel.h"
#include "bytes_user.h"
#include "config.h"

#define NEEDS "the sock_recv_length and sock_send_length tracepoints (Linux 6.3 or later)"

/* The kernel's BTF has both tracepoints: 0, or -EOPNOTSUPP with err. */
static int tracepoints_known(const char *service, char *err, size_t errlen)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int r = 0;

	if (libbpf_get_error(vmlinux)) {
		snprintf(err, errlen,
			 "%s: byte-counts = yes needs %s, and this kernel has no BTF to find them "
			 "in (/sys/kernel/btf/vmlinux); remove byte-counts from the service",
			 service, NEEDS);
		return -EOPNOTSUPP;
	}
	if (btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) < 0 ||
	    btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) < 0) {
		snprintf(err, errlen,
			 "%s: byte-counts = yes needs %s, which this kernel lacks; remove "
			 "byte-counts from the service",
			 service, NEEDS);
		r = -EOPNOTSUPP;
	}
	btf__free(vmlinux);
	return r;
}

int bytes_probe(const char *service, char *err, size_t errlen)
{
	struct bytes_bpf *skel;
	struct bpf_link *rx = NULL, *tx = NULL;
	libbpf_print_fn_t print;
	struct bpf_map *m;
	int r = tracepoints_known(service, err, errlen);

	if (r)
		return r;
	/* The refusal is one line: libbpf's own account of the failure is not printed. */
	print = libbpf_set_print(NULL);
	skel = bytes_bpf__open();
	if (!skel) {
		r = -errno;
		snprintf(err, errlen, "%s: byte-counts: cannot open the bytes program: %s", service,
			 strerror(errno));
		libbpf_set_print(print);
		return r;
	}
	/* Nothing pinned: the probe's maps go with it. */
	bpf_object__for_each_map(m, skel->obj) bpf_map__set_pin_path(m, NULL);
	r = bytes_bpf__load(skel);
	if (r) {
		snprintf(err, errlen,
			 "%s: byte-counts = yes needs %s, and this kernel cannot load tp_btf "
			 "programs on them (%s); remove byte-counts from the service",
			 service, NEEDS, strerror(-r));
		goto out;
	}
	rx = bpf_program__attach(skel->progs.bytes_rx);
	if (rx)
		tx = bpf_program__attach(skel->progs.bytes_tx);
	if (!tx) {
		r = errno ? -errno : -EINVAL;
		snprintf(err, errlen,
			 "%s: byte-counts = yes needs %s, and this kernel cannot attach to them "
			 "(%s); remove byte-counts from the service",
			 service, NEEDS, strerror(-r));
	}
out:
	bpf_link__destroy(tx);
	bpf_link__destroy(rx);
	bytes_bpf__destroy(skel);
	libbpf_set_print(print);
	return r ? -EOPNOTSUPP : 0;
}

int bytes_config_check(const struct config *cfg, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].byte_counts)
			/* The kernel is the same for every service: the first one tells. */
			return bytes_probe(cfg->services[i].name, err, errlen);
	return 0;
}

int bytes_open(struct bytes *b, const char *pin_dir, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	int r;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->ncpu = libbpf_num_possible_cpus();
	if (b->ncpu <= 0) {
		r = b->ncpu ? b->ncpu : -EINVAL;
		snprintf(err, errlen, "cannot count the CPUs: %s", strerror(-r));
		return r;
	}
	b->buf = calloc(b->ncpu, sizeof(*b->buf));
	if (!b->buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->skel = bytes_bpf__open_opts(&opts);
	if (!b->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the bytes program: %s", strerror(errno));
		goto fail;
	}
	r = bytes_bpf__load(b->skel);
	if (r) {
		snprintf(err, errlen,
			 "cannot load the bytes program: %s (needs %s; -v shows libbpf's messages)",
			 strerror(-r), NEEDS);
		goto fail;
	}
	b->fd = bpf_map__fd(b->skel->maps.bytes);
	return 0;
fail:
	bytes_close(b);
	return r;
}

int bytes_attach(struct bytes *b, bool on, char *err, size_t errlen)
{
	int r;

	if (b->fd < 0)
		return -ENOTSUP;
	if (!on) {
		bpf_link__destroy(b->rx);
		bpf_link__destroy(b->tx);
		b->rx = b->tx = NULL;
		return 0;
	}
	if (b->rx && b->tx)
		return 0;
	/* Both or neither: a version's bytes one way only would mislead. */
	if (!b->rx)
		b->rx = bpf_program__attach(b->skel->progs.bytes_rx);
	if (b->rx && !b->tx)
		b->tx = bpf_program__attach(b->skel->progs.bytes_tx);
	if (b->rx && b->tx)
		return 0;
	r = errno ? -errno : -EINVAL;
	snprintf(err, errlen, "cannot attach to %s: %s", NEEDS, strerror(-r));
	bytes_attach(b, false, err, 0);
	return r;
}

void bytes_close(struct bytes *b)
{
	bpf_link__destroy(b->rx);
	bpf_link__destroy(b->tx);
	bytes_bpf__destroy(b->skel);
	free(b->buf);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

int bytes_register(struct bytes *b, __u32 service, __u32 version, bool fresh)
{
	struct version_key k = {.service = service, .version = version};

	if (b->fd < 0)
		return -ENOTSUP;
	memset(b->buf, 0, b->ncpu * sizeof(*b->buf));
	if (bpf_map_update_elem(b->fd, &k, b->buf, fresh ? BPF_ANY : BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

int bytes_forget(struct bytes *b, __u32 service, __u32 version)
{
	struct version_key k = {.service = service, .version = version};

	if (b->fd < 0)
		return -ENOTSUP;
	if (bpf_map_delete_elem(b->fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int bytes_read(struct bytes *b, __u32 service, __u32 version, struct byte_counts *out)
{
	struct version_key k = {.service = service, .version = version};
	int cpu;

	memset(out, 0, sizeof(*out));
	if (b->fd < 0)
		return -ENOTSUP;
	if (bpf_map_lookup_elem(b->fd, &k, b->buf))
		return -errno;
	for (cpu = 0; cpu < b->ncpu; cpu++) {
		out->rx += b->buf[cpu].rx;
		out->tx += b->buf[cpu].tx;
	}
	return 0;
}
