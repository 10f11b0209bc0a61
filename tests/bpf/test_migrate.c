/* SPDX-License-Identifier: MIT */
/*
 * Migration matrix (issue 5) and lost connections, with real sockets on
 * loopback in a private network namespace (the runner unshares it).
 *
 * Group "migrate": requests queued on a closing listener of version 1 move
 * to a live listener of version 2, the version the policy names, with
 * bpf/steer.bpf.c choosing, in each state the kernel migrates:
 *   - established connections in the accept queue (at close),
 *   - requests in NEW_SYN_RECV, on the SYN+ACK retransmit of the request
 *     timer and on the client's final ACK,
 *   - TCP Fast Open children in SYN_RECV (at close).
 * A request is held in its handshake by dropping the client's final ACK on
 * lo (tests/bpf/drop_ack.bpf.c, XDP).  Every client is then served (a byte
 * each way), and the namespace's TcpExt counters, steer's migrated counter
 * and track's per-version counts all agree.
 *
 * Group "lost": bpf/track.bpf.c counts the connections the kernel closed
 * because the process holding them died, and only those.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/libbpf.h>

#include "steer_user.h"
#include "track_user.h"
#include "drop_ack.skel.h"

#define NV	2 /* versions: slot 0 is version 1, slot 1 version 2 */
#define NI	2 /* instances per version */
#define SERVICE 9
#define GROUP	5
#define PORT	18231
#define NREQ	20 /* requests per migration case */
#define NLOST	16 /* connections of the process that dies */

struct fixture {
	struct steer st;
	struct track tr;
	struct drop_ack_bpf *xdp;
	struct bpf_link *xdp_link;
	char pin_dir[64];
	int family;
	int fastopen;
	int dual; /* one IPv6 listener for both families: [::], IPV6_V6ONLY off */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int lfd[NV][NI];
	int cfd[NREQ];
	int afd[NREQ];
};

static void on_zero(void *ctx, const struct track_event *e)
{
	(void)ctx;
	(void)e;
}

static void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 2};

	/* A lost packet fails the test in 2 s, not after the kernel's minutes. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static int listener(struct fixture *f)
{
	int one = 1, qlen = 4 * NREQ;
	int fd = socket(f->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	if (f->family == AF_INET6 && !f->dual)
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
	if (f->fastopen)
		assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&f->addr, f->addrlen), 0);
	assert_int_equal(listen(fd, 4 * NREQ), 0);
	return fd;
}

/* Version `to` (slot) takes every new connection; the other one drains. */
static void policy(struct fixture *f, int to)
{
	struct steer_service p = {.mode = STEER_PER_CONNECTION};
	int v;

	for (v = 0; v < NV; v++) {
		p.v[v].version = v + 1;
		p.v[v].instances = NI;
		p.v[v].state = v == to ? VSTATE_ACTIVE : VSTATE_DRAINING;
		p.v[v].weight = v == to ? WEIGHT_MAX : 0;
	}
	assert_int_equal(steer_set_service(&f->st, SERVICE, &p), 0);
}

/* Server and client Fast Open without cookies, in this namespace only. */
static int enable_fastopen(void)
{
	int fd = open("/proc/sys/net/ipv4/tcp_fastopen", O_WRONLY | O_CLOEXEC);
	/* TFO_CLIENT_ENABLE | TFO_SERVER_ENABLE | TFO_CLIENT_NO_COOKIE |
	 * TFO_SERVER_COOKIE_NOT_REQD */
	int ok = fd >= 0 && write(fd, "519", 3) == 3;

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

static int setup_family(void **state, int family, int fastopen, int dual)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	int v, i, r;

	if (!f)
		return -1;
	if (fastopen && enable_fastopen()) {
		fprintf(stderr, "cannot enable tcp_fastopen: %s\n", strerror(errno));
		free(f);
		return -1;
	}
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf/baton-migrate-%d", getpid());
	r = steer_open(&f->st, f->pin_dir, err, sizeof(err));
	if (!r) {
		r = track_open(&f->tr, f->pin_dir, true, on_zero, NULL, err, sizeof(err));
		if (r)
			steer_close(&f->st);
	}
	if (r) {
		fprintf(stderr, "%s\n", err);
		steer_unpin(f->pin_dir);
		free(f);
		return -1;
	}
	f->family = family;
	f->fastopen = fastopen;
	f->dual = dual;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)&f->addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(PORT);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f->addrlen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (void *)&f->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(PORT);
		sin6->sin6_addr = dual ? in6addr_any : in6addr_loopback;
		f->addrlen = sizeof(*sin6);
	}
	for (i = 0; i < NREQ; i++)
		f->cfd[i] = f->afd[i] = -1;
	assert_int_equal(steer_add_group(&f->st, (struct sockaddr *)&f->addr, SERVICE, GROUP), 0);
	assert_int_equal(track_register(&f->tr, SERVICE, 1), 0);
	assert_int_equal(track_register(&f->tr, SERVICE, 2), 0);
	policy(f, 0);
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++) {
			f->lfd[v][i] = listener(f);
			assert_int_equal(steer_place(&f->st, steer_slot(GROUP, v, i), f->lfd[v][i]),
					 0);
		}
	assert_int_equal(steer_attach(&f->st, f->lfd[0][0]), 0);
	*state = f;
	return 0;
}

static int setup4(void **state)
{
	return setup_family(state, AF_INET, 0, 0);
}

static int setup6(void **state)
{
	return setup_family(state, AF_INET6, 0, 0);
}

static int setup_dual(void **state)
{
	return setup_family(state, AF_INET6, 0, 1);
}

static int setup4_tfo(void **state)
{
	return setup_family(state, AF_INET, 1, 0);
}

static int setup6_tfo(void **state)
{
	return setup_family(state, AF_INET6, 1, 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int v, i;

	bpf_link__destroy(f->xdp_link);
	drop_ack_bpf__destroy(f->xdp);
	for (i = 0; i < NREQ; i++) {
		if (f->cfd[i] >= 0)
			close(f->cfd[i]);
		if (f->afd[i] >= 0)
			close(f->afd[i]);
	}
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			if (f->lfd[v][i] >= 0)
				close(f->lfd[v][i]);
	track_close(&f->tr);
	steer_close(&f->st);
	/* Also unpins track's link: the program detaches from the cgroup. */
	steer_unpin(f->pin_dir);
	free(f);
	return 0;
}

/* Drop (on) or deliver (off) the clients' pure ACKs to PORT on lo. */
static void hold_acks(struct fixture *f, int on)
{
	if (!f->xdp) {
		f->xdp = drop_ack_bpf__open_and_load();
		assert_non_null(f->xdp);
		f->xdp->bss->port = htons(PORT);
		f->xdp_link = bpf_program__attach_xdp(f->xdp->progs.drop_ack, if_nametoindex("lo"));
		assert_non_null(f->xdp_link);
	}
	__atomic_store_n(&f->xdp->bss->on, on, __ATOMIC_SEQ_CST);
}

/* A TcpExt counter of this network namespace. */
static long long tcpext(const char *name)
{
	char names[8192], values[8192], *ns, *vs, *n, *v;
	FILE *fp = fopen("/proc/net/netstat", "r");
	long long r = -1;

	assert_non_null(fp);
	while (fgets(names, sizeof(names), fp) && fgets(values, sizeof(values), fp)) {
		if (strncmp(names, "TcpExt:", 7))
			continue;
		n = strtok_r(names, " \n", &ns);
		v = strtok_r(values, " \n", &vs);
		while ((n = strtok_r(NULL, " \n", &ns)) && (v = strtok_r(NULL, " \n", &vs)))
			if (!strcmp(n, name)) {
				r = strtoll(v, NULL, 10);
				break;
			}
		break;
	}
	fclose(fp);
	if (r < 0)
		fail_msg("no TcpExt %s in /proc/net/netstat", name);
	return r;
}

struct snap {
	long long ok, fail, tfo;
	struct steer_stats st;
};

static void snap(struct fixture *f, struct snap *s)
{
	s->ok = tcpext("TCPMigrateReqSuccess");
	s->fail = tcpext("TCPMigrateReqFailure");
	s->tfo = tcpext("TCPFastOpenPassive");
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s->st), 0);
}

/* Wait up to ms for TCPMigrateReqSuccess to reach want (bounded polling). */
static long long wait_migrated(long long want, int ms)
{
	long long got = tcpext("TCPMigrateReqSuccess");
	int waited;

	for (waited = 0; got < want && waited < ms; waited += 20) {
		usleep(20000);
		got = tcpext("TCPMigrateReqSuccess");
	}
	return got;
}

/* Wait up to ms for the XDP helper to have dropped want ACKs (bounded polling). */
static __u64 wait_dropped(struct fixture *f, __u64 want, int ms)
{
	__u64 got = __atomic_load_n(&f->xdp->bss->dropped, __ATOMIC_SEQ_CST);
	int waited;

	for (waited = 0; got < want && waited < ms; waited += 10) {
		usleep(10000);
		got = __atomic_load_n(&f->xdp->bss->dropped, __ATOMIC_SEQ_CST);
	}
	return got;
}

/*
 * n clients connect; with Fast Open, the first byte rides in the SYN.  The
 * client's handshake completes whether or not its final ACK is dropped.
 */
static void connect_clients(struct fixture *f, int n)
{
	int k, one = 1;

	for (k = 0; k < n; k++) {
		f->cfd[k] = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->cfd[k] >= 0);
		set_timeouts(f->cfd[k]);
		if (f->fastopen)
			assert_int_equal(setsockopt(f->cfd[k], IPPROTO_TCP, TCP_FASTOPEN_CONNECT,
						    &one, sizeof(one)),
					 0);
		if (connect(f->cfd[k], (struct sockaddr *)&f->addr, f->addrlen) < 0)
			fail_msg("connect: %s", strerror(errno));
		if (f->fastopen)
			assert_int_equal(send(f->cfd[k], "x", 1, 0), 1);
	}
}

static void clients_send(struct fixture *f, int n)
{
	int k;

	for (k = 0; k < n; k++)
		assert_int_equal(send(f->cfd[k], "x", 1, 0), 1);
}

static void close_version(struct fixture *f, int v)
{
	int i;

	for (i = 0; i < NI; i++) {
		close(f->lfd[v][i]);
		f->lfd[v][i] = -1;
	}
}

/*
 * Accept n connections, all on live listeners of version slot v (a
 * connection on any other listener fails the test).  Bounded: 3 s.
 */
static void accept_on(struct fixture *f, int v, int n)
{
	struct pollfd pfd[NV * NI];
	int got = 0, round, w, i, c;

	for (round = 0; got < n && round < 15; round++) {
		for (w = 0; w < NV; w++)
			for (i = 0; i < NI; i++) {
				pfd[w * NI + i].fd = f->lfd[w][i];
				pfd[w * NI + i].events = POLLIN;
			}
		if (poll(pfd, NV * NI, 200) < 0)
			fail_msg("poll: %s", strerror(errno));
		for (w = 0; w < NV; w++)
			for (i = 0; i < NI; i++) {
				if (!(pfd[w * NI + i].revents & POLLIN))
					continue;
				while ((c = accept4(f->lfd[w][i], NULL, NULL, SOCK_CLOEXEC)) >= 0) {
					if (w != v)
						fail_msg("a connection reached version %d", w + 1);
					if (got == n)
						fail_msg("more than %d connections", n);
					set_timeouts(c);
					f->afd[got++] = c;
				}
				assert_int_equal(errno, EAGAIN);
			}
	}
	if (got != n)
		fail_msg("%d of %d connections never reached version %d", n - got, n, v + 1);
}

/* Every accepted connection reads the client's byte and answers; every client gets it. */
static void serve(struct fixture *f, int n)
{
	char b;
	int k;

	for (k = 0; k < n; k++) {
		if (recv(f->afd[k], &b, 1, 0) != 1 || b != 'x')
			fail_msg("server %d: no byte from its client: %s", k, strerror(errno));
		assert_int_equal(send(f->afd[k], "y", 1, 0), 1);
	}
	for (k = 0; k < n; k++)
		if (recv(f->cfd[k], &b, 1, 0) != 1 || b != 'y')
			fail_msg("client %d: no answer: %s", k, strerror(errno));
}

static int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return ti.tcpi_state;
}

static void counts(struct fixture *f, __u32 version, struct version_counts *c)
{
	assert_int_equal(track_counts(&f->tr, SERVICE, version, c), 0);
}

/* The deltas every case checks, and one line of the matrix. */
static void check_migrated(struct fixture *f, const char *name, const struct snap *a, int n)
{
	struct snap b;

	snap(f, &b);
	printf("matrix: %s %-24s requests %d  TCPMigrateReqSuccess +%lld  Failure +%lld  steer "
	       "migrated +%llu dropped +%llu\n",
	       f->family == AF_INET ? "IPv4" : "IPv6", name, n, b.ok - a->ok, b.fail - a->fail,
	       (unsigned long long)(b.st.migrated - a->st.migrated),
	       (unsigned long long)(b.st.dropped - a->st.dropped));
	assert_int_equal(b.ok - a->ok, n);
	assert_int_equal(b.fail - a->fail, 0);
	assert_int_equal(b.st.migrated - a->st.migrated, n);
	assert_int_equal(b.st.dropped - a->st.dropped, 0);
}

/* Version 1 got no connection of its own; version 2 got all n through migration. */
static void check_track_requests(struct fixture *f, int n)
{
	struct version_counts c1, c2;

	counts(f, 1, &c1);
	counts(f, 2, &c2);
	assert_int_equal(c1.accepted, 0);
	assert_int_equal(c1.live, 0);
	assert_int_equal(c2.accepted, n);
	assert_int_equal(c2.live, n);
}

/* 1. Established connections waiting in the accept queue of a closing listener. */
static void test_established(void **state)
{
	struct fixture *f = *state;
	struct version_counts c1, c2;
	struct snap a;

	connect_clients(f, NREQ);
	snap(f, &a);
	policy(f, 1);
	close_version(f, 0);
	check_migrated(f, "established", &a, NREQ);
	clients_send(f, NREQ);
	accept_on(f, 1, NREQ);
	serve(f, NREQ);
	/* Counted on version 1 at the handshake, moved to version 2 with the connection. */
	counts(f, 1, &c1);
	counts(f, 2, &c2);
	assert_int_equal(c1.accepted, NREQ);
	assert_int_equal(c1.live, 0);
	assert_int_equal(c2.migrated_in, NREQ);
	assert_int_equal(c2.live, NREQ);
}

/*
 * 2a. Requests in NEW_SYN_RECV: the listener closes with them in flight and
 * the request timer's first SYN+ACK retransmit (1 s, TCP_TIMEOUT_INIT)
 * migrates them (reqsk_timer_handler).  The client's answer to the new
 * SYN+ACK is dropped too, so nothing else can have moved them.
 */
static void test_new_syn_recv_synack(void **state)
{
	struct fixture *f = *state;
	struct snap a;
	long long got;

	hold_acks(f, 1);
	connect_clients(f, NREQ);
	snap(f, &a);
	policy(f, 1);
	close_version(f, 0);
	got = wait_migrated(a.ok + NREQ, 4000);
	assert_int_equal(got - a.ok, NREQ);
	/* Each client's ACK to the SYN+ACK and to its retransmit were dropped. */
	assert_true(wait_dropped(f, 2 * NREQ, 1000) >= 2 * NREQ);
	check_migrated(f, "new_syn_recv/synack", &a, NREQ);
	/* The requests now belong to version 2: its listeners complete them. */
	hold_acks(f, 0);
	clients_send(f, NREQ);
	accept_on(f, 1, NREQ);
	serve(f, NREQ);
	check_track_requests(f, NREQ);
}

/*
 * 2b. Requests in NEW_SYN_RECV migrated by the final ACK: the listener
 * closes, the ACKs flow again, and the client's first data segment (which
 * carries the ACK the server never got) reaches the request of the closed
 * listener: tcp_v4_rcv / tcp_v6_rcv migrate it and
 * inet_csk_complete_hashdance queues the child on the new listener.  It all
 * happens well inside the request timer's first second; the checks below
 * prove no request had moved before the ACKs were let through.
 */
static void test_new_syn_recv_ack(void **state)
{
	struct fixture *f = *state;
	struct snap a;

	hold_acks(f, 1);
	connect_clients(f, NREQ);
	snap(f, &a);
	policy(f, 1);
	close_version(f, 0);
	/* Nothing migrates at close: requests are not in the accept queue. */
	assert_int_equal(tcpext("TCPMigrateReqSuccess") - a.ok, 0);
	assert_int_equal(wait_dropped(f, NREQ, 300), NREQ);
	hold_acks(f, 0);
	clients_send(f, NREQ);
	accept_on(f, 1, NREQ);
	/* No SYN+ACK was retransmitted: the ACK path, not the timer, migrated them. */
	assert_int_equal(f->xdp->bss->dropped, NREQ);
	check_migrated(f, "new_syn_recv/final_ack", &a, NREQ);
	serve(f, NREQ);
	check_track_requests(f, NREQ);
}

/*
 * 3. Fast Open: the SYN carries the client's byte, the server creates the
 * child at once (SYN_RECV, in the accept queue) and the final ACK is
 * dropped, so the child is still in SYN_RECV when its listener closes and
 * inet_csk_listen_stop migrates it.
 */
static void test_fastopen_syn_recv(void **state)
{
	struct fixture *f = *state;
	struct version_counts c1, c2;
	struct snap a, b;
	int k;

	hold_acks(f, 1);
	snap(f, &a);
	connect_clients(f, NREQ);
	snap(f, &b);
	assert_int_equal(b.tfo - a.tfo, NREQ);
	policy(f, 1);
	close_version(f, 0);
	check_migrated(f, "fastopen/syn_recv", &b, NREQ);
	/* Still in SYN_RECV on version 2's listeners, with the SYN's byte. */
	accept_on(f, 1, NREQ);
	for (k = 0; k < NREQ; k++)
		assert_int_equal(tcp_state(f->afd[k]), TCP_SYN_RECV);
	hold_acks(f, 0);
	serve(f, NREQ);
	/*
	 * track counted each connection on version 1 when the kernel created
	 * the Fast Open child (PASSIVE_ESTABLISHED comes at the SYN), so its
	 * migration must move the count as an established connection's does.
	 */
	counts(f, 1, &c1);
	counts(f, 2, &c2);
	printf("track: fastopen v1 accepted %llu live %lld, v2 accepted %llu live %lld "
	       "migrated_in %llu\n",
	       (unsigned long long)c1.accepted, (long long)c1.live, (unsigned long long)c2.accepted,
	       (long long)c2.live, (unsigned long long)c2.migrated_in);
	assert_int_equal(c1.accepted, NREQ);
	assert_int_equal(c1.live, 0);
	assert_int_equal(c2.live, NREQ);
	assert_int_equal(c2.migrated_in, NREQ);
}

/* --- lost: connections closed by the exit of the process holding them --- */

/* Wait for the child's one-byte "ready" on a pipe; bounded. */
static void wait_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	if (poll(&p, 1, 5000) != 1 || read(fd, &b, 1) != 1)
		fail_msg("the child never got ready");
}

static void reap(pid_t pid, int sig)
{
	int st;

	if (sig)
		assert_int_equal(kill(pid, sig), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* How the server child ends. */
enum ending {
	END_KILL,     /* SIGKILL while it holds its connections */
	END_EXIT,     /* _exit(0) without closing them */
	END_GRACEFUL, /* closes every connection, then _exit(0) */
};

/*
 * A child accepts the n queued connections from version 1's listeners,
 * closes the first `closes` of them itself, reports ready on `ready`, and
 * ends as told.  END_EXIT exits only once `go` reads EOF: the
 * parent first checks that nothing is lost while the child still holds its
 * connections, and an exit right after "ready" would race that check.
 * Plain code: no cmocka in the child.
 */
static pid_t server_child(struct fixture *f, int n, int closes, enum ending how, int ready, int go)
{
	pid_t pid = fork();
	int fds[NLOST];
	int got = 0, round, i, c;
	char b;

	assert_true(pid >= 0);
	if (pid)
		return pid;
	alarm(10); /* bound: a lost parent cannot leave this child behind */
	for (round = 0; got < n && round < 100; round++) {
		for (i = 0; i < NI; i++)
			while (got < n && (c = accept4(f->lfd[0][i], NULL, NULL, 0)) >= 0)
				fds[got++] = c;
		if (got < n)
			usleep(10000);
	}
	if (got < n)
		_exit(2);
	for (i = 0; i < closes; i++)
		close(fds[i]);
	if (how == END_GRACEFUL)
		for (i = closes; i < n; i++)
			close(fds[i]);
	if (write(ready, "r", 1) != 1)
		_exit(3);
	if (how == END_KILL)
		for (;;)
			pause();
	/* Bounded by the alarm above. */
	if (how == END_EXIT && read(go, &b, 1) < 0)
		_exit(4);
	_exit(0);
}

/* Wait up to 3 s for version 1's live count to reach want. */
static void wait_live(struct fixture *f, long long want, struct version_counts *c)
{
	int waited;

	counts(f, 1, c);
	for (waited = 0; c->live != want && waited < 3000; waited += 20) {
		usleep(20000);
		counts(f, 1, c);
	}
	assert_int_equal(c->live, want);
}

/*
 * n connections to version 1; `unread` of them (the last ones) carry a
 * byte the server never reads, so the kernel's close resets them; the
 * server child ends as told.  Returns version 1's lost after the child is
 * gone, and checks every connection is counted closed once the clients
 * close.
 */
static __u64 run_server_child(struct fixture *f, int closes, int unread, enum ending how)
{
	struct version_counts c;
	int pfd[2], gfd[2], k;
	pid_t pid;

	connect_clients(f, NLOST);
	for (k = NLOST - unread; k < NLOST; k++)
		assert_int_equal(send(f->cfd[k], "x", 1, 0), 1);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(pipe2(gfd, O_CLOEXEC), 0);
	pid = server_child(f, NLOST, closes, how, pfd[1], gfd[0]);
	close(pfd[1]);
	close(gfd[0]);
	wait_ready(pfd[0]);
	close(pfd[0]);
	/* The child holds its connections until told to go: nothing lost yet. */
	counts(f, 1, &c);
	assert_int_equal(c.lost, 0);
	close(gfd[1]); /* go: EOF (a write could meet a child already gone: SIGPIPE) */
	reap(pid, how == END_KILL ? SIGKILL : 0);
	/* The exit closed everything before waitpid returned: lost is final. */
	counts(f, 1, &c);
	printf("lost: %s %s: %d connections, %d closed by the process, %d unread -> lost %llu "
	       "resets %llu\n",
	       f->family == AF_INET ? "IPv4" : "IPv6",
	       how == END_KILL	 ? "SIGKILL"
	       : how == END_EXIT ? "exit"
				 : "graceful",
	       NLOST, closes, unread, (unsigned long long)c.lost, (unsigned long long)c.resets);
	for (k = 0; k < NLOST; k++) {
		close(f->cfd[k]);
		f->cfd[k] = -1;
	}
	wait_live(f, 0, &c);
	assert_int_equal(c.accepted, NLOST);
	assert_int_equal(c.closed, NLOST);
	return c.lost;
}

/*
 * The key steer and track see for a client of this fixture on local port
 * sport (both ends on the loopback address).
 */
static void loopback_key(struct fixture *f, __u16 sport, struct conn_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = f->family;
	k->lport = PORT;
	k->rport = sport;
	if (f->family == AF_INET) {
		k->laddr[0] = k->raddr[0] = htonl(INADDR_LOOPBACK);
	} else {
		memcpy(k->laddr, &in6addr_loopback, 16);
		memcpy(k->raddr, &in6addr_loopback, 16);
	}
}

/* A client bound to source port sport, connected (its SYN sent and answered). */
static int connect_from(struct fixture *f, __u16 sport)
{
	struct sockaddr_storage src = f->addr;
	int fd = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	set_timeouts(fd);
	if (f->family == AF_INET)
		((struct sockaddr_in *)&src)->sin_port = htons(sport);
	else
		((struct sockaddr_in6 *)&src)->sin6_port = htons(sport);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	if (bind(fd, (struct sockaddr *)&src, f->addrlen) < 0)
		fail_msg("bind to port %u: %s", sport, strerror(errno));
	if (connect(fd, (struct sockaddr *)&f->addr, f->addrlen) < 0)
		fail_msg("connect: %s", strerror(errno));
	return fd;
}

/*
 * 5. A slow handshake keeps its decision.  Decisions wait in a small hot
 * table; one that waited there DECISION_HOT_S seconds moves to the large
 * table when its way is needed.  Connection A's final ACK is held for 3 s;
 * then DECISION_WAYS more handshakes whose 4-tuples fall in A's hot set
 * (source ports chosen with conn_hash(), as the programs compute it) are
 * held too, so the last of them must take A's way.  When the ACKs flow,
 * all of them are counted: A's decision was moved, not lost, and nothing
 * was evicted.
 */
static void test_slow_handshake(void **state)
{
	struct fixture *f = *state;
	struct version_counts c0, c1;
	struct steer_stats s0, s1;
	__u16 port[DECISION_WAYS + 1];
	struct conn_key k;
	__u32 hot, want;
	__u64 tag;
	int n = 0, p;

	for (p = 21000; p < 60000 && n <= DECISION_WAYS; p++) {
		loopback_key(f, p, &k);
		conn_hash(&k, &tag, &hot);
		if (!n)
			want = hot;
		if (hot == want)
			port[n++] = p;
	}
	assert_int_equal(n, DECISION_WAYS + 1);
	counts(f, 1, &c0);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s0), 0);
	hold_acks(f, 1);
	f->cfd[0] = connect_from(f, port[0]);
	usleep((DECISION_HOT_S + 1) * 1000000 + 100000);
	for (p = 1; p <= DECISION_WAYS; p++)
		f->cfd[p] = connect_from(f, port[p]);
	assert_true(wait_dropped(f, DECISION_WAYS + 1, 1000) >= DECISION_WAYS + 1);
	hold_acks(f, 0);
	clients_send(f, DECISION_WAYS + 1);
	accept_on(f, 0, DECISION_WAYS + 1);
	serve(f, DECISION_WAYS + 1);
	counts(f, 1, &c1);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s1), 0);
	assert_int_equal(c1.accepted - c0.accepted, DECISION_WAYS + 1);
	assert_int_equal(c1.live - c0.live, DECISION_WAYS + 1);
	assert_int_equal(s1.evicted - s0.evicted, 0);
	print_message("slow handshake (%s): %u of %u counted, A's ACK held %d s\n",
		      f->family == AF_INET ? "IPv4" : "IPv6", (unsigned)(c1.accepted - c0.accepted),
		      DECISION_WAYS + 1, DECISION_HOT_S + 1);
}

/*
 * 6. A dual-stack listener (an adopted server's [::] socket without
 * IPV6_V6ONLY) gets IPv4 clients: its connections see them IPv4-mapped, and
 * steer must record its decision under that same key for track to count
 * them.  IPv4 and IPv6 clients, all counted.
 */
static void test_dual_stack_counts(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(PORT)};
	struct version_counts c0, c1;
	int k, n = 8;

	v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	v6.sin6_addr = in6addr_loopback;
	counts(f, 1, &c0);
	for (k = 0; k < n; k++) {
		int six = k % 2;

		f->cfd[k] = socket(six ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->cfd[k] >= 0);
		set_timeouts(f->cfd[k]);
		if (connect(f->cfd[k], six ? (struct sockaddr *)&v6 : (struct sockaddr *)&v4,
			    six ? sizeof(v6) : sizeof(v4)) < 0)
			fail_msg("connect: %s", strerror(errno));
	}
	clients_send(f, n);
	accept_on(f, 0, n);
	serve(f, n);
	counts(f, 1, &c1);
	assert_int_equal(c1.accepted - c0.accepted, n);
	assert_int_equal(c1.live - c0.live, n);
	print_message("dual-stack listener: %lld of %d counted (half IPv4)\n",
		      (long long)(c1.accepted - c0.accepted), n);
}

static void test_lost_on_kill(void **state)
{
	struct fixture *f = *state;

	/* 4 closed first (not lost); of the 12 it held, 3 end in a reset. */
	assert_int_equal(run_server_child(f, 4, 3, END_KILL), NLOST - 4);
}

static void test_lost_on_exit_without_close(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run_server_child(f, 0, 0, END_EXIT), NLOST);
}

static void test_none_lost_on_graceful_exit(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run_server_child(f, 0, 0, END_GRACEFUL), 0);
}

/*
 * The other side dying is not a loss: a client process killed with open
 * connections sends FIN (or RST, SO_LINGER {1, 0}) from its own exit, and
 * on loopback the server sockets change state in that dying task's context.
 */
static void test_none_lost_when_client_dies(void **state)
{
	struct fixture *f = *state;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct version_counts c;
	int pfd[2], k, i, got = 0, round, fd;
	pid_t pid;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		alarm(10);
		for (k = 0; k < NLOST; k++) {
			fd = socket(f->family, SOCK_STREAM, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&f->addr, f->addrlen) < 0)
				_exit(2);
			if (k % 2)
				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		if (write(pfd[1], "r", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(pfd[1]);
	wait_ready(pfd[0]);
	close(pfd[0]);
	for (round = 0; got < NLOST && round < 100; round++) {
		for (i = 0; i < NI; i++)
			while (got < NLOST &&
			       (fd = accept4(f->lfd[0][i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
				f->afd[got++] = fd;
		if (got < NLOST)
			usleep(10000);
	}
	assert_int_equal(got, NLOST);
	reap(pid, SIGKILL);
	counts(f, 1, &c);
	assert_int_equal(c.lost, 0);
	/* The RST ones are gone; the FIN ones wait in CLOSE_WAIT for us. */
	assert_int_equal(c.live, NLOST / 2);
	for (k = 0; k < NLOST; k++) {
		close(f->afd[k]);
		f->afd[k] = -1;
	}
	wait_live(f, 0, &c);
	printf("lost: %s client killed: %d connections -> lost %llu\n",
	       f->family == AF_INET ? "IPv4" : "IPv6", NLOST, (unsigned long long)c.lost);
	assert_int_equal(c.lost, 0);
	assert_int_equal(c.closed, NLOST);
}

int main(void)
{
	const struct CMUnitTest migrate[] = {
	    cmocka_unit_test_setup_teardown(test_established, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_new_syn_recv_synack, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_new_syn_recv_ack, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_fastopen_syn_recv, setup4_tfo, teardown),
	    cmocka_unit_test_setup_teardown(test_established, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_new_syn_recv_synack, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_new_syn_recv_ack, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_fastopen_syn_recv, setup6_tfo, teardown),
	};
	const struct CMUnitTest counting[] = {
	    cmocka_unit_test_setup_teardown(test_slow_handshake, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_handshake, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_dual_stack_counts, setup_dual, teardown),
	};
	const struct CMUnitTest lost[] = {
	    cmocka_unit_test_setup_teardown(test_lost_on_kill, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_on_exit_without_close, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_none_lost_on_graceful_exit, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_none_lost_when_client_dies, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_on_kill, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_on_exit_without_close, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_none_lost_on_graceful_exit, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_none_lost_when_client_dies, setup6, teardown),
	};
	int r;

	/* Lines of the matrix go out before cmocka's own. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	r = cmocka_run_group_tests_name("migrate", migrate, NULL, NULL);
	r += cmocka_run_group_tests_name("counting", counting, NULL, NULL);
	r += cmocka_run_group_tests_name("lost", lost, NULL, NULL);
	return r;
}
