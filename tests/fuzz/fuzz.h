/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer harnesses: a broken promise of a parser (an error
 * that is empty or not one line, a value out of its documented range) is a
 * crash, so the fuzzer keeps the input that shows it.
 */
#ifndef BATON_FUZZ_H
#define BATON_FUZZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: broken: %s: ", __FILE__, __LINE__, #cond);         \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Every rejection says why, in one line (DESIGN.md, rule 3). */
static inline void fuzz_check_err(const char *what, int rc, const char *err, size_t errlen)
{
	FUZZ_CHECK(memchr(err, '\0', errlen), "%s: error not NUL-terminated", what);
	if (rc < 0) {
		FUZZ_CHECK(err[0], "%s: rejected without a message", what);
		FUZZ_CHECK(!strchr(err, '\n'), "%s: message is not one line: %s", what, err);
	}
}

#endif /* BATON_FUZZ_H */
