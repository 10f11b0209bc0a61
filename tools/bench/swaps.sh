#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 2, failed requests during repeated swaps.  The same wrk load (two at
# once: 50 keep-alive connections, and 50 connections that open a new
# connection per request) and the same 10 swaps, one per second, against:
#   baton     baton deploy of the demo server (2 instances, signal-then-wait)
#   nginx     nginx -s reload, listen ... reuseport, 2 workers, return 200
#   haproxy   HAProxy master-worker (-W) reloaded with SIGUSR2, answering 200 itself
#   restart   a plain stop (SIGQUIT: the demo server exits at once) and start
# Each in a network namespace of its own.  Counted: wrk's connect, read,
# write and timeout errors and non-2xx answers for each load, and the
# namespace's TCP failure counters (nstat), read while wrk still runs.
# usage: tools/bench/swaps.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
SWAPS=${BENCH_SWAPS:-10}
METHODS="baton nginx haproxy restart"

# ---- one method, in its own namespaces -----------------------------------------
if [ -n "${SWAP_METHOD:-}" ]; then
	bench_enter "$@"
	M=$SWAP_METHOD
	SRV=''
	case $M in
	baton)
		agent_conf "$T/b.conf"
		service_conf web 127.0.0.1:8080 "instances = 2" "ready = notify" \
			"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" \
			"backlog = 4096" >>"$T/b.conf"
		start_agent "$T/b.conf" || exit 1
		swap() { "$BATON" deploy web -- "$DEMO" >>"$T/deploy.log" 2>&1; }
		what="baton deploy web -- demo-server (2 instances, ready = notify, drain-policy = signal-then-wait)"
		;;
	nginx)
		nginx_reuseport 'ok\n'
		SRV=$NGINX_PID
		swap() { nginx_reload 2>>"$T/swap.log"; }
		what="nginx -s reload (listen 127.0.0.1:8080 reuseport; 2 workers; return 200)"
		;;
	haproxy)
		cat >"$T/haproxy.cfg" <<-EOF
			global
				pidfile $T/haproxy.pid
			defaults
				mode http
				timeout connect 5s
				timeout client 30s
				timeout server 30s
			frontend web
				bind 127.0.0.1:8080
				http-request return status 200 content-type text/plain string "ok"
		EOF
		haproxy -W -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
		SRV=$!
		track_pid "$SRV"
		swap() { kill -USR2 "$SRV"; }
		what="HAProxy -W (master-worker), kill -USR2 master (http-request return 200)"
		;;
	restart)
		start_demo() {
			BENCH_ID=$BENCH_ID "$DEMO" --listen 127.0.0.1:8080 >>"$T/demo.log" 2>&1 &
			SRV=$!
			track_pid "$SRV"
		}
		start_demo
		swap() {
			stop_pid "$SRV" QUIT
			start_demo
			wait_port 8080 5
		}
		what="kill -QUIT the demo server (exits at once), start a new one, wait until it listens"
		;;
	*)
		log "unknown method $M"
		exit 1
		;;
	esac
	wait_port 8080 10 || { log "$M: nothing listens on 127.0.0.1:8080"; exit 1; }
	wrk_args=(-t1 -c50 -d60s --timeout 5s)
	nstat_snap "$T/nstat.before"
	wrk "${wrk_args[@]}" http://127.0.0.1:8080/ >"$T/wrk.ka" 2>&1 &
	W1=$!
	wrk "${wrk_args[@]}" -H 'Connection: close' http://127.0.0.1:8080/ >"$T/wrk.close" 2>&1 &
	W2=$!
	track_pid "$W1" "$W2"
	sleep 1
	bad=0
	for _ in $(seq "$SWAPS"); do
		t=$EPOCHREALTIME
		swap || bad=$((bad + 1))
		sleep "$(awk -v t="$t" -v n="$EPOCHREALTIME" 'BEGIN { d = 1 - (n - t); print (d > 0 ? d : 0) }')"
	done
	sleep 1
	nstat_snap "$T/nstat.after"
	kill -INT "$W1" "$W2"
	wait "$W1" "$W2" 2>/dev/null
	jq -n --arg m "$M" --arg what "$what" --argjson swaps "$SWAPS" --argjson bad "$bad" \
		--argjson ka "$(wrk_json "$T/wrk.ka")" --argjson cl "$(wrk_json "$T/wrk.close")" \
		--argjson nstat "$(nstat_json "$T/nstat.before" "$T/nstat.after")" \
		'{method: $m, command: $what, swaps: $swaps, swap_failures: $bad, keepalive: $ka, close: $cl, nstat: $nstat}' \
		>"$OUT"
	exit 0
fi

# ---- driver: every method, then the table ---------------------------------------
bench_enter "$@"
cmd "wrk -t1 -c50 -d60s --timeout 5s http://127.0.0.1:8080/ and the same with -H 'Connection: close', at once; $SWAPS swaps 1 s apart"
for m in $METHODS; do
	log "$m: $SWAPS swaps under load"
	if SWAP_METHOD=$m BENCH_IN_NS='' timeout -k 5 60 "$0" "$B" "$T/$m.json" && [ -s "$T/$m.json" ]; then
		data "$m" "$(cat "$T/$m.json")"
	else
		log "$m: failed"
		data "$m" null
	fi
done
jq -r '.[] | select(. != null) | "\(.method): \(.command)"' "$T/data.json" >>"$T/commands"
failed_of() { # METHOD: wrk errors of every class plus non-2xx, both loads; -1 if it did not run
	jq -r --arg m "$1" '.[$m] // null | if . == null then -1 else
		[.keepalive, .close][] | .connect + .read + .write + .timeout + .non2xx end' \
		"$T/data.json" | awk '{ s += $1 } END { print s + 0 }'
}
summary() { # METHOD: failed requests of each load, by class, and the kernel's counts
	jq -r --arg m "$1" '
		def tot: .connect + .read + .write + .timeout + .non2xx;
		def cls: [("connect", "read", "write", "timeout", "non2xx") as $k |
			select(.[$k] > 0) | "\($k) \(.[$k])"] | join(", ");
		def one: "\(tot)\(if tot > 0 then " (" + cls + ")" else "" end)";
		.[$m] // empty |
		"keep-alive \(.keepalive | one), conn/request \(.close | one) failed of \(.keepalive.requests + .close.requests); nstat: \(.nstat.TcpAttemptFails) connects failed, \(.nstat.TcpEstabResets) established reset, \(.nstat.TcpOutRsts) RSTs sent"' \
		"$T/data.json"
}
b=$(summary baton)
bfail=$(failed_of baton)
for m in nginx haproxy restart; do
	case $m in
	nginx) name="nginx -s reload (reuseport)" ;;
	haproxy) name="HAProxy -W reload (SIGUSR2)" ;;
	restart) name="stop (SIGQUIT) and start" ;;
	esac
	s=$(summary $m)
	[ -n "$s" ] || s="FAILED to run"
	f=$(failed_of $m)
	row "failed requests in $SWAPS swaps (keep-alive + new conn per request)" "${b:-FAILED to run}" "$name: $s" \
		"baton $bfail vs $f ($(fdiv "$f" "$SWAPS" 1) per swap)"
done
bench_finish
