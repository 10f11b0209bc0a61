/* SPDX-License-Identifier: MIT */
#ifndef BATON_CONFIG_H
#define BATON_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "steer.h"

#define MAX_LISTEN   8	/* listen addresses per service */
#define MAX_ARGS     64 /* argv entries of a command */
#define MAX_ENV	     32 /* environment entries a config may give */
#define NAME_MAX_LEN 32 /* service names: [a-z0-9_-], first a letter */
#define CONF_ERR_LEN 256

enum ready_kind {
	READY_NONE = 0,	  /* ready as soon as started */
	READY_NOTIFY = 1, /* sd_notify READY=1 from every instance */
	READY_TCP = 2,	  /* a TCP probe through each instance's own socket is accepted */
};

enum drain_policy {
	DRAIN_WAIT_THEN_SIGNAL = 0, /* wait until the version has no connections, then signal */
	DRAIN_SIGNAL_THEN_WAIT = 1, /* exit signal at drain start, then wait for exit */
};

struct listen_addr {
	struct sockaddr_storage ss; /* AF_INET or AF_INET6, port set */
	socklen_t len;
	char text[64]; /* as written: "0.0.0.0:8080", "[::1]:8080" */
};

struct service_conf {
	char name[NAME_MAX_LEN];
	struct listen_addr listen[MAX_LISTEN];
	int nlisten;
	char *argv[MAX_ARGS + 1]; /* first version's command, NULL-terminated; malloc'd */
	int argc;
	char *env[MAX_ENV + 1]; /* "KEY=VALUE", NULL-terminated; malloc'd */
	int nenv;
	int instances;		   /* 1..MAX_INSTANCES, default 1 */
	char user[64];		   /* empty: run as the agent's user */
	char workdir[256];	   /* empty: / */
	enum ready_kind ready;	   /* default READY_NOTIFY */
	unsigned ready_timeout_ms; /* default 10000 */
	enum drain_policy drain;
	int exit_signal;	   /* default SIGTERM */
	unsigned drain_delay_ms;   /* default 0: time a drained version is kept, unsignalled, for
				      rollback */
	unsigned drain_timeout_ms; /* default 30000 */
	unsigned kill_after_ms;	   /* default 5000 */
	bool drain_reset; /* default false: at drain-timeout, reset what is left (SOCK_DESTROY) */
	int backlog;	  /* listen backlog, default 1024 */
	int line;	  /* line of the [service ...] header */
};

struct agent_conf {
	char control[108]; /* control socket path, default /run/baton/control.sock */
	char bpf_dir[256]; /* pin directory, default /sys/fs/bpf/baton */
	char run_dir[256]; /* state and notify sockets, default /run/baton */
};

struct config {
	struct agent_conf agent;
	struct service_conf services[MAX_SERVICES];
	int nservices;
};

/*
 * Parse a config file.  Returns 0, or -1 with a one-line message naming the
 * file, the line and the problem in err (e.g. "web.conf:7: instances must be
 * 1..32, not 0").  On error *cfg holds nothing that needs freeing.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);

/* Helpers, exported for the CLI, the control protocol and unit tests.
 * Each returns 0, or -1 with a message (no file/line prefix) in err. */
int parse_duration_ms(const char *s, unsigned *ms, char *err, size_t errlen);
int parse_listen(const char *s, struct listen_addr *la, char *err, size_t errlen);
int parse_signal(const char *s, int *sig, char *err, size_t errlen);
int parse_service_name(const char *s, char *err, size_t errlen);
/* Split a command line into argv (whitespace; '...' and "..." quote; \ escapes
 * inside "..." and outside quotes).  Fills argv with malloc'd strings and a
 * NULL end; returns argc, or -1 with err on unbalanced quotes, empty command
 * or more than max args. */
int split_command(const char *s, char **argv, int max, char *err, size_t errlen);
void free_argv(char **argv);

const char *ready_kind_name(enum ready_kind k);
const char *signal_name(int sig);

#endif /* BATON_CONFIG_H */
