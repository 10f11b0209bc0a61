#!/bin/bash
# SPDX-License-Identifier: MIT
# A canary's fresh baseline (deploy --baseline, baseline = yes) and
# max-p99-ratio against it, under wrk load (keep-alive and a new connection
# per request), v1 answering in 20 ms:
#  1. --baseline with a canary 3x slower (60 ms): a fresh v1 (v3) starts
#     with it and takes the same share at each step; the canary is rolled
#     back by the rank test against the baseline, zero failed requests, and
#     the baseline is gone after;
#  2. baseline = yes (by reload) with a healthy canary: it completes, the
#     baseline's processes exit and it leaves status;
#  3. --baseline with bluegreen or rolling, or without a current version to
#     copy, is refused in one line and changes nothing.
. "$(dirname "$0")/lib.sh"

EXEC="$DEMO --delay-ms 20" write_conf "instances = 1" "ready = http" "health-path = /healthz" \
	"health-interval = 500ms" "health-timeout = $(slow 1)s" "health-threshold = 2" \
	"max-p99-ratio = 1.5" "min-samples = 50" "analysis-timeout = $(slow 8)s" \
	"ready-timeout = $(slow 5)s" "drain-policy = wait-then-signal" "drain-timeout = 5s" \
	"kill-after = 2s" "backlog = 4096" "steering = per-connection"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# canary NAME WANTRC DEPLOY-ARGS...: deploy under load, status sampled every
# 0.2 s while it runs; count failed requests.
canary() {
	local name=$1 want=$2 rc errs f w i
	shift 2
	wrk_start "$T/wrk.$name.ka" -t1 -c20 -d300s --timeout 5s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 0.5
	rc=0
	timeout "$(slow 120)" "$BATON" deploy web "$@" >"$T/deploy.$name" 2>&1 &
	local dep=$!
	: >"$T/status.$name.jsonl"
	for i in $(seq "$(slow 600)"); do
		running "$dep" || break
		"$BATON" status web --json | jq -c '.[0]' >>"$T/status.$name.jsonl"
		sleep 0.2
	done
	wait "$dep" || rc=$?
	cat "$T/deploy.$name"
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

# shares NAME CANARY BASE: while the rollout stepped, the baseline's weight
# was the canary's each time (steps up to 50%), and the old version had the rest.
shares() {
	local name=$1 c=$2 b=$3 n bad
	n=$(jq -s --argjson c "$c" --argjson b "$b" \
		'[.[] | select(.rollout != null and .rollout.stage == "shifting traffic") |
		  select(([.versions[] | select(.version == $b and .baseline == true)] | length) == 1)]
		 | length' "$T/status.$name.jsonl")
	bad=$(jq -s --argjson c "$c" --argjson b "$b" \
		'[.[] | select(.rollout != null and .rollout.stage == "shifting traffic") |
		  {cw: ([.versions[] | select(.version == $c) | .weight] | add),
		   bw: ([.versions[] | select(.version == $b) | .weight] | add),
		   all: ([.versions[] | .weight] | add)} |
		  select(.cw != .bw or .all != 10000)] | length' "$T/status.$name.jsonl")
	check "$name: status showed v$b as the baseline while stepping ($n samples)" test "$n" -gt 0
	check_eq "$name: the baseline's share was the canary's in every sample" 0 "$bad"
}

# gone NAME NUM: v NUM leaves status and its processes exit (bounded).
gone() {
	local name=$1 num=$2 pids i
	pids=$(jq -rs --argjson b "$num" \
		'[.[] | .versions[] | select(.version == $b) | .processes[].pid] | unique | .[]' \
		"$T/status.$name.jsonl")
	check "$name: the baseline's processes were seen (${pids//$'\n'/ })" test -n "$pids"
	for i in $(seq "$(slow 100)"); do
		[ "$("$BATON" status web --json | jq --argjson b "$num" '[.[0].versions[] | select(.version == $b)] | length')" = 0 ] && break
		sleep 0.1
	done
	check_eq "$name: v$num is gone from status" 0 \
		"$("$BATON" status web --json | jq --argjson b "$num" '[.[0].versions[] | select(.version == $b)] | length')"
	# shellcheck disable=SC2086
	check "$name: its processes exited" wait_gone 10 $pids
}

# 1. --baseline and a slow canary: rolled back against the baseline.
v1=$(active_version)
canary slow 1 --strategy canary --baseline --steps 25,50 --bake 30s -- "$DEMO" --delay-ms 60
check "slow: the reason compares with the baseline, with its numbers" \
	grep -Eq "rolled back to v$v1: web v2 response time > 1.5 x baseline v3's at 95% confidence \(rank test p [0-9.e+-]+; p99 [0-9.]+ ms vs [0-9.]+ ms\) over [0-9]+ and [0-9]+ requests \(max-p99-ratio\)" \
	"$T/deploy.slow"
check_eq "slow: v$v1 is active again" "$v1" "$(active_version)"
check "slow: the log says the baseline started" grep -q "starting baseline web v3 of web's current version v$v1" "$T/agent.log"
check "slow: the log says the baseline left" grep -q "baseline web v3 leaves with the rollout" "$T/agent.log"
# Rolled back within a second or two: the log, not status samples, shows its share.
check "slow: the baseline took the canary's share" \
	grep -q "web: v2 takes 25.00% of new connections (step 1 of 3), baseline v3 25.00%" "$T/agent.log"
gone slow 3
check "slow: the baseline ran v1's command" \
	jq -se '[.[] | .versions[] | select(.version == 3) | .command | join(" ")] | unique == ["'"$DEMO"' --delay-ms 20"]' \
	"$T/status.slow.jsonl"

# 2. baseline = yes (reload) and a healthy canary: completes, the baseline leaves.
sed -i "/^max-p99-ratio/a strategy = canary\nbaseline = yes" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "healthy: reload takes baseline = yes ($out)" grep -q "1 changed web" <<<"$out"
canary healthy 0 --steps 25,50 --bake 3s -- "$DEMO" --delay-ms 20
check_eq "healthy: v4 is active" 4 "$(active_version)"
check "healthy: the rank test passed against the baseline" \
	grep -q "web v4: latency gates pass: .*web v4 response time within 1.5 x baseline v5's" \
	"$T/agent.log"
shares healthy 4 5
check "healthy: at 50% the baseline took 50% too" \
	grep -q "web: v4 takes 50.00% of new connections (step 2 of 3), baseline v5 50.00%" "$T/agent.log"
gone healthy 5

# 3. Refused in one line, nothing changed.
before=$("$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]')
expect_err "--baseline with bluegreen: one line" "baseline belongs to --strategy canary" \
	"$BATON" deploy web --strategy bluegreen --baseline -- "$DEMO"
expect_err "--baseline with rolling: one line" "baseline belongs to --strategy canary" \
	"$BATON" deploy web --strategy rolling --baseline -- "$DEMO"
# The agent's own check, for clients other than the CLI.
out=$(python3 - "$BATON_CONTROL" "$DEMO" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(json.dumps({"cmd": "deploy", "service": "web", "argv": [sys.argv[2]],
                      "strategy": "rolling", "baseline": True}).encode() + b"\n")
print(s.makefile().readline().strip())
PY
)
echo "$out"
check "the agent refuses baseline with rolling" \
	grep -q "deploy: --baseline needs --strategy canary (a baseline takes a canary step's share; rolling has no steps)" <<<"$out"
check_eq "nothing changed" "$before" \
	"$("$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]')"
check "the agent still runs" kill -0 "$AGENT"
exit 0
