/* SPDX-License-Identifier: MIT */
/* max-surge and max-unavailable of a rolling rollout: parsing and resolving (rollconf.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "confval.h"
#include "rollconf.h"

int roll_amount_parse(const char *s, struct roll_amount *a, char *err, size_t errlen)
{
	char num[16];
	size_t len = strlen(s);
	unsigned long n;
	bool pct = len > 0 && s[len - 1] == '%';

	if (pct)
		len--;
	if (!len || len >= sizeof(num)) {
		snprintf(err, errlen, "\"%.32s\" is not a count or a percentage (e.g. 1 or 25%%)",
			 s);
		return -1;
	}
	memcpy(num, s, len);
	num[len] = '\0';
	/* parse_uint saturates at max + 1 */
	if (parse_uint(num, pct ? 100 : MAX_INSTANCES, &n) < 0 ||
	    n > (pct ? 100u : MAX_INSTANCES)) {
		if (pct)
			snprintf(err, errlen, "\"%.32s\" is not a percentage 0%%..100%%", s);
		else
			snprintf(err, errlen,
				 "\"%.32s\" is not a count 0..%d (or a percentage, e.g. 25%%)", s,
				 MAX_INSTANCES);
		return -1;
	}
	a->n = (int)n;
	a->pct = pct;
	return 0;
}

int roll_resolve(int instances, struct roll_amount surge, struct roll_amount unavail, int *nsurge,
		 int *nunavail, char *err, size_t errlen)
{
	int su, un;

	if (!surge.pct && surge.n > instances) {
		snprintf(err, errlen, "max-surge %d is above instances (%d); give 0..%d", surge.n,
			 instances, instances);
		return -1;
	}
	if (!unavail.pct && unavail.n > instances) {
		snprintf(err, errlen, "max-unavailable %d is above instances (%d); give 0..%d",
			 unavail.n, instances, instances - 1);
		return -1;
	}
	/* Kubernetes: a surge percentage rounds up, an unavailable one down. */
	su = surge.pct ? (surge.n * instances + 99) / 100 : surge.n;
	un = unavail.pct ? unavail.n * instances / 100 : unavail.n;
	if (!su && !un) {
		snprintf(
		    err, errlen,
		    "max-surge and max-unavailable are both 0 (for %d instance(s)): no instance "
		    "could start or stop; make one of them at least 1",
		    instances);
		return -1;
	}
	if (un >= instances) {
		if (!su)
			snprintf(err, errlen,
				 "max-surge 0 with max-unavailable %d of %d instance(s) would take "
				 "the service down; give max-surge at least 1%s",
				 un, instances, instances > 1 ? " or a lower max-unavailable" : "");
		else
			snprintf(
			    err, errlen,
			    "max-unavailable %d of %d instance(s) would leave none serving; give "
			    "0..%d",
			    un, instances, instances - 1);
		return -1;
	}
	*nsurge = su;
	*nunavail = un;
	return 0;
}
