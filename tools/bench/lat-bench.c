/* SPDX-License-Identifier: MIT */
/*
 * lat-bench: the cost of measuring latency (bpf/latency.bpf.c's cgroup_skb
 * programs), side by side in one process, as ratios of one run.
 *
 * One reuseport group of 2 instances on 127.0.0.1:PORT, each served by an
 * epoll thread answering HTTP requests; client threads on 127.1.x.y.  The
 * listeners are made in a cgroup v2 of this process's own, where track and
 * the latency programs are attached, as in the agent's cgroup; then the
 * process goes back to its cgroup, so that the clients' sockets are
 * another cgroup's (accepted connections keep their listener's).  Two loads:
 *
 *   new connections (connect, request, answer, close), in three modes:
 *     kernel  no program: the kernel's reuseport hash
 *     full    steer + track, latency off (the version is not measured)
 *     lat     steer + track + latency: the version measured, the latency
 *             programs attached
 *   keep-alive (one connection per client per window, requests on it):
 *     off     steer + track, latency off
 *     on      steer + track + latency
 *     miss    steer + track, the latency programs attached but this version
 *             not measured (what a service without latency pays while
 *             another one is measured)
 *
 * Between windows only the programs and the version's latency entry
 * change.  A round is one short window of each mode, in an order that
 * cycles through the permutations; each round gives a ratio, and the median
 * over the rounds is reported with a distribution-free 95% interval.
 *
 * Then, with BPF run-time statistics on (BPF_ENABLE_STATS): the ingress and
 * egress programs' run time per run, per connection and per request, and
 * the cost where baton does not count: ping-pong with a plain listener made
 * in the same cgroup (the programs run and find no state), and in a child
 * process in the cgroup this process came from (they must not run at all).
 *
 * Run as root in a private network namespace (lo up).  Writes one JSON
 * object to --json FILE (or stdout), a summary to stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "latency.h"
#include "latency.skel.h"
#include "steer_user.h"
#include "track.h"
#include "track.skel.h"
#include "track_user.h"

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NI	   2 /* instances */
#define SERVICE	   0
#define VERSION	   1
#define GROUP	   0
#define MAX_CLIENT 32
#define MAX_ROUNDS 4000
#define MAX_FD	   65536

enum mode { M_KERNEL, M_FULL, M_LAT, M_MISS, NMODES };
static const char *mode_name[NMODES] = {"kernel", "full", "lat", "miss"};

static struct {
	int rounds;
	double seconds, warmup;
	int clients, port;
	const char *json, *pin_dir;
} o = {.rounds = 300, .seconds = 0.05, .warmup = 0.01, .clients = 4, .port = 18090};

static const char REQ_CLOSE[] = "GET / HTTP/1.0\r\nHost: b\r\n\r\n";
static const char REQ_KA[] = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
static const char RESP_CLOSE[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char RESP_KA[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct client {
	pthread_t th;
	int id;
	uint64_t ok, err;
} __attribute__((aligned(64)));

static struct client clients[MAX_CLIENT];
static pthread_t srv_th[NI];
static int lfd[NI] = {-1, -1};
static volatile int stop_all, keepalive, generation;
static struct sockaddr_in dst;
static struct steer st;
static struct track_bpf *tskel;
static struct latency_bpf *lskel;
static struct bpf_link *tlink, *llink, *llink_tx;
static int cgfd = -1, plain = -1;
static char pin_dir[PATH_MAX], cg_dir[PATH_MAX], cg_home[PATH_MAX];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void inc(uint64_t *p)
{
	__atomic_store_n(p, ld(p) + 1, __ATOMIC_RELAXED);
}

static void set_timeouts(int fd, int sec)
{
	struct timeval tv = {.tv_sec = sec};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Per connection fd (one server thread owns each): a request begun; it is HTTP/1.1 (keep-alive). */
static unsigned char begun[MAX_FD], ka[MAX_FD];

/* One listener's connections: answer each whole request; close after it unless keep-alive. */
static void *server_main(void *arg)
{
	int l = *(int *)arg, ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, evs[64];
	char buf[512];

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
		return NULL;
	while (!stop_all) {
		int n = epoll_wait(ep, evs, 64, 100), i;

		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;

			if (fd == l) {
				int c = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

				if (c < 0)
					continue;
				if (c >= MAX_FD) {
					close(c);
					continue;
				}
				begun[c] = 0;
				ev.data.fd = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
					close(c);
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd);
				continue;
			}
			/*
			 * Clients send one short request and wait: its first read
			 * says the version, a read ending in a blank line ends it.
			 */
			if (!begun[fd]) {
				begun[fd] = 1;
				ka[fd] = r >= 14 && !memcmp(buf, "GET / HTTP/1.1", 14);
			}
			if (r < 4 || memcmp(buf + r - 4, "\r\n\r\n", 4))
				continue;
			begun[fd] = 0;
			if (!ka[fd]) {
				/* Answered or not, the connection ends; the client checks. */
				r = write(fd, RESP_CLOSE, sizeof(RESP_CLOSE) - 1);
				close(fd);
			} else if (write(fd, RESP_KA, sizeof(RESP_KA) - 1) < 0) {
				close(fd);
			}
		}
	}
	close(ep);
	return NULL;
}

static int client_socket(struct client *c, unsigned *k)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	src.sin_addr.s_addr = htonl(0x7f010001u + ((*k)++ % 256));
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	set_timeouts(fd, 2);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		close(fd);
		inc(&c->err);
		return -1;
	}
	return fd;
}

/* Read exactly len bytes of an answer and check it; 0 or -1. */
static int read_answer(int fd, const char *want, size_t len)
{
	char buf[256];
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0)
			return -1;
		got += n;
	}
	return memcmp(buf, want, len) ? -1 : 0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	unsigned k = c->id;

	while (!stop_all) {
		int fd = client_socket(c, &k), gen = generation;

		if (fd < 0) {
			usleep(1000);
			continue;
		}
		if (!keepalive) {
			if (write(fd, REQ_CLOSE, sizeof(REQ_CLOSE) - 1) != sizeof(REQ_CLOSE) - 1 ||
			    read_answer(fd, RESP_CLOSE, sizeof(RESP_CLOSE) - 1))
				inc(&c->err);
			else
				inc(&c->ok);
			close(fd);
			continue;
		}
		/* One connection per window: made when its mode was set, closed at the next. */
		while (!stop_all && gen == generation) {
			if (write(fd, REQ_KA, sizeof(REQ_KA) - 1) != sizeof(REQ_KA) - 1 ||
			    read_answer(fd, RESP_KA, sizeof(RESP_KA) - 1)) {
				inc(&c->err);
				break;
			}
			inc(&c->ok);
		}
		close(fd);
	}
	return NULL;
}

static int write_pid(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 16];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	r = fprintf(f, "%d\n", pid) < 0 ? -EIO : 0;
	if (fclose(f) && !r)
		r = -errno;
	return r;
}

/* Into a cgroup of our own (named after the pin dir, unique on the host), remembering home. */
static int cgroup_enter(void)
{
	char root[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int r = cgroup2_root(root, sizeof(root));

	if (r)
		return r;
	snprintf(cg_home, sizeof(cg_home), "%s", root);
	f = fopen("/proc/self/cgroup", "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "0::", 3)) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(cg_home, sizeof(cg_home), "%.2040s%.2040s", root,
					 strcmp(line + 3, "/") ? line + 3 : "");
			}
		fclose(f);
	}
	snprintf(cg_dir, sizeof(cg_dir), "%.2040s/%.2040s", root, strrchr(pin_dir, '/') + 1);
	if (mkdir(cg_dir, 0700) < 0)
		return -errno;
	r = write_pid(cg_dir, getpid());
	if (r)
		return r;
	cgfd = open(cg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return cgfd < 0 ? -errno : 0;
}

/* The cgroup this process came from, where the child of ping_pong_elsewhere goes. */
static const char *cg_dir_other(void)
{
	return cg_home;
}

static void cgroup_leave(void)
{
	if (!cg_dir[0])
		return;
	if (cgfd >= 0)
		close(cgfd);
	write_pid(cg_home, getpid());
	rmdir(cg_dir);
}

static int load_programs(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct version_counts zero = {0};
	struct version_key k = {.service = SERVICE, .version = VERSION};

	tskel = track_bpf__open_opts(&opts);
	if (!tskel || track_bpf__load(tskel))
		return -1;
	if (bpf_map_update_elem(bpf_map__fd(tskel->maps.versions), &k, &zero, BPF_ANY))
		return -1;
	/* Accept waits (bpf/latgraft.bpf.c, the BPF LSM) are not what is measured here. */
	lskel = latency_bpf__open_opts(&opts);
	if (!lskel)
		return -1;
	return latency_bpf__load(lskel);
}

/* The version measured (its latency entry) or not, as the agent does it. */
static int measure_version(int on)
{
	struct version_key k = {.service = SERVICE, .version = VERSION};
	int ncpu = libbpf_num_possible_cpus(), r;
	struct lat_hist *z;

	if (!on) {
		if (bpf_map_delete_elem(bpf_map__fd(lskel->maps.latency), &k) && errno != ENOENT)
			return -errno;
		return 0;
	}
	z = calloc(ncpu, sizeof(*z));
	if (!z)
		return -ENOMEM;
	r = bpf_map_update_elem(bpf_map__fd(lskel->maps.latency), &k, z, BPF_ANY) ? -errno : 0;
	free(z);
	return r;
}

static int set_mode(enum mode m)
{
	int zero = 0;

	if (m != M_LAT && m != M_MISS && llink) {
		bpf_link__destroy(llink);
		bpf_link__destroy(llink_tx);
		llink = llink_tx = NULL;
	}
	if (m == M_KERNEL && tlink) {
		bpf_link__destroy(tlink);
		tlink = NULL;
	}
	if (measure_version(m == M_LAT))
		return -1;
	if (m == M_KERNEL)
		return setsockopt(lfd[0], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero,
				  sizeof(zero)) < 0 &&
			       errno != ENOENT
			   ? -1
			   : 0;
	if (steer_attach(&st, lfd[0]))
		return -1;
	if (!tlink && !(tlink = bpf_program__attach_cgroup(tskel->progs.track, cgfd)))
		return -1;
	if ((m == M_LAT || m == M_MISS) && !llink &&
	    (!(llink = bpf_program__attach_cgroup(lskel->progs.lat_rx, cgfd)) ||
	     !(llink_tx = bpf_program__attach_cgroup(lskel->progs.lat_tx, cgfd))))
		return -1;
	return 0;
}

static void totals(uint64_t *ok, uint64_t *err)
{
	int i;

	*ok = *err = 0;
	for (i = 0; i < o.clients; i++) {
		*ok += ld(&clients[i].ok);
		*err += ld(&clients[i].err);
	}
}

/* One window of mode m: requests (or connections) per second; errors added to *errs. */
static double window(enum mode m, uint64_t *errs)
{
	uint64_t ok0, ok1, e0, e1;
	double t0, t1;

	if (set_mode(m))
		return -1;
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
	sleep_s(o.warmup);
	totals(&ok0, &e0);
	t0 = now_s();
	sleep_s(o.seconds);
	totals(&ok1, &e1);
	t1 = now_s();
	*errs += e1 - e0;
	return (ok1 - ok0) / (t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of x[0..n) and a distribution-free 95% interval (order statistics, normal approx.). */
static double median_ci(const double *x, int n, double *lo, double *hi)
{
	static double s[MAX_ROUNDS];
	int a = (int)floor(n / 2.0 - 0.98 * sqrt(n)), b = (int)ceil(n / 2.0 + 0.98 * sqrt(n));

	memcpy(s, x, n * sizeof(*x));
	qsort(s, n, sizeof(*s), cmp_double);
	*lo = s[a < 0 ? 0 : a];
	*hi = s[b >= n ? n - 1 : b];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int prog_stats(int fd, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*ns = info.run_time_ns;
	*cnt = info.run_cnt;
	return 0;
}

/* A blocking listener on 127.0.0.1:port, outside the reuseport group; fd or -1. */
static int plain_listener(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0)
		return -1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		close(l);
		return -1;
	}
	return l;
}

/*
 * n ping-pongs of 1 byte over a connection to listener l (on port), made
 * from this process's cgroup; the round trips done.
 */
static long ping_pong(int l, int port, long n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int c, s = -1;
	long i = 0;
	char b = 'x';

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
		goto out;
	s = accept(l, NULL, NULL);
	if (s < 0)
		goto out;
	set_timeouts(c, 2);
	set_timeouts(s, 2);
	for (i = 0; i < n; i++)
		if (write(c, &b, 1) != 1 || read(s, &b, 1) != 1 || write(s, &b, 1) != 1 ||
		    read(c, &b, 1) != 1)
			break;
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	return i;
}

/* The same ping-pong in a child process moved to cgroup dir: another cgroup's sockets. */
static long ping_pong_elsewhere(const char *dir, int port, long n)
{
	int p[2];
	long done = 0;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(p[0]);
		int l;

		if (write_pid(dir, getpid()))
			_exit(1);
		l = plain_listener(port);
		done = l < 0 ? -1 : ping_pong(l, port, n);
		_exit(write(p[1], &done, sizeof(done)) == sizeof(done) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &done, sizeof(done)) != sizeof(done))
		done = -1;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return done;
}

struct runstat {
	uint64_t lns, lcnt, tns, tcnt, reqs;
};

/* With run-time stats on: the programs' deltas over secs of the current load. */
static void stat_window(double secs, struct runstat *r)
{
	uint64_t l0, lc0, t0, tc0, l1, lc1, t1, tc1, ok0, ok1, e;

	sleep_s(o.warmup);
	totals(&ok0, &e);
	prog_stats(bpf_program__fd(lskel->progs.lat_rx), &l0, &lc0);
	prog_stats(bpf_program__fd(lskel->progs.lat_tx), &t0, &tc0);
	sleep_s(secs);
	prog_stats(bpf_program__fd(lskel->progs.lat_rx), &l1, &lc1);
	prog_stats(bpf_program__fd(lskel->progs.lat_tx), &t1, &tc1);
	totals(&ok1, &e);
	r->lns = l1 - l0;
	r->lcnt = lc1 - lc0;
	r->tns = t1 - t0;
	r->tcnt = tc1 - tc0;
	r->reqs = ok1 - ok0;
}

static double per(uint64_t a, uint64_t b)
{
	return b ? (double)a / b : 0;
}

static double rates[2][NMODES][MAX_ROUNDS];

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"rounds", 1, 0, 'r'},  {"seconds", 1, 0, 's'},
					   {"warmup", 1, 0, 'w'},  {"clients", 1, 0, 'c'},
					   {"port", 1, 0, 'p'},	   {"json", 1, 0, 'j'},
					   {"pin-dir", 1, 0, 'd'}, {0, 0, 0, 0}};
	struct steer_service svc = {.mode = STEER_STICKY};
	double ratio[5][MAX_ROUNDS], med[5], cil[5], cih[5];
	uint64_t errs = 0;
	struct runstat sc = {0}, sk = {0}, su = {0};
	long pp_in = 0, pp_out = 0;
	uint64_t runs_out = 0;
	int c, i, k, r, rc = 1, stats_fd = -1;
	char err[256];
	FILE *out = stdout;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 's':
			o.seconds = atof(optarg);
			break;
		case 'w':
			o.warmup = atof(optarg);
			break;
		case 'c':
			o.clients = atoi(optarg);
			break;
		case 'p':
			o.port = atoi(optarg);
			break;
		case 'j':
			o.json = optarg;
			break;
		case 'd':
			o.pin_dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: lat-bench [--rounds N] [--seconds S] [--warmup S] "
					"[--clients N] [--port P] [--pin-dir DIR] [--json FILE]\n");
			return 2;
		}
	}
	if (o.rounds < 10 || o.rounds > MAX_ROUNDS || o.clients < 1 || o.clients > MAX_CLIENT ||
	    o.seconds <= 0 || o.warmup < 0 || o.port < 1 || o.port > 65534) {
		fprintf(stderr,
			"lat-bench: rounds 10..%d, clients 1..%d, seconds > 0, port "
			"1..65534\n",
			MAX_ROUNDS, MAX_CLIENT);
		return 2;
	}
	if (geteuid()) {
		fprintf(stderr, "lat-bench: must run as root\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(pin_dir, sizeof(pin_dir), "%s",
		 o.pin_dir ? o.pin_dir : "/sys/fs/bpf/baton-lat-bench");
	if (pin_dir[0] != '/' || !strrchr(pin_dir, '/')[1]) {
		fprintf(stderr, "lat-bench: --pin-dir wants an absolute path\n");
		return 2;
	}
	dst.sin_family = AF_INET;
	dst.sin_port = htons(o.port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = cgroup_enter();
	if (r) {
		fprintf(stderr, "lat-bench: cannot make a cgroup v2: %s\n", strerror(-r));
		goto out;
	}
	if (steer_open(&st, pin_dir, err, sizeof(err))) {
		fprintf(stderr, "lat-bench: %s\n", err);
		goto out;
	}
	if (load_programs()) {
		fprintf(stderr, "lat-bench: cannot load track and latency\n");
		goto out;
	}
	svc.v[0].version = VERSION;
	svc.v[0].weight = WEIGHT_MAX;
	svc.v[0].instances = NI;
	svc.v[0].state = VSTATE_ACTIVE;
	if (steer_add_group(&st, (struct sockaddr *)&dst, SERVICE, GROUP) ||
	    steer_set_service(&st, SERVICE, &svc)) {
		fprintf(stderr, "lat-bench: cannot program steer: %s\n", strerror(errno));
		goto out;
	}
	for (i = 0; i < NI; i++) {
		int one = 1;

		lfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (lfd[i] < 0 || setsockopt(lfd[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
		    bind(lfd[i], (struct sockaddr *)&dst, sizeof(dst)) || listen(lfd[i], 4096) ||
		    steer_place(&st, steer_slot(GROUP, 0, i), lfd[i])) {
			fprintf(stderr, "lat-bench: listener %d: %s\n", i, strerror(errno));
			goto out;
		}
		pthread_create(&srv_th[i], NULL, server_main, &lfd[i]);
	}
	/*
	 * A plain listener made here too: a socket of the cgroup that baton
	 * does not count.  Then back home: sockets made from now on (the
	 * clients') are another cgroup's, as a real server's clients are, while
	 * accepted connections keep their listener's cgroup.
	 */
	plain = plain_listener(o.port + 1);
	if (plain < 0 || write_pid(cg_home, getpid())) {
		fprintf(stderr,
			"lat-bench: cannot set up the plain listener or leave the cgroup: %s\n",
			strerror(errno));
		goto out;
	}
	for (i = 0; i < o.clients; i++) {
		clients[i].id = i * 37;
		pthread_create(&clients[i].th, NULL, client_main, &clients[i]);
	}

	/* Rounds: new connections over kernel, full, lat; then keep-alive over full, lat, miss. */
	for (int ka = 0; ka < 2; ka++) {
		int nm = 3;

		keepalive = ka;
		for (k = 0; k < o.rounds; k++) {
			for (i = 0; i < nm; i++) {
				/* Cycle the order: each mode first, last and between equally often.
				 */
				enum mode m =
				    (enum mode)(ka + ((k / 3) % 2 ? (k + 2 * i) : (k + i)) % 3);

				rates[ka][m][k] = window(m, &errs);
				if (rates[ka][m][k] < 0) {
					fprintf(stderr, "lat-bench: cannot set mode %s: %s\n",
						mode_name[m], strerror(errno));
					goto stop;
				}
			}
			if (!ka) {
				ratio[0][k] = rates[0][M_LAT][k] / rates[0][M_KERNEL][k];
				ratio[1][k] = rates[0][M_LAT][k] / rates[0][M_FULL][k];
				ratio[2][k] = rates[0][M_FULL][k] / rates[0][M_KERNEL][k];
			} else {
				ratio[3][k] = rates[1][M_LAT][k] / rates[1][M_FULL][k];
				ratio[4][k] = rates[1][M_MISS][k] / rates[1][M_FULL][k];
			}
		}
	}
	for (i = 0; i < 5; i++)
		med[i] = median_ci(ratio[i], o.rounds, &cil[i], &cih[i]);

	/* Run time, with statistics on (they cost time themselves: not in the windows above). */
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "lat-bench: cannot enable BPF run-time statistics: %s\n",
			strerror(errno));
		goto stop;
	}
	keepalive = 0;
	set_mode(M_LAT);
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
	stat_window(2, &sc);
	keepalive = 1;
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
	stat_window(2, &sk);
	rc = 0;
stop:
	stop_all = 1;
	for (i = 0; i < o.clients; i++)
		if (clients[i].th)
			pthread_join(clients[i].th, NULL);
	for (i = 0; i < NI; i++)
		if (srv_th[i])
			pthread_join(srv_th[i], NULL);
	if (rc)
		goto out;
	/* Where baton does not count: alone, so that only this traffic runs the programs. */
	{
		int rx = bpf_program__fd(lskel->progs.lat_rx),
		    tx = bpf_program__fd(lskel->progs.lat_tx);
		uint64_t l0, lc0, l1, lc1, t0, tc0, t1, tc1;

		prog_stats(rx, &l0, &lc0);
		prog_stats(tx, &t0, &tc0);
		pp_in = ping_pong(plain, o.port + 1, 20000);
		prog_stats(rx, &l1, &lc1);
		prog_stats(tx, &t1, &tc1);
		su.lns = l1 - l0;
		su.lcnt = lc1 - lc0;
		su.tns = t1 - t0;
		su.tcnt = tc1 - tc0;
		su.reqs = pp_in;
		prog_stats(rx, &l0, &lc0);
		prog_stats(tx, &t0, &tc0);
		pp_out = ping_pong_elsewhere(cg_dir_other(), o.port + 2, 20000);
		prog_stats(rx, &l1, &lc1);
		prog_stats(tx, &t1, &tc1);
		runs_out = (lc1 - lc0) + (tc1 - tc0);
	}
	if (o.json && !(out = fopen(o.json, "w"))) {
		fprintf(stderr, "lat-bench: %s: %s\n", o.json, strerror(errno));
		rc = 1;
		goto out;
	}
	{
		double lo_, hi_;
		double kr = median_ci(rates[0][M_KERNEL], o.rounds, &lo_, &hi_);
		double fr = median_ci(rates[0][M_FULL], o.rounds, &lo_, &hi_);
		double lr = median_ci(rates[0][M_LAT], o.rounds, &lo_, &hi_);
		double kaoff = median_ci(rates[1][M_FULL], o.rounds, &lo_, &hi_);
		double kaon = median_ci(rates[1][M_LAT], o.rounds, &lo_, &hi_);

		fprintf(out,
			"{\"rounds\": %d, \"seconds\": %.3f, \"clients\": %d, \"errors\": %llu,\n"
			" \"conn\": {\"kernel\": %.0f, \"full\": %.0f, \"lat\": %.0f,\n"
			"  \"lat_kernel\": {\"median\": %.4f, \"ci95\": [%.4f, %.4f]},\n"
			"  \"lat_full\": {\"median\": %.4f, \"ci95\": [%.4f, %.4f]},\n"
			"  \"full_kernel\": {\"median\": %.4f, \"ci95\": [%.4f, %.4f]}},\n"
			" \"keepalive\": {\"off\": %.0f, \"on\": %.0f,\n"
			"  \"on_off\": {\"median\": %.4f, \"ci95\": [%.4f, %.4f]},\n"
			"  \"miss_off\": {\"median\": %.4f, \"ci95\": [%.4f, %.4f]}},\n"
			" \"stats\": {\"conn\": {\"rx_ns_per_run\": %.1f, \"rx_runs\": %.2f,"
			" \"tx_ns_per_run\": %.1f, \"tx_runs\": %.2f, \"ns\": %.0f},\n"
			"  \"keepalive\": {\"rx_ns_per_run\": %.1f, \"rx_runs\": %.2f,"
			" \"tx_ns_per_run\": %.1f, \"tx_runs\": %.2f, \"ns\": %.0f},\n"
			"  \"uncounted_same_cgroup\": {\"round_trips\": %ld, \"rx_runs\": %llu,"
			" \"rx_ns_per_run\": %.1f, \"tx_runs\": %llu, \"tx_ns_per_run\": %.1f},\n"
			"  \"other_cgroup\": {\"round_trips\": %ld, \"runs\": %llu}}}\n",
			o.rounds, o.seconds, o.clients, (unsigned long long)errs, kr, fr, lr,
			med[0], cil[0], cih[0], med[1], cil[1], cih[1], med[2], cil[2], cih[2],
			kaoff, kaon, med[3], cil[3], cih[3], med[4], cil[4], cih[4],
			per(sc.lns, sc.lcnt), per(sc.lcnt, sc.reqs), per(sc.tns, sc.tcnt),
			per(sc.tcnt, sc.reqs), per(sc.lns + sc.tns, sc.reqs), per(sk.lns, sk.lcnt),
			per(sk.lcnt, sk.reqs), per(sk.tns, sk.tcnt), per(sk.tcnt, sk.reqs),
			per(sk.lns + sk.tns, sk.reqs), pp_in, (unsigned long long)su.lcnt,
			per(su.lns, su.lcnt), (unsigned long long)su.tcnt, per(su.tns, su.tcnt),
			pp_out, (unsigned long long)runs_out);
		fprintf(
		    stderr,
		    "lat-bench: new conns/s kernel %.0f full %.0f lat %.0f: lat/kernel %.4f "
		    "(%.4f-%.4f), lat/full %.4f (%.4f-%.4f); keep-alive req/s off %.0f on %.0f: "
		    "on/off %.4f (%.4f-%.4f), unmeasured/off %.4f (%.4f-%.4f); errors %llu\n",
		    kr, fr, lr, med[0], cil[0], cih[0], med[1], cil[1], cih[1], kaoff, kaon, med[3],
		    cil[3], cih[3], med[4], cil[4], cih[4], (unsigned long long)errs);
	}
	if (out != stdout)
		fclose(out);
out:
	if (stats_fd >= 0)
		close(stats_fd);
	bpf_link__destroy(llink);
	bpf_link__destroy(llink_tx);
	bpf_link__destroy(tlink);
	for (i = 0; i < NI; i++)
		if (lfd[i] >= 0)
			close(lfd[i]);
	if (plain >= 0)
		close(plain);
	latency_bpf__destroy(lskel);
	track_bpf__destroy(tskel);
	steer_close(&st);
	steer_unpin(pin_dir);
	cgroup_leave();
	return rc;
}
