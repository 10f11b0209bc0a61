/* SPDX-License-Identifier: MIT */
/*
 * The state machine's rules for the rollback window: how each remembered
 * version ended, and where baton rollback [--to vN] goes.  A version that
 * still drains unsignalled takes the traffic back at once (fsm_rollout.c);
 * one that exited is started again from its record as a new version
 * (FA_REDEPLOY), rolled out with the service's strategy.
 *
 * It gets a new number: the number keys the version's counters, cgroup,
 * pins, events and metrics, and a number used twice would make "v1" mean
 * two runs with different counts.  Its record says which version it is a
 * rollback of.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"
#include "history.h"
#include "log.h"

static void mark(struct fsm *f, int num, enum vr_end end, const char *how)
{
	struct vrecord *r = num ? history_find(f->s, num) : NULL;

	unsigned last = 0;
	int k;

	if (!r)
		return;
	r->end = end;
	r->ended = end == VR_ACTIVE ? 0 : f->wall;
	if (end == VR_ACTIVE) {
		for (k = 0; k < f->s->nvrec; k++)
			if (f->s->vrec[k].activated > last)
				last = f->s->vrec[k].activated;
		r->served = true;
		r->activated = last + 1;
	}
	snprintf(r->how, sizeof(r->how), "%s", how ? how : "");
}

static int active_num(const struct service *s)
{
	return s->active >= 0 && s->slot[s->active] ? s->slot[s->active]->num : 0;
}

/* The rollout is ending (before fsm_rollout_end clears it): its versions' records say how. */
void fsm_history_rollout_end(struct fsm *f, bool ok, const char *why, bool rolled_back)
{
	struct service *s = f->s;
	const struct rollout *ro = &s->ro;
	bool started = ro->stage != RO_BEFORE_START && ro->stage != RO_STARTING;

	char how[64];

	if (active_num(s) == ro->new_num && (ok || started)) {
		const struct vrecord *nr = history_find(s, ro->new_num);
		int of = nr ? nr->rollback_of : 0;

		mark(f, ro->new_num, VR_ACTIVE, ok ? "" : why);
		if (!ro->old_num || ro->old_num == ro->new_num)
			return;
		if (of) {
			snprintf(how, sizeof(how), "rolled back to v%d (started again as v%d)", of,
				 ro->new_num);
			mark(f, ro->old_num, VR_ROLLED_BACK, how);
		} else {
			snprintf(how, sizeof(how), "replaced by v%d", ro->new_num);
			mark(f, ro->old_num, VR_REPLACED, how);
		}
		return;
	}
	mark(f, ro->new_num, rolled_back ? VR_ROLLED_BACK : VR_FAILED, why);
}

/* Traffic went back at once from cur (may be 0) to num. */
void fsm_history_switch(struct fsm *f, int cur, int num, const char *why)
{
	char how[200];

	snprintf(how, sizeof(how), "rolled back to v%d: %s", num, why);
	mark(f, cur, VR_ROLLED_BACK, how);
	snprintf(how, sizeof(how), "active again (rolled back from v%d)", cur);
	mark(f, num, VR_ACTIVE, how);
}

/* A version adopted as the first one is the service's at once. */
void fsm_history_adopted(struct fsm *f, int num)
{
	mark(f, num, VR_ACTIVE, "");
}

/*
 * The version baton rollback without --to goes to: of those that served,
 * the one that was the service's version last before cur (v1, v2, rollback
 * to v1, v3: v1, not v2).
 */
static const struct vrecord *previous(struct service *s, int cur)
{
	const struct vrecord *p = NULL;
	int k;

	for (k = 0; k < s->nvrec; k++)
		if (s->vrec[k].served && s->vrec[k].num != cur &&
		    (!p || s->vrec[k].activated > p->activated))
			p = &s->vrec[k];
	return p;
}

static void remembered(const struct service *s, char *buf, size_t len)
{
	size_t n = 0;
	int k;

	buf[0] = '\0';
	for (k = 0; k < s->nvrec && n < len; k++)
		n += snprintf(buf + n, len - n, "%sv%d", k ? " " : "", s->vrec[k].num);
}

/*
 * A version traffic can go back to in one policy update: unsignalled, every
 * instance running (a rolling rollout's old version drains what is left of
 * it: started again instead).
 */
static bool takes_back(const struct version *tv)
{
	int i;

	if (!tv || !tv->nalive || tv->nalive != tv->ninst ||
	    (tv->phase != VP_DRAIN_DELAY && tv->phase != VP_DRAIN_WAIT))
		return false;
	/*
	 * A rolling rollout's old instance that was already told to exit is
	 * on its way out: the version is started again instead.
	 */
	for (i = 0; i < tv->ninst; i++)
		if (tv->inst[i].retiring && tv->inst[i].retire_step >= 0)
			return false;
	return true;
}

/*
 * baton rollback [--to to] with no rollout running: 0 with msg when the
 * traffic went back at once (*instant), 1 when FA_REDEPLOY starts the
 * version again (the client waits for that rollout), or -errno with msg
 * saying what is wrong and what to do; nothing changed then.
 */
int fsm_rollback_target(struct fsm *f, int to, struct client *c, struct version **instant,
			char *msg, size_t len)
{
	struct service *s = f->s;
	const char *name = s->conf.name;
	const struct vrecord *r;
	struct fsm_action *a;
	struct version *tv;
	char list[200];
	int cur = active_num(s);

	*instant = NULL;
	if (to) {
		r = history_find(s, to);
		if (!r) {
			remembered(s, list, sizeof(list));
			snprintf(msg, len,
				 "%s: v%d is not in the rollback window (it remembers %s; "
				 "keep-versions sets how many): baton history %s lists them",
				 name, to, list[0] ? list : "none", name);
			return -ENOENT;
		}
		if (to == cur) {
			snprintf(msg, len,
				 "%s: v%d is the current version; give an earlier one: baton "
				 "history %s lists them",
				 name, to, name);
			return -EINVAL;
		}
	} else {
		tv = s->previous >= 0 ? s->slot[s->previous] : NULL;
		if (takes_back(tv)) {
			*instant = tv; /* the version replaced last, unsignalled: as before */
			return 0;
		}
		r = previous(s, cur);
		if (!r && cur) {
			snprintf(msg, len,
				 "%s: no previous version to roll back to (v%d is the only one "
				 "that served; baton history %s)",
				 name, cur, name);
			return -ENOENT;
		}
		if (!r) {
			snprintf(msg, len,
				 "%s: no version has served yet, so there is none to roll back to "
				 "(baton deploy %s -- COMMAND)",
				 name, name);
			return -ENOENT;
		}
	}
	tv = version_by_num(s, r->num);
	if (takes_back(tv)) {
		*instant = tv; /* still unsignalled: one policy update */
		return 0;
	}
	if (r->adopted) {
		snprintf(msg, len,
			 "%s: v%d was adopted (started outside baton) and has exited, so baton "
			 "cannot start it again; start it and: baton adopt %s --pid PID",
			 name, r->num, name);
		return -EPERM;
	}
	if (fsm_can_deploy(s, msg, len))
		return -EBUSY;
	log_info("%s: rolling back to v%d: starting it again (%s) as v%d", name, r->num,
		 r->spec.argv[0], s->next_num);
	a = fsm_emit(f, FA_REDEPLOY, NULL, -1, r->num);
	if (a)
		a->c = c;
	return 1;
}
