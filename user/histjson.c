/* SPDX-License-Identifier: MIT */
/*
 * The rollback window as JSON (history.h): one format for the state file
 * and for baton history --json, so that what a restarted agent reads back
 * is what the operator saw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	int k;

	for (k = 0; v[k]; k++)
		json_array_append_new(a, json_string(v[k]));
	return a;
}

json_t *history_json(const struct service *s)
{
	json_t *arr = json_array();
	int k;

	for (k = 0; k < s->nvrec; k++) {
		const struct vrecord *r = &s->vrec[k];
		json_t *j = json_pack("{s:i, s:s, s:s, s:I, s:I, s:b, s:o, s:o, s:s, s:s}",
				      "version", r->num, "end", vr_end_names[r->end], "how", r->how,
				      "deployed", (json_int_t)r->deployed, "ended",
				      (json_int_t)r->ended, "adopted", r->adopted, "argv",
				      strv_json(r->spec.argv), "env", strv_json(r->spec.env),
				      "user", r->spec.user, "workdir", r->spec.workdir);

		json_object_set_new(j, "served", json_boolean(r->served));
		json_object_set_new(j, "activated", json_integer(r->activated));
		json_object_set_new(j, "rollback_of",
				    r->rollback_of ? json_integer(r->rollback_of) : json_null());
		json_array_append_new(arr, j);
	}
	return arr;
}

/* A JSON array of strings into v (at most max): 0, or -1. */
static int strv_from(json_t *a, char **v, int max, bool need_one)
{
	json_t *e;
	size_t k;

	if (!json_is_array(a) || json_array_size(a) > (size_t)max ||
	    (need_one && !json_array_size(a)))
		return -1;
	json_array_foreach(a, k, e)
	{
		if (!json_is_string(e))
			return -1;
		v[k] = strdup(json_string_value(e));
		if (!v[k])
			return -1;
	}
	v[json_array_size(a)] = NULL;
	return 0;
}

static int end_of(const char *name)
{
	int k;

	for (k = 0; name && k < VR_COUNT; k++)
		if (!strcmp(name, vr_end_names[k]))
			return k;
	return -1;
}

static int record_from(json_t *j, struct vrecord *r)
{
	const char *user = json_string_value(json_object_get(j, "user"));
	const char *workdir = json_string_value(json_object_get(j, "workdir"));
	const char *how = json_string_value(json_object_get(j, "how"));
	json_t *rb = json_object_get(j, "rollback_of");
	int end = end_of(json_string_value(json_object_get(j, "end")));

	memset(r, 0, sizeof(*r));
	r->num = (int)json_integer_value(json_object_get(j, "version"));
	if (r->num < 1 || end < 0 || !user || !workdir || !how ||
	    strlen(user) >= sizeof(r->spec.user) || strlen(workdir) >= sizeof(r->spec.workdir) ||
	    (rb && !json_is_null(rb) && (!json_is_integer(rb) || json_integer_value(rb) < 1)))
		return -1;
	r->end = end;
	snprintf(r->how, sizeof(r->how), "%s", how);
	snprintf(r->spec.user, sizeof(r->spec.user), "%s", user);
	snprintf(r->spec.workdir, sizeof(r->spec.workdir), "%s", workdir);
	r->deployed = (time_t)json_integer_value(json_object_get(j, "deployed"));
	r->ended = (time_t)json_integer_value(json_object_get(j, "ended"));
	r->adopted = json_is_true(json_object_get(j, "adopted"));
	r->served = json_is_true(json_object_get(j, "served"));
	r->activated = (unsigned)json_integer_value(json_object_get(j, "activated"));
	r->rollback_of = json_is_integer(rb) ? (int)json_integer_value(rb) : 0;
	if (strv_from(json_object_get(j, "argv"), r->spec.argv, MAX_ARGS, true) ||
	    strv_from(json_object_get(j, "env"), r->spec.env, MAX_ENV, false)) {
		spawn_desc_free(&r->spec);
		return -1;
	}
	return 0;
}

int history_from_json(struct service *s, json_t *arr)
{
	struct vrecord *r = calloc(MAX_KEEP_VERSIONS, sizeof(*r));
	json_t *j;
	size_t k = 0, n;

	if (!r)
		return -1;
	n = json_array_size(arr);
	if (!json_is_array(arr) || n > MAX_KEEP_VERSIONS)
		goto bad;
	json_array_foreach(arr, k, j)
	{
		if (record_from(j, &r[k]))
			goto bad;
		if (k && r[k].num <= r[k - 1].num) {
			spawn_desc_free(&r[k].spec);
			goto bad;
		}
	}
	history_clear(s);
	memcpy(s->vrec, r, n * sizeof(*r));
	s->nvrec = (int)n;
	free(r);
	return 0;
bad:
	while (k-- > 0)
		spawn_desc_free(&r[k].spec);
	free(r);
	return -1;
}
