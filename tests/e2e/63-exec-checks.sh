#!/bin/bash
# SPDX-License-Identifier: MIT
# Exec checks: readiness by health-command (a version whose check fails never
# takes traffic and the deploy fails at ready-timeout; one whose check passes
# is switched to), then health = exec during a canary: a check that starts
# failing rolls the canary back.  The check sees BATON_PID, BATON_VERSION,
# BATON_INSTANCE and BATON_CHECK.
. "$(dirname "$0")/lib.sh"

cat >"$T/check.sh" <<EOS
#!/bin/sh
echo "\$BATON_CHECK \$BATON_VERSION \$BATON_INSTANCE \$BATON_PID" >>$T/checks.log
kill -0 "\$BATON_PID" || exit 9
exit \$(cat $T/rc.\$BATON_VERSION 2>/dev/null || echo 0)
EOS
chmod +x "$T/check.sh"
write_conf "instances = 2" "ready = exec" "health-command = $T/check.sh" \
	"health-interval = 200ms" "health-timeout = 1s" "health-threshold = 2" \
	"ready-timeout = 2s" "drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s"
start_agent || exit 1
URL=http://127.0.0.1:8080/
check "v1 became ready by its exec check" grep -q "^ready v1 0 " "$T/checks.log"
check "both instances were checked" grep -q "^ready v1 1 " "$T/checks.log"
pid=$(version_pids 1 | head -1)
check "the check was given the instance's pid" grep -q "^ready v1 [01] $pid$" "$T/checks.log"

echo 1 >"$T/rc.v2"
out=$("$BATON" deploy web -- "$DEMO" 2>&1); rc=$?
check "a failing exec readiness check fails the deploy" test $rc -ne 0
check "at ready-timeout" grep -q "not ready within ready-timeout 2000 ms" <<<"$out"
check "v2 was checked more than once" test "$(grep -c '^ready v2 ' "$T/checks.log")" -ge 2
check "v1 kept all traffic" only_version "$URL" v1 5

wrk_start "$T/wrk" -t1 -c20 -d300s --timeout 5s "$URL"
sleep 0.5
"$BATON" deploy web --steps 50 --bake 30s -- "$DEMO" >"$T/deploy.out" 2>&1 &
dep=$!
for _ in $(seq 50); do grep -q "^health v3 " "$T/checks.log" && break; sleep 0.1; done
check "v3 is health-checked during the canary" grep -q "^health v3 " "$T/checks.log"
echo 4 >"$T/rc.v3"
wait $dep; rc=$?
cat "$T/deploy.out"
check "a failing exec health check rolls the canary back" test $rc -ne 0
check "with the reason" grep -q "failed 2 health checks in a row (last: exited with status 4)" "$T/deploy.out"
check_eq "v1 is active" 1 "$(active_version)"
sleep 0.5
wrk_stop
for f in connect read write timeout non2xx; do
	check_eq "wrk $f errors" 0 "$(wrk_field "$T/wrk" $f)"
done
