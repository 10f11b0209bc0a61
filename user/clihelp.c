/* SPDX-License-Identifier: MIT */
/* The CLI's help: every command's usage line and text, help, version. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct help {
	const char *name;
	const char *usage;
	const char *text;
};

static const struct help helps[] = {
    {"agent", "baton agent [-d] [-n] [-v|-vv] [-f FILE]",
     "Run the node agent: load the steering program, start every service in FILE\n"
     "(default " DEFAULT_CONFIG ") and serve the control socket.\n"
     "  -f FILE  configuration file\n"
     "  -d       stay in the foreground, log to stderr (the agent never forks;\n"
     "           -d is accepted for the usual daemon convention)\n"
     "  -n       check the configuration, print \"configuration OK\" and exit\n"
     "  -v, -vv  more logging (-vv adds libbpf's own messages)\n"
     "SIGTERM or SIGINT ends the agent and leaves services running, steered as last\n"
     "programmed; `baton shutdown --stop` stops them first."},
    {"deploy",
     "baton deploy SERVICE [--strategy bluegreen|canary|rolling] [--steps 5,25,50,100] "
     "[--bake 30s] [--approve] [--baseline] [--max-surge 1] [--max-unavailable 0] "
     "[--pause 5s] [--env KEY=VALUE]... [-s SOCKET] {-- COMMAND [ARG...] | --adopt-pid PID}",
     "Start COMMAND as the next version of SERVICE with the service's instance count\n"
     "and wait until every instance is ready.  bluegreen (the default unless the\n"
     "config says strategy = canary) then moves all new connections to it in one map\n"
     "update and drains the version it replaces.  canary gives it each step's share\n"
     "of new connections in turn (percent; 100 is implied last), each for the bake\n"
     "time, while health checks and the kernel's error counters watch it; --bake 0\n"
     "waits for `baton promote` at every step.  Any failure (a health threshold, an\n"
     "instance exiting, resets or accept-queue drops above max-error-rate, a p99\n"
     "response time above max-p99 over min-samples requests, a canary slower than\n"
     "max-p99-ratio times its baseline by a rank test at confidence, with measure-http\n"
     "a success rate below min-success-rate or a 5xx rate above max-error-ratio times\n"
     "its baseline's, a step inconclusive for analysis-timeout, a failing hook) puts\n"
     "the old version back to 100% in one map update and drains the new one.\n"
     "rolling replaces the instances a few at a time, never running two whole\n"
     "copies: --max-surge new instances start at once\n"
     "(processes never pass instances + max-surge), each takes traffic once ready,\n"
     "and old instances leave (the one with the fewest live connections first) as\n"
     "far as serving instances stay at least instances - max-unavailable; --pause\n"
     "between batches, health and Prometheus gates as canary, each batch after the\n"
     "first held until the gates pass (then --approve, confirm-step webhooks); a\n"
     "failure rolls back and starts the old instances that left again.  A count or\n"
     "a percentage of instances each; the options alone mean rolling.  Exits 0\n"
     "when the new version has all traffic; non-zero with the reason otherwise.\n"
     "With --adopt-pid (services with adopt = yes) the new version is a\n"
     "server already started outside baton, adopted as with baton adopt; its\n"
     "sockets get no connection until baton places them.  --approve (or approve = yes)\n"
     "makes each canary step (each rolling batch after the first) wait for `baton\n"
     "promote` instead of a bake, and rolls back when nobody promotes within\n"
     "approval-timeout.  Confirmation webhooks (webhook = confirm-step URL, ...) hold\n"
     "a step (a batch; confirm-promotion: the last) until their URL answers 2xx.\n"
     "--env KEY=VALUE (repeatable, at most 32, each up to 1024 bytes) is this\n"
     "version's own environment, on top of the service's environment = lines (a\n"
     "name in both takes this value); it stays with the version through agent\n"
     "restarts and rollbacks.  Every instance also gets BATON_SERVICE, BATON_VERSION\n"
     "(v2) and BATON_INSTANCE; LISTEN_*, NOTIFY_SOCKET and BATON_* are baton's.\n"
     "--baseline (or baseline = yes; canary only) also starts a fresh copy of the\n"
     "current version with the canary's share at each step; max-p99-ratio compares\n"
     "the canary with it (without one: with the active version); it drains when the\n"
     "rollout ends.  gate-mode = dry-run reports every gate's verdict, never acts."},
    {"adopt", "baton adopt SERVICE --pid PID [-s SOCKET]",
     "Take over a server that opened its own SO_REUSEPORT listeners (nginx with\n"
     "`listen ... reuseport`) as SERVICE's active version: its listening sockets on\n"
     "the service's addresses (the process's and its children's) are copied with\n"
     "pidfd_getfd(2) and placed, then the steering program is attached.  The service\n"
     "needs adopt = yes; later builds come in with baton deploy SERVICE --adopt-pid."},
    {"promote", "baton promote SERVICE [--full] [-s SOCKET]",
     "Move a canary rollout to its next step now (ending the bake, or continuing a\n"
     "paused rollout); --full goes straight to 100%.  A rolling rollout: its next\n"
     "batch starts now (the pause ends; gates and approval held it no more);\n"
     "--full also skips the pauses and approvals left."},
    {"pause", "baton pause SERVICE [-s SOCKET]",
     "Hold a canary rollout at its current weight: the bake timer stops, health\n"
     "checks go on (and still roll back).  baton promote continues."},
    {"abort", "baton abort SERVICE [-s SOCKET]",
     "Roll a rollout back: the old version gets all new connections again in one map\n"
     "update, the new one drains and stops.  The waiting deploy exits non-zero."},
    {"weight", "baton weight SERVICE vN=PERCENT [vM=PERCENT] [-s SOCKET]",
     "Set the weights of the two versions of a rollout by hand, e.g. v2=10 (the other\n"
     "version gets the rest).  Pauses the rollout; baton promote continues from the\n"
     "next step above the weight set here."},
    {"pin", "baton pin SERVICE CIDR vN [-s SOCKET]",
     "Send clients from CIDR (10.1.0.0/16, 2001:db8::/32, or one address) to version\n"
     "N whatever the weights, e.g. internal users to a canary.  The longest matching\n"
     "prefix wins.  A pin to a version that is not active falls back to the weights;\n"
     "pins to a version are removed when it stops."},
    {"unpin", "baton unpin SERVICE CIDR [-s SOCKET]", "Remove the pin of CIDR."},
    {"status", "baton status [SERVICE] [--json] [-s SOCKET]",
     "Show each service's versions: state, weight, instances and pids, and the\n"
     "steering counters, and the response time p50/p90/p99 of the last second of\n"
     "each version the kernel measures (latency = on, or auto with a latency gate\n"
     "such as max-p99; [agent] latency = off measures none), and with measure-http\n"
     "the status classes of the responses of the versions under analysis, and with\n"
     "byte-counts = yes the payload bytes each version received and sent.  A\n"
     "rollout shows its gates' last verdicts and what it is held for (a webhook's\n"
     "2xx, baton promote, its gates), until when, and the last answer.  --json\n"
     "prints the agent's answer for scripts."},
    {"watch", "baton watch [SERVICE] [-n SECONDS] [--count N] [-s SOCKET]",
     "Refresh a per-version view every SECONDS (default 1): state, weight, live\n"
     "connections, and connections accepted per second since the last refresh.\n"
     "Runs until interrupted, or for N refreshes with --count N."},
    {"events", "baton events [SERVICE] [--json] [--follow] [--last N] [-s SOCKET]",
     "List what happened to each service, oldest first: deploys, steps, gate\n"
     "verdicts, promotions, completions, rollbacks and their reasons, drains,\n"
     "crashes and connections lost with a process.  The agent keeps them in\n"
     "RUN-DIR/events.jsonl (and one older events.jsonl.1, 1 MiB each) across\n"
     "restarts, and logs each as an \"event: service=... event=...\" line.\n"
     "--follow keeps printing new events as they happen; --json prints one JSON\n"
     "object per line; --last N only the last N."},
    {"rollback", "baton rollback SERVICE [--to vN] [-s SOCKET]",
     "Go back to the previous version (the last one that served before the\n"
     "current one), or with --to vN to any version baton history lists.  A version\n"
     "still running and not yet told to exit (see drain-delay; keep-warm = 1 keeps\n"
     "it for rollback-window, in the map: one policy update) gets all new\n"
     "connections back at once.  One that exited starts again, with the command,\n"
     "environment, user and directory it ran with, as a new version number (its\n"
     "history says \"rollback of vN\"), rolled out with the service's strategy; the\n"
     "command waits for that rollout as deploy does.  Without --to it also aborts\n"
     "a deploy in progress."},
    {"history", "baton history SERVICE [--json] [-s SOCKET]",
     "List the versions the service remembers for baton rollback (keep-versions,\n"
     "default 5), oldest first: number, how it ended (active, replaced,\n"
     "rolled-back, failed, deploying) and why, when it was deployed, its command,\n"
     "and which version a rollback started again.  The list survives agent\n"
     "restarts (state file).  --json adds each version's environment, user and\n"
     "directory."},
    {"reload", "baton reload [-s SOCKET]",
     "Read the configuration again (as SIGHUP to the agent does): added services\n"
     "start, removed ones drain and stop, changed settings apply to what each\n"
     "service does next; the traffic of every service goes on untouched.  A\n"
     "configuration that is invalid, or that changes a running service's listen\n"
     "addresses or [agent] settings, is refused as a whole and the running one stays."},
    {"shutdown", "baton shutdown [--stop] [-s SOCKET]",
     "End the agent.  Without --stop, services keep running and steering stays as\n"
     "programmed.  With --stop every version is drained and stopped first."},
    {"features", "baton features [--json]",
     "Probe the running kernel for each facility baton uses, by loading a tiny\n"
     "program or map (or looking for the file it makes), and print one line each:\n"
     "supported or not, the upstream kernel that brought it, and what baton uses\n"
     "it for.  Exits 1 when a facility the agent needs is missing.  Needs root.\n"
     "--json prints the same as an array for scripts."},
    {"help", "baton help [COMMAND]", "Show help for every command, or for one."},
    {"version", "baton version", "Print baton's version."},
};

int cmd_help(int argc, char **argv)
{
	size_t i;

	if (argc >= 1 && argv) {
		for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
			if (!strcmp(argv[0], helps[i].name)) {
				printf("usage: %s\n\n%s\n", helps[i].usage, helps[i].text);
				return 0;
			}
		fprintf(stderr, "baton: no help for \"%s\" (see: baton help)\n", argv[0]);
		return 2;
	}
	printf("baton: hot-swap local service binaries with zero dropped connections\n\n"
	       "usage:\n");
	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		printf("  %s\n", helps[i].usage);
	printf("\nThe control socket is %s unless -s SOCKET or $BATON_CONTROL says\n"
	       "otherwise.  deploy and rollback give up on an agent silent for\n"
	       "$BATON_AGENT_TIMEOUT seconds (60).  baton help COMMAND explains one command.\n",
	       DEFAULT_CONTROL);
	return 0;
}

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("baton %s\n", BATON_VERSION_STR);
	return 0;
}

int cmd_usage(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		if (!strcmp(name, helps[i].name))
			fprintf(stderr, "usage: %s\n", helps[i].usage);
	return 2;
}
