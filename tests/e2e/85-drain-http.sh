#!/bin/bash
# SPDX-License-Identifier: MIT
# drain-http = close with a server that never ends keep-alive itself and
# closes idle connections at once on SIGTERM (demo-server --keepalive-forever,
# as many third-party servers do).  Under wrk load, keep-alive and
# connection-per-request at once, DEPLOYS deploys with the default drain
# policy (wait-then-signal): zero failed requests of every class, zero
# TcpAttemptFails / aborts.  The same deploys with drain-http = off first,
# printed side by side as the baseline (not asserted: it is a race).
. "$(dirname "$0")/lib.sh"

DEPLOYS=${DEPLOYS:-5}
# Each deploy is bounded (deploy 30 s, the old version's exit 12 s): the load outlasts them.
LOAD_S=$((DEPLOYS * 45 + 30))
SRV="$DEMO --keepalive-forever"
EXEC=$SRV write_conf "instances = 2" "ready = notify" "drain-timeout = 8s" "kill-after = 2s" \
	"backlog = 4096" "drain-http = off"
start_agent || exit 1

# run_deploys MODE: DEPLOYS deploys under both loads; prints and records the results.
run_deploys() {
	local mode=$1 i old oldpids out
	nstat_snap "$T/nstat.before.$mode"
	wrk_start "$T/wrk.ka.$mode" -t1 -c40 -d${LOAD_S}s --timeout 5s http://127.0.0.1:8080/
	W1=$WRK
	wrk_start "$T/wrk.close.$mode" -t1 -c10 -d${LOAD_S}s --timeout 5s -H "Connection: close" \
		http://127.0.0.1:8080/
	W2=$WRK
	sleep 1
	bad_deploy=0 bad_exit=0
	for i in $(seq "$DEPLOYS"); do
		old=$(active_version)
		oldpids=$(version_pids "$old")
		# shellcheck disable=SC2086
		if ! out=$(timeout 30 "$BATON" deploy web -- $SRV 2>&1); then
			bad_deploy=$((bad_deploy + 1)); echo "deploy $i: $out"; continue
		fi
		# shellcheck disable=SC2086
		wait_gone 12 $oldpids || bad_exit=$((bad_exit + 1))
	done
	sleep 1
	nstat_snap "$T/nstat.after.$mode"
	check "$mode: the loads outlasted the deploys" running "$W1"
	check "$mode: the loads outlasted the deploys" running "$W2"
	WRK=$W1 wrk_stop
	WRK=$W2 wrk_stop
	check_eq "$mode: every deploy succeeded" 0 "$bad_deploy"
	check_eq "$mode: each old version exited within its drain" 0 "$bad_exit"
}

# failed FILE: every failed request wrk counted (socket errors and non-2xx).
failed() {
	local f n=0
	for f in connect read write timeout non2xx; do n=$((n + $(wrk_field "$1" $f))); done
	echo $n
}

run_deploys off
sed -i 's/^drain-http = off$/drain-http = close/' "$T/web.conf"
check "reload to drain-http = close" "$BATON" reload
run_deploys close

printf '%-34s %12s %12s\n' "" "drain-http=off" "drain-http=close"
for load in ka close; do
	for f in requests connect read write timeout non2xx; do
		printf '%-34s %12s %12s\n' "wrk $load $f" "$(wrk_field "$T/wrk.$load.off" $f)" \
			"$(wrk_field "$T/wrk.$load.close" $f)"
	done
done
for k in TcpAttemptFails TcpEstabResets TcpExtTCPAbortOnData TcpExtTCPAbortOnClose TcpOutRsts; do
	printf '%-34s %12s %12s\n' "$k" "$(nstat_delta "$T/nstat.before.off" "$T/nstat.after.off" $k)" \
		"$(nstat_delta "$T/nstat.before.close" "$T/nstat.after.close" $k)"
done

for load in ka close; do
	reqs=$(wrk_field "$T/wrk.$load.close" requests)
	check "close: wrk $load made real load ($reqs requests)" test "${reqs:-0}" -gt 2000
	check_eq "close: wrk $load failed requests" 0 "$(failed "$T/wrk.$load.close")"
done
for k in TcpAttemptFails TcpEstabResets TcpExtTCPAbortOnData TcpExtTCPAbortOnClose TcpExtListenDrops; do
	check_eq "close: $k" 0 "$(nstat_delta "$T/nstat.before.close" "$T/nstat.after.close" $k)"
done
# The drains were the rewrite's: the log counts each version's connections.
check "close: the log says how each drain ended" \
	grep -q "drain-http: [0-9]* connection(s) closed by their clients" "$T/agent.log"
rewritten=$(grep -o "[0-9]* response(s) rewritten" "$T/agent.log" | awk '{s+=$1} END {print s+0}')
check "close: responses were rewritten ($rewritten)" test "$rewritten" -gt 0
grep "drain-http:" "$T/agent.log" | sed 's/^/  /' | tail -12

# A keep-alive client that never sends again stays until drain-timeout, and
# is counted as idle (drain_idle_closed), not as closed by its client.
exec 5<>/dev/tcp/127.0.0.1/8080
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&5
timeout 2 head -c 12 <&5 >/dev/null
old=$(active_version)
oldpids=$(version_pids "$old")
# shellcheck disable=SC2086
check "deploy with an idle keep-alive connection open" timeout 30 "$BATON" deploy web -- $SRV
# shellcheck disable=SC2086
check "the old version exits after drain-timeout + kill-after" wait_gone 14 $oldpids
exec 5<&-
check "the idle connection is counted as idle" \
	grep -q "web v$old: drain-http: 0 connection(s) closed by their clients, 1 idle until the drain ended" "$T/agent.log"
