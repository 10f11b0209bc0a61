#!/bin/bash
# SPDX-License-Identifier: MIT
# Prometheus metrics on [agent] metrics: promtool accepts the output, and the
# values match known traffic: connections per version, weights, steering
# counters, rollouts by result and rollbacks by reason.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "drain-policy = signal-then-wait" \
	"drain-timeout = 3s" "kill-after = 1s" "health = http" "health-path = /healthz" \
	"health-interval = 200ms" "health-threshold = 2"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
M=http://127.0.0.1:9464/metrics
metric() { curl -s "$M" | awk -v k="$1" '$1 == k {print $2}'; }

for _ in 1 2 3 4 5; do curl -s -o /dev/null http://127.0.0.1:8080/; done
curl -s "$M" >"$T/m1"
check "promtool accepts the output" promtool check metrics <"$T/m1"
check_eq "v1 accepted 5 connections" 5 \
	"$(metric 'baton_version_accepted_connections_total{service="web",version="v1"}')"
check_eq "v1 weight 1" 1.0000 "$(metric 'baton_version_weight_ratio{service="web",version="v1"}')"
check_eq "5 steered by weight" 5 "$(metric 'baton_steer_selected_total{service="web"}')"
check_eq "the first version counts as a completed rollout" 1 \
	"$(metric 'baton_rollouts_total{service="web",result="completed"}')"
check_eq "no event was dropped from the event log's file" 0 "$(metric baton_events_dropped_total)"
check_eq "no log line was dropped from stderr" 0 "$(metric baton_log_lines_dropped_total)"
check "the content type is Prometheus text 0.0.4" grep -qi "content-type: text/plain; version=0.0.4" \
	<<<"$(curl -si "$M")"
check_eq "other paths: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9464/)"

check "deploy v2" "$BATON" deploy web -- "$DEMO"
for _ in 1 2 3; do curl -s -o /dev/null http://127.0.0.1:8080/; done
check_eq "v2 accepted 3" 3 "$(metric 'baton_version_accepted_connections_total{service="web",version="v2"}')"
check_eq "v2 weight 1" 1.0000 "$(metric 'baton_version_weight_ratio{service="web",version="v2"}')"
check_eq "2 completed rollouts" 2 "$(metric 'baton_rollouts_total{service="web",result="completed"}')"

"$BATON" deploy web --steps 50 --bake 30s -- "$DEMO" --unhealthy-after-ms 300 >/dev/null 2>&1
check_eq "a health rollback is counted by reason" 1 \
	"$(metric 'baton_rollbacks_total{service="web",reason="health"}')"
check_eq "and as a rolled-back rollout" 1 \
	"$(metric 'baton_rollouts_total{service="web",result="rolled_back"}')"
curl -s "$M" >"$T/m2"
check "promtool accepts the output after a rollback" promtool check metrics <"$T/m2"
grep -c '^baton_' "$T/m2" | sed 's/^/series: /'
