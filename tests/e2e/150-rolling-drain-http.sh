#!/bin/bash
# SPDX-License-Identifier: MIT
# drain-http = close for single instances leaving mid rolling rollout, with
# an unmodified third-party server from Debian that never ends keep-alive
# itself and closes idle keep-alive connections on its graceful stop:
# lighttpd, socket-activated by baton, 4 instances, strategy = rolling
# (max-surge 1, max-unavailable 0), the default drain policy
# (wait-then-signal), per-connection steering (so no re-steering asks any
# connection to close: only the retired instance's drain does).  Under wrk
# load, keep-alive and a new connection per request at once, DEPLOYS rolling
# deploys:
#  - zero failed requests of every class, zero TcpAttemptFails and aborts;
#  - every retired old instance's own connections were asked to close (its
#    version serving on through the others) and reached 0 before its exit
#    signal: none waited until drain-timeout (without the per-instance
#    drain a keep-alive connection of lighttpd never closes by itself);
#  - the last old instance, left to its version's drain, too.
. "$(dirname "$0")/lib.sh"
command -v lighttpd >/dev/null || { not_ok "lighttpd not installed (tools/deps.sh installs it)"; exit 1; }

DEPLOYS=${DEPLOYS:-2}
DRAIN_S=8
# Each deploy is bounded (30 s, the old version's exit 15 s): the load outlasts them.
LOAD_S=$((DEPLOYS * 50 + 20))

mkdir -p "$T/www"
printf 'hello from lighttpd\n' >"$T/www/index.html"
lighttpd_activated_conf "server.max-keep-alive-requests = 1000000" \
	"server.max-keep-alive-idle = 60" "server.max-connections = 4096" \
	'server.feature-flags += ("server.graceful-shutdown-timeout" => 8)'
SRV="/usr/sbin/lighttpd -D -f $T/lighttpd.conf"
EXEC=$SRV write_conf "instances = 4" "ready = tcp" "exit-signal = SIGINT" \
	"drain-timeout = ${DRAIN_S}s" "kill-after = 3s" "drain-http = close" \
	"steering = per-connection" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
	"backlog = 4096"
start_agent || exit 1
check "lighttpd answers under baton" grep -q "hello from lighttpd" \
	<<<"$(curl -s --max-time 2 http://127.0.0.1:8080/index.html)"

failed() {
	local f n=0
	for f in connect read write timeout non2xx; do n=$((n + $(wrk_field "$1" $f))); done
	echo $n
}

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c40 -d${LOAD_S}s --timeout 5s http://127.0.0.1:8080/index.html
KA=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d${LOAD_S}s --timeout 5s -H "Connection: close" \
	http://127.0.0.1:8080/index.html
CL=$WRK
sleep 1
bad=0 slowest=0
for i in $(seq "$DEPLOYS"); do
	old=$(active_version)
	oldpids=$(version_pids "$old")
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	out=$(timeout 30 "$BATON" deploy web -- $SRV 2>&1) ||
		{ bad=$((bad + 1)); echo "deploy $i: $out"; continue; }
	# shellcheck disable=SC2086
	wait_gone 15 $oldpids || { bad=$((bad + 1)); echo "deploy $i: v$old did not exit"; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "deploy $i: v$old -> v$(active_version), old version gone after $ms ms"
	[ "$ms" -gt "$slowest" ] && slowest=$ms
done
sleep 1
nstat_snap "$T/nstat.after"
check "the loads outlasted the deploys" running "$KA"
check "the loads outlasted the deploys" running "$CL"
WRK=$KA wrk_stop
WRK=$CL wrk_stop
check_eq "every rolling deploy succeeded and each old version exited" 0 "$bad"

for w in ka cl; do
	for f in requests connect read write timeout non2xx; do
		printf '%-24s %12s\n' "wrk $w $f" "$(wrk_field "$T/wrk.$w" $f)"
	done
	reqs=$(wrk_field "$T/wrk.$w" requests)
	check "wrk $w made real load ($reqs requests)" test "${reqs:-0}" -gt 2000
	check_eq "wrk $w failed requests" 0 "$(failed "$T/wrk.$w")"
done
for k in TcpAttemptFails TcpEstabResets TcpExtTCPAbortOnData TcpExtTCPAbortOnClose \
	TcpExtListenDrops; do
	check_eq "$k" 0 "$(nstat_delta "$T/nstat.before" "$T/nstat.after" $k)"
done

grep -E "leaves|drain-http|no connection left|drain-timeout|last connection closed|no connections left" \
	"$T/agent.log" | sed 's/^/  /' | tail -40
asked=$(grep -c "drain-http: asking the [0-9]* connection(s) of instance" "$T/agent.log")
left=$(grep -c "retired instance [0-9]* (pid [0-9]*) has no connection left: exit signal" \
	"$T/agent.log")
retired=$(grep -c "v[0-9]*: instance [0-9]* (pid [0-9]*, [0-9]* live connection(s)) leaves" \
	"$T/agent.log")
check_eq "3 old instances retired per deploy (the 4th goes with its version)" \
	$((DEPLOYS * 3)) "$retired"
check_eq "each retired instance's own connections were asked to close" "$retired" "$asked"
check_eq "each reached 0 connections before its exit signal" "$retired" "$left"
check_eq "none waited until drain-timeout" 0 \
	"$(grep -c "still has connections at drain-timeout" "$T/agent.log")"
rewritten=$(sed -n 's/.*drain-http: instance [0-9]*: .* \([0-9]*\) response(s) rewritten.*/\1/p' \
	"$T/agent.log" | awk '{s+=$1} END {print s+0}')
check "responses of retired instances were rewritten ($rewritten)" test "$rewritten" -gt 0
check_eq "no retired instance's connection stayed idle to the end" 0 \
	"$(grep "drain-http: instance [0-9]*:" "$T/agent.log" | grep -vc " 0 idle until its drain ended")"
check_eq "the last old instances drained with their version, to 0 before the signal" \
	"$DEPLOYS" "$(grep -cE "v[0-9]*: (last connection closed|no connections left)" "$T/agent.log")"
check "each rolling deploy's old version was gone well before drain-timeout ($slowest ms)" \
	test "$slowest" -lt $((DRAIN_S * 1000))
