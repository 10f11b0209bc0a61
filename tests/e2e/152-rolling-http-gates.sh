#!/bin/bash
# SPDX-License-Identifier: MIT
# The HTTP gates between the batches of a rolling rollout (4 instances,
# max-surge 1, max-unavailable 0, measure-http), under wrk load (keep-alive
# and a new connection per request):
#  1. a new version answering 10% of requests with 500 (demo --error-rate
#     10) is rolled back by min-success-rate = 99% after its first batch: no
#     second batch starts, the reason gives the numbers, 4 old instances
#     serve again; wrk saw no failure but the 500s the new version served,
#     and the kernel counted each;
#  2. a healthy new version passes a window (with its success rate) before
#     each next batch and completes;
#  3. max-error-ratio = 2 compares with the old version, which is counted
#     while the rollout runs: the same bad version is rolled back;
#  4. gate-mode = dry-run: the bad version completes, the log says what the
#     gate would have done.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 4" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
	"ready = http" "health-path = /healthz" "health-interval = 500ms" \
	"health-timeout = $(slow 1)s" "health-threshold = 2" "measure-http = yes" \
	"min-success-rate = 99%" "min-samples = 50" "analysis-timeout = $(slow 10)s" \
	"ready-timeout = $(slow 5)s" "drain-policy = wait-then-signal" "drain-timeout = 5s" \
	"kill-after = 2s" "backlog = 4096" "steering = per-connection"
start_agent || exit 1
URL=http://127.0.0.1:8080/

if grep -q "measure-http needs\|drain-http: cannot\|versions drain without it" "$T/agent.log"; then
	cat "$T/agent.log"
	not_ok "this kernel runs measure-http"
	exit 1
fi

# The 5xx the kernel counted for version N, from the line logged when it is gone.
kernel_5xx() {
	local i
	for i in $(seq "$(slow 150)"); do
		grep -q "web v$1: measure-http: no longer counted" "$T/agent.log" && break
		sleep 0.1
	done
	sed -n "s/.*web v$1: measure-http: no longer counted; [0-9]* final responses, \([0-9]*\) 5xx.*/\1/p" \
		"$T/agent.log" | tail -1
}

# rollout NAME WANTRC DEPLOY-ARGS...: deploy under load; ERRS: connect, read,
# write and timeout errors; NON2XX: non-2xx responses.
rollout() {
	local name=$1 want=$2 rc f w
	shift 2
	wrk_start "$T/wrk.$name.ka" -t1 -c10 -d300s --timeout 5s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 0.5
	rc=0
	timeout "$(slow 120)" "$BATON" deploy web "$@" >"$T/deploy.$name" 2>&1 || rc=$?
	cat "$T/deploy.$name"
	WRK=$ka wrk_stop
	WRK=$cl wrk_stop
	ERRS=0
	NON2XX=0
	for w in ka cl; do
		for f in connect read write timeout; do
			ERRS=$((ERRS + $(wrk_field "$T/wrk.$name.$w" $f)))
		done
		NON2XX=$((NON2XX + $(wrk_field "$T/wrk.$name.$w" non2xx)))
	done
	echo "$name: $(wrk_field "$T/wrk.$name.ka" requests) keep-alive and" \
		"$(wrk_field "$T/wrk.$name.cl" requests) connection-per-request requests, $NON2XX non-2xx"
	check "$name: real load ($(wrk_field "$T/wrk.$name.cl" requests) new-connection requests)" \
		test "$(wrk_field "$T/wrk.$name.cl" requests)" -gt 300
	check_eq "$name: no connect, read, write or timeout errors" 0 "$ERRS"
	if [ "$want" = 0 ]; then
		check_eq "$name: the deploy succeeds" 0 "$rc"
	else
		check "$name: the deploy exits non-zero ($rc)" test "$rc" -ne 0
	fi
}

serving() {
	"$BATON" status web --json | jq --argjson v "$1" \
		'[.[0].versions[] | select(.version == $v) | .processes[] | select(.alive and .ready)] | length'
}

# after_batch_one NAME N OLD: version N was rolled back after its first batch, OLD serves.
after_batch_one() {
	local name=$1 n=$2 old=$3 k5
	check "$name: its first batch started" grep -q "web: batch 1: starting 1 instance(s) of v$n" \
		"$T/deploy.$name"
	check_eq "$name: no second batch started" 0 \
		"$(grep -c "web: batch 2: starting [0-9]* instance(s) of v$n" "$T/deploy.$name")"
	check_eq "$name: v$old is active again" "$old" "$(active_version)"
	for _ in $(seq "$(slow 50)"); do
		[ "$(serving "$old")" = 4 ] && break
		sleep 0.1
	done
	check_eq "$name: 4 v$old instances serve" 4 "$(serving "$old")"
	k5=$(kernel_5xx "$n")
	echo "$name: wrk saw $NON2XX non-2xx responses; the kernel counted ${k5:-?} 5xx of v$n"
	check "$name: wrk saw v$n's 500s ($NON2XX)" test "$NON2XX" -gt 0
	check "$name: every non-2xx wrk saw is a 500 the kernel counted ($NON2XX <= ${k5:-0})" \
		test "$NON2XX" -le "${k5:-0}"
	check "$name: and few more (requests wrk did not finish: ${k5:-0} <= $NON2XX + 20)" \
		test "${k5:-0}" -le $((NON2XX + 20))
}

# 1. 10% 500s: rolled back by min-success-rate after the first batch.
rollout bad 1 -- "$DEMO" --error-rate 10
check "bad: the reason gives the success rate, the bound and the count" \
	grep -Eq "rolled back to v1 \(4 instance\(s\) serving\): web v2 success [0-9.]+% < 99% over [0-9]+ responses \(min-success-rate\)" \
	"$T/deploy.bad"
rate=$(sed -n 's/.*web v2 success \([0-9.]*\)%.*/\1/p' "$T/deploy.bad" | head -1)
check "bad: the success rate is about 90% ($rate)" awk "BEGIN { exit !($rate >= 85 && $rate <= 95) }"
check "bad: the batch was held for a verdict" grep -q "v2 holds its next batch" "$T/agent.log"
reason=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
check "bad: status records the reason ($reason)" grep -q "(min-success-rate)" <<<"$reason"
after_batch_one bad 2 1

# 2. A healthy new version: a passing window before each next batch; completes.
rollout healthy 0 -- "$DEMO"
check_eq "healthy: no non-2xx responses" 0 "$NON2XX"
check_eq "healthy: v3 is active" 3 "$(active_version)"
check_eq "healthy: 4 v3 instances serve" 4 "$(serving 3)"
check "healthy: all 4 batches ran" grep -q "web: batch 4: starting 1 instance(s) of v3" \
	"$T/deploy.healthy"
passes=$(grep -c "web v3: latency gates pass: .*success 100.0% over [0-9]* responses" "$T/agent.log")
check "healthy: passing verdicts with the success rate between the batches ($passes)" \
	test "$passes" -ge 3

# 3. max-error-ratio against the old version, counted for the purpose.
mark=$(wc -l <"$T/agent.log")
sed -i "s/^min-success-rate.*/max-error-ratio = 2/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "ratio: reload takes max-error-ratio ($out)" grep -q "1 changed web" <<<"$out"
rollout ratio 1 -- "$DEMO" --error-rate 10
tail -n +"$((mark + 1))" "$T/agent.log" >"$T/agent.log.ratio"
check "ratio: the reason is the two-proportion test's against the old version" \
	grep -Eq "rolled back to v3 \(4 instance\(s\) serving\): web v4 5xx rate [0-9.]+% > 2 x active v3's [0-9.e+-]+% at 95% confidence \(p [0-9.e+-]+\) over [0-9]+ and [0-9]+ responses \(max-error-ratio\)" \
	"$T/deploy.ratio"
check "ratio: the old version was counted" \
	grep -q "web v3: measure-http: counting the status of its responses" "$T/agent.log.ratio"
after_batch_one ratio 4 3

# 4. dry-run: reported, never acted on.
mark=$(wc -l <"$T/agent.log")
sed -i "s/^max-error-ratio.*/min-success-rate = 99%\ngate-mode = dry-run/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "dry: reload takes gate-mode ($out)" grep -q "1 changed web" <<<"$out"
rollout dry 0 -- "$DEMO" --error-rate 10
check_eq "dry: v5 is active" 5 "$(active_version)"
check "dry: all 4 batches ran" grep -q "web: batch 4: starting 1 instance(s) of v5" "$T/deploy.dry"
check "dry: the log says it would roll back" \
	grep -q "web v5 success .* < 99% over .*would roll back (dry-run)" "$T/agent.log"
check "dry: wrk saw v5's 500s ($NON2XX)" test "$NON2XX" -gt 0
check_eq "dry: nothing rolled back" 0 "$(tail -n +"$((mark + 1))" "$T/agent.log" | grep -c "rolling back to")"
exit 0
