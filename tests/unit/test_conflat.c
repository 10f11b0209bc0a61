/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the latency setting in user/config.c and user/confkeys.c:
 * [agent] latency = on | off, [service NAME] latency = auto | on | off,
 * LATENCY_MEASURED, and the combinations with latency gates that are
 * refused (one line, nothing kept); max-p99-ratio, confidence, baseline
 * and gate-mode (fsm_gates.c's rank test and dry-run).  Config files go to a private temp
 * directory.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/types.h>

#include "config.h"

static char tmpdir[256];
static char conf_path[PATH_MAX];
static struct config *cfg;
static char err[CONF_ERR_LEN];

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int n;

	(void)state;
	n = snprintf(tmpdir, sizeof(tmpdir), "%s/baton-test-conflat.XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(tmpdir) || !mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/web.conf", tmpdir);
	cfg = calloc(1, sizeof(*cfg));
	return cfg ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	rmdir(tmpdir);
	free(cfg);
	return 0;
}

/* Load [agent] lines a and [service web] lines s; 0 or -1 with err. */
static int load(const char *a, const char *s)
{
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	fprintf(f, "[agent]\n%s[service web]\nlisten = 127.0.0.1:8080\nexec = /bin/true\n%s", a, s);
	assert_int_equal(fclose(f), 0);
	memset(err, 0, sizeof(err));
	return config_load(conf_path, cfg, err, sizeof(err));
}

static void refused(const char *a, const char *s, const char *want)
{
	assert_int_equal(load(a, s), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not say \"%s\"", err, want);
	assert_null(strchr(err, '\n'));
	assert_int_equal(cfg->nservices, 0);
}

static void defaults(void **state)
{
	(void)state;
	assert_int_equal(load("", ""), 0);
	assert_false(cfg->agent.latency_off);
	assert_int_equal(cfg->services[0].latency, LATENCY_AUTO);
	/* auto without a gate: not measured. */
	assert_false(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
}

static void auto_with_gates(void **state)
{
	(void)state;
	assert_int_equal(load("", "max-p99 = 500ms\n"), 0);
	assert_true(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
	assert_int_equal(load("", "max-accept-wait-p99 = 2s\n"), 0);
	assert_true(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
	/* A gate turned off is no gate. */
	assert_int_equal(load("", "max-p99 = off\n"), 0);
	assert_false(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
}

static void on_and_off(void **state)
{
	(void)state;
	assert_int_equal(load("latency = on\n", "latency = on\n"), 0);
	assert_false(cfg->agent.latency_off);
	assert_int_equal(cfg->services[0].latency, LATENCY_ON);
	assert_true(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
	assert_int_equal(load("latency = off\n", "latency = off\n"), 0);
	assert_true(cfg->agent.latency_off);
	assert_int_equal(cfg->services[0].latency, LATENCY_OFF);
	assert_false(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
	assert_int_equal(load("", "latency = auto\n"), 0);
	assert_int_equal(cfg->services[0].latency, LATENCY_AUTO);
	config_free(cfg);
}

static void bad_values(void **state)
{
	(void)state;
	refused("", "latency = yes\n", "latency must be auto, on or off, not \"yes\"");
	refused("", "latency = On\n", "latency must be auto, on or off");
	refused("latency = auto\n", "", "latency must be on or off in [agent], not \"auto\"");
	refused("", "latency = on\nlatency = off\n", "latency given twice");
}

static void gate_without_measurement(void **state)
{
	(void)state;
	refused("", "latency = off\nmax-p99 = 500ms\n",
		"max-p99 needs latency measured, but latency = off");
	refused("", "max-accept-wait-p99 = 1s\nlatency = off\n",
		"max-accept-wait-p99 needs latency measured");
	refused("latency = off\n", "max-p99 = 500ms\n",
		"service \"web\" has a latency gate (max-p99) but [agent] has latency = off");
	/* Off everywhere with no gate is fine. */
	assert_int_equal(load("latency = off\n", "latency = on\n"), 0);
	config_free(cfg);
}

static void ratio_settings(void **state)
{
	(void)state;
	assert_int_equal(load("", "strategy = canary\nmax-p99-ratio = 1.2\n"), 0);
	assert_true(cfg->services[0].max_p99_ratio > 1.19 && cfg->services[0].max_p99_ratio < 1.21);
	assert_int_equal(cfg->services[0].confidence_bp, 9500);
	assert_false(cfg->services[0].baseline);
	assert_false(cfg->services[0].gate_dry_run);
	/* A ratio gate alone has latency measured (auto). */
	assert_true(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
	assert_int_equal(load("", "strategy = canary\nmax-p99-ratio = 3\nconfidence = 99.5%\n"
				  "baseline = yes\ngate-mode = dry-run\n"),
			 0);
	assert_int_equal(cfg->services[0].confidence_bp, 9950);
	assert_true(cfg->services[0].baseline);
	assert_true(cfg->services[0].gate_dry_run);
	config_free(cfg);
	assert_int_equal(load("", "gate-mode = enforce\n"), 0);
	assert_false(cfg->services[0].gate_dry_run);
	config_free(cfg);
}

static void ratio_refused(void **state)
{
	(void)state;
	refused("", "max-p99-ratio = 1\n", "max-p99-ratio must be a ratio above 1");
	refused("", "max-p99-ratio = 0.8\n", "max-p99-ratio must be a ratio above 1");
	refused("", "max-p99-ratio = 1.2x\n", "max-p99-ratio must be a ratio above 1");
	refused("", "max-p99-ratio = nan\n", "max-p99-ratio must be a ratio above 1");
	refused("", "max-p99-ratio = 101\n", "max-p99-ratio must be a ratio above 1");
	refused("", "max-p99-ratio = 1.2\nconfidence = 50%\n",
		"confidence must be above 50% and below 100%");
	refused("", "max-p99-ratio = 1.2\nconfidence = 100%\n",
		"confidence must be above 50% and below 100%");
	refused("", "max-p99-ratio = 1.2\nconfidence = 101\n", "confidence: ");
	refused("", "confidence = 95%\n",
		"confidence is for max-p99-ratio's and max-error-ratio's tests, neither of which "
		"is set");
	refused("", "strategy = bluegreen\nbaseline = yes\n",
		"baseline = yes needs strategy = canary");
	refused("", "strategy = rolling\nbaseline = yes\n",
		"baseline = yes needs strategy = canary (a baseline takes a canary step's share; "
		"rolling has none)");
	refused("", "baseline = maybe\n", "baseline must be yes or no");
	refused("", "gate-mode = off\n", "gate-mode must be enforce or dry-run");
	refused("", "gate-mode = dry-run\ngate-dry-run = yes\n",
		"gate-mode and gate-dry-run (line 6) both given");
	refused("", "max-p99-ratio = 1.5\nlatency = off\n",
		"max-p99-ratio needs latency measured, but latency = off");
	refused("latency = off\n", "max-p99-ratio = 1.5\n",
		"has a latency gate (max-p99-ratio) but [agent] has latency = off");
}

/* measure-http and its gates (min-success-rate, max-error-ratio). */
static void http_settings(void **state)
{
	(void)state;
	assert_int_equal(load("", "strategy = canary\n"), 0);
	assert_false(cfg->services[0].measure_http);
	assert_int_equal(cfg->services[0].min_success_bp, 0);
	assert_true(cfg->services[0].max_error_ratio == 0);
	config_free(cfg);
	assert_int_equal(load("",
			      "strategy = canary\nmeasure-http = yes\nmin-success-rate = 99.5%\n"
			      "max-error-ratio = 2\nconfidence = 99%\n"),
			 0);
	assert_true(cfg->services[0].measure_http);
	assert_int_equal(cfg->services[0].min_success_bp, 9950);
	assert_true(cfg->services[0].max_error_ratio == 2);
	assert_int_equal(cfg->services[0].confidence_bp, 9900);
	/* The HTTP gates are judged in the latency window: latency is measured (auto). */
	assert_true(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
	/* measure-http alone: counts for status, no gate */
	assert_int_equal(load("", "measure-http = yes\nmin-success-rate = off\n"), 0);
	assert_false(LATENCY_MEASURED(&cfg->services[0]));
	config_free(cfg);
}

static void http_refused(void **state)
{
	(void)state;
	refused("", "measure-http = maybe\n", "measure-http must be yes or no");
	refused("", "min-success-rate = 99%\n",
		"min-success-rate needs the responses' status counted: add measure-http = yes");
	refused("", "max-error-ratio = 2\n",
		"max-error-ratio needs the responses' status counted: add measure-http = yes");
	refused("", "measure-http = yes\nmin-success-rate = 99\n",
		"min-success-rate needs a unit: 99%, or off, not 99");
	refused("", "measure-http = yes\nmin-success-rate = 0%\n",
		"min-success-rate must be above 0% and at most 100%");
	refused("", "measure-http = yes\nmin-success-rate = 101%\n", "min-success-rate");
	refused("", "measure-http = yes\nmin-success-rate = -5%\n", "min-success-rate");
	refused("", "measure-http = yes\nmax-error-ratio = 1\n",
		"max-error-ratio must be a ratio above 1");
	refused("", "measure-http = yes\nmax-error-ratio = 0.5\n",
		"max-error-ratio must be a ratio above 1");
	refused("", "measure-http = yes\nmax-error-ratio = 2x\n",
		"max-error-ratio must be a ratio above 1");
	refused("", "measure-http = yes\nmin-success-rate = 99%\nlatency = off\n",
		"min-success-rate needs latency measured, but latency = off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(auto_with_gates),
	    cmocka_unit_test(on_and_off),
	    cmocka_unit_test(bad_values),
	    cmocka_unit_test(gate_without_measurement),
	    cmocka_unit_test(ratio_settings),
	    cmocka_unit_test(ratio_refused),
	    cmocka_unit_test(http_settings),
	    cmocka_unit_test(http_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
