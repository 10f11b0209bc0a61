/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the HTTP gates' arithmetic (user/httpgate.c) and of the
 * status line classification the sk_msg program runs (include/drain.h).
 * Expected p-values: 0.5 * erfc(z / sqrt(2)) with z computed by hand
 * (python3: z = (pc - r pb) / sqrt(pc (1 - pc) / nc + r^2 pb (1 - pb) / nb)).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "httpgate.h"

static int cls(const char *s)
{
	return http_status_class((const __u8 *)s, (__u32)strlen(s));
}

static void status_lines(void **state)
{
	(void)state;
	assert_int_equal(cls("HTTP/1.1 200"), HC_2XX);
	assert_int_equal(cls("HTTP/1.0 301"), HC_3XX);
	assert_int_equal(cls("HTTP/1.1 404"), HC_4XX);
	assert_int_equal(cls("HTTP/1.1 503"), HC_5XX);
	assert_int_equal(cls("HTTP/1.1 100"), HC_1XX);
	/* Split over writes: every prefix of a status line asks for more. */
	assert_int_equal(cls(""), -1);
	assert_int_equal(cls("H"), -1);
	assert_int_equal(cls("HTTP/1.1 5"), -1);
	assert_int_equal(cls("HTTP/1.1 50"), -1);
	/* Not a status line: known as soon as a byte does not fit. */
	assert_int_equal(cls("X"), HC_OTHER);
	assert_int_equal(cls("HTTP/2 200 O"), HC_OTHER);
	assert_int_equal(cls("HTTP/1.1 600"), HC_OTHER);
	assert_int_equal(cls("HTTP/1.1 099"), HC_OTHER);
	assert_int_equal(cls("HTTP/1.1 2x0"), HC_OTHER);
	assert_int_equal(cls("HTTP/1.1  200"), HC_OTHER);
	assert_int_equal(cls("\x16\x03\x01\x02\x00"), HC_OTHER); /* a TLS record */
	/* Only the first HTTP_SL_LEN bytes matter. */
	assert_int_equal(cls("HTTP/1.1 200 OK\r\n"), HC_2XX);
}

static void windows(void **state)
{
	struct http_counts then = {0}, now = {0};
	struct http_window w;

	(void)state;
	now.n[HC_1XX] = 7;
	now.n[HC_2XX] = 900;
	now.n[HC_3XX] = 10;
	now.n[HC_4XX] = 40;
	now.n[HC_5XX] = 50;
	now.n[HC_OTHER] = 3;
	then.n[HC_2XX] = 100;
	then.n[HC_5XX] = 10;
	http_window_of(&w, &now, &then);
	/* 1xx and unparseable are not final responses */
	assert_int_equal(w.n, 800 + 10 + 40 + 40);
	assert_int_equal(w.e5, 40);
	/* A class that went down (the entry made again) counts as now's. */
	then.n[HC_5XX] = 60;
	http_window_of(&w, &now, &then);
	assert_int_equal(w.e5, 50);
	http_window_of(&w, &now, NULL);
	assert_int_equal(w.n, 1000);
}

static void success_rate(void **state)
{
	struct http_window w = {.n = 1000, .e5 = 10};

	(void)state;
	/* 99.0% exactly is not below 99% */
	assert_false(http_success_below(&w, 9900));
	w.e5 = 11; /* 98.9% */
	assert_true(http_success_below(&w, 9900));
	assert_float_equal(http_success_pct(&w), 98.9, 1e-9);
	w.e5 = 103; /* 89.7% */
	assert_true(http_success_below(&w, 9900));
	assert_false(http_success_below(&w, 8900));
	/* 100%: any 5xx fails */
	w.e5 = 1;
	assert_true(http_success_below(&w, 10000));
	w.e5 = 0;
	assert_false(http_success_below(&w, 10000));
	/* no responses: no verdict from the rate (min-samples decides) */
	w.n = 0;
	assert_false(http_success_below(&w, 9900));
	assert_float_equal(http_success_pct(&w), 100.0, 0);
}

static void near(double got, double want)
{
	if (fabs(got - want) > 1e-9 * want + 1e-15)
		fail_msg("p %.17g, want %.17g", got, want);
}

static void error_ratio(void **state)
{
	struct http_window c = {1000, 100}, b = {1000, 10};

	(void)state;
	/* 10% against 1%, ratio 2: z 7.0273 */
	near(http_error_ratio_p(&c, &b, 2), 1.0529646079526037e-12);
	/* 0.5% against none: z 2.2417, significant at 95%, not at 99% */
	c.e5 = 5;
	b.e5 = 0;
	near(http_error_ratio_p(&c, &b, 2), 0.012491056621684288);
	/* one 5xx in 1000 against none: z 1.0005, not significant */
	c.e5 = 1;
	near(http_error_ratio_p(&c, &b, 2), 0.15853420804625742);
	/* 3% against 1%, ratio 2: z 1.2065 */
	c.e5 = 30;
	b.e5 = 10;
	near(http_error_ratio_p(&c, &b, 2), 0.1138154277343835);
	/* exactly at the ratio: z 0 */
	c.e5 = 20;
	near(http_error_ratio_p(&c, &b, 2), 0.5);
	/* no variance on either side: exact rates */
	c.e5 = 0;
	b.e5 = 0;
	assert_true(http_error_ratio_p(&c, &b, 2) == 1);
	c.e5 = 1000;
	b.e5 = 1000;
	assert_true(http_error_ratio_p(&c, &b, 1.5) == 1);
	c.e5 = 1000;
	b.e5 = 0;
	assert_true(http_error_ratio_p(&c, &b, 2) == 0);
	/* a side without responses: no verdict */
	b.n = 0;
	assert_true(http_error_ratio_p(&c, &b, 2) == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(status_lines),
	    cmocka_unit_test(windows),
	    cmocka_unit_test(success_rate),
	    cmocka_unit_test(error_ratio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
