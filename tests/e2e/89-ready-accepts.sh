#!/bin/bash
# SPDX-License-Identifier: MIT
# ready = notify means accepting.  A server may send READY=1 from a master
# before any worker accepts (demo-server --accept-delay-ms: READY=1, then
# nothing reads the listeners for that long).  baton gives such a version
# traffic only once each instance accepted a connection through its own
# socket on every address, within ready-timeout.  Under wrk load with a new
# connection per request: no request waits for the late accept (wrk's max
# latency stays far below the delay; before this rule it was the delay), the
# agent's log has the switch after each instance's "accepting now", zero
# errors.  READY=1 from a server that never accepts fails the deploy, saying so.
. "$(dirname "$0")/lib.sh"

DELAY=1200
write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096"
start_agent || exit 1

# wrk's "Latency  avg stdev max" line: the max, in ms.
wrk_max_ms() {
	awk '$1 == "Latency" {v = $4; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		m = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v;
		printf "%d\n", m; exit}' "$1"
}

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk" -t2 -c20 -d"$(slow 60)"s --timeout 5s -H "Connection: close" \
	http://127.0.0.1:8080/
sleep 1
log0=$(wc -l <"$T/agent.log")
out=$(timeout "$(slow 30)" "$BATON" deploy web -- "$DEMO" --accept-delay-ms $DELAY 2>&1); rc=$?
check "deploy of a version that accepts $DELAY ms after READY=1 succeeds: $out" test $rc -eq 0
ms=$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' <<<"$out")
check "ready waited for it to accept (${ms:-?} ms >= $DELAY)" test "${ms:-0}" -ge $DELAY
check "v2 serves" only_version http://127.0.0.1:8080/ v2 5
check "v2 serves on [::1]" only_version "http://[::1]:8080/" v2 5
sleep 1
nstat_snap "$T/nstat.after"
check "the load outlasted the deploy" running "$WRK"
check "wrk ended by PID within 10 s" wrk_stop
cat "$T/wrk"
check_wrk_clean "under load" "$T/wrk"
check_tcp_clean "$T/nstat.before" "$T/nstat.after"
max=$(wrk_max_ms "$T/wrk")
check "no request waited for the late accept (wrk max latency ${max:-?} ms < $((DELAY / 2)) ms)" \
	test "${max:-99999}" -lt $((DELAY / 2))
# The agent's log (the servers' stderr too, in order): each v2 instance said
# "accepting now" before baton said v2 was ready.
tail -n +"$((log0 + 1))" "$T/agent.log" >"$T/deploy.log"
acc=$(grep -n "accepting now" "$T/deploy.log" | cut -d: -f1 | sort -n | tail -1)
rdy=$(grep -n "web v2: 2 instance(s) ready" "$T/deploy.log" | cut -d: -f1 | head -1)
check_eq "both v2 instances said accepting now" 2 "$(grep -c "accepting now" "$T/deploy.log")"
check "baton switched only after they accepted (accept at log line ${acc:-?}, ready at ${rdy:-?})" \
	test -n "$acc" -a -n "$rdy" -a "${acc:-0}" -lt "${rdy:-0}"

# READY=1 but never accepting: not ready by ready-timeout, v2 keeps the traffic.
v2pids=$(version_pids 2)
out=$(timeout "$(slow 30)" "$BATON" deploy web -- "$DEMO" --no-accept 2>&1); rc=$?
check "a version that sends READY=1 and never accepts fails the deploy" test $rc -ne 0
check "the reason says it sent READY=1 but accepted nothing: $(tail -1 <<<"$out")" \
	grep -q "not ready within ready-timeout .* (instance [01] sent READY=1 but accepted no connection on 127.0.0.1:8080)" <<<"$out"
check_eq "v2 still active" 2 "$(active_version)"
check_eq "v2 kept its processes" "$v2pids" "$(version_pids 2)"
check "v2 still serves" only_version http://127.0.0.1:8080/ v2 5
"$BATON" shutdown --stop >/dev/null
