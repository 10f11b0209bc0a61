/* SPDX-License-Identifier: MIT */
/* Views of the model for baton status; see status.c. */
#ifndef BATON_STATUS_H
#define BATON_STATUS_H

#include <jansson.h>

#include "model.h"

json_t *status_json(struct service *s);

#endif /* BATON_STATUS_H */
