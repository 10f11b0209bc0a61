/* SPDX-License-Identifier: MIT */
/*
 * strategy = rolling: max-surge and max-unavailable as a count or a
 * percentage of instances, read the way Kubernetes reads them (a surge
 * percentage rounds up, an unavailable one down).  Pure: the config
 * parser, the control request parser and the CLI share it.
 */
#ifndef BATON_ROLLCONF_H
#define BATON_ROLLCONF_H

#include <stddef.h>

#include "config.h"

/* "2" or "25%": 0 or -1 with err. */
int roll_amount_parse(const char *s, struct roll_amount *a, char *err, size_t errlen);
/*
 * Counts for instances, or -1 with err naming the problem and the fix:
 * a value above instances, both 0, or no instance left serving.
 */
int roll_resolve(int instances, struct roll_amount surge, struct roll_amount unavail, int *nsurge,
		 int *nunavail, char *err, size_t errlen);

#endif /* BATON_ROLLCONF_H */
