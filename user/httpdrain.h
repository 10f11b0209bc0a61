/* SPDX-License-Identifier: MIT */
/*
 * drain-http as the executor performs it: a version's connections join the
 * drain sockhash in bounded passes from the event loop, and at the drain's
 * end what happened is counted (closed by their clients, idle) and logged.
 * The rules (when it begins and ends) are fsm_version.c's.
 */
#ifndef BATON_HTTPDRAIN_H
#define BATON_HTTPDRAIN_H

#include <stddef.h>

#include "config.h"
#include "model.h"

/*
 * FA_HTTP_DRAIN: how 1 begins, 0 ends the drain (counted), -1 back in
 * service; of the version (i < 0) or of its instance i alone (a rolling
 * rollout retired it while the version serves on).
 */
void http_drain_perform(struct service *s, struct version *v, int i, int how);
/* FA_HTTP_RESTEER: on 1, a pass asks connections whose client maps elsewhere to close; 0 ends it.
 */
void http_resteer_perform(struct service *s, int on);
/* A pass soon (measure-http: the versions under analysis changed). */
void http_drain_pass_soon(void);
/* EV_HTTP_DRAIN: one bounded step of the pass under way. */
void on_http_drain_tick(void);
/*
 * A configuration asking for drain-http on a kernel that cannot: -1 with a
 * one-line err naming the service and the missing feature, else 0.
 */
int http_drain_config_check(const struct config *cfg, char *err, size_t errlen);

#endif /* BATON_HTTPDRAIN_H */
