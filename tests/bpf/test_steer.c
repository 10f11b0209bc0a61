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
#include <unistd.h>

#include <cmocka.h>

#include "steer_user.h"

#define NV	2 /* versions in the group */
#define NI	2 /* instances per version */
#define SERVICE 7
#define N	200 /* connections per step */
#define GROUP	3

struct fixture {
	struct steer st;
	char pin_dir[64];
	int family;
	struct sockaddr_storage addr;  /* what the listeners bind */
	struct sockaddr_storage caddr; /* what clients connect to */
	socklen_t addrlen;
	int lfd[NV][NI];
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
	struct steer_service p = {.mode = STEER_PER_CONNECTION};
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
		free(f);
		return -1;
	}
	f->family = family;
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
	assert_int_equal(steer_probe_add(&f->st, GROUP, 41000, 1, 1), 0);
	fd = client(f, 41000);
	drain_counts(f, counts);
	assert_int_equal(counts[1][1], 1);
	assert_int_equal(counts[0][0] + counts[0][1] + counts[1][0], 0);
	close(fd);
	assert_int_equal(steer_group_stats(&f->st, GROUP, &s), 0);
	assert_int_equal(s.probes, 1);
	assert_int_equal(steer_probe_del(&f->st, GROUP, 41000), 0);
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
	assert_int_equal(steer_probe_add(&f->st, GROUP, 41001, 1, 0), 0);
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
	steer_probe_del(&f->st, GROUP, 41001);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_all_to_active_version, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_weights_split, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_instance_falls_back, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_reaches_pinned_socket, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_to_gone_socket_fails, setup4, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_connections_migrate, setup4, teardown),
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
	};

	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests_name("steer", tests, NULL, NULL);
}
