/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness: hc_parse_status() (user/health.c) on what a health
 * check reads from an instance, which baton does not control.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int code = -1, rc;

	rc = hc_parse_status((const char *)data, size, &code);
	FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1, "returned %d", rc);
	if (rc == 1)
		FUZZ_CHECK(code >= 100 && code <= 599, "status %d out of 100..599", code);
	/* Needing more bytes is only possible while the line can still fit. */
	if (rc == 0)
		FUZZ_CHECK(size <= HC_LINE_MAX + 1, "wants more after %zu bytes", size);
	return 0;
}
