#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-instance live connections, as the kernel counts them (inst_live), and
# the rolling rule they serve: the old instance to retire first is the one
# with the fewest live connections.
#  1. 40 idle connections spread over 4 instances: each process's live in
#     baton status --json is exactly what ss sees it hold, before and after
#     the test closes some of them;
#  2. the instance with the most connections is brought down to 1 (the
#     unique fewest): a rolling deploy (max-surge 1, max-unavailable 0)
#     retires exactly that one first, and logs its count (1);
#  3. every other old instance still holds all its connections then;
#  4. baton abort: the instance that left starts again and, once ready, is
#     in the map: it takes some of 40 new connections (its listeners are
#     new, made at its start, so it must be placed after it).
. "$(dirname "$0")/lib.sh"

write_conf "instances = 4" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" \
	"steering = per-connection" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
	"pause = 60s"
start_agent || exit 1
N=40

# server_counts: "pid count" per demo-server process holding an established
# connection on 8080 (ss, from the sockets' owners: the ground truth).
server_counts() {
	ss -tnpH state established '( sport = :8080 )' |
		sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | sort | uniq -c | awk '{print $2, $1}' | sort -n
}
# baton_counts: "pid live" per alive v1 process with a connection, from status.
baton_counts() {
	"$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 1) |
		.processes[] | select(.alive and .live > 0) | "\(.pid) \(.live)"' | sort -n
}
# counts_agree: status and ss agree exactly (bounded wait: accepts and closes are async).
counts_agree() {
	local i
	for i in $(seq "$(slow 50)"); do
		[ "$(server_counts)" = "$(baton_counts)" ] && [ -n "$(server_counts)" ] && return 0
		sleep 0.1
	done
	echo "ss: $(server_counts | tr '\n' ';') status: $(baton_counts | tr '\n' ';')"
	return 1
}

FDS=()
for k in $(seq $N); do
	exec {fd}<>/dev/tcp/127.0.0.1/8080 || { not_ok "connection $k"; exit 1; }
	FDS+=("$fd")
done
check "status shows each instance's live connections exactly as ss sees them" counts_agree
check_eq "they add up to the version's live" $N \
	"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1) | .processes[].live // 0] | add')"
check_eq "and to the kernel's count of the version" $N \
	"$("$BATON" status web --json | jq '.[0].versions[] | select(.version == 1) | .live')"
server_counts >"$T/counts.before"
cat "$T/counts.before"
check_eq "all 4 instances got some" 4 "$(wc -l <"$T/counts.before")"

# The instance with the most connections goes down to 1: close the others
# from this side (ss joins this shell's fds to the server's pids by port).
read -r target most < <(sort -k2,2nr "$T/counts.before" | head -1)
ss -tnpH state established '( dport = :8080 )' |
	sed -n "s/^[0-9]* *[0-9]* *[^ ]*:\([0-9]*\) .*pid=$$,fd=\([0-9]*\).*/\1 \2/p" | sort >"$T/client"
ss -tnpH state established '( sport = :8080 )' |
	sed -n 's/^[0-9]* *[0-9]* *[^ ]* *[^ ]*:\([0-9]*\) .*pid=\([0-9]*\),.*/\1 \2/p' | sort >"$T/server"
join "$T/client" "$T/server" | awk -v p="$target" '$3 == p {print $2}' >"$T/target-fds"
check_eq "this shell holds the target's $most connections" "$most" "$(wc -l <"$T/target-fds")"
for fd in $(tail -n +2 "$T/target-fds"); do exec {fd}>&-; done
check "after the closes, status and ss still agree" counts_agree
check_eq "the target holds 1" "$target 1" "$(server_counts | awk -v p="$target" '$1 == p')"
others_min=$(server_counts | awk -v p="$target" '$1 != p {print $2}' | sort -n | head -1)
check "every other instance holds more (so the fewest is unique)" test "${others_min:-0}" -gt 1
server_counts >"$T/counts.mid"

# The deploy client must not inherit the held connections.
(
	for fd in "${FDS[@]}"; do exec {fd}>&- 2>/dev/null; done
	exec "$BATON" deploy web -- "$DEMO"
) >"$T/deploy" 2>&1 &
DEPLOY=$!
EXTRA_PIDS=$DEPLOY
retired=
for i in $(seq "$(slow 100)"); do
	retired=$(sed -n 's/.*v1: instance [0-9]* (pid \([0-9]*\), \(-*[0-9]*\) live connection(s)) leaves.*/\1 \2/p' \
		"$T/agent.log" | head -1)
	[ -n "$retired" ] && break
	sleep 0.1
done
echo "retired first: $retired (target $target)"
check_eq "the instance with the fewest live connections retires first, with its kernel count" \
	"$target 1" "$retired"
check_eq "only one old instance left so far" 1 \
	"$(grep -c 'v1: instance [0-9]* (pid [0-9]*, .* live connection(s)) leaves' "$T/agent.log")"
check_eq "the others still hold every connection" \
	"$(grep -v "^$target " "$T/counts.mid")" "$(server_counts | grep -v "^$target ")"

# 4. baton abort: the instance that left starts again in its slot and, once
# ready, takes new connections (its new listeners are in the map).
slot=$(sed -n "s/.*v1: instance \([0-9]*\) (pid $target, .* leaves.*/\1/p" "$T/agent.log" | head -1)
"$BATON" abort web >/dev/null
rc=0
wait "$DEPLOY" || rc=$?
cat "$T/deploy"
check "the deploy exits non-zero: rolled back" test "$rc" -ne 0
check_eq "v1 is active" 1 "$(active_version)"
check_eq "4 v1 processes run, all ready" 4 \
	"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1) | .processes[] | select(.alive and .ready)] | length')"
again=$("$BATON" status web --json | jq -r --argjson i "${slot:-0}" '.[0].versions[] | select(.version == 1) | .processes[] | select(.instance == $i) | .pid')
check "instance $slot runs again as a new process" test -n "$again" -a "$again" != "$target"
for k in $(seq $N); do
	exec {fd}<>/dev/tcp/127.0.0.1/8080 || { not_ok "new connection $k"; break; }
	FDS+=("$fd")
done
check "status and ss agree again" counts_agree
got=$(server_counts | awk -v p="$again" '$1 == p {print $2}')
echo "the restarted instance (pid $again) holds ${got:-0} of $N new connections"
check "the restarted instance takes new connections" test "${got:-0}" -gt 0
for fd in "${FDS[@]}"; do exec {fd}>&- 2>/dev/null; done
