/* SPDX-License-Identifier: MIT */
/*
 * steer-bench: the cost of baton's steering against the kernel's own
 * SO_REUSEPORT hash, measured side by side in one process.
 *
 * One reuseport group of 2 versions x 2 instances on 127.0.0.1 (one
 * blocking accept thread per listener, answering one HTTP/1.0 request per
 * connection and closing), and client threads that connect, send a request,
 * read the answer until the server closes, and close, from many 127.x
 * source addresses.  The same sockets, threads and clients serve every mode;
 * between measurement windows only the program attached to the group
 * changes:
 *
 *   kernel  no program: the kernel hashes over the group's 4 sockets
 *   steer   bpf/steer.bpf.c, 50/50 sticky canary weights, CIDR pins loaded
 *   full    steer, plus bpf/track.bpf.c (sock_ops) on the cgroup the
 *           listeners were made in, counting every connection as the agent
 *           does; the clients run outside it (their sockets are not its)
 *
 * A round is one short window of each mode, in an order that cycles through
 * every permutation of the modes, so that each mode comes first, last and
 * after each other mode equally often.  Each round gives a ratio to the
 * kernel's rate in that round; the median over the rounds is reported with
 * a distribution-free 95% confidence interval (order statistics).
 *
 * Why many short windows: on a shared machine the rate of this load drifts
 * by about 10% between any two windows, whether they last 20 ms or 1 s
 * (measured: the spread of the per-round ratio was the same for 0.02, 0.1,
 * 0.25 and 1 s windows).  The interval narrows with the number of rounds,
 * not their length, so rounds are made short and many.
 * A last window runs "full" with BPF run-time statistics on
 * (BPF_ENABLE_STATS, what kernel.bpf_stats_enabled=1 turns on) and reads
 * run_time_ns / run_cnt of both programs; stats are off during the timed
 * windows, since they cost time themselves.
 *
 * Run it as root in a private network namespace (unshare -n, lo up).  It
 * writes one JSON object to stdout (or --json FILE) and a summary to stderr.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_user.h"
#include "track.h"
#include "track_user.h"
#include "track.skel.h"

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NV	   2 /* versions */
#define NI	   2 /* instances per version */
#define SERVICE	   0
#define GROUP	   0
#define MAX_CLIENT 64
#define MAX_ROUNDS 4000

enum mode { M_KERNEL, M_STEER, M_FULL, NMODES };
static const char *mode_name[NMODES] = {"kernel", "steer", "full"};

struct opts {
	int rounds;
	double seconds;
	double warmup;
	int clients;
	int sources;
	int pins;
	int port;
	int track;
	const char *json;
	const char *raw;
	const char *pin_dir;
};

/* One writer per counter (its thread); readers load them relaxed. */
struct client {
	pthread_t th;
	int id;
	uint64_t ok, err_connect, err_write, err_read, err_status;
} __attribute__((aligned(64)));

struct server {
	pthread_t th;
	int fd;
	uint64_t served;
} __attribute__((aligned(64)));

static struct opts o = {
    .rounds = 1000,
    .seconds = 0.02,
    .warmup = 0.005,
    .clients = 4,
    .sources = 256,
    .pins = 1000,
    .port = 18080,
    .track = 1,
};
static volatile int stop_clients;
static struct client clients[MAX_CLIENT];
static struct server servers[NV][NI];
static struct sockaddr_in dst;
static struct steer st;
static struct track_bpf *tskel;
static struct bpf_link *tlink;
static int cgfd = -1;
static char pin_dir[PATH_MAX], cg_dir[PATH_MAX], cg_home[PATH_MAX];

static const char REQUEST[] = "GET / HTTP/1.0\r\nHost: bench\r\n\r\n";
static const char RESPONSE[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n"
			       "Connection: close\r\n\r\nok";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void inc(uint64_t *p)
{
	__atomic_store_n(p, *p + 1, __ATOMIC_RELAXED);
}

static void set_timeouts(int fd, int sec)
{
	struct timeval tv = {.tv_sec = sec};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Accept, read the request head, answer, close: one connection at a time. */
static void *server_main(void *arg)
{
	struct server *s = arg;
	char buf[1024];

	for (;;) {
		size_t have = 0;
		ssize_t n;
		int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break; /* shutdown() of the listener ends the thread */
		}
		set_timeouts(c, 2);
		while (have < sizeof(buf) - 1) {
			n = read(c, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				break;
			have += n;
			buf[have] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		if (have && write(c, RESPONSE, sizeof(RESPONSE) - 1) == sizeof(RESPONSE) - 1)
			inc(&s->served);
		close(c);
	}
	return NULL;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in src = {.sin_family = AF_INET};
	unsigned k = c->id;
	char buf[512];
	int one = 1;

	while (!stop_clients) {
		size_t have = 0;
		ssize_t n;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			inc(&c->err_connect);
			usleep(1000);
			continue;
		}
		/* 127.1.x.y: many client addresses, so sticky weights split them 50/50. */
		src.sin_addr.s_addr = htonl(0x7f010001u + (k++ % (unsigned)o.sources));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		set_timeouts(fd, 2);
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
		    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			inc(&c->err_connect);
			close(fd);
			continue;
		}
		if (write(fd, REQUEST, sizeof(REQUEST) - 1) != sizeof(REQUEST) - 1) {
			inc(&c->err_write);
			close(fd);
			continue;
		}
		while (have < sizeof(buf) - 1) {
			n = read(fd, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				break;
			have += n;
		}
		buf[have] = '\0';
		close(fd);
		if (!have)
			inc(&c->err_read);
		else if (strncmp(buf, "HTTP/1.0 200", 12) || !strstr(buf, "\r\n\r\nok"))
			inc(&c->err_status);
		else
			inc(&c->ok);
	}
	return NULL;
}

static int listener(void)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 || listen(fd, 4096) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/*
 * Runs of track (BPF run-time statistics) for n connections, each connected,
 * accepted and closed, to a listener on another port made outside the
 * tracked cgroup, as a server of the host that baton does not serve; -1 if
 * it could not be measured.  Expected: 0.
 */
#define UNSERVED_CONNS 200
static int prog_stats(int fd, uint64_t *ns, uint64_t *cnt);
static long long track_runs_unserved(int n)
{
	struct sockaddr_in a = dst;
	uint64_t ns0, c0, ns1, c1;
	int l, fd, c, k, sfd, ok = 0;

	a.sin_port = htons(o.port + 1);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0) {
		if (l >= 0)
			close(l);
		return -1;
	}
	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (sfd < 0 || prog_stats(bpf_program__fd(tskel->progs.track), &ns0, &c0))
		goto done;
	for (k = 0; k < n; k++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				ok++;
				close(c);
			}
		}
		close(fd);
	}
	if (ok == n && !prog_stats(bpf_program__fd(tskel->progs.track), &ns1, &c1)) {
		close(sfd);
		close(l);
		return (long long)(c1 - c0);
	}
done:
	if (sfd >= 0)
		close(sfd);
	close(l);
	return -1;
}

static int write_pid(const char *dir)
{
	char path[PATH_MAX + 16];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	r = fprintf(f, "%d\n", getpid()) < 0 ? -EIO : 0;
	if (fclose(f) && !r)
		r = -errno;
	return r;
}

/*
 * Move this process into a cgroup of its own, so that track counts this
 * bench's connections and nobody else's (the agent attaches it to the root).
 */
static int cgroup_enter(void)
{
	char root[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int r;

	r = cgroup2_root(root, sizeof(root)); /* as the agent finds it */
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
	/* Named after the pin dir: unique on the host, where pids in a namespace are not. */
	snprintf(cg_dir, sizeof(cg_dir), "%.2040s/%.2040s", root, strrchr(pin_dir, '/') + 1);
	if (mkdir(cg_dir, 0700) < 0)
		return -errno;
	r = write_pid(cg_dir);
	if (r)
		return r;
	cgfd = open(cg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return cgfd < 0 ? -errno : 0;
}

static void cgroup_leave(void)
{
	if (!cg_dir[0])
		return;
	if (cgfd >= 0)
		close(cgfd);
	write_pid(cg_home);
	rmdir(cg_dir);
}

static int track_setup(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct version_counts zero = {0};
	struct version_key k = {.service = SERVICE};
	int r;

	tskel = track_bpf__open_opts(&opts);
	if (!tskel)
		return -errno;
	r = track_bpf__load(tskel);
	if (r)
		return r;
	int ncpu = libbpf_num_possible_cpus();
	struct inst_counts *iz;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	iz = calloc((size_t)ncpu, sizeof(*iz));
	if (!iz)
		return -ENOMEM;
	/* Registered versions are counted, per version and per instance, as the agent's are. */
	for (k.version = 1; k.version <= NV; k.version++) {
		r = bpf_map_update_elem(bpf_map__fd(tskel->maps.inst_live), &k, iz, BPF_ANY);
		if (!r)
			r = bpf_map_update_elem(bpf_map__fd(tskel->maps.versions), &k, &zero,
						BPF_ANY);
		if (r)
			break;
	}
	free(iz);
	return r;
}

static int set_mode(enum mode m)
{
	int zero = 0;

	if (tlink && m != M_FULL) {
		bpf_link__destroy(tlink);
		tlink = NULL;
	}
	if (m == M_KERNEL) {
		if (setsockopt(servers[0][0].fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero,
			       sizeof(zero)) < 0 &&
		    errno != ENOENT)
			return -errno;
		return 0;
	}
	if (steer_attach(&st, servers[0][0].fd))
		return -errno;
	if (m == M_FULL && !tlink) {
		tlink = bpf_program__attach_cgroup(tskel->progs.track, cgfd);
		if (!tlink)
			return -errno;
	}
	return 0;
}

struct totals {
	uint64_t ok, err_connect, err_write, err_read, err_status;
	uint64_t served[NV][NI];
	double t;   /* wall clock */
	double cpu; /* this process's CPU time: every thread, softirq work done in them included */
};

static void snap(struct totals *t)
{
	int i, v;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < o.clients; i++) {
		t->ok += ld(&clients[i].ok);
		t->err_connect += ld(&clients[i].err_connect);
		t->err_write += ld(&clients[i].err_write);
		t->err_read += ld(&clients[i].err_read);
		t->err_status += ld(&clients[i].err_status);
	}
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			t->served[v][i] = ld(&servers[v][i].served);
	t->t = now_s();
	t->cpu = cpu_s();
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct window {
	double rate;
	double cpu_us; /* CPU time per connection */
	uint64_t errors;
	uint64_t served[NV][NI];
};

static int measure(enum mode m, struct window *w)
{
	struct totals a, b;
	int r = set_mode(m), v, i;

	if (r)
		return r;
	sleep_s(o.warmup);
	snap(&a);
	sleep_s(o.seconds);
	snap(&b);
	w->rate = (b.ok - a.ok) / (b.t - a.t);
	w->cpu_us = b.ok > a.ok ? (b.cpu - a.cpu) * 1e6 / (b.ok - a.ok) : 0;
	w->errors = (b.err_connect - a.err_connect) + (b.err_write - a.err_write) +
		    (b.err_read - a.err_read) + (b.err_status - a.err_status);
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			w->served[v][i] = b.served[v][i] - a.served[v][i];
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *x, int n)
{
	double s[MAX_ROUNDS];

	memcpy(s, x, n * sizeof(*x));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int prog_stats(int fd, uint64_t *ns, uint64_t *cnt)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int r = bpf_obj_get_info_by_fd(fd, &info, &len);

	if (r)
		return r;
	*ns = info.run_time_ns;
	*cnt = info.run_cnt;
	return 0;
}

static int load_pins(void)
{
	struct steer_cidr c = {.family = AF_INET, .len = 24};
	int k, r;

	/* 10.x.y.0/24: none matches a client here, so every SYN walks the trie and misses. */
	for (k = 0; k < o.pins; k++) {
		__u32 a = htonl(0x0a000000u | (__u32)k << 8);

		memcpy(c.addr, &a, 4);
		r = steer_pin_set(&st, SERVICE, &c, 1 + k % NV);
		if (r)
			return r;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: steer-bench [--rounds N] [--seconds S] [--warmup S] [--clients N]\n"
		   "                   [--sources N] [--pins N] [--port P] [--no-track]\n"
		   "                   [--pin-dir /sys/fs/bpf/DIR] [--json FILE] [--raw FILE]\n"
		   "Run as root in a private network namespace (unshare -n; ip link set lo up).\n");
}

static int parse(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"rounds", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 's'},
	    {"clients", required_argument, NULL, 'c'},
	    {"sources", required_argument, NULL, 'a'},
	    {"pins", required_argument, NULL, 'p'},
	    {"port", required_argument, NULL, 'P'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"no-track", no_argument, NULL, 'n'},
	    {"pin-dir", required_argument, NULL, 'd'},
	    {"json", required_argument, NULL, 'j'},
	    {"raw", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 's':
			o.seconds = atof(optarg);
			break;
		case 'c':
			o.clients = atoi(optarg);
			break;
		case 'a':
			o.sources = atoi(optarg);
			break;
		case 'p':
			o.pins = atoi(optarg);
			break;
		case 'P':
			o.port = atoi(optarg);
			break;
		case 'w':
			o.warmup = atof(optarg);
			break;
		case 'n':
			o.track = 0;
			break;
		case 'd':
			o.pin_dir = optarg;
			break;
		case 'j':
			o.json = optarg;
			break;
		case 'R':
			o.raw = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (o.rounds < 1 || o.rounds > MAX_ROUNDS || o.seconds <= 0 || o.seconds > 60 ||
	    o.warmup < 0 || o.warmup > 10 || o.clients < 1 || o.clients > MAX_CLIENT ||
	    o.sources < 1 || o.sources > 65000 || o.pins < 0 || o.pins > MAX_PINS - 1 ||
	    o.port < 1 || o.port > 65535) {
		fprintf(stderr, "steer-bench: an option is out of range "
				"(rounds 1..4000, seconds 0..60, clients 1..64, pins 0..4095)\n");
		return -1;
	}
	return 0;
}

static double share_v1(const uint64_t s[NV][NI])
{
	uint64_t all = s[0][0] + s[0][1] + s[1][0] + s[1][1];

	return all ? (double)(s[0][0] + s[0][1]) / all : 0;
}

/*
 * A 95% confidence interval of the median of n values (sorted in place):
 * the order statistics at ranks n/2 -+ 1.96 sqrt(n)/2, which holds whatever
 * the distribution.
 */
static void median_ci(double *x, int n, double *lo, double *hi)
{
	int j = (int)floor(n / 2.0 - 0.98 * sqrt(n)) - 1;
	int k = (int)ceil(1 + n / 2.0 + 0.98 * sqrt(n)) - 1;

	qsort(x, n, sizeof(*x), cmp_double);
	*lo = x[j < 0 ? 0 : j];
	*hi = x[k > n - 1 ? n - 1 : k];
}

/* The order of the modes in round k: every permutation in turn. */
static enum mode round_mode(int nmodes, int k, int i)
{
	static const enum mode p3[6][3] = {
	    {M_KERNEL, M_STEER, M_FULL}, {M_STEER, M_FULL, M_KERNEL}, {M_FULL, M_KERNEL, M_STEER},
	    {M_FULL, M_STEER, M_KERNEL}, {M_KERNEL, M_FULL, M_STEER}, {M_STEER, M_KERNEL, M_FULL},
	};

	if (nmodes == 3)
		return p3[k % 6][i];
	return (enum mode)((k + i) % nmodes);
}

static struct window w[MAX_ROUNDS][NMODES];
static double rate[NMODES][MAX_ROUNDS], ratio[NMODES][MAX_ROUNDS];
static double cpu[NMODES][MAX_ROUNDS], cpu_ratio[NMODES][MAX_ROUNDS];

int main(int argc, char **argv)
{
	double lo, hi, sorted[MAX_ROUNDS];
	FILE *raw;
	uint64_t errors[NMODES] = {0}, sns0 = 0, scnt0 = 0, sns1 = 0, scnt1 = 0;
	uint64_t tns0 = 0, tcnt0 = 0, tns1 = 0, tcnt1 = 0, stats_conns = 0;
	long long unserved_runs = -1;
	uint64_t served[NMODES][NV][NI] = {{{0}}};
	struct steer_service svc = {.mode = STEER_STICKY};
	struct steer_stats ss = {0};
	struct totals a, b;
	int nmodes = o.track ? NMODES : M_FULL;
	int i, v, k, r, rc = 1, stats_fd = -1;
	char err[256];
	FILE *out = stdout;

	if (parse(argc, argv))
		return 2;
	nmodes = o.track ? NMODES : M_FULL;
	if (geteuid()) {
		fprintf(stderr, "steer-bench: must run as root\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(servers, 0, sizeof(servers));
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			servers[v][i].fd = -1;
	dst.sin_family = AF_INET;
	dst.sin_port = htons(o.port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	if (o.pin_dir)
		snprintf(pin_dir, sizeof(pin_dir), "%s", o.pin_dir);
	else
		snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/baton-bench-%d", getpid());
	if (pin_dir[0] != '/' || !strrchr(pin_dir, '/')[1]) {
		fprintf(stderr, "steer-bench: --pin-dir wants an absolute path\n");
		return 2;
	}
	if (o.track) {
		r = cgroup_enter();
		if (r) {
			fprintf(stderr, "steer-bench: cannot make a cgroup v2 for track: %s\n",
				strerror(-r));
			goto out;
		}
	}
	r = steer_open(&st, pin_dir, err, sizeof(err));
	if (r) {
		fprintf(stderr, "steer-bench: %s\n", err);
		goto out;
	}
	if (o.track && track_setup()) {
		fprintf(stderr, "steer-bench: cannot load the track program\n");
		goto out;
	}
	if (steer_add_group(&st, (struct sockaddr *)&dst, SERVICE, GROUP)) {
		fprintf(stderr, "steer-bench: cannot add the group: %s\n", strerror(errno));
		goto out;
	}
	/* A 50/50 canary: v1 and v2, two instances each, sticky by client address. */
	for (v = 0; v < NV; v++) {
		svc.v[v].version = v + 1;
		svc.v[v].weight = WEIGHT_MAX / NV;
		svc.v[v].instances = NI;
		svc.v[v].state = VSTATE_ACTIVE;
	}
	if (steer_set_service(&st, SERVICE, &svc) || load_pins()) {
		fprintf(stderr, "steer-bench: cannot program the maps: %s\n", strerror(errno));
		goto out;
	}
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++) {
			servers[v][i].fd = listener();
			if (servers[v][i].fd < 0) {
				fprintf(stderr, "steer-bench: listen 127.0.0.1:%d: %s\n", o.port,
					strerror(-servers[v][i].fd));
				goto out;
			}
			r = steer_place(&st, steer_slot(GROUP, v, i), servers[v][i].fd);
			if (r) {
				fprintf(stderr, "steer-bench: cannot place a socket: %s\n",
					strerror(-r));
				goto out;
			}
			pthread_create(&servers[v][i].th, NULL, server_main, &servers[v][i]);
		}
	/*
	 * The listeners, and the connections they accept, belong to the cgroup
	 * they were made in (as the agent's listeners belong to its own); the
	 * clients' sockets, made from now on, to the cgroup the bench came
	 * from: track runs on the served side only, as it does under the agent
	 * for clients outside its cgroup.
	 */
	if (o.track && write_pid(cg_home)) {
		fprintf(stderr, "steer-bench: cannot leave the cgroup %s: %s\n", cg_dir,
			strerror(errno));
		goto out;
	}
	for (i = 0; i < o.clients; i++) {
		clients[i].id = i * 37;
		pthread_create(&clients[i].th, NULL, client_main, &clients[i]);
	}

	for (k = 0; k < o.rounds; k++) {
		for (i = 0; i < nmodes; i++) {
			enum mode m = round_mode(nmodes, k, i);

			r = measure(m, &w[k][m]);
			if (r) {
				fprintf(stderr, "steer-bench: cannot switch to %s: %s\n",
					mode_name[m], strerror(-r));
				goto stop;
			}
		}
		for (i = 0; i < nmodes; i++) {
			rate[i][k] = w[k][i].rate;
			ratio[i][k] = w[k][i].rate / w[k][M_KERNEL].rate;
			cpu[i][k] = w[k][i].cpu_us;
			/* As a rate: what the kernel's CPU per connection buys, over ours. */
			cpu_ratio[i][k] = w[k][M_KERNEL].cpu_us / w[k][i].cpu_us;
			errors[i] += w[k][i].errors;
			for (v = 0; v < NV; v++) {
				served[i][v][0] += w[k][i].served[v][0];
				served[i][v][1] += w[k][i].served[v][1];
			}
		}
		if ((k + 1) % 100 && k + 1 != o.rounds)
			continue;
		/* Progress: the medians so far. */
		fprintf(stderr, "steer-bench: %d rounds:", k + 1);
		for (i = 0; i < nmodes; i++)
			fprintf(stderr, " %s %.0f/s (%.4f)", mode_name[i], median(rate[i], k + 1),
				median(ratio[i], k + 1));
		fprintf(stderr, "\n");
	}

	/* The programs' own cost, with run-time statistics on for one more window. */
	r = set_mode(o.track ? M_FULL : M_STEER);
	if (!r) {
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		sleep_s(o.warmup);
		snap(&a);
		prog_stats(st.prog_fd, &sns0, &scnt0);
		if (o.track)
			prog_stats(bpf_program__fd(tskel->progs.track), &tns0, &tcnt0);
		/* Long enough for tens of thousands of runs, whatever the window. */
		sleep_s(o.seconds < 2 ? 2 : o.seconds);
		prog_stats(st.prog_fd, &sns1, &scnt1);
		if (o.track)
			prog_stats(bpf_program__fd(tskel->progs.track), &tns1, &tcnt1);
		snap(&b);
		stats_conns = b.ok - a.ok;
		if (stats_fd >= 0)
			close(stats_fd);
	}
	rc = 0;
stop:
	stop_clients = 1;
	for (i = 0; i < o.clients; i++)
		if (clients[i].th)
			pthread_join(clients[i].th, NULL);
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			if (servers[v][i].th) {
				shutdown(servers[v][i].fd, SHUT_RDWR);
				pthread_join(servers[v][i].th, NULL);
			}
	if (rc)
		goto out;
	steer_group_stats(&st, GROUP, &ss);
	if (o.track)
		unserved_runs = track_runs_unserved(UNSERVED_CONNS);

	if (o.json) {
		out = fopen(o.json, "w");
		if (!out) {
			fprintf(stderr, "steer-bench: %s: %s\n", o.json, strerror(errno));
			rc = 1;
			goto out;
		}
	}
	fprintf(out,
		"{\"rounds\": %d, \"seconds\": %.2f, \"clients\": %d, \"sources\": %d, "
		"\"pins\": %d,\n",
		o.rounds, o.seconds, o.clients, o.sources, o.pins);
	for (i = 0; i < nmodes; i++) {
		fprintf(out, " \"%s\": {\"median_rate\": %.0f, \"median_ratio\": %.4f, ",
			mode_name[i], median(rate[i], o.rounds), median(ratio[i], o.rounds));
		fprintf(out, "\"median_cpu_us\": %.2f, \"median_cpu_ratio\": %.4f, ",
			median(cpu[i], o.rounds), median(cpu_ratio[i], o.rounds));
		memcpy(sorted, ratio[i], o.rounds * sizeof(*sorted));
		median_ci(sorted, o.rounds, &lo, &hi);
		fprintf(out, "\"ratio_ci95\": [%.4f, %.4f], ", lo, hi);
		memcpy(sorted, cpu_ratio[i], o.rounds * sizeof(*sorted));
		median_ci(sorted, o.rounds, &lo, &hi);
		fprintf(out, "\"cpu_ratio_ci95\": [%.4f, %.4f], ", lo, hi);
		fprintf(out, "\"errors\": %llu, \"v1_share\": %.4f},\n",
			(unsigned long long)errors[i], share_v1(served[i]));
	}
	/* Every round's figures, for whoever wants to check the statistics. */
	raw = o.raw ? fopen(o.raw, "w") : NULL;
	if (o.raw && !raw)
		fprintf(stderr, "steer-bench: %s: %s\n", o.raw, strerror(errno));
	if (raw) {
		fprintf(raw, "{");
		for (i = 0; i < nmodes; i++) {
			fprintf(raw, "%s\"%s\": {\"rates\": [", i ? ",\n " : "", mode_name[i]);
			for (k = 0; k < o.rounds; k++)
				fprintf(raw, "%s%.0f", k ? ", " : "", rate[i][k]);
			fprintf(raw, "], \"ratios\": [");
			for (k = 0; k < o.rounds; k++)
				fprintf(raw, "%s%.4f", k ? ", " : "", ratio[i][k]);
			fprintf(raw, "], \"cpu_us\": [");
			for (k = 0; k < o.rounds; k++)
				fprintf(raw, "%s%.2f", k ? ", " : "", cpu[i][k]);
			fprintf(raw, "]}");
		}
		fprintf(raw, "}\n");
		fclose(raw);
	}
	fprintf(out,
		" \"bpf_stats\": {\"conns\": %llu, \"steer_runs\": %llu, \"steer_ns\": %llu, "
		"\"steer_ns_per_run\": %.1f",
		(unsigned long long)stats_conns, (unsigned long long)(scnt1 - scnt0),
		(unsigned long long)(sns1 - sns0),
		scnt1 > scnt0 ? (double)(sns1 - sns0) / (scnt1 - scnt0) : 0.0);
	if (o.track)
		fprintf(out,
			", \"track_runs\": %llu, \"track_ns\": %llu, \"track_ns_per_run\": %.1f, "
			"\"track_runs_per_conn\": %.2f, \"track_ns_per_conn\": %.1f",
			(unsigned long long)(tcnt1 - tcnt0), (unsigned long long)(tns1 - tns0),
			tcnt1 > tcnt0 ? (double)(tns1 - tns0) / (tcnt1 - tcnt0) : 0.0,
			stats_conns ? (double)(tcnt1 - tcnt0) / stats_conns : 0.0,
			stats_conns ? (double)(tns1 - tns0) / stats_conns : 0.0);
	if (o.track)
		fprintf(out, ", \"unserved_conns\": %d, \"track_runs_unserved\": %lld",
			UNSERVED_CONNS, unserved_runs);
	fprintf(out,
		"},\n \"steer_stats\": {\"selected\": %llu, \"pinned\": %llu, "
		"\"fallback\": %llu, \"dropped\": %llu, \"evicted\": %llu}",
		(unsigned long long)ss.selected, (unsigned long long)ss.pinned,
		(unsigned long long)ss.fallback, (unsigned long long)ss.dropped,
		(unsigned long long)ss.evicted);
	fprintf(out, "}\n");
	if (out != stdout)
		fclose(out);
out:
	if (tlink)
		bpf_link__destroy(tlink);
	track_bpf__destroy(tskel);
	for (v = 0; v < NV; v++)
		for (i = 0; i < NI; i++)
			if (servers[v][i].fd >= 0)
				close(servers[v][i].fd);
	steer_close(&st);
	if (pin_dir[0])
		steer_unpin(pin_dir);
	cgroup_leave();
	return rc;
}
