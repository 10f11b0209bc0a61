/* SPDX-License-Identifier: MIT */
/*
 * Arithmetic of the HTTP gates (min-success-rate, max-error-ratio) over the
 * status classes measure-http counts: pure, unit-tested.
 */
#ifndef BATON_HTTPGATE_H
#define BATON_HTTPGATE_H

#include <stdbool.h>

#include "drain.h"

/* Final responses (2xx..5xx) and 5xx among them, counted between then and now. */
struct http_window {
	unsigned long long n, e5;
};

/*
 * now - then, class by class; a class that went down (its entry was made
 * again) counts as now's.  1xx and unparseable responses are not final
 * responses: left out of n (shown apart in status).
 */
void http_window_of(struct http_window *w, const struct http_counts *now,
		    const struct http_counts *then);
/* Whether the non-5xx share of w is below min_bp basis points (false with no responses). */
bool http_success_below(const struct http_window *w, unsigned min_bp);
/* The non-5xx share of w in percent (100 with no responses). */
double http_success_pct(const struct http_window *w);
/*
 * The one-sided p-value of "the canary's 5xx rate is above ratio times its
 * comparison's": the canary (c) and the comparison (b) as independent
 * binomial samples, H0: p_c <= ratio * p_b, Wald's z with each side's own
 * variance, z = (p_c - ratio p_b) / sqrt(p_c (1 - p_c) / n_c + ratio^2 p_b (1 - p_b) / n_b),
 * p = 1 - Phi(z).  When both variances are 0 (no 5xx, or only 5xx, on each
 * side) the rates are taken as exact: 0 when p_c > ratio p_b, else 1.
 * 1 when either side has no responses.
 */
double http_error_ratio_p(const struct http_window *c, const struct http_window *b, double ratio);

#endif /* BATON_HTTPGATE_H */
