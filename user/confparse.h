/* SPDX-License-Identifier: MIT */
/*
 * Inside the configuration file parser: its state and the table of keys,
 * shared by config.c (the file, sections, checks) and confkeys.c (one
 * setter per key).  Not for other files.
 */
#ifndef BATON_CONFPARSE_H
#define BATON_CONFPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "confval.h"

#define DEFAULT_CONTROL "/run/baton/control.sock"
#define DEFAULT_BPF_DIR "/sys/fs/bpf/baton"
#define DEFAULT_RUN_DIR "/run/baton"

#define DURATION_MAX_MS (24u * 60 * 60 * 1000)

/* How much of a user's value is echoed in a message: enough to recognise it,
 * short enough that the hint after it still fits in CONF_ERR_LEN. */
#define ECHO_MAX 48

enum section_kind {
	SECT_NONE,
	SECT_AGENT,
	SECT_SERVICE,
};

struct parser;
typedef int (*key_setter)(struct parser *p, const char *key, const char *val);

struct key_def {
	const char *name;
	enum section_kind sect;
	bool repeats;
	key_setter set;
};

struct parser {
	struct config *cfg;
	const char *path;
	FILE *f;
	char *line;	 /* getline() buffer */
	const char *cur; /* the current line, without leading blanks, for messages */
	size_t linecap;
	int lineno;
	bool failed;
	int errline;
	char *err;
	size_t errlen;

	enum section_kind kind;
	char section[256];	  /* as in the header, for messages */
	struct service_conf *svc; /* current service */
	int agent_line;
	int seen[96]; /* per key: line it was set on in this section */
	int env_line[MAX_ENV];
	int listen_line[MAX_SERVICES][MAX_LISTEN];
};

/* confhooks.c: webhooks, confirmations, approvals. */
int set_webhook(struct parser *p, const char *key, const char *val);
int set_webhook_timeout(struct parser *p, const char *key, const char *val);
int set_confirm_interval(struct parser *p, const char *key, const char *val);
int set_confirm_timeout(struct parser *p, const char *key, const char *val);
int set_approve(struct parser *p, const char *key, const char *val);
int set_approval_timeout(struct parser *p, const char *key, const char *val);
int set_prometheus(struct parser *p, const char *key, const char *val);
int set_gate(struct parser *p, const char *key, const char *val);
int set_gate_dry_run(struct parser *p, const char *key, const char *val);
int set_gate_timeout(struct parser *p, const char *key, const char *val);
int set_max_p99_ratio(struct parser *p, const char *key, const char *val);
int set_measure_http(struct parser *p, const char *key, const char *val);
int set_min_success_rate(struct parser *p, const char *key, const char *val);
int set_max_error_ratio(struct parser *p, const char *key, const char *val);
int set_confidence(struct parser *p, const char *key, const char *val);
int set_baseline(struct parser *p, const char *key, const char *val);
int set_gate_mode(struct parser *p, const char *key, const char *val);

extern const struct key_def conf_keys[];
extern const size_t conf_nkeys;

/* An error at the current line (perr) or at line (perr_at): always -1. */
int __printf(2, 3) perr(struct parser *p, const char *fmt, ...);
int __printf(3, 4) perr_at(struct parser *p, int line, const char *fmt, ...);

#endif /* BATON_CONFPARSE_H */
