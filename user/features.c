/* SPDX-License-Identifier: MIT */
/*
 * baton features: what the running kernel offers of the facilities baton
 * uses.  Every answer comes from trying: loading a tiny program or map, or
 * looking for a file the facility creates; never from the version number,
 * since distributions backport.  The minimum kernel printed is upstream's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/bpf.h>

#include "cli.h"
#include "bytes_user.h"
#include "drain_user.h"

/* Raw instructions for the probe programs (the kernel's filter.h spelling). */
#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_IMM(d, i)	 INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV64_REG(d, s)	 INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define LDX_DW(d, s, o)	 INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define CALL_KFUNC(id)	 INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, id)
#define EXIT_INSN()	 INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define NINSNS(a)	 (sizeof(a) / sizeof((a)[0]))

struct probe_ctx {
	struct btf *vmlinux; /* NULL when the kernel has no BTF */
	char why[720];	     /* what failed, for a capability not supported */
};

/* 1: supported; 0: not (ctx->why says what failed). */
typedef int (*probe_fn)(struct probe_ctx *ctx);

static int fail(struct probe_ctx *ctx, const char *fmt, const char *arg, int err)
{
	char what[660];

	snprintf(what, sizeof(what), fmt, arg);
	if (err)
		snprintf(ctx->why, sizeof(ctx->why), "%s: %s", what, strerror(err));
	else
		snprintf(ctx->why, sizeof(ctx->why), "%s", what);
	return 0;
}

/* Load a program; 1 when the kernel takes it (the fd is closed). */
static int load(struct probe_ctx *ctx, const char *what, enum bpf_prog_type type,
		enum bpf_attach_type attach, __u32 btf_id, const struct bpf_insn *insns, size_t n)
{
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = attach, .attach_btf_id = btf_id);
	int fd = bpf_prog_load(type, "feature_probe", "GPL", insns, n, &o);

	if (fd < 0)
		return fail(ctx, "the kernel refuses %s", what, errno);
	close(fd);
	return 1;
}

static int helper(struct probe_ctx *ctx, enum bpf_prog_type type, enum bpf_func_id id,
		  const char *name)
{
	if (libbpf_probe_bpf_helper(type, id, NULL) == 1)
		return 1;
	return fail(ctx, "no helper %s for this program type", name, 0);
}

/* The BTF id of a kernel type or function; -1 (ctx->why says why) when it has none. */
static int btf_id(struct probe_ctx *ctx, const char *name, int kind)
{
	int id;

	if (!ctx->vmlinux) {
		fail(ctx, "no kernel BTF to find %s in", name, 0);
		return -1;
	}
	id = btf__find_by_name_kind(ctx->vmlinux, name, kind);
	if (id < 0) {
		fail(ctx, "no %s in the kernel's BTF", name, 0);
		return -1;
	}
	return id;
}

/* The steering program: sk_reuseport with the migrating socket (5.14). */
static int probe_migrate(struct probe_ctx *ctx)
{
	const struct bpf_insn prog[] = {
	    LDX_DW(BPF_REG_0, BPF_REG_1, offsetof(struct sk_reuseport_md, migrating_sk)),
	    MOV64_IMM(BPF_REG_0, SK_PASS),
	    EXIT_INSN(),
	};

	return load(ctx, "sk_reuseport/migrate reading migrating_sk", BPF_PROG_TYPE_SK_REUSEPORT,
		    BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, 0, prog, NINSNS(prog)) &&
	       helper(ctx, BPF_PROG_TYPE_SK_REUSEPORT, BPF_FUNC_sk_select_reuseport,
		      "bpf_sk_select_reuseport");
}

/* The tracking program: sock_ops and the helpers track.bpf.c calls. */
static int probe_sockops(struct probe_ctx *ctx)
{
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL) != 1)
		return fail(ctx, "no sock_ops programs", NULL, 0);
	return helper(ctx, BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie,
		      "bpf_get_netns_cookie") &&
	       helper(ctx, BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_skc_to_tcp_sock,
		      "bpf_skc_to_tcp_sock") &&
	       helper(ctx, BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_current_task_btf,
		      "bpf_get_current_task_btf");
}

static int probe_skmsg(struct probe_ctx *ctx)
{
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL) != 1)
		return fail(ctx, "no sockhash maps", NULL, 0);
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL) != 1)
		return fail(ctx, "no sk_msg programs", NULL, 0);
	return helper(ctx, BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash,
		      "bpf_msg_redirect_hash");
}

/* An iter/tcp program that does nothing, run once over every TCP socket. */
static int probe_iter_tcp(struct probe_ctx *ctx)
{
	const struct bpf_insn prog[] = {MOV64_IMM(BPF_REG_0, 0), EXIT_INSN()};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_TRACE_ITER);
	int id = btf_id(ctx, "bpf_iter_tcp", BTF_KIND_FUNC), prog_fd, link_fd = -1, it = -1, ok = 0;
	char buf[64];

	if (id < 0)
		return 0;
	o.attach_btf_id = id;
	prog_fd =
	    bpf_prog_load(BPF_PROG_TYPE_TRACING, "feature_probe", "GPL", prog, NINSNS(prog), &o);
	if (prog_fd < 0)
		return fail(ctx, "the kernel refuses an %s program", "iter/tcp", errno);
	link_fd = bpf_link_create(prog_fd, 0, BPF_TRACE_ITER, NULL);
	if (link_fd < 0) {
		fail(ctx, "cannot attach an %s iterator", "iter/tcp", errno);
		goto out;
	}
	it = bpf_iter_create(link_fd);
	if (it < 0) {
		fail(ctx, "cannot create an %s iterator", "iter/tcp", errno);
		goto out;
	}
	/* The program writes nothing: the first read ends the walk. */
	if (read(it, buf, sizeof(buf)) < 0) {
		fail(ctx, "reading an %s iterator failed", "iter/tcp", errno);
		goto out;
	}
	ok = 1;
out:
	if (it >= 0)
		close(it);
	if (link_fd >= 0)
		close(link_fd);
	close(prog_fd);
	return ok;
}

/* An iter/tcp program calling the bpf_sock_destroy kfunc on each socket it is given. */
static int probe_sock_destroy(struct probe_ctx *ctx)
{
	int iter = btf_id(ctx, "bpf_iter_tcp", BTF_KIND_FUNC), fn;

	if (iter < 0)
		return 0;
	fn = btf_id(ctx, "bpf_sock_destroy", BTF_KIND_FUNC);
	if (fn < 0)
		return 0;
	{
		const struct bpf_insn prog[] = {
		    /* r2 = ctx->sk_common (struct bpf_iter__tcp: meta, sk_common, uid) */
		    LDX_DW(BPF_REG_2, BPF_REG_1, 8), JEQ_IMM(BPF_REG_2, 0, 2),
		    MOV64_REG(BPF_REG_1, BPF_REG_2), CALL_KFUNC(fn),
		    MOV64_IMM(BPF_REG_0, 0),	     EXIT_INSN(),
		};

		return load(ctx, "an iter/tcp program calling bpf_sock_destroy",
			    BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, iter, prog, NINSNS(prog));
	}
}

/* A tp_btf program on a tracepoint: 1 when the kernel has it. */
static int tracepoint(struct probe_ctx *ctx, const char *typedef_name)
{
	const struct bpf_insn prog[] = {MOV64_IMM(BPF_REG_0, 0), EXIT_INSN()};
	int id = btf_id(ctx, typedef_name, BTF_KIND_TYPEDEF);

	if (id < 0)
		return 0;
	return load(ctx, "a tp_btf program on it", BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, id,
		    prog, NINSNS(prog));
}

/* byte-counts' own programs, loaded and attached for a moment (nothing pinned). */
static int probe_byte_counts(struct probe_ctx *ctx)
{
	if (!tracepoint(ctx, "btf_trace_sock_recv_length") ||
	    !tracepoint(ctx, "btf_trace_sock_send_length"))
		return 0;
	if (bytes_probe("this kernel", ctx->why, sizeof(ctx->why)))
		return 0;
	return 1;
}

/* drain-http's own programs, loaded (nothing pinned or attached to a socket). */
static int probe_drain(struct probe_ctx *ctx)
{
	if (drain_supported(ctx->why, sizeof(ctx->why)))
		return 0;
	return 1;
}

static int probe_ringbuf(struct probe_ctx *ctx)
{
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1)
		return 1;
	return fail(ctx, "no ring buffer maps", NULL, 0);
}

static int probe_btf(struct probe_ctx *ctx)
{
	if (ctx->vmlinux)
		return 1;
	return fail(ctx, "cannot read /sys/kernel/btf/vmlinux", NULL, 0);
}

/*
 * cgroup.kill is in every cgroup v2 directory but the root: make an empty
 * child of the cgroup2 mount's root, look, and remove it again; where that
 * cannot be made, look in an existing child.
 */
static int probe_cgroup_kill(struct probe_ctx *ctx)
{
	char line[512], mnt[256] = "", dir[400] = "", path[600];
	FILE *f = fopen("/proc/self/mounts", "re");
	struct dirent *e;
	int made = 0, ok;
	DIR *d;

	if (!f)
		return fail(ctx, "cannot read %s", "/proc/self/mounts", errno);
	while (fgets(line, sizeof(line), f)) {
		char dev[128], m[256], type[32];

		if (sscanf(line, "%127s %255s %31s", dev, m, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", m);
			break;
		}
	}
	fclose(f);
	if (!*mnt)
		return fail(ctx, "no cgroup2 mount", NULL, 0);
	snprintf(dir, sizeof(dir), "%s/baton-probe-%d", mnt, (int)getpid());
	if (mkdir(dir, 0700) == 0) {
		made = 1;
	} else if ((d = opendir(mnt))) {
		dir[0] = '\0';
		while ((e = readdir(d))) {
			if (e->d_type == DT_DIR && e->d_name[0] != '.') {
				snprintf(dir, sizeof(dir), "%s/%s", mnt, e->d_name);
				break;
			}
		}
		closedir(d);
	}
	if (!dir[0])
		return fail(ctx, "no cgroup below %s to look for cgroup.kill in", mnt, 0);
	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	ok = access(path, F_OK) == 0;
	if (!ok)
		fail(ctx, "no %s", path, 0);
	if (made)
		rmdir(dir);
	return ok;
}

struct feature {
	const char *name;
	const char *min_kernel; /* upstream release that brought it */
	const char *use;
	int needed; /* the agent does not start without it */
	probe_fn probe;
};

static const struct feature features[] = {
    {"sk_reuseport select-or-migrate", "5.14", "steering and moving queued connections", 1,
     probe_migrate},
    {"sock_ops connection tracking", "5.15", "counting connections per version", 1, probe_sockops},
    {"ring buffer", "5.8", "telling the agent a draining version's last connection closed", 1,
     probe_ringbuf},
    {"kernel BTF", "5.4", "the track program (CO-RE, task BTF); iterators, kfuncs", 1, probe_btf},
    {"cgroup.kill", "5.14", "the kill-after bound on a version's whole process tree", 0,
     probe_cgroup_kill},
    {"sk_msg + sockhash", "4.18", "drain-http: rewriting a draining connection's response", 0,
     probe_skmsg},
    {"bpf iterator (tcp)", "5.9", "drain-http: joining a draining version's connections", 0,
     probe_iter_tcp},
    {"drain-http programs", "6.0",
     "drain-http (its programs load; the iterator may update a sockhash)", 0, probe_drain},
    {"sock_{recv,send}_length", "6.3",
     "byte-counts: payload bytes per version (refused in one line without them)", 0,
     probe_byte_counts},
    {"bpf_sock_destroy", "6.5", "closing idle connections of a drained version (planned)", 0,
     probe_sock_destroy},
};

#define NFEATURES (sizeof(features) / sizeof(features[0]))

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

int cmd_features(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct probe_ctx ctx = {0};
	struct utsname u;
	json_t *arr = NULL;
	int json = 0, c, missing = 0;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			return cmd_help(1, (char *[]){"features"});
		default:
			return cmd_usage("features");
		}
	}
	if (optind != argc) {
		fprintf(stderr, "baton features: unexpected argument \"%s\"\n", argv[optind]);
		return cmd_usage("features");
	}
	if (geteuid() != 0) {
		fprintf(stderr, "baton features: must run as root (it loads BPF programs to "
				"probe the kernel): sudo baton features\n");
		return 1;
	}
	libbpf_set_print(quiet);
	ctx.vmlinux = btf__load_vmlinux_btf();
	if (libbpf_get_error(ctx.vmlinux))
		ctx.vmlinux = NULL;
	uname(&u);
	if (json)
		arr = json_array();
	else
		printf("Linux %s:\n", u.release);
	for (i = 0; i < NFEATURES; i++) {
		const struct feature *f = &features[i];
		int ok;

		ctx.why[0] = '\0';
		ok = f->probe(&ctx) == 1;
		if (!ok && f->needed)
			missing++;
		if (json) {
			json_t *o = json_pack("{s:s, s:b, s:s, s:b, s:s}", "name", f->name,
					      "supported", ok, "min_kernel", f->min_kernel,
					      "needed", f->needed, "used_for", f->use);

			if (!ok)
				json_object_set_new(o, "why", json_string(ctx.why));
			json_array_append_new(arr, o);
		} else {
			printf("  %-31s %-14s Linux %-5s %s%s%s%s\n", f->name,
			       ok ? "supported" : "NOT supported", f->min_kernel, f->use,
			       f->needed ? " (needed)" : "", ok ? "" : ": ", ok ? "" : ctx.why);
		}
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(arr);
	} else if (missing) {
		printf("baton: this kernel lacks %d facilit%s the agent needs; it will not start "
		       "here\n",
		       missing, missing == 1 ? "y" : "ies");
	}
	btf__free(ctx.vmlinux);
	return missing ? 1 : 0;
}
