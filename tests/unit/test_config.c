/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of user/config.c: every helper on good, bad and boundary
 * inputs, and config_load() on files written to a private temp directory.
 *
 * gcc -std=gnu11 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
 *     -Iinclude -Iuser -o /tmp/test_config tests/unit/test_config.c \
 *     user/config.c -linih -lcmocka
 */
#include <arpa/inet.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* steer.h, which config.h includes, expects __u32 and friends. */
#include <linux/types.h>

#include "config.h"

static char tmpdir[256];
static char conf_path[PATH_MAX];
static struct config *cfg; /* ~180 KiB: on the heap, not the stack */
static char err[CONF_ERR_LEN];

/* ---- fixtures --------------------------------------------------------- */

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int n;

	(void)state;
	n = snprintf(tmpdir, sizeof(tmpdir), "%s/baton-test-config.XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(tmpdir) || !mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/web.conf", tmpdir);
	cfg = calloc(1, sizeof(*cfg));
	return cfg ? 0 : -1;
}

static int group_teardown(void **state)
{
	char path[PATH_MAX];

	(void)state;
	unlink(conf_path);
	snprintf(path, sizeof(path), "%s/plain-file", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	free(cfg);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Write text as web.conf and load it. */
static int load(const char *text)
{
	write_file(conf_path, text);
	memset(err, 0, sizeof(err));
	return config_load(conf_path, cfg, err, sizeof(err));
}

/*
 * Load text, expect failure with want in the message, and expect that the
 * failed load left nothing behind (ASan's leak check covers the rest).
 */
#define assert_load_error(text, want) check_load_error(text, want, __FILE__, __LINE__)

static void check_load_error(const char *text, const char *want, const char *file, int line)
{
	int rc = load(text);

	if (rc != -1 || !strstr(err, want)) {
		print_error("config_load returned %d\n  error: %s\n  wanted: %s\n", rc, err, want);
		_fail(file, line);
	}
	/* One line, and nothing left to free. */
	if (strchr(err, '\n') || cfg->nservices != 0) {
		print_error("error is not one line, or cfg not emptied: %s\n", err);
		_fail(file, line);
	}
}

#define assert_load_ok(text) check_load_ok(text, __FILE__, __LINE__)

static void check_load_ok(const char *text, const char *file, int line)
{
	if (load(text) != 0) {
		print_error("config_load failed: %s\n", err);
		_fail(file, line);
	}
}

/* A service section that loads, for tests that vary something else. */
#define SVC(name, port) "[service " name "]\nlisten = 127.0.0.1:" port "\nexec = /bin/true\n"

/* ---- parse_duration_ms ----------------------------------------------- */

static void duration_accepts_units(void **state)
{
	unsigned ms = 12345;

	(void)state;
	assert_int_equal(parse_duration_ms("250ms", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("10s", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(parse_duration_ms("2m", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(parse_duration_ms("1h", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(parse_duration_ms("30", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(parse_duration_ms("010s", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 10000);
}

static void duration_zero(void **state)
{
	unsigned ms = 1;

	(void)state;
	assert_int_equal(parse_duration_ms("0", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 0);
	ms = 1;
	assert_int_equal(parse_duration_ms("0ms", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 0);
	ms = 1;
	assert_int_equal(parse_duration_ms("0h", &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 0);
}

static void duration_upper_bound(void **state)
{
	const char *max[] = {"24h", "1440m", "86400s", "86400", "86400000ms"};
	const char *over[] = {"25h",
			      "1441m",
			      "86401s",
			      "86401",
			      "86400001ms",
			      "99999999999999999999999999s",
			      "18446744073709551617ms",
			      "4294967296ms",
			      "4295s0"};
	unsigned ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(max) / sizeof(max[0]); i++) {
		ms = 0;
		assert_int_equal(parse_duration_ms(max[i], &ms, err, sizeof(err)), 0);
		assert_int_equal(ms, 86400000);
	}
	for (i = 0; i < sizeof(over) / sizeof(over[0]) - 1; i++) {
		assert_int_equal(parse_duration_ms(over[i], &ms, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "longer than 24h"));
	}
	/* Junk after the digits is junk, however large the number. */
	assert_int_equal(parse_duration_ms("4295s0", &ms, err, sizeof(err)), -1);
}

static void duration_rejects_malformed(void **state)
{
	const char *bad[] = {"",     "-1s",  "-0",    "1.5s", "10x",  "s",    "ms",
			     " 10s", "10s ", "10 s",  "+5s",  "10S",  "1sms", "1d",
			     "0x10", "1e3",  "10sec", "h1",   "1m30s"};
	unsigned ms = 777;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_duration_ms(bad[i], &ms, err, sizeof(err)) != -1)
			fail_msg("duration \"%s\" was accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(ms, 777); /* untouched on error */
	parse_duration_ms("-1s", &ms, err, sizeof(err));
	assert_non_null(strstr(err, "negative"));
	parse_duration_ms("10x", &ms, err, sizeof(err));
	assert_non_null(strstr(err, "ms, s, m or h"));
}

static void duration_tolerates_small_err_buffer(void **state)
{
	char small[8];
	unsigned ms;

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(parse_duration_ms("bogus", &ms, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(parse_duration_ms("bogus", &ms, NULL, 0), -1);
}

/* ---- parse_listen ----------------------------------------------------- */

static void listen_ipv4(void **state)
{
	struct listen_addr la;
	struct sockaddr_in *sin = (struct sockaddr_in *)&la.ss;

	(void)state;
	assert_int_equal(parse_listen("1.2.3.4:80", &la, err, sizeof(err)), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 80);
	assert_int_equal(sin->sin_addr.s_addr, htonl(0x01020304));
	assert_int_equal(la.len, sizeof(struct sockaddr_in));
	assert_string_equal(la.text, "1.2.3.4:80");

	assert_int_equal(parse_listen("0.0.0.0:8080", &la, err, sizeof(err)), 0);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_string_equal(la.text, "0.0.0.0:8080");
}

static void listen_ipv6(void **state)
{
	struct listen_addr la;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&la.ss;

	(void)state;
	assert_int_equal(parse_listen("[::1]:80", &la, err, sizeof(err)), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 80);
	assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));
	assert_int_equal(la.len, sizeof(struct sockaddr_in6));
	assert_string_equal(la.text, "[::1]:80");

	assert_int_equal(parse_listen("[::]:8080", &la, err, sizeof(err)), 0);
	assert_memory_equal(&sin6->sin6_addr, &in6addr_any, sizeof(struct in6_addr));
	assert_string_equal(la.text, "[::]:8080");
}

static void listen_normalizes_text(void **state)
{
	struct listen_addr la;

	(void)state;
	assert_int_equal(parse_listen("[0:0:0:0:0:0:0:1]:443", &la, err, sizeof(err)), 0);
	assert_string_equal(la.text, "[::1]:443");
	assert_int_equal(parse_listen("[2001:DB8:0::1]:80", &la, err, sizeof(err)), 0);
	assert_string_equal(la.text, "[2001:db8::1]:80");
	assert_int_equal(parse_listen("127.0.0.1:00080", &la, err, sizeof(err)), 0);
	assert_string_equal(la.text, "127.0.0.1:80");
	assert_int_equal(parse_listen("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", &la,
				      err, sizeof(err)),
			 0);
	assert_true(strlen(la.text) < sizeof(la.text));
}

static void listen_port_bounds(void **state)
{
	struct listen_addr la;

	(void)state;
	assert_int_equal(parse_listen("10.0.0.1:1", &la, err, sizeof(err)), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&la.ss)->sin_port), 1);
	assert_int_equal(parse_listen("[::1]:65535", &la, err, sizeof(err)), 0);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&la.ss)->sin6_port), 65535);
	assert_int_equal(parse_listen("10.0.0.1:0", &la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1..65535"));
	assert_int_equal(parse_listen("10.0.0.1:65536", &la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1..65535"));
	assert_int_equal(parse_listen("[::1]:0", &la, err, sizeof(err)), -1);
	assert_int_equal(parse_listen("10.0.0.1:99999999999999999999", &la, err, sizeof(err)), -1);
}

static void listen_rejects_malformed(void **state)
{
	const char *bad[] = {
	    "",
	    "localhost:80",
	    "example.com:443",
	    "1.2.3.4",
	    "::1:80",
	    "[::1]",
	    "[::1]80",
	    "[::1:80",
	    "1.2.3.4:80x",
	    "1.2.3.4:80 ",
	    " 1.2.3.4:80",
	    "1.2.3:80",
	    "256.1.1.1:80",
	    "1.2.3.4:-1",
	    "1.2.3.4:+80",
	    ":80",
	    "[]:80",
	    "[fe80::1%lo]:80",
	    "[1.2.3.4]:80",
	    "1.2.3.4:",
	    "[::1]:",
	    "[::1]:80]",
	    "[::1]:80:81",
	    "0x7f.1:80",
	    "*:80",
	};
	struct listen_addr la;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_listen(bad[i], &la, err, sizeof(err)) != -1)
			fail_msg("listen \"%s\" was accepted as %s", bad[i], la.text);
		assert_true(strlen(err) > 0);
	}
}

static void listen_error_messages(void **state)
{
	struct listen_addr la;

	(void)state;
	assert_int_equal(parse_listen("localhost:80", &la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "host names are not accepted"));
	assert_int_equal(parse_listen("1.2.3.4", &la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing port"));
	assert_int_equal(parse_listen("::1:80", &la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "brackets"));
	assert_int_equal(parse_listen("[::1]", &la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing port"));
}

static void listen_failure_leaves_output_alone(void **state)
{
	struct listen_addr la, copy;

	(void)state;
	assert_int_equal(parse_listen("1.2.3.4:80", &la, err, sizeof(err)), 0);
	copy = la;
	assert_int_equal(parse_listen("1.2.3.4:0", &la, err, sizeof(err)), -1);
	assert_memory_equal(&la, &copy, sizeof(la));
}

/* ---- parse_signal, signal_name, ready_kind_name, ... ------------------- */

static void signal_names_accepted(void **state)
{
	static const struct {
		const char *s;
		int sig;
	} ok[] = {
	    {"TERM", SIGTERM},	  {"SIGTERM", SIGTERM},	  {"INT", SIGINT},   {"SIGINT", SIGINT},
	    {"QUIT", SIGQUIT},	  {"SIGQUIT", SIGQUIT},	  {"HUP", SIGHUP},   {"SIGHUP", SIGHUP},
	    {"USR1", SIGUSR1},	  {"SIGUSR1", SIGUSR1},	  {"USR2", SIGUSR2}, {"SIGUSR2", SIGUSR2},
	    {"WINCH", SIGWINCH},  {"SIGWINCH", SIGWINCH}, {"KILL", SIGKILL}, {"SIGKILL", SIGKILL},
	    {"sigterm", SIGTERM}, {"term", SIGTERM},
	};
	size_t i;
	int sig;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		sig = -1;
		if (parse_signal(ok[i].s, &sig, err, sizeof(err)) != 0)
			fail_msg("signal \"%s\" rejected: %s", ok[i].s, err);
		assert_int_equal(sig, ok[i].sig);
	}
}

static void signal_numbers(void **state)
{
	int sig;

	(void)state;
	assert_int_equal(parse_signal("1", &sig, err, sizeof(err)), 0);
	assert_int_equal(sig, 1);
	assert_int_equal(parse_signal("15", &sig, err, sizeof(err)), 0);
	assert_int_equal(sig, 15);
	assert_int_equal(parse_signal("31", &sig, err, sizeof(err)), 0);
	assert_int_equal(sig, 31);
	assert_int_equal(parse_signal("0", &sig, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1..31"));
	assert_int_equal(parse_signal("32", &sig, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1..31"));
	assert_int_equal(parse_signal("99999999999999999999", &sig, err, sizeof(err)), -1);
}

static void signal_rejects_others(void **state)
{
	const char *bad[] = {"",      "SIG", "FOO", "SIGSEGV", "STOP",	   " TERM",
			     "TERM ", "-15", "+15", "15x",     "SIGTERMX", "SIG15"};
	size_t i;
	int sig = 1234;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_signal(bad[i], &sig, err, sizeof(err)) != -1)
			fail_msg("signal \"%s\" was accepted", bad[i]);
	}
	assert_int_equal(sig, 1234);
	parse_signal("FOO", &sig, err, sizeof(err));
	assert_non_null(strstr(err, "TERM"));
}

static void signal_name_lookup(void **state)
{
	const char *names[] = {"TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "WINCH", "KILL"};
	char want[16];
	size_t i;
	int sig;

	(void)state;
	assert_string_equal(signal_name(SIGTERM), "SIGTERM");
	assert_string_equal(signal_name(SIGKILL), "SIGKILL");
	assert_string_equal(signal_name(SIGSEGV), "SIGSEGV");
	assert_string_equal(signal_name(0), "unknown");
	assert_string_equal(signal_name(64), "unknown");
	assert_string_equal(signal_name(-1), "unknown");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(parse_signal(names[i], &sig, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "SIG%s", names[i]);
		assert_string_equal(signal_name(sig), want);
	}
	/* Every number parse_signal accepts has a name to print. */
	for (sig = 1; sig <= 31; sig++)
		assert_string_not_equal(signal_name(sig), "unknown");
}

static void ready_kind_names(void **state)
{
	(void)state;
	assert_string_equal(ready_kind_name(READY_NONE), "none");
	assert_string_equal(ready_kind_name(READY_NOTIFY), "notify");
	assert_string_equal(ready_kind_name(READY_TCP), "tcp");
	assert_string_equal(ready_kind_name(READY_HTTP), "http");
	assert_string_equal(ready_kind_name(READY_EXEC), "exec");
	assert_string_equal(ready_kind_name((enum ready_kind)42), "unknown");
}

static void health_kind_names(void **state)
{
	(void)state;
	assert_string_equal(health_kind_name(HEALTH_NONE), "none");
	assert_string_equal(health_kind_name(HEALTH_TCP), "tcp");
	assert_string_equal(health_kind_name(HEALTH_HTTP), "http");
	assert_string_equal(health_kind_name(HEALTH_EXEC), "exec");
	assert_string_equal(health_kind_name((enum health_kind)42), "unknown");
}

static void hook_names(void **state)
{
	(void)state;
	assert_string_equal(hook_name(HOOK_BEFORE_START), "before-start");
	assert_string_equal(hook_name(HOOK_AFTER_SWITCH), "after-switch");
	assert_string_equal(hook_name(HOOK_AFTER_DRAIN), "after-drain");
	assert_string_equal(hook_name(HOOK_COUNT), "unknown");
	assert_string_equal(hook_name((enum hook_point) - 1), "unknown");
}

/* ---- parse_percent_bp, parse_steps ------------------------------------ */

static void percent_accepts(void **state)
{
	static const struct {
		const char *s;
		unsigned bp;
	} ok[] = {
	    {"5", 500},	   {"2.5", 250},  {"0.01", 1},	     {"100", 10000},	{"5%", 500},
	    {"0", 0},	   {"0.00", 0},	  {"0%", 0},	     {"100.00", 10000}, {"100%", 10000},
	    {"2.50", 250}, {"007", 700},  {"99.99", 9999},   {"0.1", 10},	{"12.34%", 1234},
	    {"0.99%", 99}, {"1.05", 105}, {"000100", 10000}, {"100.0%", 10000}, {"0.01%", 1},
	};
	unsigned bp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		bp = 12345;
		if (parse_percent_bp(ok[i].s, &bp, err, sizeof(err)) != 0)
			fail_msg("percentage \"%s\" rejected: %s", ok[i].s, err);
		if (bp != ok[i].bp)
			fail_msg("percentage \"%s\" gave %u, not %u", ok[i].s, bp, ok[i].bp);
	}
}

static void percent_rejects(void **state)
{
	static const struct {
		const char *s;
		const char *want;
	} bad[] = {
	    {"", "empty percentage"},
	    {"-5", "percentage \"-5\" is negative"},
	    {"-0", "is negative"},
	    {"-0.5%", "is negative"},
	    {"101", "percentage \"101\" is more than 100"},
	    {"100.01", "is more than 100"},
	    {"100.1", "is more than 100"},
	    {"1000", "is more than 100"},
	    {"101%", "is more than 100"},
	    {"99999999999999999999999999", "is more than 100"},
	    {"18446744073709551617", "is more than 100"},
	    {"0.001", "percentage \"0.001\" has more than two decimals"},
	    {"1.005%", "has more than two decimals"},
	    {"5.000", "has more than two decimals"},
	    {"5.", "invalid percentage \"5.\""},
	    {".5", "invalid percentage \".5\""},
	    {"5.%", "invalid percentage"},
	    {"%", "invalid percentage \"%\""},
	    {"%5", "invalid percentage"},
	    {"5%%", "invalid percentage"},
	    {"5 %", "invalid percentage"},
	    {" 5", "invalid percentage"},
	    {"5 ", "invalid percentage"},
	    {"+5", "invalid percentage"},
	    {"abc", "invalid percentage \"abc\" (use 0..100 with at most two decimals"},
	    {"5x", "invalid percentage"},
	    {"1e2", "invalid percentage"},
	    {"0x10", "invalid percentage"},
	    {"1.2.3", "invalid percentage"},
	    {"5,5", "invalid percentage"},
	    {"0.0.1", "invalid percentage"},
	    {"0.001x", "invalid percentage"},
	};
	unsigned bp = 777;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_percent_bp(bad[i].s, &bp, err, sizeof(err)) != -1)
			fail_msg("percentage \"%s\" was accepted as %u", bad[i].s, bp);
		if (!strstr(err, bad[i].want))
			fail_msg("percentage \"%s\": error \"%s\", wanted \"%s\"", bad[i].s, err,
				 bad[i].want);
	}
	assert_int_equal(bp, 777); /* untouched on error */
	assert_int_equal(parse_percent_bp("x", &bp, NULL, 0), -1);
}

static void steps_accepts(void **state)
{
	unsigned steps[MAX_STEPS];
	char line[256];
	char *p;
	int i;

	(void)state;
	assert_int_equal(parse_steps("5,25,50,100", steps, err, sizeof(err)), 4);
	assert_int_equal(steps[0], 500);
	assert_int_equal(steps[1], 2500);
	assert_int_equal(steps[2], 5000);
	assert_int_equal(steps[3], 10000);
	/* Spaces after commas; % signs; 100 appended when missing. */
	assert_int_equal(parse_steps("1%, 2.5%,\t 50", steps, err, sizeof(err)), 4);
	assert_int_equal(steps[0], 100);
	assert_int_equal(steps[1], 250);
	assert_int_equal(steps[2], 5000);
	assert_int_equal(steps[3], WEIGHT_MAX);
	assert_int_equal(parse_steps("100", steps, err, sizeof(err)), 1);
	assert_int_equal(steps[0], WEIGHT_MAX);
	assert_int_equal(parse_steps("100%", steps, err, sizeof(err)), 1);
	assert_int_equal(steps[0], WEIGHT_MAX);
	assert_int_equal(parse_steps("0.01", steps, err, sizeof(err)), 2);
	assert_int_equal(steps[0], 1);
	assert_int_equal(steps[1], WEIGHT_MAX);
	assert_int_equal(parse_steps("99.99,100.00", steps, err, sizeof(err)), 2);
	assert_int_equal(steps[0], 9999);
	assert_int_equal(steps[1], WEIGHT_MAX);

	/* MAX_STEPS given, the last one 100. */
	p = line;
	for (i = 1; i < MAX_STEPS; i++)
		p += sprintf(p, "%d,", i);
	sprintf(p, "100");
	assert_int_equal(parse_steps(line, steps, err, sizeof(err)), MAX_STEPS);
	assert_int_equal(steps[0], 100);
	assert_int_equal(steps[MAX_STEPS - 2], (MAX_STEPS - 1) * 100);
	assert_int_equal(steps[MAX_STEPS - 1], WEIGHT_MAX);
	/* MAX_STEPS - 1 given: 100 appended makes MAX_STEPS. */
	p[-1] = '\0';
	assert_int_equal(parse_steps(line, steps, err, sizeof(err)), MAX_STEPS);
	assert_int_equal(steps[MAX_STEPS - 2], (MAX_STEPS - 1) * 100);
	assert_int_equal(steps[MAX_STEPS - 1], WEIGHT_MAX);
}

static void steps_rejects(void **state)
{
	static const struct {
		const char *s;
		const char *want;
	} bad[] = {
	    {"", "empty list of steps"},
	    {"0,50", "step \"0\" must be more than 0"},
	    {"0.00%,50", "step \"0.00%\" must be more than 0"},
	    {"50,25", "step \"25\" is not more than the step before it (50): steps must increase"},
	    {"5,5", "step \"5\" is not more than the step before it (5)"},
	    {"2.5,2.50", "step \"2.50\" is not more than the step before it (2.5)"},
	    {"0.05,0.01", "step \"0.01\" is not more than the step before it (0.05)"},
	    {"100,100", "step \"100\" is not more than"},
	    {"50,100,75", "step \"75\" is not more than the step before it (100)"},
	    {"5,,25", "step 2 is empty"},
	    {"5,25,", "step 3 is empty"},
	    {",5", "step 1 is empty"},
	    {"5, ,25", "step 2 is empty"},
	    {"5 ,25", "step 1: invalid percentage \"5 \""},
	    {"5,abc", "step 2: invalid percentage \"abc\""},
	    {"5;25", "step 1: invalid percentage \"5;25\""},
	    {"5,101", "step 2: percentage \"101\" is more than 100"},
	    {"5,-10", "step 2: percentage \"-10\" is negative"},
	    {"0.005", "step 1: percentage \"0.005\" has more than two decimals"},
	};
	unsigned steps[MAX_STEPS] = {1, 2, 3};
	char line[256];
	char *p;
	size_t i;
	int k;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_steps(bad[i].s, steps, err, sizeof(err)) != -1)
			fail_msg("steps \"%s\" were accepted", bad[i].s);
		if (!strstr(err, bad[i].want))
			fail_msg("steps \"%s\": error \"%s\", wanted \"%s\"", bad[i].s, err,
				 bad[i].want);
	}
	/* Too many: MAX_STEPS + 1 given, or MAX_STEPS and then the 100. */
	p = line;
	for (k = 1; k <= MAX_STEPS; k++)
		p += sprintf(p, "%d,", k);
	sprintf(p, "100");
	assert_int_equal(parse_steps(line, steps, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 16 steps"));
	assert_null(strstr(err, "added"));
	p[-1] = '\0';
	assert_int_equal(parse_steps(line, steps, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 16 steps with the 100 added after the last"));
	/* Untouched on error. */
	assert_int_equal(steps[0], 1);
	assert_int_equal(steps[1], 2);
	assert_int_equal(steps[2], 3);
}

/* ---- parse_service_name ----------------------------------------------- */

static void service_name_accepts(void **state)
{
	const char *ok[] = {"web", "a", "api-v2", "a_b", "z9", "abcdefghijklmnopqrstuvwxyz01234"};
	size_t i;

	(void)state;
	assert_int_equal(strlen(ok[5]), NAME_MAX_LEN - 1);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (parse_service_name(ok[i], err, sizeof(err)) != 0)
			fail_msg("service name \"%s\" rejected: %s", ok[i], err);
	}
}

static void service_name_rejects(void **state)
{
	(void)state;
	assert_int_equal(parse_service_name("", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(parse_service_name("abcdefghijklmnopqrstuvwxyz012345", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "longer than 31"));
	assert_int_equal(parse_service_name("Web", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lowercase letter"));
	assert_int_equal(parse_service_name("1web", err, sizeof(err)), -1);
	assert_int_equal(parse_service_name("-web", err, sizeof(err)), -1);
	assert_int_equal(parse_service_name("_web", err, sizeof(err)), -1);
	assert_int_equal(parse_service_name("web.api", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a-z, 0-9, _ and -"));
	assert_int_equal(parse_service_name("web api", err, sizeof(err)), -1);
	assert_int_equal(parse_service_name("wEb", err, sizeof(err)), -1);
	assert_int_equal(parse_service_name("w\303\251b", err, sizeof(err)), -1);
	assert_int_equal(parse_service_name("web/", err, sizeof(err)), -1);
}

/* ---- split_command ---------------------------------------------------- */

static void split_plain_words(void **state)
{
	char *argv[MAX_ARGS + 1];

	(void)state;
	assert_int_equal(split_command("/bin/true a b", argv, MAX_ARGS, err, sizeof(err)), 3);
	assert_string_equal(argv[0], "/bin/true");
	assert_string_equal(argv[1], "a");
	assert_string_equal(argv[2], "b");
	assert_null(argv[3]);
	free_argv(argv);

	assert_int_equal(split_command("  /bin/x \t a\t\tb  ", argv, MAX_ARGS, err, sizeof(err)),
			 3);
	assert_string_equal(argv[0], "/bin/x");
	assert_string_equal(argv[2], "b");
	assert_null(argv[3]);
	free_argv(argv);
}

static void split_single_quotes(void **state)
{
	char *argv[MAX_ARGS + 1];

	(void)state;
	/* Inside '...' nothing is special, backslashes and " included. */
	assert_int_equal(
	    split_command("x 'a b' 'c\\d' 'say \"hi\"'", argv, MAX_ARGS, err, sizeof(err)), 4);
	assert_string_equal(argv[1], "a b");
	assert_string_equal(argv[2], "c\\d");
	assert_string_equal(argv[3], "say \"hi\"");
	assert_null(argv[4]);
	free_argv(argv);
}

static void split_double_quotes(void **state)
{
	char *argv[MAX_ARGS + 1];

	(void)state;
	assert_int_equal(split_command("x \"a \\\"b\\\" \\\\ c\" \"tab\\n\" \"it's\"", argv,
				       MAX_ARGS, err, sizeof(err)),
			 4);
	assert_string_equal(argv[1], "a \"b\" \\ c");
	assert_string_equal(argv[2], "tab\\n"); /* only \" and \\ are escapes */
	assert_string_equal(argv[3], "it's");
	free_argv(argv);
}

static void split_backslash_outside_quotes(void **state)
{
	char *argv[MAX_ARGS + 1];

	(void)state;
	assert_int_equal(split_command("a\\ b c\\\\d \\'e \\\"f", argv, MAX_ARGS, err, sizeof(err)),
			 4);
	assert_string_equal(argv[0], "a b");
	assert_string_equal(argv[1], "c\\d");
	assert_string_equal(argv[2], "'e");
	assert_string_equal(argv[3], "\"f");
	free_argv(argv);
}

static void split_joins_adjacent_parts(void **state)
{
	char *argv[MAX_ARGS + 1];

	(void)state;
	assert_int_equal(split_command("/usr/local/bin/server --port 8080 \"--name=my server\"",
				       argv, MAX_ARGS, err, sizeof(err)),
			 4);
	assert_string_equal(argv[3], "--name=my server");
	free_argv(argv);

	assert_int_equal(split_command("--name=\"my server\" a'b'\"c\"d '' \"\"", argv, MAX_ARGS,
				       err, sizeof(err)),
			 4);
	assert_string_equal(argv[0], "--name=my server");
	assert_string_equal(argv[1], "abcd");
	assert_string_equal(argv[2], ""); /* empty quotes are an empty argument */
	assert_string_equal(argv[3], "");
	assert_null(argv[4]);
	free_argv(argv);
}

static void split_rejects_unbalanced(void **state)
{
	const char *bad[] = {"x 'abc", "x \"abc", "x \"abc\\\"", "x abc\\", "'", "\""};
	char *argv[MAX_ARGS + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		argv[0] = (char *)"sentinel";
		if (split_command(bad[i], argv, MAX_ARGS, err, sizeof(err)) != -1)
			fail_msg("command <%s> was accepted", bad[i]);
		assert_null(argv[0]); /* nothing left to free */
	}
	split_command("x 'abc", argv, MAX_ARGS, err, sizeof(err));
	assert_non_null(strstr(err, "unterminated '"));
	split_command("x \"abc", argv, MAX_ARGS, err, sizeof(err));
	assert_non_null(strstr(err, "unterminated \""));
}

static void split_rejects_empty(void **state)
{
	char *argv[MAX_ARGS + 1];

	(void)state;
	assert_int_equal(split_command("", argv, MAX_ARGS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty command"));
	assert_null(argv[0]);
	assert_int_equal(split_command(" \t ", argv, MAX_ARGS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty command"));
}

static void split_max_args(void **state)
{
	char line[MAX_ARGS * 4 + 8] = "";
	char *argv[MAX_ARGS + 1];
	int i;

	(void)state;
	for (i = 0; i < MAX_ARGS; i++)
		strcat(line, "a ");
	assert_int_equal(split_command(line, argv, MAX_ARGS, err, sizeof(err)), MAX_ARGS);
	assert_null(argv[MAX_ARGS]);
	free_argv(argv);
	strcat(line, "b");
	assert_int_equal(split_command(line, argv, MAX_ARGS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 64 arguments"));
	assert_null(argv[0]);
	/* A small max is honoured too. */
	assert_int_equal(split_command("a b c", argv, 2, err, sizeof(err)), -1);
	assert_int_equal(split_command("a b", argv, 2, err, sizeof(err)), 2);
	free_argv(argv);
}

static void free_argv_clears_entries(void **state)
{
	char *argv[4] = {strdup("a"), strdup("b"), NULL, NULL};

	(void)state;
	free_argv(argv);
	assert_null(argv[0]);
	assert_null(argv[1]);
	free_argv(argv); /* twice is harmless */
	free_argv(NULL);
}

/* ---- config_load: good files ------------------------------------------ */

static const char full_conf[] = "# baton agent configuration\n"			  /* 1 */
				"[agent]\n"					  /* 2 */
				"control = /run/test/control.sock   ; optional\n" /* 3 */
				"bpf-dir = /sys/fs/bpf/test\n"			  /* 4 */
				"run-dir = /run/test\n"				  /* 5 */
				"\n"						  /* 6 */
				"[service web]\n"				  /* 7 */
				"listen = 0.0.0.0:8080        ; first\n"	  /* 8 */
				"listen = [::]:8080\n"				  /* 9 */
				"exec = /bin/sh -c 'exec sleep 1' \"--name=my server\"\n"
				"instances = 2\n"
				"user = root\n"
				"workdir = /srv/web\n"
				"environment = RUST_LOG=info\n"
				"environment = EMPTY=\n"
				"environment = EQ=a=b\n"
				"ready = tcp\n"
				"ready-timeout = 15s\n"
				"drain-policy = signal-then-wait\n"
				"exit-signal = SIGINT\n"
				"drain-delay = 250ms\n"
				"drain-timeout = 2m\n"
				"kill-after = 1h\n"
				"backlog = 4096\n";

static void load_full_config(void **state)
{
	const struct service_conf *s;

	(void)state;
	assert_load_ok(full_conf);
	assert_string_equal(cfg->agent.control, "/run/test/control.sock");
	assert_string_equal(cfg->agent.bpf_dir, "/sys/fs/bpf/test");
	assert_string_equal(cfg->agent.run_dir, "/run/test");
	assert_int_equal(cfg->nservices, 1);

	s = &cfg->services[0];
	assert_string_equal(s->name, "web");
	assert_int_equal(s->line, 7);
	assert_int_equal(s->nlisten, 2);
	assert_string_equal(s->listen[0].text, "0.0.0.0:8080");
	assert_int_equal(s->listen[0].ss.ss_family, AF_INET);
	assert_string_equal(s->listen[1].text, "[::]:8080");
	assert_int_equal(s->listen[1].ss.ss_family, AF_INET6);
	assert_int_equal(s->argc, 4);
	assert_string_equal(s->argv[0], "/bin/sh");
	assert_string_equal(s->argv[1], "-c");
	assert_string_equal(s->argv[2], "exec sleep 1");
	assert_string_equal(s->argv[3], "--name=my server");
	assert_null(s->argv[4]);
	assert_int_equal(s->nenv, 3);
	assert_string_equal(s->env[0], "RUST_LOG=info");
	assert_string_equal(s->env[1], "EMPTY=");
	assert_string_equal(s->env[2], "EQ=a=b");
	assert_null(s->env[3]);
	assert_int_equal(s->instances, 2);
	assert_string_equal(s->user, "root");
	assert_string_equal(s->workdir, "/srv/web");
	assert_int_equal(s->ready, READY_TCP);
	assert_int_equal(s->health, HEALTH_TCP); /* derived from ready */
	assert_int_equal(s->ready_timeout_ms, 15000);
	assert_int_equal(s->drain, DRAIN_SIGNAL_THEN_WAIT);
	assert_int_equal(s->exit_signal, SIGINT);
	assert_int_equal(s->drain_delay_ms, 250);
	assert_int_equal(s->drain_timeout_ms, 120000);
	assert_int_equal(s->kill_after_ms, 3600000);
	assert_int_equal(s->backlog, 4096);
	config_free(cfg);
	assert_null(cfg->services[0].argv[0]);
	assert_null(cfg->services[0].env[0]);
	config_free(cfg); /* twice is harmless */
}

static void load_applies_defaults(void **state)
{
	const struct service_conf *s;

	(void)state;
	assert_load_ok("[service web]\nlisten = 127.0.0.1:8080\nexec = /bin/true\n");
	assert_string_equal(cfg->agent.control, "/run/baton/control.sock");
	assert_string_equal(cfg->agent.bpf_dir, "/sys/fs/bpf/baton");
	assert_string_equal(cfg->agent.run_dir, "/run/baton");
	s = &cfg->services[0];
	assert_int_equal(s->line, 1);
	assert_int_equal(s->argc, 1);
	assert_int_equal(s->nenv, 0);
	assert_null(s->env[0]);
	assert_int_equal(s->instances, 1);
	assert_string_equal(s->user, "");
	assert_string_equal(s->workdir, "");
	assert_int_equal(s->ready, READY_NOTIFY);
	assert_int_equal(s->ready_timeout_ms, 10000);
	assert_int_equal(s->drain, DRAIN_WAIT_THEN_SIGNAL);
	assert_int_equal(s->exit_signal, SIGTERM);
	assert_int_equal(s->drain_delay_ms, 0);
	assert_int_equal(s->drain_timeout_ms, 30000);
	assert_int_equal(s->kill_after_ms, 5000);
	assert_false(s->drain_reset);
	assert_false(s->drain_http);
	assert_false(s->byte_counts);
	assert_int_equal(s->backlog, 1024);
	config_free(cfg);
	assert_load_ok(SVC("web", "8080") "byte-counts = yes\n");
	assert_true(cfg->services[0].byte_counts);
	config_free(cfg);
}

static void load_several_services(void **state)
{
	(void)state;
	assert_load_ok("[agent]\n"
		       "\n" SVC("web", "80") "listen = [::1]:80\n"
					     "\n" SVC("api", "81") SVC("worker-2", "82"));
	assert_int_equal(cfg->nservices, 3);
	assert_string_equal(cfg->services[0].name, "web");
	assert_int_equal(cfg->services[0].line, 3);
	assert_int_equal(cfg->services[0].nlisten, 2);
	assert_string_equal(cfg->services[1].name, "api");
	assert_int_equal(cfg->services[1].line, 8);
	assert_string_equal(cfg->services[2].name, "worker-2");
	assert_int_equal(cfg->services[2].line, 11);
	assert_string_equal(cfg->services[2].listen[0].text, "127.0.0.1:82");
	config_free(cfg);
}

static void load_empty_file(void **state)
{
	(void)state;
	assert_load_ok("");
	assert_int_equal(cfg->nservices, 0);
	assert_string_equal(cfg->agent.control, "/run/baton/control.sock");
	assert_load_ok("# nothing here\n; nor here\n\n[agent]\n");
	assert_int_equal(cfg->nservices, 0);
	config_free(cfg);
}

static void load_comments_and_indentation(void **state)
{
	(void)state;
	/* An indented line is a key of its own, never the continuation of
	 * the line above (inih would otherwise glue it to "listen"). */
	assert_load_ok("  # comment\n"
		       "\t; comment\n"
		       "  [service web]   ; trailing comment\n"
		       "    listen = 127.0.0.1:8080 ; why\n"
		       "    exec = /bin/sh -c \"echo a;b\"\n"
		       "\tinstances = 3\n"
		       "backlog: 10\n");
	assert_int_equal(cfg->services[0].nlisten, 1);
	assert_int_equal(cfg->services[0].instances, 3);
	assert_int_equal(cfg->services[0].backlog, 10);
	assert_string_equal(cfg->services[0].argv[2], "echo a;b");
	config_free(cfg);
}

static void load_crlf_and_bom(void **state)
{
	(void)state;
	assert_load_ok("\xef\xbb\xbf[service web]\r\nlisten = 127.0.0.1:8080\r\n"
		       "exec = /bin/true x\r\n");
	assert_string_equal(cfg->services[0].argv[1], "x");
	config_free(cfg);
}

static void load_boundaries(void **state)
{
	(void)state;
	assert_load_ok(SVC("web", "8080") "instances = 32\nbacklog = 65535\n"
					  "drain-delay = 0\nready-timeout = 24h\n"
					  "exit-signal = 9\n");
	assert_int_equal(cfg->services[0].instances, MAX_INSTANCES);
	assert_int_equal(cfg->services[0].backlog, 65535);
	assert_int_equal(cfg->services[0].drain_delay_ms, 0);
	assert_int_equal(cfg->services[0].ready_timeout_ms, 86400000);
	assert_int_equal(cfg->services[0].exit_signal, 9);
	config_free(cfg);
	assert_load_ok(SVC("web", "8080") "instances = 1\nbacklog = 1\nready = none\n");
	assert_int_equal(cfg->services[0].instances, 1);
	assert_int_equal(cfg->services[0].backlog, 1);
	assert_int_equal(cfg->services[0].ready, READY_NONE);
	config_free(cfg);
	assert_load_ok(SVC("web", "8080") "ready = notify\n");
	assert_int_equal(cfg->services[0].ready, READY_NOTIFY);
	config_free(cfg);
}

static void load_max_services_and_listens(void **state)
{
	char *text = malloc(MAX_SERVICES * 80 + 512);
	char want[64];
	char *p = text;
	int i;

	(void)state;
	for (i = 0; i < MAX_SERVICES; i++)
		p += sprintf(p, "[service s%d]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n", i,
			     10000 + i);
	assert_load_ok(text);
	assert_int_equal(cfg->nservices, MAX_SERVICES);
	config_free(cfg);

	/* One more service is one too many; its header is the line at fault. */
	sprintf(p, "[service extra]\nlisten = 127.0.0.1:9\nexec = /bin/true\n");
	snprintf(want, sizeof(want), "web.conf:%d: more than %d services", MAX_SERVICES * 3 + 1,
		 MAX_SERVICES);
	assert_load_error(text, want);

	/* MAX_LISTEN addresses fit; one more does not. */
	p = text + sprintf(text, "[service web]\nexec = /bin/true\n");
	for (i = 0; i < MAX_LISTEN; i++)
		p += sprintf(p, "listen = 127.0.0.1:%d\n", 20000 + i);
	assert_load_ok(text);
	assert_int_equal(cfg->services[0].nlisten, MAX_LISTEN);
	config_free(cfg);
	sprintf(p, "listen = 127.0.0.1:30000\n");
	snprintf(want, sizeof(want), "web.conf:%d: more than %d listen addresses", MAX_LISTEN + 3,
		 MAX_LISTEN);
	assert_load_error(text, want);
	free(text);
}

static void load_max_environment(void **state)
{
	char text[4096];
	char *p = text;
	int i;

	(void)state;
	p += sprintf(p, SVC("web", "80"));
	for (i = 0; i < MAX_ENV; i++)
		p += sprintf(p, "environment = V%d=%d\n", i, i);
	assert_load_ok(text);
	assert_int_equal(cfg->services[0].nenv, MAX_ENV);
	assert_string_equal(cfg->services[0].env[MAX_ENV - 1], "V31=31");
	assert_null(cfg->services[0].env[MAX_ENV]);
	config_free(cfg);
	sprintf(p, "environment = ONE_MORE=1\n");
	assert_load_error(text, "web.conf:36: more than 32 environment entries");
}

static void load_rollout_defaults(void **state)
{
	const struct service_conf *s;
	int h;

	(void)state;
	assert_load_ok(SVC("web", "80"));
	s = &cfg->services[0];
	assert_int_equal(s->steering, STEER_STICKY);
	assert_int_equal(s->strategy, STRATEGY_BLUEGREEN);
	assert_int_equal(s->nsteps, 4);
	assert_int_equal(s->steps[0], 500);
	assert_int_equal(s->steps[1], 2500);
	assert_int_equal(s->steps[2], 5000);
	assert_int_equal(s->steps[3], WEIGHT_MAX);
	assert_int_equal(s->bake_ms, 30000);
	assert_int_equal(s->ready, READY_NOTIFY);
	assert_int_equal(s->health, HEALTH_NONE);
	assert_string_equal(s->health_path, "/");
	assert_null(s->health_argv[0]);
	assert_int_equal(s->health_interval_ms, 1000);
	assert_int_equal(s->health_timeout_ms, 1000);
	assert_int_equal(s->health_threshold, 3);
	assert_int_equal(s->max_error_bp, 100);
	for (h = 0; h < HOOK_COUNT; h++)
		assert_null(s->hook[h][0]);
	assert_int_equal(s->hook_timeout_ms, 60000);
	config_free(cfg);
}

static const char rollout_conf[] = SVC("web", "80")  /* 1-3 */
    "steering = per-connection\n"		     /* 4 */
    "strategy = canary\n"			     /* 5 */
    "steps = 1, 2.5%, 10,50\n"			     /* 6 */
    "bake = 0\n"				     /* 7 */
    "ready = http\n"				     /* 8 */
    "health = exec\n"				     /* 9 */
    "health-path = /healthz?deep=1&x=%20\n"	     /* 10 */
    "health-command = /bin/sh -c 'exit 0' \"a b\"\n" /* 11 */
    "health-interval = 2s\n"			     /* 12 */
    "health-timeout = 500ms\n"			     /* 13 */
    "health-threshold = 100\n"			     /* 14 */
    "max-error-rate = 0.5%\n"			     /* 15 */
    "before-start = /bin/true before\n"		     /* 16 */
    "after-switch = /bin/sh -c \"echo switched\"\n"  /* 17 */
    "after-drain = /bin/true 'drained ok'\n"	     /* 18 */
    "hook-timeout = 2m\n";			     /* 19 */

static void load_rollout_full(void **state)
{
	const struct service_conf *s;

	(void)state;
	assert_load_ok(rollout_conf);
	s = &cfg->services[0];
	assert_int_equal(s->steering, STEER_PER_CONNECTION);
	assert_int_equal(s->strategy, STRATEGY_CANARY);
	assert_int_equal(s->nsteps, 5);
	assert_int_equal(s->steps[0], 100);
	assert_int_equal(s->steps[1], 250);
	assert_int_equal(s->steps[2], 1000);
	assert_int_equal(s->steps[3], 5000);
	assert_int_equal(s->steps[4], WEIGHT_MAX);
	assert_int_equal(s->bake_ms, 0);
	assert_int_equal(s->ready, READY_HTTP);
	assert_int_equal(s->health, HEALTH_EXEC);
	assert_string_equal(s->health_path, "/healthz?deep=1&x=%20");
	assert_string_equal(s->health_argv[0], "/bin/sh");
	assert_string_equal(s->health_argv[1], "-c");
	assert_string_equal(s->health_argv[2], "exit 0");
	assert_string_equal(s->health_argv[3], "a b");
	assert_null(s->health_argv[4]);
	assert_int_equal(s->health_interval_ms, 2000);
	assert_int_equal(s->health_timeout_ms, 500);
	assert_int_equal(s->health_threshold, 100);
	assert_int_equal(s->max_error_bp, 50);
	assert_string_equal(s->hook[HOOK_BEFORE_START][0], "/bin/true");
	assert_string_equal(s->hook[HOOK_BEFORE_START][1], "before");
	assert_null(s->hook[HOOK_BEFORE_START][2]);
	assert_string_equal(s->hook[HOOK_AFTER_SWITCH][0], "/bin/sh");
	assert_string_equal(s->hook[HOOK_AFTER_SWITCH][1], "-c");
	assert_string_equal(s->hook[HOOK_AFTER_SWITCH][2], "echo switched");
	assert_null(s->hook[HOOK_AFTER_SWITCH][3]);
	assert_string_equal(s->hook[HOOK_AFTER_DRAIN][0], "/bin/true");
	assert_string_equal(s->hook[HOOK_AFTER_DRAIN][1], "drained ok");
	assert_null(s->hook[HOOK_AFTER_DRAIN][2]);
	assert_int_equal(s->hook_timeout_ms, 120000);
	/* Everything malloc'd is freed (ASan's leak check) and cleared. */
	config_free(cfg);
	assert_null(cfg->services[0].health_argv[0]);
	assert_null(cfg->services[0].hook[HOOK_BEFORE_START][0]);
	assert_null(cfg->services[0].hook[HOOK_AFTER_SWITCH][0]);
	assert_null(cfg->services[0].hook[HOOK_AFTER_DRAIN][0]);
	config_free(cfg); /* twice is harmless */
}

static void load_health_default_derivation(void **state)
{
	static const struct {
		const char *keys;
		enum health_kind want;
	} cases[] = {
	    {"", HEALTH_NONE},
	    {"ready = notify\n", HEALTH_NONE},
	    {"ready = none\n", HEALTH_NONE},
	    {"ready = tcp\n", HEALTH_TCP},
	    {"ready = http\n", HEALTH_HTTP},
	    {"ready = exec\nhealth-command = /bin/true\n", HEALTH_EXEC},
	    /* Keys may come in any order: derived after the section. */
	    {"health-command = /bin/true\nready = exec\n", HEALTH_EXEC},
	    {"health-path = /up\nready = http\n", HEALTH_HTTP},
	    /* Given, health is never derived. */
	    {"ready = tcp\nhealth = none\n", HEALTH_NONE},
	    {"health = none\nready = http\n", HEALTH_NONE},
	    {"ready = tcp\nhealth = http\n", HEALTH_HTTP},
	    {"ready = http\nhealth = tcp\n", HEALTH_TCP},
	    {"ready = none\nhealth = tcp\n", HEALTH_TCP},
	    {"ready = notify\nhealth = exec\nhealth-command = /bin/true\n", HEALTH_EXEC},
	    {"ready = exec\nhealth = none\nhealth-command = /bin/true\n", HEALTH_NONE},
	};
	char text[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), SVC("web", "80") "%s", cases[i].keys);
		if (load(text) != 0)
			fail_msg("case %zu failed to load: %s", i, err);
		if (cfg->services[0].health != cases[i].want)
			fail_msg("case %zu: health %s, wanted %s", i,
				 health_kind_name(cfg->services[0].health),
				 health_kind_name(cases[i].want));
		config_free(cfg);
	}
	/* Per service: derived when the next section starts, or at the end. */
	assert_load_ok(SVC("web", "80") "ready = tcp\n" SVC("api", "81") "[agent]\n" SVC(
	    "db", "82") "ready = http\n");
	assert_int_equal(cfg->services[0].health, HEALTH_TCP);
	assert_int_equal(cfg->services[1].health, HEALTH_NONE);
	assert_int_equal(cfg->services[2].health, HEALTH_HTTP);
	config_free(cfg);
}

static void load_rollout_values(void **state)
{
	const struct service_conf *s = &cfg->services[0];

	(void)state;
	assert_load_ok(SVC("web", "80") "steering = sticky\nstrategy = bluegreen\nsteps = 100\n"
					"bake = 24h\nmax-error-rate = off\nhealth-threshold = 1\n"
					"hook-timeout = 1ms\n");
	assert_int_equal(s->steering, STEER_STICKY);
	assert_int_equal(s->strategy, STRATEGY_BLUEGREEN);
	assert_int_equal(s->nsteps, 1);
	assert_int_equal(s->steps[0], WEIGHT_MAX);
	assert_int_equal(s->bake_ms, 86400000);
	assert_int_equal(s->max_error_bp, ERROR_RATE_OFF);
	assert_int_equal(s->health_threshold, 1);
	assert_int_equal(s->hook_timeout_ms, 1);
	config_free(cfg);

	assert_load_ok(SVC("web", "80") "max-error-rate = 0\n");
	assert_int_equal(s->max_error_bp, 0);
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "max-error-rate = 100%\n");
	assert_int_equal(s->max_error_bp, WEIGHT_MAX);
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "max-error-rate = 2\nhealth-threshold = 042\n");
	assert_int_equal(s->max_error_bp, 200);
	assert_int_equal(s->health_threshold, 42);
	config_free(cfg);

	/* health-timeout may be longer than health-interval: checks never
	 * overlap, a slow one delays the next.  Neither changes the other. */
	assert_load_ok(SVC("web", "80") "health-interval = 200ms\nhealth-timeout = 1s\n");
	assert_int_equal(s->health_interval_ms, 200);
	assert_int_equal(s->health_timeout_ms, 1000);
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "health-interval = 500ms\n");
	assert_int_equal(s->health_interval_ms, 500);
	assert_int_equal(s->health_timeout_ms, 1000);
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "health-timeout = 24h\nhealth-interval = 1ms\n");
	assert_int_equal(s->health_interval_ms, 1);
	assert_int_equal(s->health_timeout_ms, 86400000);
	config_free(cfg);

	/* health-path is used by ready = http, or by health = http alone. */
	assert_load_ok(SVC("web", "80") "ready = tcp\nhealth = http\nhealth-path = /\n");
	assert_string_equal(s->health_path, "/");
	assert_int_equal(s->health, HEALTH_HTTP);
	config_free(cfg);
	/* Canary with no health checks: only crashes and error rates gate it. */
	assert_load_ok(SVC("web", "80") "strategy = canary\nhealth = none\nready = tcp\n");
	assert_int_equal(s->strategy, STRATEGY_CANARY);
	assert_int_equal(s->health, HEALTH_NONE);
	config_free(cfg);
}

static void load_hooks(void **state)
{
	const struct service_conf *s = &cfg->services[0];

	(void)state;
	/* One hook: the others stay empty. */
	assert_load_ok(SVC("web", "80") "after-drain = /bin/sh -c 'rm -rf \"$X\"' x\\ y\n");
	assert_null(s->hook[HOOK_BEFORE_START][0]);
	assert_null(s->hook[HOOK_AFTER_SWITCH][0]);
	assert_string_equal(s->hook[HOOK_AFTER_DRAIN][0], "/bin/sh");
	assert_string_equal(s->hook[HOOK_AFTER_DRAIN][1], "-c");
	assert_string_equal(s->hook[HOOK_AFTER_DRAIN][2], "rm -rf \"$X\"");
	assert_string_equal(s->hook[HOOK_AFTER_DRAIN][3], "x y");
	assert_null(s->hook[HOOK_AFTER_DRAIN][4]);
	config_free(cfg);
	assert_null(s->hook[HOOK_AFTER_DRAIN][0]);

	/* Hooks of two services are their own. */
	assert_load_ok(SVC("web", "80") "before-start = /bin/true a\n" SVC(
	    "api", "81") "before-start = /bin/true b\n");
	assert_string_equal(cfg->services[0].hook[HOOK_BEFORE_START][1], "a");
	assert_string_equal(cfg->services[1].hook[HOOK_BEFORE_START][1], "b");
	config_free(cfg);
	assert_null(cfg->services[1].hook[HOOK_BEFORE_START][0]);
}

/* ---- config_load: errors ---------------------------------------------- */

static void error_cannot_open(void **state)
{
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing.conf: cannot open: No such file or directory"));
	assert_int_equal(cfg->nservices, 0);
	/* A directory is a configuration of *.conf files; one without any is an error. */
	snprintf(path, sizeof(path), "%s/empty.d", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty.d: no .conf file in this directory"));
	assert_int_equal(rmdir(path), 0);
}

/* conf.d next to the main file: one file per service, read in name order. */
static void conf_dir(void **state)
{
	char dir[PATH_MAX], a[PATH_MAX + 16], b[PATH_MAX + 16], c[PATH_MAX + 16];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/conf.d", tmpdir);
	snprintf(a, sizeof(a), "%s/b-api.conf", dir);
	snprintf(b, sizeof(b), "%s/a-web.conf", dir);
	snprintf(c, sizeof(c), "%s/notes.txt", dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(a, "[service api]\nlisten = 127.0.0.1:8081\nexec = /bin/true\n");
	write_file(b, "[service web]\nlisten = 127.0.0.1:8080\nexec = /bin/true\n");
	write_file(c, "not a config\n");
	assert_int_equal(load("[agent]\ncontrol = /run/x.sock\n"), 0);
	assert_int_equal(cfg->nservices, 2);
	assert_string_equal(cfg->services[0].name, "web"); /* a-web.conf first */
	assert_string_equal(cfg->services[1].name, "api");
	assert_string_equal(cfg->agent.control, "/run/x.sock");
	config_free(cfg);
	/* The directory alone works too. */
	assert_int_equal(config_load(dir, cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->nservices, 2);
	config_free(cfg);
	/* Every file's first error, each with its file and line, one per line. */
	write_file(a, "[service api]\nlisten = 127.0.0.1:8081\nexec = /bin/true\nbogus = 1\n");
	write_file(b, "[service web]\ninstances = 0\n");
	assert_int_equal(config_load(dir, cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a-web.conf:2: instances must be 1..32, not 0"));
	assert_non_null(strstr(err, "\n"));
	assert_non_null(strstr(err, "b-api.conf:4: unknown key \"bogus\""));
	assert_int_equal(cfg->nservices, 0);
	/* A service in two files is refused. */
	write_file(a, "[service web]\nlisten = 127.0.0.1:8081\nexec = /bin/true\n");
	write_file(b, "[service web]\nlisten = 127.0.0.1:8080\nexec = /bin/true\n");
	assert_int_equal(config_load(dir, cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "web"));
	unlink(a);
	unlink(b);
	unlink(c);
	assert_int_equal(rmdir(dir), 0);
}

static void error_unknown_section(void **state)
{
	(void)state;
	assert_load_error(
	    "[agent]\n\n[services web]\n",
	    "web.conf:3: unknown section [services web] (did you mean [service web]?)");
	assert_load_error("# x\n[agnet]\n",
			  "web.conf:2: unknown section [agnet] (did you mean [agent]?)");
	assert_load_error(
	    "[global]\n",
	    "web.conf:1: unknown section [global] (expected [agent] or [service NAME])");
	assert_load_error("[]\n", "web.conf:1: unknown section []");
}

static void error_bad_section_header(void **state)
{
	(void)state;
	assert_load_error("[service Web]\n",
			  "web.conf:1: service name \"Web\" must start with a lowercase letter");
	assert_load_error("[service]\n", "web.conf:1: [service] needs a name");
	assert_load_error("[service  web]\n",
			  "web.conf:1: write the header as [service NAME], with one space");
	assert_load_error("[service\tweb]\n", "web.conf:1: write the header as [service NAME]");
	assert_load_error("\n[service web\n", "web.conf:2: section header has no closing \"]\"");
	assert_load_error("[service web] x\n",
			  "web.conf:1: unexpected text after the section header");
	/* An address on a line of its own, as if values continued over lines. */
	assert_load_error("[service web]\nlisten = 127.0.0.1:80\n    [::1]:80\n",
			  "web.conf:3: \"[::1]:80\" is not a section header (a value cannot "
			  "continue on the next line: repeat the key, e.g. listen = [::1]:80)");
	assert_load_error("[service web.api]\n",
			  "web.conf:1: service name \"web.api\" may only contain");
	assert_load_error(
	    "[service abcdefghijklmnopqrstuvwxyz0123456789]\n",
	    "web.conf:1: service name \"abcdefghijklmnopqrstuvwxyz0123456789\" is longer than 31");
}

static void error_unknown_key_did_you_mean(void **state)
{
	(void)state;
	assert_load_error(
	    "[service web]\nlisten = 127.0.0.1:80\ninstance = 2\n",
	    "web.conf:3: unknown key \"instance\" in [service web] (did you mean \"instances\"?)");
	assert_load_error(
	    "[agent]\ncontrl = /x\n",
	    "web.conf:2: unknown key \"contrl\" in [agent] (did you mean \"control\"?)");
	assert_load_error("[service web]\nEXEC = /bin/true\n", "(did you mean \"exec\"?)");
	assert_load_error("[service web]\nfrobnicate = 1\n",
			  "web.conf:2: unknown key \"frobnicate\" in [service web]");
}

static void error_key_in_wrong_section(void **state)
{
	(void)state;
	assert_load_error("[agent]\nlisten = 127.0.0.1:80\n",
			  "web.conf:2: unknown key \"listen\" in [agent] (listen belongs in a "
			  "[service NAME] section)");
	assert_load_error(
	    "[service web]\nrun-dir = /run\n",
	    "web.conf:2: unknown key \"run-dir\" in [service web] (run-dir belongs in [agent])");
}

static void error_key_outside_section(void **state)
{
	(void)state;
	assert_load_error("# top\nlisten = 127.0.0.1:80\n[service web]\n",
			  "web.conf:2: key \"listen\" is outside any section (put it under [agent] "
			  "or [service NAME])");
}

static void error_syntax(void **state)
{
	(void)state;
	assert_load_error("[service web]\nlisten 127.0.0.1:80\n",
			  "web.conf:2: expected KEY = VALUE, [section] or a comment, not \"listen "
			  "127.0.0.1:80\"");
	assert_load_error(
	    "[service web]\n  exec /bin/true\n",
	    "web.conf:2: expected KEY = VALUE, [section] or a comment, not \"exec /bin/true\"");
	assert_load_error("[service web]\n= 127.0.0.1:80\n", "web.conf:2: missing key name");
	/* A ";" after a space starts a comment, even before the "=". */
	assert_load_error("[service web]\nlisten ; = 127.0.0.1:80\n",
			  "web.conf:2: expected KEY = VALUE");
}

static void error_empty_value(void **state)
{
	(void)state;
	assert_load_error("[service web]\nexec =\n", "web.conf:2: exec needs a value");
	assert_load_error("[service web]\nuser =   ; nobody\n", "web.conf:2: user needs a value");
}

static void error_line_too_long(void **state)
{
	char text[512];

	(void)state;
	snprintf(text, sizeof(text), "[service web]\nexec = /bin/true %0300d\n", 0);
	assert_load_error(text, "web.conf:2: line is longer than");
}

static void error_duplicate_service(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "\n[service web]\n",
			  "web.conf:5: service \"web\" defined twice (first at line 1)");
}

static void error_duplicate_agent(void **state)
{
	(void)state;
	assert_load_error("[agent]\n" SVC("web", "80") "[agent]\n",
			  "web.conf:5: [agent] given twice (first at line 1)");
}

static void error_duplicate_scalar(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "exec = /bin/sh\n",
			  "web.conf:4: exec given twice in [service web] (first at line 3)");
	assert_load_error(SVC("web", "80") "instances = 1\ninstances = 2\n",
			  "web.conf:5: instances given twice");
	assert_load_error("[agent]\ncontrol = /a\ncontrol = /b\n",
			  "web.conf:3: control given twice in [agent]");
	/* The same key in another service is not a duplicate. */
	assert_load_ok(SVC("web", "80") "instances = 2\n" SVC("api", "81") "instances = 3\n");
	assert_int_equal(cfg->services[1].instances, 3);
	config_free(cfg);
}

static void error_duplicate_listen(void **state)
{
	(void)state;
	assert_load_error(
	    SVC("web", "80") "listen = 127.0.0.1:80\n",
	    "web.conf:4: listen 127.0.0.1:80 is given twice in [service web] (first at line 2)");
	assert_load_error(
	    SVC("web", "80") SVC("api", "81") "listen = 127.0.0.1:0080\n",
	    "web.conf:7: listen 127.0.0.1:80 is already used by service \"web\" (line 2)");
	/* Spelled differently, same address. */
	assert_load_error("[service web]\nlisten = [::1]:80\n[service api]\nlisten = [0::1]:80\n",
			  "web.conf:4: listen [::1]:80 is already used by service \"web\"");
	/* Same port on v4 and v6 wildcards are two addresses. */
	assert_load_ok("[service web]\nexec = /bin/true\nlisten = 0.0.0.0:80\nlisten = [::]:80\n");
	config_free(cfg);
}

static void error_bad_listen(void **state)
{
	(void)state;
	assert_load_error("[service web]\nlisten = localhost:80\n",
			  "web.conf:2: listen: \"localhost:80\": not an IPv4 address");
	assert_load_error("[service web]\nlisten = ::1:80\n",
			  "web.conf:2: listen: \"::1:80\": an IPv6 address needs brackets");
	assert_load_error("[service web]\nlisten = 1.2.3.4:0\n",
			  "web.conf:2: listen: \"1.2.3.4:0\": port must be 1..65535");
}

static void error_missing_listen_or_exec(void **state)
{
	(void)state;
	assert_load_error(
	    "[service web]\nexec = /bin/true\n",
	    "web.conf: service \"web\" has no listen address (add listen = ADDR:PORT)");
	assert_load_error("[service web]\nlisten = 127.0.0.1:80\n",
			  "web.conf: service \"web\" has no exec command");
	assert_load_error(SVC("web", "80") "[service empty]\n",
			  "web.conf: service \"empty\" has no listen address");
}

static void error_instances_range(void **state)
{
	(void)state;
	assert_load_error("# web\n\n" SVC("web", "80") "\n\ninstances = 0\n",
			  "web.conf:8: instances must be 1..32, not 0");
	assert_load_error(SVC("web", "80") "instances = 33\n",
			  "web.conf:4: instances must be 1..32, not 33");
	assert_load_error(SVC("web", "80") "instances = -1\n", "instances must be 1..32, not -1");
	assert_load_error(SVC("web", "80") "instances = two\n", "instances must be 1..32, not two");
	assert_load_error(SVC("web", "80") "instances = 99999999999999999999999\n",
			  "instances must be 1..32, not 99999999999999999999999");
}

static void error_backlog_range(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "backlog = 0\n",
			  "web.conf:4: backlog must be 1..65535, not 0");
	assert_load_error(SVC("web", "80") "backlog = 65536\n",
			  "backlog must be 1..65535, not 65536");
	assert_load_error(SVC("web", "80") "backlog = 1k\n", "backlog must be 1..65535, not 1k");
}

static void error_exec(void **state)
{
	char path[PATH_MAX], text[PATH_MAX + 128], want[PATH_MAX + 64];

	(void)state;
	assert_load_error(
	    "[service web]\nlisten = 127.0.0.1:80\nexec = /nonexistent/baton/server -x\n",
	    "web.conf:3: exec: /nonexistent/baton/server not found");
	assert_load_error("[service web]\nexec = server --port 80\n",
			  "web.conf:2: exec: the program must be an absolute path, not \"server\"");
	assert_load_error("[service web]\nexec = /tmp\n", "web.conf:2: exec: /tmp is a directory");
	assert_load_error("[service web]\nexec = /bin/sh -c \"a ; b\"\n",
			  "web.conf:2: exec: unterminated \" quote (\";\" after a space starts a "
			  "comment, even in quotes)");
	assert_load_error("[service web]\nexec = /bin/true 'oops\n",
			  "web.conf:2: exec: unterminated ' quote");

	snprintf(path, sizeof(path), "%s/plain-file", tmpdir);
	write_file(path, "not a program\n");
	assert_int_equal(chmod(path, 0644), 0);
	snprintf(text, sizeof(text), "[service web]\nexec = %s\n", path);
	snprintf(want, sizeof(want), "web.conf:2: exec: %s not executable", path);
	assert_load_error(text, want);
	/* Executable: then it loads. */
	assert_int_equal(chmod(path, 0755), 0);
	snprintf(text, sizeof(text), "[service web]\nlisten = 127.0.0.1:80\nexec = %s\n", path);
	assert_load_ok(text);
	config_free(cfg);
}

static void error_environment(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "environment = FOO\n",
			  "web.conf:4: environment: expected KEY=VALUE, not \"FOO\"");
	assert_load_error(SVC("web", "80") "environment = 1FOO=x\n",
			  "web.conf:4: environment: invalid variable name \"1FOO\"");
	assert_load_error(SVC("web", "80") "environment = FOO-BAR=x\n",
			  "invalid variable name \"FOO-BAR\"");
	assert_load_error(SVC("web", "80") "environment = FOO =x\n",
			  "invalid variable name \"FOO \"");
	assert_load_error(SVC("web", "80") "environment = =x\n",
			  "environment: missing variable name");
	assert_load_error(SVC("web", "80") "environment = LISTEN_FDS=3\n",
			  "web.conf:4: environment: LISTEN_FDS is set by baton (LISTEN_*, "
			  "NOTIFY_SOCKET and BATON_* are reserved)");
	assert_load_error(SVC("web", "80") "environment = LISTEN_=3\n", "LISTEN_ is set by baton");
	assert_load_error(SVC("web", "80") "environment = NOTIFY_SOCKET=/x\n",
			  "NOTIFY_SOCKET is set by baton");
	assert_load_error(SVC("web", "80") "environment = BATON_VERSION=1\n",
			  "BATON_VERSION is set by baton");
	assert_load_error(
	    SVC("web", "80") "environment = A=1\nenvironment = A=2\n",
	    "web.conf:5: environment: A is set twice in [service web] (first at line 4)");
	/* Near misses of reserved names are the user's own. */
	assert_load_ok(SVC("web", "80") "environment = LISTEN=1\nenvironment = NOTIFY_SOCKETS=1\n"
					"environment = BATON=1\nenvironment = _x9=\n"
					"environment = A=1\nenvironment = AB=2\n");
	assert_int_equal(cfg->services[0].nenv, 6);
	config_free(cfg);
}

static void error_user(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "user = no-such-user-baton-test\n",
			  "web.conf:4: user: no such user \"no-such-user-baton-test\"");
	assert_load_error(
	    SVC("web",
		"80") "user = "
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "web.conf:4: user: name is longer than 63 characters");
}

static void error_paths(void **state)
{
	char text[512];

	(void)state;
	assert_load_error(SVC("web", "80") "workdir = srv/web\n",
			  "web.conf:4: workdir must be an absolute path, not \"srv/web\"");
	assert_load_error("[agent]\ncontrol = control.sock\n",
			  "web.conf:2: control must be an absolute path");
	assert_load_error("[agent]\nbpf-dir = sys/fs/bpf\n",
			  "web.conf:2: bpf-dir must be an absolute path");
	assert_load_error("[agent]\nrun-dir = run\n",
			  "web.conf:2: run-dir must be an absolute path");
	/* sun_path holds 107 characters and the NUL. */
	snprintf(text, sizeof(text), "[agent]\ncontrol = /%0106d\n", 0);
	assert_load_ok(text);
	assert_int_equal(strlen(cfg->agent.control), 107);
	snprintf(text, sizeof(text), "[agent]\ncontrol = /%0107d\n", 0);
	assert_load_error(text, "web.conf:2: control is longer than 107 characters (a unix socket "
				"path must fit in sun_path)");
}

static void error_enums(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "ready = yes\n",
			  "web.conf:4: ready must be notify, tcp, http, exec or none, not \"yes\"");
	assert_load_error(SVC("web", "80") "drain-policy = kill\n",
			  "web.conf:4: drain-policy must be wait-then-signal or signal-then-wait");
	assert_load_error(SVC("web", "80") "drain-reset = maybe\n",
			  "web.conf:4: drain-reset must be yes or no, not \"maybe\"");
	assert_load_error(SVC("web", "80") "byte-counts = on\n",
			  "web.conf:4: byte-counts must be yes or no, not \"on\"");
	assert_load_error(SVC("web", "80") "drain-http = yes\n",
			  "web.conf:4: drain-http must be close or off, not \"yes\"");
	assert_load_error(SVC("web", "80") "exit-signal = SIGSEGV\n",
			  "web.conf:4: exit-signal: unknown signal \"SIGSEGV\"");
	assert_load_error(SVC("web", "80") "exit-signal = 0\n",
			  "web.conf:4: exit-signal: signal number must be 1..31");
}

static void error_durations(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "ready-timeout = 0\n",
			  "web.conf:4: ready-timeout must be more than 0");
	assert_load_error(SVC("web", "80") "drain-timeout = 0ms\n",
			  "web.conf:4: drain-timeout must be more than 0");
	assert_load_error(SVC("web", "80") "kill-after = 0s\n",
			  "web.conf:4: kill-after must be more than 0");
	assert_load_error(SVC("web", "80") "drain-timeout = 25h\n",
			  "web.conf:4: drain-timeout: duration \"25h\" is longer than 24h");
	assert_load_error(SVC("web", "80") "kill-after = 5 s\n",
			  "web.conf:4: kill-after: invalid duration \"5 s\"");
	assert_load_error(SVC("web", "80") "drain-delay = -1s\n",
			  "web.conf:4: drain-delay: duration \"-1s\" is negative");
	assert_load_error(SVC("web", "80") "ready-timeout = 1.5s\n",
			  "web.conf:4: ready-timeout: invalid duration");
}

static void error_first_one_wins(void **state)
{
	(void)state;
	/* Line 3 is bad, and so are line 4 and the missing exec: report 3. */
	assert_load_error("[service web]\nlisten = 127.0.0.1:80\ninstances = 0\nbacklog = 0\n",
			  "web.conf:3: instances must be 1..32, not 0");
	/* A line error comes before the whole-file checks. */
	assert_load_error("[service a]\n[service b]\nbogus = 1\n",
			  "web.conf:3: unknown key \"bogus\"");
}

static void error_leaves_nothing_allocated(void **state)
{
	(void)state;
	/* Two services with argv and env, then a failure: all freed, and the
	 * config is empty (ASan's leak check verifies the freeing). */
	assert_load_error(SVC("web", "80") "environment = A=1\n" SVC(
			      "api", "81") "environment = B=2\ninstances = 0\n",
			  "web.conf:9: instances must be 1..32, not 0");
	assert_int_equal(cfg->nservices, 0);
	assert_null(cfg->services[0].argv[0]);
	assert_null(cfg->services[0].env[0]);
	config_free(cfg); /* safe on a failed load */
	/* Failure right after exec was split. */
	assert_load_error("[service web]\nexec = /bin/true a b c\nexec = /bin/true\n",
			  "web.conf:3: exec given twice");
	assert_null(cfg->services[0].argv[0]);
}

static void error_rollout_enums(void **state)
{
	(void)state;
	assert_load_error(
	    SVC("web", "80") "steering = round-robin\n",
	    "web.conf:4: steering must be sticky or per-connection, not \"round-robin\"");
	assert_load_error(SVC("web", "80") "steering = Sticky\n",
			  "web.conf:4: steering must be sticky or per-connection");
	assert_load_error(SVC("web", "80") "strategy = blue-green\n",
			  "web.conf:4: strategy must be bluegreen, canary or rolling, not "
			  "\"blue-green\"");
	assert_load_error(SVC("web", "80") "health = yes\n",
			  "web.conf:4: health must be none, tcp, http or exec, not \"yes\"");
	assert_load_error(SVC("web", "80") "health = notify\n",
			  "web.conf:4: health must be none, tcp, http or exec");
	assert_load_error(SVC("web", "80") "ready = HTTP\n",
			  "web.conf:4: ready must be notify, tcp, http, exec or none");
}

static void error_steps(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "steps = 5,25,50,101\n",
			  "web.conf:4: steps: step 4: percentage \"101\" is more than 100");
	assert_load_error(
	    SVC("web", "80") "steps = 50, 25\n",
	    "web.conf:4: steps: step \"25\" is not more than the step before it (50)");
	assert_load_error(SVC("web", "80") "steps = 0\n",
			  "web.conf:4: steps: step \"0\" must be more than 0");
	assert_load_error(SVC("web", "80") "steps = 5,,10\n", "web.conf:4: steps: step 2 is empty");
	assert_load_error(SVC("web", "80") "steps = 5 25\n",
			  "web.conf:4: steps: step 1: invalid percentage \"5 25\"");
	assert_load_error(SVC("web", "80") "steps = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n",
			  "web.conf:4: steps: more than 16 steps with the 100 added");
}

static void error_rollout_durations(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "bake = -1s\n",
			  "web.conf:4: bake: duration \"-1s\" is negative");
	assert_load_error(SVC("web", "80") "bake = 25h\n",
			  "web.conf:4: bake: duration \"25h\" is longer than 24h");
	assert_load_error(SVC("web", "80") "bake = 1.5s\n", "web.conf:4: bake: invalid duration");
	assert_load_error(SVC("web", "80") "health-interval = 0\n",
			  "web.conf:4: health-interval must be more than 0");
	assert_load_error(SVC("web", "80") "health-timeout = 0ms\n",
			  "web.conf:4: health-timeout must be more than 0");
	assert_load_error(SVC("web", "80") "hook-timeout = 0s\n",
			  "web.conf:4: hook-timeout must be more than 0");
	assert_load_error(SVC("web", "80") "hook-timeout = 10x\n",
			  "web.conf:4: hook-timeout: invalid duration \"10x\"");
	assert_load_error(SVC("web", "80") "health-interval = 1d\n",
			  "web.conf:4: health-interval: invalid duration \"1d\"");
}

static void error_health_threshold(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "health-threshold = 0\n",
			  "web.conf:4: health-threshold must be 1..100, not 0");
	assert_load_error(SVC("web", "80") "health-threshold = 101\n",
			  "web.conf:4: health-threshold must be 1..100, not 101");
	assert_load_error(SVC("web", "80") "health-threshold = -1\n",
			  "health-threshold must be 1..100, not -1");
	assert_load_error(SVC("web", "80") "health-threshold = three\n",
			  "health-threshold must be 1..100, not three");
	assert_load_error(SVC("web", "80") "health-threshold = 3x\n",
			  "health-threshold must be 1..100, not 3x");
	assert_load_error(SVC("web", "80") "health-threshold = 1.5\n",
			  "health-threshold must be 1..100, not 1.5");
	assert_load_error(SVC("web", "80") "health-threshold = 99999999999999999999999\n",
			  "health-threshold must be 1..100, not 99999999999999999999999");
}

static void error_max_error_rate(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "max-error-rate = none\n",
			  "web.conf:4: max-error-rate must be a percentage (e.g. 1%) or off, not "
			  "\"none\"");
	assert_load_error(SVC("web", "80") "max-error-rate = OFF\n",
			  "web.conf:4: max-error-rate must be a percentage (e.g. 1%) or off");
	assert_load_error(SVC("web", "80") "max-error-rate = 101%\n",
			  "web.conf:4: max-error-rate: percentage \"101%\" is more than 100");
	assert_load_error(SVC("web", "80") "max-error-rate = -1%\n",
			  "web.conf:4: max-error-rate: percentage \"-1%\" is negative");
	assert_load_error(SVC("web", "80") "max-error-rate = 0.001\n",
			  "web.conf:4: max-error-rate: percentage \"0.001\" has more than two "
			  "decimals");
	assert_load_error(SVC("web", "80") "max-error-rate = .5\n",
			  "web.conf:4: max-error-rate: invalid percentage \".5\"");
	assert_load_error(SVC("web", "80") "max-error-rate = 1 %\n",
			  "web.conf:4: max-error-rate: invalid percentage \"1 %\"");
}

static void error_health_path(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "ready = http\nhealth-path = healthz\n",
			  "web.conf:5: health-path must start with \"/\", not \"healthz\"");
	assert_load_error(SVC("web", "80") "ready = http\nhealth-path = /a b\n",
			  "web.conf:5: health-path may only contain printable ASCII characters, "
			  "without spaces");
	assert_load_error(SVC("web", "80") "ready = http\nhealth-path = /a\tb\n",
			  "web.conf:5: health-path may only contain printable ASCII");
	assert_load_error(SVC("web", "80") "ready = http\nhealth-path = /caf\303\251\n",
			  "web.conf:5: health-path may only contain printable ASCII");
	assert_load_error(SVC("web", "80") "ready = http\nhealth-path = /\177\n",
			  "web.conf:5: health-path may only contain printable ASCII");
	/* Set, but nothing sends HTTP requests. */
	assert_load_error(SVC("web", "80") "ready = tcp\nhealth-path = /up\n",
			  "web.conf:5: health-path is set but neither ready nor health is http");
	assert_load_error(SVC("web", "80") "health-path = /up\nready = notify\nhealth = tcp\n",
			  "web.conf:4: health-path is set but neither ready nor health is http");
}

static void error_health_command(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "ready = exec\n",
			  "web.conf:4: ready = exec needs health-command (add health-command = "
			  "/path/to/check ARGS)");
	assert_load_error(SVC("web", "80") "health = exec\n",
			  "web.conf:4: health = exec needs health-command");
	assert_load_error(SVC("web", "80") "ready = tcp\nhealth = exec\n",
			  "web.conf:5: health = exec needs health-command");
	assert_load_error(SVC("web", "80") "health = exec\nready = exec\n",
			  "web.conf:5: ready = exec needs health-command");
	assert_load_error(SVC("web", "80") "health-command = /bin/true\n",
			  "web.conf:4: health-command is set but neither ready nor health is exec");
	assert_load_error(SVC("web", "80") "ready = exec\nhealth = tcp\n\n",
			  "web.conf:4: ready = exec needs health-command");
	assert_load_error(
	    SVC("web", "80") "health-command = /bin/true\nready = tcp\nhealth = http\n",
	    "web.conf:4: health-command is set but neither ready nor health is exec");
	/* Found when the next section starts, reported at the key's line,
	 * before the errors of later lines and of the whole file. */
	assert_load_error(SVC("web", "80") "ready = exec\n" SVC("api", "81"),
			  "web.conf:4: ready = exec needs health-command");
	assert_load_error(SVC("web", "80") "ready = exec\n[agent]\nbogus = 1\n",
			  "web.conf:4: ready = exec needs health-command");
	assert_load_error(SVC("web", "80") "ready = exec\n[servce api]\n",
			  "web.conf:4: ready = exec needs health-command");
	assert_load_error("[service web]\nready = exec\n",
			  "web.conf:2: ready = exec needs health-command");
	/* The command itself is checked as exec's is. */
	assert_load_error(SVC("web", "80") "ready = exec\nhealth-command = check --x\n",
			  "web.conf:5: health-command: the program must be an absolute path, not "
			  "\"check\"");
	assert_load_error(SVC("web", "80") "health-command = /nonexistent/baton/check\n",
			  "web.conf:4: health-command: /nonexistent/baton/check not found");
	assert_load_error(SVC("web", "80") "health-command = /bin/true 'oops\n",
			  "web.conf:4: health-command: unterminated ' quote");
	assert_load_error(SVC("web", "80") "health-command = /tmp\n",
			  "web.conf:4: health-command: /tmp is a directory");
}

static void error_hooks(void **state)
{
	char path[PATH_MAX], text[PATH_MAX + 128], want[PATH_MAX + 64];
	int h;

	(void)state;
	snprintf(path, sizeof(path), "%s/plain-file", tmpdir);
	write_file(path, "not a program\n");
	assert_int_equal(chmod(path, 0644), 0);
	for (h = 0; h < HOOK_COUNT; h++) {
		const char *name = hook_name((enum hook_point)h);

		snprintf(text, sizeof(text), SVC("web", "80") "%s = bin/true\n", name);
		snprintf(want, sizeof(want),
			 "web.conf:4: %s: the program must be an absolute path, not \"bin/true\"",
			 name);
		assert_load_error(text, want);
		snprintf(text, sizeof(text), SVC("web", "80") "%s = /nonexistent/hook x\n", name);
		snprintf(want, sizeof(want), "web.conf:4: %s: /nonexistent/hook not found", name);
		assert_load_error(text, want);
		snprintf(text, sizeof(text), SVC("web", "80") "%s = /tmp\n", name);
		snprintf(want, sizeof(want), "web.conf:4: %s: /tmp is a directory", name);
		assert_load_error(text, want);
		snprintf(text, sizeof(text), SVC("web", "80") "%s = %s\n", name, path);
		snprintf(want, sizeof(want), "web.conf:4: %s: %s not executable", name, path);
		assert_load_error(text, want);
		snprintf(text, sizeof(text), SVC("web", "80") "%s = /bin/sh -c \"a ; b\"\n", name);
		snprintf(want, sizeof(want),
			 "web.conf:4: %s: unterminated \" quote (\";\" after a space starts a "
			 "comment, even in quotes)",
			 name);
		assert_load_error(text, want);
		snprintf(text, sizeof(text), SVC("web", "80") "%s =\n", name);
		snprintf(want, sizeof(want), "web.conf:4: %s needs a value", name);
		assert_load_error(text, want);
	}
}

/* strategy = rolling: max-surge and max-unavailable, counts or percentages of instances. */
static void load_rolling(void **state)
{
	const struct service_conf *s = &cfg->services[0];

	(void)state;
	assert_load_ok(SVC("web", "80") "strategy = rolling\ninstances = 4\n");
	assert_int_equal(s->strategy, STRATEGY_ROLLING);
	assert_int_equal(s->max_surge.n, 1);
	assert_false(s->max_surge.pct);
	assert_int_equal(s->max_unavail.n, 0);
	assert_int_equal(s->pause_ms, 0);
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "strategy = rolling\ninstances = 4\nmax-surge = 25%\n"
					"max-unavailable = 0\npause = 5s\n");
	assert_int_equal(s->max_surge.n, 25);
	assert_true(s->max_surge.pct);
	assert_int_equal(s->pause_ms, 5000);
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "strategy = rolling\ninstances = 4\nmax-surge = 0\n"
					"max-unavailable = 1\n");
	assert_int_equal(s->max_surge.n, 0);
	assert_int_equal(s->max_unavail.n, 1);
	config_free(cfg);
	/* The bad input: each one line, naming the fix. */
	assert_load_error(SVC("web", "80") "strategy = rolling\ninstances = 4\nmax-surge = 0\n"
					   "max-unavailable = 0\n",
			  "web.conf:6: max-surge and max-unavailable are both 0 (for 4 "
			  "instance(s)): no instance could start or stop; make one of them at "
			  "least 1");
	assert_load_error(SVC("web", "80") "strategy = rolling\ninstances = 4\nmax-surge = 5\n",
			  "web.conf:6: max-surge 5 is above instances (4); give 0..4");
	assert_load_error(SVC("web", "80") "instances = 4\nmax-unavailable = 6\n",
			  "web.conf:5: max-unavailable 6 is above instances (4); give 0..3");
	assert_load_error(SVC("web", "80") "strategy = rolling\nmax-surge = 0\n"
					   "max-unavailable = 1\n",
			  "web.conf:5: max-surge 0 with max-unavailable 1 of 1 instance(s) would "
			  "take the service down; give max-surge at least 1");
	assert_load_error(SVC("web", "80") "strategy = rolling\ninstances = 2\n"
					   "max-unavailable = 100%\n",
			  "web.conf:6: max-unavailable 2 of 2 instance(s) would leave none "
			  "serving; give 0..1");
	assert_load_error(SVC("web", "80") "max-surge = 101%\n",
			  "web.conf:4: max-surge: \"101%\" is not a percentage 0%..100%");
	assert_load_error(SVC("web", "80") "max-surge = two\n",
			  "web.conf:4: max-surge: \"two\" is not a count 0..32 (or a percentage, "
			  "e.g. 25%)");
	/* 10% of 4 is 0.4: a surge rounds up (1), an unavailable count down (0). */
	config_free(cfg);
	assert_load_ok(SVC("web", "80") "strategy = rolling\ninstances = 4\nmax-surge = 10%\n"
					"max-unavailable = 10%\n");
	config_free(cfg);
}

static void error_duplicate_rollout_keys(void **state)
{
	static const struct {
		const char *key, *val;
	} keys[] = {
	    {"steering", "sticky"},
	    {"strategy", "canary"},
	    {"max-surge", "1"},
	    {"max-unavailable", "0"},
	    {"pause", "1s"},
	    {"steps", "5,100"},
	    {"bake", "1s"},
	    {"health", "none"},
	    {"health-path", "/"},
	    {"health-command", "/bin/true"},
	    {"health-interval", "1s"},
	    {"health-timeout", "1s"},
	    {"health-threshold", "3"},
	    {"max-error-rate", "1%"},
	    {"before-start", "/bin/true"},
	    {"after-switch", "/bin/true"},
	    {"after-drain", "/bin/true"},
	    {"hook-timeout", "1s"},
	};
	char text[512], want[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text), SVC("web", "80") "%s = %s\n%s = %s\n", keys[i].key,
			 keys[i].val, keys[i].key, keys[i].val);
		snprintf(want, sizeof(want),
			 "web.conf:5: %s given twice in [service web] (first at line 4)",
			 keys[i].key);
		assert_load_error(text, want);
	}
}

static void error_rollout_key_names(void **state)
{
	(void)state;
	assert_load_error(SVC("web", "80") "helth = tcp\n",
			  "web.conf:4: unknown key \"helth\" in [service web] (did you mean "
			  "\"health\"?)");
	assert_load_error(SVC("web", "80") "health_path = /\n", "(did you mean \"health-path\"?)");
	assert_load_error(SVC("web", "80") "health-intervall = 1s\n",
			  "(did you mean \"health-interval\"?)");
	assert_load_error(SVC("web", "80") "health-treshold = 3\n",
			  "(did you mean \"health-threshold\"?)");
	assert_load_error(SVC("web", "80") "before_start = /bin/true\n",
			  "(did you mean \"before-start\"?)");
	assert_load_error(SVC("web", "80") "stategy = canary\n", "(did you mean \"strategy\"?)");
	assert_load_error(SVC("web", "80") "max-errors-rate = 1%\n",
			  "(did you mean \"max-error-rate\"?)");
	assert_load_error(SVC("web", "80") "hook-timout = 1s\n",
			  "(did you mean \"hook-timeout\"?)");
	assert_load_error("[agent]\nstrategy = canary\n",
			  "web.conf:2: unknown key \"strategy\" in [agent] (strategy belongs in a "
			  "[service NAME] section)");
}

static void error_rollout_leaves_nothing_allocated(void **state)
{
	(void)state;
	/* Every argv allocated, then a later line fails. */
	assert_load_error(
	    SVC("web", "80") "ready = exec\nhealth-command = /bin/true a\n"
			     "before-start = /bin/true b\nafter-switch = /bin/true c\n"
			     "after-drain = /bin/true d\ninstances = 0\n",
	    "web.conf:9: instances must be 1..32, not 0");
	assert_null(cfg->services[0].health_argv[0]);
	assert_null(cfg->services[0].hook[HOOK_BEFORE_START][0]);
	assert_null(cfg->services[0].hook[HOOK_AFTER_DRAIN][0]);
	/* Failure in the end-of-file check, after the argv were split. */
	assert_load_error(SVC("web", "80") "health-command = /bin/true a\n"
					   "after-switch = /bin/true b\n",
			  "web.conf:4: health-command is set but neither");
	assert_null(cfg->services[0].health_argv[0]);
	assert_null(cfg->services[0].hook[HOOK_AFTER_SWITCH][0]);
	config_free(cfg); /* safe on a failed load */
}

int main(void)
{
	const struct CMUnitTest helpers[] = {
	    cmocka_unit_test(duration_accepts_units),
	    cmocka_unit_test(duration_zero),
	    cmocka_unit_test(duration_upper_bound),
	    cmocka_unit_test(duration_rejects_malformed),
	    cmocka_unit_test(duration_tolerates_small_err_buffer),
	    cmocka_unit_test(listen_ipv4),
	    cmocka_unit_test(listen_ipv6),
	    cmocka_unit_test(listen_normalizes_text),
	    cmocka_unit_test(listen_port_bounds),
	    cmocka_unit_test(listen_rejects_malformed),
	    cmocka_unit_test(listen_error_messages),
	    cmocka_unit_test(listen_failure_leaves_output_alone),
	    cmocka_unit_test(signal_names_accepted),
	    cmocka_unit_test(signal_numbers),
	    cmocka_unit_test(signal_rejects_others),
	    cmocka_unit_test(signal_name_lookup),
	    cmocka_unit_test(ready_kind_names),
	    cmocka_unit_test(health_kind_names),
	    cmocka_unit_test(hook_names),
	    cmocka_unit_test(percent_accepts),
	    cmocka_unit_test(percent_rejects),
	    cmocka_unit_test(steps_accepts),
	    cmocka_unit_test(steps_rejects),
	    cmocka_unit_test(service_name_accepts),
	    cmocka_unit_test(service_name_rejects),
	    cmocka_unit_test(split_plain_words),
	    cmocka_unit_test(split_single_quotes),
	    cmocka_unit_test(split_double_quotes),
	    cmocka_unit_test(split_backslash_outside_quotes),
	    cmocka_unit_test(split_joins_adjacent_parts),
	    cmocka_unit_test(split_rejects_unbalanced),
	    cmocka_unit_test(split_rejects_empty),
	    cmocka_unit_test(split_max_args),
	    cmocka_unit_test(free_argv_clears_entries),
	};
	const struct CMUnitTest load_ok[] = {
	    cmocka_unit_test(load_full_config),
	    cmocka_unit_test(load_applies_defaults),
	    cmocka_unit_test(load_several_services),
	    cmocka_unit_test(load_empty_file),
	    cmocka_unit_test(load_comments_and_indentation),
	    cmocka_unit_test(load_crlf_and_bom),
	    cmocka_unit_test(load_boundaries),
	    cmocka_unit_test(load_max_services_and_listens),
	    cmocka_unit_test(load_max_environment),
	    cmocka_unit_test(load_rollout_defaults),
	    cmocka_unit_test(load_rollout_full),
	    cmocka_unit_test(load_health_default_derivation),
	    cmocka_unit_test(load_rollout_values),
	    cmocka_unit_test(load_hooks),
	};
	const struct CMUnitTest load_errors[] = {
	    cmocka_unit_test(error_cannot_open),
	    cmocka_unit_test(conf_dir),
	    cmocka_unit_test(error_unknown_section),
	    cmocka_unit_test(error_bad_section_header),
	    cmocka_unit_test(error_unknown_key_did_you_mean),
	    cmocka_unit_test(error_key_in_wrong_section),
	    cmocka_unit_test(error_key_outside_section),
	    cmocka_unit_test(error_syntax),
	    cmocka_unit_test(error_empty_value),
	    cmocka_unit_test(error_line_too_long),
	    cmocka_unit_test(error_duplicate_service),
	    cmocka_unit_test(error_duplicate_agent),
	    cmocka_unit_test(error_duplicate_scalar),
	    cmocka_unit_test(error_duplicate_listen),
	    cmocka_unit_test(error_bad_listen),
	    cmocka_unit_test(error_missing_listen_or_exec),
	    cmocka_unit_test(error_instances_range),
	    cmocka_unit_test(error_backlog_range),
	    cmocka_unit_test(error_exec),
	    cmocka_unit_test(error_environment),
	    cmocka_unit_test(error_user),
	    cmocka_unit_test(error_paths),
	    cmocka_unit_test(error_enums),
	    cmocka_unit_test(error_durations),
	    cmocka_unit_test(error_first_one_wins),
	    cmocka_unit_test(error_leaves_nothing_allocated),
	    cmocka_unit_test(error_rollout_enums),
	    cmocka_unit_test(error_steps),
	    cmocka_unit_test(error_rollout_durations),
	    cmocka_unit_test(error_health_threshold),
	    cmocka_unit_test(error_max_error_rate),
	    cmocka_unit_test(error_health_path),
	    cmocka_unit_test(error_health_command),
	    cmocka_unit_test(error_hooks),
	    cmocka_unit_test(load_rolling),
	    cmocka_unit_test(error_duplicate_rollout_keys),
	    cmocka_unit_test(error_rollout_key_names),
	    cmocka_unit_test(error_rollout_leaves_nothing_allocated),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("config helpers", helpers, NULL, NULL);
	failed += cmocka_run_group_tests_name("config_load: valid files", load_ok, group_setup,
					      group_teardown);
	failed += cmocka_run_group_tests_name("config_load: errors", load_errors, group_setup,
					      group_teardown);
	return failed ? 1 : 0;
}
