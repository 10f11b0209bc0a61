/* SPDX-License-Identifier: MIT */
/*
 * Per-instance live connections (inst_live), with real sockets on loopback
 * in a private network namespace (the runner unshares it).
 *
 * bpf/steer.bpf.c records the instance whose listener it selected for each
 * connection, bpf/track.bpf.c counts it up on that instance when the
 * handshake completes and down when it closes, and a connection queued on
 * a closing listener moves to the instance it migrates to.  Every test
 * accepts every connection and checks that each instance's count is
 * exactly the number of connections its listener holds (accepted and still
 * open, or queued), and that the instances add up to the version's live.
 *
 * Group "close": when a connection stops counting.  At the owner's close
 * (ESTABLISHED / CLOSE_WAIT -> FIN_WAIT1 / LAST_ACK), whether or not the
 * client has closed, and no state change after it runs track (BPF run
 * counts); a half-close (shutdown(SHUT_WR)) keeps counting while the
 * server still reads, until the socket reaches TCP_CLOSE; shutdown(SHUT_RDWR)
 * counts as a close; aborts count at CLOSE, the server's as resets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_user.h"
#include "track_user.h"
#include "track.skel.h"
#include "drop_ack.skel.h"

#define NV	2 /* versions: slot 0 is version 1, slot 1 version 2 */
#define NI	4 /* instances per version */
#define SERVICE 11
#define GROUP	7
#define PORT	18241
#define NC	48 /* connections per test */

struct fixture {
	struct steer st;
	struct track tr;
	struct drop_ack_bpf *xdp;
	struct bpf_link *xdp_link;
	char pin_dir[64];
	struct sockaddr_in addr;
	int lfd[NV][NI];
	int cfd[NC];
	int afd[NC];
	int owner[NC]; /* the instance (slot) whose listener accepted afd[k] */
};

static void on_zero(void *ctx, const struct track_event *e)
{
	(void)ctx;
	(void)e;
}

static void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 2};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static int listener(struct fixture *f)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	assert_int_equal(listen(fd, 4 * NC), 0);
	return fd;
}

/* Version slot `to` takes every new connection over its NI instances; the other drains. */
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

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	int v, i, r;

	if (!f)
		return -1;
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf/baton-instconns-%d", getpid());
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
	f->addr.sin_family = AF_INET;
	f->addr.sin_port = htons(PORT);
	f->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < NC; i++)
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

static int teardown(void **state)
{
	struct fixture *f = *state;
	int v, i;

	bpf_link__destroy(f->xdp_link);
	drop_ack_bpf__destroy(f->xdp);
	for (i = 0; i < NC; i++) {
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
		strtok_r(names, " \n", &ns);
		strtok_r(values, " \n", &vs);
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

static void connect_clients(struct fixture *f, int n)
{
	int k;

	for (k = 0; k < n; k++) {
		f->cfd[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->cfd[k] >= 0);
		set_timeouts(f->cfd[k]);
		if (connect(f->cfd[k], (struct sockaddr *)&f->addr, sizeof(f->addr)) < 0)
			fail_msg("connect: %s", strerror(errno));
	}
}

/*
 * Accept n connections, all on listeners of version slot v (one on any
 * other fails the test), noting each one's instance.  Bounded: 3 s.
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
					f->owner[got] = i;
					f->afd[got++] = c;
				}
				assert_int_equal(errno, EAGAIN);
			}
	}
	if (got != n)
		fail_msg("%d of %d connections never reached version %d", n - got, n, v + 1);
}

static void inst(struct fixture *f, __u32 version, long long n[MAX_INSTANCES])
{
	assert_int_equal(track_inst_live(&f->tr, SERVICE, version, n), 0);
}

static long long live(struct fixture *f, __u32 version)
{
	struct version_counts c;

	assert_int_equal(track_counts(&f->tr, SERVICE, version, &c), 0);
	return c.live;
}

/* What inst_live must say: the accepted connections still open, per instance. */
static void held(const struct fixture *f, int n, long long want[MAX_INSTANCES])
{
	int k;

	memset(want, 0, MAX_INSTANCES * sizeof(want[0]));
	for (k = 0; k < n; k++)
		if (f->afd[k] >= 0)
			want[f->owner[k]]++;
}

/*
 * Wait (bounded, 2 s: closes complete on loopback in microseconds) until
 * version's instances hold exactly want; then check every instance and
 * that they add up to the version's live.
 */
static void expect(struct fixture *f, __u32 version, const long long want[MAX_INSTANCES])
{
	long long got[MAX_INSTANCES], sum = 0;
	int i, waited;

	for (waited = 0; waited < 2000; waited += 10) {
		inst(f, version, got);
		if (!memcmp(got, want, sizeof(got)))
			break;
		usleep(10000);
	}
	printf("instconns: v%u instances", version);
	for (i = 0; i < NI; i++)
		printf(" %lld/%lld", got[i], want[i]);
	printf(" (kernel/held), live %lld\n", live(f, version));
	for (i = 0; i < MAX_INSTANCES; i++) {
		if (got[i] != want[i])
			fail_msg("v%u instance %d: %lld live connection(s) counted, %lld held",
				 version, i, got[i], want[i]);
		sum += got[i];
	}
	assert_int_equal(sum, live(f, version));
}

static void close_pair(struct fixture *f, int k)
{
	close(f->afd[k]);
	close(f->cfd[k]);
	f->afd[k] = f->cfd[k] = -1;
}

static const long long zero[MAX_INSTANCES];

/* Counted on the instance that accepted them, before and after accept, down at close. */
static void test_counts_exact(void **state)
{
	struct fixture *f = *state;
	long long want[MAX_INSTANCES], got[MAX_INSTANCES], sum = 0;
	int k, i;

	connect_clients(f, NC);
	/* Queued, not accepted yet: already counted (the handshake completed). */
	inst(f, 1, got);
	for (i = 0; i < MAX_INSTANCES; i++)
		sum += got[i];
	assert_int_equal(sum, NC);
	accept_on(f, 0, NC);
	held(f, NC, want);
	for (i = 0; i < NI; i++)
		if (!want[i])
			fail_msg("instance %d got none of %d connections", i, NC);
	expect(f, 1, want);
	expect(f, 2, zero);
	/* Close instances 0 and 2's, server side first for one, client side for the other. */
	for (k = 0; k < NC; k++)
		if (f->owner[k] == 0) {
			close_pair(f, k);
		} else if (f->owner[k] == 2) {
			close(f->cfd[k]);
			close(f->afd[k]);
			f->afd[k] = f->cfd[k] = -1;
		}
	held(f, NC, want);
	assert_int_equal(want[0] + want[2], 0);
	expect(f, 1, want);
	for (k = 0; k < NC; k++)
		if (f->afd[k] >= 0)
			close_pair(f, k);
	expect(f, 1, zero);
}

/*
 * A retiring instance: out of the map, then its listener closes with
 * connections queued; they migrate to the other instances of its version
 * and are counted there, not twice and not lost.
 */
static void test_migrate_same_version(void **state)
{
	struct fixture *f = *state;
	long long before[MAX_INSTANCES], want[MAX_INSTANCES];
	long long ok = tcpext("TCPMigrateReqSuccess");
	struct version_counts c;

	connect_clients(f, NC);
	inst(f, 1, before);
	if (!before[1])
		fail_msg("instance 1 got none of %d connections to migrate", NC);
	assert_int_equal(steer_remove(&f->st, steer_slot(GROUP, 0, 1)), 0);
	close(f->lfd[0][1]);
	f->lfd[0][1] = -1;
	assert_int_equal(tcpext("TCPMigrateReqSuccess") - ok, before[1]);
	accept_on(f, 0, NC);
	held(f, NC, want);
	assert_int_equal(want[1], 0);
	expect(f, 1, want);
	/* Within the version: nothing migrated in, nothing closed. */
	assert_int_equal(track_counts(&f->tr, SERVICE, 1, &c), 0);
	assert_int_equal(c.migrated_in, 0);
	assert_int_equal(c.closed, 0);
	assert_int_equal(c.live, NC);
	for (int k = 0; k < NC; k++)
		close_pair(f, k);
	expect(f, 1, zero);
}

/* A version's listeners close: what they had queued is counted on the other's instances. */
static void test_migrate_other_version(void **state)
{
	struct fixture *f = *state;
	long long want[MAX_INSTANCES];
	int i;

	connect_clients(f, NC);
	policy(f, 1);
	for (i = 0; i < NI; i++) {
		assert_int_equal(steer_remove(&f->st, steer_slot(GROUP, 0, i)), 0);
		close(f->lfd[0][i]);
		f->lfd[0][i] = -1;
	}
	accept_on(f, 1, NC);
	held(f, NC, want);
	expect(f, 1, zero);
	expect(f, 2, want);
	for (int k = 0; k < NC; k++)
		close_pair(f, k);
	expect(f, 2, zero);
}

/*
 * Requests still in their handshake (the client's final ACK dropped) on a
 * retiring instance's listener: the ACK, let through after the listener
 * closed, migrates each to another instance, which it is counted on.
 */
static void test_migrate_request_same_version(void **state)
{
	struct fixture *f = *state;
	long long want[MAX_INSTANCES], got[MAX_INSTANCES];
	long long ok;
	int k;

	hold_acks(f, 1);
	connect_clients(f, NC);
	/* No handshake completed: nothing counted yet. */
	inst(f, 1, got);
	assert_memory_equal(got, zero, sizeof(got));
	ok = tcpext("TCPMigrateReqSuccess");
	assert_int_equal(steer_remove(&f->st, steer_slot(GROUP, 0, 1)), 0);
	close(f->lfd[0][1]);
	f->lfd[0][1] = -1;
	hold_acks(f, 0);
	for (k = 0; k < NC; k++)
		assert_int_equal(send(f->cfd[k], "x", 1, 0), 1);
	accept_on(f, 0, NC);
	/* Some of them were instance 1's, and moved (else this tests nothing). */
	if (tcpext("TCPMigrateReqSuccess") - ok <= 0)
		fail_msg("no request of %d was on instance 1", NC);
	held(f, NC, want);
	assert_int_equal(want[1], 0);
	expect(f, 1, want);
	for (k = 0; k < NC; k++)
		close_pair(f, k);
	expect(f, 1, zero);
}

/* --- close: when a connection stops counting (bpf/track.bpf.c, owner_done()) --- */

/* This process's cgroup (v2), and the one the close group's listeners are made in. */
static char cg_home[PATH_MAX], cg_dir[PATH_MAX];

static void write_pid(const char *dir)
{
	char path[PATH_MAX + 16];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fp = fopen(path, "w");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	fprintf(fp, "%d\n", getpid());
	if (fclose(fp))
		fail_msg("%s: %s", path, strerror(errno));
}

/*
 * The close group counts track's runs: it runs for the listeners (and the
 * connections they accept) made in a cgroup of the test's own, where track
 * is attached instead of the root, so that no other socket on the host
 * (other tests, other work) adds runs.  The clients are made outside it.
 */
static int setup_close(void **state)
{
	char root[PATH_MAX], line[PATH_MAX], err[256];
	struct fixture *f;
	FILE *fp;

	if (cgroup2_root(root, sizeof(root)))
		return -1;
	snprintf(cg_home, sizeof(cg_home), "%s", root);
	fp = fopen("/proc/self/cgroup", "r");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, "0::", 3) && strcmp(line + 3, "/\n")) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(cg_home, sizeof(cg_home), "%.2040s%.2040s", root, line + 3);
		}
	fclose(fp);
	snprintf(cg_dir, sizeof(cg_dir), "%.2040s/baton-instconns-%d", root, getpid());
	if (mkdir(cg_dir, 0700) < 0 && errno != EEXIST)
		return -1;
	write_pid(cg_dir);
	if (setup(state)) {
		write_pid(cg_home);
		rmdir(cg_dir);
		return -1;
	}
	f = *state;
	write_pid(cg_home);
	if (track_scope(&f->tr, cg_dir, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		teardown(state);
		rmdir(cg_dir);
		return -1;
	}
	return 0;
}

static int teardown_close(void **state)
{
	teardown(state);
	rmdir(cg_dir);
	return 0;
}

/* track's runs so far (BPF run-time statistics, on for the whole test). */
static __u64 runs(struct fixture *f)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	assert_int_equal(
	    bpf_obj_get_info_by_fd(bpf_program__fd(f->tr.skel->progs.track), &info, &len), 0);
	return info.run_cnt;
}

/* Entries in conns: the connections track counts now. */
static int conns_held(struct fixture *f)
{
	int fd = bpf_map__fd(f->tr.skel->maps.conns), n = 0;
	struct conn_key k, next;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return ti.tcpi_state;
}

/* Wait (bounded, 2 s) until fd is in state want. */
static void wait_state(int fd, int want)
{
	int waited;

	for (waited = 0; waited < 2000 && tcp_state(fd) != want; waited += 10)
		usleep(10000);
	assert_int_equal(tcp_state(fd), want);
}

/* Version 1's counts; c->live is also checked against the instances. */
static void counts_now(struct fixture *f, struct version_counts *c)
{
	assert_int_equal(track_counts(&f->tr, SERVICE, 1, c), 0);
}

static __u16 port_of(int fd, int peer)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	assert_int_equal(peer ? getpeername(fd, (struct sockaddr *)&a, &len)
			      : getsockname(fd, (struct sockaddr *)&a, &len),
			 0);
	return ntohs(a.sin_port);
}

/* Reorder cfd so that cfd[k] is the client end of afd[k] (accepts come in any order). */
static void pair_up(struct fixture *f)
{
	int c[NC], k, j;

	for (k = 0; k < NC; k++) {
		__u16 p = port_of(f->afd[k], 1);

		c[k] = -1;
		for (j = 0; j < NC; j++)
			if (f->cfd[j] >= 0 && port_of(f->cfd[j], 0) == p)
				c[k] = f->cfd[j];
		assert_true(c[k] >= 0);
	}
	memcpy(f->cfd, c, sizeof(c));
}

/* Open NC connections to version 1 and accept them; returns track's runs after. */
static __u64 open_all(struct fixture *f)
{
	long long want[MAX_INSTANCES];

	connect_clients(f, NC);
	accept_on(f, 0, NC);
	pair_up(f);
	held(f, NC, want);
	expect(f, 1, want);
	assert_int_equal(conns_held(f), NC);
	return runs(f);
}

/*
 * The server closes first, its clients still open: each connection stops
 * counting at the close, in one run (ESTABLISHED -> FIN_WAIT1), and no
 * later state change runs track.  Before, it counted a round trip later:
 * the ACK of the FIN moves the orphan to FIN_WAIT2, where the kernel turns
 * it into a timewait socket and the full one reaches TCP_CLOSE (three runs
 * from the close: FIN_WAIT1, FIN_WAIT2, CLOSE; measured, 144 for 48).
 */
static void test_owner_close_peer_open(void **state)
{
	struct fixture *f = *state;
	struct version_counts c;
	__u64 r0, r1, r2;
	char b;
	int k;

	r0 = open_all(f);
	for (k = 0; k < NC; k++) {
		close(f->afd[k]);
		f->afd[k] = -1;
	}
	expect(f, 1, zero);
	/* The server's side is in FIN_WAIT2: its client got the FIN and is in CLOSE_WAIT. */
	for (k = 0; k < NC; k++) {
		wait_state(f->cfd[k], TCP_CLOSE_WAIT);
		assert_int_equal(recv(f->cfd[k], &b, 1, 0), 0);
	}
	r1 = runs(f);
	counts_now(f, &c);
	assert_int_equal(c.live, 0);
	assert_int_equal(c.closed, NC);
	assert_int_equal(c.resets, 0);
	assert_int_equal(c.lost, 0);
	assert_int_equal(conns_held(f), 0);
	/* The clients close: the server sides' timewait sockets end; nothing runs. */
	for (k = 0; k < NC; k++) {
		close(f->cfd[k]);
		f->cfd[k] = -1;
	}
	usleep(100000);
	r2 = runs(f);
	printf("close: owner first: %llu runs at the owner's close, %llu after, for %d "
	       "connections\n",
	       (unsigned long long)(r1 - r0), (unsigned long long)(r2 - r1), NC);
	assert_int_equal(r1 - r0, NC);
	assert_int_equal(r2 - r1, 0);
	counts_now(f, &c);
	assert_int_equal(c.closed, NC);
	assert_int_equal(c.live, 0);
}

/*
 * The client closes first (CLOSE_WAIT), then the server: counted at the
 * server's close (CLOSE_WAIT -> LAST_ACK), nothing runs after it.
 */
static void test_owner_close_after_client(void **state)
{
	struct fixture *f = *state;
	long long want[MAX_INSTANCES];
	struct version_counts c;
	__u64 r0, r1;
	int k;

	open_all(f);
	for (k = 0; k < NC; k++) {
		close(f->cfd[k]);
		f->cfd[k] = -1;
	}
	for (k = 0; k < NC; k++)
		wait_state(f->afd[k], TCP_CLOSE_WAIT);
	/* The client's FIN alone changes nothing: the server still holds and may answer. */
	held(f, NC, want);
	expect(f, 1, want);
	r0 = runs(f);
	for (k = 0; k < NC; k++) {
		close(f->afd[k]);
		f->afd[k] = -1;
	}
	expect(f, 1, zero);
	usleep(100000);
	r1 = runs(f);
	printf("close: client first: %llu runs from the server's close on, for %d connections\n",
	       (unsigned long long)(r1 - r0), NC);
	assert_int_equal(r1 - r0, NC);
	counts_now(f, &c);
	assert_int_equal(c.closed, NC);
	assert_int_equal(c.resets, 0);
	assert_int_equal(conns_held(f), 0);
}

/*
 * A half-close (shutdown(SHUT_WR), the lingering close of nginx and
 * lighttpd): the server still reads what its client sends, so the
 * connection stays counted, and drains wait for it, until the server closes
 * it; then it is counted once.
 */
static void test_half_close(void **state)
{
	struct fixture *f = *state;
	long long want[MAX_INSTANCES];
	struct version_counts c;
	char b;
	int k, half = NC / 2;

	open_all(f);
	for (k = 0; k < NC; k++)
		assert_int_equal(shutdown(f->afd[k], SHUT_WR), 0);
	for (k = 0; k < NC; k++) {
		wait_state(f->afd[k], TCP_FIN_WAIT2);
		/* The client sees the end of the answer and still sends; the server reads it. */
		assert_int_equal(recv(f->cfd[k], &b, 1, 0), 0);
		assert_int_equal(send(f->cfd[k], "x", 1, 0), 1);
		assert_int_equal(recv(f->afd[k], &b, 1, 0), 1);
	}
	held(f, NC, want);
	expect(f, 1, want);
	counts_now(f, &c);
	assert_int_equal(c.closed, 0);
	assert_int_equal(conns_held(f), NC);
	/* Half of them: the client closes, and the server reads the end. */
	for (k = 0; k < half; k++) {
		close(f->cfd[k]);
		f->cfd[k] = -1;
		assert_int_equal(recv(f->afd[k], &b, 1, 0), 0);
	}
	/* The other half: the server closes, its client still open. */
	for (k = half; k < NC; k++) {
		close(f->afd[k]);
		f->afd[k] = -1;
	}
	/* The first half's server sockets reached TCP_CLOSE (TIME_WAIT) with the FIN. */
	expect(f, 1, zero);
	for (k = 0; k < half; k++) {
		close(f->afd[k]);
		f->afd[k] = -1;
	}
	usleep(100000);
	counts_now(f, &c);
	assert_int_equal(c.live, 0);
	assert_int_equal(c.closed, NC);
	assert_int_equal(c.resets, 0);
	assert_int_equal(conns_held(f), 0);
}

/*
 * shutdown(SHUT_RDWR): the server can neither read nor write; the
 * connection is done although it still holds the descriptor.  Its close
 * later counts nothing more.
 */
static void test_shutdown_both(void **state)
{
	struct fixture *f = *state;
	struct version_counts c;
	__u64 r0, r1;
	int k;

	open_all(f);
	for (k = 0; k < NC; k++)
		assert_int_equal(shutdown(f->afd[k], SHUT_RDWR), 0);
	expect(f, 1, zero);
	r0 = runs(f);
	for (k = 0; k < NC; k++) {
		close(f->afd[k]);
		close(f->cfd[k]);
		f->afd[k] = f->cfd[k] = -1;
	}
	usleep(100000);
	r1 = runs(f);
	assert_int_equal(r1 - r0, 0);
	counts_now(f, &c);
	assert_int_equal(c.closed, NC);
	assert_int_equal(c.resets, 0);
}

/*
 * Aborts go straight to CLOSE and count there, as before: the server's
 * (SO_LINGER {1, 0}, or a close with unread data) as resets, a client's
 * RST not.
 */
static void test_aborts(void **state)
{
	struct fixture *f = *state;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct version_counts c;
	int k, third = NC / 3;

	open_all(f);
	for (k = 0; k < NC; k++) {
		if (k < third) {
			/* Server aborts: SO_LINGER {1, 0}. */
			assert_int_equal(
			    setsockopt(f->afd[k], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
			close(f->afd[k]);
			f->afd[k] = -1;
		} else if (k < 2 * third) {
			/* Server closes with a byte unread: the kernel aborts. */
			assert_int_equal(send(f->cfd[k], "x", 1, 0), 1);
		} else {
			/* Client aborts: the server gets a RST. */
			assert_int_equal(
			    setsockopt(f->cfd[k], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
			close(f->cfd[k]);
			f->cfd[k] = -1;
		}
	}
	usleep(50000);
	for (k = third; k < 2 * third; k++) {
		close(f->afd[k]);
		f->afd[k] = -1;
	}
	for (k = 2 * third; k < NC; k++)
		wait_state(f->afd[k], TCP_CLOSE);
	for (k = 0; k < NC; k++) {
		if (f->afd[k] >= 0)
			close(f->afd[k]);
		if (f->cfd[k] >= 0)
			close(f->cfd[k]);
		f->afd[k] = f->cfd[k] = -1;
	}
	expect(f, 1, zero);
	counts_now(f, &c);
	printf("close: aborts: closed %llu resets %llu\n", (unsigned long long)c.closed,
	       (unsigned long long)c.resets);
	assert_int_equal(c.closed, NC);
	assert_int_equal(c.resets, 2 * third);
	assert_int_equal(c.lost, 0);
	assert_int_equal(conns_held(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counts_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_same_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_other_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_request_same_version, setup, teardown),
	};

	const struct CMUnitTest close_tests[] = {
	    cmocka_unit_test_setup_teardown(test_owner_close_peer_open, setup_close,
					    teardown_close),
	    cmocka_unit_test_setup_teardown(test_owner_close_after_client, setup_close,
					    teardown_close),
	    cmocka_unit_test_setup_teardown(test_half_close, setup_close, teardown_close),
	    cmocka_unit_test_setup_teardown(test_shutdown_both, setup_close, teardown_close),
	    cmocka_unit_test_setup_teardown(test_aborts, setup_close, teardown_close),
	};
	int stats = bpf_enable_stats(BPF_STATS_RUN_TIME), r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (stats < 0) {
		fprintf(stderr, "bpf_enable_stats: %s\n", strerror(errno));
		return 1;
	}
	r = cmocka_run_group_tests(tests, NULL, NULL);
	r += cmocka_run_group_tests_name("close", close_tests, NULL, NULL);
	close(stats);
	return r;
}
