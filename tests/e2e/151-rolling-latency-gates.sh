#!/bin/bash
# SPDX-License-Identifier: MIT
# Latency gates between the batches of a rolling rollout (4 instances,
# max-surge 1, max-unavailable 0), under wrk load (keep-alive and a new
# connection per request):
#  1. a new version 300 ms slower than max-p99 = 100ms allows is rolled back
#     after its first batch: no second batch starts, the reason gives the
#     p99 and the bound, 4 old instances serve again, zero failed requests;
#  2. a healthy new version passes a window before each next batch and
#     completes;
#  3. with no load, the next batch is held (inconclusive) and the rollout
#     fails at analysis-timeout.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 4" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
	"ready = http" "health-path = /healthz" "health-interval = 500ms" \
	"health-timeout = $(slow 1)s" "health-threshold = 2" "max-p99 = 100ms" "min-samples = 50" \
	"analysis-timeout = $(slow 8)s" "ready-timeout = $(slow 5)s" \
	"drain-policy = wait-then-signal" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" \
	"steering = per-connection"
start_agent || exit 1
URL=http://127.0.0.1:8080/
if grep -q "latency is not measured" "$T/agent.log"; then
	not_ok "the agent measures latency"
	exit 1
fi

# rollout NAME WANTRC DEPLOY-ARGS...: deploy under load; count failed requests.
rollout() {
	local name=$1 want=$2 rc errs f w
	shift 2
	wrk_start "$T/wrk.$name.ka" -t1 -c20 -d300s --timeout 5s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 0.5
	rc=0
	timeout "$(slow 120)" "$BATON" deploy web "$@" >"$T/deploy.$name" 2>&1 || rc=$?
	cat "$T/deploy.$name"
	WRK=$ka wrk_stop
	WRK=$cl wrk_stop
	errs=0
	for w in ka cl; do
		for f in connect read write timeout non2xx; do
			errs=$((errs + $(wrk_field "$T/wrk.$name.$w" $f)))
		done
	done
	echo "$name: $(wrk_field "$T/wrk.$name.ka" requests) keep-alive and" \
		"$(wrk_field "$T/wrk.$name.cl" requests) connection-per-request requests"
	check_eq "$name: zero failed requests" 0 "$errs"
	if [ "$want" = 0 ]; then
		check_eq "$name: the deploy succeeds" 0 "$rc"
	else
		check "$name: the deploy exits non-zero ($rc)" test "$rc" -ne 0
	fi
}

# serving_v1: v1 processes alive and ready.
serving() {
	"$BATON" status web --json | jq --argjson v "$1" \
		'[.[0].versions[] | select(.version == $v) | .processes[] | select(.alive and .ready)] | length'
}

# 1. A slow new version: rolled back by max-p99 after its first batch.
rollout slow 1 -- "$DEMO" --delay-ms 300
check "slow: the reason gives the p99 and the bound" \
	grep -Eq "rolled back to v1.*web v2 p99 [0-9]+ ms > max-p99 100 ms over [0-9]+ requests" \
	"$T/deploy.slow"
# (The deploy's progress lines are what it printed.)
check "slow: its first batch started" grep -q "web: batch 1: starting 1 instance(s) of v2" \
	"$T/deploy.slow"
check_eq "slow: no second batch started" 0 \
	"$(grep -c "web: batch 2: starting [0-9]* instance(s) of v2" "$T/deploy.slow")"
check "slow: the batch was held for a verdict" grep -q "v2 holds its next batch" "$T/agent.log"
check_eq "slow: v1 is active again" 1 "$(active_version)"
for _ in $(seq "$(slow 50)"); do
	[ "$(serving 1)" = 4 ] && break
	sleep 0.1
done
check_eq "slow: 4 v1 instances serve" 4 "$(serving 1)"
reason=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
check "slow: status records the reason ($reason)" grep -q "max-p99 100 ms" <<<"$reason"

# 2. A healthy new version: a passing window before each next batch; completes.
rollout healthy 0 -- "$DEMO"
check_eq "healthy: v3 is active" 3 "$(active_version)"
check_eq "healthy: 4 v3 instances serve" 4 "$(serving 3)"
passes=$(grep -c "web v3: latency gates pass" "$T/agent.log")
check "healthy: passing verdicts between the batches ($passes)" test "$passes" -ge 3
check "healthy: all 4 batches ran" grep -q "web: batch 4: starting 1 instance(s) of v3" \
	"$T/deploy.healthy"

# 3. No load: the next batch is held, inconclusive, and fails at analysis-timeout.
rc=0
t0=$(date +%s)
timeout "$(slow 60)" "$BATON" deploy web -- "$DEMO" >"$T/deploy.idle" 2>&1 || rc=$?
t1=$(date +%s)
cat "$T/deploy.idle"
check "idle: the deploy fails ($rc)" test "$rc" -ne 0
check "idle: as inconclusive" \
	grep -q "inconclusive: .* fewer than min-samples 50 within analysis-timeout $(($(slow 8) * 1000)) ms" \
	"$T/deploy.idle"
check "idle: after analysis-timeout, not before ($((t1 - t0)) s)" test $((t1 - t0)) -ge "$(slow 8)"
check "idle: its first batch started" grep -q "web: batch 1: starting 1 instance(s) of v4" \
	"$T/deploy.idle"
check_eq "idle: no second batch of v4" 0 \
	"$(grep -c "web: batch 2: starting [0-9]* instance(s) of v4" "$T/deploy.idle")"
check_eq "idle: v3 is active" 3 "$(active_version)"
