#!/bin/bash
# SPDX-License-Identifier: MIT
# What the agent checks before it changes anything: each missing kernel
# feature (BTF, bpffs, cgroup v2) named in one line; a state file it cannot
# read; and running services that do not match the configuration it is
# given.  Each refusal leaves nothing behind and running services untouched.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify"
# In a private mount namespace, take one feature away and start the agent.
without() {
	unshare -m --propagation private bash -c "$1 && exec \"$BATON\" agent -d -f \"$T/web.conf\""
}
cg_umount='for m in $(awk '\''$3 == "cgroup2" {print $2}'\'' /proc/self/mounts); do umount -l $m; done'
expect_err "no bpffs" "bpffs not mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)" \
	without "umount -l /sys/fs/bpf"
expect_err "no cgroup v2" "no cgroup v2 mount" without "$cg_umount"
: >"$T/empty"
expect_err "no kernel BTF" "kernel BTF missing" \
	without "mount --bind $T/empty /sys/kernel/btf/vmlinux"
check "nothing was started" test -z "$(test_pids)"
check "no pin directory was made" test ! -e "$BPFDIR"

start_agent || exit 1
pids=$(version_pids 1)
kill -9 "$AGENT"; wait_gone 5 "$AGENT"
check "the state file is root's only (0600)" test "$(stat -c %a "$T/run/state.json")" = 600
cp "$T/run/state.json" "$T/state.good"
echo '{"format": 99}' >"$T/run/state.json"
expect_err "a state file from another format" "is unreadable or from another baton version" \
	"$BATON" agent -d -f "$T/web.conf"
echo 'garbage' >"$T/run/state.json"
expect_err "a garbage state file" "is unreadable" "$BATON" agent -d -f "$T/web.conf"
cp "$T/state.good" "$T/run/state.json"
cp "$T/web.conf" "$T/web.conf.good"
sed -i 's/^listen = \[::1\]:8080$/listen = [::1]:8081/' "$T/web.conf"
expect_err "a running service on other addresses than the configuration's" \
	"service web runs on other listen addresses than this configuration gives it" \
	"$BATON" agent -d -f "$T/web.conf"
sed -i 's/^\[service web\]$/[service api]/' "$T/web.conf"
expect_err "a running service missing from the configuration" \
	"service web is running but not in this configuration" "$BATON" agent -d -f "$T/web.conf"
check_eq "v1 kept running through every refusal" "$pids" \
	"$(for p in $pids; do kill -0 "$p" 2>/dev/null && echo "$p"; done)"
check_eq "and still serves" v1 "$(served_by http://127.0.0.1:8080/)"
cp "$T/web.conf.good" "$T/web.conf"
start_agent || exit 1
check_eq "with the right configuration the agent takes v1 over" "$pids" "$(version_pids 1)"
check "and says so" grep -q "took over 1 version(s) from the previous agent" "$T/agent.log"
