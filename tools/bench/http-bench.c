/* SPDX-License-Identifier: MIT */
/*
 * http-bench: the cost of measure-http (bpf/drain.bpf.c: sk_msg counting
 * the status class of each response) on keep-alive requests, run in a
 * private network namespace (unshare -n; lo is brought up here).
 *
 *   http-bench [--rounds R] [--seconds S] [--clients C]
 *
 * C keep-alive connections of a version under analysis (in conns, its
 * version in http_versions, joined to the sockhash by the iterator pass as
 * the agent runs it) and C connections of a version not measured (the
 * plain send path), both ends in this process.  Each round runs one window
 * of S seconds on each set, the order alternating: requests and responses
 * one connection after the other (write request, read it, write the
 * response, read it).  Prints requests/s of each and the median of the
 * per-round ratios (measured / plain) with its 95% confidence interval,
 * then a JSON object on the last line.  Checks that every response of the
 * measured set was counted as 2xx.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "drain.skel.h"
#include "drain_user.h"

#define PORT	18412
#define SERVICE 4
#define MAX_C	64

static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "http-bench: %s: %s\n", what, strerror(errno));
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

/* One exchange on a connection: request, read, response, read. */
static void exchange(int c, int s)
{
	char buf[256];
	size_t got = 0;
	ssize_t r;

	if (write(c, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		die("request write");
	if (read(s, buf, sizeof(buf)) != (ssize_t)sizeof(req) - 1)
		die("request read");
	if (write(s, resp, sizeof(resp) - 1) != (ssize_t)sizeof(resp) - 1)
		die("response write");
	while (got < sizeof(resp) - 1) {
		r = read(c, buf + got, sizeof(buf) - got);
		if (r <= 0)
			die("response read");
		got += r;
	}
}

/* Requests/s over a window of secs on n connections, one after the other; *done counts them. */
static double window(const int *c, const int *s, int n, double secs, unsigned long long *done)
{
	double t0 = now_s(), t;
	unsigned long long k = 0;
	int i;

	do {
		for (i = 0; i < n; i++)
			exchange(c[i], s[i]);
		k += n;
		t = now_s() - t0;
	} while (t < secs);
	*done += k;
	return k / t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = 100, nc = 4, lfd, one = 1, i, r, changed;
	double secs = 0.05, *ratio, *ron, *roff, lo, hi;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	struct conn_owner own = {.service = SERVICE, .version = 1};
	int c[2][MAX_C], s[2][MAX_C];
	unsigned long long done[2] = {0, 0};
	struct http_counts hc;
	char pin_dir[80], err[256], path[128];
	struct drain d;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--clients"))
			nc = atoi(argv[i + 1]);
		else
			break;
	}
	if (i < argc || rounds < 5 || nc < 1 || nc > MAX_C || !(secs > 0)) {
		fprintf(stderr,
			"usage: http-bench [--rounds R>=5] [--seconds S] [--clients 1..%d]\n",
			MAX_C);
		return 2;
	}
	if (system("ip link set lo up"))
		die("ip link set lo up");
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/baton-http-bench-%d", (int)getpid());
	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		die("mkdir pin dir");
	if (drain_open(&d, pin_dir, err, sizeof(err))) {
		fprintf(stderr, "http-bench: %s\n", err);
		return 1;
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 128))
		die("listener");
	/* Set 0: measured (counted by baton, its version under analysis); set 1: plain. */
	for (r = 0; r < 2; r++)
		for (i = 0; i < nc; i++) {
			struct conn_key k;

			c[r][i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (c[r][i] < 0 || connect(c[r][i], (struct sockaddr *)&a, sizeof(a)))
				die("connect");
			s[r][i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (s[r][i] < 0)
				die("accept");
			/* As servers and wrk do: no Nagle wait between a small write and the next.
			 */
			if (setsockopt(s[r][i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
			    setsockopt(c[r][i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
				die("TCP_NODELAY");
			if (r)
				continue;
			key_of(s[r][i], &k);
			if (bpf_map_update_elem(bpf_map__fd(d.skel->maps.conns), &k, &own, BPF_ANY))
				die("conns update");
		}
	if (drain_measure(&d, SERVICE, 1, 1))
		die("drain_measure");
	do {
		r = drain_pass_step(&d, 64, &changed);
		if (r < 0) {
			errno = -r;
			die("drain_pass_step");
		}
	} while (r > 0);
	if (drain_members(&d) != nc) {
		fprintf(stderr, "http-bench: %d of %d connections joined\n", drain_members(&d), nc);
		return 1;
	}
	ratio = calloc(rounds, sizeof(double));
	ron = calloc(rounds, sizeof(double));
	roff = calloc(rounds, sizeof(double));
	/* Warm up both. */
	window(c[0], s[0], nc, secs / 5, &done[0]);
	window(c[1], s[1], nc, secs / 5, &done[1]);
	for (i = 0; i < rounds; i++) {
		if (i & 1) {
			roff[i] = window(c[1], s[1], nc, secs, &done[1]);
			ron[i] = window(c[0], s[0], nc, secs, &done[0]);
		} else {
			ron[i] = window(c[0], s[0], nc, secs, &done[0]);
			roff[i] = window(c[1], s[1], nc, secs, &done[1]);
		}
		ratio[i] = ron[i] / roff[i];
	}
	if (drain_http_counts(&d, SERVICE, 1, &hc))
		die("http counts");
	qsort(ratio, rounds, sizeof(double), cmp_double);
	qsort(ron, rounds, sizeof(double), cmp_double);
	qsort(roff, rounds, sizeof(double), cmp_double);
	/* The median's 95% interval by order statistics: ranks n/2 -+ 0.98 sqrt(n). */
	lo = ratio[(int)fmax(0, floor(rounds / 2.0 - 0.98 * sqrt(rounds)))];
	hi = ratio[(int)fmin(rounds - 1, ceil(rounds / 2.0 + 0.98 * sqrt(rounds)))];
	printf("keep-alive requests/s, %d connections each, %d rounds of %.3f s: measured %.0f, "
	       "plain %.0f; ratio median %.3f (95%% CI %.3f-%.3f)\n",
	       nc, rounds, secs, ron[rounds / 2], roff[rounds / 2], ratio[rounds / 2], lo, hi);
	printf("measured set: %llu responses made, %llu counted 2xx, %llu other\n", done[0],
	       (unsigned long long)hc.n[HC_2XX], (unsigned long long)hc.n[HC_OTHER]);
	if (hc.n[HC_2XX] != done[0]) {
		fprintf(stderr, "http-bench: %llu responses but %llu counted\n", done[0],
			(unsigned long long)hc.n[HC_2XX]);
		return 1;
	}
	printf("{\"clients\": %d, \"rounds\": %d, \"seconds\": %.3f, \"measured\": %.0f, "
	       "\"plain\": %.0f, \"ratio\": {\"median\": %.4f, \"ci95\": [%.4f, %.4f]}, "
	       "\"counted\": %llu}\n",
	       nc, rounds, secs, ron[rounds / 2], roff[rounds / 2], ratio[rounds / 2], lo, hi,
	       (unsigned long long)hc.n[HC_2XX]);
	for (r = 0; r < 2; r++)
		for (i = 0; i < nc; i++) {
			close(c[r][i]);
			close(s[r][i]);
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
