#!/bin/bash
# SPDX-License-Identifier: MIT
# Rollout hooks: before-start, after-switch and after-drain run in that order
# with BATON_* in their environment, after-drain only once the old version
# has exited; a failing before-start hook starts nothing; a failing or hung
# after-switch hook rolls back under wrk load with zero failed requests.
. "$(dirname "$0")/lib.sh"

# The hook logs its name, versions and the old version's pids still alive,
# then exits with the status in $T/rc.HOOK (default 0), after $T/sleep.HOOK s.
cat >"$T/hook.sh" <<EOS
#!/bin/sh
alive=\$(for p in \$(cat $T/oldpids 2>/dev/null); do kill -0 \$p 2>/dev/null && echo \$p; done | wc -l)
echo "\$BATON_HOOK \$BATON_SERVICE \$BATON_VERSION prev=\$BATON_PREVIOUS_VERSION old_alive=\$alive" >>$T/hooks.log
[ -f $T/sleep.\$BATON_HOOK ] && sleep \$(cat $T/sleep.\$BATON_HOOK)
exit \$(cat $T/rc.\$BATON_HOOK 2>/dev/null || echo 0)
EOS
chmod +x "$T/hook.sh"
write_conf "instances = 1" "ready = notify" "ready-timeout = 5s" \
	"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" \
	"before-start = $T/hook.sh" "after-switch = $T/hook.sh" "after-drain = $T/hook.sh" \
	"hook-timeout = 2s"
start_agent || exit 1
URL=http://127.0.0.1:8080/

version_pids 1 >"$T/oldpids"
check "deploy v2 with three passing hooks" "$BATON" deploy web -- "$DEMO"
cat "$T/hooks.log"
check_eq "hooks ran in order" "before-start after-switch after-drain" \
	"$(awk '{print $1}' "$T/hooks.log" | paste -sd' ')"
check_eq "hooks see the service and both versions" 3 \
	"$(grep -c 'web v2 prev=v1' "$T/hooks.log")"
check "before-start ran while v1 was running" grep -q '^before-start .* old_alive=1$' "$T/hooks.log"
check "after-switch ran while v1 was kept" grep -q '^after-switch .* old_alive=1$' "$T/hooks.log"
check "after-drain ran after v1 exited" grep -q '^after-drain .* old_alive=0$' "$T/hooks.log"
check "v2 serves" only_version "$URL" v2 5

: >"$T/hooks.log"
echo 1 >"$T/rc.before-start"
out=$("$BATON" deploy web -- "$DEMO" 2>&1); rc=$?
check "a failing before-start hook fails the deploy" test $rc -ne 0
check "and says so" grep -q "before-start hook failed: exited with status 1" <<<"$out"
check_eq "no other hook ran" "before-start" "$(awk '{print $1}' "$T/hooks.log" | paste -sd' ')"
check_eq "nothing was started (only v2 runs)" "2" \
	"$("$BATON" status web --json | jq -r '[.[0].versions[].version] | map(tostring) | join(" ")')"
check "v2 still serves" only_version "$URL" v2 5
rm -f "$T/rc.before-start"

# A hook that cannot start (its execve fails in the child: no shebang, not ELF).
cp "$T/hook.sh" "$T/hook.sh.good"
printf 'not a program\n' >"$T/hook.sh"
out=$("$BATON" deploy web -- "$DEMO" 2>&1); rc=$?
check "a before-start hook that cannot start fails the deploy" test $rc -ne 0
check "and says why" grep -q "before-start hook failed: cannot start $T/hook.sh: exec: Exec format error" <<<"$out"
check_eq "nothing was started (only v2 runs)" "2" \
	"$("$BATON" status web --json | jq -r '[.[0].versions[].version] | map(tostring) | join(" ")')"
cat "$T/hook.sh.good" >"$T/hook.sh"

# after-switch fails (then: hangs past hook-timeout) while wrk runs.
for mode in fail hang; do
	: >"$T/hooks.log"
	if [ $mode = fail ]; then echo 2 >"$T/rc.after-switch"; else echo 10 >"$T/sleep.after-switch"; fi
	old=$(active_version)
	version_pids "$old" >"$T/oldpids"
	nstat_snap "$T/nstat.before"
	wrk_start "$T/wrk.$mode" -t2 -c40 -d300s --timeout 5s "$URL"
	sleep 0.5
	out=$("$BATON" deploy web -- "$DEMO" 2>&1); rc=$?
	echo "$out"
	check "$mode: a failing after-switch hook fails the deploy" test $rc -ne 0
	if [ $mode = fail ]; then
		check "$mode: with the reason" grep -q "after-switch hook failed: exited with status 2" <<<"$out"
	else
		check "$mode: with the reason" grep -q "after-switch hook failed: did not finish within hook-timeout 2000 ms" <<<"$out"
	fi
	check "$mode: and the rollback" grep -q "rolled back to v$old" <<<"$out"
	check_eq "$mode: v$old is active again" "$old" "$(active_version)"
	check "$mode: new connections reach v$old" only_version "$URL" "v$old" 10
	check_eq "$mode: after-drain did not run" 0 "$(grep -c after-drain "$T/hooks.log")"
	sleep 1
	nstat_snap "$T/nstat.after"
	wrk_stop
	cat "$T/wrk.$mode"
	for f in connect read write timeout non2xx; do
		check_eq "$mode: wrk $f errors" 0 "$(wrk_field "$T/wrk.$mode" $f)"
	done
	check_eq "$mode: TcpAttemptFails" 0 "$(nstat_delta "$T/nstat.before" "$T/nstat.after" TcpAttemptFails)"
	rm -f "$T/rc.after-switch" "$T/sleep.after-switch"
done
"$BATON" status web
