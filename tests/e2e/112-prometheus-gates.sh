#!/bin/bash
# SPDX-License-Identifier: MIT
# Prometheus gates against a real Prometheus (Debian's prometheus, started
# here on loopback with a config written here), scraping each demo-server
# version's own /metrics port (--metrics-listen) and baton's /metrics, under
# load (a new connection per request, steering = per-connection):
#  1. a canary answering 10% 500s is rolled back by a PromQL gate; the
#     verdict and its value are in status, metrics, events and the reason;
#  2. a healthy canary completes;
#  3. a gate over a metric that does not exist is inconclusive: the step
#     waits, and the rollout fails at gate-timeout;
#  4. Prometheus stopped mid-rollout: inconclusive, not a pass;
#  5. gate-dry-run: a failing gate is reported, nothing rolls back;
#  6. bad input: one-line errors; an unreachable Prometheus is a warning.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { not_ok "prometheus is not installed (tools/deps.sh)"; exit 1; }

PROM=127.0.0.1:9090
cat >"$T/prom.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: web
    static_configs:
      - targets: ['127.0.0.1:9201', '127.0.0.1:9202', '127.0.0.1:9203', '127.0.0.1:9204',
                  '127.0.0.1:9205', '127.0.0.1:9206', '127.0.0.1:9207']
  - job_name: baton
    static_configs:
      - targets: ['127.0.0.1:9464']
EOF
prom_start() {
	prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom" \
		--web.listen-address=$PROM --log.level=warn >>"$T/prom.log" 2>&1 &
	PROMPID=$!
	EXTRA_PIDS="${EXTRA_PIDS:-} $PROMPID"
	# Ready, and scraping (a first scrape comes up to an interval later).
	for _ in $(seq "$(slow 100)"); do
		curl -s "http://$PROM/api/v1/query?query=up" 2>/dev/null |
			jq -e '.data.result | length > 0' >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "prometheus did not start: $(tail -5 "$T/prom.log")"
	return 1
}
prom_start || exit 1

RATE='sum(rate(http_requests_total{job="web",version="$VERSION",code=~"5.."}[4s])) / sum(rate(http_requests_total{job="web",version="$VERSION"}[4s]))'
# conf [extra lines]: the service with the error gate, metrics on, plus the lines given.
conf() {
	EXEC="$DEMO --metrics-listen 127.0.0.1:9201" write_conf "instances = 1" "ready = notify" "health = none" "max-error-rate = off" \
		"ready-timeout = $(slow 5)s" "steering = per-connection" "health-interval = 1s" \
		"health-timeout = 1s" "health-threshold = 2" "drain-policy = signal-then-wait" \
		"drain-timeout = 2s" "kill-after = 1s" "gate-timeout = $(slow 8)s" \
		"gate = errors: $RATE < 0.05" "$@"
	sed -i "/^run-dir/a metrics = 127.0.0.1:9464\nprometheus = http://$PROM" "$T/web.conf"
}
conf
start_agent || exit 1
check "the agent found Prometheus" grep -q "prometheus http://$PROM answers" "$T/agent.log"

URL=http://127.0.0.1:8080/
load_start() { wrk_start "$T/wrk.$1" -t1 -c2 -d120s --timeout 5s -H "Connection: close" "$URL"; }
load_stop() { wrk_stop; }
# deploy_canary NAME PORT [demo-server args]: a canary with its own metrics port, under load.
deploy_canary() {
	local name=$1 port=$2 rc=0
	shift 2
	load_start "$name"
	timeout 120 "$BATON" deploy web --steps 30 --bake "${BAKE:-6s}" -- "$DEMO" \
		--metrics-listen "127.0.0.1:$port" "$@" >"$T/deploy.$name" 2>&1 || rc=$?
	load_stop
	cat "$T/deploy.$name"
	return $rc
}

# 1. 10% 500s: rolled back by the gate.  Status and metrics are read while it runs.
# Status and metrics while the gate has a failing verdict (each polled, bounded).
(
	for _ in $(seq "$(slow 100)"); do
		"$BATON" status web --json >"$T/status.bad"
		[ "$(jq -r '.[0].rollout.gates[0].verdict // empty' "$T/status.bad")" = fail ] && break
		sleep 0.1
	done
) &
SNAP=$!
(
	for _ in $(seq "$(slow 300)"); do
		curl -s --max-time 1 http://127.0.0.1:9464/metrics >"$T/metrics.bad.now"
		grep -q '^baton_gate_verdicts{service="web",version="2",gate="errors",verdict="fail"} [1-9]' \
			"$T/metrics.bad.now" && cp "$T/metrics.bad.now" "$T/metrics.bad" && break
		sleep 0.05
	done
) &
SNAP2=$!
rc=0
deploy_canary bad 9202 --error-rate 10 || rc=$?
wait $SNAP $SNAP2
check "10% 500s: the deploy fails" test $rc -ne 0
check "rolled back by the gate, with its value" \
	grep -Eq "rolled back to v1: gate errors failed 2 times in a row: errors = 0\.[0-9]+, fails < 0\.05" "$T/deploy.bad"
check_eq "v1 is active" 1 "$(active_version)"
jq -c '.[0].rollout.gates' "$T/status.bad"
check "status shows the gate's verdict and value" \
	jq -e '.[0].rollout.gates[0] | .name == "errors" and .verdict == "fail" and .value > 0.05 and .threshold == 0.05' "$T/status.bad"
check "metrics show the gate's failing value" \
	grep -Eq '^baton_gate_value\{service="web",version="2",gate="errors"\} 0\.(0[5-9]|[1-9])' "$T/metrics.bad"
check "the event log has the failing verdicts" \
	jq -s -e 'any(.[]; .version == 2 and .event == "gate" and (.reason | test("errors = 0\\.[0-9]+, fails")))' \
	<("$BATON" events web --json)
check "and the reason of the rollback" \
	jq -s -e 'any(.[]; .version == 2 and .event == "rolled-back" and (.text | test("\\(gate\\)")))' \
	<("$BATON" events web --json)
# The rollback counted by baton reaches Prometheus at its next scrape (every
# 1 s): wait for it, within a few intervals.
prom_has_rollback() {
	local i
	for i in $(seq "$(slow 50)"); do
		curl -s "http://$PROM/api/v1/query?query=baton_rollbacks_total%7Breason%3D%22gate%22%7D" |
			jq -e '.data.result[0].value[1] == "1"' >/dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "Prometheus scraped baton's own metrics" prom_has_rollback

# 2. A healthy canary completes, with a latency gate beside the PromQL one:
# status has both, each under its own key (the latency verdict's text was
# once overwritten by the Prometheus array), and the text view shows both.
conf "max-p99 = 5s" "min-samples = 5"
check "reload with a latency gate too" "$BATON" reload
(
	for _ in $(seq "$(slow 200)"); do
		"$BATON" status web --json >"$T/status.both"
		jq -e '.[0].rollout | (.latency_gates | type == "string" and startswith("pass")) and
			(.gates[0].verdict == "pass")' "$T/status.both" >/dev/null 2>&1 &&
			"$BATON" status web >"$T/status.both.txt" && break
		sleep 0.1
	done
) &
SNAP=$!
check "a healthy canary completes" deploy_canary good 9203
wait $SNAP
check_eq "v3 is active" 3 "$(active_version)"
check "its gate passed" grep -q "event=gate version=3 .*errors = 0, passes < 0.05" "$T/agent.log"
jq -c '.[0].rollout | {latency_gates, gates}' "$T/status.both"
check "status --json: the latency gates' verdict (text) and the Prometheus gates (array), both" \
	jq -e '.[0].rollout | (.latency_gates | test("^pass: .*p99")) and (.gates | type == "array") and
		.gates[0].name == "errors" and .gates[0].verdict == "pass" and .gates[0].value == 0' \
	"$T/status.both"
cat "$T/status.both.txt"
check "status: a latency gates line" grep -q "latency gates: pass: " "$T/status.both.txt"
check "status: the Prometheus gate's line with its value and threshold" \
	grep -Eq "gate errors: pass, 0 < 0.05 \([0-9]+ passed, 0 failed, [0-9]+ inconclusive\)" "$T/status.both.txt"

# 3. A metric that does not exist: inconclusive, the step waits, fails at gate-timeout.
conf "gate = ghost: sum(rate(no_such_metric_total{version=\"\$VERSION\"}[4s])) < 1"
check "reload with the ghost gate" "$BATON" reload
t0=$SECONDS
rc=0
# While the step waits for the ghost gate, the text view says for what, until when.
(
	for _ in $(seq "$(slow 200)"); do
		"$BATON" status web --json >"$T/status.hold"
		jq -e '.[0].rollout.hold | .for == "gates" and (.last | test("ghost"))' "$T/status.hold" >/dev/null 2>&1 &&
			"$BATON" status web >"$T/status.hold.txt" && break
		sleep 0.1
	done
) &
SNAP=$!
deploy_canary ghost 9204 || rc=$?
wait $SNAP
check "the ghost gate: the deploy fails" test $rc -ne 0
check "at gate-timeout, inconclusive: no data" \
	grep -q "rolled back to v3: gate ghost did not pass within gate-timeout $(slow 8).0 s (last: ghost: no data (inconclusive))" "$T/deploy.ghost"
check "within bake + gate-timeout + a few seconds ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le $((6 + $(slow 8) + 6))
check_eq "v3 is still active" 3 "$(active_version)"
jq -c '.[0].rollout.hold' "$T/status.hold"
check "status --json: held for the gates, with its deadline and the last verdict" \
	jq -e '.[0].rollout.hold | .what == "every Prometheus gate to pass" and .left_ms > 0 and
		.left_ms <= '"$(slow 8)"'000 and (.until | test("Z$")) and
		(.last | test("gate ghost: ghost: no data"))' "$T/status.hold"
grep waiting "$T/status.hold.txt"
check "status: the hold's line" grep -Eq "waiting for every Prometheus gate to pass, held [0-9.]+ s, until .*Z \([0-9.]+ s left, then rolled back\); last: gate ghost: ghost: no data" "$T/status.hold.txt"

# 4. Prometheus stopped mid-rollout: inconclusive, never a pass.
conf
check "reload without the ghost gate" "$BATON" reload
load_start stop
# Two steps: Prometheus goes while the rollout still has a bake to end.
timeout 120 "$BATON" deploy web --steps 30,60 --bake 8s -- "$DEMO" --metrics-listen 127.0.0.1:9205 \
	>"$T/deploy.stop" 2>&1 &
DEP=$!
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status web --json | jq -r '.[0].rollout.gates[0].verdict // empty')" = pass ] && break
	sleep 0.1
done
check_eq "the gate passed while Prometheus ran" pass \
	"$("$BATON" status web --json | jq -r '.[0].rollout.gates[0].verdict // empty')"
kill "$PROMPID"
wait "$PROMPID" 2>/dev/null
check_eq "Prometheus stopped while the rollout shifts traffic" "shifting traffic" \
	"$("$BATON" status web --json | jq -r '.[0].rollout.stage // empty')"
rc=0
wait $DEP || rc=$?
load_stop
cat "$T/deploy.stop"
check "Prometheus gone: the deploy fails, not passes" test $rc -ne 0
check "the reason: inconclusive, Prometheus unreachable" \
	grep -q "gate errors did not pass within gate-timeout .*Prometheus: Couldn't connect to server (inconclusive)" "$T/deploy.stop"
check_eq "v3 is still active" 3 "$(active_version)"
prom_start || exit 1

# 5. Dry-run: the failing canary is reported, and completes.
conf "gate-dry-run = yes"
check "reload with gate-dry-run" "$BATON" reload
BAKE=10s check "dry-run: the failing canary completes" deploy_canary dry 9206 --error-rate 10
check "its failing verdicts were logged as dry-run" grep -q "gate errors fails: .*(dry-run)" "$T/agent.log"

# 6. Bad input.
bad() {
	local d=$1 pat=$2 out
	shift 2
	conf "$@"
	out=$("$BATON" agent -n -f "$T/web.conf" 2>&1)
	if [ $? -ne 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q -- "$pat" <<<"$out"; then
		ok "$d: $out"
	else
		not_ok "$d: $out"
	fi
	check "$d: reload refused" grep -q "reload refused" <<<"$("$BATON" reload 2>&1)"
}
bad "gate without operator" "needs <PromQL> <op> <threshold>" "gate = lat: histogram_quantile(0.99, x) 0.3"
bad "gate without threshold" "needs <PromQL> <op> <threshold>" "gate = lat: up <"
bad "unknown template variable" 'unknown template variable \$CANARY' "gate = x: up{version=\"\$CANARY\"} > 0"
bad "gate without a name" "must be NAME:" "gate = up > 0"
conf
sed -i "s|^prometheus = .*|prometheus = http://127.0.0.1:9|" "$T/web.conf"
out=$("$BATON" agent -n -f "$T/web.conf" 2>&1)
rc=$?
echo "$out"
check_eq "an unreachable Prometheus is not a refusal" 0 $rc
check "but a one-line warning" grep -q "^baton: warning: prometheus http://127.0.0.1:9 does not answer" <<<"$out"
sed -i "/^prometheus = /d" "$T/web.conf"
out=$("$BATON" agent -n -f "$T/web.conf" 2>&1)
check "gates without prometheus: refused" grep -q "has gates but no Prometheus to ask (add prometheus = http://HOST:9090 to \[agent\])" <<<"$out"
check_eq "nothing changed: v6 active" 6 "$(active_version)"
