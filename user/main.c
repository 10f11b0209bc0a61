/* SPDX-License-Identifier: MIT */
/* baton: one binary, subcommands dispatched from a table (bpftool's struct cmd). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct cmd cmds[] = {
    {"agent", cmd_agent},	{"deploy", cmd_deploy},	    {"status", cmd_status},
    {"rollback", cmd_rollback}, {"shutdown", cmd_shutdown}, {"help", cmd_help},
    {"watch", cmd_watch},	{"version", cmd_version},   {"promote", cmd_promote},
    {"pause", cmd_pause},	{"abort", cmd_abort},	    {"weight", cmd_weight},
    {"pin", cmd_pin},		{"unpin", cmd_unpin},	    {"adopt", cmd_adopt},
    {"reload", cmd_reload},	{"features", cmd_features}, {"events", cmd_events},
    {"history", cmd_history},
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		cmd_help(0, NULL);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return cmd_help(argc - 2, argv + 2);
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		return cmd_version(0, NULL);
	/* Commands see argv from their own name on; help sees only its topic. */
	if (!strcmp(argv[1], "help"))
		return cmd_help(argc - 2, argv + 2);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "baton: unknown command \"%s\" (see: baton help)\n", argv[1]);
	return 2;
}
