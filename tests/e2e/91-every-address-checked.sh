#!/bin/bash
# SPDX-License-Identifier: MIT
# Readiness and health are checked on every listen address of an instance,
# not only the first (issue 17, item 8).  The service listens on 127.0.0.1
# and [::1]; the version under test serves only its first socket (it closes
# fd 4 and is told LISTEN_FDS=1), so IPv6 clients would queue on a socket
# nobody accepts from.  With ready = tcp and ready = http the deploy fails;
# with health = http the rollout rolls back, naming the address.
. "$(dirname "$0")/lib.sh"

# The demo server on its IPv4 socket only.
V4ONLY=(/bin/sh -c 'exec 4<&-; LISTEN_FDS=1 LISTEN_FDNAMES= exec "$0" "$@"' "$DEMO")

# shellcheck disable=SC2317 # (called through check)
v6_served_by() { only_version "http://[::1]:8080/" "$1" 5; }

for ready in tcp http; do
	path=()
	[ $ready = http ] && path=("health-path = /healthz")
	write_conf "instances = 2" "ready = $ready" "${path[@]}" "ready-timeout = 2s" \
		"drain-timeout = 2s" "kill-after = 1s" "health = none"
	start_agent || exit 1
	check "ready = $ready: a version that accepts on both addresses deploys" \
		"$BATON" deploy web -- "$DEMO"
	out=$("$BATON" deploy web -- "${V4ONLY[@]}" 2>&1)
	rc=$?
	check "ready = $ready: a version deaf on [::1]:8080 fails the deploy ($(tail -1 <<<"$out"))" test $rc -ne 0
	check "ready = $ready: because it is not ready" grep -q "not ready within ready-timeout" <<<"$out"
	check_eq "ready = $ready: v2 stays active" 2 "$(active_version)"
	check "ready = $ready: IPv6 clients still reach v2" v6_served_by v2
	"$BATON" shutdown --stop >/dev/null
	wait_gone 10 "$AGENT"
done

# ready = none: with notify the deaf canary would now fail its accept probe on
# [::1]:8080 before any traffic (the readiness part above); here the health
# checks must catch it.
write_conf "instances = 1" "ready = none" "health = http" "health-path = /healthz" \
	"health-interval = 200ms" "health-timeout = 300ms" "health-threshold = 2" \
	"ready-timeout = 2s" "drain-timeout = 2s" "kill-after = 1s"
start_agent || exit 1
out=$("$BATON" deploy web --steps 50,100 --bake 3s -- "${V4ONLY[@]}" 2>&1)
rc=$?
check "health = http: the canary deaf on [::1]:8080 is rolled back ($(tail -1 <<<"$out"))" test $rc -ne 0
check_eq "health = http: v1 is active" 1 "$(active_version)"
why=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
check "the rollback names the address ($why)" grep -qF "[::1]:8080" <<<"$why"
check "IPv6 clients reach v1" v6_served_by v1
"$BATON" shutdown --stop >/dev/null
