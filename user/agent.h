/* SPDX-License-Identifier: MIT */
#ifndef BATON_AGENT_H
#define BATON_AGENT_H

#include <stdbool.h>

struct agent_opts {
	const char *config; /* config file path */
	int foreground;	    /* -d */
	int check_only;	    /* -n */
	int verbose;
};

int agent_main(const struct agent_opts *o);

struct client;

/* baton shutdown: exit now, or (stop) once every version stopped, answering c. */
void agent_shutdown(struct client *c, bool stop);
/* A version stopped: a shutdown --stop may be complete. */
void agent_check_shutdown(void);
bool agent_quitting(void);
/* A control client went away: nothing answers it any more. */
void agent_client_gone(struct client *c);

#endif /* BATON_AGENT_H */
