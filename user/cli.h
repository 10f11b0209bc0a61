/* SPDX-License-Identifier: MIT */
#ifndef BATON_CLI_H
#define BATON_CLI_H

#define DEFAULT_CONFIG	  "/etc/baton/baton.conf"
#define DEFAULT_CONTROL	  "/run/baton/control.sock"
#define BATON_VERSION_STR "0.1.0"

int cmd_agent(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_shutdown(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_adopt(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_abort(int argc, char **argv);
int cmd_weight(int argc, char **argv);
int cmd_pin(int argc, char **argv);
int cmd_unpin(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_features(int argc, char **argv);
/* clilat.c: status lines of latency (a version's JSON) and latency gates (the rollout's). */
#include <jansson.h>
void cli_print_latency(json_t *v);
/* The version's measure-http counts, when it is under analysis. */
void cli_print_http(json_t *v);
void cli_print_gates(json_t *ro);
/* clistatus.c: the text view of baton status's services; a weight's bar; a state's colour. */
void cli_print_table(json_t *services);
void cli_print_share(int tty, long long weight);
const char *cli_state_colour(int tty, const char *state);
/* cli.c: send req, print progress lines, return the final reply or NULL (said on stderr). */
json_t *cli_call(const char *control, json_t *req, int timeout_ms);
/* A request answered when a rollout ends (deploy, rollback): only the agent's silence is bounded.
 */
json_t *cli_long_call(const char *control, json_t *req);
/* 0 if reply r says ok; else its error printed ("baton: WHAT: ...") and r freed: 1. */
int cli_check_reply(const char *what, json_t *r);
/* clienv.c: deploy --env into the request, checked as the agent checks it; 0, or 2 (said why). */
int cli_deploy_env(const char *const *env, int nenv, long adopt_pid, json_t *req);
/* Print a command's usage line to stderr; returns 2, the usage exit status. */
int cmd_usage(const char *name);

#endif /* BATON_CLI_H */
