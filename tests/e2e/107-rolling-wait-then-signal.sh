#!/bin/bash
# SPDX-License-Identifier: MIT
# drain-policy = wait-then-signal in a rolling rollout: a retired old
# instance leaves the steering map but is not signalled while it has
# connections (the kernel's count of that instance); it keeps serving them,
# and gets its exit signal once the last one closed.
# Then, when the rollout ends, the old instances left to their version's
# drain (the last one serving, and a retired one still waiting) are each
# signalled at their own 0: the last one exits while the retired one still
# holds connections (the version's count is not 0 then).
. "$(dirname "$0")/lib.sh"

write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = wait-then-signal" "drain-timeout = 30s" "kill-after = 2s" \
	"steering = per-connection" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
	"pause = 60s"
start_agent || exit 1
N=12

FDS=()
for k in $(seq $N); do
	exec {fd}<>/dev/tcp/127.0.0.1/8080 || { not_ok "connection $k"; exit 1; }
	FDS+=("$fd")
done
# fds_of PID: this shell's fds whose connection the server process PID holds.
fds_of() {
	ss -tnpH state established '( dport = :8080 )' |
		sed -n "s/^[0-9]* *[0-9]* *[^ ]*:\([0-9]*\) .*pid=$$,fd=\([0-9]*\).*/\1 \2/p" | sort >"$T/client"
	ss -tnpH state established '( sport = :8080 )' |
		sed -n 's/^[0-9]* *[0-9]* *[^ ]* *[^ ]*:\([0-9]*\) .*pid=\([0-9]*\),.*/\1 \2/p' | sort >"$T/server"
	join "$T/client" "$T/server" | awk -v p="$1" '$3 == p {print $2}'
}
for i in $(seq "$(slow 30)"); do
	[ "$("$BATON" status web --json | jq '.[0].versions[0].live')" = $N ] && break
	sleep 0.1
done
for p in $(version_pids 1); do
	check "instance pid $p holds some of the $N connections" test -n "$(fds_of "$p")"
done

# The deploy client must not inherit the held connections (closing them here would not end them).
(
	for fd in "${FDS[@]}"; do exec {fd}>&-; done
	exec "$BATON" deploy web -- "$DEMO"
) >"$T/deploy" 2>&1 &
DEPLOY=$!
EXTRA_PIDS=$DEPLOY
retired=
for i in $(seq "$(slow 100)"); do
	retired=$(sed -n 's/.*v1: instance [0-9]* (pid \([0-9]*\), \([0-9]*\) live connection(s)) leaves.*/\1 \2/p' \
		"$T/agent.log" | head -1)
	[ -n "$retired" ] && break
	sleep 0.1
done
read -r rpid rconns <<<"$retired"
echo "retired: pid $rpid with $rconns connection(s)"
check "an old instance leaves with its connections" test "${rconns:-0}" -gt 0
mine=$(fds_of "$rpid")
check_eq "this shell holds them" "$rconns" "$(wc -w <<<"$mine")"
sleep 1
check "1 s later it still runs" running "$rpid"
check "and was not signalled" test -z "$(grep "retired instance [0-9] (pid $rpid) .*exit signal" "$T/agent.log")"
served=0
for fd in $mine; do
	printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' >&"$fd"
	line=
	read -r -t "$(slow 2)" line <&"$fd"
	[[ $line == "HTTP/1.1 200"* ]] && served=$((served + 1))
done
check_eq "it still serves them, out of the map" "$rconns" "$served"
for fd in $mine; do exec {fd}>&-; done
check "once they are closed, it is told to exit and exits" wait_gone 5 "$rpid"
check "the log says why" grep -q "retired instance [0-9] (pid $rpid) has no connection left: exit signal" "$T/agent.log"
"$BATON" promote web --full >/dev/null
rc=0
for fd in "${FDS[@]}"; do exec {fd}>&- 2>/dev/null; done
wait "$DEPLOY" || rc=$?
cat "$T/deploy"
check_eq "the rolling deploy completes" 0 "$rc"
check_eq "v2 is active" 2 "$(active_version)"

# 2. v2 -> v3 with max-surge 2: both new instances serve at once, and both
# old ones are left to their version's drain with their connections.
FDS=()
for k in $(seq $N); do
	exec {fd}<>/dev/tcp/127.0.0.1/8080 || { not_ok "v2 connection $k"; exit 1; }
	FDS+=("$fd")
done
for i in $(seq "$(slow 30)"); do
	[ "$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 2) | .live] | add')" = $N ] && break
	sleep 0.1
done
read -r first second <<<"$(version_pids 2 | tr '\n' ' ')"
check "both v2 instances hold connections" test -n "$(fds_of "$first")" -a -n "$(fds_of "$second")"
rc=0
(
	for fd in "${FDS[@]}"; do exec {fd}>&-; done
	exec timeout 30 "$BATON" deploy web --max-surge 2 -- "$DEMO"
) >"$T/deploy3" 2>&1 || rc=$?
cat "$T/deploy3"
check_eq "v3's rolling deploy completes" 0 "$rc"
check_eq "v3 is active" 3 "$(active_version)"
check "both v2 instances still run (they have connections)" running "$first"
check "both v2 instances still run (they have connections)" running "$second"
for fd in $(fds_of "$first"); do exec {fd}>&-; done
check "the first, at its own 0, is told to exit and exits" wait_gone 5 "$first"
check "the log says so" grep -q "web v2: instance [0-9] (pid $first) has no connection left: exit signal" \
	"$T/agent.log"
check "while the second, still holding connections, runs" running "$second"
check "unsignalled" test -z "$(grep "web v2: .*pid $second.*exit signal\|web v2: draining, sending" "$T/agent.log")"
check_eq "v2's count is the second's connections" "$(fds_of "$second" | wc -w)" \
	"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 2) | .live] | add')"
for fd in "${FDS[@]}"; do exec {fd}>&- 2>/dev/null; done
check "once its connections closed, it exits too" wait_gone 5 "$second"
