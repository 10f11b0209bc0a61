#!/bin/bash
# SPDX-License-Identifier: MIT
# Rolling rollouts that must not go through, under wrk load (keep-alive and
# a new connection per request at once):
#  1. instance 1 of the new version never becomes ready (second batch): the
#     rollout rolls back, the old instance that had left starts again, 4
#     old instances serve, the deploy exits non-zero with the reason, zero
#     failed requests;
#  2. bad input (the issue's list): a one-line error each, nothing changed;
#  3. the agent is killed (kill -9) in the middle of a rolling rollout: the
#     restarted agent does not know which old instances left, so it rolls
#     back: the old version serves with 4 instances again.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 4" "ready = notify" "ready-timeout = $(slow 3)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" \
	"steering = per-connection" "strategy = rolling" "max-surge = 1" "max-unavailable = 0"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# The new build: its instance 1 never sends READY=1 (nor accepts).
cat >"$T/v2-bad" <<EOS
#!/bin/sh
[ "\$BATON_INSTANCE" = 1 ] && exec "$DEMO" --ready-delay-ms 600000
exec "$DEMO"
EOS
chmod +x "$T/v2-bad"

v1pids=$(version_pids 1 | sort)
nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
cl=$WRK
sleep 1
rc=0
timeout "$(slow 60)" "$BATON" deploy web -- "$T/v2-bad" >"$T/deploy" 2>&1 || rc=$?
cat "$T/deploy"
check "the deploy exits non-zero" test $rc -ne 0
check "with the reason" grep -q "rolled back to v1.*instance 1 (pid [0-9]*) not ready within ready-timeout" "$T/deploy"
check_eq "v1 is active" 1 "$(active_version)"
check_eq "v1 has 100%" 10000 "$("$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 1) | .weight')"
check_eq "4 instances of v1 run, all ready" 4 \
	"$("$BATON" status web --json | jq -r '[.[0].versions[] | select(.version == 1) | .processes[] | select(.alive and .ready)] | length')"
now=$(version_pids 1 | sort)
check_eq "3 of the 4 old processes are the ones that never left" 3 "$(comm -12 <(echo "$v1pids") <(echo "$now") | wc -l)"
check "v2 exits" wait_gone 10 $(version_pids 2)
check "the rollback is the last one status shows" test "$("$BATON" status web --json | jq -r '.[0].last_rollback.version')" = 2
check "new connections reach v1 only" only_version "$URL" v1 10
sleep 0.5
nstat_snap "$T/nstat.after"
wrk_stop; WRK=$ka; wrk_stop
cat "$T/wrk.ka" "$T/wrk.cl"
check_wrk_clean "keep-alive" "$T/wrk.ka"
check_wrk_clean "connection-per-request" "$T/wrk.cl"
check_tcp_clean "$T/nstat.before" "$T/nstat.after"

# Bad input: one line each, and nothing changes (no version is made).
before=$("$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]')
expect_err "max-surge and max-unavailable both 0" "both 0" \
	"$BATON" deploy web --max-surge 0 --max-unavailable 0 -- "$DEMO"
expect_err "max-surge above instances" "max-surge 5 is above instances (4)" \
	"$BATON" deploy web --max-surge 5 -- "$DEMO"
expect_err "max-unavailable above instances" "max-unavailable 9 is above instances (4)" \
	"$BATON" deploy web --max-unavailable 9 -- "$DEMO"
expect_err "max-unavailable of every instance" "would leave none serving" \
	"$BATON" deploy web --max-unavailable 100% -- "$DEMO"
expect_err "not a count" "--max-surge: \"two\" is not a count" \
	"$BATON" deploy web --max-surge two -- "$DEMO"
expect_err "rolling options with canary" "belong to --strategy rolling" \
	"$BATON" deploy web --strategy canary --max-surge 1 -- "$DEMO"
check_eq "nothing changed" "$before" "$("$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]')"
# instances = 1 with max-surge = 0 would take the service down: the config is refused.
sed -e 's/^instances = 4/instances = 1/' -e 's/^max-surge = 1/max-surge = 0/' \
	-e 's/^max-unavailable = 0/max-unavailable = 1/' "$T/web.conf" >"$T/one.conf"
expect_err "instances = 1, max-surge = 0" "max-surge 0 with max-unavailable 1 of 1 instance(s) would take the service down" \
	"$BATON" agent -n -f "$T/one.conf"

# 3. kill -9 of the agent mid-rollout (pause 30 s holds it after batch 1).
active=$(active_version)
"$BATON" deploy web --pause 30s -- "$DEMO" >"$T/deploy.restart" 2>&1 &
dep=$!
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status web --json | jq -r '.[0].rollout.rolling.new.serving // 0')" = 1 ] && break
	sleep 0.1
done
check_eq "one new instance serves before the restart" 1 \
	"$("$BATON" status web --json | jq -r '.[0].rollout.rolling.new.serving // 0')"
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
wait "$dep" 2>/dev/null
start_agent >/dev/null
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status web --json | jq -r '.[0].rollout')" = null ] && break
	sleep 0.1
done
check_eq "after the restart v$active is active" "$active" "$(active_version)"
check_eq "with 4 ready instances" 4 \
	"$("$BATON" status web --json | jq -r "[.[0].versions[] | select(.version == $active) | .processes[] | select(.alive and .ready)] | length")"
check "the rollback says why" sh -c "'$BATON' status web --json | jq -r '.[0].last_rollback.reason' | grep -q 'agent restarted during the rolling rollout'"
