/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the latency setting in user/config.c and user/confkeys.c:
 * [agent] latency = on | off, [service NAME] latency = auto | on | off,
 * LATENCY_MEASURED, and the combinations with latency gates that are
 * refused (one line, nothing kept).  Config files go to a private temp
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(auto_with_gates),
	    cmocka_unit_test(on_and_off),
	    cmocka_unit_test(bad_values),
	    cmocka_unit_test(gate_without_measurement),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
