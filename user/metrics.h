/* SPDX-License-Identifier: MIT */
/* Prometheus metrics; see metrics.c. */
#ifndef BATON_METRICS_H
#define BATON_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

struct mclient;

/* Listen on la and watch it: 0, or -1 with err. */
int metrics_open(const struct listen_addr *la, char *err, size_t errlen);
void metrics_close(void);
void on_metrics(void);
void on_metrics_client(struct mclient *m);
/* Free the clients closed in this epoll batch. */
void metrics_bury(void);

/* A label value on f: backslash, double quote and newline escaped, as the format asks. */
void metrics_put_label(FILE *f, const char *v);

#endif /* BATON_METRICS_H */
