/* SPDX-License-Identifier: MIT */
/*
 * drain-bench: the cost of drain-http (bpf/drain.bpf.c), run in a private
 * network namespace (unshare -n; lo is brought up here).
 *
 *   drain-bench [N]   (default 10000 keep-alive connections)
 *
 * With N open connections of one draining version it measures:
 *   1. joining: one iterator pass in PASS_BUDGET-connection steps, as the
 *      agent runs it (total, first step, longest step);
 *   2. the other way considered, from user space: per connection
 *      pidfd_getfd + getsockname + getpeername + conns lookup + sockhash
 *      update + close, into a second sockhash with the same sk_msg program;
 *   3. CPU per rewritten response: the server-side write() of one response
 *      on each of the N connections, plain (not in the sockhash) against
 *      joined (rewritten: Connection: close inserted), same connections;
 *   4. from drain start to the first rewritten response the client reads.
 * Prints one line per figure and a JSON object on the last line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "drain.skel.h"
#include "drain_user.h"

#define PORT	    18411
#define SERVICE	    3
#define PASS_BUDGET 64 /* as user/httpdrain.c */

static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "drain-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void key_of(int sfd, struct conn_key *k)
{
	struct sockaddr_in l, r;
	socklen_t len = sizeof(l);

	memset(k, 0, sizeof(*k));
	if (getsockname(sfd, (struct sockaddr *)&l, &len))
		die("getsockname");
	len = sizeof(r);
	if (getpeername(sfd, (struct sockaddr *)&r, &len))
		die("getpeername");
	k->family = AF_INET;
	k->lport = ntohs(l.sin_port);
	k->rport = ntohs(r.sin_port);
	k->laddr[0] = l.sin_addr.s_addr;
	k->raddr[0] = r.sin_addr.s_addr;
}

/* One request from every client, read by the server side. */
static void requests(const int *cfd, const int *sfd, int n)
{
	char buf[256];
	int i;

	for (i = 0; i < n; i++)
		if (write(cfd[i], req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
			die("request write");
	for (i = 0; i < n; i++)
		if (read(sfd[i], buf, sizeof(buf)) != (ssize_t)sizeof(req) - 1)
			die("request read");
}

/* The server answers each; returns the CPU µs of the writes alone. */
static double responses(const int *cfd, const int *sfd, int n, size_t want)
{
	char buf[256];
	double t0, t;
	int i;

	t0 = cpu_us();
	for (i = 0; i < n; i++)
		if (write(sfd[i], resp, sizeof(resp) - 1) != (ssize_t)sizeof(resp) - 1)
			die("response write");
	t = cpu_us() - t0;
	for (i = 0; i < n; i++) {
		size_t got = 0;
		ssize_t r;

		while (got < want) {
			r = read(cfd[i], buf + got, sizeof(buf) - got);
			if (r <= 0)
				die("response read");
			got += r;
		}
		if (got != want) {
			fprintf(stderr, "drain-bench: response of %zu bytes, want %zu\n", got,
				want);
			exit(1);
		}
	}
	return t;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	struct rlimit rl;
	struct conn_owner own = {.service = SERVICE, .version = 1};
	char pin_dir[64], err[256], path[128];
	double t0, t, first = 0, longest = 0, total, pidfd_us, plain, rewritten, to_first;
	int *cfd, *sfd, lfd, i, one = 1, changed, moved = 0, steps = 0, r, conns_fd, hash2, pidfd;
	struct drain d;

	if (n < 1 || n > 100000) {
		fprintf(stderr, "usage: drain-bench [N 1..100000]\n");
		return 2;
	}
	if (system("ip link set lo up"))
		die("ip link set lo up");
	/* Two fds per connection (both ends here), a few more: the hard limit bounds n. */
	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit");
	if ((rlim_t)2 * n + 32 > rl.rlim_max) {
		n = (int)((rl.rlim_max - 32) / 2);
		printf("fd hard limit %llu: %d connections\n", (unsigned long long)rl.rlim_max, n);
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("setrlimit");
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/baton-drain-bench-%d", (int)getpid());
	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		die("mkdir pin dir");
	if (drain_open(&d, pin_dir, err, sizeof(err))) {
		fprintf(stderr, "drain-bench: %s\n", err);
		return 1;
	}
	conns_fd = bpf_map__fd(d.skel->maps.conns);
	cfd = calloc(n, sizeof(int));
	sfd = calloc(n, sizeof(int));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096))
		die("listener");
	for (i = 0; i < n; i++) {
		struct conn_key k;

		cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cfd[i] < 0 || connect(cfd[i], (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		sfd[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (sfd[i] < 0)
			die("accept");
		if (getenv("NODELAY") &&
		    setsockopt(sfd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			die("TCP_NODELAY");
		key_of(sfd[i], &k);
		if (bpf_map_update_elem(conns_fd, &k, &own, BPF_ANY))
			die("conns update");
	}
	/* A keep-alive round first: the connections have served a request. */
	requests(cfd, sfd, n);
	plain = responses(cfd, sfd, n, sizeof(resp) - 1);

	/* 2. the user-space way, into a second sockhash with the same program. */
	hash2 = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "bench_hash", sizeof(struct conn_key),
			       sizeof(__u64), n, NULL);
	if (hash2 < 0 ||
	    bpf_prog_attach(bpf_program__fd(d.skel->progs.drain_msg), hash2, BPF_SK_MSG_VERDICT, 0))
		die("second sockhash");
	pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		die("pidfd_open");
	t0 = now_us();
	for (i = 0; i < n; i++) {
		struct conn_key k;
		struct conn_owner o;
		__u64 fd;
		int c = syscall(SYS_pidfd_getfd, pidfd, sfd[i], 0);

		if (c < 0)
			die("pidfd_getfd");
		key_of(c, &k);
		if (bpf_map_lookup_elem(conns_fd, &k, &o))
			die("conns lookup");
		fd = c;
		if (bpf_map_update_elem(hash2, &k, &fd, BPF_NOEXIST))
			die("sockhash update from user space");
		close(c);
	}
	pidfd_us = now_us() - t0;
	/*
	 * Out of it now, not at the map's deferred free: a socket takes one
	 * sk_msg program at a time, so drain_socks would refuse it (EBUSY).
	 */
	for (i = 0; i < n; i++) {
		struct conn_key k;

		key_of(sfd[i], &k);
		if (bpf_map_delete_elem(hash2, &k))
			die("sockhash delete");
	}
	close(hash2);
	close(pidfd);

	/* 1. the iterator, as the agent runs it; 4. then the first rewritten response. */
	t0 = now_us();
	if (drain_version(&d, SERVICE, 1, 1))
		die("drain_version");
	do {
		t = now_us();
		r = drain_pass_step(&d, PASS_BUDGET, &changed);
		t = now_us() - t;
		if (r < 0) {
			errno = -r;
			die("drain_pass_step");
		}
		if (!steps)
			first = t;
		if (t > longest)
			longest = t;
		steps++;
		moved += changed;
		if (steps == 1) {
			/* The first batch joined: a request on one of them now. */
			char buf[256];
			ssize_t got = 0, k;
			int j;

			for (j = 0; j < n; j++) {
				struct bpf_map *m = d.skel->maps.drain_socks;
				struct conn_key key;
				__u64 v;

				key_of(sfd[j], &key);
				if (!bpf_map_lookup_elem(bpf_map__fd(m), &key, &v))
					break;
			}
			if (j == n)
				die("no connection joined in the first step");
			if (write(cfd[j], req, sizeof(req) - 1) < 0 ||
			    read(sfd[j], buf, sizeof(buf)) < 0 ||
			    write(sfd[j], resp, sizeof(resp) - 1) < 0)
				die("first rewritten response");
			while (got < (ssize_t)(sizeof(resp) - 1 + DRAIN_HDR_LEN)) {
				k = read(cfd[j], buf + got, sizeof(buf) - got);
				if (k <= 0)
					die("first rewritten response read");
				got += k;
			}
			to_first = now_us() - t0;
			/* Keep the rounds below alike: this one is done, the others wait. */
			sfd[j] = sfd[n - 1];
			cfd[j] = cfd[n - 1];
			n--;
		}
	} while (r > 0);
	total = now_us() - t0;

	/* 3. the same connections, joined: each response is rewritten. */
	requests(cfd, sfd, n);
	rewritten = responses(cfd, sfd, n, sizeof(resp) - 1 + DRAIN_HDR_LEN);

	printf("connections: %d (one joined earlier for the first response)\n", n + 1);
	printf("iterator pass: %d joined in %.1f ms, %d steps of %d, first step %.2f ms, "
	       "longest %.2f ms\n",
	       moved, total / 1e3, steps, PASS_BUDGET, first / 1e3, longest / 1e3);
	printf("user space (pidfd_getfd + 2 getsockname/peername + lookup + update + close): "
	       "%.1f ms, %.2f us per connection (iterator: %.2f us)\n",
	       pidfd_us / 1e3, pidfd_us / (n + 1), total / (n + 1));
	printf("drain start to the first rewritten response read: %.2f ms\n", to_first / 1e3);
	printf("server write() CPU per response: plain %.2f us, rewritten %.2f us (+%.2f us)\n",
	       plain / (n + 1), rewritten / n, rewritten / n - plain / (n + 1));
	printf(
	    "{\"connections\": %d, \"pass_ms\": %.2f, \"pass_steps\": %d, \"first_step_ms\": %.3f, "
	    "\"longest_step_ms\": %.3f, \"pidfd_ms\": %.2f, \"first_rewrite_ms\": %.3f, "
	    "\"write_plain_us\": %.3f, \"write_rewritten_us\": %.3f}\n",
	    n + 1, total / 1e3, steps, first / 1e3, longest / 1e3, pidfd_us / 1e3, to_first / 1e3,
	    plain / (n + 1), rewritten / n);
	for (i = 0; i < n; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	drain_close(&d);
	for (const char **m = (const char *[]){"conns", "services", "pins", "extras", NULL}; *m;
	     m++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, *m);
		unlink(path);
	}
	rmdir(pin_dir);
	return 0;
}
