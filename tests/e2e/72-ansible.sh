#!/bin/bash
# SPDX-License-Identifier: MIT
# The fleet playbook (tools/ansible/rollout.yml) with Debian's ansible-core:
# against two "nodes" (network namespaces, each with its own agent) it rolls
# v2 out to both, one at a time; a build that fails its deploy on the first
# node stops the fleet rollout before the second; and it runs against
# localhost.
. "$(dirname "$0")/lib.sh"
command -v ansible-playbook >/dev/null || { not_ok "ansible-playbook not installed (tools/deps.sh)"; exit 1; }
export ANSIBLE_LOCAL_TEMP=$T/ansible-tmp ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=False
PLAY=$(cd "$(dirname "$0")/../.." && pwd)/tools/ansible/rollout.yml
NODES=()
node_cleanup() {
	local n
	for n in "${NODES[@]}"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$BPFDIR"-n1 "$BPFDIR"-n2
}
trap 'node_cleanup; cleanup' EXIT

# node N: an agent with service web (v1) in network namespace baton-TEST_ID-nN.
node() {
	local ns=baton-$TEST_ID-n$1 d=$T/n$1
	mkdir -p "$d"
	cat >"$d/web.conf" <<EOC
[agent]
control = $d/control.sock
bpf-dir = $BPFDIR-n$1
run-dir = $d/run
cgroup-dir = $CGDIR/n$1
[service web]
listen = 127.0.0.1:8080
exec = $DEMO
environment = E2E_TEST_ID=$TEST_ID
ready = notify
drain-policy = signal-then-wait
drain-timeout = 3s
kill-after = 1s
EOC
	# The agent in a new network namespace (ip netns exec would also give it a
	# fresh /sys without bpffs and cgroup2); the namespace is then named.
	unshare -n sh -c 'ip link set lo up && exec "$0" agent -d -f "$1"' "$BATON" "$d/web.conf" \
		>"$d/agent.log" 2>&1 &
	EXTRA_PIDS="${EXTRA_PIDS:-} $!"
	sleep 0.2
	ip netns attach "$ns" $! || return 1
	NODES+=("$ns")
	for _ in $(seq 100); do
		ip netns exec "$ns" "$BATON" status -s "$d/control.sock" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$d/agent.log"
	return 1
}
active_on() { ip netns exec "baton-$TEST_ID-n$1" "$BATON" status web -s "$T/n$1/control.sock" --json | jq -r '.[0].active'; }
check "node 1 up" node 1
check "node 2 up" node 2
cat >"$T/inventory" <<EOI
[nodes]
node1 ansible_connection=local baton_netns=baton-$TEST_ID-n1 baton_control=$T/n1/control.sock
node2 ansible_connection=local baton_netns=baton-$TEST_ID-n2 baton_control=$T/n2/control.sock
[local]
localhost ansible_connection=local baton_control=$T/control.sock
[all:vars]
ansible_python_interpreter=/usr/bin/python3
EOI

ansible-playbook -i "$T/inventory" "$PLAY" -e fleet=nodes -e service=web \
	-e "command=$DEMO" -e "baton=$BATON" >"$T/play1" 2>&1; rc=$?
tail -5 "$T/play1"
check_eq "the playbook rolls v2 to both nodes" 0 $rc
check_eq "node 1 runs v2" 2 "$(active_on 1)"
check_eq "node 2 runs v2" 2 "$(active_on 2)"
check "one node at a time" test "$(grep -c '^PLAY \[Roll out' "$T/play1")" -eq 2

ansible-playbook -i "$T/inventory" "$PLAY" -e fleet=nodes -e service=web \
	-e "command='$DEMO --fail-ready'" -e "baton=$BATON" >"$T/play2" 2>&1; rc=$?
tail -5 "$T/play2"
check "a failing build fails the playbook" test $rc -ne 0
check "node 1 kept v2 (baton refused the failing v3)" test "$(active_on 1)" = 2
check_eq "node 2 was never touched (no v3 tried)" 2 \
	"$(ip netns exec "baton-$TEST_ID-n2" "$BATON" status web -s "$T/n2/control.sock" --json |
		jq -r '[.[0].versions[].version, .[0].stopped[].version] | max')"
check "the failure is in the output" grep -q "exited with status 3 before it was ready" "$T/play2"

ansible-playbook -i "$T/inventory" "$PLAY" -e "bake=0" -e 'command=relative/path' -e service=web \
	-e fleet=nodes -e "baton=$BATON" >"$T/play3" 2>&1; rc=$?
check "bad inputs are refused before any deploy" test $rc -ne 0 -a -n "$(grep "give -e service=NAME" "$T/play3")"

write_conf "instances = 1" "ready = notify"
start_agent || exit 1
ansible-playbook -i "$T/inventory" "$PLAY" -e fleet=local -e service=web \
	-e "command=$DEMO" -e "baton=$BATON" >"$T/play4" 2>&1; rc=$?
tail -3 "$T/play4"
check_eq "against localhost" 0 $rc
check_eq "localhost runs v2" 2 "$(active_version)"
