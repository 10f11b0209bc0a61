/* SPDX-License-Identifier: MIT */
/*
 * journald's native protocol (user/journal.c) against a fake journal: a
 * datagram socket bound in a temporary directory.  Lines carry PRIORITY,
 * SYSLOG_IDENTIFIER, MESSAGE and the fields given (malformed keys left
 * out), a value with a newline in the binary form; a journal that does not
 * read makes no call wait: those lines go to stderr, each line exactly once
 * to one of the two.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "log.h"

static char dir[64], sock_path[100], err_path[100];
static int jsock = -1;

static int setup(void **state)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_journal.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/socket", dir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	jsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(jsock >= 0);
	assert_int_equal(bind(jsock, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(journal_open(sock_path), 0);
	log_set_sink(journal_send);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_sink(NULL);
	journal_close();
	close(jsock);
	unlink(sock_path);
	unlink(err_path);
	rmdir(dir);
	return 0;
}

/* The next entry the fake journal got (nonblocking: -1 when none), NUL-terminated. */
static ssize_t next_entry(char *buf, size_t len)
{
	ssize_t n = recv(jsock, buf, len - 1, MSG_DONTWAIT);

	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static bool has_line(const char *buf, size_t len, const char *line)
{
	size_t l = strlen(line);
	const char *p = buf;

	while (p && p + l <= buf + len) {
		if (!memcmp(p, line, l) && (p + l == buf + len || p[l] == '\n'))
			return true;
		p = memchr(p, '\n', buf + len - p);
		if (p)
			p++;
	}
	return false;
}

static void test_fields(void **state)
{
	const char *f[] = {"SERVICE=web", "EVENT=rolled-back",	      "VERSION=2", "bad key=1",
			   "_PID=1",	  "REASON=gate errors failed"};
	char buf[8192];
	ssize_t n;

	(void)state;
	log_info("hello %d", 1);
	n = next_entry(buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(has_line(buf, n, "PRIORITY=6"));
	assert_true(has_line(buf, n, "SYSLOG_IDENTIFIER=test_journal"));
	assert_true(has_line(buf, n, "MESSAGE=hello 1"));
	log_warnx("careful");
	n = next_entry(buf, sizeof(buf));
	assert_true(has_line(buf, n, "PRIORITY=4"));
	log_fields(6, f, 6, "event: %s", "text");
	n = next_entry(buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(has_line(buf, n, "MESSAGE=event: text"));
	assert_true(has_line(buf, n, "SERVICE=web"));
	assert_true(has_line(buf, n, "EVENT=rolled-back"));
	assert_true(has_line(buf, n, "VERSION=2"));
	assert_true(has_line(buf, n, "REASON=gate errors failed"));
	/* Keys journald would refuse (lower case, space; a leading _ is its own) are left out. */
	assert_null(strstr(buf, "bad key"));
	assert_null(strstr(buf, "_PID"));
	assert_int_equal(next_entry(buf, sizeof(buf)), -1);
}

static void test_newline_binary_form(void **state)
{
	char buf[8192], want[64];
	uint64_t le = 9;
	ssize_t n;
	int i;

	(void)state;
	log_info("two\nlines");
	n = next_entry(buf, sizeof(buf));
	assert_true(n > 0);
	memcpy(want, "MESSAGE\n", 8);
	for (i = 0; i < 8; i++)
		want[8 + i] = (char)((le >> (8 * i)) & 0xff);
	memcpy(want + 16, "two\nlines\n", 10);
	assert_non_null(memmem(buf, n, want, 26));
}

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void test_full_journal_never_waits(void **state)
{
	enum { N = 300 };
	static int seen[N];
	char buf[8192], *line = NULL, *m;
	long long t, worst = 0;
	int saved, fd, k, got = 0, on_stderr = 0, notices = 0;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	(void)state;
	fflush(stderr);
	saved = dup(2);
	fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, 2);
	close(fd);
	/* Nobody reads the journal: its queue fills (net.unix.max_dgram_qlen). */
	for (k = 0; k < N; k++) {
		t = mono_us();
		log_info("line %d", k);
		t = mono_us() - t;
		if (t > worst)
			worst = t;
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	while ((n = next_entry(buf, sizeof(buf))) > 0) {
		m = strstr(buf, "MESSAGE=line ");
		assert_non_null(m);
		seen[atoi(m + 13)]++;
		got++;
	}
	f = fopen(err_path, "r");
	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		if ((m = strstr(line, "test_journal: line ")))
			seen[atoi(m + 19)]++, on_stderr++;
		else if (strstr(line, "the journal's socket did not take a line"))
			notices++;
	}
	free(line);
	fclose(f);
	printf("full journal: %d lines to it, %d to stderr, slowest call %lld us\n", got, on_stderr,
	       worst);
	assert_true(got > 0);
	assert_true(on_stderr > 0);
	assert_int_equal(notices, 1);
	for (k = 0; k < N; k++)
		assert_int_equal(seen[k], 1);
	assert_true(worst < 200000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_newline_binary_form, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_journal_never_waits, setup, teardown),
	};

	log_init("test_journal", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
