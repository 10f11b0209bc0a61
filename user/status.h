/* SPDX-License-Identifier: MIT */
/* Views of the model for baton status; see status.c. */
#ifndef BATON_STATUS_H
#define BATON_STATUS_H

#include <jansson.h>

#include "model.h"

json_t *status_json(struct service *s);
/* The service's CIDR pins from the map: [{"cidr", "version"}]. */
json_t *status_pins(struct service *s);
/*
 * What the rollout is held for now (statushold.c): {"for", "what",
 * "since_ms", "left_ms", "until", "last"}, or null when nothing holds it.
 */
json_t *status_hold(struct service *s);

#endif /* BATON_STATUS_H */
