/* SPDX-License-Identifier: MIT */
/*
 * baton's configuration file: an INI file read with inih, one [agent]
 * section and one [service NAME] section per service.  See docs/config.md.
 *
 * inih hands the handler only (section, name, value), so the file is fed to
 * ini_parse_stream() through our own reader, one physical line per call.
 * The reader therefore always knows the line inih is working on, sees
 * section headers (inih reports no event for an empty section), and can stop
 * the parse at the first error by returning NULL.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* steer.h, which config.h includes, expects __u32 and friends. */
#include <linux/types.h>

#include "config.h"

#define DEFAULT_CONTROL "/run/baton/control.sock"
#define DEFAULT_BPF_DIR "/sys/fs/bpf/baton"
#define DEFAULT_RUN_DIR "/run/baton"

#define DURATION_MAX_MS (24u * 60 * 60 * 1000)

/* How much of a user's value is echoed in a message: enough to recognise it,
 * short enough that the hint after it still fits in CONF_ERR_LEN. */
#define ECHO_MAX 48

#ifndef __printf
#define __printf(a, b) __attribute__((format(printf, a, b)))
#endif

static void __printf(3, 4) seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- helpers ---------------------------------------------------------- */

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * Decimal digits only: no sign, no spaces, no 0x.  Saturates at max + 1 so
 * that any overflow is reported as out of range rather than wrapping.
 */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!all_digits(s))
		return -1;
	for (; *s; s++) {
		if (v <= max)
			v = v * 10 + (unsigned long)(*s - '0');
	}
	*out = v > max ? max + 1 : v;
	return 0;
}

/*
 * Values reach the parsers from the CLI and the control socket too, and are
 * echoed in one-line errors: refuse control characters (a newline would
 * split the error) before anything else.
 */
static int reject_control_chars(const char *s, char *err, size_t errlen)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			snprintf(err, errlen, "value contains a control character (0x%02x)", *p);
			return -1;
		}
	return 0;
}

int parse_duration_ms(const char *s, unsigned *ms, char *err, size_t errlen)
{
	unsigned long long v = 0, unit;
	const char *p = s;

	if (reject_control_chars(s, err, errlen))
		return -1;
	if (!*s) {
		seterr(err, errlen, "empty duration (use a number with ms, s, m or h, e.g. 10s)");
		return -1;
	}
	if (*s == '-') {
		seterr(err, errlen, "duration \"%.*s\" is negative", ECHO_MAX, s);
		return -1;
	}
	if (*p < '0' || *p > '9')
		goto bad;
	/* Stop growing once past the limit: every unit is at least 1 ms, so
	 * the value is already too long and cannot overflow any more. */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v <= DURATION_MAX_MS)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (!strcmp(p, "ms"))
		unit = 1;
	else if (!strcmp(p, "s") || !*p)
		unit = 1000;
	else if (!strcmp(p, "m"))
		unit = 60 * 1000;
	else if (!strcmp(p, "h"))
		unit = 60 * 60 * 1000;
	else
		goto bad;
	if (v > DURATION_MAX_MS || v * unit > DURATION_MAX_MS) {
		seterr(err, errlen, "duration \"%.*s\" is longer than 24h", ECHO_MAX, s);
		return -1;
	}
	*ms = (unsigned)(v * unit);
	return 0;
bad:
	seterr(err, errlen,
	       "invalid duration \"%.*s\" (use a whole number with ms, s, m or h, e.g. 10s)",
	       ECHO_MAX, s);
	return -1;
}

int parse_listen(const char *s, struct listen_addr *la, char *err, size_t errlen)
{
	struct listen_addr out;
	char host[INET6_ADDRSTRLEN + 1];
	char ntop[INET6_ADDRSTRLEN];
	const char *colon, *port_s;
	unsigned long port;
	size_t hlen;
	int family;

	if (reject_control_chars(s, err, errlen))
		return -1;
	memset(&out, 0, sizeof(out));
	if (!*s) {
		seterr(err, errlen,
		       "empty address (use ADDR:PORT, e.g. 0.0.0.0:8080 or [::]:8080)");
		return -1;
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close) {
			seterr(err, errlen, "\"%.*s\": missing \"]\" after the IPv6 address",
			       ECHO_MAX, s);
			return -1;
		}
		if (close[1] != ':') {
			seterr(err, errlen, "\"%.*s\": missing port (use [ADDR]:PORT)", ECHO_MAX,
			       s);
			return -1;
		}
		family = AF_INET6;
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof(host))
			goto bad_addr;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		port_s = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			seterr(err, errlen, "\"%.*s\": missing port (use ADDR:PORT)", ECHO_MAX, s);
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			seterr(err, errlen,
			       "\"%.*s\": an IPv6 address needs brackets (e.g. [::1]:8080)",
			       ECHO_MAX, s);
			return -1;
		}
		family = AF_INET;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(host))
			goto bad_addr;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		port_s = colon + 1;
	}

	if (!*port_s) {
		seterr(err, errlen, "\"%.*s\": missing port", ECHO_MAX, s);
		return -1;
	}
	if (parse_uint(port_s, 65535, &port) < 0 || port < 1 || port > 65535) {
		seterr(err, errlen, "\"%.*s\": port must be 1..65535, not \"%.*s\"", ECHO_MAX, s,
		       ECHO_MAX, port_s);
		return -1;
	}

	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out.ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			goto bad_addr;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out.len = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, ntop, sizeof(ntop));
		snprintf(out.text, sizeof(out.text), "%s:%lu", ntop, port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out.ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			goto bad_addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out.len = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, ntop, sizeof(ntop));
		snprintf(out.text, sizeof(out.text), "[%s]:%lu", ntop, port);
	}
	*la = out;
	return 0;

bad_addr:
	seterr(err, errlen, "\"%.*s\": not an IP%s address (host names are not accepted)", ECHO_MAX,
	       s, family == AF_INET6 ? "v6" : "v4");
	return -1;
}

/* Names the config accepts for exit-signal: the ones servers act on. */
static const struct {
	const char *name;
	int sig;
} exit_signals[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT},	  {"QUIT", SIGQUIT},   {"HUP", SIGHUP},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}, {"KILL", SIGKILL},
};

int parse_signal(const char *s, int *sig, char *err, size_t errlen)
{
	const char *name = s;
	unsigned long n;
	size_t i;

	if (reject_control_chars(s, err, errlen))
		return -1;
	if (!*s) {
		seterr(err, errlen, "empty signal (use a name such as TERM or a number 1..31)");
		return -1;
	}
	if (all_digits(s)) {
		parse_uint(s, 31, &n);
		if (n < 1 || n > 31) {
			seterr(err, errlen, "signal number must be 1..31, not %.*s", ECHO_MAX, s);
			return -1;
		}
		*sig = (int)n;
		return 0;
	}
	if (!strncasecmp(name, "SIG", 3))
		name += 3;
	for (i = 0; i < sizeof(exit_signals) / sizeof(exit_signals[0]); i++) {
		if (!strcasecmp(name, exit_signals[i].name)) {
			*sig = exit_signals[i].sig;
			return 0;
		}
	}
	seterr(err, errlen,
	       "unknown signal \"%.*s\" (use TERM, INT, QUIT, HUP, USR1, USR2, WINCH, KILL or a "
	       "number 1..31)",
	       ECHO_MAX, s);
	return -1;
}

int parse_service_name(const char *s, char *err, size_t errlen)
{
	size_t len = strlen(s);
	const char *p;

	if (reject_control_chars(s, err, errlen))
		return -1;
	if (!len) {
		seterr(err, errlen, "empty service name");
		return -1;
	}
	if (len >= NAME_MAX_LEN) {
		seterr(err, errlen, "service name \"%.*s\" is longer than %d characters", ECHO_MAX,
		       s, NAME_MAX_LEN - 1);
		return -1;
	}
	if (*s < 'a' || *s > 'z') {
		seterr(err, errlen, "service name \"%s\" must start with a lowercase letter", s);
		return -1;
	}
	for (p = s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			continue;
		seterr(err, errlen, "service name \"%s\" may only contain a-z, 0-9, _ and -", s);
		return -1;
	}
	return 0;
}

void free_argv(char **argv)
{
	if (!argv)
		return;
	for (; *argv; argv++) {
		free(*argv);
		*argv = NULL;
	}
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int split_command(const char *s, char **argv, int max, char *err, size_t errlen)
{
	char *word, *w;
	int argc = 0;
	bool inword;

	argv[0] = NULL;
	/* No word is longer than the whole line, so one buffer serves all. */
	word = malloc(strlen(s) + 1);
	if (!word) {
		seterr(err, errlen, "out of memory");
		return -1;
	}

	while (*s) {
		while (is_blank(*s))
			s++;
		if (!*s)
			break;

		w = word;
		inword = true;
		while (inword && *s) {
			if (is_blank(*s)) {
				inword = false;
			} else if (*s == '\'') {
				const char *q = strchr(s + 1, '\'');

				if (!q) {
					seterr(err, errlen, "unterminated ' quote");
					goto fail;
				}
				memcpy(w, s + 1, (size_t)(q - s - 1));
				w += q - s - 1;
				s = q + 1;
			} else if (*s == '"') {
				for (s++; *s && *s != '"'; s++) {
					/* Like sh: inside "...", \ escapes only " and \. */
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					*w++ = *s;
				}
				if (!*s) {
					seterr(err, errlen, "unterminated \" quote");
					goto fail;
				}
				s++;
			} else if (*s == '\\') {
				if (!s[1]) {
					seterr(err, errlen, "backslash at the end of the command");
					goto fail;
				}
				*w++ = s[1];
				s += 2;
			} else {
				*w++ = *s++;
			}
		}
		*w = '\0';

		if (argc >= max) {
			seterr(err, errlen, "more than %d arguments", max);
			goto fail;
		}
		argv[argc] = strdup(word);
		if (!argv[argc]) {
			seterr(err, errlen, "out of memory");
			goto fail;
		}
		argv[++argc] = NULL;
	}
	free(word);
	if (!argc) {
		seterr(err, errlen, "empty command");
		return -1;
	}
	return argc;

fail:
	free(word);
	free_argv(argv);
	return -1;
}

const char *ready_kind_name(enum ready_kind k)
{
	switch (k) {
	case READY_NONE:
		return "none";
	case READY_NOTIFY:
		return "notify";
	case READY_TCP:
		return "tcp";
	case READY_HTTP:
		return "http";
	case READY_EXEC:
		return "exec";
	}
	return "unknown";
}

const char *health_kind_name(enum health_kind k)
{
	switch (k) {
	case HEALTH_NONE:
		return "none";
	case HEALTH_TCP:
		return "tcp";
	case HEALTH_HTTP:
		return "http";
	case HEALTH_EXEC:
		return "exec";
	}
	return "unknown";
}

/* Also the names of the config keys that set the hooks. */
const char *hook_name(enum hook_point h)
{
	switch (h) {
	case HOOK_BEFORE_START:
		return "before-start";
	case HOOK_AFTER_SWITCH:
		return "after-switch";
	case HOOK_AFTER_DRAIN:
		return "after-drain";
	case HOOK_COUNT:
		break;
	}
	return "unknown";
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * "5", "2.5", "0.01", "100", each with an optional "%".  A dot needs digits
 * on both sides (".5" and "5." are refused): "0.5" and "5" say the same
 * without leaving the reader to guess whether something was cut off.
 */
int parse_percent_bp(const char *s, unsigned *bp, char *err, size_t errlen)
{
	size_t len = strlen(s);
	const char *p = s, *end = s + len;
	unsigned long whole = 0, frac = 0;
	int ndec = 0;

	if (reject_control_chars(s, err, errlen))
		return -1;
	if (!len) {
		seterr(err, errlen,
		       "empty percentage (use a number 0..100 with at most two decimals, e.g. 5 "
		       "or 2.5)");
		return -1;
	}
	if (*s == '-') {
		seterr(err, errlen, "percentage \"%.*s\" is negative", ECHO_MAX, s);
		return -1;
	}
	if (end[-1] == '%')
		end--;
	if (p == end || !is_digit(*p))
		goto bad;
	/* Saturate, as parse_uint() does: anything past 100 is too much. */
	for (; p < end && is_digit(*p); p++) {
		if (whole <= 100)
			whole = whole * 10 + (unsigned long)(*p - '0');
	}
	if (p < end && *p == '.') {
		p++;
		if (p == end || !is_digit(*p))
			goto bad;
		for (; p < end && is_digit(*p); p++, ndec++) {
			if (ndec < 2)
				frac = frac * 10 + (unsigned long)(*p - '0');
		}
	}
	if (p != end)
		goto bad;
	if (ndec > 2) {
		seterr(err, errlen,
		       "percentage \"%.*s\" has more than two decimals (0.01 is the smallest step)",
		       ECHO_MAX, s);
		return -1;
	}
	if (ndec == 1)
		frac *= 10;
	if (whole > 100 || whole * 100 + frac > WEIGHT_MAX) {
		seterr(err, errlen, "percentage \"%.*s\" is more than 100", ECHO_MAX, s);
		return -1;
	}
	*bp = (unsigned)(whole * 100 + frac);
	return 0;
bad:
	seterr(err, errlen,
	       "invalid percentage \"%.*s\" (use 0..100 with at most two decimals, e.g. 5, 2.5 "
	       "or 0.01)",
	       ECHO_MAX, s);
	return -1;
}

/* Basis points as a percentage written back: 500 "5", 250 "2.5", 1 "0.01". */
static const char *fmt_percent(unsigned bp, char *buf, size_t size)
{
	if (bp % 100 == 0)
		snprintf(buf, size, "%u", bp / 100);
	else if (bp % 10 == 0)
		snprintf(buf, size, "%u.%u", bp / 100, bp % 100 / 10);
	else
		snprintf(buf, size, "%u.%02u", bp / 100, bp % 100);
	return buf;
}

int parse_steps(const char *s, unsigned *steps, char *err, size_t errlen)
{
	unsigned out[MAX_STEPS], bp;
	char msg[CONF_ERR_LEN], prev[16];
	char *copy, *item, *next;
	int n = 0, ret = -1;

	if (reject_control_chars(s, err, errlen))
		return -1;
	if (!*s) {
		seterr(err, errlen, "empty list of steps (use percentages, e.g. 5,25,50,100)");
		return -1;
	}
	/* parse_percent_bp() wants each item on its own. */
	copy = strdup(s);
	if (!copy) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	for (item = copy; item; item = next) {
		next = strchr(item, ',');
		if (next) {
			*next++ = '\0';
			while (*next == ' ' || *next == '\t')
				next++;
		}
		if (!*item) {
			seterr(err, errlen,
			       "step %d is empty (separate percentages with commas, e.g. "
			       "5,25,50,100)",
			       n + 1);
			goto out;
		}
		if (parse_percent_bp(item, &bp, msg, sizeof(msg)) < 0) {
			seterr(err, errlen, "step %d: %s", n + 1, msg);
			goto out;
		}
		if (!bp) {
			seterr(err, errlen, "step \"%.*s\" must be more than 0", ECHO_MAX, item);
			goto out;
		}
		if (n && bp <= out[n - 1]) {
			seterr(err, errlen,
			       "step \"%.*s\" is not more than the step before it (%s): steps must "
			       "increase",
			       ECHO_MAX, item, fmt_percent(out[n - 1], prev, sizeof(prev)));
			goto out;
		}
		if (n == MAX_STEPS) {
			seterr(err, errlen, "more than %d steps", MAX_STEPS);
			goto out;
		}
		out[n++] = bp;
	}
	if (out[n - 1] != WEIGHT_MAX) {
		if (n == MAX_STEPS) {
			seterr(err, errlen,
			       "more than %d steps with the 100 added after the last (end the list "
			       "with 100, or give fewer steps)",
			       MAX_STEPS);
			goto out;
		}
		out[n++] = WEIGHT_MAX;
	}
	memcpy(steps, out, (size_t)n * sizeof(out[0]));
	ret = n;
out:
	free(copy);
	return ret;
}

/* Built from the macros, not from numbers: signal numbers differ by arch. */
static const struct {
	int sig;
	const char *name;
} signal_names[] = {
    {SIGHUP, "SIGHUP"},	      {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"},	      {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},	      {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
#ifdef SIGSTKFLT
    {SIGSTKFLT, "SIGSTKFLT"},
#endif
    {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
    {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
    {SIGURG, "SIGURG"},	      {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
    {SIGIO, "SIGIO"},	      {SIGPWR, "SIGPWR"},   {SIGSYS, "SIGSYS"},
};

const char *signal_name(int sig)
{
	size_t i;

	for (i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	return "unknown";
}

/* ---- the file parser -------------------------------------------------- */

enum section_kind {
	SECT_NONE,
	SECT_AGENT,
	SECT_SERVICE,
};

struct parser;
typedef int (*key_setter)(struct parser *p, const char *key, const char *val);

struct key_def {
	const char *name;
	enum section_kind sect;
	bool repeats;
	key_setter set;
};

struct parser {
	struct config *cfg;
	const char *path;
	FILE *f;
	char *line;	 /* getline() buffer */
	const char *cur; /* the current line, without leading blanks, for messages */
	size_t linecap;
	int lineno;
	bool failed;
	int errline;
	char *err;
	size_t errlen;

	enum section_kind kind;
	char section[256];	  /* as in the header, for messages */
	struct service_conf *svc; /* current service */
	int agent_line;
	int seen[40]; /* per key: line it was set on in this section */
	int env_line[MAX_ENV];
	int listen_line[MAX_SERVICES][MAX_LISTEN];
};

static int __printf(2, 0) vperr(struct parser *p, const char *fmt, va_list ap)
{
	char msg[CONF_ERR_LEN];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (p->lineno)
		seterr(p->err, p->errlen, "%s:%d: %s", p->path, p->lineno, msg);
	else
		seterr(p->err, p->errlen, "%s: %s", p->path, msg);
	p->failed = true;
	p->errline = p->lineno;
	return -1;
}

static int __printf(2, 3) perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vperr(p, fmt, ap);
	va_end(ap);
	return -1;
}

/* For checks made after the line at fault was read. */
static int __printf(3, 4) perr_at(struct parser *p, int line, const char *fmt, ...)
{
	int cur = p->lineno;
	va_list ap;

	p->lineno = line;
	va_start(ap, fmt);
	vperr(p, fmt, ap);
	va_end(ap);
	p->lineno = cur;
	return -1;
}

static int set_path(struct parser *p, const char *key, const char *val, char *dst, size_t size,
		    const char *why)
{
	size_t len = strlen(val);

	if (val[0] != '/')
		return perr(p, "%s must be an absolute path, not \"%.*s\"", key, ECHO_MAX, val);
	if (len >= size)
		return perr(p, "%s is longer than %zu characters%s", key, size - 1, why);
	memcpy(dst, val, len + 1);
	return 0;
}

static int set_control(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->cfg->agent.control, sizeof(p->cfg->agent.control),
			" (a unix socket path must fit in sun_path)");
}

static int set_bpf_dir(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->cfg->agent.bpf_dir, sizeof(p->cfg->agent.bpf_dir), "");
}

static int set_control_group(struct parser *p, const char *key, const char *val)
{
	struct group *gr;

	if (strlen(val) >= sizeof(p->cfg->agent.control_group))
		return perr(p, "%s: group name too long", key);
	gr = getgrnam(val);
	if (!gr)
		return perr(p, "%s: no such group \"%.*s\" (create it: groupadd %.*s)", key,
			    ECHO_MAX, val, ECHO_MAX, val);
	if (gr->gr_gid == 0)
		return perr(p, "%s: group %s is gid 0; give read-only access with another group",
			    key, val);
	snprintf(p->cfg->agent.control_group, sizeof(p->cfg->agent.control_group), "%s", val);
	p->cfg->agent.control_gid = gr->gr_gid;
	return 0;
}

static int set_metrics(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];

	if (!strcmp(val, "off")) {
		p->cfg->agent.metrics.len = 0;
		return 0;
	}
	if (parse_listen(val, &p->cfg->agent.metrics, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s (or off)", key, msg);
	return 0;
}

static int set_run_dir(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->cfg->agent.run_dir, sizeof(p->cfg->agent.run_dir), "");
}

static int set_workdir(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->svc->workdir, sizeof(p->svc->workdir), "");
}

static int set_listen(struct parser *p, const char *key, const char *val)
{
	struct service_conf *svc = p->svc;
	int self = (int)(svc - p->cfg->services);
	char msg[CONF_ERR_LEN];
	struct listen_addr la;
	int i, j;

	if (parse_listen(val, &la, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	if (svc->nlisten >= MAX_LISTEN)
		return perr(p, "more than %d listen addresses in [%s]", MAX_LISTEN, p->section);
	/* The text is normalised by inet_ntop, so equal text is equal address. */
	for (i = 0; i < p->cfg->nservices; i++) {
		const struct service_conf *o = &p->cfg->services[i];

		for (j = 0; j < o->nlisten; j++) {
			if (strcmp(o->listen[j].text, la.text))
				continue;
			if (i == self)
				return perr(p,
					    "listen %s is given twice in [%s] (first at line %d)",
					    la.text, p->section, p->listen_line[i][j]);
			return perr(p, "listen %s is already used by service \"%s\" (line %d)",
				    la.text, o->name, p->listen_line[i][j]);
		}
	}
	p->listen_line[self][svc->nlisten] = p->lineno;
	svc->listen[svc->nlisten++] = la;
	return 0;
}

/*
 * A command line for a key that runs something (exec, health-command, the
 * hooks): split into argv, whose program must be an absolute path to an
 * executable file.  Returns argc; on error argv is left empty.
 */
static int set_command(struct parser *p, const char *key, const char *val, char **argv)
{
	char msg[CONF_ERR_LEN];
	const char *prog;
	struct stat st;
	int argc;

	argc = split_command(val, argv, MAX_ARGS, msg, sizeof(msg));
	/* inih cut the line at " ;" even inside quotes: the likely cause. */
	if (argc < 0 && strstr(msg, "unterminated") &&
	    (strstr(p->cur, " ;") || strstr(p->cur, "\t;")))
		return perr(p, "%s: %s (\";\" after a space starts a comment, even in quotes)", key,
			    msg);
	if (argc < 0)
		return perr(p, "%s: %s", key, msg);
	prog = argv[0];

	/* Checked now so that a typo fails `baton -n`, not the first deploy. */
	if (prog[0] != '/') {
		perr(p, "%s: the program must be an absolute path, not \"%.*s\"", key, ECHO_MAX,
		     prog);
		goto fail;
	}
	if (stat(prog, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			perr(p, "%s: %.*s not found", key, ECHO_MAX * 2, prog);
		else
			perr(p, "%s: %.*s: %s", key, ECHO_MAX * 2, prog, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		perr(p, "%s: %.*s is a directory", key, ECHO_MAX * 2, prog);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || access(prog, X_OK) < 0) {
		perr(p, "%s: %.*s not executable", key, ECHO_MAX * 2, prog);
		goto fail;
	}
	return argc;
fail:
	free_argv(argv);
	return -1;
}

static int set_exec(struct parser *p, const char *key, const char *val)
{
	int argc = set_command(p, key, val, p->svc->argv);

	if (argc < 0)
		return -1;
	p->svc->argc = argc;
	return 0;
}

static int set_health_command(struct parser *p, const char *key, const char *val)
{
	return set_command(p, key, val, p->svc->health_argv) < 0 ? -1 : 0;
}

static int set_hook(struct parser *p, const char *key, const char *val)
{
	int h;

	for (h = 0; h < HOOK_COUNT; h++)
		if (!strcmp(key, hook_name((enum hook_point)h)))
			return set_command(p, key, val, p->svc->hook[h]) < 0 ? -1 : 0;
	return perr(p, "%s: not a hook", key); /* a key table mistake */
}

static int set_instances(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, MAX_INSTANCES, &n) < 0 || n < 1 || n > MAX_INSTANCES)
		return perr(p, "%s must be 1..%d, not %.*s", key, MAX_INSTANCES, ECHO_MAX, val);
	p->svc->instances = (int)n;
	return 0;
}

static int set_backlog(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, 65535, &n) < 0 || n < 1 || n > 65535)
		return perr(p, "%s must be 1..65535, not %.*s", key, ECHO_MAX, val);
	p->svc->backlog = (int)n;
	return 0;
}

static int set_user(struct parser *p, const char *key, const char *val)
{
	struct passwd pw, *res = NULL;
	size_t size = 4096;
	char *buf = NULL, *nbuf;
	int rc;

	if (strlen(val) >= sizeof(p->svc->user))
		return perr(p, "%s: name is longer than %zu characters", key,
			    sizeof(p->svc->user) - 1);
	for (;;) {
		nbuf = realloc(buf, size);
		if (!nbuf) {
			free(buf);
			return perr(p, "%s: out of memory", key);
		}
		buf = nbuf;
		rc = getpwnam_r(val, &pw, buf, size, &res);
		if (rc != ERANGE || size >= 1 << 20)
			break;
		size *= 2;
	}
	free(buf);
	/* Not finding the name is not an error for getpwnam_r(3), but some
	 * NSS modules still say so with one of these. */
	if (rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
		rc = 0;
	if (rc)
		return perr(p, "%s: cannot look up \"%.*s\": %s", key, ECHO_MAX, val, strerror(rc));
	if (!res)
		return perr(p,
			    "%s: no such user \"%.*s\" (create it, or leave user out to run as the "
			    "agent's user)",
			    key, ECHO_MAX, val);
	strcpy(p->svc->user, val);
	return 0;
}

static bool env_reserved(const char *name, size_t len)
{
	return (len >= 7 && !strncmp(name, "LISTEN_", 7)) ||
	       (len >= 6 && !strncmp(name, "BATON_", 6)) ||
	       (len == 13 && !strncmp(name, "NOTIFY_SOCKET", 13));
}

static int set_environment(struct parser *p, const char *key, const char *val)
{
	struct service_conf *svc = p->svc;
	const char *eq = strchr(val, '=');
	size_t len, i;
	int k;

	if (!eq)
		return perr(p, "%s: expected KEY=VALUE, not \"%.*s\"", key, ECHO_MAX, val);
	len = (size_t)(eq - val);
	if (!len)
		return perr(p, "%s: missing variable name before \"=\"", key);
	for (i = 0; i < len; i++) {
		char c = val[i];

		if (c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (i && c >= '0' && c <= '9'))
			continue;
		return perr(p,
			    "%s: invalid variable name \"%.*s\" (letters, digits and _, not "
			    "starting with a digit)",
			    key, (int)(len < ECHO_MAX ? len : ECHO_MAX), val);
	}
	if (env_reserved(val, len))
		return perr(
		    p,
		    "%s: %.*s is set by baton (LISTEN_*, NOTIFY_SOCKET and BATON_* are reserved)",
		    key, (int)(len < ECHO_MAX ? len : ECHO_MAX), val);
	for (k = 0; k < svc->nenv; k++) {
		if (!strncmp(svc->env[k], val, len + 1))
			return perr(p, "%s: %.*s is set twice in [%s] (first at line %d)", key,
				    (int)(len < ECHO_MAX ? len : ECHO_MAX), val, p->section,
				    p->env_line[k]);
	}
	if (svc->nenv >= MAX_ENV)
		return perr(p, "more than %d environment entries in [%s]", MAX_ENV, p->section);
	svc->env[svc->nenv] = strdup(val);
	if (!svc->env[svc->nenv])
		return perr(p, "%s: out of memory", key);
	p->env_line[svc->nenv] = p->lineno;
	svc->env[++svc->nenv] = NULL;
	return 0;
}

static int set_ready(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "notify"))
		p->svc->ready = READY_NOTIFY;
	else if (!strcmp(val, "tcp"))
		p->svc->ready = READY_TCP;
	else if (!strcmp(val, "http"))
		p->svc->ready = READY_HTTP;
	else if (!strcmp(val, "exec"))
		p->svc->ready = READY_EXEC;
	else if (!strcmp(val, "none"))
		p->svc->ready = READY_NONE;
	else
		return perr(p, "%s must be notify, tcp, http, exec or none, not \"%.*s\"", key,
			    ECHO_MAX, val);
	return 0;
}

static int set_drain_policy(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "wait-then-signal"))
		p->svc->drain = DRAIN_WAIT_THEN_SIGNAL;
	else if (!strcmp(val, "signal-then-wait"))
		p->svc->drain = DRAIN_SIGNAL_THEN_WAIT;
	else
		return perr(p, "%s must be wait-then-signal or signal-then-wait, not \"%.*s\"", key,
			    ECHO_MAX, val);
	return 0;
}

static int set_exit_signal(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];

	if (parse_signal(val, &p->svc->exit_signal, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	return 0;
}

static int set_duration(struct parser *p, const char *key, const char *val, unsigned *dst,
			bool zero_ok)
{
	char msg[CONF_ERR_LEN];
	unsigned ms;

	if (parse_duration_ms(val, &ms, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	/* A zero bound would make the wait it bounds fail at once. */
	if (!ms && !zero_ok)
		return perr(p, "%s must be more than 0", key);
	*dst = ms;
	return 0;
}

static int set_ready_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->ready_timeout_ms, false);
}

static int set_drain_delay(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->drain_delay_ms, true);
}

static int set_drain_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->drain_timeout_ms, false);
}

static int set_kill_after(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->kill_after_ms, false);
}

static int set_adopt(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->adopt = true;
	else if (!strcmp(val, "no"))
		p->svc->adopt = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_drain_reset(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->drain_reset = true;
	else if (!strcmp(val, "no"))
		p->svc->drain_reset = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_steering(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "sticky"))
		p->svc->steering = STEER_STICKY;
	else if (!strcmp(val, "per-connection"))
		p->svc->steering = STEER_PER_CONNECTION;
	else
		return perr(p, "%s must be sticky or per-connection, not \"%.*s\"", key, ECHO_MAX,
			    val);
	return 0;
}

static int set_strategy(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "bluegreen"))
		p->svc->strategy = STRATEGY_BLUEGREEN;
	else if (!strcmp(val, "canary"))
		p->svc->strategy = STRATEGY_CANARY;
	else
		return perr(p, "%s must be bluegreen or canary, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_steps(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];
	int n;

	n = parse_steps(val, p->svc->steps, msg, sizeof(msg));
	if (n < 0)
		return perr(p, "%s: %s", key, msg);
	p->svc->nsteps = n;
	return 0;
}

static int set_bake(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->bake_ms, true);
}

static int set_health(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "none"))
		p->svc->health = HEALTH_NONE;
	else if (!strcmp(val, "tcp"))
		p->svc->health = HEALTH_TCP;
	else if (!strcmp(val, "http"))
		p->svc->health = HEALTH_HTTP;
	else if (!strcmp(val, "exec"))
		p->svc->health = HEALTH_EXEC;
	else
		return perr(p, "%s must be none, tcp, http or exec, not \"%.*s\"", key, ECHO_MAX,
			    val);
	return 0;
}

/* Sent as is in "GET PATH HTTP/1.1": anything that could break the request
 * line is refused. */
static int set_health_path(struct parser *p, const char *key, const char *val)
{
	size_t len = strlen(val), i;

	if (val[0] != '/')
		return perr(p, "%s must start with \"/\", not \"%.*s\"", key, ECHO_MAX, val);
	for (i = 0; i < len; i++) {
		if (val[i] > ' ' && val[i] < 0x7f)
			continue;
		return perr(p,
			    "%s may only contain printable ASCII characters, without spaces "
			    "(percent-encode others): \"%.*s\"",
			    key, ECHO_MAX, val);
	}
	if (len >= sizeof(p->svc->health_path))
		return perr(p, "%s is longer than %zu characters", key,
			    sizeof(p->svc->health_path) - 1);
	memcpy(p->svc->health_path, val, len + 1);
	return 0;
}

static int set_health_interval(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->health_interval_ms, false);
}

static int set_health_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->health_timeout_ms, false);
}

static int set_health_threshold(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, 100, &n) < 0 || n < 1 || n > 100)
		return perr(p, "%s must be 1..100, not %.*s", key, ECHO_MAX, val);
	p->svc->health_threshold = (int)n;
	return 0;
}

static int set_max_error_rate(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];
	unsigned bp;

	if (!strcmp(val, "off")) {
		p->svc->max_error_bp = ERROR_RATE_OFF;
		return 0;
	}
	/* Neither a number nor a sign: most likely a word meant as "off". */
	if (!is_digit(val[0]) && val[0] != '-' && val[0] != '.')
		return perr(p, "%s must be a percentage (e.g. 1%%) or off, not \"%.*s\"", key,
			    ECHO_MAX, val);
	if (parse_percent_bp(val, &bp, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	p->svc->max_error_bp = (int)bp;
	return 0;
}

static int set_hook_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->hook_timeout_ms, false);
}

static const struct key_def keys[] = {
    {"control", SECT_AGENT, false, set_control},
    {"bpf-dir", SECT_AGENT, false, set_bpf_dir},
    {"run-dir", SECT_AGENT, false, set_run_dir},
    {"control-group", SECT_AGENT, false, set_control_group},
    {"metrics", SECT_AGENT, false, set_metrics},
    {"listen", SECT_SERVICE, true, set_listen},
    {"exec", SECT_SERVICE, false, set_exec},
    {"instances", SECT_SERVICE, false, set_instances},
    {"user", SECT_SERVICE, false, set_user},
    {"workdir", SECT_SERVICE, false, set_workdir},
    {"environment", SECT_SERVICE, true, set_environment},
    {"ready", SECT_SERVICE, false, set_ready},
    {"ready-timeout", SECT_SERVICE, false, set_ready_timeout},
    {"drain-policy", SECT_SERVICE, false, set_drain_policy},
    {"exit-signal", SECT_SERVICE, false, set_exit_signal},
    {"drain-delay", SECT_SERVICE, false, set_drain_delay},
    {"drain-timeout", SECT_SERVICE, false, set_drain_timeout},
    {"kill-after", SECT_SERVICE, false, set_kill_after},
    {"drain-reset", SECT_SERVICE, false, set_drain_reset},
    {"adopt", SECT_SERVICE, false, set_adopt},
    {"backlog", SECT_SERVICE, false, set_backlog},
    {"steering", SECT_SERVICE, false, set_steering},
    {"strategy", SECT_SERVICE, false, set_strategy},
    {"steps", SECT_SERVICE, false, set_steps},
    {"bake", SECT_SERVICE, false, set_bake},
    {"health", SECT_SERVICE, false, set_health},
    {"health-path", SECT_SERVICE, false, set_health_path},
    {"health-command", SECT_SERVICE, false, set_health_command},
    {"health-interval", SECT_SERVICE, false, set_health_interval},
    {"health-timeout", SECT_SERVICE, false, set_health_timeout},
    {"health-threshold", SECT_SERVICE, false, set_health_threshold},
    {"max-error-rate", SECT_SERVICE, false, set_max_error_rate},
    {"before-start", SECT_SERVICE, false, set_hook},
    {"after-switch", SECT_SERVICE, false, set_hook},
    {"after-drain", SECT_SERVICE, false, set_hook},
    {"hook-timeout", SECT_SERVICE, false, set_hook_timeout},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= sizeof(((struct parser *)0)->seen) / sizeof(int),
	       "parser.seen too small for the key table");

/* Levenshtein distance ignoring case, for did-you-mean hints; long words
 * never match. */
static int edit_distance(const char *a, const char *b)
{
	int row[64], prev, tmp, i, j;
	int la = (int)strlen(a), lb = (int)strlen(b);

	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			int best = prev + (tolower((unsigned char)a[i - 1]) !=
					   tolower((unsigned char)b[j - 1]));

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static int unknown_key(struct parser *p, const char *name)
{
	const char *best = NULL;
	int bestd = 3, d;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].sect != p->kind)
			continue;
		d = edit_distance(name, keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = keys[i].name;
		}
	}
	if (best)
		return perr(p, "unknown key \"%.*s\" in [%s] (did you mean \"%s\"?)", ECHO_MAX,
			    name, p->section, best);
	for (i = 0; i < NKEYS; i++) {
		if (strcmp(name, keys[i].name))
			continue;
		return perr(p, "unknown key \"%s\" in [%s] (%s belongs in %s)", name, p->section,
			    name,
			    keys[i].sect == SECT_AGENT ? "[agent]" : "a [service NAME] section");
	}
	return perr(p, "unknown key \"%.*s\" in [%s]", ECHO_MAX, name, p->section);
}

static int syntax_error(struct parser *p)
{
	return perr(p, "expected KEY = VALUE, [section] or a comment, not \"%.*s\"", ECHO_MAX,
		    p->cur);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	size_t i;

	(void)section; /* the reader tracked it, with its line */
	if (p->failed)
		return 0;
	if (!*name) {
		perr(p, "missing key name before \"=\"");
		return 0;
	}
	/* "listen 0.0.0.0:80" reaches here as key "listen 0.0.0.0" (inih also
	 * takes ":" as the separator): a forgotten "=", not an unknown key. */
	if (strpbrk(name, " \t")) {
		syntax_error(p);
		return 0;
	}
	if (p->kind == SECT_NONE) {
		perr(p,
		     "key \"%.*s\" is outside any section (put it under [agent] or [service NAME])",
		     ECHO_MAX, name);
		return 0;
	}
	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == p->kind && !strcmp(name, keys[i].name))
			break;
	if (i == NKEYS) {
		unknown_key(p, name);
		return 0;
	}
	if (!value || !*value) {
		perr(p, "%s needs a value", name);
		return 0;
	}
	if (!keys[i].repeats && p->seen[i]) {
		perr(p, "%s given twice in [%s] (first at line %d)", name, p->section, p->seen[i]);
		return 0;
	}
	p->seen[i] = p->lineno;
	return keys[i].set(p, keys[i].name, value) < 0 ? 0 : 1;
}

static void service_defaults(struct service_conf *svc)
{
	memset(svc, 0, sizeof(*svc));
	svc->instances = 1;
	svc->ready = READY_NOTIFY;
	svc->ready_timeout_ms = 10000;
	svc->drain = DRAIN_WAIT_THEN_SIGNAL;
	svc->exit_signal = SIGTERM;
	svc->drain_delay_ms = 0;
	svc->drain_timeout_ms = 30000;
	svc->kill_after_ms = 5000;
	svc->backlog = 1024;
	svc->steering = STEER_STICKY;
	svc->strategy = STRATEGY_BLUEGREEN;
	svc->steps[0] = 500;
	svc->steps[1] = 2500;
	svc->steps[2] = 5000;
	svc->steps[3] = WEIGHT_MAX;
	svc->nsteps = 4;
	svc->bake_ms = 30000;
	svc->health = HEALTH_NONE; /* until service_end() derives it from ready */
	strcpy(svc->health_path, "/");
	svc->health_interval_ms = 1000;
	svc->health_timeout_ms = 1000;
	svc->health_threshold = 3;
	svc->max_error_bp = 100;
	svc->hook_timeout_ms = 60000;
}

/* The line a key was given on in the current section, 0 if it was not. */
static int key_line(const struct parser *p, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == p->kind && !strcmp(keys[i].name, name))
			return p->seen[i];
	return 0;
}

/*
 * Settings that depend on each other, once the whole [service] section is
 * read (keys may come in any order): derived defaults, then the checks, each
 * reported at the line of the key at fault.
 */
static int service_end(struct parser *p)
{
	struct service_conf *svc = p->svc;
	int ready_line = key_line(p, "ready");
	int health_line = key_line(p, "health");
	int command_line = key_line(p, "health-command");
	int path_line = key_line(p, "health-path");
	bool uses_exec, uses_http;

	if (!health_line) {
		switch (svc->ready) {
		case READY_TCP:
			svc->health = HEALTH_TCP;
			break;
		case READY_HTTP:
			svc->health = HEALTH_HTTP;
			break;
		case READY_EXEC:
			svc->health = HEALTH_EXEC;
			break;
		case READY_NONE:
		case READY_NOTIFY:
			svc->health = HEALTH_NONE;
			break;
		}
	}
	if (svc->adopt) {
		int exec_line = key_line(p, "exec");

		if (exec_line)
			return perr_at(p, exec_line,
				       "exec cannot be used with adopt = yes (adopted servers are "
				       "started outside baton: baton adopt / deploy --adopt-pid)");
		if (ready_line && svc->ready == READY_NOTIFY)
			return perr_at(p, ready_line,
				       "ready = notify cannot be used with adopt = yes (the server "
				       "was not started by baton; use tcp, http, exec or none)");
		if (!ready_line)
			svc->ready = READY_TCP;
		if (!health_line && svc->health == HEALTH_NONE)
			svc->health = svc->ready == READY_HTTP	 ? HEALTH_HTTP
				      : svc->ready == READY_EXEC ? HEALTH_EXEC
				      : svc->ready == READY_TCP	 ? HEALTH_TCP
								 : HEALTH_NONE;
	}
	uses_exec = svc->ready == READY_EXEC || svc->health == HEALTH_EXEC;
	uses_http = svc->ready == READY_HTTP || svc->health == HEALTH_HTTP;

	if (uses_exec && !svc->health_argv[0]) {
		bool by_ready = svc->ready == READY_EXEC;

		return perr_at(p, by_ready ? ready_line : health_line,
			       "%s = exec needs health-command (add health-command = "
			       "/path/to/check ARGS)",
			       by_ready ? "ready" : "health");
	}
	if (command_line && !uses_exec)
		return perr_at(p, command_line,
			       "health-command is set but neither ready nor health is exec");
	if (path_line && !uses_http)
		return perr_at(p, path_line,
			       "health-path is set but neither ready nor health is http");

	return 0;
}

static int unknown_section(struct parser *p, const char *name)
{
	const char *sp = strchr(name, ' ');
	size_t wlen = sp ? (size_t)(sp - name) : strlen(name);
	char word[16];

	if (wlen < sizeof(word)) {
		memcpy(word, name, wlen);
		word[wlen] = '\0';
		if (sp && edit_distance(word, "service") <= 2)
			return perr(p, "unknown section [%.*s] (did you mean [service%.*s]?)",
				    ECHO_MAX, name, ECHO_MAX, sp);
		if (!sp && edit_distance(word, "agent") <= 2)
			return perr(p, "unknown section [%.*s] (did you mean [agent]?)", ECHO_MAX,
				    name);
	}
	return perr(p, "unknown section [%.*s] (expected [agent] or [service NAME])", ECHO_MAX,
		    name);
}

/* A "[...]" line: open the section it names. */
static int section_begin(struct parser *p, char *line)
{
	struct config *cfg = p->cfg;
	char msg[CONF_ERR_LEN];
	const char *name, *svcname;
	char *end, *rest;
	int i;

	/* The section before ends here, and its errors come first. */
	if (p->svc && service_end(p) < 0)
		return -1;
	end = strchr(line + 1, ']');
	if (!end)
		return perr(p, "section header has no closing \"]\"");
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		;
	/* "[::1]:80" alone on a line is an address meant as one more value of
	 * the key above: say so rather than complain about a section. */
	if (*rest == ':')
		return perr(p,
			    "\"%.*s\" is not a section header (a value cannot continue on the next "
			    "line: repeat the key, e.g. listen = %.*s)",
			    ECHO_MAX, line, ECHO_MAX, line);
	if (*rest && *rest != ';' && *rest != '#')
		return perr(p, "unexpected text after the section header: \"%.*s\"", ECHO_MAX,
			    rest);
	*end = '\0';
	name = line + 1;
	i = snprintf(p->section, sizeof(p->section), "%s", name);
	*end = ']';
	if (i < 0 || (size_t)i >= sizeof(p->section))
		return unknown_section(p, p->section);

	memset(p->seen, 0, sizeof(p->seen));
	memset(p->env_line, 0, sizeof(p->env_line));
	p->svc = NULL;

	if (!strcmp(p->section, "agent")) {
		if (p->agent_line)
			return perr(p, "[agent] given twice (first at line %d)", p->agent_line);
		p->agent_line = p->lineno;
		p->kind = SECT_AGENT;
		return 0;
	}
	if (strncmp(p->section, "service", 7) ||
	    (p->section[7] && !isspace((unsigned char)p->section[7])))
		return unknown_section(p, p->section);
	if (!p->section[7])
		return perr(p, "[service] needs a name: [service NAME]");
	svcname = p->section + 8;
	if (p->section[7] != ' ' || isspace((unsigned char)*svcname))
		return perr(p, "write the header as [service NAME], with one space");
	if (parse_service_name(svcname, msg, sizeof(msg)) < 0)
		return perr(p, "%s", msg);
	for (i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, svcname))
			return perr(p, "service \"%s\" defined twice (first at line %d)", svcname,
				    cfg->services[i].line);
	if (cfg->nservices >= MAX_SERVICES)
		return perr(p, "more than %d services", MAX_SERVICES);

	p->svc = &cfg->services[cfg->nservices++];
	service_defaults(p->svc);
	strcpy(p->svc->name, svcname);
	p->svc->line = p->lineno;
	p->kind = SECT_SERVICE;
	return 0;
}

/*
 * inih's rule for a key line, checked here so that the message can say what
 * is wrong and the parse stops at once: a "=" or ":" must come before any
 * inline comment (";" after whitespace).
 */
static bool is_key_line(const char *s)
{
	bool was_space = false;

	for (; *s; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (was_space && *s == ';')
			return false;
		was_space = isspace((unsigned char)*s);
	}
	return false;
}

/*
 * fgets() for inih, one physical line per call, so p->lineno is the line
 * inih hands to on_key().  Leading whitespace is dropped: inih would take an
 * indented line as the continuation of the previous value (multi-line values
 * are compiled in), so an indented "exec = ..." would silently become part
 * of the line above.  Without it, indentation means nothing.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	char *s;
	ssize_t n;
	size_t len;

	if (p->failed)
		return NULL;
	errno = 0;
	n = getline(&p->line, &p->linecap, p->f);
	if (n < 0) {
		if (ferror(p->f)) {
			int e = errno;

			p->lineno = 0;
			perr(p, "read error: %s", strerror(e ? e : EIO));
		}
		return NULL;
	}
	p->lineno++;
	if (memchr(p->line, '\0', (size_t)n)) {
		perr(p, "line contains a NUL byte");
		return NULL;
	}
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	s = p->line;
	if (p->lineno == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	/* inih's line buffer is fixed: a longer line would be cut in two. */
	if (num < 1 || len >= (size_t)num) {
		perr(p, "line is longer than %d characters", num > 0 ? num - 1 : 0);
		return NULL;
	}
	p->cur = s;
	if (*s == '[') {
		if (section_begin(p, s) < 0)
			return NULL;
	} else if (*s && *s != ';' && *s != '#' && !is_key_line(s)) {
		syntax_error(p);
		return NULL;
	}
	memcpy(str, s, len + 1);
	return str;
}

static void agent_defaults(struct agent_conf *a)
{
	strcpy(a->control, DEFAULT_CONTROL);
	strcpy(a->bpf_dir, DEFAULT_BPF_DIR);
	strcpy(a->run_dir, DEFAULT_RUN_DIR);
}

/* Whole-file checks, after every line was read: no line to point at. */
static int check_services(struct parser *p)
{
	int i;

	p->lineno = 0;
	for (i = 0; i < p->cfg->nservices; i++) {
		const struct service_conf *svc = &p->cfg->services[i];

		if (!svc->nlisten)
			return perr(p,
				    "service \"%s\" has no listen address (add listen = ADDR:PORT)",
				    svc->name);
		if (!svc->argc && !svc->adopt)
			return perr(
			    p,
			    "service \"%s\" has no exec command (add exec = /path/to/program "
			    "ARGS, or adopt = yes for a server started outside baton)",
			    svc->name);
	}
	return 0;
}

/* Parse one file into p->cfg; 0, or -1 with the error in p->err. */
static int parse_file(struct parser *p, const char *path)
{
	int rc;

	p->path = path;
	p->lineno = 0;
	p->failed = false;
	p->errline = 0;
	p->kind = SECT_NONE;
	p->section[0] = '\0';
	p->svc = NULL;
	memset(p->seen, 0, sizeof(p->seen));
	p->f = fopen(path, "re");
	if (!p->f) {
		seterr(p->err, p->errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, p, on_key, p);
	fclose(p->f);
	p->f = NULL;
	if (rc == -2 && !p->failed) {
		seterr(p->err, p->errlen, "%s: out of memory", path);
		return -1;
	}
	/* Every line inih rejects is rejected first by read_line(); this is
	 * a backstop in case a future inih is stricter than it. */
	if (rc > 0 && (!p->failed || rc < p->errline)) {
		p->lineno = rc;
		perr(p, "syntax error");
	}
	if (!p->failed && p->svc)
		service_end(p);
	return p->failed ? -1 : 0;
}

static int conf_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The *.conf files of dir, sorted, as malloc'd paths; returns how many
 * (at most max), or -1 with err.
 */
static int conf_dir_files(const char *dir, char **out, int max, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d) {
		seterr(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".conf"))
			continue;
		if (n == max) {
			seterr(err, errlen, "%s: more than %d .conf files", dir, max);
			goto fail;
		}
		if (asprintf(&out[n], "%s/%s", dir, de->d_name) < 0) {
			seterr(err, errlen, "%s: out of memory", dir);
			goto fail;
		}
		n++;
	}
	closedir(d);
	qsort(out, n, sizeof(out[0]), conf_name_cmp);
	return n;
fail:
	closedir(d);
	while (n)
		free(out[--n]);
	return -1;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	char *files[MAX_SERVICES + 1], dir[PATH_MAX], *slash;
	struct parser *p;
	struct stat st;
	int nfiles = 0, i, n, ret = -1;
	size_t used = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	/*
	 * A directory: every *.conf in it.  A file: it, then every *.conf of
	 * conf.d next to it when that directory exists.
	 */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		nfiles = conf_dir_files(path, files, MAX_SERVICES + 1, err, errlen);
		if (nfiles < 0)
			return -1;
		if (!nfiles) {
			seterr(err, errlen, "%s: no .conf file in this directory", path);
			return -1;
		}
	} else {
		files[nfiles++] = strdup(path);
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash)
			snprintf(slash + 1, sizeof(dir) - (slash + 1 - dir), "conf.d");
		else
			snprintf(dir, sizeof(dir), "conf.d");
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			n = conf_dir_files(dir, files + 1, MAX_SERVICES, err, errlen);
			if (n < 0) {
				free(files[0]);
				return -1;
			}
			nfiles += n;
		}
	}
	/* About 2 KiB of line bookkeeping: keep it off a possibly small stack. */
	p = calloc(1, sizeof(*p));
	if (!p || !files[0]) {
		seterr(err, errlen, "%s: out of memory", path);
		goto out;
	}
	p->cfg = cfg;
	agent_defaults(&cfg->agent);
	/* Every file is read; each one's first error is reported, one per line. */
	for (i = 0; i < nfiles; i++) {
		p->err = err ? err + used : NULL;
		p->errlen = errlen > used ? errlen - used : 0;
		if (parse_file(p, files[i]) < 0 && err && used < errlen) {
			used += strlen(err + used);
			if (used + 1 < errlen)
				err[used++] = '\n';
			ret = -2;
		}
	}
	if (used && err)
		err[used - 1] = '\0'; /* no newline after the last error */
	p->err = err ? err + used : NULL;
	p->errlen = errlen > used ? errlen - used : 0;
	if (ret == -2 || check_services(p) < 0) {
		ret = -1;
		goto out;
	}
	ret = 0;
out:
	if (p)
		free(p->line);
	free(p);
	for (i = 0; i < nfiles; i++)
		free(files[i]);
	if (ret < 0) {
		config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
	}
	return ret;
}

void config_free(struct config *cfg)
{
	int i, h;

	for (i = 0; i < cfg->nservices && i < MAX_SERVICES; i++) {
		free_argv(cfg->services[i].argv);
		cfg->services[i].argc = 0;
		free_argv(cfg->services[i].env);
		cfg->services[i].nenv = 0;
		free_argv(cfg->services[i].health_argv);
		for (h = 0; h < HOOK_COUNT; h++)
			free_argv(cfg->services[i].hook[h]);
	}
}
