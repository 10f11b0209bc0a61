/* SPDX-License-Identifier: MIT */
/*
 * The agent's wiring: checks before anything changes, then the event loop.
 * Each ready fd goes to the file that owns it (dispatch); see
 * docs/architecture.md for which file owns what.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "adopt.h"
#include "agent.h"
#include "bytes_user.h"
#include "cgroup.h"
#include "checks.h"
#include "ctlserver.h"
#include "dp.h"
#include "events.h"
#include "listen.h"
#include "log.h"
#include "logq.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "promgate.h"
#include "reload.h"
#include "restore.h"
#include "exec.h"
#include "httpdrain.h"
#include "journal.h"
#include "services.h"
#include "statefile.h"
#include "latview.h"
#include "versions.h"
#include "webhook.h"

static bool quit;
static bool stop_children; /* shutdown request: stop every version first */
static struct client *shutdown_waiter;
static int sigfd = -1;
static struct evsrc ev_sig, ev_ring, ev_cgroup;

void agent_check_shutdown(void)
{
	if (!stop_children || !services_empty())
		return;
	if (shutdown_waiter) {
		reply_ok(shutdown_waiter, "all versions stopped; agent exiting");
		shutdown_waiter = NULL;
	}
	quit = true;
}

void agent_shutdown(struct client *c, bool stop)
{
	int n;

	stop_children = stop;
	if (!stop) {
		reply_ok(c, "agent exiting; services keep running");
		quit = true;
		return;
	}
	n = services_stop_all();
	shutdown_waiter = c;
	log_info("shutdown: stopping %d version(s)", n);
	agent_check_shutdown();
}

bool agent_quitting(void)
{
	return quit;
}

void agent_client_gone(struct client *c)
{
	if (shutdown_waiter == c)
		shutdown_waiter = NULL;
}

/*
 * Everything baton needs from the kernel, checked before anything changes,
 * each missing piece named in one line with what to do.
 */
static int features_check(const char *bpf_dir, char *err, size_t errlen)
{
	struct bpf_insn pass[] = {
	    {.code = 0xb7, .dst_reg = 0, .imm = 1}, /* r0 = SK_PASS */
	    {.code = 0x95},			    /* exit */
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		    .expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE);
	char parent[256], cg[256], magic[4] = {0};
	char *slash;
	int fd, r;

	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) ||
	    (unsigned char)magic[0] != 0x9f || (unsigned char)magic[1] != 0xeb) {
		snprintf(err, errlen,
			 "kernel BTF missing (/sys/kernel/btf/vmlinux): baton needs a kernel built "
			 "with CONFIG_DEBUG_INFO_BTF=y");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(parent, sizeof(parent), "%s", bpf_dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	r = bpffs_check(parent);
	if (r) {
		snprintf(err, errlen, "bpffs not mounted at %.200s (mount -t bpf bpf %.200s)",
			 parent, parent);
		return -1;
	}
	if (cgroup2_root(cg, sizeof(cg))) {
		snprintf(err, errlen,
			 "no cgroup v2 mount in /proc/self/mounts (mount -t cgroup2 none "
			 "/sys/fs/cgroup/unified): baton counts connections with a cgroup sock_ops "
			 "program");
		return -1;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_REUSEPORT, NULL) != 1) {
		snprintf(err, errlen,
			 "the kernel cannot load sk_reuseport BPF programs (baton "
			 "needs Linux 5.15 or later with CONFIG_BPF_SYSCALL)");
		return -1;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL) != 1) {
		snprintf(err, errlen,
			 "the kernel cannot load sock_ops BPF programs (baton needs "
			 "CONFIG_CGROUP_BPF)");
		return -1;
	}
	fd = bpf_prog_load(BPF_PROG_TYPE_SK_REUSEPORT, NULL, "GPL", pass, 2, &opts);
	if (fd < 0) {
		snprintf(err, errlen,
			 "the kernel cannot migrate requests between reuseport listeners "
			 "(BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, Linux 5.14 or later): %s",
			 strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[256];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* Stop early, before anything changed: a one-line error, exit status 1. */
static int refuse_start(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse_start(const char *fmt, ...)
{
	va_list ap;

	fputs("baton: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

#define LOG_CLOSE_WAIT_MS 1000 /* at the end, for stderr's writer to take the last lines */

/* Before fatal's exit: what waits for stderr gets a bounded time. */
static void log_flush_at_exit(void)
{
	logq_stop(LOG_CLOSE_WAIT_MS);
}

static void on_signal(void)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGHUP) {
			char msg[1024];

			log_info("SIGHUP: reloading %s", services_config_path());
			reload(msg, sizeof(msg));
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("%s: agent exiting; services keep running and steering stays as "
				 "programmed",
				 signal_name(si.ssi_signo));
			quit = true;
		}
}

static void on_ring(void)
{
	struct track_event e;

	while (dp_zero_next(&e))
		on_zero(&e);
}

/* One ready event source: to the file that owns it. */
static void dispatch(const struct epoll_event *e)
{
	struct evsrc *ev = e->data.ptr;

	switch (ev->type) {
	case EV_SIGNAL:
		on_signal();
		break;
	case EV_CONTROL:
		on_control();
		break;
	case EV_CLIENT:
		on_client(ev->p, e->events);
		break;
	case EV_NOTIFY:
		on_notify();
		break;
	case EV_PIDFD:
		on_exit_of(ev->p, ev->idx);
		break;
	case EV_EXEC:
		on_exec(ev->p, ev->idx);
		break;
	case EV_TIMER:
		on_timer(ev->p);
		break;
	case EV_RING:
		on_ring();
		break;
	case EV_CHECK:
		on_check(ev->p, ev->idx);
		break;
	case EV_HOOK:
		on_hook(ev->p);
		break;
	case EV_RO_TIMER:
		on_ro_timer(ev->p);
		break;
	case EV_CLIENT_TIMER:
		on_client_timer(ev->p);
		break;
	case EV_METRICS:
		on_metrics();
		break;
	case EV_METRICS_CLIENT:
		on_metrics_client(ev->p);
		break;
	case EV_REAP:
		on_reap(ev->p);
		break;
	case EV_RESET:
		on_reset_tick();
		break;
	case EV_HTTP_DRAIN:
		on_http_drain_tick();
		break;
	case EV_CGROUP:
		on_cgroup_events();
		break;
	case EV_WEBHOOK:
		on_webhook_socket(ev->p, e->events);
		break;
	case EV_WEBHOOK_TIMER:
		on_webhook_timer();
		break;
	case EV_WEBHOOK_RETRY:
		on_webhook_retry();
		break;
	case EV_LATENCY:
		on_latency_tick();
		break;
	case EV_EVENTS_OUT:
		on_events_out();
		break;
	case EV_ACCEPTQ:
		on_acceptq_tick();
		break;
	}
}

/* Everything a start checks before it changes anything: 0, or 1 after a one-line error. */
static int preflight(const struct agent_opts *o, json_t **stp)
{
	const struct config *cfg = services_config();
	char err[512];
	json_t *st;
	int i, j;

	if (!cfg->nservices)
		return refuse_start("%s defines no [service NAME] section; nothing to run",
				    o->config);
	/* Before the ports: a running agent's children hold them. */
	if (ctl_running(cfg->agent.control))
		return refuse_start(
		    "another agent is running on %s (stop it first: baton shutdown)",
		    cfg->agent.control);
	/* Services a previous agent left running are taken over, not started. */
	state_init(cfg->agent.run_dir);
	st = state_load(err, sizeof(err));
	if (json_is_null(st) ||
	    (st && (state_fits(st, err, sizeof(err)) || state_netns_check(st, err, sizeof(err))))) {
		json_decref(st);
		return refuse_start("%s", err);
	}
	for (i = 0; i < cfg->nservices; i++)
		for (j = 0; j < cfg->services[i].nlisten; j++)
			if ((!st || !state_service(st, cfg->services[i].name)) &&
			    !cfg->services[i].adopt &&
			    check_port_free(&cfg->services[i].listen[j], err, sizeof(err))) {
				json_decref(st);
				return refuse_start("%s: %s", cfg->services[i].name, err);
			}
	if (features_check(cfg->agent.bpf_dir, err, sizeof(err)) ||
	    http_drain_config_check(cfg, err, sizeof(err)) ||
	    bytes_config_check(cfg, err, sizeof(err))) {
		json_decref(st);
		return refuse_start("%s", err);
	}
	*stp = st;
	return 0;
}

int agent_main(const struct agent_opts *o)
{
	const struct config *cfg;
	struct epoll_event evs[64];
	json_t *st = NULL;
	__u64 *cookies = NULL;
	char err[512], cgpath[PATH_MAX] = "";
	sigset_t mask;
	int i, n, r, ncookies, jr;

	log_init("baton", o->verbose);
	/* Under systemd: each line with its fields through the journal's own socket. */
	if (!o->check_only && log_stderr_is_journal() && (jr = journal_for_log()))
		log_warnx("cannot use the journal's socket (%s): log lines go to stderr",
			  strerror(-jr));
	/* Privileges first; checking a configuration needs none. */
	if (!o->check_only && geteuid() != 0)
		return refuse_start(
		    "the agent must run as root (it loads BPF programs): sudo baton "
		    "agent ...");
	if (services_load(o->config, err, sizeof(err))) {
		/* One line per file with an error. */
		for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
			fprintf(stderr, "baton: %s\n", line);
		return 1;
	}
	cfg = services_config();
	if (o->check_only) {
		/* An unreachable Prometheus is a warning: it may come up after the agent. */
		if (promgate_check(cfg->agent.prometheus, err, sizeof(err)))
			fprintf(stderr, "baton: %s\n", err);
		printf("configuration OK\n");
		services_free();
		return 0;
	}
	if (preflight(o, &st)) {
		services_free();
		return 1;
	}
	libbpf_set_print(log_libbpf);
	ncookies = st ? state_cookies(st, &cookies) : 0;
	dp_set_latency(!cfg->agent.latency_off);
	r = dp_open(cfg->agent.bpf_dir, cookies, ncookies, err, sizeof(err));
	free(cookies);
	if (r) {
		refuse_start("%s", err);
		json_decref(st);
		services_free();
		return 1;
	}
	if (mkdir_p(cfg->agent.run_dir, 0755) < 0) {
		refuse_start("cannot create %s: %s", cfg->agent.run_dir, strerror(errno));
		goto fail;
	}
	/* Before the services: a restarted agent's events follow the previous one's. */
	events_open(cfg->agent.run_dir);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0 || loop_open()) {
		refuse_start("epoll/signalfd: %s", strerror(errno));
		goto fail;
	}
	ep_add(sigfd, &ev_sig, EV_SIGNAL, NULL, 0, EPOLLIN);
	ep_add(dp_zero_fd(), &ev_ring, EV_RING, NULL, 0, EPOLLIN);
	latview_start();
	acceptq_start();
	/* Before any version starts or is taken over: each gets its cgroup. */
	if (cg_open(cfg->agent.cgroup_dir, err, sizeof(err)))
		log_warnx("%s: process trees fall back to process groups (a worker that leaves its "
			  "instance's process group escapes the kill-after bound)",
			  err);
	else if (ep_add(cg_events_fd(), &ev_cgroup, EV_CGROUP, NULL, 0, EPOLLIN)) {
		refuse_start("epoll: %s", strerror(errno));
		goto fail;
	} else
		log_info("versions run in cgroups under %s", cg_subtree());
	/* Count connections of the listeners the agent makes: in its (now final) cgroup. */
	if (cg_pid_path(getpid(), cgpath, sizeof(cgpath)) ||
	    dp_track_scope(cgpath, err, sizeof(err))) {
		refuse_start("cannot attach the track program to the agent's cgroup: %s",
			     cgpath[0] ? err : "no cgroup v2 line in /proc/self/cgroup");
		goto fail;
	}
	log_info("connections are counted on listeners made in %s", cgpath);
	if (webhook_open(err, sizeof(err)) || ctl_open(&cfg->agent, err, sizeof(err)) ||
	    notify_open(cfg->agent.run_dir, err, sizeof(err)) ||
	    (cfg->agent.metrics.len && metrics_open(&cfg->agent.metrics, err, sizeof(err)))) {
		refuse_start("%s", err);
		goto fail;
	}
	if (services_start(st, err, sizeof(err))) {
		refuse_start("%s", err);
		goto fail;
	}
	json_decref(st);
	st = NULL;
	{
		int left = cg_sweep(services_version_known);

		if (left)
			log_warnx("%d cgroup(s) under %s/services hold processes of no version "
				  "baton knows; left as they are",
				  left, cg_subtree());
	}
	/* Links an earlier agent made for adopted servers that have gone since. */
	adopt_track_prune();
	state_save();
	promgate_probe();
	{
		char msg[128];
		int ns = 0;

		while (service_at(ns))
			ns++;
		snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=%d service(s)",
			 (int)getpid(), ns);
		notify_systemd(msg);
		log_info("agent running: %d service(s), control %s, maps in %s", ns,
			 cfg->agent.control, cfg->agent.bpf_dir);
	}
	/* From here a stderr nobody reads stops only the log's writer thread (logq.c). */
	r = logq_start(2, log_stderr_is_journal() ? "<4>baton: " : "baton: ");
	if (r)
		log_warnx("cannot start the log's writer thread (%s): lines go to stderr at once",
			  strerror(-r));
	else
		log_set_stderr(logq_push, log_flush_at_exit);

	while (!quit) {
		n = loop_wait(evs, 64);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fatal("epoll_wait");
		for (i = 0; i < n && !quit; i++) {
			dispatch(&evs[i]);
		}
		versions_bury();
		ctl_bury();
		metrics_bury();
		webhook_bury();
		state_save();
	}
	ctl_close();
	metrics_close();
	notify_close();
	services_free();
	versions_bury();
	if (stop_children) {
		/* Nothing left to take over: the host is as before the first start. */
		state_remove();
		notify_remove();
	}
	state_close();
	webhook_close();
	events_close();
	if (stop_children)
		events_remove();
	cg_close(stop_children);
	dp_close(stop_children);
	loop_close();
	logq_stop(LOG_CLOSE_WAIT_MS);
	return 0;
fail:
	json_decref(st);
	ctl_close();
	metrics_close();
	notify_close();
	versions_bury();
	webhook_close();
	events_close();
	cg_close(false);
	dp_close(false);
	loop_close();
	services_free();
	return 1;
}
