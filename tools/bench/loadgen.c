/* SPDX-License-Identifier: MIT */
/*
 * loadgen: the client side of baton's benchmarks, from many source
 * addresses (127.x.y.z are all loopback), since wrk has only one and sticky
 * steering picks the version by client address.
 *
 *   loadgen conn --to ADDR:PORT [--seconds S] [--threads N] [--sources N]
 *                [--src 127.2.0.1] [--rate R] [--watch MAP]
 *       connect, send GET, read the answer to the server's close, close;
 *       count answers per version from the demo server's body
 *       ("version=vN ..."), and failures by class.  With --watch (a pinned
 *       services map of baton) it polls the service's policy and reports,
 *       for every switch that gives one version all the weight, how long new
 *       connections still reached another version after it.  With --records
 *       FILE it writes one line per connection: "START VERSION", START the
 *       realtime its connect began (seconds), VERSION 0 when it failed.
 *   loadgen hold --to ADDR:PORT --count N [--sources N] [--src A] [--window W]
 *                [--seconds S]
 *       open N connections and keep them; print one JSON line when all are
 *       established, then hold them until stdin is closed (or a line is
 *       read), SIGTERM, or S seconds; close them and exit.
 *
 * Every run is bounded by --seconds.  Results are one JSON object on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "steer.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_THREADS  64
#define MAX_VERSION  63		/* versions counted by number; others count as "other" */
#define MAX_RECORDS  (1u << 22) /* per thread, for --watch */
#define MAX_SWITCHES 256

struct opts {
	struct sockaddr_in to;
	uint32_t src; /* first source address, host order */
	int sources;
	int threads;
	double seconds;
	double rate; /* connections per second over all threads; 0: as fast as possible */
	const char *watch;
	const char *records;
	uint32_t service;
	long count;
	int window;
};

static struct opts o = {
    .src = 0x7f020001u,
    .sources = 256,
    .threads = 2,
    .seconds = 10,
    .service = 0,
    .count = 1000,
    .window = 512,
};

static volatile sig_atomic_t stop;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double real_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* ---- conn ---------------------------------------------------------------------- */

/* One connection, for --watch: when its connect started, and who answered. */
struct record {
	int64_t t_start;
	int32_t version; /* 0: failed */
};

struct worker {
	pthread_t th;
	int id;
	uint64_t ok, err_connect, err_write, err_read, err_status;
	uint64_t by_version[MAX_VERSION + 1];
	struct record *rec;
	size_t nrec;
} __attribute__((aligned(64)));

static struct worker workers[MAX_THREADS];
static int64_t t_begin, t_end;

static const char REQUEST[] = "GET / HTTP/1.0\r\nHost: loadgen\r\n\r\n";

static void set_timeouts(int fd, int sec)
{
	struct timeval tv = {.tv_sec = sec};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* "version=v12 ..." in the body: 12; 0 when absent. */
static int version_of(const char *buf)
{
	const char *p = strstr(buf, "version=v");

	if (!p)
		return 0;
	return atoi(p + 9);
}

static int one_request(struct worker *w, uint32_t src, int *version)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
	char buf[1024];
	size_t have = 0;
	ssize_t n;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*version = 0;
	if (fd < 0) {
		w->err_connect++;
		return -1;
	}
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	set_timeouts(fd, 3);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    connect(fd, (struct sockaddr *)&o.to, sizeof(o.to)) < 0) {
		w->err_connect++;
		close(fd);
		return -1;
	}
	if (write(fd, REQUEST, sizeof(REQUEST) - 1) != sizeof(REQUEST) - 1) {
		w->err_write++;
		close(fd);
		return -1;
	}
	while (have < sizeof(buf) - 1) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += n;
	}
	buf[have] = '\0';
	close(fd);
	if (!have) {
		w->err_read++;
		return -1;
	}
	if (strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 8, " 2", 2)) {
		w->err_status++;
		return -1;
	}
	w->ok++;
	*version = version_of(buf);
	return 0;
}

static void *conn_main(void *arg)
{
	struct worker *w = arg;
	uint32_t k = w->id * 7919u;
	int64_t next = now_ns();
	/* Each thread paces its share of --rate on an absolute schedule. */
	int64_t gap = o.rate > 0 ? (int64_t)(1e9 * o.threads / o.rate) : 0;

	while (!stop && now_ns() < t_end) {
		int64_t t0;
		int v;

		if (gap) {
			int64_t d = next - now_ns();

			if (d > 0) {
				struct timespec ts = {.tv_sec = d / 1000000000,
						      .tv_nsec = d % 1000000000};

				nanosleep(&ts, NULL);
			}
			next += gap;
		}
		t0 = now_ns();
		if (!one_request(w, o.src + k++ % (uint32_t)o.sources, &v))
			w->by_version[v >= 1 && v <= MAX_VERSION ? v : 0]++;
		if (w->rec && w->nrec < MAX_RECORDS)
			w->rec[w->nrec++] = (struct record){.t_start = t0, .version = v};
	}
	return NULL;
}

/* A change of the service's policy seen by the watcher. */
struct change {
	int64_t t;	 /* CLOCK_MONOTONIC when seen */
	double real;	 /* the same moment, CLOCK_REALTIME (for the driver's logs) */
	int64_t gap;	 /* time since the poll before it: the uncertainty of t */
	uint32_t sole;	 /* version with all the weight after it, or 0 */
	uint32_t weight; /* the newest version's weight, basis points */
};

static struct change changes[MAX_SWITCHES];
static int nchanges;
static uint32_t first_sole; /* sole version when the watch began */
static int64_t poll_gap_sum, poll_count;

static uint32_t sole_version(const struct steer_service *s)
{
	int i;

	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->v[i].state == VSTATE_ACTIVE && s->v[i].weight == WEIGHT_MAX)
			return s->v[i].version;
	return 0;
}

/* The weight of the newest version in the map: 0 while it starts. */
static uint32_t newest_weight(const struct steer_service *s)
{
	uint32_t best = 0, w = 0;
	int i;

	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->v[i].state != VSTATE_EMPTY && s->v[i].version > best) {
			best = s->v[i].version;
			w = s->v[i].state == VSTATE_ACTIVE ? s->v[i].weight : 0;
		}
	return w;
}

/* Poll the pinned services map every ~20 us: one lookup, no CPU to speak of. */
static void *watch_main(void *arg)
{
	int fd = *(int *)arg;
	struct steer_service cur, prev;
	struct timespec ts = {.tv_nsec = 20000};
	int64_t last = now_ns(), t;
	int have = 0;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while (!stop && now_ns() < t_end) {
		int found = !bpf_map_lookup_elem(fd, &o.service, &cur);

		/* Taken after the read: the change, if any, happened before t. */
		t = now_ns();
		if (found) {
			if (have && memcmp(&cur, &prev, sizeof(cur)) && nchanges < MAX_SWITCHES)
				changes[nchanges++] = (struct change){
				    .t = t,
				    .real = real_s(),
				    .gap = t - last,
				    .sole = sole_version(&cur),
				    .weight = newest_weight(&cur),
				};
			if (!have)
				first_sole = sole_version(&cur);
			prev = cur;
			have = 1;
		}
		poll_gap_sum += t - last;
		poll_count++;
		last = t;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * For each switch that leaves a new version with all the weight: the latest
 * start of a connection, after the switch was seen and before the next
 * switch, that an older version (a lower number) answered.  0 when there was
 * none.
 */
static void report_switches(FILE *out)
{
	int64_t lat[MAX_SWITCHES];
	uint32_t prev = first_sole;
	int i, j, t, n = 0;
	size_t r;

	fprintf(out, ", \"switches\": [");
	for (i = 0; i < nchanges; i++) {
		int64_t until = INT64_MAX, worst = 0;
		uint64_t late = 0, after = 0;

		if (changes[i].sole == prev)
			continue;
		prev = changes[i].sole;
		if (!changes[i].sole)
			continue;
		for (j = i + 1; j < nchanges; j++)
			if (changes[j].sole != changes[i].sole) {
				/* It may have happened as early as the poll before it was seen. */
				until = changes[j].t - changes[j].gap;
				break;
			}
		for (t = 0; t < o.threads; t++)
			for (r = 0; r < workers[t].nrec; r++) {
				const struct record *c = &workers[t].rec[r];

				if (c->t_start < changes[i].t || c->t_start >= until ||
				    c->version <= 0)
					continue;
				after++;
				/*
				 * Only an older version is late.  A newer one answers when this
				 * thread was preempted between reading the clock and sending its
				 * SYN, past the next switch.
				 */
				if ((uint32_t)c->version >= changes[i].sole)
					continue;
				late++;
				if (c->t_start - changes[i].t > worst)
					worst = c->t_start - changes[i].t;
			}
		lat[n++] = worst;
		fprintf(out,
			"%s{\"to\": %u, \"at\": %.6f, \"seen_within_us\": %.1f, \"after\": %llu, "
			"\"late\": %llu, \"late_us\": %.1f}",
			n > 1 ? ", " : "", changes[i].sole, changes[i].real, changes[i].gap / 1e3,
			(unsigned long long)after, (unsigned long long)late, worst / 1e3);
	}
	fprintf(out, "]");
	qsort(lat, n, sizeof(lat[0]), cmp_i64);
	fprintf(out,
		", \"switch_count\": %d, \"late_us_p50\": %.1f, \"late_us_p99\": %.1f, "
		"\"late_us_max\": %.1f, \"poll_us\": %.1f",
		n, n ? lat[(n - 1) / 2] / 1e3 : 0.0, n ? lat[(n - 1) * 99 / 100] / 1e3 : 0.0,
		n ? lat[n - 1] / 1e3 : 0.0, poll_count ? poll_gap_sum / 1e3 / poll_count : 0.0);
	fprintf(out, ", \"changes\": [");
	for (i = 0; i < nchanges; i++)
		fprintf(out, "%s{\"at\": %.6f, \"sole\": %u, \"newest_weight\": %u}", i ? ", " : "",
			changes[i].real, changes[i].sole, changes[i].weight);
	fprintf(out, "]");
}

static int run_conn(void)
{
	uint64_t ok = 0, ec = 0, ew = 0, er = 0, es = 0, byv[MAX_VERSION + 1] = {0};
	pthread_t wt;
	int i, v, map_fd = -1, watching = 0;
	double secs, real0;
	FILE *rf = NULL;
	size_t r;

	if (o.records) {
		rf = fopen(o.records, "w");
		if (!rf) {
			fprintf(stderr, "loadgen: %s: %s\n", o.records, strerror(errno));
			return 1;
		}
	}
	if (o.watch) {
		map_fd = bpf_obj_get(o.watch);
		if (map_fd < 0) {
			fprintf(stderr, "loadgen: %s: %s\n", o.watch, strerror(errno));
			return 1;
		}
	}
	t_begin = now_ns();
	real0 = real_s();
	t_end = t_begin + (int64_t)(o.seconds * 1e9);
	for (i = 0; i < o.threads; i++) {
		workers[i].id = i;
		if (o.watch || o.records) {
			workers[i].rec = calloc(MAX_RECORDS, sizeof(struct record));
			if (!workers[i].rec) {
				fprintf(stderr, "loadgen: out of memory\n");
				return 1;
			}
		}
	}
	if (o.watch)
		watching = !pthread_create(&wt, NULL, watch_main, &map_fd);
	for (i = 0; i < o.threads; i++)
		pthread_create(&workers[i].th, NULL, conn_main, &workers[i]);
	for (i = 0; i < o.threads; i++)
		pthread_join(workers[i].th, NULL);
	secs = (now_ns() - t_begin) / 1e9;
	stop = 1;
	if (watching)
		pthread_join(wt, NULL);
	for (i = 0; i < o.threads; i++) {
		ok += workers[i].ok;
		ec += workers[i].err_connect;
		ew += workers[i].err_write;
		er += workers[i].err_read;
		es += workers[i].err_status;
		for (v = 0; v <= MAX_VERSION; v++)
			byv[v] += workers[i].by_version[v];
	}
	printf("{\"seconds\": %.3f, \"ok\": %llu, \"rate\": %.1f, \"errors\": {\"connect\": %llu, "
	       "\"write\": %llu, \"read\": %llu, \"status\": %llu}, \"versions\": {",
	       secs, (unsigned long long)ok, ok / secs, (unsigned long long)ec,
	       (unsigned long long)ew, (unsigned long long)er, (unsigned long long)es);
	for (v = 1, i = 0; v <= MAX_VERSION; v++)
		if (byv[v])
			printf("%s\"v%d\": %llu", i++ ? ", " : "", v, (unsigned long long)byv[v]);
	printf("}, \"unknown_version\": %llu", (unsigned long long)byv[0]);
	if (o.watch)
		report_switches(stdout);
	printf("}\n");
	if (rf) {
		for (i = 0; i < o.threads; i++)
			for (r = 0; r < workers[i].nrec; r++)
				fprintf(rf, "%.6f %d\n",
					real0 + (workers[i].rec[r].t_start - t_begin) / 1e9,
					workers[i].rec[r].version);
		if (fclose(rf))
			fprintf(stderr, "loadgen: %s: %s\n", o.records, strerror(errno));
	}
	for (i = 0; i < o.threads; i++)
		free(workers[i].rec);
	if (map_fd >= 0)
		close(map_fd);
	return 0;
}

/* ---- hold ---------------------------------------------------------------------- */

static int run_hold(void)
{
	struct rlimit rl = {.rlim_cur = o.count + 1024, .rlim_max = o.count + 1024};
	struct epoll_event ev, evs[256];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	long started = 0, done = 0, est = 0, failed = 0, i;
	int64_t t0 = now_ns(), deadline = t0 + (int64_t)(o.seconds * 1e9);
	int *fds, ep, one = 1, n, k;
	struct pollfd pin = {.fd = 0, .events = POLLIN};
	char line[64];

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "loadgen: cannot raise the fd limit to %ld: %s\n", o.count + 1024,
			strerror(errno));
		return 1;
	}
	fds = calloc(o.count, sizeof(*fds));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!fds || ep < 0) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	/* Non-blocking connects, at most --window of them in their handshake at once. */
	while (done < o.count && !stop && now_ns() < deadline) {
		while (started < o.count && started - done < o.window) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			if (fd < 0) {
				fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
				deadline = 0;
				break;
			}
			sa.sin_addr.s_addr = htonl(o.src + (uint32_t)(started % o.sources));
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
			fds[started] = fd;
			if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    (connect(fd, (struct sockaddr *)&o.to, sizeof(o.to)) < 0 &&
			     errno != EINPROGRESS)) {
				close(fd);
				fds[started++] = -1;
				failed++;
				done++;
				continue;
			}
			ev.events = EPOLLOUT;
			ev.data.u64 = started++;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		}
		n = epoll_wait(ep, evs, 256, 100);
		for (k = 0; k < n; k++) {
			int fd = fds[evs[k].data.u64], err = 0;
			socklen_t len = sizeof(err);

			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			done++;
			if (err) {
				close(fd);
				fds[evs[k].data.u64] = -1;
				failed++;
			} else {
				est++;
			}
		}
	}
	printf("{\"established\": %ld, \"failed\": %ld, \"pending\": %ld, \"seconds\": %.3f}\n",
	       est, failed, started - done, (now_ns() - t0) / 1e9);
	fflush(stdout);
	/* Hold until told (a line or EOF on stdin, SIGTERM) or the deadline. */
	while (!stop && now_ns() < deadline) {
		if (poll(&pin, 1, 200) > 0) {
			if (!fgets(line, sizeof(line), stdin) || line[0])
				break;
		}
	}
	for (i = 0; i < started; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	close(ep);
	return 0;
}

/* ---- main ---------------------------------------------------------------------- */

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon - s >= (long)sizeof(host))
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 && sa->sin_port ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen conn --to ADDR:PORT [--seconds S] [--threads N] [--sources N]\n"
		   "                    [--src A.B.C.D] [--rate R] [--watch MAP] [--service ID]\n"
		   "                    [--records FILE]\n"
		   "       loadgen hold --to ADDR:PORT --count N [--sources N] [--src A.B.C.D]\n"
		   "                    [--window W] [--seconds S]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"to", required_argument, NULL, 't'},
	    {"seconds", required_argument, NULL, 's'},
	    {"threads", required_argument, NULL, 'n'},
	    {"sources", required_argument, NULL, 'a'},
	    {"src", required_argument, NULL, 'A'},
	    {"rate", required_argument, NULL, 'r'},
	    {"watch", required_argument, NULL, 'w'},
	    {"service", required_argument, NULL, 'S'},
	    {"count", required_argument, NULL, 'c'},
	    {"window", required_argument, NULL, 'W'},
	    {"records", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct in_addr a;
	int ch, have_to = 0;
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (parse_addr(optarg, &o.to)) {
				fprintf(stderr, "loadgen: --to wants A.B.C.D:PORT, not %s\n",
					optarg);
				return 2;
			}
			have_to = 1;
			break;
		case 's':
			o.seconds = atof(optarg);
			break;
		case 'n':
			o.threads = atoi(optarg);
			break;
		case 'a':
			o.sources = atoi(optarg);
			break;
		case 'A':
			if (inet_pton(AF_INET, optarg, &a) != 1) {
				fprintf(stderr, "loadgen: --src wants an IPv4 address\n");
				return 2;
			}
			o.src = ntohl(a.s_addr);
			break;
		case 'r':
			o.rate = atof(optarg);
			break;
		case 'w':
			o.watch = optarg;
			break;
		case 'R':
			o.records = optarg;
			break;
		case 'S':
			o.service = atoi(optarg);
			break;
		case 'c':
			o.count = atol(optarg);
			break;
		case 'W':
			o.window = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!have_to || o.seconds <= 0 || o.seconds > 3600 || o.threads < 1 ||
	    o.threads > MAX_THREADS || o.sources < 1 || o.sources > 1 << 20 || o.rate < 0 ||
	    o.count < 1 || o.count > 1000000 || o.window < 1) {
		fprintf(stderr, "loadgen: --to is required; an option is out of range\n");
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (!strcmp(cmd, "conn"))
		return run_conn();
	if (!strcmp(cmd, "hold"))
		return run_hold();
	usage(stderr);
	return 2;
}
