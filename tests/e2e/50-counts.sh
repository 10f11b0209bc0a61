#!/bin/bash
# SPDX-License-Identifier: MIT
# Live connection counts are exact: at every step each version's live count
# equals what ss shows for its sockets (connections its processes accepted
# plus connections queued on its listeners), over IPv4 and IPv6, with closes
# from the client side and from the server side.  A foreign server's
# connections are never counted.  bpftool prints the counters with names.
# resets counts the connections a version's side aborted with a RST: every
# one of a --reset-every 1 version's, none of those clients reset, none of
# those closed normally from either side.
. "$(dirname "$0")/lib.sh"

# v2's drain-timeout must outlast the test: at it, v2's 9 queued connections
# would migrate to the version after it, whose counts are checked at 0 live.
# It is a bound on time, and scales (under emulation the minute passed while
# v3 was checked, and v3 counted 9 live).  ready = none: v2 never accepts, and
# notify (READY=1, then a probe it must accept) no longer deploys such a version.
EXEC="$DEMO --idle-ms 600000" write_conf "instances = 2" "ready = none" \
	"drain-policy = wait-then-signal" "drain-timeout = $(slow 60)s" "kill-after = 1s"
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
	for i in $(seq "$(slow 20)"); do # connections settle within a few ms; bound the wait
		live=$(field "$2" live); ssn=$(ss_count "$2")
		[ "$live" = "$3" ] && [ "$ssn" = "$3" ] && break
		sleep 0.05
	done
	check_eq "$1: v$2 live" "$3" "$live"
	check_eq "$1: v$2 per ss" "$3" "$ssn"
}

# counter VERSION FIELD: the version's counter as bpftool prints the pinned map.
counter() {
	bpftool -j map dump pinned "$BPFDIR/versions" |
		jq ".[].formatted | select(.key.version == $1) | .value.$2"
}
# counter_is DESCRIPTION VERSION FIELD WANT: bounded wait for the counter to settle.
counter_is() {
	local got i
	for i in $(seq "$(slow 20)"); do
		got=$(counter "$2" "$3")
		[ "$got" = "$4" ] && break
		sleep 0.05
	done
	check_eq "$1: v$2 $3" "$4" "$got"
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
# conn_pid FD: pid of the server process holding this shell's connection FD
# (the server side whose peer address is the client's local address).
conn_pid() {
	local peer
	peer=$(ss -Htnp state established '( dport = :8080 )' |
		awk -v u="pid=$$,fd=$1)" 'index($0, u) {print $3; exit}')
	[ -n "$peer" ] || return 1
	ss -Htnp state established '( sport = :8080 )' |
		awk -v p="$peer" '$4 == p' | sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | head -1
}

# A foreign server on another port, started before this shell holds any
# client socket (it would inherit them).
"$DEMO" --listen 127.0.0.1:9090 2>/dev/null &
EXTRA_PIDS=$!
for _ in $(seq "$(slow 50)"); do curl -s -o /dev/null http://127.0.0.1:9090/ && break; sleep 0.1; done

open_conns 8 127.0.0.1 request
open_conns 6 ::1 request
same "14 accepted (8 IPv4, 6 IPv6)" 1 14

# The connection hash (seeded per boot) spreads v1's connections over its two
# instances; the server-side close below needs both to hold some.  Observe
# the spread instead of assuming it.  All 14 on one instance (1 run in 8192):
# more IPv4 connections, each a fresh draw, until the other holds one too
# (bounded: 32 more).  The instance with more connections (at least 7) is the
# survivor and gives up the 5 client-side closes; the other one is killed.
# FDS is reordered: the survivor's connections first, then the victim's.
read -r v1a v1b <<<"$(version_pids 1 | tr '\n' ' ')"
on_a=() on_b=()
spread() { # spread FD...: append each connection to the list of its instance
	local fd p
	for fd in "$@"; do
		p=$(conn_pid "$fd")
		if [ "$p" = "$v1a" ]; then on_a+=("$fd")
		elif [ "$p" = "$v1b" ]; then on_b+=("$fd")
		else echo "connection fd $fd: server pid '$p', not one of v1's ($v1a $v1b)"; fi
	done
}
spread "${FDS[@]}"
for _ in $(seq 32); do
	[ ${#on_a[@]} -gt 0 ] && [ ${#on_b[@]} -gt 0 ] && break
	open_conns 1 127.0.0.1 request
	same "one more connection accepted" 1 ${#FDS[@]}
	spread "${FDS[-1]}"
done
N1=${#FDS[@]}
check_eq "v1's $N1 connections each found on one of its 2 instances" $N1 $((${#on_a[@]} + ${#on_b[@]}))
if [ ${#on_a[@]} -ge ${#on_b[@]} ]; then
	victim=$v1b n_victim=${#on_b[@]} FDS=("${on_a[@]}" "${on_b[@]}")
else
	victim=$v1a n_victim=${#on_a[@]} FDS=("${on_b[@]}" "${on_a[@]}")
fi
check "both of v1's instances hold connections ($((N1 - n_victim)) and $n_victim)" test "$n_victim" -gt 0

# v2 never accepts: its connections stay queued, and count.
check "deploy v2 (never accepts)" "$BATON" deploy web -- "$DEMO" --no-accept
open_conns 5 127.0.0.1
open_conns 4 ::1
same "9 queued on v2's listeners" 2 9
same "v1 keeps its $N1 while draining" 1 $N1
check_eq "v1 is not signalled while it has connections" false "$(field 1 signalled)"

close_conns 0 5 # client side, all five on the survivor
same "5 closed by clients" 1 $((N1 - 5))
check_eq "v1 closed total" 5 "$(field 1 closed)"

# The foreign server's connections are not counted.
for _ in 1 2 3; do curl -s -o /dev/null http://127.0.0.1:9090/; done
check_eq "foreign connections not counted (v1 accepted)" $N1 "$(field 1 accepted)"
check_eq "foreign connections not counted (v2 accepted)" 9 "$(field 2 accepted)"

# Server side: one of v1's instances dies; its connections close (the
# survivor keeps at least 2).
kill -9 "$victim"
wait_gone 2 "$victim"
same "an instance's $n_victim connections closed by the server side" 1 $((N1 - 5 - n_victim))
check "v1 still has the other instance's connections" test "$(field 1 live)" -gt 0
check_eq "normal closes from both sides are not resets: v1 resets" 0 "$(counter 1 resets)"

# bpftool prints the counters with field names and the right numbers.
v2json=$(bpftool -j map dump pinned "$BPFDIR/versions" |
	jq -c '.[].formatted | select(.key.version == 2) | .value')
check_eq "bpftool: v2 counters by name" \
	'{"live":9,"accepted":9,"closed":0,"migrated_in":0,"resets":0,"lost":0}' "$v2json"
check "bpftool: key names" grep -q '"service"' <<<"$(bpftool -j map dump pinned "$BPFDIR/versions")"

# baton watch shows the live counts.
w=$("$BATON" watch -n 0.2 --count 2 web)
check "watch prints two frames" test "$(grep -c '^SERVICE' <<<"$w")" = 2
check "watch shows v2 with 9 live" grep -Eq '^ +v2 +active +100.0% +9 ' <<<"$w"

# The rest of v1's connections close: v1 reaches 0 and gets its signal at once.
close_conns 5 $((N1 - 5))
for _ in $(seq "$(slow 40)"); do grep -q "web v1: last connection closed" "$T/agent.log" && break; sleep 0.05; done
# The signal goes out in the loop turn the kernel's event wakes (the ring
# buffer's fd): the agent's own share is that turn's CPU before it, which a
# loaded machine does not stretch; the wall-clock figure, from the kernel's
# timestamp, adds the scheduler's wake-up (make bench's switch part measures
# it on a quiet machine; 7.9 ms here once at load 19).
line=$(grep -m1 "web v1: last connection closed; signalled" "$T/agent.log")
us=$(sed -n 's/.*signalled \([0-9]*\) us later.*/\1/p' <<<"$line")
cpu=$(sed -n 's/.*(\([0-9]*\) us of the agent.s CPU in that loop turn).*/\1/p' <<<"$line")
echo "v1 signalled ${us:-?} us after its last close"
check "v1 signalled in the loop turn that saw its last close, ${cpu:-?} us of its CPU into it (< $(slow 1000))" \
	test "${cpu:-999999}" -lt "$(slow 1000)"

# Server-side resets: v3 aborts every connection once its request is in.
check "deploy v3 (--reset-every 1)" "$BATON" deploy web -- "$DEMO" --reset-every 1
check_eq "v3 is active" 3 "$(active_version)"
nstat_snap "$T/nstat.v3.before"
bad=0
for i in $(seq 10); do # 6 over IPv4, 4 over IPv6
	host=127.0.0.1
	[ "$i" -gt 6 ] && host='[::1]'
	rc=0
	curl -gs -o /dev/null --max-time "$(slow 2)" "http://$host:8080/" || rc=$?
	[ "$rc" = 56 ] || { echo "request $i: curl exit $rc, want 56 (reset)"; bad=$((bad + 1)); }
done
nstat_snap "$T/nstat.v3.after"
check_eq "v3: all 10 requests reset" 0 "$bad"
check_eq "v3: the kernel sent 10 RSTs" 10 "$(nstat_delta "$T/nstat.v3.before" "$T/nstat.v3.after" TcpOutRsts)"
counter_is "server-side aborts" 3 resets 10
counter_is "server-side aborts" 3 closed 10
counter_is "server-side aborts" 3 live 0

# Client-side resets: v4 answers; its clients abort with SO_LINGER {1, 0}.
check "deploy v4" "$BATON" deploy web -- "$DEMO" --idle-ms 600000
check_eq "v4 is active" 4 "$(active_version)"
nstat_snap "$T/nstat.v4.before"
python3 - <<'PY' >"$T/client-resets.out" 2>&1
import socket, struct
linger0 = struct.pack("ii", 1, 0)
# 4 after their answer, 4 in the middle of a request (nothing of the server's in
# flight either way, so the RSTs are exactly the clients'); half over IPv6.
for i in range(8):
    host = "::1" if i % 2 else "127.0.0.1"
    s = socket.create_connection((host, 8080), timeout=3)
    if i < 4:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200"), "no answer"
    else:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
    s.close()
print("8 client resets")
PY
check "v4: 8 clients reset their connections" grep -qx "8 client resets" "$T/client-resets.out"
counter_is "client-side aborts" 4 closed 8
nstat_snap "$T/nstat.v4.after"
check_eq "v4: the clients sent 8 RSTs, v4 none" 8 \
	"$(nstat_delta "$T/nstat.v4.before" "$T/nstat.v4.after" TcpOutRsts)"
counter_is "client-side aborts are not counted" 4 resets 0
counter_is "client-side aborts" 4 live 0
