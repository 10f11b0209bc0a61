#!/bin/bash
# SPDX-License-Identifier: MIT
# Requests queued on an old version that is frozen (SIGSTOP) are not lost: the
# deploy switches to v2, v1 is killed at drain-timeout + kill-after, its
# listeners close with the requests still queued, and the steer program moves
# every one of them to v2 (net.ipv4.tcp_migrate_req stays 0 here).
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "drain-timeout = 1s" "kill-after = 1s" \
	"backlog = 1024"
start_agent || exit 1
check_eq "tcp_migrate_req is off in this namespace" 0 "$(sysctl -n net.ipv4.tcp_migrate_req)"
v1=$(version_pids 1)
kill -STOP "$v1"
# Every RST on loopback, to name the connection if one is reset.
rst_start "$T/rst" || not_ok "capture RSTs"
nstat_snap "$T/nstat.before"
curls=()
# A client that gives up closes its socket, and v2's answer to it then draws a
# reset: the clients' patience is a time bound, and scales.
for i in $(seq 50); do
	curl -s --max-time "$(slow 20)" -o "$T/c4.$i" http://127.0.0.1:8080/ & curls+=($!)
done
for i in $(seq 20); do
	curl -s --max-time "$(slow 20)" -o "$T/c6.$i" "http://[::1]:8080/" & curls+=($!)
done
# Every request is established and queued on v1's listeners (Recv-Q).
queued=0
for _ in $(seq "$(slow 50)"); do
	queued=$(ss -Hltn 'sport = :8080' | awk '{s += $2} END {print s + 0}')
	[ "$queued" -ge 70 ] && break
	sleep 0.1
done
check_eq "70 requests queued on frozen v1" 70 "$queued"
check "deploy v2 while v1 is frozen" "$BATON" deploy web -- "$DEMO"
check "v1 is killed within drain-timeout + kill-after" wait_gone 4 "$v1"
fails=0 codes=
for p in "${curls[@]}"; do wait "$p" || { codes="$codes $?"; fails=$((fails + 1)); }; done
check_eq "every queued client got an answer${codes:+ (curl exit codes:$codes)}" 0 "$fails"
served=$(cat "$T"/c4.* "$T"/c6.* 2>/dev/null | grep -c '^version=v2 ')
check_eq "all 70 were served by v2" 70 "$served"
nstat_snap "$T/nstat.after"
rst_stop
check_eq "TCPMigrateReqSuccess counts them" 70 \
	"$(nstat_delta "$T/nstat.before" "$T/nstat.after" TcpExtTCPMigrateReqSuccess)"
for k in TcpExtTCPMigrateReqFailure TcpAttemptFails TcpOutRsts TcpExtListenDrops; do
	check_eq "$k" 0 "$(nstat_delta "$T/nstat.before" "$T/nstat.after" $k)"
done
# A reset seen once in CI (TcpOutRsts 1, every client answered, not
# reproduced in 60 runs since): if one comes, say which connection it was.
if grep -q "Flags \[R" "$T/rst" 2>/dev/null; then
	echo "RSTs on loopback:"
	grep "Flags \[R" "$T/rst" | head -20
	echo "nstat counters that moved:"
	paste "$T/nstat.before" "$T/nstat.after" | awk '$2 != $4 {print "  " $1, $4 - $2}'
fi
check_eq "baton's migrated counter agrees" 70 \
	"$("$BATON" status web --json | jq '.[0].steer.migrated')"
# The connections are counted against the version that ends up holding them.
v2=$("$BATON" status web --json | jq -c '.[0].versions[] | select(.version == 2) |
	{live, migrated_in, closed}')
check_eq "v2 counts the 70 it was handed, and their close" \
	'{"live":0,"migrated_in":70,"closed":70}' "$v2"
