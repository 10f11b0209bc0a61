/* SPDX-License-Identifier: MIT */
/*
 * The log's stderr writer (user/logq.c), built with LOGQ_MAX of 1 KiB and
 * writing to a pipe of 4 KiB: lines arrive whole and in order; with a pipe
 * nobody reads, pushing never waits, lines past the queue are dropped and
 * counted, and so is every line after them until the writer caught up;
 * then one line says how many were dropped, and the lines after it follow,
 * in order; at the end a stuck pipe costs logq_stop its bound, no more.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "logq.h"

static int fds[2];

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 4096) >= 4096);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (logq_on()) /* a failed test: the next one starts afresh */
		logq_stop(100);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

/* Everything in the pipe until want bytes came or ms passed, appended to buf. */
static size_t drain(char *buf, size_t have, size_t cap, int ms)
{
	long long end = mono_ms() + ms;
	struct pollfd p = {.fd = fds[0], .events = POLLIN};
	ssize_t n;

	while (have < cap - 1 && mono_ms() < end) {
		n = read(fds[0], buf + have, cap - 1 - have);
		if (n > 0)
			have += (size_t)n;
		else
			poll(&p, 1, 20);
	}
	buf[have] = 0;
	return have;
}

/* Fill the pipe with "filler\n" lines, as a reader that stopped would leave it: the bytes. */
static size_t fill(void)
{
	size_t n = 0;

	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	while (write(fds[1], "filler\n", 7) == 7)
		n += 7;
	fcntl(fds[1], F_SETFL, 0);
	return n;
}

static int push_line(const char *what, int i)
{
	char line[128];
	int n =
	    snprintf(line, sizeof(line), "baton: %s %04d ..........................\n", what, i);

	return logq_push(line, (size_t)n);
}

static void test_lines_in_order(void **state)
{
	static char buf[65536];
	char want[128];
	size_t have = 0, ll = strlen("baton: line 0000 ..........................\n");
	const char *p;
	int i;

	(void)state;
	assert_int_equal(logq_push("x\n", 2), -ENOTCONN); /* not started: the caller writes */
	assert_int_equal(logq_start(fds[1], "baton: "), 0);
	assert_true(logq_on());
	/* Rounds of 20 lines (880 bytes: they fit the queue however late the writer runs). */
	for (i = 0; i < 200; i++) {
		assert_int_equal(push_line("line", i), 0);
		if (i % 20 == 19) {
			have = drain(buf, have, (size_t)(i + 1) * ll + 1, 5000);
			assert_int_equal(have, (size_t)(i + 1) * ll);
		}
	}
	logq_stop(1000);
	assert_false(logq_on());
	assert_false(logq_stuck());
	have = drain(buf, have, sizeof(buf), 200);
	for (i = 0, p = buf; i < 200; i++) {
		snprintf(want, sizeof(want), "baton: line %04d ..........................\n", i);
		assert_memory_equal(p, want, strlen(want));
		p += strlen(want);
	}
	assert_int_equal(*p, 0);
	assert_int_equal(logq_dropped(), 0);
	assert_int_equal(logq_push("x\n", 2), -ENOTCONN); /* stopped cleanly: written at once */
}

static void test_drops_counted_then_said(void **state)
{
	static char buf[65536];
	char want[128], notice[160];
	unsigned long long before = logq_dropped(), drops = 0;
	long long t0, worst = 0;
	size_t have = 0, filler = 0;
	const char *p;
	int i, r, last_taken = -1;

	(void)state;
	/* The pipe is full: the writer blocks in its first write(2), as on a stopped reader. */
	filler = fill();
	assert_int_equal(logq_start(fds[1], "<4>baton: "), 0);
	/* Nobody reads: one chunk in the writer, 1 KiB queued, then drops. */
	for (i = 0; i < 400; i++) {
		t0 = mono_ms();
		r = push_line("early", i);
		if (mono_ms() - t0 > worst)
			worst = mono_ms() - t0;
		if (!r) {
			assert_int_equal(drops, 0); /* in order: none taken after the first drop */
			last_taken = i;
		} else {
			assert_int_equal(r, -ENOBUFS);
			drops++;
		}
	}
	assert_true(worst < 50); /* never waited on the pipe */
	assert_true(drops > 300);
	assert_int_equal(logq_dropped() - before, drops);
	/* Until the writer caught up, a line that would fit is dropped too. */
	have = drain(buf, have, 513, 200); /* 512 bytes read: the writer is still blocked */
	assert_int_equal(have, 512);
	assert_int_equal(push_line("still-dropping", 0), -ENOBUFS);
	drops++;
	/* Read everything: the writer catches up and says how many went. */
	snprintf(notice, sizeof(notice),
		 "<4>baton: %llu log line(s) dropped: stderr did not take them in time "
		 "(baton_log_lines_dropped_total)\n",
		 drops);
	for (i = 0; i < 100 && !strstr(buf, "dropped: stderr"); i++)
		have = drain(buf, have, sizeof(buf), 20);
	assert_non_null(strstr(buf, notice));
	for (i = 0; i < 5; i++)
		assert_int_equal(push_line("late", i), 0);
	logq_stop(1000);
	have = drain(buf, have, sizeof(buf), 200);
	/* The filler, the taken lines whole and in order, the notice, the late ones. */
	for (p = buf; filler; filler -= 7, p += 7)
		assert_memory_equal(p, "filler\n", 7);
	for (i = 0; i <= last_taken; i++) {
		snprintf(want, sizeof(want), "baton: early %04d ..........................\n", i);
		assert_memory_equal(p, want, strlen(want));
		p += strlen(want);
	}
	assert_memory_equal(p, notice, strlen(notice));
	p += strlen(notice);
	for (i = 0; i < 5; i++) {
		snprintf(want, sizeof(want), "baton: late %04d ..........................\n", i);
		assert_memory_equal(p, want, strlen(want));
		p += strlen(want);
	}
	assert_int_equal(*p, 0);
	assert_int_equal(logq_dropped() - before, drops);
}

static void test_stuck_sink_is_bounded(void **state)
{
	unsigned long long before;
	long long t0, took;
	int i;

	(void)state;
	fill();
	assert_int_equal(logq_start(fds[1], "baton: "), 0);
	for (i = 0; i < 100; i++)
		push_line("stuck", i);
	before = logq_dropped();
	t0 = mono_ms();
	logq_stop(300);
	took = mono_ms() - t0;
	assert_true(took >= 290 && took < 1000);
	assert_true(logq_stuck());
	assert_false(logq_on());
	/* Left behind in write(2): a line now would wait too, so it is dropped and counted. */
	assert_int_equal(logq_push("x\n", 2), -ENOBUFS);
	assert_int_equal(logq_dropped(), before + 1);
	/* teardown closes the pipe: the thread's write fails and it ends. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lines_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drops_counted_then_said, setup, teardown),
	    /* Last: it leaves the writer thread behind. */
	    cmocka_unit_test_setup_teardown(test_stuck_sink_is_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
