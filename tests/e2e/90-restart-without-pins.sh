#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent dies (kill -9) under wrk load (keep-alive and a new connection
# per request), its pin directory is removed (what the agent's own error
# tells an operator to do after a map-layout change), and it is started
# again, 5 times: the new agent finds the previous one's sockets map by the
# cookies in its state file and keeps every listener where it is, counts
# connections in new maps, sets the CIDR pins again from its state file,
# and deploys as before.  Zero failed requests.
# (Issue 17, item 1: before, every SYN after such a restart was refused.)
. "$(dirname "$0")/lib.sh"

write_conf "instances = 2" "ready = notify" "ready-timeout = 5s" "health = none" \
	"drain-timeout = 5s" "kill-after = 2s" "backlog = 4096"
start_agent || exit 1
URL=http://127.0.0.1:8080/
pins() { "$BATON" status web --json | jq -r '.[0].pins[] | "\(.cidr) v\(.version)"'; }
accepted() {
	"$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $1) | .accepted"
}

wrk_start "$T/wrk.ka" -t1 -c20 -d600s --timeout 5s "$URL"
KA=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d600s --timeout 5s -H "Connection: close" "$URL"
CL=$WRK
nstat_snap "$T/nstat.before"
sleep 0.5

expect=1 bad_start=0 took=0
check "pin 10.9.0.0/16 to v1" "$BATON" pin web 10.9.0.0/16 v1
for i in 1 2 3 4 5; do
	kill -9 "$AGENT"
	wait_gone 5 "$AGENT"
	rm -r "$BPFDIR"
	sleep 0.3 # the load runs with no agent and no pins
	start_agent >/dev/null || { bad_start=$((bad_start + 1)); echo "restart $i failed"; }
	took=$(grep -c "took over the previous agent's sockets map" "$T/agent.log")
	[ "$took" = "$i" ] || echo "restart $i: the log says the map was taken over $took times"
	# New connections are counted in the new maps.
	a=$(accepted "$expect")
	sleep 0.5
	check_eq "restart $i: the CIDR pin is set again" "10.9.0.0/16 v$expect" "$(pins)"
	check "restart $i: v$expect counts new connections again ($a, then $(accepted "$expect"))" \
		test "$(accepted "$expect")" -gt "${a:-0}"
	if [ "$i" = 3 ]; then
		old=$(version_pids "$expect")
		check "deploy after a restart without pins" "$BATON" deploy web -- "$DEMO"
		expect=$((expect + 1))
		# shellcheck disable=SC2086
		check "v$((expect - 1)) drained and exited" wait_gone 15 $old
		check_eq "the pin to v$((expect - 1)) went with it" "" "$(pins)"
		check "pin 10.9.0.0/16 to v$expect" "$BATON" pin web 10.9.0.0/16 "v$expect"
	fi
done
check_eq "every agent came up" 0 "$bad_start"
check_eq "each restart took the sockets map over" 5 "$took"
check_eq "v$expect is active" "$expect" "$(active_version)"
check "new connections reach v$expect" only_version "$URL" "v$expect" 10
check "IPv6 too" only_version "http://[::1]:8080/" "v$expect" 5

sleep 0.5
nstat_snap "$T/nstat.after"
check "the load outlasted the restarts" eval 'running "$KA" && running "$CL"'
check "keep-alive wrk ended by PID" eval 'WRK=$KA wrk_stop'
check "connection-per-request wrk ended by PID" eval 'WRK=$CL wrk_stop'
cat "$T/wrk.ka" "$T/wrk.cl"
for w in ka cl; do check_wrk_clean "$w" "$T/wrk.$w"; done
check_tcp_clean "$T/nstat.before" "$T/nstat.after"
