/* SPDX-License-Identifier: MIT */
/*
 * The kernel-assisted HTTP drain (bpf/drain.bpf.c), with real TCP
 * connections on loopback in a private network namespace (the runner
 * unshares it).  Each case makes one connection, gives its server side to
 * version 1 of service 7 in track's conns map (as track would), drains
 * version 1 with drain-http, runs the iterator's pass, and then has the
 * server answer requests with raw writes: the client must read exactly the
 * expected bytes.  Group "scan" checks the pure scan step the program uses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "drain_user.h"
#include "drain.skel.h"

#define SERVICE 7
#define PORT	18311

struct fixture {
	struct drain d;
	char pin_dir[64];
	int conns_fd;
	int lfd;
	int cfd, sfd; /* client and server side of the case's connection */
};

static void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 2};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static int teardown(void **state);

/* A setup that failed part way: what it made is undone as teardown undoes it. */
static int setup_failed(void **state, struct fixture *f)
{
	*state = f;
	teardown(state);
	*state = NULL;
	return -1;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	char err[256];
	int one = 1;

	if (!f)
		return -1;
	f->d.iter_fd = -1;
	f->lfd = -1;
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf/baton-test-drain-%d", (int)getpid());
	if (mkdir(f->pin_dir, 0700) && errno != EEXIST)
		return setup_failed(state, f);
	if (drain_supported(err, sizeof(err)) || drain_open(&f->d, f->pin_dir, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return setup_failed(state, f);
	}
	f->conns_fd = bpf_map__fd(f->d.skel->maps.conns);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(f->lfd, 16))
		return setup_failed(state, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	if (!f)
		return 0;
	drain_close(&f->d);
	if (f->lfd >= 0)
		close(f->lfd);
	snprintf(path, sizeof(path), "%s/conns", f->pin_dir);
	unlink(path);
	for (const char **m = (const char *[]){"services", "pins", "extras", NULL}; *m; m++) {
		snprintf(path, sizeof(path), "%s/%s", f->pin_dir, *m);
		unlink(path);
	}
	rmdir(f->pin_dir);
	free(f);
	return 0;
}

static void key_of(int sfd, struct conn_key *k)
{
	struct sockaddr_in l, r;
	socklen_t len = sizeof(l);

	memset(k, 0, sizeof(*k));
	assert_int_equal(getsockname(sfd, (struct sockaddr *)&l, &len), 0);
	len = sizeof(r);
	assert_int_equal(getpeername(sfd, (struct sockaddr *)&r, &len), 0);
	k->family = AF_INET;
	k->lport = ntohs(l.sin_port);
	k->rport = ntohs(r.sin_port);
	k->laddr[0] = l.sin_addr.s_addr;
	k->raddr[0] = r.sin_addr.s_addr;
}

/* Run passes until one changes nothing; returns how many connections moved. */
static int pass(struct fixture *f)
{
	int total = 0, changed, r, rounds = 0;

	do {
		r = drain_pass_step(&f->d, 64, &changed);
		assert_true(r >= 0);
		total += changed;
	} while (r > 0 && ++rounds < 1000);
	assert_int_equal(r, 0);
	return total;
}

/* A new connection owned by (SERVICE, version); with drain it is drained and joined. */
static void connect_case(struct fixture *f, __u32 version, int drain)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	struct conn_owner o = {.service = SERVICE, .version = version};
	struct conn_key k;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->cfd >= 0);
	assert_int_equal(connect(f->cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	f->sfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->sfd >= 0);
	set_timeouts(f->cfd);
	set_timeouts(f->sfd);
	key_of(f->sfd, &k);
	assert_int_equal(bpf_map_update_elem(f->conns_fd, &k, &o, BPF_ANY), 0);
	if (drain) {
		assert_int_equal(drain_version(&f->d, SERVICE, version, 1), 0);
		assert_int_equal(pass(f), 1);
		assert_int_equal(drain_members(&f->d), 1);
	}
}

static void close_case(struct fixture *f, __u32 version)
{
	struct conn_key k;

	key_of(f->sfd, &k);
	bpf_map_delete_elem(f->conns_fd, &k);
	close(f->cfd);
	close(f->sfd);
	drain_version(&f->d, SERVICE, version, 0);
}

/* The client sends a request; the server reads all of it. */
static void request(struct fixture *f)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[256];

	assert_int_equal(write(f->cfd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	assert_int_equal(read(f->sfd, buf, sizeof(buf)), (ssize_t)sizeof(req) - 1);
}

static void swrite(struct fixture *f, const char *s)
{
	assert_int_equal(write(f->sfd, s, strlen(s)), (ssize_t)strlen(s));
}

/* The client reads exactly want (and nothing more arrives within 50 ms). */
static void expect(struct fixture *f, const char *want)
{
	size_t n = strlen(want), got = 0;
	char buf[4096];
	struct pollfd p = {.fd = f->cfd, .events = POLLIN};
	ssize_t r;

	while (got < n) {
		r = read(f->cfd, buf + got, sizeof(buf) - 1 - got);
		assert_true(r > 0);
		got += r;
	}
	buf[got] = '\0';
	assert_string_equal(buf, want);
	assert_int_equal(poll(&p, 1, 50), 0);
}

static struct drain_stats stats(struct fixture *f, __u32 version)
{
	struct drain_stats st;

	assert_int_equal(drain_stats(&f->d, SERVICE, version, &st), 0);
	return st;
}

static void no_connection_header(void **state)
{
	struct fixture *f = *state;

	connect_case(f, 1, 1);
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
	expect(f, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello");
	assert_int_equal(stats(f, 1).rewritten, 1);
	/* Done with it: the next response passes as written. */
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	expect(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(stats(f, 1).rewritten, 1);
	close_case(f, 1);
}

static void keepalive_in_place(void **state)
{
	struct fixture *f = *state;

	connect_case(f, 1, 1);
	request(f);
	swrite(f, "HTTP/1.1 204 No Content\r\nServer: t\r\nConnection: keep-alive\r\n\r\n");
	expect(f, "HTTP/1.1 204 No Content\r\nServer: t\r\nConnection: close     \r\n\r\n");
	assert_int_equal(stats(f, 1).rewritten, 1);
	close_case(f, 1);
}

static void http10_keepalive(void **state)
{
	struct fixture *f = *state;

	connect_case(f, 1, 1);
	request(f);
	swrite(f, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nok");
	expect(f, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close     \r\n\r\nok");
	close_case(f, 1);
}

static void already_close(void **state)
{
	struct fixture *f = *state;
	static const char resp[] =
	    "HTTP/1.1 200 OK\r\nconnection: close\r\nContent-Length: 1\r\n\r\nx";

	connect_case(f, 1, 1);
	request(f);
	swrite(f, resp);
	expect(f, resp);
	assert_int_equal(stats(f, 1).kept, 1);
	assert_int_equal(stats(f, 1).rewritten, 0);
	close_case(f, 1);
}

static void upgrade_101(void **state)
{
	struct fixture *f = *state;
	static const char up[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n\r\n";
	static const char frame[] = "HTTP/1.1 200 OK\r\n\r\n";

	connect_case(f, 1, 1);
	request(f);
	swrite(f, up);
	expect(f, up);
	/* The client sends a frame; the answer looks like HTTP but the connection is not. */
	request(f);
	swrite(f, frame);
	expect(f, frame);
	assert_int_equal(stats(f, 1).kept, 1);
	assert_int_equal(stats(f, 1).rewritten, 0);
	close_case(f, 1);
}

static void split_three_writes(void **state)
{
	struct fixture *f = *state;

	connect_case(f, 1, 1);
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\n");
	expect(f, "HTTP/1.1 200 OK\r\nConnection: close\r\n");
	swrite(f, "Content-Length: 5\r\nConnection: keep-alive\r\n");
	expect(f, "Content-Length: 5\r\nConnection: close     \r\n");
	swrite(f, "\r\nhello");
	expect(f, "\r\nhello");
	assert_int_equal(stats(f, 1).rewritten, 1);
	/* The head ended: a body write with a header-like line passes. */
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n");
	expect(f, "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n");
	swrite(f, "Connection: keep-alive\r\n");
	expect(f, "Connection: keep-alive\r\n");
	close_case(f, 1);
}

/*
 * A chunked response under way when the drain begins: its later writes,
 * one of which begins with "HTTP/1.1 200", are body, not a response; the
 * next response (after the next request) is rewritten.
 */
static void chunk_like_status_line(void **state)
{
	struct fixture *f = *state;
	static const char chunk[] = "HTTP/1.1 200 OK\r\nX: y\r\n";

	connect_case(f, 1, 0);
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n17\r\n");
	expect(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n17\r\n");
	assert_int_equal(drain_version(&f->d, SERVICE, 1, 1), 0);
	assert_int_equal(pass(f), 1);
	swrite(f, chunk);
	expect(f, chunk);
	swrite(f, "\r\n0\r\n\r\n");
	expect(f, "\r\n0\r\n\r\n");
	assert_int_equal(stats(f, 1).rewritten, 0);
	assert_int_equal(stats(f, 1).not_http, 0);
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	expect(f, "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
	swrite(f, chunk);
	expect(f, chunk);
	assert_int_equal(stats(f, 1).rewritten, 1);
	close_case(f, 1);
}

/* writev of the head in pieces, then sendfile of the body. */
static void writev_and_sendfile(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/baton-drain-body-XXXXXX";
	struct iovec iov[3] = {
	    {.iov_base = "HTTP/1.1 200 OK\r\n", .iov_len = 17},
	    {.iov_base = "Content-Length: 9\r\n", .iov_len = 19},
	    {.iov_base = "\r\n", .iov_len = 2},
	};
	int fd = mkstemp(path);
	off_t off = 0;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "HTTP/1.1 ", 9), 9);
	connect_case(f, 1, 1);
	request(f);
	assert_int_equal(writev(f->sfd, iov, 3), 38);
	assert_int_equal(sendfile(f->sfd, fd, &off, 9), 9);
	expect(f, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9\r\n\r\nHTTP/1.1 ");
	close(fd);
	close_case(f, 1);
}

/* Not HTTP/1.x: nothing changes, and the stats say so. */
static void not_http(void **state)
{
	struct fixture *f = *state;
	static const char tls[] = "\x16\x03\x03\x00\x05hello";

	connect_case(f, 1, 1);
	request(f);
	assert_int_equal(write(f->sfd, tls, sizeof(tls) - 1), (ssize_t)sizeof(tls) - 1);
	expect(f, tls);
	assert_int_equal(stats(f, 1).not_http, 1);
	assert_int_equal(stats(f, 1).rewritten, 0);
	close_case(f, 1);
}

/* An active version's connection never joins; a version back in service leaves. */
static void active_never_joins_and_leave(void **state)
{
	struct fixture *f = *state;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

	connect_case(f, 2, 0);
	assert_int_equal(drain_version(&f->d, SERVICE, 1, 1), 0);
	assert_int_equal(pass(f), 0);
	assert_int_equal(drain_members(&f->d), 0);
	drain_version(&f->d, SERVICE, 1, 0);
	close_case(f, 2);

	connect_case(f, 1, 1);
	assert_int_equal(drain_version(&f->d, SERVICE, 1, 0), 0);
	assert_int_equal(pass(f), 1);
	assert_int_equal(drain_members(&f->d), 0);
	request(f);
	swrite(f, resp);
	expect(f, resp);
	close_case(f, 1);
}

/*
 * drain_insts: one instance of a version drained while the version serves
 * on through its others.  Three connections of version 1: instance 0's,
 * instance 1's, and one whose instance is not known: only instance 0's
 * joins and gets Connection: close; the others pass untouched.  When the
 * whole version drains too, instance 0's stays after its instance's drain
 * ends (its version's now); when neither drains, it leaves.
 */
static void instance_drain(void **state)
{
	struct fixture *f = *state;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	struct conn_owner o = {.service = SERVICE, .version = 1};
	struct fixture other[2];
	struct drain_stats st;
	struct conn_key k;
	int j;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (j = 0; j < 2; j++) {
		other[j] = *f;
		other[j].cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(other[j].cfd >= 0);
		assert_int_equal(connect(other[j].cfd, (struct sockaddr *)&a, sizeof(a)), 0);
		other[j].sfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		assert_true(other[j].sfd >= 0);
		set_timeouts(other[j].cfd);
		set_timeouts(other[j].sfd);
		key_of(other[j].sfd, &k);
		o.inst = j ? 0 : 2; /* instance 1; not known */
		assert_int_equal(bpf_map_update_elem(f->conns_fd, &k, &o, BPF_ANY), 0);
	}
	connect_case(f, 1, 0);
	key_of(f->sfd, &k);
	o.inst = 1; /* instance 0 */
	assert_int_equal(bpf_map_update_elem(f->conns_fd, &k, &o, BPF_ANY), 0);

	assert_int_equal(drain_inst(&f->d, SERVICE, 1, 0, 1), 0);
	assert_int_equal(pass(f), 1);
	assert_int_equal(drain_members(&f->d), 1);
	for (j = 0; j < 2; j++) {
		request(&other[j]);
		swrite(&other[j], resp);
		expect(&other[j], resp);
	}
	request(f);
	swrite(f, resp);
	expect(f, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(drain_inst_stats(&f->d, SERVICE, 1, 0, &st), 0);
	assert_int_equal(st.joined, 1);
	assert_int_equal(st.rewritten, 1);
	assert_int_not_equal(drain_stats(&f->d, SERVICE, 1, &st), 0); /* the version: not drained */

	/* The version drains as a whole now; its instance's drain ends: the connection stays. */
	assert_int_equal(drain_version(&f->d, SERVICE, 1, 1), 0);
	assert_int_equal(pass(f), 2); /* the two others join for the version */
	assert_int_equal(drain_inst(&f->d, SERVICE, 1, 0, 0), 0);
	assert_int_equal(pass(f), 0);
	assert_int_equal(drain_members(&f->d), 3);
	assert_int_equal(drain_version(&f->d, SERVICE, 1, 0), 0);
	assert_int_equal(pass(f), 3);
	assert_int_equal(drain_members(&f->d), 0);
	for (j = 0; j < 2; j++) {
		key_of(other[j].sfd, &k);
		bpf_map_delete_elem(f->conns_fd, &k);
		close(other[j].cfd);
		close(other[j].sfd);
	}
	close_case(f, 1);
}

/*
 * drain_resteer, sticky steering at 50/50: connections of v1 whose client
 * maps to v2 now (and only those) join and get Connection: close; when the
 * weights go back to v1, they leave untouched.
 */
#define NCLI 16
static void resteer_follows_weights(void **state)
{
	struct fixture *f = *state;
	struct steer_service pol = {.mode = STEER_STICKY};
	struct conn_owner o = {.service = SERVICE, .version = 1};
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	int svc_fd = bpf_map__fd(f->d.skel->maps.services);
	int cfd[NCLI], sfd[NCLI], i, away = 0, round;
	__u32 svc = SERVICE, want[NCLI];
	struct conn_key k;

	pol.v[0] = (struct steer_version){
	    .version = 1, .weight = 5000, .instances = 1, .state = VSTATE_ACTIVE};
	pol.v[1] = (struct steer_version){
	    .version = 2, .weight = 5000, .instances = 1, .state = VSTATE_ACTIVE};
	assert_int_equal(bpf_map_update_elem(svc_fd, &svc, &pol, BPF_ANY), 0);
	for (i = 0; i < NCLI; i++) {
		struct sockaddr_in c = {.sin_family = AF_INET};
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};

		c.sin_addr.s_addr = htonl(0x7f000100 + i + 1); /* 127.0.1.(i+1) */
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(cfd[i] >= 0);
		assert_int_equal(bind(cfd[i], (struct sockaddr *)&c, sizeof(c)), 0);
		assert_int_equal(connect(cfd[i], (struct sockaddr *)&a, sizeof(a)), 0);
		sfd[i] = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		assert_true(sfd[i] >= 0);
		set_timeouts(cfd[i]);
		set_timeouts(sfd[i]);
		key_of(sfd[i], &k);
		assert_int_equal(bpf_map_update_elem(f->conns_fd, &k, &o, BPF_ANY), 0);
		want[i] = drain_sticky_version(&pol, AF_INET, k.raddr);
		assert_true(want[i] == 1 || want[i] == 2);
		away += want[i] == 2;
	}
	/* 16 addresses at 50/50: some of each, or the case proves nothing. */
	assert_true(away > 0 && away < NCLI);
	assert_int_equal(drain_resteer(&f->d, SERVICE, 1), 0);
	assert_int_equal(pass(f), away);
	assert_int_equal(drain_members(&f->d), away);
	/* Back to v1 alone: they leave, untouched; then 50/50 again: they join again. */
	pol.v[0].weight = WEIGHT_MAX;
	pol.v[1].weight = 0;
	assert_int_equal(bpf_map_update_elem(svc_fd, &svc, &pol, BPF_ANY), 0);
	assert_int_equal(pass(f), away);
	assert_int_equal(drain_members(&f->d), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < NCLI; i++) {
			f->cfd = cfd[i];
			f->sfd = sfd[i];
			request(f);
			swrite(f, resp);
			expect(f, round && want[i] == 2 ? "HTTP/1.1 200 OK\r\nConnection: "
							  "close\r\nContent-Length: 2\r\n\r\nok"
							: resp);
		}
		if (round)
			break;
		pol.v[0].weight = 5000;
		pol.v[1].weight = 5000;
		assert_int_equal(bpf_map_update_elem(svc_fd, &svc, &pol, BPF_ANY), 0);
		assert_int_equal(pass(f), away);
	}
	assert_int_equal(drain_resteer(&f->d, SERVICE, 0), 0);
	assert_int_equal(bpf_map_delete_elem(svc_fd, &svc), 0);
	pass(f);
	for (i = 0; i < NCLI; i++) {
		key_of(sfd[i], &k);
		bpf_map_delete_elem(f->conns_fd, &k);
		close(cfd[i]);
		close(sfd[i]);
	}
}

/* ---- the scan step, without a kernel ---------------------------------------------- */

static struct drain_scan scan(const char *s, int later)
{
	struct drain_scan sc = {0};
	__u32 i;

	if (later)
		sc.sl_end = 1;
	for (i = 0; s[i]; i++)
		if (drain_scan_step(&sc, i, (__u8)s[i]))
			break;
	return sc;
}

static void scan_heads(void **state)
{
	struct drain_scan s;

	(void)state;
	s = scan("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody", 0);
	assert_int_equal(s.sl_end, 17);
	assert_int_equal(s.hdr_end, 25);
	assert_int_equal(s.conn, 0);
	s = scan("HTTP/1.1 200 OK\r\nCONNECTION:keep-alive\r\n\r\n", 0);
	assert_int_equal(s.conn, DC_KEEPALIVE);
	assert_int_equal(s.ka_off, 28);
	s = scan("HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\n\r\n", 0);
	assert_int_equal(s.conn, DC_OTHER | DC_CLOSE);
	/* A header that only begins like it is another header. */
	s = scan("HTTP/1.1 200 OK\r\nConnectionX: close\r\nX-Connection: close\r\n\r\n", 0);
	assert_int_equal(s.conn, 0);
	/* Values that are not exactly the tokens. */
	s = scan("HTTP/1.1 200 OK\r\nConnection: closed, keep-alives\r\n", 0);
	assert_int_equal(s.conn, DC_OTHER);
	assert_int_equal(s.hdr_end, 0);
	/* A later write of a head: header lines from byte 0, blank line first. */
	s = scan("\r\nConnection: keep-alive\r\n", 1);
	assert_int_equal(s.hdr_end, 2);
	assert_int_equal(s.conn, 0);
	s = scan("Connection: keep-alive\r\n\r\n", 1);
	assert_int_equal(s.conn, DC_KEEPALIVE);
	assert_int_equal(s.ka_off, 12);
	assert_int_equal(s.hdr_end, 26);
}

/* measure-http: the status class of each response, counted once, the bytes untouched. */
static struct http_counts hcounts(struct fixture *f, __u32 version)
{
	struct http_counts c;

	assert_int_equal(drain_http_counts(&f->d, SERVICE, version, &c), 0);
	return c;
}

static void measure_counts(void **state)
{
	static const char req2[] =
	    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char r404[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	struct fixture *f = *state;
	struct http_counts c;
	char buf[256], two[128];

	connect_case(f, 2, 0);
	/* A request before it joins: the response under way then is not counted. */
	request(f);
	assert_int_equal(drain_measure(&f->d, SERVICE, 2, 1), 0);
	assert_int_equal(pass(f), 1);
	assert_int_equal(drain_members(&f->d), 1);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	expect(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	c = hcounts(f, 2);
	assert_int_equal(c.n[HC_2XX], 0);
	assert_int_equal(c.joined, 1);
	/* The next one is: counted, passed as written (no drain). */
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	expect(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(hcounts(f, 2).n[HC_2XX], 1);
	/* A status line split over writes: put together, counted once. */
	request(f);
	swrite(f, "HTTP/1.1 5");
	swrite(f, "03 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
	expect(f, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
	c = hcounts(f, 2);
	assert_int_equal(c.n[HC_5XX], 1);
	assert_int_equal(c.n[HC_OTHER], 0);
	/* A body that looks like a status line is not a response. */
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
	swrite(f, "HTTP/1.1 500");
	expect(f, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHTTP/1.1 500");
	c = hcounts(f, 2);
	assert_int_equal(c.n[HC_2XX], 2);
	assert_int_equal(c.n[HC_5XX], 1);
	/* Two pipelined requests, both responses in one write: counted once (documented). */
	assert_int_equal(write(f->cfd, req2, sizeof(req2) - 1), (ssize_t)sizeof(req2) - 1);
	assert_int_equal(read(f->sfd, buf, sizeof(buf)), (ssize_t)sizeof(req2) - 1);
	snprintf(two, sizeof(two), "%s%s", r404, r404);
	swrite(f, two);
	expect(f, two);
	assert_int_equal(hcounts(f, 2).n[HC_4XX], 1);
	/* Not HTTP/1.x: other. */
	request(f);
	swrite(f, "\x16\x03\x01\x00\x05hello");
	expect(f, "\x16\x03\x01\x00\x05hello");
	assert_int_equal(hcounts(f, 2).n[HC_OTHER], 1);
	/* Its version starts draining: the same program rewrites and counts, no move. */
	assert_int_equal(drain_version(&f->d, SERVICE, 2, 1), 0);
	request(f);
	swrite(f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	expect(f, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(hcounts(f, 2).n[HC_2XX], 3);
	assert_int_equal(stats(f, 2).rewritten, 1);
	close_case(f, 2);
	assert_int_equal(drain_measure(&f->d, SERVICE, 2, 0), 0);
	pass(f);
}

int main(void)
{
	const struct CMUnitTest kernel[] = {
	    cmocka_unit_test(no_connection_header),
	    cmocka_unit_test(keepalive_in_place),
	    cmocka_unit_test(http10_keepalive),
	    cmocka_unit_test(already_close),
	    cmocka_unit_test(upgrade_101),
	    cmocka_unit_test(split_three_writes),
	    cmocka_unit_test(chunk_like_status_line),
	    cmocka_unit_test(writev_and_sendfile),
	    cmocka_unit_test(not_http),
	    cmocka_unit_test(active_never_joins_and_leave),
	    cmocka_unit_test(resteer_follows_weights),
	    cmocka_unit_test(instance_drain),
	    cmocka_unit_test(measure_counts),
	};
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(scan_heads),
	};
	int r;

	r = cmocka_run_group_tests_name("scan", pure, NULL, NULL);
	r += cmocka_run_group_tests_name("drain", kernel, setup, teardown);
	return r ? 1 : 0;
}
