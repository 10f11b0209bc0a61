#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input: each case gets a one-line error naming the problem and the fix, a
# non-zero exit, and changes nothing (the running version keeps its processes
# and its traffic).
. "$(dirname "$0")/lib.sh"

# expect_err DESCRIPTION PATTERN COMMAND...: non-zero exit and exactly one error
# line ("baton..."; a deploy's progress lines may come before it) matching PATTERN.
expect_err() {
	local d=$1 pat=$2 out rc
	shift 2
	out=$("$@" 2>&1); rc=$?
	if [ $rc -ne 0 ] && [ "$(grep -c '^baton' <<<"$out")" = 1 ] &&
		grep '^baton' <<<"$out" | grep -q -- "$pat"; then
		ok "$d: $out"
	else
		not_ok "$d: rc=$rc, output: $out"
	fi
}

write_conf "instances = 2" "ready = notify" "ready-timeout = 1s" "drain-timeout = 2s" \
	"kill-after = 1s"

# Agent-side errors before anything runs.
expect_err "agent not running" "agent not running" "$BATON" status
chmod 755 "$T"
expect_err "agent as non-root" "must run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BATON" agent -d -f "$T/web.conf"
expect_err "CLI as non-root" "must run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BATON" status
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
expect_err "unknown command" "unknown command" "$BATON" frobnicate
check "help for one command" grep -q "^usage: baton deploy SERVICE" <<<"$("$BATON" help deploy)"
expect_err "help for an unknown command" 'no help for "nope"' "$BATON" help nope

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

# Nothing changed: v1 active, same processes, still serving.
check_eq "v1 still active" 1 "$(active_version)"
check_eq "v1 kept its processes" "$pids" "$(version_pids 1)"
check "v1 still serves" only_version http://127.0.0.1:8080/ v1 5
check "agent still running" kill -0 "$AGENT"
