#!/bin/bash
# SPDX-License-Identifier: MIT
# max-p99-ratio against the active version (no --baseline), under wrk load
# (keep-alive and a new connection per request), v1 answering in 20 ms:
#  1. a canary 3x slower (60 ms) is rolled back by the rank test, with the
#     ratio, the p value, both p99s and both counts in the deploy's exit
#     reason, status and the log, and zero failed requests;
#  2. a canary as fast as v1 completes;
#  3. gate-mode = dry-run (by reload): the same slow canary completes, the
#     log and status report what the gate would have done;
#  4. bad settings (ratio <= 1, confidence out of range, baseline with a
#     strategy other than canary, gate-mode twice) are refused in one line.
. "$(dirname "$0")/lib.sh"

EXEC="$DEMO --delay-ms 20" write_conf "instances = 1" "ready = http" "health-path = /healthz" \
	"health-interval = 500ms" "health-timeout = $(slow 1)s" "health-threshold = 2" \
	"max-p99-ratio = 1.5" "confidence = 99%" "min-samples = 50" \
	"analysis-timeout = $(slow 8)s" "ready-timeout = $(slow 5)s" \
	"drain-policy = wait-then-signal" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" \
	"steering = per-connection"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
URL=http://127.0.0.1:8080/
M=http://127.0.0.1:9464/metrics

# canary NAME WANTRC DEPLOY-ARGS...: deploy under load; count failed requests.
canary() {
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
	"$BATON" status web | tee "$T/status.$name"
	WRK=$ka wrk_stop
	WRK=$cl wrk_stop
	cat "$T/wrk.$name.ka" "$T/wrk.$name.cl"
	errs=0
	for w in ka cl; do
		for f in connect read write timeout non2xx; do
			errs=$((errs + $(wrk_field "$T/wrk.$name.$w" $f)))
		done
	done
	check "$name: real load ($(wrk_field "$T/wrk.$name.ka" requests) keep-alive requests)" \
		test "$(wrk_field "$T/wrk.$name.ka" requests)" -gt 500
	check_eq "$name: zero failed requests" 0 "$errs"
	if [ "$want" = 0 ]; then
		check_eq "$name: the deploy succeeds" 0 "$rc"
	else
		check "$name: the deploy exits non-zero ($rc)" test "$rc" -ne 0
	fi
}

# 1. Three times slower than v1: rolled back by the rank test.
v1=$(active_version)
canary slow 1 --strategy canary --steps 25,50 --bake 30s -- "$DEMO" --delay-ms 60
check "slow: the reason is the rank test's, with its numbers" \
	grep -Eq "rolled back to v$v1: web v2 response time > 1.5 x active v$v1's at 99% confidence \(rank test p [0-9.e+-]+; p99 [0-9.]+ ms vs [0-9.]+ ms\) over [0-9]+ and [0-9]+ requests \(max-p99-ratio\)" \
	"$T/deploy.slow"
check_eq "slow: v$v1 is active again" "$v1" "$(active_version)"
reason=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
check "slow: status records the reason ($reason)" grep -q "x active v$v1's at 99% confidence" <<<"$reason"
curl -s "$M" >"$T/m1"
check "slow: metrics count the latency rollback" \
	grep -q 'baton_rollbacks_total{service="web",reason="latency"} 1' "$T/m1"
check "slow: the log has the failing verdicts" grep -q "response time > 1.5 x active v$v1's" "$T/agent.log"

# 2. As fast as v1: completes.
canary healthy 0 --strategy canary --steps 25,50 --bake 3s -- "$DEMO" --delay-ms 20
check_eq "healthy: v3 is active" 3 "$(active_version)"
check "healthy: the log has passing rank tests" \
	grep -q "web v3: latency gates pass: .*web v3 response time within 1.5 x active v$v1's" \
	"$T/agent.log"

# 3. gate-mode = dry-run: reported, never acted on.
sed -i "/^max-p99-ratio/a gate-mode = dry-run" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "dry-run: reload takes gate-mode ($out)" grep -q "1 changed web" <<<"$out"
canary dry 0 --strategy canary --steps 25,50 --bake 4s -- "$DEMO" --delay-ms 60
check_eq "dry: v4 is active" 4 "$(active_version)"
check "dry: the log says it would roll back" \
	grep -q "web v4 response time > 1.5 x active v3's .*would roll back (dry-run)" "$T/agent.log"
check "dry: the log says it would hold the step" grep -q "v4 would hold its step (dry-run)" \
	"$T/agent.log"
curl -s "$M" >"$T/m2"
check "dry: no rollback counted" \
	grep -q 'baton_rollbacks_total{service="web",reason="latency"} 1' "$T/m2"

# 4. Bad settings: one line each, nothing changes.
for bad in "max-p99-ratio = 1" "max-p99-ratio = 0.9" "max-p99-ratio = 2x" "confidence = 50%" \
	"confidence = 100%" "confidence = high" "baseline = yes|strategy = rolling" \
	"baseline = yes|strategy = bluegreen" "gate-mode = off" "gate-dry-run = no"; do
	sed '/^max-p99-ratio\|^confidence\|^baseline\|^strategy/d' "$T/web.conf" >"$T/bad.conf"
	sed -i "/^\[service web\]/a max-p99-ratio = 1.5\nconfidence = 95%" "$T/bad.conf"
	IFS='|' read -ra kv <<<"$bad"
	for k in "${kv[@]}"; do
		key=${k%% *}
		sed -i "/^$key *=/d" "$T/bad.conf"
		sed -i "/^\[service web\]/a $k" "$T/bad.conf"
	done
	out=$("$BATON" agent -n -f "$T/bad.conf" 2>&1)
	rc=$?
	echo "$bad -> $out"
	check "bad '$bad': refused" test $rc -ne 0
	check_eq "bad '$bad': one line" 1 "$(printf '%s\n' "$out" | wc -l)"
	check "bad '$bad': names the key" grep -q "${bad%% *}" <<<"$out"
done
cp "$T/web.conf" "$T/web.conf.good"
sed -i "s/^max-p99-ratio = 1.5/max-p99-ratio = 1/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "a reload with ratio 1 is refused ($out)" grep -q "reload refused.*max-p99-ratio must be a ratio above 1" <<<"$out"
check_eq "after the refused reload v4 is still active" 4 "$(active_version)"
cp "$T/web.conf.good" "$T/web.conf"
check "the agent still runs" kill -0 "$AGENT"
exit 0
