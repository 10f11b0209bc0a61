/* SPDX-License-Identifier: MIT */
/* The running configuration and the services; see services.c. */
#ifndef BATON_SERVICES_H
#define BATON_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "model.h"

struct client;

/* The configuration at path becomes the running one: 0, or -1 with err (one line per file). */
int services_load(const char *path, char *err, size_t errlen);
/* Each limit key (memory-max...) needs its controller: 0, or -1 with a one-line err. */
int services_limits_check(const struct config *c, const char *path, char *err, size_t errlen);
struct config *services_config(void);
const char *services_config_path(void);
/* A reload's configuration replaces the running one (the old one is freed). */
void services_config_replace(struct config *nc);
void services_free(void);

/* Service i (gone ones included: check s->gone), or NULL past the last. */
struct service *service_at(int i);
struct service *service_find(const char *name);
/* Add a service from c with the ids and groups of js (taken over) or free ones. */
struct service *service_add(const struct service_conf *c, json_t *js, char *err, size_t errlen);
/* Its first version, unless it adopts or one runs. */
int service_first(struct service *s, bool taken_over, char *err, size_t errlen);
/* Every configured service: taken over from st (may be NULL) or started. */
int services_start(json_t *st, char *err, size_t errlen);
/* Drain and stop every version of a service that left the configuration. */
void service_remove(struct service *s);

/* A control client went away: no deploy waits for it any more. */
void services_client_gone(struct client *c);
/* Drain and stop everything (shutdown --stop): how many versions. */
int services_stop_all(void);
/* No version left anywhere. */
bool services_empty(void);
bool services_version_known(const char *svc, int num);

#endif /* BATON_SERVICES_H */
