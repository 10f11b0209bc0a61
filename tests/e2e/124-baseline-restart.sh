#!/bin/bash
# SPDX-License-Identifier: MIT
# A canary's baseline across an agent restart (kill -9), under wrk load:
# the restarted agent still knows v3 as v2's baseline with v2's share, and
# when the rollout is promoted the baseline drains and its processes exit;
# zero failed requests throughout.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "ready-timeout = $(slow 5)s" "health = none" \
	"strategy = canary" "baseline = yes" "drain-policy = signal-then-wait" \
	"drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" "steering = per-connection"
start_agent || exit 1
URL=http://127.0.0.1:8080/
weight_of() { "$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $1) | .weight"; }
shares() { echo "$(weight_of 1) $(weight_of 2) $(weight_of 3)"; }

wrk_start "$T/wrk.ka" -t1 -c10 -d300s --timeout 5s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c5 -d300s --timeout 5s -H "Connection: close" "$URL"
cl=$WRK
sleep 0.5

# --bake 0: the step waits for baton promote.
"$BATON" deploy web --steps 25,50 --bake 0 -- "$DEMO" >"$T/deploy" 2>&1 &
dep=$!
for _ in $(seq "$(slow 100)"); do
	[ "$(shares)" = "5000 2500 2500" ] && break
	sleep 0.1
done
check_eq "before the restart: v1, v2 and its baseline v3 share 50/25/25" "5000 2500 2500" "$(shares)"
b=$("$BATON" status web --json | jq -r '.[0].versions[] | select(.baseline == true) | .version')
check_eq "status marks v3 as the baseline" 3 "$b"
pids=$("$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 3) | .processes[].pid')

kill -9 "$AGENT"
wait_gone 5 "$AGENT"
start_agent >/dev/null || not_ok "the agent starts again"
wait "$dep" 2>/dev/null
check_eq "after the restart: the same shares" "5000 2500 2500" "$(shares)"
check_eq "after the restart: v3 is still the baseline" 3 \
	"$("$BATON" status web --json | jq -r '.[0].rollout.baseline')"
check "after the restart: its process is the same one ($pids)" kill -0 $pids

out=$("$BATON" promote web 2>&1)
echo "$out"
check_eq "at 50%: the baseline 50%, v1 nothing" "0 5000 5000" "$(shares)"
out=$("$BATON" promote web 2>&1)
echo "$out"
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 3)] | length')" = 0 ] && break
	sleep 0.1
done
check_eq "promoted: v2 is active" 2 "$(active_version)"
check_eq "promoted: v3 is gone from status" 0 \
	"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 3)] | length')"
# shellcheck disable=SC2086
check "promoted: the baseline's process exited" wait_gone 10 $pids
check "the log says the baseline left" grep -q "baseline web v3 leaves with the rollout" "$T/agent.log"

WRK=$ka wrk_stop
WRK=$cl wrk_stop
cat "$T/wrk.ka" "$T/wrk.cl"
errs=0
for w in ka cl; do
	for f in connect read write timeout non2xx; do
		errs=$((errs + $(wrk_field "$T/wrk.$w" $f)))
	done
done
check "real load ($(wrk_field "$T/wrk.ka" requests) keep-alive requests)" \
	test "$(wrk_field "$T/wrk.ka" requests)" -gt 500
check_eq "zero failed requests" 0 "$errs"
check "the agent still runs" kill -0 "$AGENT"
exit 0
