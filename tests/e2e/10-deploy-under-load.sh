#!/bin/bash
# SPDX-License-Identifier: MIT
# 20 consecutive deploys under wrk load, once with keep-alive and once with a
# new connection per request: zero socket errors, zero non-2xx, no refused or
# reset connection in the namespace's counters; after each deploy every new
# connection reaches the new version; each old version exits within its drain.
. "$(dirname "$0")/lib.sh"

DEPLOYS=${DEPLOYS:-20}
# The load must outlast the deploys, or wrk's own end resets its in-flight
# connections in the middle of them.  Every step of a deploy is bounded: the
# deploy command 30 s, 10 checking requests 2 s each, 3 status calls 10 s
# each, the old version's exit 8 s; so DEPLOYS * PER_DEPLOY bounds the loop,
# and wrk runs for that plus a margin.  It is ended by PID once the deploys
# are done.  Every one of these bounds scales by BATON_SLOW.
PER_DEPLOY=$(slow 90)
LOAD_S=$((DEPLOYS * PER_DEPLOY + $(slow 60)))
write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" "drain-policy = signal-then-wait" "drain-timeout = 5s" \
	"kill-after = 2s" "backlog = 4096"
start_agent || exit 1
# The clients run at nice 10, as in 64-agent-restart: on a node the load
# comes from other machines; here, at nice 0, it starved the new versions'
# start and the agent under emulation.  What the test asserts does not change.
WRK_NICE=10

for mode in ${MODES:-keepalive close}; do
	hdr=()
	[ $mode = close ] && hdr=(-H "Connection: close")
	rst_start "$T/rst.$mode" || exit 1
	nstat_snap "$T/nstat.before"
	wrk_start "$T/wrk.$mode" -t2 -c50 -d${LOAD_S}s --timeout 5s "${hdr[@]}" http://127.0.0.1:8080/
	sleep 1
	bad_switch=0 bad_exit=0 bad_deploy=0
	start=$SECONDS
	for i in $(seq "$DEPLOYS"); do
		old=$(active_version)
		oldpids=$(version_pids "$old")
		if ! out=$(timeout "$(slow 30)" "$BATON" deploy web -- "$DEMO" 2>&1); then
			bad_deploy=$((bad_deploy + 1)); echo "deploy $i: $out"; continue
		fi
		new=$(active_version)
		only_version http://127.0.0.1:8080/ "v$new" 5 || bad_switch=$((bad_switch + 1))
		only_version "http://[::1]:8080/" "v$new" 5 || bad_switch=$((bad_switch + 1))
		# drain-timeout 5 s + kill-after 2 s bound the old version's exit.
		# shellcheck disable=SC2086
		wait_gone 8 $oldpids || bad_exit=$((bad_exit + 1))
	done
	took=$((SECONDS - start))
	sleep 1
	# Counters before wrk stops: wrk resets its in-flight connections on exit.
	nstat_snap "$T/nstat.after"
	check "$mode: the load outlasted the $DEPLOYS deploys (${took} s; wrk -d ${LOAD_S}s)" running "$WRK"
	rst_stop
	check "$mode: wrk ended by PID within 10 s" wrk_stop
	cat "$T/wrk.$mode"
	for k in $NSTAT_KEYS; do
		printf '%s %s; ' "$k" "$(nstat_delta "$T/nstat.before" "$T/nstat.after" $k)"
	done
	echo
	check_eq "$mode: every deploy succeeded" 0 "$bad_deploy"
	check_eq "$mode: new connections only reach the new version after each deploy" 0 "$bad_switch"
	check_eq "$mode: each old version exited within its drain" 0 "$bad_exit"
	reqs=$(wrk_field "$T/wrk.$mode" requests)
	check "$mode: wrk made real load ($reqs requests)" test "${reqs:-0}" -gt 5000
	for f in connect read write timeout non2xx; do
		check_eq "$mode: wrk $f errors" 0 "$(wrk_field "$T/wrk.$mode" $f)"
	done
	for k in TcpAttemptFails TcpEstabResets TcpExtTCPMigrateReqFailure TcpExtListenOverflows \
		TcpExtListenDrops TcpExtTCPAbortOnData TcpExtTCPAbortOnClose TcpExtTCPAbortOnTimeout; do
		check_eq "$mode: $k" 0 "$(nstat_delta "$T/nstat.before" "$T/nstat.after" $k)"
	done
	# Every RST the namespace sent is accounted for: none aborting a
	# connection, from a server or a client.  A bare RST (no ACK) is a
	# kernel's answer to a segment for a connection it no longer has.  On
	# loopback, segments sent from different CPUs can arrive out of order
	# (each CPU has its own backlog), so a stale ACK can arrive after its
	# connection ended on both sides: the client's kernel answers one it
	# cannot match (seen 0-5 times per run on the host, tens under qemu
	# TCG), and so does the server's when it closed last (LAST_ACK ended)
	# and the ACK finds only the listener (seen 2-3 times per run in Debian
	# 12's kernel in a VM at load 4-13; each answered a stale ACK, older
	# timestamp, that arrived after the other side was in TIME_WAIT).  Such
	# an RST resets nothing; one that hit a live connection would show in
	# the counters checked above (TcpEstabResets, TcpAttemptFails) and in
	# wrk's errors, all zero.
	rsts=$(nstat_delta "$T/nstat.before" "$T/nstat.after" TcpOutRsts)
	check_eq "$mode: no server aborted a connection" 0 "$(rst_count "$T/rst.$mode" server-abort 8080)"
	check_eq "$mode: no client aborted a connection" 0 "$(rst_count "$T/rst.$mode" client-abort 8080)"
	sbare=$(rst_count "$T/rst.$mode" server-bare 8080)
	cbare=$(rst_count "$T/rst.$mode" client-bare 8080)
	check "$mode: the capture accounts for every RST counted ($rsts counted; bare answers to stale segments: $sbare from the server, $cbare from clients)" \
		test "$rsts" -le "$(wc -l <"$T/rst.$mode")"
	[ "$sbare" = 0 ] || { echo "bare RSTs from the server:"; grep "\.8080 > .*Flags \[R\]," "$T/rst.$mode"; }
done
"$BATON" status web
