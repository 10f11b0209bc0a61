/* SPDX-License-Identifier: MIT */
/* Reload the configuration; see reload.c. */
#ifndef BATON_RELOAD_H
#define BATON_RELOAD_H

#include <stddef.h>

/* 0 with a summary in msg, or -1 with why it was refused (nothing changed). */
int reload(char *msg, size_t msglen);

#endif /* BATON_RELOAD_H */
