/* SPDX-License-Identifier: MIT */
/*
 * The rollback window (history.h): records made when a version is
 * deployed, trimmed to keep-versions, found by number.  Pure: no I/O.  How
 * each record ends is the state machine's to say (fsm_history.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

const char *const vr_end_names[] = {
    [VR_DEPLOYING] = "deploying",     [VR_ACTIVE] = "active", [VR_REPLACED] = "replaced",
    [VR_ROLLED_BACK] = "rolled-back", [VR_FAILED] = "failed",
};

void spawn_desc_free(struct spawn_desc *d)
{
	free_argv(d->argv);
	free_argv(d->env);
	memset(d, 0, sizeof(*d));
}

static int strv_copy(char **dst, char *const *src, int max)
{
	int n;

	for (n = 0; src && src[n] && n < max; n++) {
		dst[n] = strdup(src[n]);
		if (!dst[n])
			return -ENOMEM;
	}
	dst[n] = NULL;
	return 0;
}

int spawn_desc_copy(struct spawn_desc *dst, const struct spawn_desc *src)
{
	spawn_desc_free(dst);
	memcpy(dst->user, src->user, sizeof(dst->user));
	memcpy(dst->workdir, src->workdir, sizeof(dst->workdir));
	if (strv_copy(dst->argv, src->argv, MAX_ARGS) || strv_copy(dst->env, src->env, MAX_ENV)) {
		spawn_desc_free(dst);
		return -ENOMEM;
	}
	return 0;
}

/* Whether env holds a "NAME=..." for kv's NAME. */
static bool env_overrides(char *const *env, const char *kv)
{
	size_t n = strcspn(kv, "=");
	int i;

	for (i = 0; env && env[i]; i++)
		if (!strncmp(env[i], kv, n) && env[i][n] == '=')
			return true;
	return false;
}

int spawn_desc_from_conf(struct spawn_desc *d, const struct service_conf *c, char *const *argv,
			 char *const *env)
{
	int i, n = 0;

	spawn_desc_free(d);
	snprintf(d->user, sizeof(d->user), "%s", c->user);
	snprintf(d->workdir, sizeof(d->workdir), "%s", c->workdir);
	if (strv_copy(d->argv, argv, MAX_ARGS))
		goto nomem;
	for (i = 0; c->env[i]; i++)
		if (!env_overrides(env, c->env[i]) && !(d->env[n++] = strdup(c->env[i])))
			goto nomem;
	for (i = 0; env && env[i]; i++) {
		if (n == MAX_ENV) {
			spawn_desc_free(d);
			return -E2BIG;
		}
		if (!(d->env[n++] = strdup(env[i])))
			goto nomem;
	}
	return 0;
nomem:
	spawn_desc_free(d);
	return -ENOMEM;
}

struct vrecord *history_find(struct service *s, int num)
{
	int k;

	for (k = 0; k < s->nvrec; k++)
		if (s->vrec[k].num == num)
			return &s->vrec[k];
	return NULL;
}

/* Whether record k must stay: the active version's, or a running rollout's. */
static bool pinned(const struct service *s, int k)
{
	int num = s->vrec[k].num;

	if (s->active >= 0 && s->slot[s->active] && s->slot[s->active]->num == num)
		return true;
	return s->ro.stage != RO_NONE && (s->ro.new_num == num || s->ro.old_num == num);
}

static void drop(struct service *s, int k)
{
	spawn_desc_free(&s->vrec[k].spec);
	memmove(&s->vrec[k], &s->vrec[k + 1], sizeof(s->vrec[0]) * (s->nvrec - k - 1));
	s->nvrec--;
	memset(&s->vrec[s->nvrec], 0, sizeof(s->vrec[0]));
}

/* Down to keep records (room for one more with room), oldest unpinned first. */
static void trim(struct service *s, int keep)
{
	int k;

	for (k = 0; s->nvrec > keep && k < s->nvrec;)
		if (pinned(s, k))
			k++;
		else
			drop(s, k);
}

int history_record(struct service *s, const struct version *v, int rollback_of, time_t wall)
{
	int keep = s->conf.keep_versions;
	struct vrecord r = {0};

	if (keep < 2 || keep > MAX_KEEP_VERSIONS)
		keep = KEEP_VERSIONS_DEFAULT;
	if (spawn_desc_copy(&r.spec, &v->spec))
		return -ENOMEM;
	r.num = v->num;
	r.adopted = v->adopted;
	r.rollback_of = rollback_of;
	r.deployed = wall;
	r.end = VR_DEPLOYING;
	trim(s, keep - 1);
	if (s->nvrec == MAX_KEEP_VERSIONS)
		drop(s, 0); /* every record pinned: cannot happen with keep >= 2 (two pins) */
	s->vrec[s->nvrec++] = r;
	return 0;
}

void history_clear(struct service *s)
{
	while (s->nvrec)
		drop(s, s->nvrec - 1);
}
