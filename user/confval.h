/* SPDX-License-Identifier: MIT */
/* Helpers the configuration's parsers share (confval.c, config.c); not for other files. */
#ifndef BATON_CONFVAL_H
#define BATON_CONFVAL_H

#include <stdbool.h>
#include <stddef.h>

#ifndef __printf
#define __printf(a, b) __attribute__((format(printf, a, b)))
#endif

/* Write a message into err (a no-op when err is NULL). */
void __printf(3, 4) seterr(char *err, size_t errlen, const char *fmt, ...);
/* A decimal of at most max: 0, or -1. */
int parse_uint(const char *s, unsigned long max, unsigned long *out);
bool is_digit(char c);

#endif /* BATON_CONFVAL_H */
