#!/bin/bash
# SPDX-License-Identifier: MIT
# measure-http and the HTTP gates of a canary, under wrk load (keep-alive,
# and a new connection per request, which is what reaches a canary with
# per-connection steering):
#  1. a canary answering 10% of requests with 500 (demo --error-rate 10) is
#     rolled back by min-success-rate = 99%, with the numbers in the
#     deploy's exit reason, status and the log; while it runs, status
#     --json and /metrics show its counts (promtool clean); wrk saw no
#     failure but the 500s the canary served, and the kernel counted each;
#  2. a healthy canary completes, its verdicts giving its success rate;
#  3. max-error-ratio = 2 against a fresh baseline (deploy --baseline): the
#     same bad canary is rolled back by the two-proportion test;
#  4. gate-mode = dry-run (by reload): the bad canary completes, the log
#     says what the gate would have done;
#  5. bad settings are refused in one line, and the agent keeps running.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = http" "health-path = /healthz" "health-interval = 500ms" \
	"health-timeout = $(slow 1)s" "health-threshold = 2" "measure-http = yes" \
	"min-success-rate = 99%" "min-samples = 50" "analysis-timeout = $(slow 10)s" \
	"ready-timeout = $(slow 5)s" "drain-policy = wait-then-signal" "drain-timeout = 5s" \
	"kill-after = 2s" "backlog = 4096" "steering = per-connection"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
URL=http://127.0.0.1:8080/
M=http://127.0.0.1:9464/metrics

if grep -q "measure-http needs\|drain-http: cannot\|versions drain without it" "$T/agent.log"; then
	cat "$T/agent.log"
	not_ok "this kernel runs measure-http"
	exit 1
fi

# The 5xx the kernel counted for version N, from the line logged when it is gone (a
# rolled-back canary is counted until then: it still answers the connections it has).
kernel_5xx() {
	local i
	for i in $(seq "$(slow 150)"); do
		grep -q "web v$1: measure-http: no longer counted" "$T/agent.log" && break
		sleep 0.1
	done
	sed -n "s/.*web v$1: measure-http: no longer counted; [0-9]* final responses, \([0-9]*\) 5xx.*/\1/p" \
		"$T/agent.log" | tail -1
}

# canary NAME WANTRC DEPLOY-ARGS...: deploy under load; status --json and
# /metrics are taken while the canary is counted; failed requests counted.
canary() {
	local name=$1 want=$2 rc dpid f w j i
	shift 2
	wrk_start "$T/wrk.$name.ka" -t1 -c10 -d300s --timeout 5s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 0.5
	timeout "$(slow 120)" "$BATON" deploy web "$@" >"$T/deploy.$name" 2>&1 &
	dpid=$!
	LOAD_PIDS="${LOAD_PIDS:-} $dpid"
	: >"$T/http.$name"
	for i in $(seq "$(slow 100)"); do
		j=$("$BATON" status web --json | jq -c '[.[0].versions[] | select(.http != null) | {version, http}]')
		if [ "$(jq '[.[] | .http.responses] | max // 0' <<<"$j")" -gt 20 ]; then
			echo "$j" >"$T/http.$name"
			curl -s "$M" >"$T/m.$name"
			"$BATON" status web >"$T/text.$name"
			break
		fi
		running "$dpid" || break
		sleep 0.1
	done
	rc=0
	wait "$dpid" || rc=$?
	cat "$T/deploy.$name"
	"$BATON" status web | tee "$T/status.$name"
	WRK=$ka wrk_stop
	WRK=$cl wrk_stop
	cat "$T/wrk.$name.ka" "$T/wrk.$name.cl"
	ERRS=0
	NON2XX=0
	for w in ka cl; do
		for f in connect read write timeout; do
			ERRS=$((ERRS + $(wrk_field "$T/wrk.$name.$w" $f)))
		done
		NON2XX=$((NON2XX + $(wrk_field "$T/wrk.$name.$w" non2xx)))
	done
	check "$name: real load ($(wrk_field "$T/wrk.$name.cl" requests) new-connection requests)" \
		test "$(wrk_field "$T/wrk.$name.cl" requests)" -gt 300
	check_eq "$name: no connect, read, write or timeout errors" 0 "$ERRS"
	if [ "$want" = 0 ]; then
		check_eq "$name: the deploy succeeds" 0 "$rc"
	else
		check "$name: the deploy exits non-zero ($rc)" test "$rc" -ne 0
	fi
}

# 1. 10% 500s: rolled back by min-success-rate.
v1=$(active_version)
canary bad 1 --strategy canary --steps 25,50 --bake 30s -- "$DEMO" --error-rate 10
check "bad: the reason gives the success rate, the bound and the count" \
	grep -Eq "rolled back to v$v1: web v2 success [0-9.]+% < 99% over [0-9]+ responses \(min-success-rate\)" \
	"$T/deploy.bad"
rate=$(sed -n 's/.*web v2 success \([0-9.]*\)%.*/\1/p' "$T/deploy.bad" | head -1)
check "bad: the success rate is about 90% ($rate)" awk "BEGIN { exit !($rate >= 85 && $rate <= 95) }"
check_eq "bad: v$v1 is active again" "$v1" "$(active_version)"
reason=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
check "bad: status records the reason ($reason)" grep -q "(min-success-rate)" <<<"$reason"
curl -s "$M" >"$T/m1"
check "bad: metrics count the http rollback" \
	grep -q 'baton_rollbacks_total{service="web",reason="http"} 1' "$T/m1"
check "bad: the log has the failing verdicts" grep -q "web v2 success .* < 99% over" "$T/agent.log"
k5=$(kernel_5xx 2)
echo "wrk saw $NON2XX non-2xx responses; the kernel counted ${k5:-?} 5xx of v2"
check "bad: wrk saw the canary's 500s ($NON2XX)" test "$NON2XX" -gt 0
check "bad: every non-2xx wrk saw is a 500 the kernel counted ($NON2XX <= ${k5:-0})" \
	test "$NON2XX" -le "${k5:-0}"
check "bad: and few more (requests wrk did not finish: $k5 <= $NON2XX + 20)" \
	test "${k5:-0}" -le $((NON2XX + 20))
check "bad: v2 is no longer counted" \
	test "$("$BATON" status web --json | jq '[.[0].versions[] | select(.http != null)] | length')" -eq 0

# 2. A healthy canary completes.
canary healthy 0 --strategy canary --steps 25,50 --bake "$(slow 5)s" -- "$DEMO"
check_eq "healthy: no non-2xx responses" 0 "$NON2XX"
check_eq "healthy: v3 is active" 3 "$(active_version)"
check "healthy: the log has passing verdicts with the success rate" \
	grep -q "web v3: latency gates pass: .*success 100.0% over [0-9]* responses" "$T/agent.log"
cat "$T/http.healthy"
grep "^baton_version_http_responses_total" "$T/m.healthy"
check "healthy: status --json had v3's counts, all 2xx" \
	test "$(jq '[.[] | select(.version == 3 and .http["5xx"] == 0 and .http["2xx"] > 20)] | length' \
		"$T/http.healthy")" -eq 1
check "healthy: only v3 was counted (the active version keeps its plain path)" \
	test "$(jq '[.[] | select(.version != 3)] | length' "$T/http.healthy")" -eq 0
check "healthy: /metrics had v3's 2xx" \
	grep -Eq '^baton_version_http_responses_total\{service="web",version="v3",class="2xx"\} [1-9]' \
	"$T/m.healthy"
check "healthy: promtool accepts /metrics" promtool check metrics <"$T/m.healthy"
check_eq "healthy: /metrics counts v3's gate windows by verdict" "pass fail inconclusive" \
	"$(sed -n 's/^baton_latency_gate_windows{service="web",version="3",verdict="\([a-z]*\)"} [0-9]*$/\1/p' \
		"$T/m.healthy" | tr '\n' ' ' | sed 's/ $//')"
cat "$T/text.healthy"
check "healthy: status shows v3's counts" \
	grep -Eq "http \(measure-http\): [0-9]+ responses, success 100.0%: 2xx [0-9]+ 3xx 0 4xx 0 5xx 0" \
	"$T/text.healthy"

# 3. max-error-ratio against a fresh baseline.
not_grep() { ! grep -q "$@"; }
mark=$(wc -l <"$T/agent.log")
sed -i "s/^min-success-rate.*/max-error-ratio = 2/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "ratio: reload takes max-error-ratio ($out)" grep -q "1 changed web" <<<"$out"
canary ratio 1 --strategy canary --steps 25,50 --bake 30s --baseline -- "$DEMO" --error-rate 10
tail -n +"$((mark + 1))" "$T/agent.log" >"$T/agent.log.ratio"
check "ratio: the reason is the two-proportion test's, with its numbers" \
	grep -Eq "rolled back to v3: web v4 5xx rate [0-9.]+% > 2 x baseline v5's [0-9.e+-]+% at 95% confidence \(p [0-9.e+-]+\) over [0-9]+ and [0-9]+ responses \(max-error-ratio\)" \
	"$T/deploy.ratio"
check "ratio: the baseline was counted too" \
	grep -q "web v5: measure-http: counting the status of its responses" "$T/agent.log"
check "ratio: and the active version was not" \
	not_grep "web v3: measure-http: counting the status of its responses" "$T/agent.log.ratio"
check_eq "ratio: v3 is active again" 3 "$(active_version)"

# 4. dry-run: reported, never acted on.
sed -i "s/^max-error-ratio.*/min-success-rate = 99%\ngate-mode = dry-run/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "dry: reload takes gate-mode ($out)" grep -q "1 changed web" <<<"$out"
canary dry 0 --strategy canary --steps 25,50 --bake 4s -- "$DEMO" --error-rate 10
check_eq "dry: v6 is active" 6 "$(active_version)"
check "dry: the log says it would roll back" \
	grep -q "web v6 success .* < 99% over .*would roll back (dry-run)" "$T/agent.log"
curl -s "$M" >"$T/m2"
check "dry: no rollback counted (two so far: bad and ratio)" \
	grep -q 'baton_rollbacks_total{service="web",reason="http"} 2' "$T/m2"
check "dry: status --json had v6's 5xx" \
	test "$(jq '[.[] | select(.version == 6) | .http["5xx"]] | max // 0' "$T/http.dry")" -gt 0
check "dry: /metrics had v6's 5xx" \
	grep -Eq '^baton_version_http_responses_total\{service="web",version="v6",class="5xx"\} [1-9]' \
	"$T/m.dry"

# 5. Bad settings: one line each, nothing changes.
for bad in "min-success-rate = 99" "min-success-rate = 0%" "min-success-rate = 101%" \
	"max-error-ratio = 1" "max-error-ratio = lots" "measure-http = perhaps" \
	"measure-http = no|min-success-rate = 99%" "measure-http = no|max-error-ratio = 2"; do
	sed '/^measure-http\|^min-success-rate\|^max-error-ratio\|^gate-mode/d' "$T/web.conf" >"$T/bad.conf"
	IFS='|' read -ra lines <<<"$bad"
	for l in "${lines[@]}"; do
		sed -i "/^\[service web\]/a $l" "$T/bad.conf"
	done
	out=$("$BATON" agent -n -f "$T/bad.conf" 2>&1)
	rc=$?
	echo "$bad -> $out"
	check "bad '$bad': refused" test $rc -ne 0
	check_eq "bad '$bad': one line" 1 "$(printf '%s\n' "$out" | wc -l)"
	key=${lines[-1]%% *}
	check "bad '$bad': names the key" grep -q "$key" <<<"$out"
done
sed -i "s/^min-success-rate.*/min-success-rate = 50/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "a reload with a bare number is refused ($out)" grep -q "min-success-rate needs a unit" <<<"$out"
check_eq "after the refused reload v6 is still active" 6 "$(active_version)"
check "the agent still runs" kill -0 "$AGENT"
exit 0
