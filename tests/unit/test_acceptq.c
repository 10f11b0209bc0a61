/* SPDX-License-Identifier: MIT */
/*
 * Whether a version accepts (user/acceptq.h): handshakes completed minus
 * connections queued is what its server accepted; queued connections and
 * no accept since the last tick is a stall, timed from its first tick.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acceptq.h"

static void empty_queue_is_never_a_stall(void **state)
{
	struct acceptq a = {0};

	(void)state;
	acceptq_update(&a, 0, 100, 1000);
	acceptq_update(&a, 0, 100, 1500);
	acceptq_update(&a, 0, 100, 5000);
	assert_int_equal(acceptq_stalled_ms(&a, 5000), 0);
}

static void busy_but_accepting(void **state)
{
	struct acceptq a = {0};
	unsigned long long est = 0;
	long long t;

	(void)state;
	/* Always 5 queued (the queue never drains) while 50 a tick are accepted. */
	for (t = 0; t <= 10000; t += 500) {
		est += 50;
		acceptq_update(&a, 5, est, t);
		assert_int_equal(acceptq_stalled_ms(&a, t), 0);
	}
}

static void frozen(void **state)
{
	struct acceptq a = {0};

	(void)state;
	acceptq_update(&a, 0, 10, 0);			  /* idle */
	acceptq_update(&a, 3, 13, 500);			  /* 3 arrive, none taken */
	assert_int_equal(acceptq_stalled_ms(&a, 500), 0); /* its first tick */
	acceptq_update(&a, 7, 17, 1000);		  /* 4 more, none taken */
	assert_int_equal(acceptq_stalled_ms(&a, 1000), 500);
	acceptq_update(&a, 7, 17, 2500); /* nothing moves (a full queue drops SYNs) */
	assert_int_equal(acceptq_stalled_ms(&a, 2500), 2000);
	assert_int_equal(a.queue, 7);
	/* Thawed: it takes 2, 1 more arrives. */
	acceptq_update(&a, 6, 18, 3000);
	assert_int_equal(acceptq_stalled_ms(&a, 3000), 0);
}

static void first_tick_with_a_queue(void **state)
{
	struct acceptq a = {0};

	(void)state;
	/* The agent's first look finds a queue: timed from then. */
	acceptq_update(&a, 4, 4, 700);
	acceptq_update(&a, 4, 4, 1200);
	assert_int_equal(acceptq_stalled_ms(&a, 1200), 500);
	assert_int_equal(acceptq_stalled_ms(&(struct acceptq){0}, 1200), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_queue_is_never_a_stall),
	    cmocka_unit_test(busy_but_accepting),
	    cmocka_unit_test(frozen),
	    cmocka_unit_test(first_tick_with_a_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
