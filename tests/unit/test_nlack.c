/* SPDX-License-Identifier: MIT */
/*
 * Which request of a drain-reset batch a netlink ack answers (user/nlack.h):
 * by sequence number, never by position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "nlack.h"

struct ack {
	struct nlmsghdr h;
	struct nlmsgerr e;
};

static struct ack ack(__u32 seq, int error)
{
	struct ack a;

	memset(&a, 0, sizeof(a));
	a.h.nlmsg_len = sizeof(a);
	a.h.nlmsg_type = NLMSG_ERROR;
	a.h.nlmsg_seq = seq;
	a.e.error = error;
	return a;
}

static void in_order(void **state)
{
	bool acked[3] = {false};
	__u32 i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct ack a = ack(100 + i, 0);

		assert_int_equal(nl_ack_index(&a.h, sizeof(a), 100, 3, acked), (int)i);
		acked[i] = true;
	}
}

/* A dropped ack: the next one still answers its own request, not the dropped one's. */
static void after_a_dropped_ack(void **state)
{
	bool acked[3] = {false};
	struct ack a0 = ack(100, 0), a2 = ack(102, -ENOENT);

	(void)state;
	assert_int_equal(nl_ack_index(&a0.h, sizeof(a0), 100, 3, acked), 0);
	acked[0] = true;
	/* By position this second ack would be request 1's. */
	assert_int_equal(nl_ack_index(&a2.h, sizeof(a2), 100, 3, acked), 2);
}

/* A late ack of an earlier batch, or one past this batch, answers nothing here. */
static void other_batches(void **state)
{
	bool acked[3] = {false};
	struct ack late = ack(99, 0), next = ack(103, 0);

	(void)state;
	assert_int_equal(nl_ack_index(&late.h, sizeof(late), 100, 3, acked), -1);
	assert_int_equal(nl_ack_index(&next.h, sizeof(next), 100, 3, acked), -1);
}

static void counted_once(void **state)
{
	bool acked[3] = {false, true, false};
	struct ack a = ack(101, 0);

	(void)state;
	assert_int_equal(nl_ack_index(&a.h, sizeof(a), 100, 3, acked), -1);
}

static void not_an_ack(void **state)
{
	bool acked[2] = {false};
	struct ack a = ack(7, 0);

	(void)state;
	a.h.nlmsg_type = NLMSG_DONE;
	assert_int_equal(nl_ack_index(&a.h, sizeof(a), 7, 2, acked), -1);
	a = ack(7, 0);
	assert_int_equal(nl_ack_index(&a.h, NLMSG_LENGTH(sizeof(int)) - 1, 7, 2, acked), -1);
	a.h.nlmsg_len = NLMSG_HDRLEN;
	assert_int_equal(nl_ack_index(&a.h, sizeof(a), 7, 2, acked), -1);
}

/* Sequence numbers wrap: a batch across 2^32 still matches. */
static void wraps(void **state)
{
	bool acked[4] = {false};
	struct ack a = ack(1, 0), b = ack(UINT32_MAX, 0);

	(void)state;
	assert_int_equal(nl_ack_index(&a.h, sizeof(a), UINT32_MAX - 1, 4, acked), 3);
	assert_int_equal(nl_ack_index(&b.h, sizeof(b), UINT32_MAX - 1, 4, acked), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(in_order),	     cmocka_unit_test(after_a_dropped_ack),
	    cmocka_unit_test(other_batches), cmocka_unit_test(counted_once),
	    cmocka_unit_test(not_an_ack),    cmocka_unit_test(wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
