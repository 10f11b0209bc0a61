#!/bin/bash
# SPDX-License-Identifier: MIT
# keep-warm = 1 (issue 18): under wrk load (keep-alive and a new connection
# per request at once), the version a deploy replaced keeps running with no
# new connections for rollback-window; baton rollback within it gives the
# same processes the traffic back (nothing starts), and back again; zero
# failed requests, no refused or reset connection; once the window is over
# the replaced version drains and exits.  (That a rollback in the window is
# one policy update, and nothing else, is tests/unit/test_history.c's.)
. "$(dirname "$0")/lib.sh"

WINDOW=$(slow 30) # long enough for a loaded machine to reach the rollbacks within it
write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 3s" "kill-after = 1s" \
	"backlog = 4096" "keep-warm = 1" "rollback-window = ${WINDOW}s"
start_agent || exit 1
URL=http://127.0.0.1:8080/
v1pids=$(version_pids 1)

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
sleep 1

check "deploy v2" "$BATON" deploy web -- "$DEMO"
check "new connections reach v2" only_version "$URL" v2 10
sleep 1
check_eq "v1 is kept running" "$v1pids" "$(version_pids 1)"
v2pids=$(version_pids 2)
out=$("$BATON" rollback web 2>&1); rc=$?
check "rollback within the window succeeds" test $rc = 0
check_eq "and gives v1 the traffic back at once" "web: v1 active again, draining v2" "$out"
check_eq "the same v1 processes (nothing started)" "$v1pids" "$(version_pids 1)"
check "new connections reach v1" only_version "$URL" v1 10
check_eq "v2 is kept running in turn" "$v2pids" "$(version_pids 2)"
out=$("$BATON" rollback web 2>&1)
check_eq "and back to v2 the same way" "web: v2 active again, draining v1" "$out"
check "new connections reach v2 again" only_version "$URL" v2 10

sleep 1
nstat_snap "$T/nstat.after"
wrk_stop; WRK=$ka; wrk_stop
check_wrk_clean "keep-alive" "$T/wrk.ka"
check_wrk_clean "connection-per-request" "$T/wrk.cl"
check_tcp_clean "$T/nstat.before" "$T/nstat.after"

# The window (from the last switch), then drain-timeout and kill-after bound v1's exit.
# shellcheck disable=SC2086
check "v1 exits after the window" wait_gone $((WINDOW + 6)) $v1pids
check_eq "v2 still serves" v2 "$(served_by "$URL")"
