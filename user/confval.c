/* SPDX-License-Identifier: MIT */
/*
 * The values of baton's configuration (durations, listen addresses,
 * signals, service names, commands, percentages, canary steps) and their
 * names: one parser each, shared by the file parser (config.c), the CLI
 * and the control protocol.  Each returns 0, or -1 with a one-line error
 * that names the value and what would be right.
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
#include "confval.h"

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

void __printf(3, 4) seterr(char *err, size_t errlen, const char *fmt, ...)
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
int parse_uint(const char *s, unsigned long max, unsigned long *out)
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

bool env_name_valid(const char *name, size_t len)
{
	size_t i;

	if (!len)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

bool env_name_reserved(const char *name, size_t len)
{
	return (len >= 7 && !strncmp(name, "LISTEN_", 7)) ||
	       (len >= 6 && !strncmp(name, "BATON_", 6)) ||
	       (len == 13 && !strncmp(name, "NOTIFY_SOCKET", 13));
}

/* The client's text in an error: its start, control characters as '?'. */
static void echo_of(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < len && i < ECHO_MAX && i + 1 < outlen; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
}

int env_list_check(const char *const *kv, const size_t *len, int n, char *err, size_t errlen)
{
	char echo[ECHO_MAX + 1];
	int i, k;

	if (n > MAX_ENV) {
		seterr(err, errlen,
		       "more than %d --env variables (put the ones every version shares in the "
		       "service's environment = lines)",
		       MAX_ENV);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *eq = memchr(kv[i], '=', len[i]);
		size_t klen = eq ? (size_t)(eq - kv[i]) : len[i];

		echo_of(kv[i], klen, echo, sizeof(echo));
		if (memchr(kv[i], '\0', len[i])) {
			seterr(err, errlen, "--env %s: a NUL byte cannot be in the environment",
			       echo);
			return -1;
		}
		if (!eq) {
			seterr(err, errlen, "--env \"%s\": expected KEY=VALUE (--env %s=value)",
			       echo, env_name_valid(kv[i], klen) ? echo : "NAME");
			return -1;
		}
		if (!klen) {
			seterr(err, errlen,
			       "--env: missing variable name before \"=\" (--env NAME=value)");
			return -1;
		}
		if (!env_name_valid(kv[i], klen)) {
			seterr(err, errlen,
			       "--env: invalid variable name \"%s\" (letters, digits and _, not "
			       "starting with a digit)",
			       echo);
			return -1;
		}
		if (env_name_reserved(kv[i], klen)) {
			seterr(err, errlen,
			       "--env: %s is set by baton (LISTEN_*, NOTIFY_SOCKET and BATON_* are "
			       "reserved; use another name)",
			       echo);
			return -1;
		}
		if (len[i] > DEPLOY_ENV_LEN) {
			seterr(err, errlen,
			       "--env %s: longer than %d bytes (give the server a file to read "
			       "instead)",
			       echo, DEPLOY_ENV_LEN);
			return -1;
		}
		for (k = 0; k < i; k++)
			if (len[k] > klen && !strncmp(kv[k], kv[i], klen + 1)) {
				seterr(err, errlen,
				       "--env %s is given twice (give each variable once)", echo);
				return -1;
			}
	}
	return 0;
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

bool is_digit(char c)
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
