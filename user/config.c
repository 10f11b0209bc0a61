/* SPDX-License-Identifier: MIT */
/*
 * baton's configuration file: an INI file read with inih, one [agent]
 * section and one [service NAME] section per service.  See docs/config.md.
 *
 * inih hands the handler only (section, name, value), so the file is fed to
 * ini_parse_stream() through our own reader, one physical line per call.
 * The reader therefore always knows the line inih is working on, sees
 * section headers (inih reports no event for an empty section), and can stop
 * the parse at the first error by returning NULL.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
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
#include "rollconf.h"
#include "confval.h"

/* ---- the file parser -------------------------------------------------- */

static int __printf(2, 0) vperr(struct parser *p, const char *fmt, va_list ap)
{
	char msg[CONF_ERR_LEN];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (p->lineno)
		seterr(p->err, p->errlen, "%s:%d: %s", p->path, p->lineno, msg);
	else
		seterr(p->err, p->errlen, "%s: %s", p->path, msg);
	p->failed = true;
	p->errline = p->lineno;
	return -1;
}

int __printf(2, 3) perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vperr(p, fmt, ap);
	va_end(ap);
	return -1;
}

/* For checks made after the line at fault was read. */
int __printf(3, 4) perr_at(struct parser *p, int line, const char *fmt, ...)
{
	int cur = p->lineno;
	va_list ap;

	p->lineno = line;
	va_start(ap, fmt);
	vperr(p, fmt, ap);
	va_end(ap);
	p->lineno = cur;
	return -1;
}

/* Levenshtein distance ignoring case, for did-you-mean hints; long words
 * never match. */
static int edit_distance(const char *a, const char *b)
{
	int row[64], prev, tmp, i, j;
	int la = (int)strlen(a), lb = (int)strlen(b);

	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			int best = prev + (tolower((unsigned char)a[i - 1]) !=
					   tolower((unsigned char)b[j - 1]));

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static int unknown_key(struct parser *p, const char *name)
{
	const char *best = NULL;
	int bestd = 3, d;
	size_t i;

	for (i = 0; i < conf_nkeys; i++) {
		if (conf_keys[i].sect != p->kind)
			continue;
		d = edit_distance(name, conf_keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = conf_keys[i].name;
		}
	}
	if (best)
		return perr(p, "unknown key \"%.*s\" in [%s] (did you mean \"%s\"?)", ECHO_MAX,
			    name, p->section, best);
	for (i = 0; i < conf_nkeys; i++) {
		if (strcmp(name, conf_keys[i].name))
			continue;
		return perr(
		    p, "unknown key \"%s\" in [%s] (%s belongs in %s)", name, p->section, name,
		    conf_keys[i].sect == SECT_AGENT ? "[agent]" : "a [service NAME] section");
	}
	return perr(p, "unknown key \"%.*s\" in [%s]", ECHO_MAX, name, p->section);
}

static int syntax_error(struct parser *p)
{
	return perr(p, "expected KEY = VALUE, [section] or a comment, not \"%.*s\"", ECHO_MAX,
		    p->cur);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	size_t i;

	(void)section; /* the reader tracked it, with its line */
	if (p->failed)
		return 0;
	if (!*name) {
		perr(p, "missing key name before \"=\"");
		return 0;
	}
	/* "listen 0.0.0.0:80" reaches here as key "listen 0.0.0.0" (inih also
	 * takes ":" as the separator): a forgotten "=", not an unknown key. */
	if (strpbrk(name, " \t")) {
		syntax_error(p);
		return 0;
	}
	if (p->kind == SECT_NONE) {
		perr(p,
		     "key \"%.*s\" is outside any section (put it under [agent] or [service NAME])",
		     ECHO_MAX, name);
		return 0;
	}
	for (i = 0; i < conf_nkeys; i++)
		if (conf_keys[i].sect == p->kind && !strcmp(name, conf_keys[i].name))
			break;
	if (i == conf_nkeys) {
		unknown_key(p, name);
		return 0;
	}
	if (!value || !*value) {
		perr(p, "%s needs a value", name);
		return 0;
	}
	if (!conf_keys[i].repeats && p->seen[i]) {
		perr(p, "%s given twice in [%s] (first at line %d)", name, p->section, p->seen[i]);
		return 0;
	}
	p->seen[i] = p->lineno;
	return conf_keys[i].set(p, conf_keys[i].name, value) < 0 ? 0 : 1;
}

static void service_defaults(struct service_conf *svc)
{
	memset(svc, 0, sizeof(*svc));
	svc->instances = 1;
	svc->ready = READY_NOTIFY;
	svc->ready_timeout_ms = 10000;
	svc->drain = DRAIN_WAIT_THEN_SIGNAL;
	svc->exit_signal = SIGTERM;
	svc->drain_delay_ms = 0;
	svc->drain_timeout_ms = 30000;
	svc->kill_after_ms = 5000;
	svc->backlog = 1024;
	svc->steering = STEER_STICKY;
	svc->strategy = STRATEGY_BLUEGREEN;
	svc->steps[0] = 500;
	svc->steps[1] = 2500;
	svc->steps[2] = 5000;
	svc->steps[3] = WEIGHT_MAX;
	svc->nsteps = 4;
	svc->bake_ms = 30000;
	svc->health = HEALTH_NONE; /* until service_end() derives it from ready */
	strcpy(svc->health_path, "/");
	svc->health_interval_ms = 1000;
	svc->health_timeout_ms = 1000;
	svc->health_threshold = 3;
	svc->keep_versions = KEEP_VERSIONS_DEFAULT;
	svc->rollback_window_ms = 600000;
	svc->max_error_bp = 100;
	svc->min_samples = 100;
	svc->analysis_timeout_ms = 300000;
	svc->confidence_bp = 9500;
	svc->hook_timeout_ms = 60000;
	svc->webhook_timeout_ms = 5000;
	svc->confirm_interval_ms = 10000;
	svc->confirm_timeout_ms = 600000;
	svc->approval_timeout_ms = 3600000;
	svc->gate_timeout_ms = 300000;
	svc->max_surge.n = 1;
}

/* The line a key was given on in the current section, 0 if it was not. */
static int key_line(const struct parser *p, const char *name)
{
	size_t i;

	for (i = 0; i < conf_nkeys; i++)
		if (conf_keys[i].sect == p->kind && !strcmp(conf_keys[i].name, name))
			return p->seen[i];
	return 0;
}

/*
 * Settings that depend on each other, once the whole [service] section is
 * read (keys may come in any order): derived defaults, then the checks, each
 * reported at the line of the key at fault.
 */
static int service_end_rolling(struct parser *p)
{
	struct service_conf *svc = p->svc;
	int line = key_line(p, "max-surge"), uline = key_line(p, "max-unavailable");
	char msg[CONF_ERR_LEN];
	int su, un;

	if (svc->strategy != STRATEGY_ROLLING && !line && !uline)
		return 0;
	if (roll_resolve(svc->instances, svc->max_surge, svc->max_unavail, &su, &un, msg,
			 sizeof(msg)) < 0)
		return perr_at(p, line ? line : uline ? uline : key_line(p, "strategy"), "%s", msg);
	return 0;
}

/* keep-warm keeps a whole second copy running: what strategy = rolling exists to avoid. */
static int service_end_warm(struct parser *p)
{
	int line = key_line(p, "keep-warm");

	if (p->svc->keep_warm && p->svc->strategy == STRATEGY_ROLLING)
		return perr_at(
		    p, line,
		    "keep-warm = 1 keeps the replaced version running whole, which "
		    "strategy = rolling avoids: remove keep-warm, or use bluegreen or canary");
	return 0;
}

/* The rank test's settings: a baseline only where a canary step has one, one gate mode. */
static int service_end_slo(struct parser *p)
{
	const struct service_conf *svc = p->svc;
	int bline = key_line(p, "baseline"), mline = key_line(p, "gate-mode");

	if (svc->baseline && svc->strategy != STRATEGY_CANARY)
		return perr_at(p, bline,
			       "baseline = yes needs strategy = canary (a baseline takes a canary "
			       "step's share; %s has none): remove baseline or use canary",
			       svc->strategy == STRATEGY_ROLLING ? "rolling" : "bluegreen");
	if (mline && key_line(p, "gate-dry-run"))
		return perr_at(p, mline,
			       "gate-mode and gate-dry-run (line %d) both given: keep gate-mode",
			       key_line(p, "gate-dry-run"));
	if (key_line(p, "confidence") && !svc->max_p99_ratio && !svc->max_error_ratio)
		return perr_at(p, key_line(p, "confidence"),
			       "confidence is for max-p99-ratio's and max-error-ratio's tests, "
			       "neither of which is set: remove confidence or add one");
	if ((svc->min_success_bp || svc->max_error_ratio > 0) && !svc->measure_http) {
		const char *k = svc->min_success_bp ? "min-success-rate" : "max-error-ratio";

		return perr_at(p, key_line(p, k),
			       "%s needs the responses' status counted: add measure-http = yes "
			       "(plaintext HTTP/1.x services) or remove %s",
			       k, k);
	}
	return 0;
}

static int service_end(struct parser *p)
{
	struct service_conf *svc = p->svc;
	int ready_line = key_line(p, "ready");
	int health_line = key_line(p, "health");
	int command_line = key_line(p, "health-command");
	int path_line = key_line(p, "health-path");
	bool uses_exec, uses_http;

	if (!health_line) {
		switch (svc->ready) {
		case READY_TCP:
			svc->health = HEALTH_TCP;
			break;
		case READY_HTTP:
			svc->health = HEALTH_HTTP;
			break;
		case READY_EXEC:
			svc->health = HEALTH_EXEC;
			break;
		case READY_NONE:
		case READY_NOTIFY:
			svc->health = HEALTH_NONE;
			break;
		}
	}
	if (svc->adopt) {
		int exec_line = key_line(p, "exec");

		if (exec_line)
			return perr_at(p, exec_line,
				       "exec cannot be used with adopt = yes (adopted servers are "
				       "started outside baton: baton adopt / deploy --adopt-pid)");
		if (ready_line && svc->ready == READY_NOTIFY)
			return perr_at(p, ready_line,
				       "ready = notify cannot be used with adopt = yes (the server "
				       "was not started by baton; use tcp, http, exec or none)");
		if (!ready_line)
			svc->ready = READY_TCP;
		if (!health_line && svc->health == HEALTH_NONE)
			svc->health = svc->ready == READY_HTTP	 ? HEALTH_HTTP
				      : svc->ready == READY_EXEC ? HEALTH_EXEC
				      : svc->ready == READY_TCP	 ? HEALTH_TCP
								 : HEALTH_NONE;
	}
	uses_exec = svc->ready == READY_EXEC || svc->health == HEALTH_EXEC;
	uses_http = svc->ready == READY_HTTP || svc->health == HEALTH_HTTP;

	if (uses_exec && !svc->health_argv[0]) {
		bool by_ready = svc->ready == READY_EXEC;

		return perr_at(p, by_ready ? ready_line : health_line,
			       "%s = exec needs health-command (add health-command = "
			       "/path/to/check ARGS)",
			       by_ready ? "ready" : "health");
	}
	if (command_line && !uses_exec)
		return perr_at(p, command_line,
			       "health-command is set but neither ready nor health is exec");
	if (path_line && !uses_http)
		return perr_at(p, path_line,
			       "health-path is set but neither ready nor health is http");
	if (svc->latency == LATENCY_OFF && latency_gate_key(svc)) {
		const char *k = latency_gate_key(svc);

		return perr_at(p, key_line(p, k),
			       "%s needs latency measured, but latency = off (line %d): remove "
			       "one of them",
			       k, key_line(p, "latency"));
	}
	if (service_end_warm(p) || service_end_slo(p))
		return -1;
	return service_end_rolling(p);
}

static int unknown_section(struct parser *p, const char *name)
{
	const char *sp = strchr(name, ' ');
	size_t wlen = sp ? (size_t)(sp - name) : strlen(name);
	char word[16];

	if (wlen < sizeof(word)) {
		memcpy(word, name, wlen);
		word[wlen] = '\0';
		if (sp && edit_distance(word, "service") <= 2)
			return perr(p, "unknown section [%.*s] (did you mean [service%.*s]?)",
				    ECHO_MAX, name, ECHO_MAX, sp);
		if (!sp && edit_distance(word, "agent") <= 2)
			return perr(p, "unknown section [%.*s] (did you mean [agent]?)", ECHO_MAX,
				    name);
	}
	return perr(p, "unknown section [%.*s] (expected [agent] or [service NAME])", ECHO_MAX,
		    name);
}

/* A "[...]" line: open the section it names. */
static int section_begin(struct parser *p, char *line)
{
	struct config *cfg = p->cfg;
	char msg[CONF_ERR_LEN];
	const char *name, *svcname;
	char *end, *rest;
	int i;

	/* The section before ends here, and its errors come first. */
	if (p->svc && service_end(p) < 0)
		return -1;
	end = strchr(line + 1, ']');
	if (!end)
		return perr(p, "section header has no closing \"]\"");
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		;
	/* "[::1]:80" alone on a line is an address meant as one more value of
	 * the key above: say so rather than complain about a section. */
	if (*rest == ':')
		return perr(p,
			    "\"%.*s\" is not a section header (a value cannot continue on the next "
			    "line: repeat the key, e.g. listen = %.*s)",
			    ECHO_MAX, line, ECHO_MAX, line);
	if (*rest && *rest != ';' && *rest != '#')
		return perr(p, "unexpected text after the section header: \"%.*s\"", ECHO_MAX,
			    rest);
	*end = '\0';
	name = line + 1;
	i = snprintf(p->section, sizeof(p->section), "%s", name);
	*end = ']';
	if (i < 0 || (size_t)i >= sizeof(p->section))
		return unknown_section(p, p->section);

	memset(p->seen, 0, sizeof(p->seen));
	memset(p->env_line, 0, sizeof(p->env_line));
	p->svc = NULL;

	if (!strcmp(p->section, "agent")) {
		if (p->agent_line)
			return perr(p, "[agent] given twice (first at line %d)", p->agent_line);
		p->agent_line = p->lineno;
		p->kind = SECT_AGENT;
		return 0;
	}
	if (strncmp(p->section, "service", 7) ||
	    (p->section[7] && !isspace((unsigned char)p->section[7])))
		return unknown_section(p, p->section);
	if (!p->section[7])
		return perr(p, "[service] needs a name: [service NAME]");
	svcname = p->section + 8;
	if (p->section[7] != ' ' || isspace((unsigned char)*svcname))
		return perr(p, "write the header as [service NAME], with one space");
	if (parse_service_name(svcname, msg, sizeof(msg)) < 0)
		return perr(p, "%s", msg);
	for (i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, svcname))
			return perr(p, "service \"%s\" defined twice (first at line %d)", svcname,
				    cfg->services[i].line);
	if (cfg->nservices >= MAX_SERVICES)
		return perr(p, "more than %d services", MAX_SERVICES);

	p->svc = &cfg->services[cfg->nservices++];
	service_defaults(p->svc);
	strcpy(p->svc->name, svcname);
	p->svc->line = p->lineno;
	p->kind = SECT_SERVICE;
	return 0;
}

/*
 * inih's rule for a key line, checked here so that the message can say what
 * is wrong and the parse stops at once: a "=" or ":" must come before any
 * inline comment (";" after whitespace).
 */
static bool is_key_line(const char *s)
{
	bool was_space = false;

	for (; *s; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (was_space && *s == ';')
			return false;
		was_space = isspace((unsigned char)*s);
	}
	return false;
}

/*
 * fgets() for inih, one physical line per call, so p->lineno is the line
 * inih hands to on_key().  Leading whitespace is dropped: inih would take an
 * indented line as the continuation of the previous value (multi-line values
 * are compiled in), so an indented "exec = ..." would silently become part
 * of the line above.  Without it, indentation means nothing.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	char *s;
	ssize_t n;
	size_t len;

	if (p->failed)
		return NULL;
	errno = 0;
	n = getline(&p->line, &p->linecap, p->f);
	if (n < 0) {
		if (ferror(p->f)) {
			int e = errno;

			p->lineno = 0;
			perr(p, "read error: %s", strerror(e ? e : EIO));
		}
		return NULL;
	}
	p->lineno++;
	if (memchr(p->line, '\0', (size_t)n)) {
		perr(p, "line contains a NUL byte");
		return NULL;
	}
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	s = p->line;
	if (p->lineno == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	/* inih's line buffer is fixed: a longer line would be cut in two. */
	if (num < 1 || len >= (size_t)num) {
		perr(p, "line is longer than %d characters", num > 0 ? num - 1 : 0);
		return NULL;
	}
	p->cur = s;
	if (*s == '[') {
		if (section_begin(p, s) < 0)
			return NULL;
	} else if (*s && *s != ';' && *s != '#' && !is_key_line(s)) {
		syntax_error(p);
		return NULL;
	}
	memcpy(str, s, len + 1);
	return str;
}

static void agent_defaults(struct agent_conf *a)
{
	strcpy(a->control, DEFAULT_CONTROL);
	strcpy(a->bpf_dir, DEFAULT_BPF_DIR);
	strcpy(a->run_dir, DEFAULT_RUN_DIR);
}

/* Whole-file checks, after every line was read: no line to point at. */
static int check_services(struct parser *p)
{
	int i;

	p->lineno = 0;
	for (i = 0; i < p->cfg->nservices; i++) {
		const struct service_conf *svc = &p->cfg->services[i];

		if (!svc->nlisten)
			return perr(p,
				    "service \"%s\" has no listen address (add listen = ADDR:PORT)",
				    svc->name);
		if (p->cfg->agent.latency_off && latency_gate_key(svc))
			return perr(
			    p,
			    "service \"%s\" has a latency gate (%s) but [agent] has latency "
			    "= off: remove one of them",
			    svc->name, latency_gate_key(svc));
		if (svc->ngates && !p->cfg->agent.prometheus[0])
			return perr(p,
				    "service \"%s\" has gates but no Prometheus to ask (add "
				    "prometheus = http://HOST:9090 to [agent])",
				    svc->name);
		if (!svc->argc && !svc->adopt)
			return perr(
			    p,
			    "service \"%s\" has no exec command (add exec = /path/to/program "
			    "ARGS, or adopt = yes for a server started outside baton)",
			    svc->name);
	}
	return 0;
}

/* Parse one file into p->cfg; 0, or -1 with the error in p->err. */
static int parse_file(struct parser *p, const char *path)
{
	int rc;

	p->path = path;
	p->lineno = 0;
	p->failed = false;
	p->errline = 0;
	p->kind = SECT_NONE;
	p->section[0] = '\0';
	p->svc = NULL;
	memset(p->seen, 0, sizeof(p->seen));
	p->f = fopen(path, "re");
	if (!p->f) {
		seterr(p->err, p->errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, p, on_key, p);
	fclose(p->f);
	p->f = NULL;
	if (rc == -2 && !p->failed) {
		seterr(p->err, p->errlen, "%s: out of memory", path);
		return -1;
	}
	/* Every line inih rejects is rejected first by read_line(); this is
	 * a backstop in case a future inih is stricter than it. */
	if (rc > 0 && (!p->failed || rc < p->errline)) {
		p->lineno = rc;
		perr(p, "syntax error");
	}
	if (!p->failed && p->svc)
		service_end(p);
	return p->failed ? -1 : 0;
}

static int conf_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The *.conf files of dir, sorted, as malloc'd paths; returns how many
 * (at most max), or -1 with err.
 */
static int conf_dir_files(const char *dir, char **out, int max, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d) {
		seterr(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".conf"))
			continue;
		if (n == max) {
			seterr(err, errlen, "%s: more than %d .conf files", dir, max);
			goto fail;
		}
		if (asprintf(&out[n], "%s/%s", dir, de->d_name) < 0) {
			seterr(err, errlen, "%s: out of memory", dir);
			goto fail;
		}
		n++;
	}
	closedir(d);
	qsort(out, n, sizeof(out[0]), conf_name_cmp);
	return n;
fail:
	closedir(d);
	while (n)
		free(out[--n]);
	return -1;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	char *files[MAX_SERVICES + 1], dir[PATH_MAX], *slash;
	struct parser *p;
	struct stat st;
	int nfiles = 0, i, n, ret = -1;
	size_t used = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	/*
	 * A directory: every *.conf in it.  A file: it, then every *.conf of
	 * conf.d next to it when that directory exists.
	 */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		nfiles = conf_dir_files(path, files, MAX_SERVICES + 1, err, errlen);
		if (nfiles < 0)
			return -1;
		if (!nfiles) {
			seterr(err, errlen, "%s: no .conf file in this directory", path);
			return -1;
		}
	} else {
		files[nfiles++] = strdup(path);
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash)
			snprintf(slash + 1, sizeof(dir) - (slash + 1 - dir), "conf.d");
		else
			snprintf(dir, sizeof(dir), "conf.d");
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			n = conf_dir_files(dir, files + 1, MAX_SERVICES, err, errlen);
			if (n < 0) {
				free(files[0]);
				return -1;
			}
			nfiles += n;
		}
	}
	/* About 2 KiB of line bookkeeping: keep it off a possibly small stack. */
	p = calloc(1, sizeof(*p));
	if (!p || !files[0]) {
		seterr(err, errlen, "%s: out of memory", path);
		goto out;
	}
	p->cfg = cfg;
	agent_defaults(&cfg->agent);
	/* Every file is read; each one's first error is reported, one per line. */
	for (i = 0; i < nfiles; i++) {
		p->err = err ? err + used : NULL;
		p->errlen = errlen > used ? errlen - used : 0;
		if (parse_file(p, files[i]) < 0 && err && used < errlen) {
			used += strlen(err + used);
			if (used + 1 < errlen)
				err[used++] = '\n';
			ret = -2;
		}
	}
	if (used && err)
		err[used - 1] = '\0'; /* no newline after the last error */
	p->err = err ? err + used : NULL;
	p->errlen = errlen > used ? errlen - used : 0;
	if (ret == -2 || check_services(p) < 0) {
		ret = -1;
		goto out;
	}
	ret = 0;
out:
	if (p)
		free(p->line);
	free(p);
	for (i = 0; i < nfiles; i++)
		free(files[i]);
	if (ret < 0) {
		config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
	}
	return ret;
}

void config_free(struct config *cfg)
{
	int i, h;

	for (i = 0; i < cfg->nservices && i < MAX_SERVICES; i++) {
		free_argv(cfg->services[i].argv);
		cfg->services[i].argc = 0;
		free_argv(cfg->services[i].env);
		cfg->services[i].nenv = 0;
		free_argv(cfg->services[i].health_argv);
		for (h = 0; h < HOOK_COUNT; h++)
			free_argv(cfg->services[i].hook[h]);
	}
}
