/* SPDX-License-Identifier: MIT */
/*
 * Behaviour of bpf/steer.bpf.c with real sockets.  sk_reuseport programs
 * cannot run under BPF_PROG_RUN, so each test builds a reuseport group on
 * loopback in a private network namespace (the runner unshares it), places
 * sockets as the agent does, connects real clients and checks which
 * listener's accept queue each one lands in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include "orphan.h"
#include "steer_user.h"
#include "track.h"
#include "drop_ack.skel.h"

#define NV	2 /* versions in the group */
#define NI	2 /* instances per version */
#define SERVICE 7
#define N	200 /* connections per step */
#define GROUP	3

struct fixture {
	struct steer st;
	char pin_dir[64];
	int family;
	__u32 mode;		       /* enum steer_mode that set_policy writes */
	struct sockaddr_storage addr;  /* what the listeners bind */
	struct sockaddr_storage caddr; /* what clients connect to */
	socklen_t addrlen;
	int lfd[NV][NI];
	struct drop_ack_bpf *xdp; /* holds clients' final ACKs (hold_acks) */
	struct bpf_link *xdp_link;
};

static int listener(struct fixture *f)
{
	int one = 1;
	int fd = socket(f->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	if (f->family == AF_INET6)
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&f->addr, f->addrlen), 0);
	assert_int_equal(listen(fd, 4 * N), 0);
	return fd;
}

static void set_policy(struct fixture *f, int active_vslot, __u32 weight_other)
{
	struct steer_service p = {.mode = f->mode};
	int v;

	for (v = 0; v < NV; v++) {
		p.v[v].version = v + 1;
		p.v[v].instances = NI;
		p.v[v].state = VSTATE_ACTIVE;
		p.v[v].weight = v == active_vslot ? WEIGHT_MAX - weight_other : weight_other;
	}
	assert_int_equal(steer_set_service(&f->st, SERVICE, &p), 0);
}

static int setup_family(void **state, int family, const char *ip, const char *client_ip)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	int v, i, r;

	if (!f)
		return -1;
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf/baton-test-%d", getpid());
	r = steer_open(&f->st, f->pin_dir, err, sizeof(err));
	if (r) {
		fprintf(stderr, "steer_open: %s\n", err);
		steer_unpin(f->pin_dir); /* maps pinned before a failed load */
		free(f);
		return -1;
	}
	f->family = family;
	f->mode = STEER_PER_CONNECTION;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)&f->addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(18080);
		inet_pton(AF_INET, ip, &sin->sin_addr);
		f->addrlen = sizeof(*sin);
		f->caddr = f->addr;
		inet_pton(AF_INET, client_ip, &((struct sockaddr_in *)&f->caddr)->sin_addr);
	} else {
		struct sockaddr_in6 *sin6 = (void *)&f->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(18080);
		inet_pton(AF_INET6, ip, &sin6->sin6_addr);
		f->addrlen = sizeof(*sin6);
		f->caddr = f->addr;
		inet_pton(AF_INET6, client_ip, &((struct sockaddr_in6 *)&f->caddr)->sin6_addr);
	}
	assert_int_equal(steer_add_group(&f->st, (struct sockaddr *)&f->addr, SERVICE, GROUP), 0);
	set_policy(f, 0, 0);
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
	return setup_family(state, AF_INET, "127.0.0.1", "127.0.0.1");
}

static int setup6(void **state)
{
	return setup_family(state, AF_INET6, "::1", "::1");
}

/* Listeners on the wildcard address: the group key has a zero address. */
static int setup4any(void **state)
{
	return setup_family(state, AF_INET, "0.0.0.0", "127.0.0.1");
}

static int setup6any(void **state)
{
	return setup_family(state, AF_INET6, "::", "::1");
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int v, i;

	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			if (f->lfd[v][i] >= 0)
				close(f->lfd[v][i]);
	bpf_link__destroy(f->xdp_link);
	drop_ack_bpf__destroy(f->xdp);
	steer_close(&f->st);
	steer_unpin(f->pin_dir);
	free(f);
	return 0;
}

/* Connect (the handshake completes into a listener's queue); optional source port. */
static int client(struct fixture *f, __u16 sport)
{
	int fd = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 2};

	assert_true(fd >= 0);
	/* A dropped SYN fails the test in 2 s instead of the kernel's 2 min. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	if (sport) {
		struct sockaddr_storage ss = f->caddr;
		int one = 1;

		if (f->family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(sport);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(sport);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		assert_int_equal(bind(fd, (struct sockaddr *)&ss, f->addrlen), 0);
	}
	if (connect(fd, (struct sockaddr *)&f->caddr, f->addrlen) < 0)
		fail_msg("connect: %s", strerror(errno));
	return fd;
}

/* The agent's probe source: the address clients connect to, with port. */
static const struct sockaddr *probe_src(struct fixture *f, __u16 port)
{
	static struct sockaddr_storage ss;

	ss = f->caddr;
	if (f->family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	return (const struct sockaddr *)&ss;
}

/* Accept everything queued on each listener; counts per [version][instance]. */
static void drain_counts(struct fixture *f, int counts[NV][NI])
{
	int v, i, c;

	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++) {
			counts[v][i] = 0;
			if (f->lfd[v][i] < 0)
				continue;
			while ((c = accept4(f->lfd[v][i], NULL, NULL, SOCK_CLOEXEC)) >= 0) {
				counts[v][i]++;
				close(c);
			}
			assert_int_equal(errno, EAGAIN);
		}
}

static void connect_n(struct fixture *f, int n, int *fds)
{
	int k;

	for (k = 0; k < n; k++)
		fds[k] = client(f, 0);
}

static void close_n(int n, int *fds)
{
	int k;

	for (k = 0; k < n; k++)
		close(fds[k]);
}

static void test_all_to_active_version(void **state)
{
	struct fixture *f = *state;
	int counts[NV][NI], fds[N];

	connect_n(f, N, fds);
	drain_counts(f, counts);
	assert_int_equal(counts[0][0] + counts[0][1], N);
	assert_int_equal(counts[1][0] + counts[1][1], 0);
	/* Both instances take a share (hash mod N). */
	assert_true(counts[0][0] > N / 5);
	assert_true(counts[0][1] > N / 5);
	close_n(N, fds);

	/* One map update moves every new connection to the other version. */
	set_policy(f, 1, 0);
	connect_n(f, N, fds);
	drain_counts(f, counts);
	assert_int_equal(counts[1][0] + counts[1][1], N);
	assert_int_equal(counts[0][0] + counts[0][1], 0);
	close_n(N, fds);
}

/*
 * A socket that joins the group and closes (not in the map: as a reattach
 * member did, or a version's listener that goes) heads the IPv4 lookup list
 * while it lives; a SYN whose lookup picked it just before close() runs
 * steer with it as md->sk, and a closed socket's port reads 0.  steer takes
 * the port from the segment then, so that SYN finds its group and a live
 * socket: nothing is refused.  STEER_RACE_MS sets how long it runs.
 */
static void test_closing_member_refuses_nothing(void **state)
{
	struct fixture *f = *state;
	const char *env = getenv("STEER_RACE_MS");
	long long ms = env ? atoll(env) : 3000, end;
	int refused = 0, served = 0, status = 0, v, i, fd, c;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct timespec ts;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + ms;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int one = 1;

		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 >= end)
				_exit(0);
			fd = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
			    bind(fd, (struct sockaddr *)&f->addr, f->addrlen) || listen(fd, 16))
				_exit(2);
			close(fd);
		}
	}
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 >= end)
			break;
		c = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(c >= 0);
		/* Closed by RST: tens of thousands of TIME_WAITs would take later tests' ports. */
		assert_int_equal(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
		if (connect(c, (struct sockaddr *)&f->caddr, f->addrlen) == 0)
			served++;
		else if (errno == ECONNREFUSED)
			refused++;
		close(c);
		for (v = 0; v < NV; v++)
			for (i = 0; i < NI; i++)
				while ((fd = accept4(f->lfd[v][i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
					close(fd);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("closing members for %lld ms: %d connections served, %d refused\n", ms, served,
	       refused);
	assert_true(served > 100);
	assert_int_equal(refused, 0);
}

static void test_weights_split(void **state)
{
	struct fixture *f = *state;
	int counts[NV][NI], fds[N];
	int v1;

	set_policy(f, 0, WEIGHT_MAX / 2);
	connect_n(f, N, fds);
	drain_counts(f, counts);
	v1 = counts[1][0] + counts[1][1];
	assert_int_equal(counts[0][0] + counts[0][1] + v1, N);
	/* 50% of 200 with a binomial spread: far outside 60..140 means broken. */
	assert_in_range(v1, 60, 140);
	close_n(N, fds);
}

static void test_dead_instance_falls_back(void **state)
{
	struct fixture *f = *state;
	int counts[NV][NI], fds[N];
	struct steer_stats s;

	/* Instance 0 of the active version closes: its slot empties. */
	close(f->lfd[0][0]);
	f->lfd[0][0] = -1;
	connect_n(f, N, fds);
	drain_counts(f, counts);
	assert_int_equal(counts[0][1], N);
	assert_int_equal(counts[1][0] + counts[1][1], 0);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_true(s.fallback > 0);
	assert_int_equal(s.selected, N);
	close_n(N, fds);
}

static void test_probe_reaches_pinned_socket(void **state)
{
	struct fixture *f = *state;
	int counts[NV][NI];
	struct steer_stats s;
	int fd;

	/* Version 2 (vslot 1) has weight 0, yet the probe reaches its instance 1. */
	assert_int_equal(steer_probe_add(&f->st, SERVICE, GROUP, probe_src(f, 41000), 1, 1), 0);
	fd = client(f, 41000);
	drain_counts(f, counts);
	assert_int_equal(counts[1][1], 1);
	assert_int_equal(counts[0][0] + counts[0][1] + counts[1][0], 0);
	close(fd);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_int_equal(s.probes, 1);
	assert_int_equal(steer_probe_del(&f->st, SERVICE, GROUP, probe_src(f, 41000)), 0);
}

static void test_probe_to_gone_socket_fails(void **state)
{
	struct fixture *f = *state;
	int counts[NV][NI];
	int fd = socket(f->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_storage ss = f->caddr;
	struct pollfd pfd;
	socklen_t elen;
	int soerr;

	close(f->lfd[1][0]);
	f->lfd[1][0] = -1;
	assert_int_equal(steer_probe_add(&f->st, SERVICE, GROUP, probe_src(f, 41001), 1, 0), 0);
	if (f->family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(41001);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(41001);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, f->addrlen), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->caddr, f->addrlen), -1);
	assert_int_equal(errno, EINPROGRESS);
	/*
	 * SK_DROP on a SYN makes the kernel answer RST: the probe is refused at
	 * once instead of landing on another version and passing.
	 */
	pfd.fd = fd;
	pfd.events = POLLOUT;
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	elen = sizeof(soerr);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen), 0);
	assert_int_equal(soerr, ECONNREFUSED);
	close(fd);
	drain_counts(f, counts);
	assert_int_equal(counts[0][0] + counts[0][1] + counts[1][1], 0);
	steer_probe_del(&f->st, SERVICE, GROUP, probe_src(f, 41001));
}

/*
 * Connections queued on a listener that closes move to a live socket of the
 * active version, with tcp_migrate_req left at 0 in this namespace.
 */
static void test_queued_connections_migrate(void **state)
{
	struct fixture *f = *state;
	int counts[NV][NI], fds[N];
	struct steer_stats before, after;
	char buf[4];
	int k, got;

	/* Queue N connections on version 1, then switch to version 2. */
	connect_n(f, N, fds);
	set_policy(f, 1, 0);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &before), 0);
	for (k = 0; k < N; k++)
		assert_int_equal(send(fds[k], "x", 1, 0), 1);
	/* Version 1's listeners close with everything still queued. */
	close(f->lfd[0][0]);
	close(f->lfd[0][1]);
	f->lfd[0][0] = f->lfd[0][1] = -1;
	/* No client was reset: each socket is still open with nothing to read. */
	got = 0;
	for (k = 0; k < N; k++)
		if (recv(fds[k], buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN)
			got++;
	assert_int_equal(got, N);
	drain_counts(f, counts);
	assert_int_equal(counts[1][0] + counts[1][1], N);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &after), 0);
	assert_int_equal(after.migrated - before.migrated, N);
	close_n(N, fds);
}

/*
 * Client networks, all local on lo so a client can bind any address in
 * them: 127/8 is local by default, the IPv6 ones get a local route in
 * group_setup.  Pins: IN is inside the small pin (/24, /64), OUT inside the
 * big one only (/16, /48), OTHER in neither; MANY has the distinct clients
 * of the accuracy and stickiness tests.
 */
enum client_net { NET_MANY, NET_PIN_IN, NET_PIN_OUT, NET_OTHER, NET_COUNT };

static const char *const net4[NET_COUNT] = {"127.18.0.0", "127.16.1.0", "127.16.2.0", "127.17.0.0"};
static const char *const net6[NET_COUNT] = {
    "fd00:ba70::", "fd00:ba70:0:1::", "fd00:ba70:0:2::", "fd00:ba71::"};
static const char *const routes6[] = {"fd00:ba70::/64", "fd00:ba70:0:1::/64", "fd00:ba70:0:2::/64",
				      "fd00:ba71::/64"};
#define PIN_SMALL(fam) ((fam) == AF_INET ? "127.16.1.0/24" : "fd00:ba70:0:1::/64")
#define PIN_BIG(fam)   ((fam) == AF_INET ? "127.16.0.0/16" : "fd00:ba70::/48")

#define NCLIENTS 10000 /* distinct clients per accuracy step */
#define NSTICKY	 2000  /* clients of the stickiness test */
#define NPIN	 64    /* clients per network in the pin tests */
#define BATCH	 100   /* clients connected before their listeners are drained */

/* Static, not malloc'ed: a failed assertion longjmps out of the test. */
static struct sockaddr_storage many_src[NCLIENTS];
static int many_vslot[NCLIENTS];

/* Client i of a network: its address + 1 + i (the last 32 bits), with a source port. */
static void client_addr(int family, int net, int i, __u16 port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, net4[net], &sin->sin_addr), 1);
		sin->sin_addr.s_addr = htonl(ntohl(sin->sin_addr.s_addr) + 1 + i);
	} else {
		struct sockaddr_in6 *sin6 = (void *)ss;
		__u32 low;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, net6[net], &sin6->sin6_addr), 1);
		low = htonl(1 + i);
		memcpy(&sin6->sin6_addr.s6_addr[12], &low, 4);
	}
}

static void clients_of(int family, int net, int first, int n, __u16 port,
		       struct sockaddr_storage *out)
{
	int k;

	for (k = 0; k < n; k++)
		client_addr(family, net, first + k, port, &out[k]);
}

static int same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
}

/*
 * A client bound to src, connected (handshake done, so queued on the chosen
 * listener).  SO_LINGER {1, 0}: its close sends RST, so tens of thousands of
 * connections leave no TIME_WAIT behind on either side.
 */
static int client_from(struct fixture *f, const struct sockaddr_storage *src)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct timeval tv = {.tv_sec = 2};
	int fd = socket(f->family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	/* The fd00:ba70:: addresses are routed locally but on no interface. */
	if (f->family == AF_INET6)
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)), 0);
	if (bind(fd, (const struct sockaddr *)src, f->addrlen) < 0)
		fail_msg("bind client: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&f->caddr, f->addrlen) < 0)
		fail_msg("connect: %s", strerror(errno));
	return fd;
}

/*
 * Accept the n clients of one batch, whichever listeners they reached:
 * vslot[k] = the version slot that got client k (found by its address and
 * port).  Fails on a stray connection or one that never arrives.
 */
static void accept_batch(struct fixture *f, const struct sockaddr_storage *src, int n, int *vslot,
			 int *afd)
{
	struct pollfd pfd[NV * NI];
	int got = 0, round, v, i, k;

	for (k = 0; k < n; k++)
		vslot[k] = -1;
	for (round = 0; got < n && round < 2 * BATCH; round++) {
		for (v = 0; v < NV; v++)
			for (i = 0; i < NI; i++) {
				pfd[v * NI + i].fd = f->lfd[v][i];
				pfd[v * NI + i].events = POLLIN;
			}
		if (poll(pfd, NV * NI, 2000) <= 0)
			fail_msg("%d of %d connections never reached a listener", n - got, n);
		for (v = 0; v < NV; v++)
			for (i = 0; i < NI; i++) {
				struct sockaddr_storage peer;
				socklen_t plen = sizeof(peer);
				int c;

				if (!(pfd[v * NI + i].revents & POLLIN))
					continue;
				while ((c = accept4(f->lfd[v][i], (struct sockaddr *)&peer, &plen,
						    SOCK_CLOEXEC)) >= 0) {
					for (k = 0; k < n; k++)
						if (vslot[k] < 0 && same_endpoint(&peer, &src[k]))
							break;
					if (k == n)
						fail_msg("a connection from nobody in this batch");
					vslot[k] = v;
					afd[k] = c;
					got++;
					plen = sizeof(peer);
				}
				assert_int_equal(errno, EAGAIN);
			}
	}
	assert_int_equal(got, n);
}

/* Connect clients src[0..n) and put in vslot[k] the version slot that accepted client k. */
static void run_clients(struct fixture *f, const struct sockaddr_storage *src, int n, int *vslot)
{
	struct sockaddr_storage local[BATCH];
	int cfd[BATCH], afd[BATCH];
	int b, k, m;

	for (b = 0; b < n; b += BATCH) {
		m = n - b < BATCH ? n - b : BATCH;
		for (k = 0; k < m; k++) {
			socklen_t len = sizeof(local[k]);

			cfd[k] = client_from(f, &src[b + k]);
			/* The source port the kernel picked, when src has none. */
			assert_int_equal(getsockname(cfd[k], (struct sockaddr *)&local[k], &len),
					 0);
		}
		accept_batch(f, local, m, &vslot[b], afd);
		for (k = 0; k < m; k++) {
			close(cfd[k]);
			close(afd[k]);
		}
	}
}

static int count_vslot(const int *vslot, int n, int v)
{
	int k, c = 0;

	for (k = 0; k < n; k++)
		c += vslot[k] == v;
	return c;
}

/* The version slot steer.h says a sticky client gets under the service's current policy. */
static int predicted_vslot(struct fixture *f, const struct sockaddr_storage *ss)
{
	struct steer_service p;
	__u32 a[4] = {0};

	assert_int_equal(steer_get_service(&f->st, SERVICE, &p), 0);
	if (ss->ss_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return steer_pick_version(&p, steer_addr_point(STEER_AF_INET, a));
	}
	memcpy(a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	return steer_pick_version(&p, steer_addr_point(STEER_AF_INET6, a));
}

static const char *fam_name(struct fixture *f)
{
	return f->family == AF_INET ? "v4" : "v6";
}

/* The canary's share of n connections is within 2 percentage points of its weight. */
static void assert_share(int got, int n, __u32 weight)
{
	long expect = (long)weight * n / WEIGHT_MAX, slack = 2L * n / 100;

	assert_in_range(got, expect > slack ? expect - slack : 0, expect + slack);
}

/*
 * Sticky mode at 1%, 10% and 50% for version 2: 10,000 distinct client
 * addresses each, a fresh set per step.  The share is within 2 points of
 * the weight, and every client got the version steer.h computes from its
 * address alone.
 */
static void test_sticky_weight_accuracy(void **state)
{
	static const __u32 weights[] = {100, 1000, 5000};
	struct fixture *f = *state;
	struct sockaddr_storage *src = many_src;
	int *vslot = many_vslot;
	unsigned int w;
	int k, got, wrong;

	f->mode = STEER_STICKY;
	for (w = 0; w < sizeof(weights) / sizeof(weights[0]); w++) {
		set_policy(f, 0, weights[w]);
		clients_of(f->family, NET_MANY, w * NCLIENTS, NCLIENTS, 0, src);
		run_clients(f, src, NCLIENTS, vslot);
		got = count_vslot(vslot, NCLIENTS, 1);
		wrong = 0;
		for (k = 0; k < NCLIENTS; k++)
			wrong += vslot[k] != predicted_vslot(f, &src[k]);
		printf("sticky %s %u%%: %d/%d (%d not where steer_addr_point puts them)\n",
		       fam_name(f), weights[w] / 100, got, NCLIENTS, wrong);
		assert_int_equal(count_vslot(vslot, NCLIENTS, 0) + got, NCLIENTS);
		assert_share(got, NCLIENTS, weights[w]);
		assert_int_equal(wrong, 0);
	}
}

/*
 * Per-connection mode at 10%: 10,000 connections of ONE client address
 * (distinct source ports) split by the weights, since the version follows
 * the connection hash, not the client.
 */
static void test_per_connection_accuracy(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage *src = many_src;
	int *vslot = many_vslot;
	int k, got;

	set_policy(f, 0, 1000);
	for (k = 0; k < NCLIENTS; k++)
		client_addr(f->family, NET_OTHER, 0, 20000 + k, &src[k]);
	run_clients(f, src, NCLIENTS, vslot);
	got = count_vslot(vslot, NCLIENTS, 1);
	printf("per-connection %s 10%%: %d/%d from one address\n", fam_name(f), got, NCLIENTS);
	assert_int_equal(count_vslot(vslot, NCLIENTS, 0) + got, NCLIENTS);
	assert_share(got, NCLIENTS, 1000);
}

/*
 * Stickiness of NSTICKY clients: (a) the same clients from new source ports
 * at the same weight keep their version; (b) from 5% to 10% every canary
 * client stays in the canary (and the canary grows); (c) back at 5% the
 * canary is exactly the 5% set again.
 */
static void test_sticky_clients_keep_version(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage src[NSTICKY];
	int at5[NSTICKY], again[NSTICKY], at10[NSTICKY], back5[NSTICKY];
	int k, moved, left, n5, n10;

	f->mode = STEER_STICKY;
	set_policy(f, 0, 500);
	clients_of(f->family, NET_MANY, 3 * NCLIENTS, NSTICKY, 21000, src);
	run_clients(f, src, NSTICKY, at5);
	clients_of(f->family, NET_MANY, 3 * NCLIENTS, NSTICKY, 21001, src);
	run_clients(f, src, NSTICKY, again);
	set_policy(f, 0, 1000);
	clients_of(f->family, NET_MANY, 3 * NCLIENTS, NSTICKY, 21002, src);
	run_clients(f, src, NSTICKY, at10);
	set_policy(f, 0, 500);
	clients_of(f->family, NET_MANY, 3 * NCLIENTS, NSTICKY, 21003, src);
	run_clients(f, src, NSTICKY, back5);

	n5 = count_vslot(at5, NSTICKY, 1);
	n10 = count_vslot(at10, NSTICKY, 1);
	printf("sticky %s canary: %d/%d at 5%%, %d/%d at 10%%\n", fam_name(f), n5, NSTICKY, n10,
	       NSTICKY);
	/* (a) Same weight, new source ports: nobody moves. */
	moved = 0;
	for (k = 0; k < NSTICKY; k++)
		moved += at5[k] != again[k];
	assert_int_equal(moved, 0);
	/* (b) 5% -> 10%: the canary only gains clients. */
	left = 0;
	for (k = 0; k < NSTICKY; k++)
		left += at5[k] == 1 && at10[k] != 1;
	assert_int_equal(left, 0);
	assert_true(n5 > 0);
	assert_true(n10 > n5);
	/* (c) 10% -> 5%: exactly the clients of the first 5%. */
	moved = 0;
	for (k = 0; k < NSTICKY; k++)
		moved += at5[k] != back5[k];
	assert_int_equal(moved, 0);
}

static void pin(struct fixture *f, __u32 service, const char *cidr, __u32 version)
{
	struct steer_cidr c;
	char err[128];

	if (steer_cidr_parse(cidr, &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(steer_pin_set(&f->st, service, &c, version), 0);
}

/* Slot 0 (version 1) ACTIVE with weight w0, slot 1 (version 2) in state1 with the rest. */
static void set_policy_state(struct fixture *f, __u32 w0, __u32 state1)
{
	set_policy(f, 0, WEIGHT_MAX - w0);
	if (state1 != VSTATE_ACTIVE) {
		struct steer_service p;

		assert_int_equal(steer_get_service(&f->st, SERVICE, &p), 0);
		p.v[1].state = state1;
		assert_int_equal(steer_set_service(&f->st, SERVICE, &p), 0);
	}
}

/* NPIN clients of a network; returns how many reached each version slot. */
static void run_net(struct fixture *f, int net, __u16 port, int counts[NV])
{
	struct sockaddr_storage src[NPIN];
	int vslot[NPIN], v;

	clients_of(f->family, net, 0, NPIN, port, src);
	run_clients(f, src, NPIN, vslot);
	for (v = 0; v < NV; v++)
		counts[v] = count_vslot(vslot, NPIN, v);
}

/*
 * A /24 (IPv4) or /64 (IPv6) pin sends its clients to version 2 although
 * version 2 has weight 0; everybody else follows the weights (all to
 * version 1); the pinned counter counts exactly the pinned clients.
 */
static void test_pin_beats_weights(void **state)
{
	struct fixture *f = *state;
	struct steer_stats s;
	int in[NV], other[NV];

	set_policy(f, 0, 0);
	pin(f, SERVICE, PIN_SMALL(f->family), 2);
	run_net(f, NET_PIN_IN, 0, in);
	run_net(f, NET_OTHER, 0, other);
	assert_int_equal(in[1], NPIN);
	assert_int_equal(other[0], NPIN);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_int_equal(s.pinned, NPIN);
	assert_int_equal(s.selected, NPIN);
}

/*
 * Longest prefix wins: the /16 (/48) pinned to version 1 holds the /24
 * (/64) pinned to version 2.  Weights are 50/50 per connection, so a client
 * the pins missed would split; clients outside both do split.
 */
static void test_pin_longest_prefix(void **state)
{
	struct fixture *f = *state;
	struct steer_stats s;
	int in[NV], out[NV], other[NV];

	set_policy(f, 0, WEIGHT_MAX / 2);
	pin(f, SERVICE, PIN_BIG(f->family), 1);
	pin(f, SERVICE, PIN_SMALL(f->family), 2);
	run_net(f, NET_PIN_IN, 0, in);
	run_net(f, NET_PIN_OUT, 0, out);
	run_net(f, NET_OTHER, 0, other);
	assert_int_equal(in[1], NPIN);
	assert_int_equal(out[0], NPIN);
	assert_true(other[0] > 0);
	assert_true(other[1] > 0);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_int_equal(s.pinned, 2 * NPIN);
}

/*
 * Pins that cannot apply leave the weights (all to version 1) in charge: a
 * pin to a DRAINING version, to a version not in the service, one of
 * another service, and one to an ACTIVE version with no live socket.  The
 * same pin to a live ACTIVE version first shows the clients do move.
 */
static void test_pin_falls_back_to_weights(void **state)
{
	struct fixture *f = *state;
	struct steer_cidr c;
	struct steer_stats s;
	char err[128];
	int in[NV];

	assert_int_equal(steer_cidr_parse(PIN_SMALL(f->family), &c, err, sizeof(err)), 0);
	set_policy_state(f, WEIGHT_MAX, VSTATE_ACTIVE);
	pin(f, SERVICE, PIN_SMALL(f->family), 2);
	run_net(f, NET_PIN_IN, 0, in);
	assert_int_equal(in[1], NPIN);

	set_policy_state(f, WEIGHT_MAX, VSTATE_DRAINING);
	run_net(f, NET_PIN_IN, 0, in);
	assert_int_equal(in[0], NPIN);

	set_policy_state(f, WEIGHT_MAX, VSTATE_ACTIVE);
	pin(f, SERVICE, PIN_SMALL(f->family), 9);
	run_net(f, NET_PIN_IN, 0, in);
	assert_int_equal(in[0], NPIN);

	assert_int_equal(steer_pin_del(&f->st, SERVICE, &c), 0);
	pin(f, SERVICE + 1, PIN_SMALL(f->family), 2);
	run_net(f, NET_PIN_IN, 0, in);
	assert_int_equal(in[0], NPIN);

	pin(f, SERVICE, PIN_SMALL(f->family), 2);
	close(f->lfd[1][0]);
	close(f->lfd[1][1]);
	f->lfd[1][0] = f->lfd[1][1] = -1;
	run_net(f, NET_PIN_IN, 0, in);
	assert_int_equal(in[0], NPIN);

	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_int_equal(s.pinned, NPIN);
	assert_int_equal(s.selected, 4 * NPIN);
}

/*
 * Pins apply to migrating requests too, by the client address of the
 * request.  Version 1 takes everything and closes with NPIN connections
 * queued; version 2 has weight 0, so only a pin can place them (without it
 * they would be reset).
 */
static void test_pin_applies_to_migration(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage src[NPIN];
	struct steer_stats before, after;
	int cfd[NPIN], counts[NV][NI];
	int k;

	set_policy(f, 0, 0);
	clients_of(f->family, NET_PIN_IN, 0, NPIN, 0, src);
	for (k = 0; k < NPIN; k++)
		cfd[k] = client_from(f, &src[k]);
	pin(f, SERVICE, PIN_SMALL(f->family), 2);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &before), 0);
	assert_int_equal(before.pinned, 0);
	close(f->lfd[0][0]);
	close(f->lfd[0][1]);
	f->lfd[0][0] = f->lfd[0][1] = -1;
	drain_counts(f, counts);
	assert_int_equal(counts[1][0] + counts[1][1], NPIN);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &after), 0);
	assert_int_equal(after.pinned, NPIN);
	assert_int_equal(after.migrated - before.migrated, NPIN);
	assert_int_equal(after.dropped, 0);
	close_n(NPIN, cfd);
}

/*
 * A probe pin matches the agent's probe only: its source address and port.
 * A client elsewhere (another address of the node's networks, or a remote
 * host) whose ephemeral port happens to be the probe's goes by the weights,
 * not to the starting instance the probe checks; the probe itself, from the
 * address it is bound to, still reaches that instance.
 */
static void test_probe_pin_is_source_address(void **state)
{
	/* A port per run: a failed run leaves its sockets open. */
	static __u16 port = 41002;
	struct fixture *f = *state;
	struct sockaddr_storage other, probe;
	struct steer_stats s;
	int counts[NV][NI];
	int fd;

	port++;
	memcpy(&probe, probe_src(f, port), f->addrlen);
	assert_int_equal(steer_probe_add(&f->st, SERVICE, GROUP, probe_src(f, port), 1, 1), 0);

	client_addr(f->family, NET_OTHER, 0, port, &other);
	fd = client_from(f, &other);
	drain_counts(f, counts);
	assert_int_equal(counts[1][0] + counts[1][1], 0);
	assert_int_equal(counts[0][0] + counts[0][1], 1);
	close(fd);

	fd = client_from(f, &probe);
	drain_counts(f, counts);
	assert_int_equal(counts[1][1], 1);
	assert_int_equal(counts[0][0] + counts[0][1] + counts[1][0], 0);
	close(fd);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_int_equal(s.probes, 1);
	assert_int_equal(s.selected, 1);
	assert_int_equal(steer_probe_del(&f->st, SERVICE, GROUP, probe_src(f, port)), 0);
}

/*
 * Probe keys: an IPv4 source seen through an IPv6 socket (::ffff:a.b.c.d) is
 * the IPv4 one, as steer sees a dual-stack listener's IPv4 clients; an
 * unbound source (port 0, wildcard address) or another family is refused.
 */
static void test_probe_key_from(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
	struct sockaddr_un {
		sa_family_t family;
		char path[8];
	} un = {.family = AF_UNIX};
	struct steer_probe_key k4, k6;

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	assert_int_equal(steer_probe_key_from(GROUP, (struct sockaddr *)&sin, &k4), 0);
	assert_int_equal(steer_probe_key_from(GROUP, (struct sockaddr *)&sin6, &k6), 0);
	assert_memory_equal(&k4, &k6, sizeof(k4));
	assert_int_equal(k4.family, STEER_AF_INET);
	assert_int_equal(k4.sport, 40000);
	assert_int_equal(k4.addr[0], htonl(INADDR_LOOPBACK));
	assert_int_equal(k4.addr[1] | k4.addr[2] | k4.addr[3], 0);

	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	assert_int_equal(steer_probe_key_from(GROUP, (struct sockaddr *)&sin6, &k6), 0);
	assert_int_equal(k6.family, STEER_AF_INET6);
	assert_memory_equal(k6.addr, &in6addr_loopback, 16);

	sin.sin_port = 0;
	assert_int_equal(steer_probe_key_from(GROUP, (struct sockaddr *)&sin, &k4), -EINVAL);
	sin6.sin6_addr = in6addr_any;
	assert_int_equal(steer_probe_key_from(GROUP, (struct sockaddr *)&sin6, &k6), -EINVAL);
	assert_int_equal(steer_probe_key_from(GROUP, (struct sockaddr *)&un, &k4), -EAFNOSUPPORT);
}

/* A TcpExt counter of this network namespace (/proc/net/netstat), or -1. */
static long long tcpext(const char *name)
{
	char names[8192], values[8192], *ns, *vs, *n, *v;
	FILE *fp = fopen("/proc/net/netstat", "r");
	long long r = -1;

	assert_non_null(fp);
	while (r < 0 && fgets(names, sizeof(names), fp) && fgets(values, sizeof(values), fp)) {
		if (strncmp(names, "TcpExt:", 7))
			continue;
		strtok_r(names, " \n", &ns);
		strtok_r(values, " \n", &vs);
		while ((n = strtok_r(NULL, " \n", &ns)) && (v = strtok_r(NULL, " \n", &vs)))
			if (!strcmp(n, name)) {
				r = strtoll(v, NULL, 10);
				break;
			}
	}
	fclose(fp);
	return r;
}

/* Decisions waiting for a handshake, over both tables. */
static int count_decisions(struct fixture *f)
{
	char path[96];
	struct decision_set set;
	__u32 i;
	int fd, w, n = 0;

	snprintf(path, sizeof(path), "%s/decisions", f->pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	for (i = 0; i < DECISION_HOT_SETS + DECISION_SETS; i++) {
		assert_int_equal(bpf_map_lookup_elem(fd, &i, &set), 0);
		for (w = 0; w < DECISION_WAYS; w++)
			n += set.way[w].claim != 0;
	}
	close(fd);
	return n;
}

static __u32 csum_add(__u32 sum, const void *p, size_t len)
{
	const __u8 *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += b[len - 1] << 8;
	return sum;
}

/*
 * Send one bare TCP header with flags from src (a local address, any port)
 * to the listeners' address, through a raw socket: no connection exists, so
 * the segment goes to listener lookup and the steer program.
 */
static void send_segment(struct fixture *f, int raw, const struct sockaddr_storage *src, __u8 flags)
{
	struct sockaddr_storage dst = f->caddr;
	__u8 seg[20] = {0};
	__u32 sum = IPPROTO_TCP + sizeof(seg);
	__u16 sport, dport;

	if (f->family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)&f->caddr;

		sport = s->sin_port;
		dport = d->sin_port;
		sum = csum_add(sum, &s->sin_addr, 4);
		sum = csum_add(sum, &d->sin_addr, 4);
		((struct sockaddr_in *)&dst)->sin_port = 0;
	} else {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)&f->caddr;

		sport = s->sin6_port;
		dport = d->sin6_port;
		sum = csum_add(sum, &s->sin6_addr, 16);
		sum = csum_add(sum, &d->sin6_addr, 16);
		((struct sockaddr_in6 *)&dst)->sin6_port = 0;
	}
	memcpy(&seg[0], &sport, 2);
	memcpy(&seg[2], &dport, 2);
	seg[4] = 0x12; /* sequence and acknowledgment numbers: anything */
	seg[11] = 0x34;
	seg[12] = 5 << 4; /* data offset: 5 words, no options */
	seg[13] = flags;
	seg[14] = 0x40; /* window */
	sum = csum_add(sum, seg, sizeof(seg));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	seg[16] = (__u8)(~sum >> 8);
	seg[17] = (__u8)~sum;
	assert_int_equal(sendto(raw, seg, sizeof(seg), 0, (struct sockaddr *)&dst, f->addrlen),
			 (ssize_t)sizeof(seg));
}

/*
 * Wait for n RSTs from the listeners' port: a listener answers a stray ACK
 * (and nothing answers for a refused one but the kernel, with a RST too), so
 * n RSTs mean the steer program has run for all n segments.  A raw TCP socket
 * sees every TCP segment delivered on the node; IPv4 ones with their header.
 */
static void wait_rsts(struct fixture *f, int raw, int n)
{
	__u16 port = f->family == AF_INET ? ((struct sockaddr_in *)&f->caddr)->sin_port
					  : ((struct sockaddr_in6 *)&f->caddr)->sin6_port;
	struct pollfd p = {.fd = raw, .events = POLLIN};
	__u8 buf[256], *th;
	int got = 0, round;
	ssize_t len;

	for (round = 0; got < n && round < 100 * n; round++) {
		if (poll(&p, 1, 2000) != 1)
			fail_msg("%d of %d RSTs never came", n - got, n);
		len = recv(raw, buf, sizeof(buf), 0);
		assert_true(len > 0);
		th = buf;
		if (f->family == AF_INET) {
			if (len < 20 || len < (buf[0] & 0xf) * 4 + 20)
				continue;
			th = buf + (buf[0] & 0xf) * 4;
		} else if (len < 20) {
			continue;
		}
		if (!memcmp(th, &port, 2) && (th[13] & 0x04))
			got++;
	}
	assert_int_equal(got, n);
}

#define NSPRAY 64

/*
 * Segments that are not a SYN reach listener lookup whenever no connection
 * matches them (a stray or spoofed ACK, a late segment of a closed
 * connection): steer must neither record a decision for them (it would
 * evict the decisions of real handshakes) nor count them as new connections.
 */
static void test_stray_segments_record_nothing(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage src = f->caddr;
	struct steer_stats before, after;
	int raw, k, decisions;

	raw = socket(f->family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	assert_true(raw >= 0);
	assert_int_equal(bind(raw, (struct sockaddr *)&src, f->addrlen), 0);
	decisions = count_decisions(f);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &before), 0);
	for (k = 0; k < NSPRAY; k++) {
		if (f->family == AF_INET)
			((struct sockaddr_in *)&src)->sin_port = htons(30000 + k);
		else
			((struct sockaddr_in6 *)&src)->sin6_port = htons(30000 + k);
		/* ACK, SYN+ACK: each answered with a RST by the listener. */
		send_segment(f, raw, &src, k & 1 ? 0x12 : 0x10);
	}
	wait_rsts(f, raw, NSPRAY);
	close(raw);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &after), 0);
	printf("%s: %d stray segments: selected +%llu, decisions +%d\n", fam_name(f), NSPRAY,
	       (unsigned long long)(after.selected - before.selected),
	       count_decisions(f) - decisions);
	assert_int_equal(after.selected, before.selected);
	assert_int_equal(after.dropped, before.dropped);
	assert_int_equal(after.evicted, before.evicted);
	assert_int_equal(count_decisions(f), decisions);
}

static void write_file(const char *path, const char *s)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(s, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

#define SYNCOOKIES "/proc/sys/net/ipv4/tcp_syncookies"

/*
 * With SYN cookies (always on here: 2) the kernel keeps no request, so the
 * client's final ACK goes to listener lookup and runs steer a second time.
 * That ACK must land on the version its SYN was given (or the kernel would
 * build the connection on another listener), and the connection is counted
 * once.
 */
static void test_syncookie_ack_counted_once(void **state)
{
	struct fixture *f = *state;
	struct steer_stats before, after;
	int counts[NV][NI], fds[N];

	long long cookies = tcpext("SyncookiesRecv");

	write_file(SYNCOOKIES, "2");
	assert_int_equal(steer_group_stats(&f->st, GROUP, &before), 0);
	connect_n(f, N, fds);
	drain_counts(f, counts);
	write_file(SYNCOOKIES, "1");
	/* Most by cookie: a SYN that meets a TIME_WAIT of its 4-tuple gets a request. */
	assert_true(tcpext("SyncookiesRecv") - cookies > N / 2);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &after), 0);
	printf("%s: %d connections with SYN cookies: selected +%llu\n", fam_name(f), N,
	       (unsigned long long)(after.selected - before.selected));
	assert_int_equal(counts[0][0] + counts[0][1], N);
	assert_int_equal(counts[1][0] + counts[1][1], 0);
	assert_int_equal(after.selected - before.selected, N);
	close_n(N, fds);
}

/* Drop (on) or deliver (off) the clients' pure ACKs to the listeners' port on lo. */
static void hold_acks(struct fixture *f, int on)
{
	if (!f->xdp) {
		f->xdp = drop_ack_bpf__open_and_load();
		assert_non_null(f->xdp);
		/* sin_port and sin6_port are at the same offset */
		f->xdp->bss->port = ((struct sockaddr_in *)&f->caddr)->sin_port;
		f->xdp_link = bpf_program__attach_xdp(f->xdp->progs.drop_ack, if_nametoindex("lo"));
		assert_non_null(f->xdp_link);
	}
	__atomic_store_n(&f->xdp->bss->on, on, __ATOMIC_SEQ_CST);
}

/* The decision steer left for the connection of client fd: 0, or -1 if none. */
static int decision_of(struct fixture *f, int fd, struct conn_owner *own)
{
	struct sockaddr_storage cl;
	socklen_t len = sizeof(cl);
	struct conn_key k = {.family = f->family};
	struct decision_set set;
	char path[96];
	__u32 hot, idx[2];
	__u64 tag;
	int m, i, w, r = -1;

	assert_int_equal(getsockname(fd, (struct sockaddr *)&cl, &len), 0);
	if (f->family == AF_INET) {
		k.lport = ntohs(((struct sockaddr_in *)&f->caddr)->sin_port);
		k.rport = ntohs(((struct sockaddr_in *)&cl)->sin_port);
		memcpy(k.laddr, &((struct sockaddr_in *)&f->caddr)->sin_addr, 4);
		memcpy(k.raddr, &((struct sockaddr_in *)&cl)->sin_addr, 4);
	} else {
		k.lport = ntohs(((struct sockaddr_in6 *)&f->caddr)->sin6_port);
		k.rport = ntohs(((struct sockaddr_in6 *)&cl)->sin6_port);
		memcpy(k.laddr, &((struct sockaddr_in6 *)&f->caddr)->sin6_addr, 16);
		memcpy(k.raddr, &((struct sockaddr_in6 *)&cl)->sin6_addr, 16);
	}
	conn_hash(&k, &tag, &hot);
	idx[0] = hot;
	idx[1] = decision_large_set(tag);
	snprintf(path, sizeof(path), "%s/decisions", f->pin_dir);
	m = bpf_obj_get(path);
	assert_true(m >= 0);
	for (i = 0; i < 2 && r; i++) {
		assert_int_equal(bpf_map_lookup_elem(m, &idx[i], &set), 0);
		for (w = 0; w < DECISION_WAYS; w++)
			if (set.way[w].claim && DECISION_TAG(set.way[w].claim) == tag) {
				*own = set.way[w].owner;
				r = 0;
				break;
			}
	}
	close(m);
	return r;
}

/*
 * A SYN-cookie handshake whose final ACK arrives after a switch: the SYN was
 * steered to version 1, the ACK is steered to version 2 (the new policy)
 * and the kernel builds the connection there, so the decision that track
 * will count must name version 2.  The client's final pure ACK is held on
 * lo; its first data segment (which carries the ACK) completes the
 * handshake, by cookie (TcpExtSyncookiesRecv says so).
 */
static void test_syncookie_ack_after_switch(void **state)
{
	struct fixture *f = *state;
	struct steer_stats before, after;
	struct conn_owner own;
	struct pollfd p[NI];
	int counts[NV][NI];
	int fd, i;

	/*
	 * A source no earlier test used: a SYN that finds a TIME_WAIT socket
	 * of its 4-tuple gets a request, not a cookie.
	 */
	static __u16 port = 45000;
	struct sockaddr_storage src;
	long long cookies;

	client_addr(f->family, NET_OTHER, 9, ++port, &src);
	write_file(SYNCOOKIES, "2");
	hold_acks(f, 1);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &before), 0);
	cookies = tcpext("SyncookiesRecv");
	fd = client_from(f, &src);
	assert_int_equal(decision_of(f, fd, &own), 0);
	assert_int_equal(own.version, 1);
	set_policy(f, 1, 0);
	hold_acks(f, 0);
	assert_int_equal(send(fd, "x", 1, 0), 1);
	for (i = 0; i < NI; i++) {
		p[i].fd = f->lfd[1][i];
		p[i].events = POLLIN;
	}
	assert_int_equal(poll(p, NI, 2000), 1);
	write_file(SYNCOOKIES, "1");
	assert_int_equal(tcpext("SyncookiesRecv") - cookies, 1);
	drain_counts(f, counts);
	assert_int_equal(counts[1][0] + counts[1][1], 1);
	assert_int_equal(counts[0][0] + counts[0][1], 0);
	assert_int_equal(decision_of(f, fd, &own), 0);
	printf("%s: SYN to version 1, cookie ACK after the switch: decision says version %u\n",
	       fam_name(f), own.version);
	assert_int_equal(own.service, SERVICE);
	assert_int_equal(own.version, 2);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &after), 0);
	assert_int_equal(after.selected - before.selected, 1);
	close(fd);
}

static void parse_ok(const char *s, int family, const char *addr, int len)
{
	struct steer_cidr c;
	__u8 want[16] = {0};
	char err[128] = "", buf[64];

	if (steer_cidr_parse(s, &c, err, sizeof(err)))
		fail_msg("%s: %s", s, err);
	assert_int_equal(c.family, family);
	assert_int_equal(c.len, len);
	assert_int_equal(inet_pton(family, addr, want), 1);
	assert_memory_equal(c.addr, want, family == AF_INET ? 4 : 16);
	assert_int_equal(steer_cidr_format(&c, buf, sizeof(buf)), 0);
	snprintf(err, sizeof(err), "%s/%d", addr, len);
	assert_string_equal(buf, err);
}

/* s is refused with a one-line message containing what (if given). */
static void parse_bad(const char *s, const char *what)
{
	struct steer_cidr c;
	char err[160] = "";

	assert_int_equal(steer_cidr_parse(s, &c, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
	if (what && !strstr(err, what))
		fail_msg("'%s': message '%s' lacks '%s'", s, err, what);
}

static void test_cidr_parse(void **state)
{
	struct steer_cidr c = {.family = AF_INET, .len = 8, .addr = {10}};
	char buf[64];

	(void)state;
	parse_ok("10.1.0.0/16", AF_INET, "10.1.0.0", 16);
	parse_ok("192.0.2.7", AF_INET, "192.0.2.7", 32);
	parse_ok("0.0.0.0/0", AF_INET, "0.0.0.0", 0);
	parse_ok("2001:db8::/32", AF_INET6, "2001:db8::", 32);
	parse_ok("2001:db8::1", AF_INET6, "2001:db8::1", 128);
	parse_ok("fd00:ba70::/64", AF_INET6, "fd00:ba70::", 64);
	parse_ok("::/0", AF_INET6, "::", 0);

	parse_bad("", NULL);
	parse_bad("garbage", "garbage");
	parse_bad("/16", NULL);
	parse_bad("10.1.0/16", "10.1.0");
	parse_bad("10.1.0.0/", "prefix length");
	parse_bad("10.1.0.0/33", "33");
	parse_bad("2001:db8::/129", "129");
	parse_bad("10.1.0.0/-1", "prefix length");
	parse_bad("10.1.0.0/+8", "prefix length");
	parse_bad("10.1.0.0/8x", "prefix length");
	parse_bad("10.1.0.0/016", "prefix length");
	parse_bad("10.1.0.0/1000", "prefix length");
	parse_bad(" 10.1.0.0/16", NULL);
	parse_bad("10.1.0.0/16/8", NULL);
	parse_bad("10.1.2.3/16", "10.1.2.3/16 has host bits set (did you mean 10.1.0.0/16?)");
	parse_bad("2001:db8::1/32",
		  "2001:db8::1/32 has host bits set (did you mean 2001:db8::/32?)");
	parse_bad("10.0.0.1/0", "did you mean 0.0.0.0/0?");

	assert_int_equal(steer_cidr_format(&c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.0.0.0/8");
	assert_int_equal(steer_cidr_format(&c, buf, 5), -ENOSPC);
	c.len = 33;
	assert_int_equal(steer_cidr_format(&c, buf, sizeof(buf)), -EINVAL);
}

/* Index of (cidr, version) in a pin list, or -1. */
static int listed(const struct steer_cidr *out, const __u32 *ver, int n, const char *cidr,
		  __u32 version)
{
	struct steer_cidr c;
	char err[128];
	int k;

	assert_int_equal(steer_cidr_parse(cidr, &c, err, sizeof(err)), 0);
	for (k = 0; k < n; k++)
		if (out[k].family == c.family && out[k].len == c.len &&
		    !memcmp(out[k].addr, c.addr, sizeof(c.addr)) && ver[k] == version)
			return k;
	return -1;
}

/* What lets steer skip lookups: each service's probe and pin counts, exact. */
static void expect_extras(struct fixture *f, __u32 service, __u32 probes, __u32 pins)
{
	struct steer_extras e;

	assert_int_equal(steer_extras_get(&f->st, service, &e), 0);
	assert_int_equal(e.probes, probes);
	assert_int_equal(e.pins, pins);
}

/*
 * The counts follow every add and removal, and a restarted agent's
 * steer_extras_sync() rebuilds them from the maps (here: after they were
 * wiped), so a pin is never skipped.
 */
static void check_extras(struct fixture *f, __u32 probes, __u32 pins, __u32 other, __u32 other_pins)
{
	struct steer_extras zero = {0};
	__u32 i;

	expect_extras(f, SERVICE, probes, pins);
	expect_extras(f, other, 0, other_pins);
	assert_int_equal(steer_probe_add(&f->st, SERVICE, GROUP, probe_src(f, 42000), 0, 0), 0);
	assert_int_equal(steer_probe_add(&f->st, SERVICE, GROUP, probe_src(f, 42001), 0, 1), 0);
	/* replaced */
	assert_int_equal(steer_probe_add(&f->st, SERVICE, GROUP, probe_src(f, 42001), 1, 1), 0);
	expect_extras(f, SERVICE, probes + 2, pins);
	assert_int_equal(steer_probe_del(&f->st, SERVICE, GROUP, probe_src(f, 42000)), 0);
	/* gone already */
	assert_int_equal(steer_probe_del(&f->st, SERVICE, GROUP, probe_src(f, 42000)), 0);
	expect_extras(f, SERVICE, probes + 1, pins);
	for (i = 0; i < MAX_SERVICES; i++)
		assert_int_equal(bpf_map_update_elem(f->st.extras_fd, &i, &zero, BPF_ANY), 0);
	assert_int_equal(steer_extras_sync(&f->st), 0);
	expect_extras(f, SERVICE, probes + 1, pins);
	expect_extras(f, other, 0, other_pins);
	assert_int_equal(steer_probe_clear(&f->st), probes + 1);
	assert_int_equal(steer_extras_sync(&f->st), 0);
	expect_extras(f, SERVICE, 0, pins);
}

static void test_pin_list_del(void **state)
{
	struct fixture *f = *state;
	struct steer_cidr out[8], c;
	__u32 ver[8];
	char err[128];
	int n;

	pin(f, SERVICE, "10.1.0.0/16", 2);
	pin(f, SERVICE, "10.1.2.0/24", 3);
	pin(f, SERVICE, "2001:db8::/32", 2);
	pin(f, SERVICE, "192.0.2.1", 2);
	pin(f, SERVICE + 1, "10.9.0.0/16", 2);

	n = steer_pin_list(&f->st, SERVICE, out, ver, 8);
	assert_int_equal(n, 4);
	assert_true(listed(out, ver, n, "10.1.0.0/16", 2) >= 0);
	assert_true(listed(out, ver, n, "10.1.2.0/24", 3) >= 0);
	assert_true(listed(out, ver, n, "2001:db8::/32", 2) >= 0);
	assert_true(listed(out, ver, n, "192.0.2.1/32", 2) >= 0);
	assert_int_equal(steer_pin_list(&f->st, SERVICE, out, ver, 2), 2);
	n = steer_pin_list(&f->st, SERVICE + 1, out, ver, 8);
	assert_int_equal(n, 1);
	assert_true(listed(out, ver, n, "10.9.0.0/16", 2) == 0);
	assert_int_equal(steer_pin_list(&f->st, SERVICE + 2, out, ver, 8), 0);

	/* Set again: replaced, not added. */
	pin(f, SERVICE, "10.1.0.0/16", 4);
	n = steer_pin_list(&f->st, SERVICE, out, ver, 8);
	assert_int_equal(n, 4);
	assert_true(listed(out, ver, n, "10.1.0.0/16", 4) >= 0);
	assert_true(listed(out, ver, n, "10.1.0.0/16", 2) < 0);

	assert_int_equal(steer_cidr_parse("10.1.2.0/24", &c, err, sizeof(err)), 0);
	assert_int_equal(steer_pin_del(&f->st, SERVICE, &c), 0);
	assert_int_equal(steer_pin_del(&f->st, SERVICE, &c), -ENOENT);
	assert_int_equal(steer_pin_del(&f->st, SERVICE + 1, &c), -ENOENT);
	assert_int_equal(steer_pin_list(&f->st, SERVICE, out, ver, 8), 3);

	/* Version 2's pins go, version 4's and the other service's stay. */
	assert_int_equal(steer_pin_del_version(&f->st, SERVICE, 2), 2);
	assert_int_equal(steer_pin_del_version(&f->st, SERVICE, 2), 0);
	n = steer_pin_list(&f->st, SERVICE, out, ver, 8);
	assert_int_equal(n, 1);
	assert_true(listed(out, ver, n, "10.1.0.0/16", 4) == 0);
	assert_int_equal(steer_pin_list(&f->st, SERVICE + 1, out, ver, 8), 1);

	/* Refused: version 0, host bits, a bad length, an IPv6 prefix over all of IPv4. */
	assert_int_equal(steer_cidr_parse("10.1.0.0/16", &c, err, sizeof(err)), 0);
	assert_int_equal(steer_pin_set(&f->st, SERVICE, &c, 0), -EINVAL);
	c.len = 8;
	assert_int_equal(steer_pin_set(&f->st, SERVICE, &c, 2), -EINVAL);
	c.len = 33;
	assert_int_equal(steer_pin_set(&f->st, SERVICE, &c, 2), -EINVAL);
	assert_int_equal(steer_cidr_parse("::/0", &c, err, sizeof(err)), 0);
	assert_int_equal(steer_pin_set(&f->st, SERVICE, &c, 2), -EINVAL);
	assert_int_equal(steer_cidr_parse("::ffff:0:0/96", &c, err, sizeof(err)), 0);
	assert_int_equal(steer_pin_set(&f->st, SERVICE, &c, 2), 0);
	n = steer_pin_list(&f->st, SERVICE, out, ver, 8);
	assert_int_equal(n, 2);
	/* An IPv4-mapped prefix is stored, and listed, as the IPv4 one it is. */
	assert_true(listed(out, ver, n, "0.0.0.0/0", 2) >= 0);
	check_extras(f, 0, 2, SERVICE + 1, 1);
}

/*
 * The IPv6 client networks are routed locally on lo (this runs in a private
 * network namespace: the runner unshares it).  Clients bind addresses in
 * them with IPV6_FREEBIND and connect to the listeners on ::1: loopback
 * delivers to ::1 whatever the (local) source, and the SYN-ACK goes back
 * through the same local route.
 */
static int route6(const char *verb)
{
	char cmd[128];
	unsigned int i;

	for (i = 0; i < sizeof(routes6) / sizeof(routes6[0]); i++) {
		snprintf(cmd, sizeof(cmd), "ip -6 route %s local %s dev lo", verb, routes6[i]);
		if (system(cmd)) {
			fprintf(stderr, "failed: %s\n", cmd);
			return -1;
		}
	}
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	return route6("replace");
}

static int group_teardown(void **state)
{
	(void)state;
	return route6("del");
}

static __u64 cookie_of(int fd)
{
	__u64 c = 0;
	socklen_t len = sizeof(c);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len), 0);
	return c;
}

/*
 * The previous agent's sockets map, its pin gone (issue 17, item 1): a
 * listener in it cannot be placed into another map (the kernel answers
 * EBUSY), orphan_find finds the map by the listener's cookie and where it
 * sits, and once evicted the listener can be placed.
 */
static void test_orphan_map_found_and_evicted(void **state)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	struct fixture *f = *state;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), slot, k;
	__u64 cookies[2], v, other;
	struct orphan o;
	int a = listener(f), b = listener(f), c = listener(f), old, i;
	int fds[2] = {a, b};
	__u32 slots[2] = {3, 7};

	old = bpf_map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "sockets", 4, 8, 16, &opts);
	assert_true(old >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(old, &info, &len), 0);
	for (i = 0; i < 2; i++) {
		v = (__u64)fds[i];
		assert_int_equal(bpf_map_update_elem(old, &slots[i], &v, BPF_ANY), 0);
		cookies[i] = cookie_of(fds[i]);
	}
	/* What made a restart without pins refuse every client. */
	assert_int_equal(steer_place(&f->st, steer_slot(GROUP, 1, 0), a), -EBUSY);

	assert_int_equal(orphan_find(&o, cookies, 2), 0);
	assert_int_equal(o.id, info.id);
	assert_int_equal(o.max_entries, 16);
	assert_int_equal(o.n, 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(orphan_slot(&o, cookies[i], &slot), 0);
		assert_int_equal(slot, slots[i]);
	}
	other = cookie_of(c);
	assert_int_equal(orphan_slot(&o, other, &slot), -ENOENT);
	for (i = 0; i < 2; i++)
		assert_int_equal(orphan_evict(&o, cookies[i]), 0);
	for (k = 0; k < 16; k++)
		assert_int_equal(bpf_map_lookup_elem(old, &k, &v), -ENOENT);
	assert_int_equal(steer_place(&f->st, steer_slot(GROUP, 1, 0), a), 0);
	assert_int_equal(steer_place(&f->st, steer_slot(GROUP, 1, 1), b), 0);
	orphan_close(&o);
	assert_int_equal(o.fd, -1);

	/* A listener in no map: no map is found. */
	assert_int_equal(orphan_find(&o, &other, 1), -ENOENT);
	assert_int_equal(o.fd, -1);
	/* One of this fixture's own listeners: its map, at its slot. */
	other = cookie_of(f->lfd[0][1]);
	assert_int_equal(orphan_find(&o, &other, 1), 0);
	assert_int_equal(o.max_entries, SOCKARRAY_SIZE);
	assert_int_equal(orphan_slot(&o, other, &slot), 0);
	assert_int_equal(slot, steer_slot(GROUP, 0, 1));
	orphan_close(&o);
	/* Put the fixture's slots back as they were. */
	steer_remove(&f->st, steer_slot(GROUP, 1, 0));
	steer_remove(&f->st, steer_slot(GROUP, 1, 1));
	assert_int_equal(steer_place(&f->st, steer_slot(GROUP, 1, 0), f->lfd[1][0]), 0);
	assert_int_equal(steer_place(&f->st, steer_slot(GROUP, 1, 1), f->lfd[1][1]), 0);
	close(old);
	close(a);
	close(b);
	close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_all_to_active_version, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_orphan_map_found_and_evicted, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_weights_split, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_instance_falls_back, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_reaches_pinned_socket, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_to_gone_socket_fails, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_connections_migrate, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_closing_member_refuses_nothing, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_all_to_active_version, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_weights_split, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_instance_falls_back, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_reaches_pinned_socket, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_to_gone_socket_fails, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_connections_migrate, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_all_to_active_version, setup4any, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_reaches_pinned_socket, setup4any, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_connections_migrate, setup4any, teardown),
	    cmocka_unit_test_setup_teardown(test_all_to_active_version, setup6any, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_reaches_pinned_socket, setup6any, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_connections_migrate, setup6any, teardown),
	    cmocka_unit_test(test_cidr_parse),
	    cmocka_unit_test_setup_teardown(test_pin_list_del, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky_weight_accuracy, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky_weight_accuracy, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_per_connection_accuracy, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky_clients_keep_version, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky_clients_keep_version, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_beats_weights, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_beats_weights, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_longest_prefix, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_longest_prefix, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_falls_back_to_weights, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_falls_back_to_weights, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_applies_to_migration, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_applies_to_migration, setup6, teardown),
	    cmocka_unit_test(test_probe_key_from),
	    cmocka_unit_test_setup_teardown(test_probe_pin_is_source_address, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_pin_is_source_address, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_pin_is_source_address, setup4any, teardown),
	    cmocka_unit_test_setup_teardown(test_stray_segments_record_nothing, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_stray_segments_record_nothing, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_syncookie_ack_counted_once, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_syncookie_ack_counted_once, setup6, teardown),
	    cmocka_unit_test_setup_teardown(test_syncookie_ack_after_switch, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_syncookie_ack_after_switch, setup6, teardown),
	};

	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests_name("steer", tests, group_setup, group_teardown);
}
