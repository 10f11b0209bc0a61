/* SPDX-License-Identifier: MIT */
#ifndef BATON_AGENT_H
#define BATON_AGENT_H

struct agent_opts {
	const char *config; /* config file path */
	int foreground;	    /* -d */
	int check_only;	    /* -n */
	int verbose;
};

int agent_main(const struct agent_opts *o);

#endif /* BATON_AGENT_H */
