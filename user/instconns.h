/* SPDX-License-Identifier: MIT */
/*
 * Live connections of each instance of a version (rolling retires the one
 * with the fewest first).  The kernel's counters (track) are per version;
 * per instance, the connections are the established TCP sockets on the
 * service's ports whose inode one of the instance's file descriptors holds.
 */
#ifndef BATON_INSTCONNS_H
#define BATON_INSTCONNS_H

#include "model.h"

/* n[i] for each instance of v (-1: not running); 0, or -errno. */
int instance_conns(const struct version *v, long long n[MAX_INSTANCES]);

#endif /* BATON_INSTCONNS_H */
