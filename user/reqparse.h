/* SPDX-License-Identifier: MIT */
/* The control protocol's request parser (pure); see reqparse.c. */
#ifndef BATON_REQPARSE_H
#define BATON_REQPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "config.h"
#include "fsm.h"
#include "steer_user.h"

enum req_cmd {
	RC_STATUS,
	RC_RELOAD,
	RC_SHUTDOWN,
	RC_DEPLOY,
	RC_ROLLBACK,
	RC_ABORT,
	RC_PROMOTE,
	RC_PAUSE,
	RC_WEIGHT,
	RC_PIN,
	RC_UNPIN,
	RC_ADOPT,
	RC_EVENTS,
	RC_HISTORY,
	RC_COUNT,
	RC_UNKNOWN = RC_COUNT,
};

struct request {
	enum req_cmd cmd;    /* RC_UNKNOWN: name is no command (said after the access check) */
	const char *name;    /* the command as sent */
	const char *service; /* NULL: none given */
	bool stop;	     /* shutdown --stop */
	bool full;	     /* promote --full */
	bool follow;	     /* events --follow */
	int last;	     /* events: the last N (0: all kept) */
	int to;		     /* rollback --to: the version (0: the previous one) */
};

/* The envelope: 0, or -1 with err (not an object, no "cmd", "service" not a string). */
int request_parse(json_t *req, struct request *r, char *err, size_t errlen);
/*
 * deploy's fields for a service configured as conf: the command (args point
 * into req, NULL-terminated) and its own environment (env, MAX_ENV + 1
 * entries, likewise), or the pid to adopt, and the options, defaults from
 * conf.  0, or -1 with err.  Whether args[0] is executable is the caller's
 * to check.
 */
int request_deploy(json_t *req, const struct service_conf *conf, char **args, char **env,
		   struct deploy_opts *o, char *err, size_t errlen);
/*
 * weight's {"weights": {"VERSION": BP}} into e (nweights, wnum, wbp): -1
 * with err when there is no such object; a malformed entry is e->why (in
 * why), said after the rollout check, as the state machine orders them.
 */
int request_weights(json_t *req, struct fsm_event *e, char *why, size_t whylen, char *err,
		    size_t errlen);
/* pin/unpin: the CIDR and (pin) the version number, 0 if none given; 0 or -1 with err. */
int request_pin(json_t *req, bool add, struct steer_cidr *cidr, long long *num, char *err,
		size_t errlen);
/* adopt: the pid of the server to adopt, for a service configured as conf. */
int request_adopt(json_t *req, const struct service_conf *conf, pid_t *pid, char *err,
		  size_t errlen);

#endif /* BATON_REQPARSE_H */
