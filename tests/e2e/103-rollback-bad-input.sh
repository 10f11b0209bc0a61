#!/bin/bash
# SPDX-License-Identifier: MIT
# The rollback window's bad input: each a one-line error naming the problem
# and the fix, and nothing changes (the active version and baton history
# stay as they were): rollback with no previous version, --to the current
# version, --to a version not remembered, --to malformed, --to while a
# rollout runs, a remembered command that is gone, history of an unknown
# service, keep-versions out of range (config check and reload).
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 2s" "kill-after = 1s"
start_agent || exit 1
cp "$T/web.conf" "$T/good.conf"

# unchanged DESCRIPTION: the active version and the history are as saved by snap.
snap() { { active_version; "$BATON" history web --json; } >"$T/snap"; }
unchanged() { { active_version; "$BATON" history web --json; } >"$T/snap2"; check "$1: nothing changed" cmp -s "$T/snap" "$T/snap2"; }

snap
expect_err "rollback with only v1" "no previous version to roll back to" "$BATON" rollback web
unchanged "no previous version"
expect_err "--to the current version" "v1 is the current version" "$BATON" rollback web --to v1
unchanged "--to v1"

# v2 from a copy of the server that is removed once v2 has exited.
cp "$DEMO" "$T/server-v2"
check "deploy v2 (a copy of the server)" "$BATON" deploy web -- "$T/server-v2"
check "deploy v3" "$BATON" deploy web -- "$DEMO"
p=$(version_pids 2)
# shellcheck disable=SC2086
[ -z "$p" ] || check "v2 exits" wait_gone 5 $p
rm -f "$T/server-v2"
snap
expect_err "--to a version never deployed" "v9 is not in the rollback window (it remembers v1 v2 v3" \
	"$BATON" rollback web --to v9
unchanged "--to v9"
expect_err "--to malformed" "--to takes a version as baton history lists it (v3), not \"x2\"" \
	"$BATON" rollback web --to x2
expect_err "--to v0" "--to takes a version" "$BATON" rollback web --to v0
unchanged "--to malformed"
expect_err "a remembered command that is gone" ": rollback: /[^ ]*/server-v2 (the command of v2): No such file or directory; restore it" \
	"$BATON" rollback web
unchanged "command gone"
expect_err "history of an unknown service" "unknown service nope" "$BATON" history nope
expect_err "history without a service" "which service" "$BATON" history

# --to while a rollout runs: refused, and the rollout goes on.
"$BATON" deploy web -- "$DEMO" --ready-delay-ms "$(slow 3000)" >"$T/deploy.out" 2>&1 &
dep=$!
for _ in $(seq "$(slow 50)"); do [ -n "$(version_pids 4)" ] && break; sleep 0.1; done
expect_err "--to during a rollout" "the rollout of v4 is in progress" "$BATON" rollback web --to v1
wait $dep; rc=$?
check "the rollout went on: v4 deployed" test $rc = 0
check_eq "v4 is active" 4 "$(active_version)"

# keep-versions out of range: refused by the config check and by reload.
snap
for bad in 1 21 many; do
	sed "s/^\[service web\]\$/[service web]\nkeep-versions = $bad/" "$T/good.conf" >"$T/bad.conf"
	expect_err "agent -n with keep-versions = $bad" "keep-versions must be 2..20" \
		"$BATON" agent -n -f "$T/bad.conf"
	cp "$T/bad.conf" "$T/web.conf"
	expect_err "reload with keep-versions = $bad" "keep-versions must be 2..20" "$BATON" reload
	unchanged "reload with keep-versions = $bad"
done
cp "$T/good.conf" "$T/web.conf"
check_eq "keep-versions is still 5" 5 "$("$BATON" history web | sed -n 's/.*keep-versions \([0-9]*\).*/\1/p')"
