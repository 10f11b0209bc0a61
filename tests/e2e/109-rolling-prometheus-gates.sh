#!/bin/bash
# SPDX-License-Identifier: MIT
# Prometheus gates during rolling rollouts, against a real Prometheus
# (Debian's prometheus on loopback, config written here) scraping each
# demo-server instance's own /metrics port, under load (keep-alive and a new
# connection per request at once); instances = 2, max-surge 1 (two batches):
#  1. a new version answering 10% 500s is rolled back by a PromQL gate once
#     its first instance serves; 2 old instances serve again; no connection
#     fails (the 500s are the bad version's own answers);
#  2. a healthy version: batch 2 waits for the gate to pass, then completes;
#     zero failed requests of any class;
#  3. a gate over a metric that does not exist is inconclusive: batch 2 is
#     held, and the rollout rolls back at gate-timeout.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { not_ok "prometheus is not installed (tools/deps.sh)"; exit 1; }

PROM=127.0.0.1:9090
# Instance i of vN serves its metrics on 9300 + 10 N + i.
targets=$(for n in 1 2 3 4 5; do for i in 0 1; do printf "'127.0.0.1:%d'," $((9300 + 10 * n + i)); done; done)
cat >"$T/prom.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: web
    static_configs:
      - targets: [${targets%,}]
EOF
prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom" \
	--web.listen-address=$PROM --log.level=warn >>"$T/prom.log" 2>&1 &
EXTRA_PIDS="${EXTRA_PIDS:-} $!"
prom=no
for _ in $(seq "$(slow 300)"); do
	curl -s "http://$PROM/api/v1/query?query=up" 2>/dev/null |
		jq -e '.data.result | length > 0' >/dev/null 2>&1 && prom=yes && break
	sleep 0.1
done
check_eq "prometheus answers, scraping" yes $prom

cat >"$T/server" <<EOS
#!/bin/sh
exec "$DEMO" --metrics-listen "127.0.0.1:\$((9300 + 10 * \${BATON_VERSION#v} + BATON_INSTANCE))" "\$@"
EOS
chmod +x "$T/server"

RATE='sum(rate(http_requests_total{job="web",version="$VERSION",code=~"5.."}[4s])) / sum(rate(http_requests_total{job="web",version="$VERSION"}[4s]))'
# conf GATE: the rolling service with one gate.
conf() {
	EXEC="$T/server" write_conf "instances = 2" "ready = notify" "health = none" \
		"max-error-rate = off" "ready-timeout = $(slow 5)s" "steering = per-connection" \
		"health-interval = 1s" "health-timeout = 1s" "health-threshold = 2" \
		"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" \
		"backlog = 4096" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
		"gate-timeout = $(slow 8)s" "gate = $1"
	sed -i "/^run-dir/a prometheus = http://$PROM" "$T/web.conf"
}
conf "errors: $RATE < 0.05"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# No reset, overflow or failed migration.  Not TcpAttemptFails: Prometheus's
# scrapes of the metrics ports of versions not running are refused; a refused
# client connection is a wrk error (write), checked on its own.
check_tcp_clean() {
	local k
	for k in TcpEstabResets TcpExtListenOverflows TcpExtTCPMigrateReqFailure; do
		check_eq "$k" 0 "$(nstat_delta "$1" "$2" $k)"
	done
}
load_start() {
	nstat_snap "$T/nstat.before.$1"
	wrk_start "$T/wrk.ka.$1" -t1 -c10 -d120s --timeout 5s "$URL"
	KA=$WRK
	wrk_start "$T/wrk.cl.$1" -t1 -c5 -d120s --timeout 5s -H "Connection: close" "$URL"
}
load_stop() {
	sleep 0.5
	nstat_snap "$T/nstat.after.$1"
	wrk_stop
	WRK=$KA
	wrk_stop
	cat "$T/wrk.ka.$1" "$T/wrk.cl.$1"
}
ready_of() {
	"$BATON" status web --json |
		jq -r "[.[0].versions[] | select(.version == $1) | .processes[] | select(.alive and .ready)] | length"
}

# 1. 10% 500s: rolled back by the gate.
load_start bad
rc=0
timeout "$(slow 120)" "$BATON" deploy web -- "$T/server" --error-rate 10 >"$T/deploy.bad" 2>&1 || rc=$?
load_stop bad
cat "$T/deploy.bad"
check "10% 500s: the deploy fails" test $rc -ne 0
check "rolled back by the gate, with its value" \
	grep -Eq "rolled back to v1 .*gate errors failed 2 times in a row: errors = 0\.[0-9]+, fails < 0\.05" "$T/deploy.bad"
check_eq "v1 is active" 1 "$(active_version)"
check_eq "with 2 ready instances" 2 "$(ready_of 1)"
check "v2 exits" wait_gone 10 $(version_pids 2)
for w in ka cl; do
	for f in connect read write timeout; do
		check_eq "bad, $w: wrk $f errors" 0 "$(wrk_field "$T/wrk.$w.bad" $f)"
	done
done
check_tcp_clean "$T/nstat.before.bad" "$T/nstat.after.bad"

# 2. Healthy: batch 2 waits for a passing verdict, then it completes.
load_start good
rc=0
timeout "$(slow 120)" "$BATON" deploy web -- "$T/server" >"$T/deploy.good" 2>&1 || rc=$?
load_stop good
cat "$T/deploy.good"
check_eq "healthy: completes" 0 $rc
check_eq "v3 is active" 3 "$(active_version)"
check "batch 2 waited for the gate" grep -q "web v3: bake over; waiting for gate errors to pass" "$T/agent.log"
check "and went on when it passed" grep -q "web v3: every gate passes; next batch" "$T/agent.log"
check "the passing verdicts are in the event log" \
	jq -s -e 'any(.[]; .version == 3 and .event == "gate")' <("$BATON" events web --json)
check_wrk_clean "good, keep-alive" "$T/wrk.ka.good"
check_wrk_clean "good, connection-per-request" "$T/wrk.cl.good"
check_tcp_clean "$T/nstat.before.good" "$T/nstat.after.good"

# 3. A metric that does not exist: inconclusive, held, rolled back at gate-timeout.
conf 'missing: sum(rate(no_such_metric_total{version="$VERSION"}[4s])) < 1'
check "reload with the missing-metric gate" "$BATON" reload
load_start missing
rc=0
timeout "$(slow 120)" "$BATON" deploy web -- "$T/server" >"$T/deploy.missing" 2>&1 || rc=$?
load_stop missing
cat "$T/deploy.missing"
check "no data: the deploy fails" test $rc -ne 0
check "at gate-timeout, rolled back" \
	grep -q "rolled back to v3 .*gate missing did not pass within gate-timeout $(slow 8).0 s" "$T/deploy.missing"
check_eq "v3 is active" 3 "$(active_version)"
check_eq "with 2 ready instances" 2 "$(ready_of 3)"
check_wrk_clean "missing, keep-alive" "$T/wrk.ka.missing"
check_wrk_clean "missing, connection-per-request" "$T/wrk.cl.missing"
check_tcp_clean "$T/nstat.before.missing" "$T/nstat.after.missing"
