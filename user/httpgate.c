/* SPDX-License-Identifier: MIT */
/* The HTTP gates' arithmetic; see httpgate.h. */
#include <math.h>

#include "httpgate.h"

static unsigned long long delta(__u64 now, __u64 then)
{
	return now >= then ? now - then : now;
}

void http_window_of(struct http_window *w, const struct http_counts *now,
		    const struct http_counts *then)
{
	int k;

	w->n = 0;
	for (k = HC_2XX; k <= HC_5XX; k++)
		w->n += delta(now->n[k], then ? then->n[k] : 0);
	w->e5 = delta(now->n[HC_5XX], then ? then->n[HC_5XX] : 0);
}

bool http_success_below(const struct http_window *w, unsigned min_bp)
{
	/* (n - e5) / n < min_bp / 10000, in integers: no rounding at the bound. */
	return w->n && (w->n - w->e5) * 10000ULL < (unsigned long long)min_bp * w->n;
}

double http_success_pct(const struct http_window *w)
{
	return w->n ? 100.0 * (double)(w->n - w->e5) / (double)w->n : 100.0;
}

double http_error_ratio_p(const struct http_window *c, const struct http_window *b, double ratio)
{
	double pc, pb, var, z;

	if (!c->n || !b->n)
		return 1;
	pc = (double)c->e5 / (double)c->n;
	pb = (double)b->e5 / (double)b->n;
	var = pc * (1 - pc) / (double)c->n + ratio * ratio * pb * (1 - pb) / (double)b->n;
	if (var <= 0)
		return pc > ratio * pb ? 0 : 1;
	z = (pc - ratio * pb) / sqrt(var);
	return 0.5 * erfc(z / sqrt(2.0));
}
