/* SPDX-License-Identifier: MIT */
/*
 * The keys of baton's configuration file: one setter each, checking the
 * value and writing it into the section being read (config.c calls them
 * through conf_keys).  See docs/config.md.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* steer.h, which config.h includes, expects __u32 and friends. */
#include <linux/types.h>

#include "config.h"
#include "confparse.h"
#include "confval.h"
#include "rollconf.h"

static int set_path(struct parser *p, const char *key, const char *val, char *dst, size_t size,
		    const char *why)
{
	size_t len = strlen(val);

	if (val[0] != '/')
		return perr(p, "%s must be an absolute path, not \"%.*s\"", key, ECHO_MAX, val);
	if (len >= size)
		return perr(p, "%s is longer than %zu characters%s", key, size - 1, why);
	memcpy(dst, val, len + 1);
	return 0;
}

static int set_control(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->cfg->agent.control, sizeof(p->cfg->agent.control),
			" (a unix socket path must fit in sun_path)");
}

static int set_bpf_dir(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->cfg->agent.bpf_dir, sizeof(p->cfg->agent.bpf_dir), "");
}

static int set_control_group(struct parser *p, const char *key, const char *val)
{
	struct group *gr;

	if (strlen(val) >= sizeof(p->cfg->agent.control_group))
		return perr(p, "%s: group name too long", key);
	gr = getgrnam(val);
	if (!gr)
		return perr(p, "%s: no such group \"%.*s\" (create it: groupadd %.*s)", key,
			    ECHO_MAX, val, ECHO_MAX, val);
	if (gr->gr_gid == 0)
		return perr(p, "%s: group %s is gid 0; give read-only access with another group",
			    key, val);
	snprintf(p->cfg->agent.control_group, sizeof(p->cfg->agent.control_group), "%s", val);
	p->cfg->agent.control_gid = gr->gr_gid;
	return 0;
}

static int set_metrics(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];

	if (!strcmp(val, "off")) {
		p->cfg->agent.metrics.len = 0;
		return 0;
	}
	if (parse_listen(val, &p->cfg->agent.metrics, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s (or off)", key, msg);
	return 0;
}

static int set_run_dir(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->cfg->agent.run_dir, sizeof(p->cfg->agent.run_dir), "");
}

static int set_cgroup_dir(struct parser *p, const char *key, const char *val)
{
	char *dir = p->cfg->agent.cgroup_dir;

	if (!strcmp(val, "off")) {
		snprintf(dir, sizeof(p->cfg->agent.cgroup_dir), "off");
		return 0;
	}
	/* A cgroup path, as /proc/self/cgroup writes them: below the cgroup2 mount. */
	if (val[0] != '/' || !strcmp(val, "/") || strstr(val, "/..") || strstr(val, "//") ||
	    val[strlen(val) - 1] == '/')
		return perr(
		    p,
		    "%s must be a cgroup path below the cgroup2 mount (e.g. /baton) or off, "
		    "not \"%.*s\"",
		    key, ECHO_MAX, val);
	return set_path(p, key, val, dir, sizeof(p->cfg->agent.cgroup_dir), "");
}

static int set_workdir(struct parser *p, const char *key, const char *val)
{
	return set_path(p, key, val, p->svc->workdir, sizeof(p->svc->workdir), "");
}

static int set_listen(struct parser *p, const char *key, const char *val)
{
	struct service_conf *svc = p->svc;
	int self = (int)(svc - p->cfg->services);
	char msg[CONF_ERR_LEN];
	struct listen_addr la;
	int i, j;

	if (parse_listen(val, &la, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	if (svc->nlisten >= MAX_LISTEN)
		return perr(p, "more than %d listen addresses in [%s]", MAX_LISTEN, p->section);
	/* The text is normalised by inet_ntop, so equal text is equal address. */
	for (i = 0; i < p->cfg->nservices; i++) {
		const struct service_conf *o = &p->cfg->services[i];

		for (j = 0; j < o->nlisten; j++) {
			if (strcmp(o->listen[j].text, la.text))
				continue;
			if (i == self)
				return perr(p,
					    "listen %s is given twice in [%s] (first at line %d)",
					    la.text, p->section, p->listen_line[i][j]);
			return perr(p, "listen %s is already used by service \"%s\" (line %d)",
				    la.text, o->name, p->listen_line[i][j]);
		}
	}
	p->listen_line[self][svc->nlisten] = p->lineno;
	svc->listen[svc->nlisten++] = la;
	return 0;
}

/*
 * A command line for a key that runs something (exec, health-command, the
 * hooks): split into argv, whose program must be an absolute path to an
 * executable file.  Returns argc; on error argv is left empty.
 */
static int set_command(struct parser *p, const char *key, const char *val, char **argv)
{
	char msg[CONF_ERR_LEN];
	const char *prog;
	struct stat st;
	int argc;

	argc = split_command(val, argv, MAX_ARGS, msg, sizeof(msg));
	/* inih cut the line at " ;" even inside quotes: the likely cause. */
	if (argc < 0 && strstr(msg, "unterminated") &&
	    (strstr(p->cur, " ;") || strstr(p->cur, "\t;")))
		return perr(p, "%s: %s (\";\" after a space starts a comment, even in quotes)", key,
			    msg);
	if (argc < 0)
		return perr(p, "%s: %s", key, msg);
	prog = argv[0];

	/* Checked now so that a typo fails `baton -n`, not the first deploy. */
	if (prog[0] != '/') {
		perr(p, "%s: the program must be an absolute path, not \"%.*s\"", key, ECHO_MAX,
		     prog);
		goto fail;
	}
	if (stat(prog, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			perr(p, "%s: %.*s not found", key, ECHO_MAX * 2, prog);
		else
			perr(p, "%s: %.*s: %s", key, ECHO_MAX * 2, prog, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		perr(p, "%s: %.*s is a directory", key, ECHO_MAX * 2, prog);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || access(prog, X_OK) < 0) {
		perr(p, "%s: %.*s not executable", key, ECHO_MAX * 2, prog);
		goto fail;
	}
	return argc;
fail:
	free_argv(argv);
	return -1;
}

static int set_exec(struct parser *p, const char *key, const char *val)
{
	int argc = set_command(p, key, val, p->svc->argv);

	if (argc < 0)
		return -1;
	p->svc->argc = argc;
	return 0;
}

static int set_health_command(struct parser *p, const char *key, const char *val)
{
	return set_command(p, key, val, p->svc->health_argv) < 0 ? -1 : 0;
}

static int set_hook(struct parser *p, const char *key, const char *val)
{
	int h;

	for (h = 0; h < HOOK_COUNT; h++)
		if (!strcmp(key, hook_name((enum hook_point)h)))
			return set_command(p, key, val, p->svc->hook[h]) < 0 ? -1 : 0;
	return perr(p, "%s: not a hook", key); /* a key table mistake */
}

static int set_instances(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, MAX_INSTANCES, &n) < 0 || n < 1 || n > MAX_INSTANCES)
		return perr(p, "%s must be 1..%d, not %.*s", key, MAX_INSTANCES, ECHO_MAX, val);
	p->svc->instances = (int)n;
	return 0;
}

static int set_backlog(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, 65535, &n) < 0 || n < 1 || n > 65535)
		return perr(p, "%s must be 1..65535, not %.*s", key, ECHO_MAX, val);
	p->svc->backlog = (int)n;
	return 0;
}

static int set_memory_max(struct parser *p, const char *key, const char *val)
{
	unsigned long n;
	char *end;
	unsigned long long mul = 1;

	if (!is_digit(val[0]))
		goto bad;
	errno = 0;
	n = strtoul(val, &end, 10);
	if (errno || !n)
		goto bad;
	if (*end == 'K' || *end == 'k')
		mul = 1ULL << 10;
	else if (*end == 'M' || *end == 'm')
		mul = 1ULL << 20;
	else if (*end == 'G' || *end == 'g')
		mul = 1ULL << 30;
	else if (*end)
		goto bad;
	if (*end && end[1])
		goto bad;
	/* At least a page and at most a petabyte: anything else is a typo. */
	if ((unsigned long long)n > (1ULL << 50) / mul || n * mul < 4096)
		goto bad;
	p->svc->memory_max = n * mul;
	return 0;
bad:
	return perr(p, "%s must be a size of 4096 bytes or more (e.g. 512M, 2G), not \"%.*s\"", key,
		    ECHO_MAX, val);
}

static int set_cpu_max(struct parser *p, const char *key, const char *val)
{
	unsigned long n;
	char num[16];
	size_t len = strlen(val);

	/* A percentage of one CPU: 50% is half of one, 200% two. */
	if (len < 2 || len > sizeof(num) || val[len - 1] != '%')
		goto bad;
	memcpy(num, val, len - 1);
	num[len - 1] = '\0';
	if (parse_uint(num, 100000, &n) < 0 || n < 1 || n > 100000)
		goto bad;
	p->svc->cpu_max_pct = (unsigned)n;
	return 0;
bad:
	return perr(p,
		    "%s must be a percentage of one CPU, 1%% to 100000%% (e.g. 50%%, 200%%), not "
		    "\"%.*s\"",
		    key, ECHO_MAX, val);
}

static int set_pids_max(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, 4194304, &n) < 0 || n < 1 || n > 4194304)
		return perr(p, "%s must be 1..4194304, not %.*s", key, ECHO_MAX, val);
	p->svc->pids_max = (unsigned)n;
	return 0;
}

static int set_user(struct parser *p, const char *key, const char *val)
{
	struct passwd pw, *res = NULL;
	size_t size = 4096;
	char *buf = NULL, *nbuf;
	int rc;

	if (strlen(val) >= sizeof(p->svc->user))
		return perr(p, "%s: name is longer than %zu characters", key,
			    sizeof(p->svc->user) - 1);
	for (;;) {
		nbuf = realloc(buf, size);
		if (!nbuf) {
			free(buf);
			return perr(p, "%s: out of memory", key);
		}
		buf = nbuf;
		rc = getpwnam_r(val, &pw, buf, size, &res);
		if (rc != ERANGE || size >= 1 << 20)
			break;
		size *= 2;
	}
	free(buf);
	/* Not finding the name is not an error for getpwnam_r(3), but some
	 * NSS modules still say so with one of these. */
	if (rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
		rc = 0;
	if (rc)
		return perr(p, "%s: cannot look up \"%.*s\": %s", key, ECHO_MAX, val, strerror(rc));
	if (!res)
		return perr(p,
			    "%s: no such user \"%.*s\" (create it, or leave user out to run as the "
			    "agent's user)",
			    key, ECHO_MAX, val);
	strcpy(p->svc->user, val);
	return 0;
}

static int set_environment(struct parser *p, const char *key, const char *val)
{
	struct service_conf *svc = p->svc;
	const char *eq = strchr(val, '=');
	size_t len;
	int k;

	if (!eq)
		return perr(p, "%s: expected KEY=VALUE, not \"%.*s\"", key, ECHO_MAX, val);
	len = (size_t)(eq - val);
	if (!len)
		return perr(p, "%s: missing variable name before \"=\"", key);
	if (!env_name_valid(val, len))
		return perr(p,
			    "%s: invalid variable name \"%.*s\" (letters, digits and _, not "
			    "starting with a digit)",
			    key, (int)(len < ECHO_MAX ? len : ECHO_MAX), val);
	if (env_name_reserved(val, len))
		return perr(
		    p,
		    "%s: %.*s is set by baton (LISTEN_*, NOTIFY_SOCKET and BATON_* are reserved)",
		    key, (int)(len < ECHO_MAX ? len : ECHO_MAX), val);
	for (k = 0; k < svc->nenv; k++) {
		if (!strncmp(svc->env[k], val, len + 1))
			return perr(p, "%s: %.*s is set twice in [%s] (first at line %d)", key,
				    (int)(len < ECHO_MAX ? len : ECHO_MAX), val, p->section,
				    p->env_line[k]);
	}
	if (svc->nenv >= MAX_ENV)
		return perr(p, "more than %d environment entries in [%s]", MAX_ENV, p->section);
	svc->env[svc->nenv] = strdup(val);
	if (!svc->env[svc->nenv])
		return perr(p, "%s: out of memory", key);
	p->env_line[svc->nenv] = p->lineno;
	svc->env[++svc->nenv] = NULL;
	return 0;
}

static int set_ready(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "notify"))
		p->svc->ready = READY_NOTIFY;
	else if (!strcmp(val, "tcp"))
		p->svc->ready = READY_TCP;
	else if (!strcmp(val, "http"))
		p->svc->ready = READY_HTTP;
	else if (!strcmp(val, "exec"))
		p->svc->ready = READY_EXEC;
	else if (!strcmp(val, "none"))
		p->svc->ready = READY_NONE;
	else
		return perr(p, "%s must be notify, tcp, http, exec or none, not \"%.*s\"", key,
			    ECHO_MAX, val);
	return 0;
}

static int set_drain_policy(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "wait-then-signal"))
		p->svc->drain = DRAIN_WAIT_THEN_SIGNAL;
	else if (!strcmp(val, "signal-then-wait"))
		p->svc->drain = DRAIN_SIGNAL_THEN_WAIT;
	else
		return perr(p, "%s must be wait-then-signal or signal-then-wait, not \"%.*s\"", key,
			    ECHO_MAX, val);
	return 0;
}

static int set_exit_signal(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];

	if (parse_signal(val, &p->svc->exit_signal, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	return 0;
}

static int set_exit_signal_to(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "main"))
		p->svc->exit_signal_all = false;
	else if (!strcmp(val, "all"))
		p->svc->exit_signal_all = true;
	else
		return perr(p, "%s must be main or all, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_duration(struct parser *p, const char *key, const char *val, unsigned *dst,
			bool zero_ok)
{
	char msg[CONF_ERR_LEN];
	unsigned ms;

	if (parse_duration_ms(val, &ms, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	/* A zero bound would make the wait it bounds fail at once. */
	if (!ms && !zero_ok)
		return perr(p, "%s must be more than 0", key);
	*dst = ms;
	return 0;
}

static int set_ready_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->ready_timeout_ms, false);
}

static int set_drain_delay(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->drain_delay_ms, true);
}

static int set_drain_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->drain_timeout_ms, false);
}

static int set_kill_after(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->kill_after_ms, false);
}

static int set_adopt(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->adopt = true;
	else if (!strcmp(val, "no"))
		p->svc->adopt = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_drain_reset(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->drain_reset = true;
	else if (!strcmp(val, "no"))
		p->svc->drain_reset = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_drain_http(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "close"))
		p->svc->drain_http = true;
	else if (!strcmp(val, "off"))
		p->svc->drain_http = false;
	else
		return perr(p, "%s must be close or off, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_byte_counts(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->byte_counts = true;
	else if (!strcmp(val, "no"))
		p->svc->byte_counts = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_steering(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "sticky"))
		p->svc->steering = STEER_STICKY;
	else if (!strcmp(val, "per-connection"))
		p->svc->steering = STEER_PER_CONNECTION;
	else
		return perr(p, "%s must be sticky or per-connection, not \"%.*s\"", key, ECHO_MAX,
			    val);
	return 0;
}

static int set_strategy(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "bluegreen"))
		p->svc->strategy = STRATEGY_BLUEGREEN;
	else if (!strcmp(val, "canary"))
		p->svc->strategy = STRATEGY_CANARY;
	else if (!strcmp(val, "rolling"))
		p->svc->strategy = STRATEGY_ROLLING;
	else
		return perr(p, "%s must be bluegreen, canary or rolling, not \"%.*s\"", key,
			    ECHO_MAX, val);
	return 0;
}

static int set_roll_amount(struct parser *p, const char *key, const char *val,
			   struct roll_amount *a)
{
	char msg[CONF_ERR_LEN];

	if (roll_amount_parse(val, a, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	return 0;
}

static int set_max_surge(struct parser *p, const char *key, const char *val)
{
	return set_roll_amount(p, key, val, &p->svc->max_surge);
}

static int set_max_unavail(struct parser *p, const char *key, const char *val)
{
	return set_roll_amount(p, key, val, &p->svc->max_unavail);
}

static int set_pause(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->pause_ms, true);
}

static int set_steps(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];
	int n;

	n = parse_steps(val, p->svc->steps, msg, sizeof(msg));
	if (n < 0)
		return perr(p, "%s: %s", key, msg);
	p->svc->nsteps = n;
	return 0;
}

static int set_bake(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->bake_ms, true);
}

static int set_health(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "none"))
		p->svc->health = HEALTH_NONE;
	else if (!strcmp(val, "tcp"))
		p->svc->health = HEALTH_TCP;
	else if (!strcmp(val, "http"))
		p->svc->health = HEALTH_HTTP;
	else if (!strcmp(val, "exec"))
		p->svc->health = HEALTH_EXEC;
	else
		return perr(p, "%s must be none, tcp, http or exec, not \"%.*s\"", key, ECHO_MAX,
			    val);
	return 0;
}

/* Sent as is in "GET PATH HTTP/1.1": anything that could break the request
 * line is refused. */
static int set_health_path(struct parser *p, const char *key, const char *val)
{
	size_t len = strlen(val), i;

	if (val[0] != '/')
		return perr(p, "%s must start with \"/\", not \"%.*s\"", key, ECHO_MAX, val);
	for (i = 0; i < len; i++) {
		if (val[i] > ' ' && val[i] < 0x7f)
			continue;
		return perr(p,
			    "%s may only contain printable ASCII characters, without spaces "
			    "(percent-encode others): \"%.*s\"",
			    key, ECHO_MAX, val);
	}
	if (len >= sizeof(p->svc->health_path))
		return perr(p, "%s is longer than %zu characters", key,
			    sizeof(p->svc->health_path) - 1);
	memcpy(p->svc->health_path, val, len + 1);
	return 0;
}

static int set_health_interval(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->health_interval_ms, false);
}

static int set_health_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->health_timeout_ms, false);
}

static int set_health_threshold(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, 100, &n) < 0 || n < 1 || n > 100)
		return perr(p, "%s must be 1..100, not %.*s", key, ECHO_MAX, val);
	p->svc->health_threshold = (int)n;
	return 0;
}

static int set_keep_versions(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	/* The current version and at least one to roll back to. */
	if (parse_uint(val, KEEP_VERSIONS_MAX, &n) < 0 || n < 2 || n > KEEP_VERSIONS_MAX)
		return perr(p,
			    "%s must be 2..%d (the current version and those baton rollback can "
			    "go back to), not %.*s",
			    key, KEEP_VERSIONS_MAX, ECHO_MAX, val);
	p->svc->keep_versions = (int)n;
	return 0;
}

static int set_keep_warm(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "1") || !strcmp(val, "yes"))
		p->svc->keep_warm = true;
	else if (!strcmp(val, "0") || !strcmp(val, "no"))
		p->svc->keep_warm = false;
	else
		return perr(p, "%s must be 1 or 0 (yes or no), not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_rollback_window(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->rollback_window_ms, false);
}

static int set_max_error_rate(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];
	unsigned bp;

	if (!strcmp(val, "off")) {
		p->svc->max_error_bp = ERROR_RATE_OFF;
		return 0;
	}
	/* Neither a number nor a sign: most likely a word meant as "off". */
	if (!is_digit(val[0]) && val[0] != '-' && val[0] != '.')
		return perr(p, "%s must be a percentage (e.g. 1%%) or off, not \"%.*s\"", key,
			    ECHO_MAX, val);
	if (parse_percent_bp(val, &bp, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	p->svc->max_error_bp = (int)bp;
	return 0;
}

/* A latency bound or window: "off" where off_ok, else a duration with its unit (500ms, not 500). */
static int set_gate_duration(struct parser *p, const char *key, const char *val, unsigned *dst,
			     bool off_ok)
{
	size_t len = strlen(val);

	if (off_ok && !strcmp(val, "off")) {
		*dst = 0;
		return 0;
	}
	if (len && is_digit(val[len - 1]))
		return perr(p, "%s needs a unit: %.*sms or %.*ss, not %.*s", key, ECHO_MAX, val,
			    ECHO_MAX, val, ECHO_MAX, val);
	return set_duration(p, key, val, dst, false);
}

static int set_max_p99(struct parser *p, const char *key, const char *val)
{
	return set_gate_duration(p, key, val, &p->svc->max_p99_ms, true);
}

static int set_max_accept_p99(struct parser *p, const char *key, const char *val)
{
	return set_gate_duration(p, key, val, &p->svc->max_accept_p99_ms, true);
}

static int set_min_samples(struct parser *p, const char *key, const char *val)
{
	unsigned long n;

	if (parse_uint(val, 10000000, &n) < 0 || n < 1)
		return perr(p, "%s must be a count of requests, 1..10000000, not %.*s", key,
			    ECHO_MAX, val);
	p->svc->min_samples = (unsigned)n;
	return 0;
}

static int set_analysis_timeout(struct parser *p, const char *key, const char *val)
{
	return set_gate_duration(p, key, val, &p->svc->analysis_timeout_ms, false);
}

/* latency: on | off in [agent]; auto | on | off in [service NAME]. */
static int set_latency(struct parser *p, const char *key, const char *val)
{
	if (p->kind == SECT_AGENT) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			return perr(p, "%s must be on or off in [agent], not \"%.*s\"", key,
				    ECHO_MAX, val);
		p->cfg->agent.latency_off = !strcmp(val, "off");
		return 0;
	}
	if (!strcmp(val, "auto"))
		p->svc->latency = LATENCY_AUTO;
	else if (!strcmp(val, "on"))
		p->svc->latency = LATENCY_ON;
	else if (!strcmp(val, "off"))
		p->svc->latency = LATENCY_OFF;
	else
		return perr(p, "%s must be auto, on or off, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

static int set_hook_timeout(struct parser *p, const char *key, const char *val)
{
	return set_duration(p, key, val, &p->svc->hook_timeout_ms, false);
}

const struct key_def conf_keys[] = {
    {"control", SECT_AGENT, false, set_control},
    {"bpf-dir", SECT_AGENT, false, set_bpf_dir},
    {"run-dir", SECT_AGENT, false, set_run_dir},
    {"control-group", SECT_AGENT, false, set_control_group},
    {"cgroup-dir", SECT_AGENT, false, set_cgroup_dir},
    {"metrics", SECT_AGENT, false, set_metrics},
    {"prometheus", SECT_AGENT, false, set_prometheus},
    {"latency", SECT_AGENT, false, set_latency},
    {"listen", SECT_SERVICE, true, set_listen},
    {"exec", SECT_SERVICE, false, set_exec},
    {"instances", SECT_SERVICE, false, set_instances},
    {"user", SECT_SERVICE, false, set_user},
    {"workdir", SECT_SERVICE, false, set_workdir},
    {"environment", SECT_SERVICE, true, set_environment},
    {"ready", SECT_SERVICE, false, set_ready},
    {"ready-timeout", SECT_SERVICE, false, set_ready_timeout},
    {"drain-policy", SECT_SERVICE, false, set_drain_policy},
    {"exit-signal", SECT_SERVICE, false, set_exit_signal},
    {"exit-signal-to", SECT_SERVICE, false, set_exit_signal_to},
    {"drain-delay", SECT_SERVICE, false, set_drain_delay},
    {"drain-timeout", SECT_SERVICE, false, set_drain_timeout},
    {"kill-after", SECT_SERVICE, false, set_kill_after},
    {"drain-reset", SECT_SERVICE, false, set_drain_reset},
    {"drain-http", SECT_SERVICE, false, set_drain_http},
    {"adopt", SECT_SERVICE, false, set_adopt},
    {"byte-counts", SECT_SERVICE, false, set_byte_counts},
    {"backlog", SECT_SERVICE, false, set_backlog},
    {"memory-max", SECT_SERVICE, false, set_memory_max},
    {"cpu-max", SECT_SERVICE, false, set_cpu_max},
    {"pids-max", SECT_SERVICE, false, set_pids_max},
    {"steering", SECT_SERVICE, false, set_steering},
    {"strategy", SECT_SERVICE, false, set_strategy},
    {"steps", SECT_SERVICE, false, set_steps},
    {"bake", SECT_SERVICE, false, set_bake},
    {"max-surge", SECT_SERVICE, false, set_max_surge},
    {"max-unavailable", SECT_SERVICE, false, set_max_unavail},
    {"pause", SECT_SERVICE, false, set_pause},
    {"keep-versions", SECT_SERVICE, false, set_keep_versions},
    {"keep-warm", SECT_SERVICE, false, set_keep_warm},
    {"rollback-window", SECT_SERVICE, false, set_rollback_window},
    {"health", SECT_SERVICE, false, set_health},
    {"health-path", SECT_SERVICE, false, set_health_path},
    {"health-command", SECT_SERVICE, false, set_health_command},
    {"health-interval", SECT_SERVICE, false, set_health_interval},
    {"health-timeout", SECT_SERVICE, false, set_health_timeout},
    {"health-threshold", SECT_SERVICE, false, set_health_threshold},
    {"max-error-rate", SECT_SERVICE, false, set_max_error_rate},
    {"webhook", SECT_SERVICE, true, set_webhook},
    {"webhook-timeout", SECT_SERVICE, false, set_webhook_timeout},
    {"confirm-interval", SECT_SERVICE, false, set_confirm_interval},
    {"confirm-timeout", SECT_SERVICE, false, set_confirm_timeout},
    {"approve", SECT_SERVICE, false, set_approve},
    {"approval-timeout", SECT_SERVICE, false, set_approval_timeout},
    {"gate", SECT_SERVICE, true, set_gate},
    {"gate-dry-run", SECT_SERVICE, false, set_gate_dry_run},
    {"gate-timeout", SECT_SERVICE, false, set_gate_timeout},
    {"max-p99", SECT_SERVICE, false, set_max_p99},
    {"max-accept-wait-p99", SECT_SERVICE, false, set_max_accept_p99},
    {"min-samples", SECT_SERVICE, false, set_min_samples},
    {"analysis-timeout", SECT_SERVICE, false, set_analysis_timeout},
    {"max-p99-ratio", SECT_SERVICE, false, set_max_p99_ratio},
    {"measure-http", SECT_SERVICE, false, set_measure_http},
    {"min-success-rate", SECT_SERVICE, false, set_min_success_rate},
    {"max-error-ratio", SECT_SERVICE, false, set_max_error_ratio},
    {"confidence", SECT_SERVICE, false, set_confidence},
    {"baseline", SECT_SERVICE, false, set_baseline},
    {"gate-mode", SECT_SERVICE, false, set_gate_mode},
    {"latency", SECT_SERVICE, false, set_latency},
    {"before-start", SECT_SERVICE, false, set_hook},
    {"after-switch", SECT_SERVICE, false, set_hook},
    {"after-drain", SECT_SERVICE, false, set_hook},
    {"hook-timeout", SECT_SERVICE, false, set_hook_timeout},
};

const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
_Static_assert(sizeof(conf_keys) / sizeof(conf_keys[0]) <=
		   sizeof(((struct parser *)0)->seen) / sizeof(int),
	       "parser.seen too small for the key table");
