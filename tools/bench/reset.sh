#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 7, reset: does the agent keep answering while drain-reset resets a
# draining version's connections (issue 17, item 3)?
#  - 100,000 live connections to one service: 60,000 to v1, then a deploy
#    switches v1 out (wait-then-signal, drain-reset = yes) and 40,000 more
#    open on v2 while v1 waits; at v1's drain-timeout the agent resets v1's
#    60,000, walking a connections map that also holds v2's 40,000.
#  - Meanwhile a client asks for status every 10 ms on a new control
#    connection (as the CLI does) and times each answer from connect to the
#    reply's end.  The figure: the slowest answer to a request that was in
#    flight while the reset ran, against the 50 ms target.  Also: how long
#    the reset took, how many the agent counted, and that v2 kept its own.
# usage: tools/bench/reset.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
CONNS=${RESET_CONNS:-100000}
DRAIN=${RESET_DRAIN:-60000}
WAIT_S=${RESET_WAIT_S:-20} # v1's drain-timeout: time for v2's connections to open
TARGET_MS=50
KEEP=$((CONNS - DRAIN))
sysctl -qw net.ipv4.tcp_max_syn_backlog=8192
# As in scale.sh: one fd per connection on each side; without CAP_SYS_RESOURCE
# the clients are split over processes and the servers over instances.
ulimit -n $((CONNS + 65536)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
PER=$(($(ulimit -n) - 4096))
# Per-connection steering spreads each version's connections evenly over
# its instances; one more instance than the fd limit needs leaves room.
INST=$(((DRAIN + PER - 1) / PER + 1))
[ $INST -lt 2 ] && INST=2
[ $INST -gt 32 ] && { log "fd limit $(ulimit -n) too low for $CONNS connections"; exit 1; }

# hold N TAG SUBNET: loadgen hold processes for N connections from 127.SUBNET.k.1,
# one line each in $T/hold.TAG.k when established; their number in NP, pids in HOLD_PIDS.
HOLD_PIDS='' NP=0
hold() {
	local n=$1 tag=$2 net=$3 k=0 c
	while [ "$n" -gt 0 ]; do
		k=$((k + 1))
		c=$((n < PER ? n : PER))
		"$LOADGEN" hold --to 127.0.0.1:8080 --count "$c" --sources 64 --src "127.$net.$k.1" \
			--window 1000 --seconds 240 <"$T/hold.in" >"$T/hold.$tag.$k" 2>"$T/hold.$tag.$k.err" &
		HOLD_PIDS="$HOLD_PIDS $!"
		track_pid $!
		n=$((n - c))
	done
	NP=$k
}
# established TAG NPROC [SECONDS]: wait until every holder of TAG printed its line; the sum.
established() {
	local tag=$1 np=$2 end=$((SECONDS + ${3:-120})) d k
	while [ $SECONDS -lt $end ]; do
		d=0
		for k in $(seq "$np"); do [ -s "$T/hold.$tag.$k" ] && d=$((d + 1)); done
		[ "$d" = "$np" ] && break
		sleep 0.2
	done
	cat "$T"/hold."$tag".[0-9]* 2>/dev/null | jq -s '[.[].established] | add // 0'
}
vlive() { "$BATON" status web --json 2>/dev/null | jq --argjson v "$1" '[.[0].versions[] | select(.version == $v) | .live] | add // 0'; }

agent_conf "$T/r.conf"
service_conf web 127.0.0.1:8080 "instances = $INST" "ready = notify" "backlog = 4096" \
	"steering = per-connection" "drain-policy = wait-then-signal" "drain-timeout = ${WAIT_S}s" \
	"kill-after = 30s" "drain-reset = yes" >>"$T/r.conf"
sed -i "s|^exec = .*|exec = $DEMO --idle-ms 600000|" "$T/r.conf"
start_agent "$T/r.conf" || exit 1
mkfifo "$T/hold.in"
exec 7<>"$T/hold.in" # the holders' stdin; closing it releases them all

hold "$DRAIN" v1 3
np1=$NP
est1=$(established v1 "$np1")
log "$est1 connections established on v1"
live1=''
for _ in $(seq 100); do
	live1=$(vlive 1)
	[ "$live1" -ge "$est1" ] && break
	sleep 0.2
done
"$BATON" deploy web -- "$DEMO" --idle-ms 600000 >"$T/deploy.log" 2>&1 || {
	log "deploy failed: $(cat "$T/deploy.log")"
	exit 1
}
t_deploy=$EPOCHREALTIME

# The prober runs from now until v1 is gone; it notes when the agent logs the
# reset's start and end (to 10 ms), and each request's start, duration and v1's live.
python3 - "$T" "$BATON_CONTROL" "$T/agent.log" <<'PY' &
import json, os, socket, sys, time
t, path, agent_log = sys.argv[1:4]
out = open(t + "/probes", "w")
marks = {}
end = time.monotonic() + 200
seen_gone = None
with open(agent_log, errors="replace") as lf:
    while time.monotonic() < end and not os.path.exists(t + "/stop"):
        for line in lf.readlines():
            if "web v1:" in line and "still open at drain-timeout" in line:
                marks.setdefault("begin", time.monotonic())
            if "web v1: reset " in line:
                marks.setdefault("end", time.monotonic())
        t0 = time.monotonic()
        live = None
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            s.connect(path)
            s.sendall(b'{"cmd": "status"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                b = s.recv(1 << 16)
                if not b:
                    break
                buf += b
            s.close()
            for v in json.loads(buf)["services"][0]["versions"]:
                if v["version"] == 1:
                    live = v["live"]
            ok = 1
        except Exception:
            ok = 0
        t1 = time.monotonic()
        out.write("%.6f %.6f %d %s\n" % (t0, t1, ok, "gone" if live is None else live))
        out.flush()
        if live is None and ok and "end" in marks:
            seen_gone = seen_gone or t1
            if t1 - seen_gone > 0.5:
                break
        time.sleep(0.01)
json.dump(marks, open(t + "/marks", "w"))
PY
PROBER=$!
track_pid "$PROBER"

hold "$KEEP" v2 4
np2=$NP
est2=$(established v2 "$np2")
t_open2=$(awk -v a="$t_deploy" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
log "$est2 connections established on v2 in ${t_open2}s (v1 resets ${WAIT_S}s after the deploy)"
before_reset=true
grep -q "web v1: .* still open at drain-timeout" "$T/agent.log" && before_reset=false
live2_before=$(vlive 2)
cmd "$np1 + $np2 x loadgen hold --to 127.0.0.1:8080 --sources 64 --window 1000 ($DRAIN on v1, then $KEEP on v2; fd limit $(ulimit -n) per process); service: $INST demo-server instances per version, steering = per-connection, drain-policy = wait-then-signal, drain-timeout = ${WAIT_S}s, drain-reset = yes"
cmd "status prober: {\"cmd\": \"status\"} on a new control connection every 10 ms, timed from connect to the reply's end"

# Bounded: the prober ends itself 0.5 s after v1 is gone, or at 200 s.
wait "$PROBER"
[ -s "$T/marks" ] || echo '{}' >"$T/marks"
live2_after=$(vlive 2)
# The figures: requests in flight while the reset ran (from the log lines, seen
# to 10 ms, so widened by 20 ms on each side), every figure in ms.
read -r reset_n <<<"$(sed -n 's/.*web v1: reset \([0-9]*\) connection(s).*/\1/p' "$T/agent.log" | head -1)"
stats=$(python3 - "$T/probes" "$T/marks" <<'PY'
import json, sys
marks = json.load(open(sys.argv[2]))
rows = [l.split() for l in open(sys.argv[1])]
b, e = marks.get("begin"), marks.get("end")
# An agent that stalls is seen to start late (the log line is read after the
# stall): the start of the first request whose answer shows v1 below its
# peak bounds the reset's start too.
ok = [r for r in rows if r[2] == "1"]
peak = max((int(r[3]) for r in ok if r[3] != "gone"), default=None)
first = next((float(r[0]) for r in ok if peak is not None and (r[3] == "gone" or int(r[3]) < peak)), None)
if b is not None and first is not None:
    b = min(b, first)
res = {"probes": len(rows), "failed": sum(r[2] == "0" for r in rows)}
def summary(lat, name):
    lat = sorted(lat)
    res[name] = len(lat)
    if lat:
        res[name + "_worst_ms"] = round(lat[-1], 1)
        res[name + "_p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1)
        res[name + "_p50_ms"] = round(lat[len(lat) // 2], 1)
if b is not None and e is not None:
    # In flight during the reset: answered after it began, started before its
    # end was seen (a request started later came after it).
    during = [r for r in rows if float(r[1]) >= b and float(r[0]) < e]
    # Before it: the agent waits for drain-timeout with the same connections
    # open; the same prober on the same machine, the noise floor.
    before = [r for r in rows if float(r[1]) < b]
    res["reset_ms"] = round((e - b) * 1e3, 1)
    summary([(float(r[1]) - float(r[0])) * 1e3 for r in during], "during")
    summary([(float(r[1]) - float(r[0])) * 1e3 for r in before], "before")
print(json.dumps(res))
PY
)
log "reset: $reset_n; $stats"
exec 7>&-
for h in $HOLD_PIDS; do stop_pid "$h"; done
worst=$(jq -r '.during_worst_ms // "null"' <<<"$stats")
met=$(awk -v w="$worst" -v t=$TARGET_MS 'BEGIN { print (w != "null" && w <= t) ? "met" : "NOT met" }')
data reset "$(jq -n --argjson conns "$CONNS" --argjson drain "$DRAIN" --argjson est1 "${est1:-0}" \
	--argjson est2 "${est2:-0}" --argjson reset "${reset_n:-null}" --argjson s "$stats" \
	--argjson before "$before_reset" --argjson l2b "${live2_before:-null}" \
	--argjson l2a "${live2_after:-null}" --argjson inst "$INST" --argjson target $TARGET_MS \
	'{connections: $conns, on_draining_version: $est1, on_new_version: $est2,
	  reset_counted: $reset, v2_live_before: $l2b, v2_live_after: $l2a, instances: $inst,
	  v2_open_before_reset: $before, target_ms: $target, status: $s}')"
row "baton status while drain-reset resets $est1 of $((est1 + est2)) live connections" \
	"$(jq -r '"slowest \(.during_worst_ms) ms, p99 \(.during_p99_ms) ms, p50 \(.during_p50_ms) ms over \(.during) requests in flight during the reset"' <<<"$stats"); $reset_n reset in $(fdiv "$(jq -r '.reset_ms // 0' <<<"$stats")" 1000 2) s; v2 kept $live2_after of $live2_before" \
	"target ${TARGET_MS} ms; $(jq -r '"before the reset (same connections open, agent waiting): slowest \(.before_worst_ms) ms, p99 \(.before_p99_ms) ms, p50 \(.before_p50_ms) ms over \(.before)"' <<<"$stats")" \
	"$(fdiv "${worst/null/0}" $TARGET_MS 2) of the target ($met)"
bench_finish
