#!/bin/bash
# SPDX-License-Identifier: MIT
# An agent in another network namespace, sharing the run-dir of one that
# died, does not take over its services: their sockets cannot join that
# namespace's reuseport groups (issue 17, item 11; adoption refuses the
# same).  The agent in the services' own namespace still takes them over.
. "$(dirname "$0")/lib.sh"

write_conf "ready = notify"
start_agent || exit 1
PIDS=$(version_pids 1)
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
AGENT=
expect_err "an agent in another network namespace refuses the state" \
	"another network namespace" unshare -n "$BATON" agent -d -f "$T/web.conf"
# shellcheck disable=SC2086 # one word per pid
check "v1's processes still run" kill -0 $PIDS
start_agent || exit 1
check_eq "the agent in their namespace took v1 over" "$(echo $PIDS)" "$(echo $(version_pids 1))"
check "new connections reach v1" only_version http://127.0.0.1:8080/ v1 5
