/* SPDX-License-Identifier: MIT */
/* Loads bpf/bytes.bpf.c (byte-counts) and reads its per-version byte totals. */
#ifndef BATON_BYTES_USER_H
#define BATON_BYTES_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "bytes.h"
#include "track.h"

struct bytes_bpf;
struct bpf_link;
struct config;

struct bytes {
	struct bytes_bpf *skel;
	struct bpf_link *rx, *tx; /* the tracepoint programs; NULL while detached */
	int fd;			  /* the bytes map; -1: not loaded */
	int ncpu;
	struct byte_counts *buf; /* one value per possible CPU, for lookups and zeroing */
};

/*
 * Whether this kernel can count bytes: load both tracepoint programs and
 * attach them for a moment (nothing pinned).  0, or -EOPNOTSUPP with one
 * line for the service and setting that need it, naming the missing
 * tracepoints, the kernel needed and the fix.
 */
int bytes_probe(const char *service, char *err, size_t errlen);
/* bytes_probe for the first service of cfg with byte-counts on; 0 when none has it. */
int bytes_config_check(const struct config *cfg, char *err, size_t errlen);
/* Load with the maps pinned under pin_dir (byte_socks shared with track); nothing attached. */
int bytes_open(struct bytes *b, const char *pin_dir, char *err, size_t errlen);
/* Attach (on) or detach both tracepoint programs; 0 or -errno with err. */
int bytes_attach(struct bytes *b, bool on, char *err, size_t errlen);
void bytes_close(struct bytes *b);
/* Count a version from zero (fresh), or from what it has (kept: a restart, a reload). */
int bytes_register(struct bytes *b, __u32 service, __u32 version, bool fresh);
int bytes_forget(struct bytes *b, __u32 service, __u32 version);
/* A version's totals, summed over the CPUs: 0, or -errno (-ENOENT: not counted). */
int bytes_read(struct bytes *b, __u32 service, __u32 version, struct byte_counts *out);

#endif /* BATON_BYTES_USER_H */
