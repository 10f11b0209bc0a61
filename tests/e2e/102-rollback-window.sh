#!/bin/bash
# SPDX-License-Identifier: MIT
# The rollback window (issue 18), under wrk load (keep-alive and a new
# connection per request at once):
#  1. v1 (COLOR=blue), then, after a reload to COLOR=green, v2 and v3 with
#     their own arguments; each old version exits after its drain.
#  2. baton rollback web --to v1 from v3: v1 is started again from its
#     record as v4 (same command and arguments, its environment: blue), and
#     takes the traffic.
#  3. baton rollback web: the previous version (v3) exited; it starts again
#     as v5 (its arguments, green).
#  Zero failed requests of any class, no refused or reset connection.
#  4. kill -9 of the agent and a restart: baton history is identical (text
#     and JSON), and a rollback still starts a version from its record.
. "$(dirname "$0")/lib.sh"

conf() {
	write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" \
		"drain-policy = signal-then-wait" "drain-timeout = 3s" "kill-after = 1s" \
		"backlog = 4096" "environment = COLOR=$1"
}
conf blue
start_agent || exit 1
URL=http://127.0.0.1:8080/

# first_pid N: version N's first live process, or nothing.
first_pid() { version_pids "$1" | head -1; }
# cmdline_of N: the command line of version N's first process, spaces between.
cmdline_of() {
	local p
	p=$(first_pid "$1")
	[ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" | sed 's/ $//'
}
# color_of N: COLOR in the environment of version N's first process.
color_of() {
	local p
	p=$(first_pid "$1")
	[ -n "$p" ] && tr '\0' '\n' <"/proc/$p/environ" | sed -n 's/^COLOR=//p'
}
# exited N: every process of version N is gone (bounded: drain-timeout + kill-after).
exited() {
	local p
	p=$(version_pids "$1")
	# shellcheck disable=SC2086
	[ -z "$p" ] || wait_gone 10 $p
}

conf green
check "reload to COLOR=green" "$BATON" reload
check_eq "v1 runs with the environment it was deployed with" blue "$(color_of 1)"

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
sleep 1

check "deploy v2" "$BATON" deploy web -- "$DEMO" --drain-idle-ms 200
check "v1 exits" exited 1
check "deploy v3" "$BATON" deploy web -- "$DEMO" --drain-idle-ms 300
check "v2 exits" exited 2
check_eq "v3 has COLOR=green" green "$(color_of 3)"

out=$("$BATON" rollback web --to v1 2>"$T/rb1.err"); rc=$?
check "rollback --to v1 from v3 succeeds ($out$(grep baton "$T/rb1.err"))" test $rc = 0
check_eq "and starts v1 again as v4" "web: v4 (v1 started again) active" "${out% (ready*}"
check_eq "v4 runs v1's command" "$DEMO" "$(cmdline_of 4)"
check_eq "v4 has v1's environment" blue "$(color_of 4)"
check "new connections reach v4" only_version "$URL" v4 10
check "v3 exits" exited 3

out=$("$BATON" rollback web 2>"$T/rb2.err"); rc=$?
check "rollback after the previous version exited succeeds ($out$(grep baton "$T/rb2.err"))" test $rc = 0
check_eq "and starts v3 again as v5" "web: v5 (v3 started again) active" "${out% (ready*}"
check_eq "v5 runs v3's command" "$DEMO --drain-idle-ms 300" "$(cmdline_of 5)"
check_eq "v5 has v3's environment" green "$(color_of 5)"
check "new connections reach v5" only_version "$URL" v5 10
check "v4 exits" exited 4

sleep 1
nstat_snap "$T/nstat.after"
wrk_stop; WRK=$ka; wrk_stop
check_wrk_clean "keep-alive" "$T/wrk.ka"
check_wrk_clean "connection-per-request" "$T/wrk.cl"
check_tcp_clean "$T/nstat.before" "$T/nstat.after"

"$BATON" history web >"$T/h1.txt"
"$BATON" history web --json >"$T/h1.json"
cat "$T/h1.txt"
h() { jq -r "$1" "$T/h1.json"; }
check_eq "history remembers v1..v5" "1 2 3 4 5" "$(h '[.[].version] | map(tostring) | join(" ")')"
check_eq "v1 was replaced by v2" "replaced:replaced by v2" "$(h '.[0] | "\(.end):\(.how)"')"
check_eq "v3 was rolled back to v1" "rolled-back:rolled back to v1 (started again as v4)" \
	"$(h '.[2] | "\(.end):\(.how)"')"
check_eq "v4 is a rollback of v1, v5 of v3" "1 3" "$(h '[.[3].rollback_of, .[4].rollback_of] | map(tostring) | join(" ")')"
check_eq "v5 is active" active "$(h '.[4].end')"
check_eq "v5 keeps its environment" COLOR=green "$(h '.[4].env[] | select(startswith("COLOR="))')"

# kill -9 of the agent: the history is the state file's, read back by the next agent.
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
start_agent || exit 1
"$BATON" history web >"$T/h2.txt"
"$BATON" history web --json >"$T/h2.json"
check "history identical after kill -9 and restart" cmp "$T/h1.txt" "$T/h2.txt"
check "history --json identical after kill -9 and restart" cmp "$T/h1.json" "$T/h2.json"
out=$("$BATON" rollback web --to v2 2>&1); rc=$?
check "after the restart, rollback --to v2 starts v2 again ($out)" test $rc = 0
check_eq "v6 runs v2's command" "$DEMO --drain-idle-ms 200" "$(cmdline_of 6)"
check "new connections reach v6" only_version "$URL" v6 5
