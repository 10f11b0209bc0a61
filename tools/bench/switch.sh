#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 3, how fast a deploy moves new connections, and how fast a drained
# version is told to exit.
#  - 20 blue-green deploys (0.5 s apart) under loadgen's connection-per-request
#    load from 256 client addresses; loadgen records who answered every
#    connection and when it began, and watches the pinned services map for
#    the moment of each switch (polled every ~20 us; how late it saw each
#    switch is reported as its resolution).  From the switch, and from the
#    deploy command's start: how long new connections still reached an older
#    version.  The baseline is the same with nginx -s reload (worker pids
#    as the versions: return 200 "version=v$pid"), from the reload command.
#  - 100 deploys: time from a draining
#    version's last close (kernel time) to its exit signal.
# usage: tools/bench/switch.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
N=${BENCH_SWITCHES:-20}

# late EVENTS RECORDS: for each event time (realtime seconds, one per line) the
# time until no connection that began after it reached a version seen before it
# (until the next event).
late() {
	awk 'FNR == NR { ev[++n] = $1; next }
	{
		t = $1; v = $2
		if (v == 0) next
		for (i = n; i >= 1 && ev[i] > t; i--) ;
		# i: the last event at or before t (0: before the first one).
		rec[++m] = t; ver[m] = v; win[m] = i
		if (!(v in first) || t < first[v]) first[v] = t
	}
	END {
		for (k = 1; k <= m; k++) {
			i = win[k]
			if (i == 0) continue
			# An older version: one that had answered a connection begun before event i.
			if (first[ver[k]] < ev[i] && rec[k] - ev[i] > worst[i]) worst[i] = rec[k] - ev[i]
		}
		for (i = 1; i <= n; i++) printf "%.1f\n", worst[i] * 1e6
	}' "$1" "$2" | sort -n
}
pct() { awk -v p="$1" '{ a[NR] = $1 } END { if (NR) print a[int((NR - 1) * p / 100) + 1]; else print "null" }'; }

# The drain figure (one connection held
# by the old version, closed by its client after the switch; the agent logs
# the time from that close, in kernel time, to the exit signal), but waiting
# until the agent watches the drain before closing: a close that races the
# deploy's reply finds no drain to time.
if [ "${SWITCH_METHOD:-}" = drain ]; then
	bench_enter "$@"
	agent_conf "$T/d.conf"
	service_conf d 127.0.0.1:8080 "instances = 1" "drain-policy = wait-then-signal" \
		"drain-timeout = 10s" "kill-after = 1s" >>"$T/d.conf"
	sed -i "s|^exec = .*|exec = $DEMO --idle-ms 600000|" "$T/d.conf"
	start_agent "$T/d.conf" || exit 1
	# grep_wait SECONDS PATTERN: until the agent has logged it.
	grep_wait() {
		local end=$((SECONDS + $1))
		while [ $SECONDS -le $end ]; do
			grep -q -- "$2" "$T/agent.log" && return 0
			sleep 0.005
		done
		return 1
	}
	missed=0
	for i in $(seq "${DRAINS:-100}"); do
		exec 5<>/dev/tcp/127.0.0.1/8080
		printf 'GET / HTTP/1.1\r\nHost: d\r\n\r\n' >&5
		read -r -t 2 _ <&5
		"$BATON" deploy d -- "$DEMO" --idle-ms 600000 >>"$T/deploy.log" 2>&1 || { missed=$((missed + 1)); exec 5>&-; continue; }
		grep_wait 2 "d v$i: waiting for 1 connection" || missed=$((missed + 1))
		exec 5>&-
		grep_wait 2 "d v$i: last connection closed; signalled" || missed=$((missed + 1))
	done
	sed -n 's/.*last connection closed; signalled \([0-9]*\) us later.*/\1/p' "$T/agent.log" | sort -n >"$T/us"
	jq -n --argjson n "$(wc -l <"$T/us")" --argjson missed "$missed" \
		--argjson p50 "$(pct 50 <"$T/us")" --argjson p99 "$(pct 99 <"$T/us")" \
		--argjson max "$(pct 100 <"$T/us")" \
		'{drains: $n, missed: $missed, p50_us: $p50, p99_us: $p99, max_us: $max}' >"$OUT"
	exit 0
fi

if [ -n "${SWITCH_METHOD:-}" ]; then
	bench_enter "$@"
	M=$SWITCH_METHOD
	case $M in
	baton)
		agent_conf "$T/b.conf"
		service_conf web 127.0.0.1:8080 "instances = 2" "ready = notify" \
			"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" \
			"backlog = 4096" >>"$T/b.conf"
		start_agent "$T/b.conf" || exit 1
		swap() { "$BATON" deploy web -- "$DEMO" >>"$T/deploy.log" 2>&1; }
		watch=(--watch "$BPFDIR/services")
		;;
	warm)
		# keep-warm: v1 and v2 both stay running and placed; each swap is a
		# rollback to the other, within rollback-window: one policy update.
		agent_conf "$T/w.conf"
		service_conf web 127.0.0.1:8080 "instances = 2" "ready = notify" \
			"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" \
			"backlog = 4096" "keep-warm = 1" "rollback-window = 5m" >>"$T/w.conf"
		start_agent "$T/w.conf" || exit 1
		"$BATON" deploy web -- "$DEMO" >>"$T/deploy.log" 2>&1 || { log "warm: deploy of v2 failed"; exit 1; }
		swap() { "$BATON" rollback web >>"$T/deploy.log" 2>&1; }
		watch=(--watch "$BPFDIR/services")
		;;
	nginx)
		nginx_reuseport 'version=v$pid\n'
		swap() { nginx_reload; }
		watch=()
		;;
	esac
	wait_port 8080 10 || { log "$M: nothing listens on 127.0.0.1:8080"; exit 1; }
	secs=$(awk -v n="$N" 'BEGIN { print n * 0.5 + 3 }')
	"$LOADGEN" conn --to 127.0.0.1:8080 --threads 2 --sources 256 --seconds "$secs" \
		"${watch[@]}" --records "$T/records" >"$T/loadgen.json" &
	L=$!
	track_pid $L
	sleep 1
	: >"$T/starts"
	: >"$T/ends"
	for i in $(seq "$N"); do
		t=$EPOCHREALTIME
		echo "$t" >>"$T/starts"
		swap || log "$M: swap $i failed"
		echo "$EPOCHREALTIME" >>"$T/ends"
		sleep "$(awk -v t="$t" -v n="$EPOCHREALTIME" 'BEGIN { d = 0.5 - (n - t); print (d > 0 ? d : 0) }')"
	done
	wait $L
	lg=$T/loadgen.json
	# From the command's start.
	late "$T/starts" "$T/records" >"$T/late.start"
	res=$(jq -n --arg m "$M" --argjson n "$N" --argjson lg "$(jq '{ok, rate, errors, switch_count, late_us_p50, late_us_p99, late_us_max, poll_us}' "$lg")" \
		--argjson p50 "$(pct 50 <"$T/late.start")" --argjson p99 "$(pct 99 <"$T/late.start")" \
		--argjson max "$(pct 100 <"$T/late.start")" \
		'{method: $m, swaps: $n, from_command_us: {p50: $p50, p99: $p99, max: $max}, loadgen: $lg}')
	if [ "$M" = baton ]; then
		# From the switch itself (the services map update, as the watcher saw
		# it): loadgen's figures, which allow for how late it saw each switch.
		jq -r '.switches[].at' "$lg" >"$T/switches"
		jq '.switches[].late_us' "$lg" | sort -n >"$T/late.switch"
		jq '.switches[].seen_within_us' "$lg" | sort -n >"$T/seen"
		# The command's start to the switch: start and readiness of the new version.
		paste "$T/starts" <(head -n "$(wc -l <"$T/starts")" "$T/switches") |
			awk '{ printf "%.1f\n", ($2 - $1) * 1e3 }' | sort -n >"$T/to_switch"
		res=$(jq --argjson p50 "$(pct 50 <"$T/late.switch")" --argjson p99 "$(pct 99 <"$T/late.switch")" \
			--argjson max "$(pct 100 <"$T/late.switch")" \
			--argjson s50 "$(pct 50 <"$T/seen")" --argjson s99 "$(pct 99 <"$T/seen")" \
			--argjson d50 "$(pct 50 <"$T/to_switch")" --argjson d99 "$(pct 99 <"$T/to_switch")" \
			--argjson late "$(jq '[.switches[].late] | add' "$lg")" \
			'.from_switch_us = {p50: $p50, p99: $p99, max: $max, late_connections: $late,
				seen_within_us_p50: $s50, seen_within_us_p99: $s99}
			| .command_to_switch_ms = {p50: $d50, p99: $d99}' <<<"$res")
	fi
	if [ "$M" = warm ]; then
		# Each rollback goes back to an older number, so loadgen's "late" (an
		# older version answering) does not apply: from the records, the last
		# connection begun after each switch that another version answered.
		jq -r '.switches[] | "\(.at) \(.to)"' "$lg" >"$T/switches"
		awk 'FNR == NR { at[++n] = $1; to[n] = $2; next }
		{
			t = $1; v = $2
			if (v == 0) next
			for (i = n; i >= 1 && at[i] > t; i--) ;
			if (i >= 1 && v != to[i] && t - at[i] > worst[i]) worst[i] = t - at[i]
		}
		END { for (i = 1; i <= n; i++) printf "%.1f\n", worst[i] * 1e6 }' \
			"$T/switches" "$T/records" | sort -n >"$T/late.switch"
		# Each command's start to the first switch after it (before the next start).
		awk 'FNR == NR { at[++n] = $1; next } { st[++m] = $1 }
		END {
			for (k = 1; k <= m; k++)
				for (i = 1; i <= n; i++)
					if (at[i] >= st[k] && (k == m || at[i] < st[k + 1])) {
						printf "%.1f\n", (at[i] - st[k]) * 1e6
						break
					}
		}' "$T/switches" "$T/starts" | sort -n >"$T/to_switch"
		jq '.switches[].seen_within_us' "$lg" | sort -n >"$T/seen"
		res=$(jq --argjson p50 "$(pct 50 <"$T/late.switch")" --argjson p99 "$(pct 99 <"$T/late.switch")" \
			--argjson d50 "$(pct 50 <"$T/to_switch")" --argjson d99 "$(pct 99 <"$T/to_switch")" \
			--argjson dmax "$(pct 100 <"$T/to_switch")" --argjson s99 "$(pct 99 <"$T/seen")" \
			--argjson paired "$(wc -l <"$T/to_switch")" \
			'.from_switch_us = {p50: $p50, p99: $p99}
			| .command_to_switch_us = {p50: $d50, p99: $d99, max: $dmax, seen_within_us_p99: $s99,
				rollbacks_with_a_switch: $paired}' \
			<<<"$res")
	fi
	echo "$res" >"$OUT"
	exit 0
fi

bench_enter "$@"
cmd "loadgen conn --to 127.0.0.1:8080 --threads 2 --sources 256 --records FILE [--watch BPFDIR/services]; $N swaps 0.5 s apart: baton deploy web -- demo-server (2 instances), or nginx -s reload (2 workers, reuseport, return 200 \"version=v\$pid\")"
cmd "warm: keep-warm = 1, rollback-window = 5m, v2 deployed, then $N x baton rollback web 0.5 s apart (v1 and v2 in turn, both kept warm), the same load"
for m in baton warm nginx; do
	log "$m: $N swaps under loadgen"
	if SWITCH_METHOD=$m BENCH_IN_NS='' timeout -k 5 60 "$0" "$B" "$T/$m.json" && [ -s "$T/$m.json" ]; then
		data "$m" "$(cat "$T/$m.json")"
	else
		log "$m: failed"
		data "$m" null
	fi
done
log "drain: 100 deploys, each old version holding one connection"
cmd "drain: 100 x (connect, GET, baton deploy d -- demo-server, wait for the agent to watch the drain, close); wait-then-signal"
if SWITCH_METHOD=drain BENCH_IN_NS='' timeout -k 5 90 "$0" "$B" "$T/drain.json" && [ -s "$T/drain.json" ]; then
	data drain "$(cat "$T/drain.json")"
else
	log "drain: failed"
	data drain null
fi

d=$T/data.json
row "deploy: from the switch (map update) to 100% of new connections on the new version" \
	"$(jq -r '.baton // empty | "p50 \(.from_switch_us.p50) us, p99 \(.from_switch_us.p99) us over \(.swaps) deploys: \(.from_switch_us.late_connections) of \(.loadgen.ok) connections begun after a switch reached an older version"' "$d")" \
	"—" "$(jq -r '.baton // empty | "one map update; the switch was seen within p50 \(.from_switch_us.seen_within_us_p50) us, p99 \(.from_switch_us.seen_within_us_p99) us (the resolution)"' "$d")"
row "deploy: from the command to 100% of new connections on the new version" \
	"$(jq -r 'def ms: . / 100 | round / 10; .baton // empty | "p50 \(.from_command_us.p50 | ms) ms, p99 \(.from_command_us.p99 | ms) ms (the switch came p50 \(.command_to_switch_ms.p50) ms after the command: start + ready)"' "$d")" \
	"$(jq -r 'def ms: . / 100 | round / 10; .nginx // empty | "nginx -s reload (new workers'"'"' pids): p50 \(.from_command_us.p50 | ms) ms, p99 \(.from_command_us.p99 | ms) ms"' "$d")" \
	"$(jq -r 'if .baton and .nginx then "p50 \((.nginx.from_command_us.p50 / (.baton.from_command_us.p50 + 0.001) * 10 | round) / 10)x shorter than nginx" else "" end' "$d")"
row "rollback within rollback-window (keep-warm): from the command to the switch" \
	"$(jq -r 'def ms: . / 100 | round / 10; .warm // empty | "p50 \(.command_to_switch_us.p50 | ms) ms, p99 \(.command_to_switch_us.p99 | ms) ms over \(.swaps) rollbacks (one policy update each); 100% of new connections on the version rolled back to p50 \(.from_switch_us.p50) us, p99 \(.from_switch_us.p99) us after the switch; errors \(.loadgen.errors | tostring)"' "$d")" \
	"$(jq -r 'def ms: . / 100 | round / 10; .baton // empty | "a deploy (start + ready + switch): p50 \(.command_to_switch_ms.p50) ms"' "$d")" \
	"$(jq -r 'if .baton and .warm then "\((.baton.command_to_switch_ms.p50 * 1000 / (.warm.command_to_switch_us.p50 + 0.001) * 10 | round) / 10)x faster than starting the version" else "" end' "$d")"
row "drain: last close of a draining version to its exit signal" \
	"$(jq -r '.drain // empty | "p50 \(.p50_us) us, p99 \(.p99_us) us, max \(.max_us) us over \(.drains) drains (\(.missed) missed)"' "$d")" \
	"—" "$(jq -r '.drain // empty | if .p99_us < 5000 then "target p99 < 5 ms: met" else "target p99 < 5 ms: MISSED" end' "$d")"
bench_finish
