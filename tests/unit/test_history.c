/* SPDX-License-Identifier: MIT */
/*
 * The rollback window (issue 18, part 2) in the state machine alone:
 * user/fsm_history.c and user/history.c, no root, no BPF, no processes.
 * The test plays exec.c (it records each version deployed, as deploy()
 * does, and performs redeploy by making the version from the record) and
 * asserts the exact actions of each step, the records' ends, the refusals
 * that change nothing, the window's bound, the JSON the state file keeps,
 * and the keep-versions bounds of the config parser.
 */
#include <unistd.h>

#include "fsm_harness.h"
#include "history.h"

static const time_t WALL = 1796000000;

/* One instance, ready by notify, blue-green, run as nobody with one variable; 5 kept. */
static struct service *service_new(void)
{
	struct service *s = service_base();
	static char *env[] = {"E2E=1", NULL};

	snprintf(s->conf.user, sizeof(s->conf.user), "nobody");
	s->conf.env[0] = env[0];
	s->conf.keep_versions = 5;
	hide_progress = true;
	trees_linger = true; /* the tests end processes by FE_EXIT alone */
	step_wall = WALL + 1000;
	return s;
}

/* The service, its versions' spawn descriptions and its records. */
static void service_done(struct service *s)
{
	int i;

	for (i = 0; i < nmade; i++)
		if (made[i] && made[i]->svc == s)
			spawn_desc_free(&made[i]->spec);
	history_clear(s);
	service_free(s);
}

/*
 * What version_new and deploy() do, without sockets: a free slot, the next
 * number, the spawn description (from the record with from), the record.
 */
static struct version *version_rec(struct service *s, const char *path, int from)
{
	struct version *v = version_slot(s);
	char *argv[] = {(char *)path, "--port", "8080", NULL};

	if (from)
		assert_int_equal(spawn_desc_copy(&v->spec, &history_find(s, from)->spec), 0);
	else
		assert_int_equal(spawn_desc_from_conf(&v->spec, &s->conf, argv, NULL), 0);
	assert_int_equal(history_record(s, v, from, WALL + v->num), 0);
	return v;
}

/* A version deployed (from a record with from), started and ready: it has the traffic. */
static struct version *deploy_ready(struct service *s, const char *path, int from, struct client *c)
{
	struct version *v = version_rec(s, path, from);
	int i;

	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v, .c = c});
	for (i = 0; i < v->ninst; i++) {
		v->inst[i].alive = true;
		v->inst[i].pid = 100 * v->num + i;
	}
	v->nalive = v->ninst;
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	v->tree = false; /* the tests end processes by FE_EXIT alone */
	for (i = 0; i < v->ninst; i++)
		step(s, (struct fsm_event){.type = FE_READY, .v = v, .inst = i});
	assert_int_equal(s->active, v->vslot);
	assert_int_equal(s->ro.stage, RO_NONE);
	return v;
}

/* The version's process exits (after its exit signal): forgotten. */
static void exits(struct service *s, struct version *v)
{
	step(s, (struct fsm_event){.type = FE_EXIT, .v = v, .inst = 0, .why = "exited"});
	assert_null(version_by_num(s, v->num));
}

static enum vr_end end_of(struct service *s, int num)
{
	return history_find(s, num)->end;
}

/* Deploys remember each version with its spawn description and how it ended. */
static void test_records(void **state)
{
	struct service *s = service_new();
	const struct vrecord *r;

	(void)state;
	deploy_ready(s, "/srv/v1", 0, NULL);
	deploy_ready(s, "/srv/v2", 0, C1);
	assert_int_equal(s->nvrec, 2);
	r = history_find(s, 1);
	assert_string_equal(r->spec.argv[0], "/srv/v1");
	assert_string_equal(r->spec.argv[2], "8080");
	assert_string_equal(r->spec.env[0], "E2E=1");
	assert_string_equal(r->spec.user, "nobody");
	assert_int_equal(r->deployed, WALL + 1);
	assert_int_equal(r->end, VR_REPLACED);
	assert_string_equal(r->how, "replaced by v2");
	assert_int_equal(r->ended, WALL + 1000);
	assert_true(r->served);
	r = history_find(s, 2);
	assert_int_equal(r->end, VR_ACTIVE);
	assert_int_equal(r->ended, 0);
	/* A deploy that fails before taking traffic: failed, never served. */
	{
		struct version *v3 = version_rec(s, "/srv/v3", 0);

		step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v3, .c = C1});
		EXPECT(
		    s, ((struct fsm_event){.type = FE_SPAWNED, .v = v3, .why = "no such file"}),
		    "deploy-done failed; ro-timer off; unplace v3; policy; release v3; signal v3 "
		    "SIGTERM; vtimer v3 +1000");
	}
	r = history_find(s, 3);
	assert_int_equal(r->end, VR_FAILED);
	assert_string_equal(r->how, "no such file");
	assert_false(r->served);
	assert_int_equal(end_of(s, 2), VR_ACTIVE);
	service_done(s);
}

/* The previous version exited: rollback starts it again from its record as v3. */
static void test_rollback_after_exit(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2, *v3;

	(void)state;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	v2 = deploy_ready(s, "/srv/v2", 0, NULL);
	exits(s, v1);
	/* One action: exec.c makes the version from v1's record; nothing else changes yet. */
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}), "redeploy v1");
	assert_ptr_equal(out.a[0].c, C2);
	assert_int_equal(s->active, v2->vslot);
	assert_int_equal(s->ro.stage, RO_NONE);
	/* exec.c: v3 from v1's record, the client waiting; a blue-green rollout. */
	v3 = version_rec(s, NULL, 1);
	assert_string_equal(v3->spec.argv[0], "/srv/v1");
	assert_string_equal(v3->spec.user, "nobody");
	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v3, .c = C2}),
	       "place v3; policy; attach v3; spawn v3");
	v3->inst[0].alive = true;
	v3->nalive = 1;
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v3, .ok = true});
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v3, .inst = 0}),
	       "vtimer v3 off; policy; unplace v2; stop-checks v3; vtimer v3 off; deploy-done "
	       "ok; ro-timer off; watch v2 off; release v2; signal v2 SIGTERM; vtimer v2 +3000");
	assert_int_equal(s->active, v3->vslot);
	assert_int_equal(history_find(s, 3)->rollback_of, 1);
	assert_int_equal(end_of(s, 3), VR_ACTIVE);
	assert_int_equal(end_of(s, 2), VR_ROLLED_BACK);
	assert_string_equal(history_find(s, 2)->how, "rolled back to v1 (started again as v3)");
	/* Rolling back again goes to v2 (the last that served before v3), as v4. */
	exits(s, v2);
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}), "redeploy v2");
	service_done(s);
}

/* --to v1 from v3: v1's record, whatever came between. */
static void test_rollback_to(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	v2 = deploy_ready(s, "/srv/v2", 0, NULL);
	exits(s, v1);
	deploy_ready(s, "/srv/v3", 0, NULL);
	exits(s, v2);
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 1}), "redeploy v1");
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 2}), "redeploy v2");
	service_done(s);
}

/* A version still draining unsignalled (drain-delay) takes the traffic back at once. */
static void test_rollback_to_draining(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2, *v3;

	(void)state;
	s->conf.drain_delay_ms = 10000;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	v2 = deploy_ready(s, "/srv/v2", 0, NULL);
	v3 = deploy_ready(s, "/srv/v3", 0, NULL);
	assert_int_equal(v1->phase, VP_DRAIN_DELAY);
	assert_int_equal(s->active, v3->vslot);
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 1}),
	       "vtimer v1 off; watch v1 off; place v1; policy; unplace v3; vtimer v3 +10000; "
	       "reply ok");
	assert_string_equal(text_of(FA_REPLY), "web: v1 active again, draining v3");
	assert_int_equal(s->active, v1->vslot);
	assert_int_equal(v2->phase, VP_DRAIN_DELAY);
	assert_int_equal(end_of(s, 3), VR_ROLLED_BACK);
	assert_string_equal(history_find(s, 3)->how, "rolled back to v1: by baton rollback");
	assert_int_equal(end_of(s, 1), VR_ACTIVE);
	assert_string_equal(history_find(s, 1)->how, "active again (rolled back from v3)");
	service_done(s);
}

/*
 * A draining version one of whose instances a rolling rollout retired and
 * signalled is not taken back at once (that instance is on its way out):
 * it is started again.
 */
static void test_rollback_to_signalled_instance(void **state)
{
	struct service *s = service_new();
	struct version *v1;

	(void)state;
	s->conf.drain_delay_ms = 10000;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	deploy_ready(s, "/srv/v2", 0, NULL);
	assert_int_equal(v1->phase, VP_DRAIN_DELAY);
	v1->inst[0].retiring = true;
	v1->inst[0].retire_step = 1; /* SIGTERM sent */
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}), "redeploy v1");
	service_done(s);
}

/* "Previous" is the version that served last before the current one, not the last deployed. */
static void test_previous_is_last_active(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2, *v3;

	(void)state;
	s->conf.drain_delay_ms = 10000;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	v2 = deploy_ready(s, "/srv/v2", 0, NULL);
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}),
	       "vtimer v1 off; watch v1 off; place v1; policy; unplace v2; vtimer v2 +10000; "
	       "reply ok");
	v3 = deploy_ready(s, "/srv/v3", 0, NULL);
	assert_int_equal(v1->phase, VP_DRAIN_DELAY);
	now += 10000;
	step(s, (struct fsm_event){.type = FE_VTIMER, .v = v1});
	step(s, (struct fsm_event){.type = FE_VTIMER, .v = v2});
	exits(s, v1);
	exits(s, v2);
	assert_int_equal(s->active, v3->vslot);
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}), "redeploy v1");
	service_done(s);
}

/*
 * keep-warm: the replaced version stays placed with no weight for
 * rollback-window; a rollback within it is one policy update (no place, no
 * unplace); at the window's end it leaves the map, then drains.
 */
static void test_keep_warm(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	s->conf.keep_warm = true;
	s->conf.rollback_window_ms = 600000;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	v2 = version_rec(s, "/srv/v2", 0);
	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v2, .c = C1});
	v2->inst[0].alive = true;
	v2->nalive = 1;
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v2, .ok = true});
	v2->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v2, .inst = 0}),
	       "vtimer v2 off; policy; stop-checks v2; vtimer v2 off; deploy-done ok; ro-timer "
	       "off; vtimer v1 +600000");
	assert_true(v1->placed);
	assert_int_equal(v1->weight, 0);
	assert_int_equal(v1->phase, VP_DRAIN_DELAY);
	now += 300000;
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}),
	       "vtimer v1 off; watch v1 off; policy; vtimer v2 +600000; reply ok");
	assert_int_equal(s->active, v1->vslot);
	assert_true(v2->placed);
	/* And back: the same one update. */
	EXPECT(s, ((struct fsm_event){.type = FE_ROLLBACK, .c = C2}),
	       "vtimer v2 off; watch v2 off; policy; vtimer v1 +600000; reply ok");
	/* The window ends: out of the map, then the drain (signal-then-wait). */
	now += 600000;
	EXPECT(s, ((struct fsm_event){.type = FE_VTIMER, .v = v1}),
	       "unplace v1; watch v1 off; release v1; signal v1 SIGTERM; vtimer v1 +3000");
	assert_false(v1->placed);
	service_done(s);

	/* A warm version's instance that exits leaves the map with it. */
	s = service_new();
	s->conf.keep_warm = true;
	s->conf.rollback_window_ms = 600000;
	s->conf.instances = 2;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	v2 = deploy_ready(s, "/srv/v2", 0, NULL);
	EXPECT(s, ((struct fsm_event){.type = FE_EXIT, .v = v1, .inst = 0, .why = "killed"}),
	       "stop-checks v1/0; unplace-inst v1/0; release v1/0");
	assert_int_equal(s->active, v2->vslot);
	service_done(s);
}

/* Snapshot of what a refusal must leave as it was. */
struct snap {
	int active, previous, nvrec, next_num;
	enum ro_stage stage;
	enum vr_end end[MAX_KEEP_VERSIONS];
};

static void take(struct service *s, struct snap *p)
{
	int k;

	memset(p, 0, sizeof(*p));
	p->active = s->active;
	p->previous = s->previous;
	p->nvrec = s->nvrec;
	p->next_num = s->next_num;
	p->stage = s->ro.stage;
	for (k = 0; k < s->nvrec; k++)
		p->end[k] = s->vrec[k].end;
}

/* ev is refused with one reply naming the problem (want in its text); nothing changes. */
static void refused(struct service *s, struct fsm_event e, const char *want)
{
	struct snap a, b;

	take(s, &a);
	EXPECT(s, e, "reply err");
	if (!strstr(text_of(FA_REPLY), want))
		fail_msg("reply \"%s\" does not say \"%s\"", text_of(FA_REPLY), want);
	assert_null(strchr(text_of(FA_REPLY), '\n'));
	take(s, &b);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_bad_rollbacks(void **state)
{
	struct service *s = service_new();
	struct version *v1, *v2;

	(void)state;
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	refused(s, (struct fsm_event){.type = FE_ROLLBACK, .c = C2},
		"no previous version to roll back to");
	refused(s, (struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 1},
		"v1 is the current version");
	v2 = deploy_ready(s, "/srv/v2", 0, NULL);
	exits(s, v1);
	refused(s, (struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 9},
		"v9 is not in the rollback window (it remembers v1 v2;");
	refused(s, (struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 2},
		"v2 is the current version");
	/* --to while a rollout runs: refused; it is not aborted either. */
	{
		struct version *v3 = version_rec(s, "/srv/v3", 0);

		step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v3, .c = C1});
		refused(s, (struct fsm_event){.type = FE_ROLLBACK, .c = C2, .to = 1},
			"the rollout of v3 is in progress");
	}
	assert_int_equal(s->active, v2->vslot);
	service_done(s);

	/* An adopted version that exited cannot be started again. */

	s = service_new();
	v1 = deploy_ready(s, "/srv/v1", 0, NULL);
	history_find(s, 1)->adopted = true;
	deploy_ready(s, "/srv/v2", 0, NULL);
	exits(s, v1);
	refused(s, (struct fsm_event){.type = FE_ROLLBACK, .c = C2}, "v1 was adopted");
	service_done(s);
}

/* keep-versions bounds the window; the active version's record is never dropped. */
static void test_window_bound(void **state)
{
	struct service *s = service_new();
	struct version *v;
	int i;

	(void)state;
	s->conf.keep_versions = 3;
	v = deploy_ready(s, "/srv/v", 0, NULL);
	for (i = 2; i <= 6; i++) {
		struct version *n = deploy_ready(s, "/srv/v", 0, NULL);

		exits(s, v);
		v = n;
	}
	assert_int_equal(s->nvrec, 3);
	assert_int_equal(s->vrec[0].num, 4);
	assert_int_equal(s->vrec[2].num, 6);
	/* Failed deploys do not push the active version out. */
	for (i = 0; i < 4; i++) {
		struct version *f = version_rec(s, "/srv/bad", 0);

		step(s, (struct fsm_event){.type = FE_DEPLOY, .v = f});
		step(s, (struct fsm_event){.type = FE_SPAWNED, .v = f, .why = "bad"});
	}
	assert_int_equal(s->nvrec, 3);
	assert_non_null(history_find(s, 6));
	assert_int_equal(end_of(s, 6), VR_ACTIVE);
	service_done(s);
}

/* The state file's form: read back, the same; a malformed one changes nothing. */
static void test_json(void **state)
{
	struct service *s = service_new(), *t = service_new();
	char *a, *b;
	json_t *j, *bad;

	(void)state;
	deploy_ready(s, "/srv/v1", 0, NULL);
	deploy_ready(s, "/srv/v2", 0, NULL);
	j = history_json(s);
	assert_int_equal(history_from_json(t, j), 0);
	a = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	j = history_json(t);
	b = json_dumps(j, JSON_COMPACT);
	assert_string_equal(a, b);
	assert_string_equal(history_find(t, 1)->spec.env[0], "E2E=1");
	/* Versions out of order, an unknown end, an argv that is not strings: refused whole. */
	bad = json_loads("[{\"version\":2,\"end\":\"active\",\"how\":\"\",\"user\":\"\","
			 "\"workdir\":\"\",\"argv\":[\"/a\"]},{\"version\":1,\"end\":\"active\","
			 "\"how\":\"\",\"user\":\"\",\"workdir\":\"\",\"argv\":[\"/a\"]}]",
			 0, NULL);
	assert_int_equal(history_from_json(t, bad), -1);
	json_decref(bad);
	bad = json_loads("[{\"version\":1,\"end\":\"gone\",\"how\":\"\",\"user\":\"\","
			 "\"workdir\":\"\",\"argv\":[\"/a\"]}]",
			 0, NULL);
	assert_int_equal(history_from_json(t, bad), -1);
	json_decref(bad);
	bad = json_loads("[{\"version\":1,\"end\":\"active\",\"how\":\"\",\"user\":\"\","
			 "\"workdir\":\"\",\"argv\":[1]}]",
			 0, NULL);
	assert_int_equal(history_from_json(t, bad), -1);
	json_decref(bad);
	json_decref(j);
	j = history_json(t);
	free(b);
	b = json_dumps(j, JSON_COMPACT);
	assert_string_equal(a, b);
	json_decref(j);
	free(a);
	free(b);
	service_done(s);
	service_done(t);
}

/* keep-versions in the config: default 5, 2..20, else one line naming the fix. */
static int load(const char *line, struct config *c, char *err)
{
	char path[] = "/tmp/test_history.XXXXXX";
	int fd = mkstemp(path), r;
	FILE *f = fdopen(fd, "w");

	fprintf(f, "[service web]\nlisten = 127.0.0.1:8080\nexec = /bin/true\n%s\n", line);
	fclose(f);
	r = config_load(path, c, err, CONF_ERR_LEN);
	unlink(path);
	return r;
}

static void test_config_keep_versions(void **state)
{
	struct config c;
	char err[CONF_ERR_LEN];
	static const char *const bad[] = {"keep-versions = 1", "keep-versions = 21",
					  "keep-versions = 0", "keep-versions = five",
					  "keep-versions = -3"};
	size_t k;

	(void)state;
	assert_int_equal(load("", &c, err), 0);
	assert_int_equal(c.services[0].keep_versions, 5);
	config_free(&c);
	assert_int_equal(load("keep-versions = 20", &c, err), 0);
	assert_int_equal(c.services[0].keep_versions, 20);
	config_free(&c);
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_int_equal(load(bad[k], &c, err), -1);
		if (!strstr(err, "keep-versions must be 2..20"))
			fail_msg("%s: %s", bad[k], err);
		assert_null(strchr(err, '\n'));
	}
	/* keep-warm and rollback-window. */
	assert_int_equal(load("keep-warm = 1\nrollback-window = 2m", &c, err), 0);
	assert_true(c.services[0].keep_warm);
	assert_int_equal(c.services[0].rollback_window_ms, 120000);
	config_free(&c);
	assert_int_equal(load("", &c, err), 0);
	assert_false(c.services[0].keep_warm);
	assert_int_equal(c.services[0].rollback_window_ms, 600000);
	config_free(&c);
	assert_int_equal(load("keep-warm = maybe", &c, err), -1);
	assert_non_null(strstr(err, "keep-warm must be 1 or 0"));
	assert_int_equal(load("rollback-window = 0", &c, err), -1);
	assert_non_null(strstr(err, "rollback-window must be more than 0"));
	assert_int_equal(load("keep-warm = 1\nstrategy = rolling", &c, err), -1);
	assert_non_null(strstr(err, "keep-warm = 1 keeps the replaced version running whole"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_rollback_after_exit),
	    cmocka_unit_test(test_rollback_to),
	    cmocka_unit_test(test_rollback_to_draining),
	    cmocka_unit_test(test_rollback_to_signalled_instance),
	    cmocka_unit_test(test_bad_rollbacks),
	    cmocka_unit_test(test_window_bound),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_config_keep_versions),
	    cmocka_unit_test(test_previous_is_last_active),
	    cmocka_unit_test(test_keep_warm),
	};

	log_init("test_history", -1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
