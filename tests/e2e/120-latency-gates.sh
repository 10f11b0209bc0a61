#!/bin/bash
# SPDX-License-Identifier: MIT
# Latency measured in the kernel per version, and the latency gates of a
# canary, under wrk load (keep-alive and a new connection per request):
#  1. status, status --json and /metrics show v1's response times, and the
#     kernel's count and p50 agree with what wrk saw;
#  2. a canary that answers after 3 times max-p99 (100ms, scaled) is rolled
#     back by the p99 gate, with the numbers in the deploy's exit reason and in
#     status, and zero failed requests;
#  3. a healthy canary completes;
#  4. with no load, the step is inconclusive (held) and fails at
#     analysis-timeout;
#  5. bad settings are refused with one line, and the agent keeps running.
. "$(dirname "$0")/lib.sh"

# max-p99 is a bound on speed, so it scales by BATON_SLOW: under emulation a
# healthy version's p99 passed a fixed 100 ms (159 ms in a starved VM).  The
# slow canary's delay is 3 times the bound, on the host as in the VM.
P99=$(slow 100)
write_conf "instances = 1" "ready = http" "health-path = /healthz" "health-interval = 500ms" \
	"health-timeout = $(slow 1)s" "health-threshold = 2" "max-p99 = ${P99}ms" "min-samples = 50" \
	"analysis-timeout = $(slow 6)s" "ready-timeout = $(slow 5)s" "drain-policy = wait-then-signal" \
	"drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" "steering = per-connection"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
URL=http://127.0.0.1:8080/
M=http://127.0.0.1:9464/metrics

if grep -q "latency is not measured" "$T/agent.log"; then
	cat "$T/agent.log"
	not_ok "the agent measures latency"
	exit 1
fi

# 1. What v1 serves, measured by the kernel.
# (-d is scaled: under emulation one CLI call can outlast a 1 s interval, and
# both looks below must see an interval wrk filled; it is stopped after them.)
wrk_start "$T/wrk.v1" -t1 -c10 -d"$(slow 3)"s --latency "$URL"
w1=$WRK
# status shows the last whole 1 s interval: the first one wrk's requests fill
# ends 1 to 2 s after wrk starts sending, later when wrk is slow to start on a
# loaded machine (a fixed 1.5 s wait failed in CI), so wait for it, bounded.
for _ in $(seq "$(slow 50)"); do
	"$BATON" status web >"$T/status.v1"
	grep -q "last 1 s: response p50" "$T/status.v1" && break
	sleep 0.1
done
cat "$T/status.v1"
check "status shows v1's response times" grep -q "last 1 s: response p50" "$T/status.v1"
for _ in $(seq "$(slow 50)"); do
	j=$("$BATON" status web --json | jq -c '.[0].versions[0].latency')
	[ "$(jq -r ".response.count // 0" <<<"$j")" -gt 10 ] && break
	sleep 0.1
done
echo "$j"
check "status --json has the last interval's count" test "$(jq -r .response.count <<<"$j")" -gt 10
WRK=$w1 wrk_stop
sleep 1.2
curl -s "$M" >"$T/m1"
check "promtool accepts the histograms" promtool check metrics <"$T/m1"
kcount=$(sed -n 's/^baton_version_response_seconds_count{service="web",version="v1"} //p' "$T/m1")
wcount=$(wrk_field "$T/wrk.v1" requests)
echo "kernel counted $kcount responses, wrk $wcount requests"
# wrk's total and the kernel's: health checks and requests wrk did not finish add a few.
check "the kernel counted every request wrk made ($kcount >= $wcount)" test "${kcount:-0}" -ge "${wcount:-1}"
check "and few more ($kcount <= $wcount + 100)" test "${kcount:-0}" -le $((${wcount:-0} + 100))
grep -q 'le="+Inf"' "$T/m1"
check "the +Inf bucket is the count" grep -q "baton_version_response_seconds_bucket{service=\"web\",version=\"v1\",le=\"+Inf\"} $kcount\$" "$T/m1"

# canary NAME WANTRC DEPLOY-ARGS...: deploy under load; count failed requests.
canary() {
	local name=$1 want=$2 rc errs f w
	shift 2
	wrk_start "$T/wrk.$name.ka" -t1 -c20 -d300s --timeout "$(slow 5)"s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout "$(slow 5)"s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 0.5
	rc=0
	timeout "$(slow 120)" "$BATON" deploy web "$@" >"$T/deploy.$name" 2>&1 || rc=$?
	cat "$T/deploy.$name"
	"$BATON" status web
	WRK=$ka wrk_stop
	WRK=$cl wrk_stop
	cat "$T/wrk.$name.ka" "$T/wrk.$name.cl"
	errs=0
	for w in ka cl; do
		for f in connect read write timeout non2xx; do
			errs=$((errs + $(wrk_field "$T/wrk.$name.$w" $f)))
		done
	done
	check_eq "$name: zero failed requests" 0 "$errs"
	if [ "$want" = 0 ]; then
		check_eq "$name: the deploy succeeds" 0 "$rc"
	else
		check "$name: the deploy exits non-zero ($rc)" test "$rc" -ne 0
	fi
}

# 2. A slow canary: over max-p99, rolled back.
v1=$(active_version)
canary slow 1 --strategy canary --steps 25,50 --bake 20s -- "$DEMO" --delay-ms $((3 * P99))
check "slow: the reason gives the p99 and the bound" \
	grep -Eq "rolled back to v$v1: web v2 p99 [0-9]+ ms > max-p99 $P99 ms over [0-9]+ requests" \
	"$T/deploy.slow"
check_eq "slow: v$v1 is active again" "$v1" "$(active_version)"
reason=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
check "slow: status records the reason ($reason)" grep -q "max-p99 $P99 ms" <<<"$reason"
curl -s "$M" >"$T/m2"
check "slow: metrics count the latency rollback" \
	grep -q 'baton_rollbacks_total{service="web",reason="latency"} 1' "$T/m2"
check "slow: the log has the verdicts" grep -q "p99 .* > max-p99 $P99 ms" "$T/agent.log"

# 3. A healthy canary completes.
canary healthy 0 --strategy canary --steps 25,50 --bake 2s -- "$DEMO"
check_eq "healthy: v3 is active" 3 "$(active_version)"
check "healthy: the log has passing verdicts" grep -q "web v3: latency gates pass" "$T/agent.log"

# 4. No load: inconclusive, held, failed at analysis-timeout (6 s, scaled).
rc=0
t0=$(date +%s)
timeout "$(slow 60)" "$BATON" deploy web --strategy canary --steps 25,50 --bake 1s -- "$DEMO" \
	>"$T/deploy.idle" 2>&1 || rc=$?
t1=$(date +%s)
cat "$T/deploy.idle"
check "idle: the deploy fails ($rc)" test "$rc" -ne 0
check "idle: as inconclusive" grep -q "inconclusive: .* fewer than min-samples 50 within analysis-timeout $(($(slow 6) * 1000)) ms" \
	"$T/deploy.idle"
check "idle: after analysis-timeout, not before ($((t1 - t0)) s)" test $((t1 - t0)) -ge "$(slow 6)"
check "idle: the step was held" grep -q "holds its step" "$T/agent.log"
check_eq "idle: v3 is still active" 3 "$(active_version)"

# 5. Bad settings: one line each, nothing changes.
not_grep() { ! grep -q "$@"; }
for bad in "max-p99 = 500" "max-p99 = fast" "max-accept-wait-p99 = 0ms" "min-samples = 0" \
	"min-samples = many" "analysis-timeout = 10"; do
	sed '/^max-p99\|^min-samples\|^analysis-timeout/d' "$T/web.conf" >"$T/bad.conf"
	sed -i "/^\[service web\]/a $bad" "$T/bad.conf"
	out=$("$BATON" agent -n -f "$T/bad.conf" 2>&1)
	rc=$?
	echo "$bad -> $out"
	check "bad '$bad': refused" test $rc -ne 0
	check_eq "bad '$bad': one line" 1 "$(printf '%s\n' "$out" | wc -l)"
	check "bad '$bad': names the key" grep -q "${bad%% *}" <<<"$out"
	check "bad '$bad': not for a repeated key" not_grep "given twice" <<<"$out"
done
check "the agent still runs" kill -0 "$AGENT"
exit 0
