/* SPDX-License-Identifier: MIT */
/*
 * Readiness and health of a version's instances, each checked through its
 * own socket: TCP probes, HTTP and exec checks (one at a time per
 * instance, each bounded by health-timeout), and the error rate the kernel
 * saw on the version under rollout.  A verdict goes to rollout.c
 * as an event (FE_CHECK, FE_ERROR_SAMPLE, FE_READY through instance_ready):
 * the state machine counts them and decides.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "dp.h"
#include "log.h"
#include "promgate.h"
#include "proc.h"
#include "exec.h"
#include "latview.h"
#include "versions.h"

/*
 * The first listen address at or after j that instance i has a socket on
 * (an adopted server's instance may listen on some only), or nlisten.
 */
static int next_addr(const struct version *v, int i, int j)
{
	for (; j < v->svc->conf.nlisten; j++)
		if (!v->adopted || v->inst[i].cookie[j])
			return j;
	return v->svc->conf.nlisten;
}

/* A health check's verdict: the state machine counts them against health-threshold. */
static void health_result(struct version *v, int i, bool pass, const char *detail)
{
	struct fsm_event e = {.type = FE_CHECK, .v = v, .inst = i, .ok = pass, .why = detail};

	fsm_feed(v->svc, &e);
}

/* One health-interval's clients and failures: the state machine judges the rate. */
static void error_sample(struct version *v, unsigned long long clients, unsigned long long failed)
{
	struct fsm_event e = {.type = FE_ERROR_SAMPLE,
			      .v = v,
			      .sample_clients = clients,
			      .sample_failed = failed,
			      .why = v->errors_last};

	fsm_feed(v->svc, &e);
}

/* End the check in flight: close its socket and unpin it; kill an exec check. */
void check_close(struct version *v, int i)
{
	struct check *k = &v->inst[i].chk;

	if (k->hc.fd >= 0) {
		ep_del(k->hc.fd);
		if (k->hc_pinned)
			dp_probe_del(v, k->addr, &k->hc.src);
		hc_end(&k->hc);
		k->hc.fd = -1;
	}
	k->hc_pinned = false;
	if (k->busy && k->pidfd >= 0) {
		kill(-k->pid, SIGKILL);		/* its group: the check leads its own session */
		proc_signal(k->pidfd, SIGKILL); /* reaped when its pidfd fires */
	}
	k->busy = false;
}

static void check_start_at(struct version *v, int i, bool for_ready, int j);

/*
 * A tcp or http check passes when it passes on every listen address of the
 * instance, one after the other; the first failure is the verdict, and
 * names the address when there are several.
 */
static void check_result(struct version *v, int i, bool pass, const char *detail)
{
	const struct service_conf *c = &v->svc->conf;
	struct check *k = &v->inst[i].chk;
	bool by_addr = k->pidfd < 0 && k->hc.fd >= 0;
	int next = next_addr(v, i, k->addr + 1);

	if (by_addr && c->nlisten > 1 && !pass)
		snprintf(k->last, sizeof(k->last), "%s: %s", c->listen[k->addr].text, detail);
	else
		snprintf(k->last, sizeof(k->last), "%s", detail);
	check_close(v, i);
	if (by_addr && pass && next < c->nlisten) {
		check_start_at(v, i, k->for_ready, next);
		return;
	}
	if (k->for_ready) {
		if (pass) {
			instance_ready(v, i);
			return;
		}
		log_debug("%s: instance %d not ready yet: %s", vname(v), i, k->last);
		k->next_at = now_ms() + READY_RETRY_MS;
		return;
	}
	health_result(v, i, pass, k->last);
}

void check_start(struct version *v, int i, bool for_ready)
{
	int j = next_addr(v, i, 0);

	check_start_at(v, i, for_ready, j < v->svc->conf.nlisten ? j : 0);
}

static void check_start_at(struct version *v, int i, bool for_ready, int j)
{
	const struct service_conf *c = &v->svc->conf;
	const struct listen_addr *la = &c->listen[j];
	struct check *k = &v->inst[i].chk;
	enum health_kind kind;
	char err[256], detail[sizeof(k->hc.detail)];
	int r;

	if (k->busy || k->pidfd >= 0)
		return;
	if (for_ready)
		kind = c->ready == READY_HTTP ? HEALTH_HTTP : HEALTH_EXEC;
	else
		kind = c->health;
	k->for_ready = for_ready;
	k->addr = j;
	k->busy = true;
	k->deadline = now_ms() + c->health_timeout_ms;
	k->next_at = now_ms() + c->health_interval_ms;
	if (kind == HEALTH_EXEC) {
		char pid_env[40], kind_env[40];
		char *env2[] = {pid_env, kind_env, NULL};
		struct spawned sp;
		struct spawn_req req = {
		    .argv = c->health_argv,
		    .env = v->spec.env, /* the version's own: deploy --env included */
		    .env2 = env2,
		    .service = c->name,
		    .version = v->num,
		    .instance = i,
		    .user = v->spec.user,
		    .workdir = v->spec.workdir,
		};

		snprintf(pid_env, sizeof(pid_env), "BATON_PID=%d", v->inst[i].pid);
		snprintf(kind_env, sizeof(kind_env), "BATON_CHECK=%s",
			 for_ready ? "ready" : "health");
		/* A failure before its exec is its exit, "cannot start ...": a failed check. */
		if (proc_spawn(&req, &sp, err, sizeof(err))) {
			k->pidfd = -1;
			check_result(v, i, false, err);
			return;
		}
		k->pid = sp.pid;
		k->pidfd = sp.pidfd;
		k->execfd = sp.execfd;
		ep_add(k->pidfd, &k->ev, EV_CHECK, v, i, EPOLLIN);
		return;
	}
	if (hc_begin(&k->hc, kind == HEALTH_HTTP ? HC_HTTP : HC_TCP,
		     (const struct sockaddr *)&la->ss, la->len, c->health_path, err, sizeof(err))) {
		k->hc.fd = -1;
		check_result(v, i, false, err);
		return;
	}
	/* Pin before the SYN leaves, so the steer program sends it to this instance. */
	if (dp_probe_add(v, i, j, &k->hc.src)) {
		check_result(v, i, false, "cannot pin the check's source port");
		return;
	}
	k->hc_pinned = true;
	r = hc_connect(&k->hc);
	if (r != HC_PENDING) {
		snprintf(detail, sizeof(detail), "%s", k->hc.detail);
		check_result(v, i, r == HC_PASS, detail);
		return;
	}
	ep_add(k->hc.fd, &k->ev, EV_CHECK, v, i, hc_events(&k->hc));
}

void on_check(struct version *v, int i)
{
	struct check *k = &v->inst[i].chk;
	char detail[sizeof(k->hc.detail)], desc[EXIT_DESC_MAX];
	int status = 0, r;

	if (v->freed)
		return;
	if (k->pidfd >= 0) {
		if (proc_reap(k->pidfd, &k->execfd, &status, desc, sizeof(desc)) <= 0)
			return;
		ep_del(k->pidfd);
		close(k->pidfd);
		k->pidfd = -1;
		if (!k->busy)
			return; /* it had timed out and was killed */
		k->busy = false;
		check_result(v, i, status == 0, status == 0 ? "exit status 0" : desc);
		return;
	}
	if (!k->busy || k->hc.fd < 0)
		return;
	r = hc_step(&k->hc);
	if (r == HC_PENDING) {
		ep_mod(k->hc.fd, &k->ev, hc_events(&k->hc));
		return;
	}
	snprintf(detail, sizeof(detail), "%s", k->hc.detail);
	check_result(v, i, r == HC_PASS, detail);
}

/* Bound the check in flight by health-timeout. */
bool check_timed_out(struct version *v, int i, long long now)
{
	struct check *k = &v->inst[i].chk;
	char why[96];

	if (!k->busy || now < k->deadline)
		return false;
	snprintf(why, sizeof(why), "no answer within health-timeout %u ms",
		 v->svc->conf.health_timeout_ms);
	check_result(v, i, false, why); /* kills an exec check */
	return true;
}

void checks_stop(struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++)
		check_close(v, i);
}

/*
 * Errors the kernel saw on the new version during the last health-interval:
 * connections it reset, and connections dropped because its accept queue
 * was full.  health-threshold bad intervals in a row roll back.
 */
static void sample_errors(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct version_counts n = {0};
	__u64 drops = 0, d, da, dr, dd;
	int i, j;

	if (dp_counts(v, &n))
		return;
	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < c->nlisten; j++)
			if (v->inst[i].lfd[j] >= 0 && !listener_drops(v->inst[i].lfd[j], &d))
				drops += d;
	if (!v->sampled) {
		v->sampled = true;
		v->base_accepted = n.accepted;
		v->base_resets = n.resets;
		v->base_drops = drops;
		return;
	}
	da = n.accepted - v->base_accepted;
	dr = n.resets - v->base_resets;
	/* The kernel's counters are 32-bit per socket: a wrap reads as no drops. */
	dd = drops >= v->base_drops ? drops - v->base_drops : 0;
	v->base_accepted = n.accepted;
	v->base_resets = n.resets;
	v->base_drops = drops;
	snprintf(v->errors_last, sizeof(v->errors_last),
		 "%llu new connections, %llu reset by the server, %llu dropped (accept queue "
		 "full) in %u ms",
		 (unsigned long long)da, (unsigned long long)dr, (unsigned long long)dd,
		 c->health_interval_ms);
	error_sample(v, da + dd, dr + dd);
}

/* The new version under rollout, every HEALTH_TICK_MS. */
void health_tick(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	long long now = now_ms();
	struct service *s = v->svc;
	int i;

	/*
	 * A failure below may roll back.  That ends the rollout but does not
	 * free v: it still has live instances, which now drain.
	 */
	for (i = 0; i < v->ninst; i++) {
		/* rolling: an instance still starting is readiness-checked, not health-checked */
		if (!v->inst[i].alive || !v->inst[i].ready)
			continue;
		check_timed_out(v, i, now);
		if (s->ro.stage == RO_NONE || ro_new(s) != v)
			return;
		if (c->health != HEALTH_NONE && now >= v->inst[i].chk.next_at)
			check_start(v, i, false);
		if (s->ro.stage == RO_NONE || ro_new(s) != v)
			return;
	}
	if (now >= v->next_sample) {
		v->next_sample = now + c->health_interval_ms;
		sample_errors(v);
		if (s->ro.stage != RO_NONE && ro_new(s) == v && fsm_gates_on(c))
			latview_gate_sample(v);
	}
	if (c->ngates && !v->freed && s->ro.stage != RO_NONE && ro_new(s) == v)
		promgate_tick(v, now);
}

/* ---- TCP readiness: a probe through the instance's own socket ------------ */
void probe_stop(struct version *v, int i)
{
	struct instance *in = &v->inst[i];

	if (in->probe_fd < 0)
		return;
	dp_probe_del(v, in->probe_addr, &in->probe_src);
	close(in->probe_fd);
	in->probe_fd = -1;
}

void probe_start(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	int j = next_addr(v, i, in->probe_addr);
	const struct listen_addr *la;
	struct sockaddr_storage src, dst;
	socklen_t slen = sizeof(src);
	int fd;

	if (j >= v->svc->conf.nlisten)
		j = 0;
	in->probe_addr = j;
	la = &v->svc->conf.listen[j];
	dst = la->ss;
	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* A wildcard listen address is probed on loopback. */
	if (dst.ss_family == AF_INET) {
		struct sockaddr_in *d = (void *)&dst;

		if (d->sin_addr.s_addr == htonl(INADDR_ANY))
			d->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memcpy(&src, d, sizeof(*d));
		((struct sockaddr_in *)&src)->sin_port = 0;
	} else {
		struct sockaddr_in6 *d = (void *)&dst;

		if (IN6_IS_ADDR_UNSPECIFIED(&d->sin6_addr))
			d->sin6_addr = in6addr_loopback;
		memcpy(&src, d, sizeof(*d));
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	}
	if (bind(fd, (struct sockaddr *)&src, la->len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&src, &slen) < 0) {
		log_warn("%s: instance %d: probe: bind", vname(v), i);
		close(fd);
		return;
	}
	in->probe_src = src;
	/* Pin before the SYN leaves, so the steer program sends it to this instance. */
	if (dp_probe_add(v, i, j, &in->probe_src)) {
		log_warn("%s: instance %d: probe: cannot pin source port", vname(v), i);
		close(fd);
		return;
	}
	in->probe_fd = fd;
	if (connect(fd, (struct sockaddr *)&dst, la->len) < 0 && errno != EINPROGRESS) {
		log_debug("%s: instance %d: probe: connect: %s", vname(v), i, strerror(errno));
		probe_stop(v, i);
	}
}

/*
 * A probe is passed when its connection was established through the
 * instance's socket and the instance accepted it: the listener's accept
 * queue (tcpi_unacked on a listening socket) is empty again.  Nothing else
 * reaches a starting version, so the queue holds only the probe.  The
 * instance is ready once a probe passed on every listen address.
 */
void probe_check(struct version *v, int i)
{
	struct instance *in = &v->inst[i];
	struct pollfd p = {.fd = in->probe_fd, .events = POLLOUT};
	struct tcp_info ti;
	socklen_t len = sizeof(int);
	int soerr = 0, j;

	if (in->probe_fd < 0) {
		probe_start(v, i);
		return;
	}
	if (poll(&p, 1, 0) == 0)
		return; /* handshake still in flight */
	getsockopt(in->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr) {
		log_debug("%s: instance %d: probe: %s", vname(v), i, strerror(soerr));
		probe_stop(v, i); /* try again next tick */
		return;
	}
	len = sizeof(ti);
	j = in->probe_addr;
	if (in->lfd[j] < 0 || getsockopt(in->lfd[j], IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
		log_debug("%s: instance %d: probe: no listener to check on %s", vname(v), i,
			  v->svc->conf.listen[j].text);
		return;
	}
	if (ti.tcpi_unacked) {
		log_debug("%s: instance %d: probe on %s connected, %u queued", vname(v), i,
			  v->svc->conf.listen[j].text, ti.tcpi_unacked);
		return;
	}
	probe_stop(v, i);
	in->probe_addr = next_addr(v, i, j + 1);
	if (in->probe_addr < v->svc->conf.nlisten) {
		probe_start(v, i);
		return;
	}
	in->probe_addr = 0;
	instance_ready(v, i);
}
