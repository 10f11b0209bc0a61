#!/bin/bash
# SPDX-License-Identifier: MIT
# Versions that die, under wrk load (keep-alive and a new connection per
# request):
#  A. the new version dies after the switch while frozen with requests
#     queued: baton gives the traffic back to the old version (kept by
#     drain-delay) before the dead listeners close, so every queued request
#     migrates to it and is answered; only connections the dead processes
#     had accepted fail, and the agent logs how many it lost.
#  B. the old version is killed while it drains: the connections it held
#     are lost (logged with their count) and nothing else is.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 2" "ready = notify" "ready-timeout = 5s" "drain-delay = 20s" \
	"drain-policy = wait-then-signal" "drain-timeout = 20s" "kill-after = 2s" "backlog = 4096"
start_agent || exit 1
URL=http://127.0.0.1:8080/
lost_logged() { sed -n "s/.*web v$1: instance .*: \([0-9]*\) open connection(s) lost with it/\1/p" \
	"$T/agent.log" | awk '{s += $1} END {print s + 0}'; }
wrk_errors() {
	local f w n=0
	for w in "$@"; do
		for f in connect read write timeout non2xx; do n=$((n + $(wrk_field "$w" $f))); done
	done
	echo $n
}

# --- A
wrk_start "$T/wrk.a.ka" -t1 -c20 -d300s --timeout 10s "$URL"
KA=$WRK
wrk_start "$T/wrk.a.cl" -t1 -c10 -d300s --timeout 10s -H "Connection: close" "$URL"
CL=$WRK
sleep 0.5
check "deploy v2" "$BATON" deploy web -- "$DEMO"
sleep 0.5
v2=$(version_pids 2)
# shellcheck disable=SC2086
kill -STOP $v2
nstat_snap "$T/nstat.a.before"
curls=()
for i in $(seq 30); do curl -s --max-time 20 -o "$T/qa.$i" "$URL" & curls+=($!); done
for i in $(seq 10); do curl -s --max-time 20 -o "$T/qa6.$i" "http://[::1]:8080/" & curls+=($!); done
sleep 1
queued=$(ss -Hltn 'sport = :8080' | awk '{s += $2} END {print s + 0}')
echo "queued on frozen v2: $queued"
check "the 40 requests (and wrk's) are queued on frozen v2" test "$queued" -ge 40
# shellcheck disable=SC2086
kill -KILL $v2
fails=0
for p in "${curls[@]}"; do wait "$p" || fails=$((fails + 1)); done
check_eq "A: every queued client got an answer" 0 "$fails"
check_eq "A: all 40 were served by v1" 40 "$(cat "$T"/qa.* "$T"/qa6.* | grep -c '^version=v1 ')"
check_eq "A: v1 is active again" 1 "$(active_version)"
check "A: the agent says why" grep -q "web v2: every instance exited (last: killed by SIGKILL); rolling back" "$T/agent.log"
check "A: and status records it" grep -q "every instance exited" \
	<<<"$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')"
check "A: new connections reach v1" only_version "$URL" v1 10
sleep 1
nstat_snap "$T/nstat.a.after"
WRK=$KA wrk_stop
WRK=$CL wrk_stop
cat "$T/wrk.a.ka" "$T/wrk.a.cl"
mig=$(nstat_delta "$T/nstat.a.before" "$T/nstat.a.after" TcpExtTCPMigrateReqSuccess)
check "A: the queued requests migrated ($mig >= 40)" test "$mig" -ge 40
check_eq "A: no migration failed" 0 \
	"$(nstat_delta "$T/nstat.a.before" "$T/nstat.a.after" TcpExtTCPMigrateReqFailure)"
errs=$(wrk_errors "$T/wrk.a.ka" "$T/wrk.a.cl") lost=$(lost_logged 2)
echo "A: wrk failed $errs requests; the agent logged $lost connection(s) lost with v2"
check "A: failed requests ($errs) <= connections v2's processes held ($lost)" test "$errs" -le "$lost"

# --- B: v1 (active again) holds wrk's keep-alive connections; deploy v3, kill v1 while it drains.
wrk_start "$T/wrk.b.ka" -t1 -c20 -d300s --timeout 10s "$URL"
KA=$WRK
sleep 1
wrk_start "$T/wrk.b.cl" -t1 -c10 -d300s --timeout 10s -H "Connection: close" "$URL"
CL=$WRK
check "B: deploy v3" "$BATON" deploy web -- "$DEMO"
sleep 1
held=$("$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 1) | .live')
echo "B: v1 holds $held connections while it drains"
check "B: v1 holds wrk's keep-alive connections" test "$held" -ge 20
v1=$(version_pids 1)
# shellcheck disable=SC2086
kill -KILL $v1
# shellcheck disable=SC2086
wait_gone 5 $v1
sleep 1
lost=$(lost_logged 1)
check "B: the agent logged the connections lost with v1 ($lost; it held $held)" \
	test "$lost" -ge 20 -a "$lost" -le "$held"
check_eq "B: v3 stays active" 3 "$(active_version)"
check "B: new connections reach v3" only_version "$URL" v3 10
sleep 1
WRK=$KA wrk_stop
WRK=$CL wrk_stop
cat "$T/wrk.b.ka" "$T/wrk.b.cl"
errs=$(wrk_errors "$T/wrk.b.ka" "$T/wrk.b.cl")
echo "B: wrk failed $errs requests; v1 lost $lost connections"
check "B: failed requests ($errs) <= connections lost with v1 ($lost)" test "$errs" -le "$lost"
check_eq "B: the connection-per-request load lost nothing" 0 "$(wrk_errors "$T/wrk.b.cl")"
