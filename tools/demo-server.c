/* SPDX-License-Identifier: MIT */
/*
 * demo-server: the small HTTP/1.1 service that baton hot-swaps in the demo
 * and in the end-to-end tests.
 *
 * Every response body is "version=V instance=I pid=P", so a test driving
 * wrk or curl through a swap can tell which binary served each request.
 * It is single-threaded on epoll, needs nothing beyond libc and Linux, and
 * drains the way baton expects a service to: on SIGTERM it keeps accepting
 * (baton, not the service, decides when a listener stops receiving
 * connections), answers every request with "Connection: close", and exits
 * once it holds no connection and nothing is left in its accept queues.
 *
 * For rollout tests it can also misbehave on purpose: fail its health
 * check (--unhealthy-after-ms), reset connections (--reset-every) or crash
 * (--exit-after-ms).
 *
 * Build: gcc -std=gnu11 -O2 -Wall -Wextra -o demo-server demo-server.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTENERS	64
#define MAX_CONNS	65536
#define HEAD_MAX	8192	      /* request line + headers + blank line */
#define BODY_MAX	(1024 * 1024) /* largest request body we read and discard */
#define BUF_SIZE	16384	      /* per-connection read and write buffers */
#define IDENT_MAX	128	      /* longest version or instance string */
#define RESP_MAX	1024	      /* longest canned response, checked at startup */
#define LINGER_MS	1000
#define ACCEPT_PAUSE_MS 100
#define ACCEPT_BATCH	64  /* accepts per wakeup: open connections get a turn too */
#define POOL_MAX	256 /* idle buffers kept for reuse */
#define EVENTS_MAX	256
#define MS_MAX		86400000UL /* one day: a larger timeout is surely a typo */
#define DATE_LEN	29	   /* "Sun, 06 Nov 1994 08:49:37 GMT" */

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* A final response never grows the write buffer past this, 100 Continue included. */
#define WBUF_RESERVE (RESP_MAX + sizeof(continue_100))

/*
 * epoll_event.data is (tag << 32 | id).  Connection tags are never reused
 * soon, because a connection closed earlier in an epoll batch may already
 * have had its fd handed out again by accept4: matching the tag keeps a
 * stale event from landing on the new connection.
 */
enum { TAG_SIGNAL = 1, TAG_LISTENER = 2, TAG_CONN_MIN = 16 };

enum status {
	ST_200,
	ST_HEALTHY,   /* GET /healthz */
	ST_UNHEALTHY, /* GET /healthz after --unhealthy-after-ms */
	ST_400,
	ST_405,
	ST_413,
	ST_431,
	ST_501,
	ST_505,
	ST_500,	    /* --error-rate */
	ST_METRICS, /* GET /metrics: built per request */
	ST_COUNT
};

static const struct {
	int code;
	const char *reason;
	const char *body; /* NULL: "version=V instance=I pid=P" */
} status_line[ST_COUNT] = {
    [ST_200] = {200, "OK"},
    [ST_HEALTHY] = {200, "OK", "ok\n"},
    [ST_UNHEALTHY] = {503, "Service Unavailable", "unhealthy\n"},
    [ST_400] = {400, "Bad Request"},
    [ST_405] = {405, "Method Not Allowed"},
    [ST_413] = {413, "Content Too Large"},
    [ST_431] = {431, "Request Header Fields Too Large"},
    [ST_501] = {501, "Not Implemented"},
    [ST_505] = {505, "HTTP Version Not Supported"},
    [ST_500] = {500, "Internal Server Error", "error (--error-rate)\n"},
    [ST_METRICS] = {200, "OK", ""},
};

/* Responses are built once at startup; only the Date field is rewritten, once a second. */
struct resp {
	char buf[RESP_MAX];
	size_t head_len; /* status line and headers: all a HEAD answer sends */
	size_t len;
	size_t date_off;
};

enum cstate {
	C_HEAD,	   /* waiting for (the rest of) a request head */
	C_BODY,	   /* discarding body_left bytes of request body */
	C_DELAY,   /* request complete, answer held back by --delay-ms */
	C_CLOSING, /* last response queued: close once it is written */
	C_LINGER,  /* write side shut: discard input until the peer closes */
};

struct conn;

/*
 * Each queue holds one kind of timeout, all of the same length, so
 * appending at the tail keeps it sorted by deadline and finding the next
 * expiry never scans.
 */
struct timeq {
	struct conn *head, *tail;
};

struct conn {
	int fd;
	uint32_t tag;
	enum cstate state;
	uint32_t events; /* epoll interest currently registered */
	bool eof;	 /* the peer shut down its sending side */
	bool doomed;	 /* --reset-every picked it: reset once a request head is in */

	/* the request being answered */
	enum status status;
	bool head;
	bool close;
	uint64_t body_left;

	char *rbuf; /* from the pool while holding unparsed input */
	size_t rlen, roff;
	char *wbuf; /* from the pool while holding unsent output */
	size_t wlen, woff;

	/* on srv.idle, t is the last I/O progress; on the other queues, a deadline */
	struct timeq *q;
	struct conn *prev, *next;
	int64_t t;
};

static struct {
	/* configuration */
	const char *version;
	const char *instance;
	const char *listen_spec[MAX_LISTENERS];
	int nlisten_spec;
	unsigned long delay_ms;
	unsigned long ready_delay_ms;
	unsigned long accept_delay_ms; /* --accept-delay-ms: READY=1 this long before accepting */
	unsigned long drain_idle_ms;
	unsigned long idle_ms;
	bool fail_ready;
	bool no_accept;
	bool keepalive_forever;
	long unhealthy_after_ms; /* -1: never */
	long exit_after_ms;	 /* -1: never */
	unsigned long reset_every;
	unsigned long workers;
	bool workers_ignore_term;
	bool master_no_wait;
	bool worker_daemon;
	unsigned error_bp;			/* --error-rate, basis points */
	unsigned error_acc;			/* spreads the 500s evenly */
	const char *metrics_listen;		/* --metrics-listen */
	unsigned long long by_status[ST_COUNT]; /* answers by status (for /metrics) */

	pid_t pid;
	int ep;
	int sigfd;
	int lfd[MAX_LISTENERS]; /* -1 once closed */
	int nlfd;
	bool listeners_closed;
	bool accepting; /* listeners registered for EPOLLIN */
	int64_t accept_pause_until;
	bool accept_delayed; /* the pause is --accept-delay-ms's, after READY=1 */
	int64_t accept_warned;

	int64_t now; /* CLOCK_MONOTONIC ms, updated once per epoll batch */
	int64_t start;
	int64_t unhealthy_at; /* INT64_MAX: never */
	int64_t exit_at;      /* INT64_MAX: never */
	int64_t ready_at;
	bool ready;
	bool draining;
	int64_t drain_start;

	struct conn **tab; /* indexed by fd */
	size_t tabsz;
	unsigned int nconns;
	uint32_t next_tag;
	unsigned long long requests;
	unsigned long long accepted;
	unsigned long long resets;
	struct timeq idle;   /* C_HEAD, C_BODY, C_CLOSING */
	struct timeq delay;  /* C_DELAY */
	struct timeq linger; /* C_LINGER */
	struct conn *dead;   /* closed this batch, freed after it */
	char *pool;
	unsigned int npool;

	struct resp resp[ST_COUNT][2]; /* [status][close] */
	time_t date_sec;
} srv = {
    .drain_idle_ms = 1000,
    .idle_ms = 60000,
    .unhealthy_after_ms = -1,
    .exit_after_ms = -1,
    .next_tag = TAG_CONN_MIN,
};

static char log_prefix[IDENT_MAX * 2 + 64] = "demo-server: ";

/* ---- logging: one write(2) per line so lines from several servers never interleave */

static void log_line(const char *err, const char *fmt, va_list ap)
{
	char msg[768], line[1400];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err)
		n = snprintf(line, sizeof(line), "%s%s: %s\n", log_prefix, msg, err);
	else
		n = snprintf(line, sizeof(line), "%s%s\n", log_prefix, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (write(STDERR_FILENO, line, n) < 0)
		return; /* stderr is gone: nothing left to tell */
}

static void __attribute__((format(printf, 1, 2))) log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(NULL, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) log_warn(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_line(err, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(NULL, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2), noreturn)) fatal(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_line(err, fmt, ap);
	va_end(ap);
	exit(1);
}

/* A mistake in how we were started: exit 2, like a usage error. */
static void __attribute__((format(printf, 1, 2), noreturn)) fatal_config(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(NULL, fmt, ap);
	va_end(ap);
	exit(2);
}

static void __attribute__((format(printf, 1, 2), noreturn)) usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "demo-server: %s (see --help)\n", msg);
	exit(2);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- command line */

enum {
	OPT_LISTEN,
	OPT_VERSION,
	OPT_DELAY,
	OPT_READY_DELAY,
	OPT_ACCEPT_DELAY,
	OPT_DRAIN_IDLE,
	OPT_IDLE,
	OPT_FAIL_READY,
	OPT_NO_ACCEPT,
	OPT_UNHEALTHY_AFTER,
	OPT_RESET_EVERY,
	OPT_EXIT_AFTER,
	OPT_KEEPALIVE_FOREVER,
	OPT_WORKERS,
	OPT_WORKERS_IGNORE_TERM,
	OPT_MASTER_NO_WAIT,
	OPT_WORKER_DAEMON,
	OPT_ERROR_RATE,
	OPT_METRICS_LISTEN,
	OPT_HELP,
	OPT_COUNT,
};

static const struct {
	const char *name;
	const char *arg; /* NULL for a flag */
	const char *help;
} opts[OPT_COUNT] = {
    [OPT_LISTEN] = {"listen", "ADDR:PORT",
		    "listen on 1.2.3.4:80 or [::1]:80; repeatable; ignored when\n"
		    "socket-activated"},
    [OPT_VERSION] = {"version", "STR", "version to report (default: $BATON_VERSION, else \"dev\")"},
    [OPT_DELAY] = {"delay-ms", "N", "wait N ms before answering each request"},
    [OPT_READY_DELAY] = {"ready-delay-ms", "N",
			 "wait N ms after start before READY=1 and accepting"},
    [OPT_ACCEPT_DELAY] = {"accept-delay-ms", "N",
			  "accept only N ms after READY=1 (a master that reports ready\n"
			  "before its workers accept)"},
    [OPT_DRAIN_IDLE] = {"drain-idle-ms", "N",
			"after SIGTERM, close connections idle for N ms (default 1000)"},
    [OPT_IDLE] = {"idle-ms", "N", "close keep-alive connections idle for N ms (default 60000)"},
    [OPT_KEEPALIVE_FOREVER] = {"keepalive-forever", NULL,
			       "drain like many third-party servers: never answer\n"
			       "\"Connection: close\" on its own; on SIGTERM close idle\n"
			       "connections at once and busy ones after their response"},
    [OPT_FAIL_READY] = {"fail-ready", NULL,
			"exit 3 after --ready-delay-ms without sending READY=1"},
    [OPT_NO_ACCEPT] = {"no-accept", NULL,
		       "never accept a connection (a hung version); READY=1 is still sent"},
    [OPT_UNHEALTHY_AFTER] = {"unhealthy-after-ms", "MS",
			     "from MS ms after start on, /healthz answers 503"},
    [OPT_RESET_EVERY] = {"reset-every", "N",
			 "abort every Nth accepted connection with a RST (SO_LINGER 0)\n"
			 "once its first request head is read, without answering"},
    [OPT_EXIT_AFTER] = {"exit-after-ms", "MS", "exit 3 MS ms after start, with no drain (a crash)"},
    [OPT_WORKERS] = {"workers", "N",
		     "pre-fork: a master forks N workers that accept on the inherited\n"
		     "sockets (needs LISTEN_FDS); on SIGTERM it passes SIGTERM on and\n"
		     "exits once they have"},
    [OPT_WORKERS_IGNORE_TERM] = {"workers-ignore-term", NULL,
				 "workers ignore SIGTERM and never exit on their own (hung)"},
    [OPT_MASTER_NO_WAIT] = {"master-no-wait", NULL,
			    "on SIGTERM the master passes it on and exits at once, leaving\n"
			    "its workers behind"},
    [OPT_WORKER_DAEMON] = {"worker-daemon", NULL,
			   "each worker forks a child that double-forks a detached\n"
			   "grandchild (own session) which sleeps forever"},
    [OPT_ERROR_RATE] = {"error-rate", "PCT",
			"answer 500 to PCT percent of GETs (0..100, evenly spread;\n"
			"not /healthz nor /metrics)"},
    [OPT_METRICS_LISTEN] = {"metrics-listen", "ADDR:PORT",
			    "also listen on ADDR:PORT itself, socket-activated or not\n"
			    "(a port of this version's own for a Prometheus scrape of\n"
			    "/metrics; one instance per port)"},
    [OPT_HELP] = {"help", NULL, "print this help and exit"},
};

static void usage(void)
{
	int i;

	printf("usage: demo-server [--listen ADDR:PORT]... [option]...\n"
	       "\n"
	       "HTTP/1.1 test service for baton.  GET and HEAD of any path answer 200,\n"
	       "other methods 405; every body is \"version=V instance=I pid=P\", except\n"
	       "for /healthz (any query string): 200 \"ok\", or 503 \"unhealthy\" once\n"
	       "--unhealthy-after-ms has passed.\n"
	       "\n"
	       "options:\n");
	for (i = 0; i < OPT_COUNT; i++) {
		char left[48];
		const char *h, *nl;

		snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		/* continuation lines of a help text line up under its first line */
		for (h = opts[i].help; h; h = nl ? nl + 1 : NULL) {
			nl = strchr(h, '\n');
			printf("  %-24s %.*s\n", h == opts[i].help ? left : "",
			       nl ? (int)(nl - h) : (int)strlen(h), h);
		}
	}
	printf("\n"
	       "environment:\n"
	       "  LISTEN_FDS, LISTEN_PID  systemd socket activation: listening fds from 3 on\n"
	       "  NOTIFY_SOCKET           where READY=1 and MAINPID are sent once ready\n"
	       "  BATON_VERSION           version when --version is not given\n"
	       "  BATON_INSTANCE          instance to report (default \"0\")\n"
	       "\n"
	       "SIGTERM or SIGINT: answer everything with \"Connection: close\", keep\n"
	       "accepting until no connection is left, then close the listeners and exit 0.\n"
	       "With --keepalive-forever the answers still say keep-alive, but each\n"
	       "connection is closed after its answer, and idle ones at once.\n"
	       "SIGQUIT: exit 0 at once.\n"
	       "\n"
	       "exit status: 0 stopped by a signal, 1 runtime error, 2 usage or setup\n"
	       "error, 3 --fail-ready or --exit-after-ms\n");
}

static unsigned long parse_ms(const char *opt, const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v > MS_MAX)
		usage_error("--%s '%s': expected milliseconds, 0 to %lu", opt, s, MS_MAX);
	return v;
}

static unsigned long parse_count(const char *opt, const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '1' || s[0] > '9' || *end || errno || v > UINT32_MAX)
		usage_error("--%s '%s': expected a count, 1 to %u", opt, s, UINT32_MAX);
	return v;
}

static void parse_args(int argc, char **argv)
{
	int i, o;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		size_t nlen;

		if (a[0] != '-')
			usage_error("unexpected argument '%s'", a);
		if (a[1] != '-' || !a[2])
			usage_error("unknown option '%s'", a);
		a += 2;
		eq = strchr(a, '=');
		nlen = eq ? (size_t)(eq - a) : strlen(a);
		for (o = 0; o < OPT_COUNT; o++)
			if (strlen(opts[o].name) == nlen && !strncmp(opts[o].name, a, nlen))
				break;
		if (o == OPT_COUNT)
			usage_error("unknown option '--%.*s'", (int)nlen, a);
		if (opts[o].arg) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				usage_error("--%s needs an argument %s", opts[o].name, opts[o].arg);
		} else if (eq) {
			usage_error("--%s takes no argument", opts[o].name);
		}

		switch (o) {
		case OPT_LISTEN:
			if (srv.nlisten_spec == MAX_LISTENERS)
				usage_error("more than %d --listen", MAX_LISTENERS);
			srv.listen_spec[srv.nlisten_spec++] = val;
			break;
		case OPT_VERSION:
			srv.version = val;
			break;
		case OPT_DELAY:
			srv.delay_ms = parse_ms(opts[o].name, val);
			break;
		case OPT_READY_DELAY:
			srv.ready_delay_ms = parse_ms(opts[o].name, val);
			break;
		case OPT_ACCEPT_DELAY:
			srv.accept_delay_ms = parse_ms(opts[o].name, val);
			break;
		case OPT_DRAIN_IDLE:
			srv.drain_idle_ms = parse_ms(opts[o].name, val);
			break;
		case OPT_IDLE:
			srv.idle_ms = parse_ms(opts[o].name, val);
			break;
		case OPT_FAIL_READY:
			srv.fail_ready = true;
			break;
		case OPT_KEEPALIVE_FOREVER:
			srv.keepalive_forever = true;
			break;
		case OPT_NO_ACCEPT:
			srv.no_accept = true;
			break;
		case OPT_UNHEALTHY_AFTER:
			srv.unhealthy_after_ms = (long)parse_ms(opts[o].name, val);
			break;
		case OPT_RESET_EVERY:
			srv.reset_every = parse_count(opts[o].name, val);
			break;
		case OPT_EXIT_AFTER:
			srv.exit_after_ms = (long)parse_ms(opts[o].name, val);
			break;
		case OPT_WORKERS:
			srv.workers = parse_count(opts[o].name, val);
			if (srv.workers > 64)
				usage_error("--workers %lu: at most 64", srv.workers);
			break;
		case OPT_WORKERS_IGNORE_TERM:
			srv.workers_ignore_term = true;
			break;
		case OPT_MASTER_NO_WAIT:
			srv.master_no_wait = true;
			break;
		case OPT_WORKER_DAEMON:
			srv.worker_daemon = true;
			break;
		case OPT_ERROR_RATE: {
			char *end;
			double pct = strtod(val, &end);

			if (*end || !(pct >= 0 && pct <= 100))
				usage_error("--error-rate '%s': expected a percentage, 0 to 100",
					    val);
			srv.error_bp = (unsigned)(pct * 100 + 0.5);
			break;
		}
		case OPT_METRICS_LISTEN:
			srv.metrics_listen = val;
			break;
		case OPT_HELP:
			usage();
			exit(0);
		}
	}
}

/*
 * The identity goes verbatim into a header and into a space-separated body
 * line, so it must be visible ASCII without spaces.
 */
static bool ident_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > IDENT_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void setup_identity(void)
{
	const char *env;

	if (!srv.version) {
		env = getenv("BATON_VERSION");
		srv.version = env && *env ? env : "dev";
	}
	env = getenv("BATON_INSTANCE");
	srv.instance = env && *env ? env : "0";
	if (!ident_ok(srv.version))
		usage_error("version '%s': use 1-%d visible ASCII characters, no spaces",
			    srv.version, IDENT_MAX);
	if (!ident_ok(srv.instance))
		usage_error("BATON_INSTANCE '%s': use 1-%d visible ASCII characters, no spaces",
			    srv.instance, IDENT_MAX);
	srv.pid = getpid();
	snprintf(log_prefix, sizeof(log_prefix), "demo-server[%d] v=%s i=%s: ", (int)srv.pid,
		 srv.version, srv.instance);
}

/* ---- canned responses */

static void date_refresh(void)
{
	char date[DATE_LEN + 1];
	time_t now = time(NULL);
	struct tm tm;
	int st, cl;

	if (now == srv.date_sec)
		return;
	srv.date_sec = now;
	/* strftime in the C locale: we never call setlocale() */
	if (!gmtime_r(&now, &tm) ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) != DATE_LEN)
		return;
	for (st = 0; st < ST_COUNT; st++)
		for (cl = 0; cl < 2; cl++)
			memcpy(srv.resp[st][cl].buf + srv.resp[st][cl].date_off, date, DATE_LEN);
}

static void build_responses(void)
{
	char ident[IDENT_MAX * 2 + 64];
	int ilen, blen, st, cl;
	const char *body;

	ilen = snprintf(ident, sizeof(ident), "version=%s instance=%s pid=%d\n", srv.version,
			srv.instance, (int)srv.pid);
	for (st = 0; st < ST_COUNT; st++) {
		body = status_line[st].body ? status_line[st].body : ident;
		blen = status_line[st].body ? (int)strlen(body) : ilen;
		for (cl = 0; cl < 2; cl++) {
			struct resp *r = &srv.resp[st][cl];
			size_t room = sizeof(r->buf);
			int n, m;

			n = snprintf(r->buf, room, "HTTP/1.1 %d %s\r\nDate: ", status_line[st].code,
				     status_line[st].reason);
			r->date_off = n;
			m = snprintf(r->buf + n, room - n,
				     "%*s\r\n"
				     "Content-Type: text/plain\r\n"
				     "Content-Length: %d\r\n"
				     "X-Version: %s\r\n"
				     "X-Instance: %s\r\n"
				     "%s"
				     "Connection: %s\r\n"
				     "\r\n",
				     DATE_LEN, "", blen, srv.version, srv.instance,
				     st == ST_405 ? "Allow: GET, HEAD\r\n" : "",
				     cl ? "close" : "keep-alive");
			if (m < 0 || (size_t)(n + m) + blen >= room)
				fatal_config("response does not fit in %d bytes", RESP_MAX);
			r->head_len = n + m;
			memcpy(r->buf + r->head_len, body, blen);
			r->len = r->head_len + blen;
		}
	}
	date_refresh();
}

/* ---- timer queues */

static void tq_del(struct conn *c)
{
	struct timeq *q = c->q;

	if (!q)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		q->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		q->tail = c->prev;
	c->prev = c->next = NULL;
	c->q = NULL;
}

static void tq_add(struct timeq *q, struct conn *c, int64_t t)
{
	tq_del(c);
	c->t = t;
	c->q = q;
	c->prev = q->tail;
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
}

/*
 * After SIGTERM an idle connection gets --drain-idle-ms counted from the
 * later of its last activity and the signal.  That is still monotonic in
 * the last activity, so the idle queue stays sorted when draining starts.
 */
static int64_t idle_deadline(const struct conn *c)
{
	if (!srv.draining)
		return c->t + (int64_t)srv.idle_ms;
	if (srv.keepalive_forever)
		return srv.drain_start; /* closed at once, whatever a client is about to send */
	return (c->t > srv.drain_start ? c->t : srv.drain_start) + (int64_t)srv.drain_idle_ms;
}

/* I/O progressed: push the connection's idle deadline back. */
static void conn_touch(struct conn *c)
{
	if (c->q == &srv.idle)
		tq_add(&srv.idle, c, srv.now);
}

/* ---- buffer pool: idle keep-alive connections hold no buffer at all */

static char *buf_get(void)
{
	char *b = srv.pool;

	if (!b)
		return malloc(BUF_SIZE);
	memcpy(&srv.pool, b, sizeof(srv.pool));
	srv.npool--;
	return b;
}

static void buf_put(char *b)
{
	if (!b)
		return;
	if (srv.npool >= POOL_MAX) {
		free(b);
		return;
	}
	memcpy(b, &srv.pool, sizeof(srv.pool));
	srv.pool = b;
	srv.npool++;
}

/* ---- listeners */

static uint64_t ev_key(uint32_t tag, uint32_t id)
{
	return (uint64_t)tag << 32 | id;
}

/* Arm or disarm all listeners so that epoll only reports them when we want to accept. */
static void listeners_update(void)
{
	bool want = srv.ready && !srv.no_accept && !srv.listeners_closed &&
		    srv.nconns < MAX_CONNS && srv.now >= srv.accept_pause_until;
	struct epoll_event ev;
	int i;

	if (want == srv.accepting)
		return;
	for (i = 0; i < srv.nlfd; i++) {
		if (srv.lfd[i] < 0)
			continue;
		ev.events = want ? EPOLLIN : 0;
		ev.data.u64 = ev_key(TAG_LISTENER, i);
		if (epoll_ctl(srv.ep, EPOLL_CTL_MOD, srv.lfd[i], &ev) < 0)
			fatal("epoll_ctl listener fd %d", srv.lfd[i]);
	}
	srv.accepting = want;
}

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_un un;
	struct sockaddr_storage ss;
};

static void sock_name(int fd, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	union sockaddr_any a;
	socklen_t alen = sizeof(a);

	if (getsockname(fd, &a.sa, &alen) < 0)
		a.sa.sa_family = AF_UNSPEC;
	switch (a.sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &a.in.sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(a.in.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &a.in6.sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(a.in6.sin6_port));
		break;
	case AF_UNIX:
		snprintf(out, len, "unix fd %d", fd);
		break;
	default:
		snprintf(out, len, "fd %d", fd);
		break;
	}
}

/* Take the listening sockets systemd (or baton acting like it) passed us. */
static int listen_fds_inherited(void)
{
	const char *pid_s = getenv("LISTEN_PID");
	const char *fds_s = getenv("LISTEN_FDS");
	long pid, n = 0;
	char *end;
	int fd;

	if (pid_s && fds_s) {
		errno = 0;
		pid = strtol(pid_s, &end, 10);
		if (errno || end == pid_s || *end || pid != srv.pid) {
			log_info("ignoring LISTEN_FDS: LISTEN_PID=%s is not this process", pid_s);
		} else {
			errno = 0;
			n = strtol(fds_s, &end, 10);
			if (errno || end == fds_s || *end || n < 1 || n > MAX_LISTENERS)
				fatal_config("LISTEN_FDS=%s: expected 1 to %d listening fds", fds_s,
					     MAX_LISTENERS);
		}
	}
	/* the fds are ours now: nothing we might start must take them for its own */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");

	for (fd = 3; fd < 3 + n; fd++) {
		int fl = fcntl(fd, F_GETFL), acc = 0;
		socklen_t alen = sizeof(acc);

		if (fl < 0)
			fatal_config("LISTEN_FDS=%ld but fd %d is not open", n, fd);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0 || !acc)
			fatal_config("fd %d from LISTEN_FDS is not a listening socket", fd);
		if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			fatal("fcntl fd %d from LISTEN_FDS", fd);
		srv.lfd[srv.nlfd++] = fd;
	}
	return n;
}

static void listen_on(const char *spec)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_s, *sep;
	union sockaddr_any a;
	socklen_t alen;
	unsigned long port;
	char *end;
	int fd, one = 1;
	size_t hlen;

	memset(&a, 0, sizeof(a));
	if (spec[0] == '[') {
		sep = strchr(spec, ']');
		if (!sep || sep[1] != ':')
			goto bad;
		hlen = sep - spec - 1;
		port_s = sep + 2;
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
			goto bad;
		a.in6.sin6_family = AF_INET6;
		alen = sizeof(a.in6);
	} else {
		sep = strchr(spec, ':');
		if (!sep || strchr(sep + 1, ':'))
			goto bad;
		hlen = sep - spec;
		port_s = sep + 1;
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, spec, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
			goto bad;
		a.in.sin_family = AF_INET;
		alen = sizeof(a.in);
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (port_s[0] < '0' || port_s[0] > '9' || *end || errno || port > 65535)
		goto bad;
	/* sin_port and sin6_port sit at the same offset */
	a.in.sin_port = htons(port);

	fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket for --listen %s", spec);
	/* a restart must not wait for the previous run's TIME_WAIT sockets */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		fatal("SO_REUSEADDR for --listen %s", spec);
	/* so that [::]:P and 0.0.0.0:P can both be given */
	if (a.sa.sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		fatal("IPV6_V6ONLY for --listen %s", spec);
	if (bind(fd, &a.sa, alen) < 0)
		fatal("cannot bind --listen %s", spec);
	if (listen(fd, 4096) < 0)
		fatal("cannot listen on --listen %s", spec);
	srv.lfd[srv.nlfd++] = fd;
	return;
bad:
	usage_error("--listen '%s': expected IPv4:PORT (127.0.0.1:8080) or [IPv6]:PORT "
		    "([::1]:8080)",
		    spec);
}

static void setup_listeners(void)
{
	char names[512], one[INET6_ADDRSTRLEN + 16];
	struct epoll_event ev;
	size_t used = 0;
	int i;

	if (listen_fds_inherited()) {
		if (srv.nlisten_spec)
			log_info("socket-activated: ignoring --listen");
	} else {
		for (i = 0; i < srv.nlisten_spec; i++)
			listen_on(srv.listen_spec[i]);
	}
	if (srv.metrics_listen && srv.nlfd < MAX_LISTENERS)
		listen_on(srv.metrics_listen);
	if (!srv.nlfd) {
		fprintf(stderr, "demo-server: no listening socket: pass --listen ADDR:PORT "
				"or start it with systemd socket activation (LISTEN_FDS)\n");
		exit(2);
	}

	names[0] = '\0';
	for (i = 0; i < srv.nlfd; i++) {
		ev.events = 0; /* armed by listeners_update() once ready */
		ev.data.u64 = ev_key(TAG_LISTENER, i);
		if (epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.lfd[i], &ev) < 0)
			fatal("epoll_ctl add listener fd %d", srv.lfd[i]);
		sock_name(srv.lfd[i], one, sizeof(one));
		if (used < sizeof(names))
			used += snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
					 one);
	}
	log_info("started with %d listener%s: %s", srv.nlfd, srv.nlfd == 1 ? "" : "s", names);
}

/* One fd per connection: the usual soft limit of 1024 would cap us far below MAX_CONNS. */
static void raise_nofile(void)
{
	rlim_t want = MAX_CONNS + MAX_LISTENERS + 16;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("setrlimit RLIMIT_NOFILE");
}

/* ---- readiness */

static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char msg[64];
	size_t plen;
	int fd, n;

	if (!path || !*path) {
		log_info("ready%s (NOTIFY_SOCKET not set)",
			 srv.no_accept ? ", not accepting (--no-accept)" : "");
		return;
	}
	plen = strlen(path);
	if (plen >= sizeof(sa.sun_path)) {
		log_warnx("NOTIFY_SOCKET %s: path too long, READY=1 not sent", path);
		goto out;
	}
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */

	n = snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d", (int)srv.pid);
	/*
	 * Blocking with a bound: a unix datagram socket queues few messages
	 * (net.unix.max_dgram_qlen, 10 in a new namespace), so many instances
	 * starting at once can find it full for a moment; a supervisor that
	 * stopped reading must still not hang us for long.
	 */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("NOTIFY_SOCKET: socket, READY=1 not sent");
		goto out;
	}
	{
		struct timeval tv = {.tv_sec = 2};

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   offsetof(struct sockaddr_un, sun_path) + plen) < 0)
		log_warn("NOTIFY_SOCKET %s: READY=1 not sent", path);
	else
		log_info("ready%s, READY=1 sent to %s",
			 srv.no_accept ? ", not accepting (--no-accept)" : "", path);
	close(fd);
out:
	unsetenv("NOTIFY_SOCKET");
}

static void become_ready(void)
{
	if (srv.fail_ready) {
		log_info("exiting 3 without READY=1 (--fail-ready)");
		exit(3);
	}
	srv.ready = true;
	notify_ready();
	if (srv.accept_delay_ms) {
		/* The listeners' queues fill meanwhile: nobody reads them. */
		srv.accept_pause_until = srv.now + (int64_t)srv.accept_delay_ms;
		srv.accept_delayed = true;
		log_info("not accepting for %lu ms (--accept-delay-ms)", srv.accept_delay_ms);
	}
	listeners_update();
}

/* ---- connections */

static int tab_grow(int fd)
{
	size_t n = srv.tabsz ? srv.tabsz : 1024;
	struct conn **t;

	while (n <= (size_t)fd)
		n *= 2;
	t = realloc(srv.tab, n * sizeof(*t));
	if (!t)
		return -1;
	memset(t + srv.tabsz, 0, (n - srv.tabsz) * sizeof(*t));
	srv.tab = t;
	srv.tabsz = n;
	return 0;
}

static uint64_t conn_key(const struct conn *c)
{
	return ev_key(c->tag, c->fd);
}

static int conn_new(int fd)
{
	struct epoll_event ev;
	struct conn *c;
	int one = 1;

	if ((size_t)fd >= srv.tabsz && tab_grow(fd) < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->fd = fd;
	c->tag = srv.next_tag;
	srv.next_tag = srv.next_tag == UINT32_MAX ? TAG_CONN_MIN : srv.next_tag + 1;
	c->state = C_HEAD;
	c->events = EPOLLIN;
	srv.accepted++;
	c->doomed = srv.reset_every && srv.accepted % srv.reset_every == 0;
	ev.events = EPOLLIN;
	ev.data.u64 = conn_key(c);
	if (epoll_ctl(srv.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		return -1;
	}
	/*
	 * A 100 Continue and the answer after it are two small writes; Nagle
	 * would hold the second until the client's delayed ACK.  Fails
	 * harmlessly on AF_UNIX listeners.
	 */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	srv.tab[fd] = c;
	srv.nconns++;
	tq_add(&srv.idle, c, srv.now);
	if (srv.nconns >= MAX_CONNS)
		listeners_update();
	return 0;
}

/* The struct stays valid (fd -1) until reap(), so callers up the stack can check c->fd. */
static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	tq_del(c);
	/* close() also removes the fd from the epoll set: it is never duplicated */
	close(c->fd);
	srv.tab[c->fd] = NULL;
	c->fd = -1;
	buf_put(c->rbuf);
	buf_put(c->wbuf);
	c->rbuf = c->wbuf = NULL;
	c->next = srv.dead;
	srv.dead = c;
	if (srv.nconns-- == MAX_CONNS)
		listeners_update();
}

/* --reset-every: close with SO_LINGER {1, 0}, so the kernel sends RST instead of FIN. */
static void conn_abort(struct conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		log_warn("SO_LINGER on fd %d, closing it without", c->fd);
	srv.resets++;
	conn_close(c);
}

static void reap(void)
{
	struct conn *c;

	while ((c = srv.dead)) {
		srv.dead = c->next;
		free(c);
	}
}

static void conn_events(struct conn *c)
{
	struct epoll_event ev;
	uint32_t want = 0;

	switch (c->state) {
	case C_HEAD:
	case C_BODY:
		if (!c->eof && c->rlen - c->roff < BUF_SIZE)
			want |= EPOLLIN;
		break;
	case C_LINGER:
		want |= EPOLLIN;
		break;
	case C_DELAY:
	case C_CLOSING:
		break;
	}
	if (c->woff < c->wlen)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.u64 = conn_key(c);
	if (epoll_ctl(srv.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		log_warn("epoll_ctl fd %d", c->fd);
		conn_close(c);
		return;
	}
	c->events = want;
}

static int wbuf_append(struct conn *c, const char *p, size_t n)
{
	if (!c->wbuf && !(c->wbuf = buf_get())) {
		conn_close(c);
		return -1;
	}
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
	return 0;
}

/*
 * GET /metrics: the answers so far by status code, labelled with this
 * version, in Prometheus' text format.
 */
static int respond_metrics(struct conn *c, bool close)
{
	char body[2048], head[300];
	int bl = 0, hl, k, j;

	bl += snprintf(body + bl, sizeof(body) - bl,
		       "# HELP http_requests_total HTTP answers by status code.\n"
		       "# TYPE http_requests_total counter\n");
	/* One series per code (200 and 500 always, so that rate() has both from the start). */
	for (k = 0; k < ST_COUNT; k++) {
		int code = status_line[k].code;
		unsigned long long n = 0;

		for (j = 0; j < k && status_line[j].code != code; j++)
			;
		if (j < k)
			continue; /* counted with the first status of this code */
		for (j = k; j < ST_COUNT; j++)
			if (status_line[j].code == code)
				n += srv.by_status[j];
		if (!n && code != 200 && code != 500)
			continue;
		bl += snprintf(body + bl, sizeof(body) - bl,
			       "http_requests_total{version=\"%s\",code=\"%d\"} %llu\n",
			       srv.version, code, n);
	}
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		      "Content-Length: %d\r\nConnection: %s\r\n\r\n",
		      bl, close ? "close" : "keep-alive");
	if (wbuf_append(c, head, hl) < 0 || (!c->head && wbuf_append(c, body, bl) < 0))
		return -1;
	return 0;
}

/* Queue the answer to the current request: 0, or -1 if the connection had to be closed. */
static int respond(struct conn *c)
{
	bool close = c->close || srv.draining;
	/* --keepalive-forever: it closes, but never says so (the race baton's drain-http ends). */
	const struct resp *r =
	    &srv.resp[c->status][c->close || (srv.draining && !srv.keepalive_forever)];

	if (c->status == ST_METRICS) {
		if (respond_metrics(c, c->close || (srv.draining && !srv.keepalive_forever)) < 0)
			return -1;
	} else if (wbuf_append(c, r->buf, c->head ? r->head_len : r->len) < 0) {
		return -1;
	}
	srv.by_status[c->status]++;
	srv.requests++;
	if (close) {
		/* whatever the client pipelined behind this request goes unanswered */
		c->roff = c->rlen;
		c->state = C_CLOSING;
	} else {
		c->state = C_HEAD;
	}
	tq_add(&srv.idle, c, srv.now);
	return 0;
}

/* For a request we cannot or will not frame: answer and close. */
static void reject(struct conn *c, enum status st)
{
	c->status = st;
	c->close = true;
	respond(c);
}

static bool is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
		return true;
	return ch && strchr("!#$%&'*+-.^_`|~", ch);
}

static bool is_ctl(unsigned char ch)
{
	return ch < ' ' || ch == 0x7f;
}

/*
 * Offset just past the blank line ending the head in p[0..n), or 0 if it
 * is not there yet.  Bare LF line ends are accepted as well as CRLF.
 */
static size_t find_head_end(const char *p, size_t n)
{
	const char *nl, *end = p + n, *s = p;

	while ((nl = memchr(s, '\n', end - s))) {
		s = nl + 1;
		if (s < end && *s == '\n')
			return s + 1 - p;
		if (s + 1 < end && s[0] == '\r' && s[1] == '\n')
			return s + 2 - p;
	}
	return 0;
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(p, name, n);
}

/* Does the comma-separated list v[0..n) hold token tok? */
static bool has_token(const char *v, size_t n, const char *tok)
{
	const char *end = v + n, *s, *e, *a, *b;

	for (s = v; s < end; s = e + 1) {
		e = memchr(s, ',', end - s);
		if (!e)
			e = end;
		a = s;
		b = e;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (name_is(a, b - a, tok))
			return true;
	}
	return false;
}

/* Is the request-target t[0..n) /healthz, with or without a query string? */
static bool is_healthz(const char *t, size_t n)
{
	static const char path[] = "/healthz";
	size_t plen = sizeof(path) - 1;

	return n >= plen && !memcmp(t, path, plen) && (n == plen || t[plen] == '?');
}

struct request {
	bool head;    /* HEAD: the answer carries no body */
	bool healthz; /* the target is /healthz */
	bool metrics; /* the target is /metrics */
	bool close;   /* the client asked to close after the answer */
	bool expect_continue;
	uint64_t body_len;
};

/* Parse a complete head p[0..len); the status says how to answer it. */
static enum status parse_head(const char *p, size_t len, struct request *rq)
{
	const char *end = p + len, *line, *le, *m, *t, *v;
	bool http10, keep_alive = false, close = false, te = false, expect = false;
	bool have_cl = false, get;
	uint64_t cl = 0;

	memset(rq, 0, sizeof(*rq));

	/* request-line = method SP request-target SP HTTP-version */
	line = p;
	le = memchr(line, '\n', end - line);
	p = le + 1;
	if (le > line && le[-1] == '\r')
		le--;
	for (m = line; m < le && is_tchar(*m); m++)
		;
	if (m == line || m == le || *m != ' ')
		return ST_400;
	/* methods are case-sensitive (RFC 9110 section 9.1) */
	get = m - line == 3 && !memcmp(line, "GET", 3);
	rq->head = m - line == 4 && !memcmp(line, "HEAD", 4);
	for (t = m + 1; t < le && *t != ' '; t++)
		if (is_ctl(*t))
			return ST_400;
	if (t == m + 1 || t == le)
		return ST_400;
	rq->healthz = is_healthz(m + 1, t - (m + 1));
	rq->metrics = t - (m + 1) == 8 && !memcmp(m + 1, "/metrics", 8);
	v = t + 1;
	if (le - v != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return ST_400;
	if (v[5] != '1')
		return ST_505;
	http10 = v[7] == '0';

	while (p < end) {
		const char *n, *ve, *c;

		line = p;
		le = memchr(line, '\n', end - line);
		p = le + 1;
		if (le > line && le[-1] == '\r')
			le--;
		if (le == line)
			break; /* the blank line */
		/* field-name ":" OWS value OWS; obs-fold and space before ':' are refused */
		for (n = line; n < le && is_tchar(*n); n++)
			;
		if (n == line || n == le || *n != ':')
			return ST_400;
		for (v = n + 1; v < le && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = le; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (c = v; c < ve; c++)
			if (is_ctl(*c) && *c != '\t')
				return ST_400;

		if (name_is(line, n - line, "content-length")) {
			uint64_t val = 0;

			if (v == ve)
				return ST_400;
			for (c = v; c < ve; c++) {
				if (*c < '0' || *c > '9')
					return ST_400;
				/* saturate: anything past BODY_MAX is refused the same way */
				if (val <= BODY_MAX)
					val = val * 10 + (*c - '0');
			}
			/* differing lengths leave the framing ambiguous (request smuggling) */
			if (have_cl && val != cl)
				return ST_400;
			have_cl = true;
			cl = val;
		} else if (name_is(line, n - line, "transfer-encoding")) {
			te = true;
		} else if (name_is(line, n - line, "connection")) {
			close |= has_token(v, ve - v, "close");
			keep_alive |= has_token(v, ve - v, "keep-alive");
		} else if (name_is(line, n - line, "expect")) {
			expect = name_is(v, ve - v, "100-continue");
		}
	}

	/*
	 * Chunked bodies are not worth parsing here: without them we cannot
	 * find where the next request starts, so say so and close.
	 */
	if (te)
		return have_cl ? ST_400 : ST_501;
	if (cl > BODY_MAX)
		return ST_413;
	rq->close = close || (http10 && !keep_alive);
	rq->body_len = cl;
	rq->expect_continue = expect && !http10;
	if (get || rq->head)
		return ST_200;
	return ST_405;
}

/*
 * Take one request head from the read buffer: 1 if the connection moved to
 * another state, 0 if more input is needed.
 */
static int parse_request(struct conn *c)
{
	struct request rq;
	enum status st;
	size_t avail, len;
	const char *p;

	/* empty lines before a request are allowed (RFC 9112 section 2.2) */
	while (c->roff < c->rlen && (c->rbuf[c->roff] == '\r' || c->rbuf[c->roff] == '\n'))
		c->roff++;
	p = c->rbuf + c->roff;
	avail = c->rlen - c->roff;
	if (!avail)
		return 0;
	len = find_head_end(p, avail < HEAD_MAX ? avail : HEAD_MAX);
	if (!len && avail < HEAD_MAX)
		return 0;
	if (c->doomed) {
		conn_abort(c);
		return 1;
	}
	if (!len) {
		reject(c, ST_431);
		return 1;
	}

	st = parse_head(p, len, &rq);
	c->roff += len;
	c->head = rq.head;
	if (st != ST_200 && st != ST_405) {
		reject(c, st);
		return 1;
	}
	if (st == ST_200 && rq.healthz)
		st = srv.now >= srv.unhealthy_at ? ST_UNHEALTHY : ST_HEALTHY;
	else if (st == ST_200 && rq.metrics)
		st = ST_METRICS;
	else if (st == ST_200 && srv.error_bp && (srv.error_acc += srv.error_bp) >= 10000) {
		srv.error_acc -= 10000;
		st = ST_500;
	}
	c->status = st;
	c->close = rq.close;
	c->body_left = rq.body_len;
	if (rq.expect_continue && rq.body_len &&
	    wbuf_append(c, continue_100, sizeof(continue_100) - 1) < 0)
		return 1;
	c->state = C_BODY;
	return 1;
}

static void conn_finish(struct conn *c)
{
	/* the peer already closed its side: nothing can race with our close */
	if (c->eof) {
		conn_close(c);
		return;
	}
	/*
	 * close() with unread input makes the kernel send RST, which can
	 * destroy the response still on its way to the client.  Send FIN
	 * instead and discard what the client still sends until it closes.
	 */
	if (shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	buf_put(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->roff = 0;
	c->state = C_LINGER;
	tq_add(&srv.linger, c, srv.now + LINGER_MS);
}

static void conn_flush(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c);
			return;
		}
		c->woff += n;
		conn_touch(c);
	}
	buf_put(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
	if (c->state == C_CLOSING)
		conn_finish(c);
}

/* Answer every complete request in the read buffer, then write out and re-arm. */
static void conn_process(struct conn *c)
{
	bool stalled = false; /* waiting for bytes the peer has not sent yet */

	while (c->fd >= 0) {
		if (c->state == C_BODY) {
			size_t n = c->rlen - c->roff;

			if (n > c->body_left)
				n = c->body_left;
			c->roff += n;
			c->body_left -= n;
			if (c->body_left) {
				stalled = true;
				break;
			}
			if (srv.delay_ms) {
				c->state = C_DELAY;
				tq_add(&srv.delay, c, srv.now + (int64_t)srv.delay_ms);
				break;
			}
			respond(c);
			continue;
		}
		if (c->state != C_HEAD)
			break;
		/* pipelined requests wait until the client reads what it has */
		if (c->wlen + WBUF_RESERVE > BUF_SIZE)
			break;
		if (!parse_request(c)) {
			stalled = true;
			break;
		}
	}
	if (c->fd < 0)
		return;
	if (c->eof && stalled) {
		/* the client stopped sending mid-request: answer what was complete, then close */
		if (c->woff == c->wlen) {
			conn_close(c);
			return;
		}
		c->state = C_CLOSING;
	}
	if (c->rbuf && c->roff == c->rlen) {
		buf_put(c->rbuf);
		c->rbuf = NULL;
		c->rlen = c->roff = 0;
	}
	conn_flush(c);
	if (c->fd >= 0)
		conn_events(c);
}

/* false if the connection was closed */
static bool conn_read(struct conn *c)
{
	ssize_t n;

	if (!c->rbuf) {
		c->rbuf = buf_get();
		if (!c->rbuf) {
			conn_close(c);
			return false;
		}
	} else if (c->roff) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->rlen == BUF_SIZE)
		return true; /* full: a zero-length read would look like EOF */
	n = recv(c->fd, c->rbuf + c->rlen, BUF_SIZE - c->rlen, 0);
	if (n > 0) {
		c->rlen += n;
		conn_touch(c);
		return true;
	}
	if (n == 0) {
		c->eof = true;
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return true;
	conn_close(c);
	return false;
}

static void linger_read(struct conn *c)
{
	static char sink[BUF_SIZE];
	int i;

	for (i = 0; i < 8; i++) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), 0);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_close(c);
		return;
	}
}

static void on_conn(struct conn *c, uint32_t ev)
{
	/* reset, or both directions shut: nothing more can be delivered */
	if (ev & (EPOLLERR | EPOLLHUP)) {
		conn_close(c);
		return;
	}
	if (ev & EPOLLIN) {
		if (c->state == C_LINGER) {
			linger_read(c);
			return;
		}
		if ((c->state == C_HEAD || c->state == C_BODY) && !conn_read(c))
			return;
	}
	conn_process(c);
}

/* ---- accepting */

/*
 * Errors that belong to one connection rather than to the listener: Linux
 * reports pending network errors of the new socket through accept(2).
 */
static bool accept_retryable(int err)
{
	switch (err) {
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

static int accept_conn(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return -1;
	if (conn_new(fd) < 0) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static void on_listener(int idx)
{
	int i, lfd = idx < srv.nlfd ? srv.lfd[idx] : -1;

	for (i = 0; i < ACCEPT_BATCH && lfd >= 0 && srv.accepting; i++) {
		if (!accept_conn(lfd) || accept_retryable(errno))
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINVAL) {
			/* another holder of the socket shut it down: it will never accept again */
			log_warn("listener fd %d stopped listening, closing it", lfd);
			close(lfd);
			srv.lfd[idx] = -1;
			return;
		}
		/*
		 * Out of fds or memory.  The listener stays readable, so pause
		 * it rather than spin; warn at most every 10 s.
		 */
		if (!srv.accept_warned || srv.now - srv.accept_warned >= 10000) {
			log_warn("accept4, pausing accepts for %d ms", ACCEPT_PAUSE_MS);
			srv.accept_warned = srv.now;
		}
		srv.accept_pause_until = srv.now + ACCEPT_PAUSE_MS;
		listeners_update();
		return;
	}
}

/*
 * Called after SIGTERM whenever no connection is open.  Whatever the
 * kernel already queued on our listeners is accepted before they are
 * closed, so those clients are answered rather than reset.  True when
 * there is nothing left to serve.
 */
static bool drain_done(void)
{
	unsigned int queued = 0;
	int i;

	if (srv.listeners_closed)
		return true;
	for (i = 0; i < srv.nlfd; i++) {
		if (srv.lfd[i] < 0)
			continue;
		while (!srv.no_accept) {
			if (!accept_conn(srv.lfd[i]))
				queued++;
			else if (!accept_retryable(errno))
				break;
		}
		close(srv.lfd[i]);
		srv.lfd[i] = -1;
	}
	srv.listeners_closed = true;
	srv.accepting = false;
	log_info("listeners closed, %u queued connection%s to serve", queued,
		 queued == 1 ? "" : "s");
	return srv.nconns == 0;
}

/* ---- signals and the loop */

static void on_signal(void)
{
	struct signalfd_siginfo si;

	while (read(srv.sigfd, &si, sizeof(si)) == sizeof(si)) {
		const char *name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";

		switch (si.ssi_signo) {
		case SIGQUIT:
			log_info("SIGQUIT received with %u open connection%s, exiting now",
				 srv.nconns, srv.nconns == 1 ? "" : "s");
			exit(0);
		case SIGTERM:
		case SIGINT:
			if (srv.draining)
				break;
			if (srv.workers_ignore_term && srv.workers) {
				log_info("%s ignored (--workers-ignore-term)", name);
				break;
			}
			if (!srv.ready) {
				log_info("%s received before ready, exiting", name);
				exit(0);
			}
			srv.draining = true;
			srv.drain_start = srv.now;
			log_info("%s received with %u open connection%s, draining", name,
				 srv.nconns, srv.nconns == 1 ? "" : "s");
			break;
		}
	}
}

static void run_timers(void)
{
	struct conn *c;

	while ((c = srv.delay.head) && c->t <= srv.now) {
		if (respond(c) < 0)
			continue;
		conn_process(c);
	}
	while ((c = srv.linger.head) && c->t <= srv.now)
		conn_close(c);
	while ((c = srv.idle.head) && idle_deadline(c) <= srv.now)
		conn_close(c);
}

static int next_timeout(void)
{
	int64_t next = INT64_MAX, d;

	if (!srv.ready)
		next = srv.ready_at;
	if (srv.exit_at < next)
		next = srv.exit_at;
	if (srv.accept_pause_until && srv.accept_pause_until < next)
		next = srv.accept_pause_until;
	if (srv.delay.head && srv.delay.head->t < next)
		next = srv.delay.head->t;
	if (srv.linger.head && srv.linger.head->t < next)
		next = srv.linger.head->t;
	if (srv.idle.head && idle_deadline(srv.idle.head) < next)
		next = idle_deadline(srv.idle.head);
	if (next == INT64_MAX)
		return -1;
	d = next - mono_ms();
	return d < 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
}

/* ---- pre-fork mode (--workers) */

/* --worker-daemon: a grandchild in its own session, detached from this worker. */
static void spawn_daemon(void)
{
	sigset_t none;
	pid_t p = fork();

	if (p < 0) {
		log_warn("fork (--worker-daemon)");
		return;
	}
	if (p > 0) {
		waitpid(p, NULL, 0);
		return;
	}
	setsid();
	if (fork() != 0)
		_exit(0);
	/* The grandchild: reparented to init, in no group of ours; holds what it inherited. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_IGN);
	for (;;)
		pause();
}

/*
 * The master: fork the workers (each takes the inherited sockets as its
 * own), close its copies, say READY=1, then pass SIGTERM on and wait for
 * them (or, --master-no-wait, leave at once).  Returns only in a worker.
 */
static void prefork(void)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	pid_t workers[64];
	sigset_t mask;
	char pid_env[32];
	unsigned long k;
	int nfds, fd, sfd, left;

	if (!pid_s || !fds_s || atol(pid_s) != (long)srv.pid || (nfds = atoi(fds_s)) < 1)
		usage_error("--workers needs socket activation (LISTEN_FDS for this process)");
	for (k = 0; k < srv.workers; k++) {
		pid_t p = fork();

		if (p < 0)
			fatal("fork (--workers)");
		if (p == 0) {
			srv.pid = getpid();
			snprintf(pid_env, sizeof(pid_env), "%d", (int)srv.pid);
			setenv("LISTEN_PID", pid_env, 1);
			unsetenv("NOTIFY_SOCKET");
			snprintf(log_prefix, sizeof(log_prefix),
				 "demo-server[%d] v=%s i=%s w=%lu: ", (int)srv.pid, srv.version,
				 srv.instance, k);
			if (srv.worker_daemon)
				spawn_daemon();
			return;
		}
		workers[k] = p;
	}
	for (fd = 3; fd < 3 + nfds; fd++)
		close(fd);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fatal("signalfd");
	log_info("master: %lu worker(s) started", srv.workers);
	notify_ready();
	left = (int)srv.workers;
	for (;;) {
		struct signalfd_siginfo si;
		pid_t p;

		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD) {
			while ((p = waitpid(-1, NULL, WNOHANG)) > 0) {
				for (k = 0; k < srv.workers; k++)
					if (workers[k] == p) {
						workers[k] = 0;
						left--;
					}
			}
			if (!left) {
				log_info("master: no worker left, exiting");
				exit(srv.draining ? 0 : 3);
			}
			continue;
		}
		log_info("master: signal %d, passing it to %d worker(s)%s", (int)si.ssi_signo, left,
			 srv.master_no_wait ? " and exiting (--master-no-wait)" : "");
		srv.draining = true;
		for (k = 0; k < srv.workers; k++)
			if (workers[k])
				kill(workers[k], (int)si.ssi_signo);
		if (srv.master_no_wait)
			exit(0);
	}
}

int main(int argc, char **argv)
{
	struct epoll_event evs[EVENTS_MAX], ev;
	sigset_t mask;
	int i, n;

	/* from the first instruction on, a SIGTERM is queued for the loop instead of killing us */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	srv.start = mono_ms();

	parse_args(argc, argv);
	setup_identity();
	if (srv.workers)
		prefork();
	build_responses();
	srv.unhealthy_at =
	    srv.unhealthy_after_ms < 0 ? INT64_MAX : srv.start + srv.unhealthy_after_ms;
	srv.exit_at = srv.exit_after_ms < 0 ? INT64_MAX : srv.start + srv.exit_after_ms;

	srv.ep = epoll_create1(EPOLL_CLOEXEC);
	if (srv.ep < 0)
		fatal("epoll_create1");
	srv.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv.sigfd < 0)
		fatal("signalfd");
	ev.events = EPOLLIN;
	ev.data.u64 = ev_key(TAG_SIGNAL, 0);
	if (epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.sigfd, &ev) < 0)
		fatal("epoll_ctl signalfd");

	setup_listeners();
	raise_nofile();

	srv.now = mono_ms();
	srv.ready_at = srv.now + (int64_t)srv.ready_delay_ms;
	if (!srv.ready_delay_ms)
		become_ready();

	for (;;) {
		n = epoll_wait(srv.ep, evs, EVENTS_MAX, next_timeout());
		if (n < 0) {
			if (errno != EINTR)
				fatal("epoll_wait");
			n = 0;
		}
		srv.now = mono_ms();
		if (srv.now >= srv.exit_at) {
			/* a crash: whatever is open is closed by the kernel, unanswered */
			log_info("exiting 3 (--exit-after-ms %ld) with %u open connection%s",
				 srv.exit_after_ms, srv.nconns, srv.nconns == 1 ? "" : "s");
			exit(3);
		}
		date_refresh();

		for (i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u64 >> 32;
			uint32_t id = (uint32_t)evs[i].data.u64;
			struct conn *c;

			if (tag == TAG_SIGNAL) {
				on_signal();
			} else if (tag == TAG_LISTENER) {
				on_listener(id);
			} else {
				c = id < srv.tabsz ? srv.tab[id] : NULL;
				if (c && c->tag == tag)
					on_conn(c, evs[i].events);
			}
		}

		if (!srv.ready && srv.now >= srv.ready_at)
			become_ready();
		if (srv.accept_pause_until && srv.now >= srv.accept_pause_until) {
			srv.accept_pause_until = 0;
			if (srv.accept_delayed)
				log_info("accepting now, %lu ms after READY=1 (--accept-delay-ms)",
					 srv.accept_delay_ms);
			srv.accept_delayed = false;
			listeners_update();
		}
		run_timers();
		reap();
		if (srv.draining && !srv.nconns && drain_done())
			break;
	}
	if (srv.reset_every)
		log_info("exiting after %llu request%s and %llu reset%s (--reset-every)",
			 srv.requests, srv.requests == 1 ? "" : "s", srv.resets,
			 srv.resets == 1 ? "" : "s");
	else
		log_info("exiting after %llu request%s", srv.requests,
			 srv.requests == 1 ? "" : "s");
	return 0;
}
