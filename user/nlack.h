/* SPDX-License-Identifier: MIT */
/*
 * Which request of a batch a netlink ack answers, by its sequence number:
 * pure, so that the rule is tested without a kernel (tests/unit/test_nlack.c).
 */
#ifndef BATON_NLACK_H
#define BATON_NLACK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/netlink.h>
#include <linux/types.h>

/*
 * The index (0..n-1) of the request of a batch numbered base..base+n-1
 * that the message of len bytes at h acknowledges, or -1: not an ack
 * (NLMSG_ERROR with its error code), too short, an ack of any other request
 * (a late one of an earlier batch), or one already counted (acked[idx]).
 * Matching by position instead would give a late ack, or the next one
 * after a dropped ack, to the wrong connection.
 */
static inline int nl_ack_index(const struct nlmsghdr *h, size_t len, __u32 base, unsigned n,
			       const bool *acked)
{
	__u32 idx;

	if (len < NLMSG_LENGTH(sizeof(int)) || h->nlmsg_len < NLMSG_LENGTH(sizeof(int)) ||
	    h->nlmsg_type != NLMSG_ERROR)
		return -1;
	idx = h->nlmsg_seq - base;
	if (idx >= n || acked[idx])
		return -1;
	return (int)idx;
}

#endif /* BATON_NLACK_H */
