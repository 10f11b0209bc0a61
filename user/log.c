/* SPDX-License-Identifier: MIT */
/*
 * Logging in relayd's shape: one line per event on stderr, with a level
 * prefix the journal understands (sd-daemon's <N>).  log_warn adds
 * strerror(errno); the x variants do not.  When stderr is the journal and
 * the agent asked (log_journal), each line goes to the journal's own socket
 * instead, with its fields (journal.c, the sink), and to stderr only when the
 * journal does not take it at once.  Once the agent's loop runs, a line for
 * stderr is handed to a writer thread (logq.c, log_set_stderr) instead of
 * written here: a stderr nobody reads must not stop the loop.  Before that
 * (start-up, its errors) and in the CLI, lines are written at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "log.h"

int log_verbose;
static const char *log_prog = "baton";
static int log_prefix;		/* journald's <N> level prefix, only when stderr is the journal */
static log_sink_fn sink;	/* journal.c's native socket, when on */
static log_stderr_fn to_stderr; /* logq.c's writer, once the loop runs */
static void (*stderr_done)(void);

/* Whether stderr is the journal's stream: JOURNAL_STREAM names its device and inode. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	return js && sscanf(js, "%lu:%lu", &dev, &ino) == 2 && !fstat(2, &st) && st.st_dev == dev &&
	       st.st_ino == ino;
}

void log_init(const char *progname, int verbose)
{
	log_prog = progname;
	log_verbose = verbose;
	log_prefix = stderr_is_journal();
}

bool log_stderr_is_journal(void)
{
	return log_prefix;
}

void log_set_sink(log_sink_fn fn)
{
	sink = fn;
}

void log_set_stderr(log_stderr_fn push, void (*done)(void))
{
	to_stderr = push;
	stderr_done = done;
}

/* One whole line (with its '\n') to stderr: the writer's queue, or at once. */
static void emit(const char *line, size_t len)
{
	if (to_stderr && to_stderr(line, len) != -ENOTCONN)
		return; /* queued, or dropped and counted */
	fwrite(line, 1, len, stderr);
}

__attribute__((format(printf, 1, 2))) static void emitf(const char *fmt, ...)
{
	char line[1400];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) { /* cut: still one line */
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	emit(line, (size_t)n);
}

static void vlog(int prio, const char *const *fields, int nfields, const char *fmt, va_list ap,
		 int with_errno)
{
	static bool fell_back; /* said once per run of lines the journal did not take */
	int saved = errno, r;
	char buf[1024], msg[1200];

	char pfx[8] = "";

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (sink) {
		if (with_errno)
			snprintf(msg, sizeof(msg), "%s: %s", buf, strerror(saved));
		r = sink(prio, log_prog, with_errno ? msg : buf, fields, nfields);
		if (!r) {
			fell_back = false;
			errno = saved;
			return;
		}
		if (!fell_back)
			emitf("<4>%s: the journal's socket did not take a line (%s): lines go "
			      "to stderr until it does\n",
			      log_prog, strerror(-r));
		fell_back = true;
	}
	if (log_prefix)
		snprintf(pfx, sizeof(pfx), "<%d>", prio);
	if (with_errno)
		emitf("%s%s: %s: %s\n", pfx, log_prog, buf, strerror(saved));
	else
		emitf("%s%s: %s\n", pfx, log_prog, buf);
	errno = saved;
}

void log_fields(int prio, const char *const *fields, int n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, fields, n, fmt, ap, 0);
	va_end(ap);
}

#define LOGFN(name, prio, with_errno, cond)                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		if (!(cond))                                                                       \
			return;                                                                    \
		va_start(ap, fmt);                                                                 \
		vlog(prio, NULL, 0, fmt, ap, with_errno);                                          \
		va_end(ap);                                                                        \
	}

LOGFN(log_warn, 4, 1, 1)
LOGFN(log_warnx, 4, 0, 1)
LOGFN(log_info, 6, 0, 1)
LOGFN(log_debug, 7, 0, log_verbose > 0)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(2, NULL, 0, fmt, ap, 1);
	va_end(ap);
	if (stderr_done)
		stderr_done();
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(2, NULL, 0, fmt, ap, 0);
	va_end(ap);
	if (stderr_done)
		stderr_done();
	exit(1);
}

static bool libbpf_quiet;

void log_libbpf_quiet(bool on)
{
	libbpf_quiet = on;
}

int log_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && libbpf_quiet && log_verbose < 1)
		return 0;
	if (level == LIBBPF_DEBUG && log_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && log_verbose < 1)
		return 0;
	char msg[1024];
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	if (len && msg[len - 1] == '\n')
		msg[len - 1] = 0;
	emitf("%s%s: libbpf: %s\n", log_prefix ? "<7>" : "", log_prog, msg);
	return (int)len;
}
