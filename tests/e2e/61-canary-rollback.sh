#!/bin/bash
# SPDX-License-Identifier: MIT
# Canaries that roll back on their own, under wrk load (keep-alive and a new
# connection per request at once):
#  1. the new version fails its HTTP health check at 25%: rolled back, zero
#     failed requests;
#  2. the new version resets its connections (health checks off): the
#     kernel's reset counter rolls it back; only its own resets fail;
#  3. the new version crashes mid-bake: rolled back; only requests on
#     connections the crashed version reset or lost (its recorded counts)
#     may fail: counted and reported.
# Each time: the deploy exits non-zero with the reason, v1 has 100% again,
# status shows the last rollback, and the new version's processes exit.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = http" "health-path = /healthz" "health-interval = 200ms" \
	"health-timeout = 1s" "health-threshold = 3" "max-error-rate = 5%" \
	"ready-timeout = 5s" "drain-policy = wait-then-signal" "drain-timeout = 5s" \
	"kill-after = 2s" "backlog = 4096" "steering = per-connection"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# canary NAME MAXFAIL DEPLOY-ARGS...: deploy under load; expect a rollback.
canary() {
	local name=$1 maxfail=$2 rc v1 errs f newv hist resets lost
	shift 2
	v1=$(active_version)
	nstat_snap "$T/nstat.$name.before"
	wrk_start "$T/wrk.$name.ka" -t1 -c20 -d300s --timeout 5s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 0.5
	# Bounded: the agent rolls a canary back within its steps and bakes.
	rc=0
	timeout 120 "$BATON" deploy web "$@" >"$T/deploy.$name" 2>&1 || rc=$?
	cat "$T/deploy.$name"
	# The rolled-back version, as the deploy names it.
	newv=$(sed -n 's/.*rolled back to v[0-9]*: web v\([0-9]*\) .*/\1/p' "$T/deploy.$name")
	# Final counts of the rolled-back version, recorded when it stopped: every
	# connection its side reset and every one its exit closed, however short
	# they lived (no sampling).
	check "$name: v$newv exits" wait_gone 10 $(version_pids "$newv")
	hist=
	for _ in $(seq 50); do
		hist=$("$BATON" status web --json | jq -c ".[0].stopped[] | select(.version == ${newv:-0})")
		[ -n "$hist" ] && break
		sleep 0.1
	done
	check "$name: v$newv is in the stopped history ($hist)" test -n "$hist"
	resets=$(jq -r '.resets // empty' <<<"$hist") lost=$(jq -r '.lost // empty' <<<"$hist")
	check "$name: the deploy exits non-zero" test $rc -ne 0
	check "$name: with the rollback reason" grep -q "rolled back to v$v1" "$T/deploy.$name"
	check_eq "$name: v$v1 is active again" "$v1" "$(active_version)"
	check_eq "$name: v$v1 has 100%" 10000 \
		"$("$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $v1) | .weight")"
	check "$name: new connections reach v$v1" only_version "$URL" "v$v1" 10
	"$BATON" status web
	sleep 1
	nstat_snap "$T/nstat.$name.after"
	WRK=$ka wrk_stop
	WRK=$cl wrk_stop
	cat "$T/wrk.$name.ka" "$T/wrk.$name.cl"
	errs=0
	for w in ka cl; do
		for f in connect read write timeout non2xx; do
			errs=$((errs + $(wrk_field "$T/wrk.$name.$w" $f)))
		done
	done
	echo "$name: $errs failed requests; the canary reset ${resets:-?} connections" \
		"and its exit closed ${lost:-?}"
	case $maxfail in
	0) check_eq "$name: zero failed requests" 0 "$errs" ;;
	lost) check "$name: failed requests ($errs) <= connections the canary reset or lost (${resets:-?} + ${lost:-?})" \
		test -n "$resets" -a -n "$lost" -a "$errs" -le $((${resets:-0} + ${lost:-0})) ;;
	resets) check "$name: failed requests ($errs) <= connections the canary reset ($resets)" \
		test "$errs" -le "${resets:-0}" -a "${resets:-0}" -gt 0 ;;
	esac
	check_eq "$name: no connection attempt failed" 0 \
		"$(nstat_delta "$T/nstat.$name.before" "$T/nstat.$name.after" TcpAttemptFails)"
	REASON=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
	echo "$name: last rollback: $REASON"
}

canary health 0 --steps 25,50 --bake 20s -- "$DEMO" --unhealthy-after-ms 1000
check "health: status records the reason" grep -q "health checks in a row" <<<"$REASON"
check_eq "health: status records the version" 2 \
	"$("$BATON" status web --json | jq -r '.[0].last_rollback.version')"

# Kernel-observed errors only: no HTTP checks after readiness.
"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"
write_conf "instances = 1" "ready = notify" "health = none" "health-interval = 200ms" \
	"health-threshold = 3" "max-error-rate = 5%" "ready-timeout = 5s" \
	"drain-policy = wait-then-signal" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" \
	"steering = per-connection"
start_agent || exit 1
canary resets resets --steps 25,50 --bake 20s -- "$DEMO" --reset-every 1
check "resets: the reason names the server's resets" grep -q "reset by the server" <<<"$REASON"

canary crash lost --steps 25,50 --bake 20s -- "$DEMO" --exit-after-ms 1500
check "crash: the reason names the exit" grep -q "exited with status 3 during the rollout" <<<"$REASON"
