/* SPDX-License-Identifier: MIT */
/*
 * Logging in relayd's shape: one line per event on stderr, with a level
 * prefix the journal understands (sd-daemon's <N>).  log_warn adds
 * strerror(errno); the x variants do not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "log.h"

int log_verbose;
static const char *log_prog = "baton";
static int log_prefix; /* journald's <N> level prefix, only when stderr is the journal */

void log_init(const char *progname, int verbose)
{
	log_prog = progname;
	log_verbose = verbose;
	log_prefix = getenv("JOURNAL_STREAM") != NULL;
}

static void vlog(int prio, const char *fmt, va_list ap, int with_errno)
{
	int saved = errno;
	char buf[1024];

	char pfx[8] = "";

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_prefix)
		snprintf(pfx, sizeof(pfx), "<%d>", prio);
	if (with_errno)
		fprintf(stderr, "%s%s: %s: %s\n", pfx, log_prog, buf, strerror(saved));
	else
		fprintf(stderr, "%s%s: %s\n", pfx, log_prog, buf);
	errno = saved;
}

#define LOGFN(name, prio, with_errno, cond)                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		if (!(cond))                                                                       \
			return;                                                                    \
		va_start(ap, fmt);                                                                 \
		vlog(prio, fmt, ap, with_errno);                                                   \
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
	vlog(2, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(2, fmt, ap, 0);
	va_end(ap);
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
	fprintf(stderr, "%s%s: libbpf: ", log_prefix ? "<7>" : "", log_prog);
	return vfprintf(stderr, fmt, ap);
}
