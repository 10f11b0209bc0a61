#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input: each case gets a one-line error naming the problem and the fix, a
# non-zero exit, and changes nothing (the running version keeps its processes
# and its traffic).
. "$(dirname "$0")/lib.sh"


write_conf "instances = 2" "ready = notify" "ready-timeout = 1s" "drain-timeout = 2s" \
	"kill-after = 1s"

# Agent-side errors before anything runs.
expect_err "agent not running" "agent not running" "$BATON" status
chmod 755 "$T"
expect_err "agent as non-root" "must run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BATON" agent -d -f "$T/web.conf"
expect_err "CLI as non-root" "must run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BATON" deploy web -- /bin/true
check "no pin directory was made" test ! -e "$BPFDIR"

cp "$T/web.conf" "$T/missing.conf"
sed -i "s|^exec = .*|exec = /nonexistent/server|" "$T/missing.conf"
expect_err "executable missing in config" "/nonexistent/server" \
	"$BATON" agent -d -f "$T/missing.conf"
cp "$T/web.conf" "$T/typo.conf"
echo "instance = 2" >>"$T/typo.conf"
expect_err "config typo names file, line and fix" "typo.conf:[0-9]*: .*did you mean" \
	"$BATON" agent -n -f "$T/typo.conf"
check "agent -n accepts the good config" "$BATON" agent -n -f "$T/web.conf"

# bpffs missing, in a private mount namespace where it is unmounted.
expect_err "bpffs not mounted" "bpffs not mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)" \
	unshare -m sh -c "umount /sys/fs/bpf 2>/dev/null; exec $BATON agent -d -f $T/web.conf"

# A foreign process holds the port.
"$DEMO" --listen 127.0.0.1:8080 --version foreign 2>/dev/null &
EXTRA_PIDS=$!
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
expect_err "listen port held by a foreign process" "127.0.0.1:8080: address in use by another process" \
	"$BATON" agent -d -f "$T/web.conf"
check_eq "the foreign server still serves" foreign "$(served_by http://127.0.0.1:8080/)"
check "no pin directory was made" test ! -e "$BPFDIR"
kill "$EXTRA_PIDS"; wait "$EXTRA_PIDS" 2>/dev/null

start_agent || exit 1
pids=$(version_pids 1)
expect_err "second agent" "another agent is running" "$BATON" agent -d -f "$T/web.conf"
expect_err "unknown service (status)" "unknown service nope" "$BATON" status nope
expect_err "unknown service (deploy)" "unknown service nope" "$BATON" deploy nope -- "$DEMO"
expect_err "unknown service (rollback)" "unknown service nope" "$BATON" rollback nope
expect_err "bad service name" "service name" "$BATON" rollback 'We!rd'
expect_err "deploy: executable missing" "/nonexistent/server: No such file" \
	"$BATON" deploy web -- /nonexistent/server
expect_err "deploy: relative path" "absolute path" "$BATON" deploy web -- demo-server
expect_err "deploy: no command" "no command given" "$BATON" deploy web
expect_err "deploy: ready timeout" "not ready within ready-timeout 1000 ms" \
	"$BATON" deploy web -- "$DEMO" --ready-delay-ms 3000
expect_err "deploy: exits before ready" "exited with status 3 before it was ready" \
	"$BATON" deploy web -- "$DEMO" --fail-ready
# Executable to the agent's access() check, but its execve fails in the child (no
# shebang, not ELF): the agent does not wait for that; the instance's exit says it.
printf 'not a program\n' >"$T/not-a-program"
chmod 755 "$T/not-a-program"
expect_err "deploy: exec fails in the child" \
	"cannot start $T/not-a-program: exec: Exec format error before it was ready" \
	"$BATON" deploy web -- "$T/not-a-program"
expect_err "unknown command" "unknown command" "$BATON" frobnicate
check "help for one command" grep -q "^usage: baton deploy SERVICE" <<<"$("$BATON" help deploy)"
expect_err "help for an unknown command" 'no help for "nope"' "$BATON" help nope

# Rollout commands: bad arguments, and no rollout to act on.
expect_err "deploy: unknown strategy" "--strategy is bluegreen, canary or rolling" \
	"$BATON" deploy web --strategy blue -- "$DEMO"
expect_err "deploy: steps not increasing" "--steps:" "$BATON" deploy web --steps 50,25 -- "$DEMO"
expect_err "deploy: bad bake" "--bake:" "$BATON" deploy web --bake soon -- "$DEMO"
expect_err "deploy: steps with bluegreen" "belong to --strategy canary" \
	"$BATON" deploy web --strategy bluegreen --steps 5 -- "$DEMO"
expect_err "promote without a rollout" "no rollout in progress" "$BATON" promote web
expect_err "pause without a rollout" "no rollout in progress" "$BATON" pause web
expect_err "abort without a rollout" "no rollout to abort" "$BATON" abort web
expect_err "weight without a rollout" "no rollout in progress" "$BATON" weight web v1=100
expect_err "weight: bad syntax" "expected vN=PERCENT" "$BATON" weight web 2:10
expect_err "weight: bad percent" "v2:" "$BATON" weight web v2=ten
expect_err "weight: nothing given" "give a version's share" "$BATON" weight web
expect_err "--full is promote's" "--full is an option of promote" "$BATON" pause web --full
expect_err "pin: host bits set" "has host bits set" "$BATON" pin web 10.1.2.3/16 v1
expect_err "pin: bad CIDR" "pin:" "$BATON" pin web 10.1.0.0/99 v1
expect_err "pin: unknown version" "has no running v7" "$BATON" pin web 10.1.0.0/16 v7
expect_err "pin: missing version" "give a client CIDR and a version" "$BATON" pin web 10.1.0.0/16
expect_err "unpin: no such pin" "has no pin for 10.9.0.0/16" "$BATON" unpin web 10.9.0.0/16

# The control socket itself: garbage, a wrong type, an unknown command.
ctl() {
	python3 - "$BATON_CONTROL" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().strip())
PY
}
check "control: garbage is answered with an error" grep -q '"ok": *false.*not JSON' <<<"$(ctl 'hello')"
check "control: wrong type" grep -q 'must be a string' <<<"$(ctl '{"cmd":"status","service":7}')"
check "control: unknown command" grep -q 'unknown command' <<<"$(ctl '{"cmd":"explode"}')"
check "control: deploy without argv" grep -q 'needs a command' <<<"$(ctl '{"cmd":"deploy","service":"web"}')"
check "control: bad steps" grep -q 'steps must be' \
	<<<"$(ctl '{"cmd":"deploy","service":"web","argv":["'"$DEMO"'"],"steps":[500,100]}')"
check "control: bad weights" grep -q 'weight needs' <<<"$(ctl '{"cmd":"weight","service":"web","weights":[1]}')"
check "control: pin without cidr" grep -q 'needs a client CIDR' <<<"$(ctl '{"cmd":"pin","service":"web"}')"

# Nothing changed: v1 active, same processes, still serving.
check_eq "v1 still active" 1 "$(active_version)"
check_eq "v1 kept its processes" "$pids" "$(version_pids 1)"
check "v1 still serves" only_version http://127.0.0.1:8080/ v1 5
check "agent still running" kill -0 "$AGENT"
