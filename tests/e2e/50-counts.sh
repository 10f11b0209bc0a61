#!/bin/bash
# SPDX-License-Identifier: MIT
# Live connection counts are exact: at every step each version's live count
# equals what ss shows for its sockets (connections its processes accepted
# plus connections queued on its listeners), over IPv4 and IPv6, with closes
# from the client side and from the server side.  A foreign server's
# connections are never counted.  bpftool prints the counters with names.
. "$(dirname "$0")/lib.sh"

EXEC="$DEMO --idle-ms 600000" write_conf "instances = 2" "ready = notify" \
	"drain-policy = wait-then-signal" "drain-timeout = 60s" "kill-after = 1s"
start_agent || exit 1

field() { "$BATON" status web --json | jq ".[0].versions[] | select(.version == $1) | .$2"; }
# What ss shows for a version: sockets its pids accepted + queued on its listeners.
ss_count() {
	local p n=0
	for p in $(version_pids "$1"); do
		n=$((n + $(ss -Htnp state established '( sport = :8080 )' | grep -c "pid=$p,")))
		n=$((n + $(ss -Hltnp 'sport = :8080' | grep "pid=$p," | awk '{s += $2} END {print s + 0}')))
	done
	echo $n
}
# same DESCRIPTION VERSION WANT: the counter and ss both say WANT.
same() {
	local live ssn i
	for i in $(seq 20); do # connections settle within a few ms; bound the wait
		live=$(field "$2" live); ssn=$(ss_count "$2")
		[ "$live" = "$3" ] && [ "$ssn" = "$3" ] && break
		sleep 0.05
	done
	check_eq "$1: v$2 live" "$3" "$live"
	check_eq "$1: v$2 per ss" "$3" "$ssn"
}

# open N HOST [request]: hold N connections in this shell; ids appended to FDS.
FDS=()
open_conns() {
	local i fd
	for i in $(seq "$1"); do
		exec {fd}<>"/dev/tcp/$2/8080"
		[ -n "${3:-}" ] && printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' >&"$fd"
		FDS+=("$fd")
	done
}
close_conns() { # close_conns FIRST N
	local i
	for i in $(seq "$1" $(($1 + $2 - 1))); do exec {FDS[$i]}>&-; done
}

# A foreign server on another port, started before this shell holds any
# client socket (it would inherit them).
"$DEMO" --listen 127.0.0.1:9090 2>/dev/null &
EXTRA_PIDS=$!
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:9090/ && break; sleep 0.1; done

open_conns 8 127.0.0.1 request
open_conns 6 ::1 request
same "14 accepted (8 IPv4, 6 IPv6)" 1 14

# v2 never accepts: its connections stay queued, and count.
check "deploy v2 (never accepts)" "$BATON" deploy web -- "$DEMO" --no-accept
open_conns 5 127.0.0.1
open_conns 4 ::1
same "9 queued on v2's listeners" 2 9
same "v1 keeps its 14 while draining" 1 14
check_eq "v1 is not signalled while it has connections" false "$(field 1 signalled)"

close_conns 0 5 # client side, IPv4
same "5 closed by clients" 1 9
check_eq "v1 closed total" 5 "$(field 1 closed)"

# The foreign server's connections are not counted.
for _ in 1 2 3; do curl -s -o /dev/null http://127.0.0.1:9090/; done
check_eq "foreign connections not counted (v1 accepted)" 14 "$(field 1 accepted)"
check_eq "foreign connections not counted (v2 accepted)" 9 "$(field 2 accepted)"

# Server side: one of v1's instances dies; its connections close.
v1a=$(version_pids 1 | head -1)
kill -9 "$v1a"
wait_gone 2 "$v1a"
same "an instance's connections closed by the server side" 1 "$(ss_count 1)"
check "v1 still has the other instance's connections" test "$(field 1 live)" -gt 0

# bpftool prints the counters with field names and the right numbers.
v2json=$(bpftool -j map dump pinned "$BPFDIR/versions" |
	jq -c '.[].formatted | select(.key.version == 2) | .value')
check_eq "bpftool: v2 counters by name" '{"live":9,"accepted":9,"closed":0,"migrated_in":0}' "$v2json"
check "bpftool: key names" grep -q '"service"' <<<"$(bpftool -j map dump pinned "$BPFDIR/versions")"

# baton watch shows the live counts.
w=$("$BATON" watch -n 0.2 --count 2 web)
check "watch prints two frames" test "$(grep -c '^SERVICE' <<<"$w")" = 2
check "watch shows v2 with 9 live" grep -Eq '^ +v2 +active +100.0% +9 ' <<<"$w"

# The rest of v1's connections close: v1 reaches 0 and gets its signal at once.
close_conns 5 9
for _ in $(seq 40); do grep -q "web v1: last connection closed" "$T/agent.log" && break; sleep 0.05; done
us=$(sed -n 's/.*web v1: last connection closed; signalled \([0-9]*\) us later/\1/p' "$T/agent.log")
check "v1 signalled ${us:-?} us after its last close (< 5000)" test "${us:-999999}" -lt 5000
