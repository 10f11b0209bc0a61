#!/bin/bash
# SPDX-License-Identifier: MIT
# A hook that does not die when killed (issue 17, item 4): the after-switch
# hook hangs, and the test freezes it in a cgroup v1 freezer, where a
# SIGKILL stays pending until the cgroup thaws (what a process in D state
# does).  At hook-timeout the agent kills it, rolls back, and goes on
# answering; once thawed, the hook dies and the agent reaps it (no zombie).
# Before, the agent waited for it with a blocking waitpid: frozen too.
. "$(dirname "$0")/lib.sh"

FRZ=$(awk '$3 == "cgroup" && $4 ~ /(^|,)freezer(,|$)/ {print $2; exit}' /proc/self/mounts)
if [ -z "$FRZ" ]; then
	not_ok "this test needs a cgroup v1 freezer hierarchy (none in /proc/self/mounts)"
	exit 1
fi
CG=$FRZ/baton-e2e-$TEST_ID
mkdir "$CG"
thaw_and_remove() {
	[ -d "$CG" ] || return 0
	echo THAWED >"$CG/freezer.state"
	for _ in $(seq 50); do rmdir "$CG" 2>/dev/null && return 0; sleep 0.1; done
}
trap 'thaw_and_remove; cleanup' EXIT

cat >"$T/hook.sh" <<EOS
#!/bin/sh
echo \$\$ >$T/hook.pid
exec sleep 60
EOS
chmod +x "$T/hook.sh"
write_conf "instances = 1" "ready = notify" "after-switch = $T/hook.sh" "hook-timeout = 1s" \
	"drain-timeout = 2s" "kill-after = 1s"
start_agent || exit 1

"$BATON" deploy web -- "$DEMO" >"$T/deploy.out" 2>&1 &
DEPLOY=$!
for _ in $(seq 100); do [ -s "$T/hook.pid" ] && break; sleep 0.05; done
HOOK=$(cat "$T/hook.pid")
check "the after-switch hook runs (pid $HOOK)" kill -0 "$HOOK"
echo "$HOOK" >"$CG/cgroup.procs"
echo FROZEN >"$CG/freezer.state"
for _ in $(seq 50); do grep -q FROZEN "$CG/freezer.state" && break; sleep 0.1; done
check_eq "the hook is frozen" FROZEN "$(cat "$CG/freezer.state")"

for _ in $(seq 100); do grep -q "killed the after-switch hook" "$T/agent.log" && break; sleep 0.1; done
check "the agent killed the hook at hook-timeout" grep -q "killed the after-switch hook" "$T/agent.log"
check "the killed hook is still there, frozen with SIGKILL pending" test -d "/proc/$HOOK"
check "the agent answers status meanwhile" timeout 5 "$BATON" status web
check "the deploy ends (rolled back)" wait_gone 10 "$DEPLOY"
check_eq "v1 is active again" 1 "$(timeout 5 "$BATON" status web --json | jq -r '.[0].active')"
check "v1 serves" only_version http://127.0.0.1:8080/ v1 5

thaw_and_remove
reaped() {
	local st
	for _ in $(seq 50); do
		st=$(awk '{print $3}' "/proc/$HOOK/stat" 2>/dev/null)
		[ -z "$st" ] && return 0
		sleep 0.1
	done
	echo "pid $HOOK is still there, state $st"
	return 1
}
check "thawed, the hook died and the agent reaped it" reaped
check "the agent still answers" timeout 5 "$BATON" status web
