/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness: config_load() (user/config.c) on arbitrary files.  The
 * parser takes a path, so the input goes into a memfd opened again through
 * /proc/self/fd/N.  A rejected file must leave nothing to free (LeakSanitizer
 * checks) and say why in one line; an accepted one must hold values in the
 * ranges config.h promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/types.h>

#include "config.h"
#include "fuzz.h"

static struct config *cfg; /* ~180 KiB: not on the stack */
static int memfd = -1;
static char path[64];

static void check_service(const struct service_conf *s)
{
	int i;

	FUZZ_CHECK(memchr(s->name, '\0', sizeof(s->name)) && s->name[0], "service name");
	FUZZ_CHECK(s->nlisten >= 1 && s->nlisten <= MAX_LISTEN, "nlisten %d", s->nlisten);
	FUZZ_CHECK(s->argc >= 1 && s->argc <= MAX_ARGS && s->argv[0] && !s->argv[s->argc],
		   "argc %d", s->argc);
	FUZZ_CHECK(s->argv[0][0] == '/', "exec %s is not absolute", s->argv[0]);
	FUZZ_CHECK(s->nenv >= 0 && s->nenv <= MAX_ENV && !s->env[s->nenv], "nenv %d", s->nenv);
	FUZZ_CHECK(s->instances >= 1 && s->instances <= MAX_INSTANCES, "instances %d",
		   s->instances);
	FUZZ_CHECK(s->nsteps >= 1 && s->nsteps <= MAX_STEPS, "nsteps %d", s->nsteps);
	for (i = 0; i < s->nsteps; i++)
		FUZZ_CHECK(s->steps[i] > (i ? s->steps[i - 1] : 0) && s->steps[i] <= WEIGHT_MAX,
			   "step %d: %u", i, s->steps[i]);
	FUZZ_CHECK(s->steps[s->nsteps - 1] == WEIGHT_MAX, "last step %u", s->steps[s->nsteps - 1]);
	FUZZ_CHECK(s->max_error_bp == ERROR_RATE_OFF ||
		       (s->max_error_bp >= 0 && s->max_error_bp <= WEIGHT_MAX),
		   "max_error_bp %d", s->max_error_bp);
	FUZZ_CHECK(s->exit_signal > 0 && s->exit_signal < 65, "exit signal %d", s->exit_signal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERR_LEN];
	int rc, i;

	if (memfd < 0) {
		memfd = memfd_create("baton-fuzz-config", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
		cfg = calloc(1, sizeof(*cfg));
		if (!cfg)
			abort();
	}
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	memset(err, 0, sizeof(err));
	rc = config_load(path, cfg, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
	fuzz_check_err("config_load", rc, err, sizeof(err));
	if (rc)
		return 0;
	FUZZ_CHECK(cfg->nservices >= 0 && cfg->nservices <= MAX_SERVICES, "nservices %d",
		   cfg->nservices);
	for (i = 0; i < cfg->nservices; i++)
		check_service(&cfg->services[i]);
	config_free(cfg);
	return 0;
}
