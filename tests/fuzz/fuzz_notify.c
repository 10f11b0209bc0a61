/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness: proc_notify_ready() (user/proc.c) on sd_notify
 * datagrams, which any child can send.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "proc.h"

/* The slow, obvious reading of the same rule, to compare against. */
static int reference(const char *m, size_t len)
{
	size_t start = 0, i;

	for (i = 0; i < len; i++)
		if (m[i] == '\0')
			return 0;
	for (i = 0; i <= len; i++)
		if (i == len || m[i] == '\n') {
			if (i - start == 7 && !memcmp(m + start, "READY=1", 7))
				return 1;
			start = i + 1;
		}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *m = (const char *)data;
	int got = proc_notify_ready(m, size), want = reference(m, size);

	FUZZ_CHECK(got == want, "proc_notify_ready %d, reference %d", got, want);
	return 0;
}
