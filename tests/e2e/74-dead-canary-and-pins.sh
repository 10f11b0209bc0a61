#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 17, items 9 and 13:
#  - a pin to a draining version is refused (it would never apply);
#  - a canary whose old version died cannot roll back: the dead version
#    gives up its weight and its slot (weights sum to 10000 again, and the
#    version is in the history).
. "$(dirname "$0")/lib.sh"

write_conf "ready = http" "health-path = /healthz" "ready-timeout = 5s" \
	"drain-policy = signal-then-wait" "drain-timeout = 3s" "kill-after = 1s" \
	"drain-delay = 30s"
start_agent || exit 1
check "deploy v2" "$BATON" deploy web -- "$DEMO"

# v1 drains (drain-delay 30s): a pin to it is refused.
expect_err "pin to a draining version" "is draining" "$BATON" pin web 10.1.0.0/16 v1

# A canary at 10% whose old version dies; abort cannot give it traffic back.
"$BATON" deploy web --strategy canary --steps 10,100 --bake 0 -- "$DEMO" >"$T/canary.out" 2>&1 &
DPID=$!
at_step() {
	local i
	for i in $(seq 100); do
		[ "$("$BATON" status web --json | jq -r '.[0].rollout.weight')" = 1000 ] && return 0
		sleep 0.1
	done
	return 1
}
check "the canary takes 10%" at_step
OLD=$(version_pids 2)
for p in $OLD; do kill -9 "$p"; done
check "v2's processes are gone" wait_gone 5 $OLD
"$BATON" abort web >"$T/abort.out" 2>&1
wait "$DPID"
settled() {
	local i out
	for i in $(seq 50); do
		out=$("$BATON" status web --json)
		[ "$(jq -r '[.[0].versions[] | select(.version == 2)] | length' <<<"$out")" = 0 ] &&
			return 0
		sleep 0.1
	done
	echo "status: $(jq -c '.[0].versions[] | {version, state, weight, alive}' <<<"$out")"
	return 1
}
check "the dead v2 left its slot" settled
OUT=$("$BATON" status web --json)
check_eq "the weights of active versions sum to 10000" 10000 \
	"$(jq '[.[0].versions[] | select(.state == "active") | .weight] | add' <<<"$OUT")"
check_eq "v3 is active" 3 "$(jq -r '.[0].active' <<<"$OUT")"
check "v2 is in the history" jq -e '.[0].stopped | any(.version == 2)' <<<"$OUT"
