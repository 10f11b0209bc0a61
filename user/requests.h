/* SPDX-License-Identifier: MIT */
/* The control protocol's requests; see requests.c. */
#ifndef BATON_REQUESTS_H
#define BATON_REQUESTS_H

#include <jansson.h>

struct client;

/* One request from c: exactly one final reply (a deploy's may come later). */
void handle_request(struct client *c, json_t *req);

#endif /* BATON_REQUESTS_H */
