/* SPDX-License-Identifier: MIT */
/* Listening sockets of a service's addresses. */
#ifndef BATON_LISTEN_H
#define BATON_LISTEN_H

#include <stddef.h>

#include "config.h"

/* A SO_REUSEPORT listener on listen address j of c: fd, or -1 with err. */
int make_listener(const struct service_conf *c, int j, char *err, size_t errlen);
/* 0 when nobody else listens on la; -1 with err naming who to ask (ss) otherwise. */
int check_port_free(const struct listen_addr *la, char *err, size_t errlen);

#endif /* BATON_LISTEN_H */
