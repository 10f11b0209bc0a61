/* SPDX-License-Identifier: MIT */
/*
 * baton deploy --env KEY=VALUE: the version's own environment as given on the
 * command line, checked by the rules the agent applies again (confval.c's
 * env_list_check), into the deploy request as "env": ["KEY=VALUE", ...].
 */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "cli.h"
#include "config.h"

int cli_deploy_env(const char *const *env, int nenv, long adopt_pid, json_t *req)
{
	size_t len[MAX_ENV];
	char err[256];
	json_t *je;
	int i;

	if (!nenv)
		return 0;
	if (adopt_pid) {
		fprintf(stderr,
			"baton deploy: --env is for versions baton starts; an adopted server "
			"keeps the environment it was started with (leave --env out)\n");
		return 2;
	}
	je = json_array();
	for (i = 0; i < nenv && i < MAX_ENV; i++) {
		len[i] = strlen(env[i]);
		json_array_append_new(je, json_string(env[i])); /* none when not UTF-8 */
	}
	if (!env_list_check(env, len, nenv, err, sizeof(err))) {
		if ((int)json_array_size(je) == nenv) {
			json_object_set_new(req, "env", je);
			return 0;
		}
		snprintf(err, sizeof(err), "--env: a variable is not UTF-8 text (give UTF-8)");
	}
	fprintf(stderr, "baton deploy: %s\n", err);
	json_decref(je);
	return 2;
}
