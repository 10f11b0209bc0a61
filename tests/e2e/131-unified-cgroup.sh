#!/bin/bash
# SPDX-License-Identifier: MIT
# cgroup v2 mounted alone at /sys/fs/cgroup (the unified layout of
# systemd.unified_cgroup_hierarchy=1), without the memory, cpu and pids
# controllers (here they stay bound to cgroup v1 in the host's namespace):
# what a container given only a cgroup2 mount may see.  In a mount namespace of its own, this
# test replaces the hybrid /sys/fs/cgroup (a tmpfs of v1 hierarchies with v2
# at unified/) by one cgroup2 mount and runs the cgroup tests there: the
# agent finds the mount from /proc/self/mounts wherever it is, kills a
# version's whole tree at the bound, takes over its own cgroup, refuses
# limits whose controller is missing, and scopes track to what it serves.
if [ -z "${BATON_E2E_UNIFIED:-}" ]; then
	exec unshare -m --propagation private env BATON_E2E_UNIFIED=1 bash "$0" "$@"
fi
dir=$(dirname "$0")
if ! awk '$3 == "cgroup2" {f = 1} END {exit !f}' /proc/self/mounts; then
	echo "no cgroup v2 on this machine: nothing to test"
	echo "0 passed, 0 failed"
	exit 0
fi
# Unmount whatever is at /sys/fs/cgroup (a v1/v2 hybrid, or v2 alone) and
# mount cgroup v2 there by itself.  The hierarchy is the same one (cgroup v2
# has a single hierarchy): the test's cgroups are the host's.
umount -R /sys/fs/cgroup 2>/dev/null
if ! mount -t cgroup2 cgroup2 /sys/fs/cgroup; then
	echo "FAIL: cannot mount cgroup2 at /sys/fs/cgroup in a new mount namespace"
	echo "0 passed, 1 failed"
	exit 1
fi
. "$dir/lib.sh"

check_eq "cgroup v2 is the only cgroup mount, at /sys/fs/cgroup" "cgroup2 /sys/fs/cgroup" \
	"$(awk '$3 ~ /^cgroup/ {print $3, $2}' /proc/self/mounts | tr '\n' ' ' | sed 's/ $//')"
check_eq "lib.sh finds it there" /sys/fs/cgroup "$CGMNT"
echo "controllers offered: '$(cat /sys/fs/cgroup/cgroup.controllers)'"

for t in 78-prefork-frozen 82-limits-refused 84-own-cgroup 95-track-scope; do
	out=$(bash "$dir/$t.sh" 2>&1)
	rc=$?
	sum=$(tail -1 <<<"$out")
	if [ "$rc" = 0 ] && grep -q "^[1-9][0-9]* passed, 0 failed$" <<<"$sum"; then
		ok "$t with cgroup v2 alone ($sum)"
	else
		not_ok "$t with cgroup v2 alone (exit $rc: $sum)"
		grep -E "FAIL|agent did not" <<<"$out" | head -20
	fi
done
