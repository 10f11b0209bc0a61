/* SPDX-License-Identifier: MIT */
/*
 * The event log's file writer (user/evlog.c): lines reach the file whole and
 * in order, the file rotates at its bound, and with a writer that cannot
 * write (its file is a FIFO nobody reads: a stuck disk) handing a line over
 * never blocks, lines wait in a queue up to EVLOG_QUEUE_MAX bytes, then are
 * dropped and counted; once the writer can go on, every line not dropped
 * arrives, in order.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evlog.h"
#include "log.h"

static char dir[64], path[100], path_old[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_evlog.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	snprintf(path_old, sizeof(path_old), "%s.1", path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	unlink(path_old);
	rmdir(dir);
	return 0;
}

/* Line k: "k xxxx...\n", len bytes in all. */
static size_t line(char *buf, int k, size_t len)
{
	int n = snprintf(buf, len, "%d ", k);

	memset(buf + n, 'x', len - n - 1);
	buf[len - 1] = '\n';
	return len;
}

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* The numbers of the lines of file f, in order, into got (each line checked whole). */
static int numbers(const char *f, size_t len, int *got, int max)
{
	char *l = NULL;
	size_t cap = 0;
	ssize_t n;
	int cnt = 0;
	FILE *fp = fopen(f, "r");

	if (!fp)
		return 0;
	while ((n = getline(&l, &cap, fp)) > 0 && cnt < max) {
		assert_int_equal(n, len);
		got[cnt++] = atoi(l);
	}
	free(l);
	fclose(fp);
	return cnt;
}

static void test_lines_in_order(void **state)
{
	char buf[200];
	int got[300], k, n;

	(void)state;
	assert_int_equal(evlog_open(path, path_old, 1 << 20), 0);
	for (k = 0; k < 300; k++)
		assert_int_equal(evlog_push(buf, line(buf, k, 100)), 0);
	evlog_close(2000);
	n = numbers(path, 100, got, 300);
	assert_int_equal(n, 300);
	for (k = 0; k < n; k++)
		assert_int_equal(got[k], k);
	assert_int_equal(evlog_dropped(), 0);
}

static void test_rotates_at_the_bound(void **state)
{
	char buf[200];
	int got[100], k, n1, n2;
	struct stat st;

	(void)state;
	/* 1000 bytes a file: 10 lines of 100; 25 lines: .1 has 10-19, the file 20-24. */
	assert_int_equal(evlog_open(path, path_old, 1000), 0);
	for (k = 0; k < 25; k++)
		assert_int_equal(evlog_push(buf, line(buf, k, 100)), 0);
	evlog_close(2000);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= 1000);
	n1 = numbers(path_old, 100, got, 100);
	assert_int_equal(n1, 10);
	for (k = 0; k < n1; k++)
		assert_int_equal(got[k], 10 + k);
	n2 = numbers(path, 100, got, 100);
	assert_int_equal(n2, 5);
	for (k = 0; k < n2; k++)
		assert_int_equal(got[k], 20 + k);
}

static void test_stuck_writer_is_bounded(void **state)
{
	enum { LEN = 1000, N = 1000 };
	static char rd[N * LEN];
	static bool kept[N];
	char buf[LEN];
	long long t, worst = 0;
	size_t want = 0, have = 0;
	int k, r, fifo, drops = 0, nkept = 0, i;
	struct pollfd p[2];
	char *l;

	(void)state;
	assert_int_equal(mkfifo(path, 0600), 0);
	fifo = open(path, O_RDONLY | O_NONBLOCK); /* a reader that does not read: stuck */
	assert_true(fifo >= 0);
	assert_int_equal(evlog_open(path, path_old, 1 << 30), 0);
	/* 1 MB of lines: the FIFO, the pipe, the writer's buffer and the queue hold less. */
	for (k = 0; k < N; k++) {
		t = mono_us();
		r = evlog_push(buf, line(buf, k, LEN));
		t = mono_us() - t;
		if (t > worst)
			worst = t;
		assert_true(r == 0 || r == -ENOBUFS);
		kept[k] = !r;
		drops += !!r;
		want += r ? 0 : LEN;
		if (!r)
			nkept++;
	}
	printf("stuck writer: %d of %d lines kept, %d dropped, slowest hand-over %lld us\n", nkept,
	       N, drops, worst);
	/* Never blocked (a blocking write would wait for ever here). */
	assert_true(worst < 200000);
	assert_true(drops > 0);
	assert_int_equal(evlog_dropped(), (unsigned long long)drops);
	assert_true(evlog_pending());
	/* Kept: at most what the FIFO, the pipe (64 KiB each), the writer's 68 KiB and the queue
	 * hold. */
	assert_true(want <= EVLOG_QUEUE_MAX + 3 * 70 * 1024);
	assert_true(want >= EVLOG_QUEUE_MAX - LEN);
	/* The disk is back: every line kept arrives, whole and in order. */
	for (i = 0; have < want && i < 100000; i++) {
		p[0] = (struct pollfd){.fd = fifo, .events = POLLIN};
		p[1] = (struct pollfd){.fd = evlog_fd(), .events = evlog_pending() ? POLLOUT : 0};
		poll(p, 2, 100);
		if (p[1].revents & POLLOUT)
			evlog_flush();
		r = read(fifo, rd + have, sizeof(rd) - have);
		if (r > 0)
			have += r;
	}
	assert_int_equal(have, want);
	assert_false(evlog_pending());
	evlog_close(2000);
	for (k = 0, l = rd; k < N; k++) {
		if (!kept[k])
			continue;
		assert_int_equal(atoi(l), k);
		assert_int_equal(l[LEN - 1], '\n');
		l += LEN;
	}
	close(fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lines_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotates_at_the_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stuck_writer_is_bounded, setup, teardown),
	};

	log_init("test_evlog", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
