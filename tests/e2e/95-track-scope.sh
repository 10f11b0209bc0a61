#!/bin/bash
# SPDX-License-Identifier: MIT
# The track program runs only for connections baton serves (issue 15): it is
# attached to the agent's cgroup, where the agent makes every listener, not
# to the cgroup v2 root, so connections of any other server of the host never
# run it (counted with the kernel's bpf_stats: run_cnt of the program).  An
# adopted server's cgroup gets it too (e2e 68, 83).  After a restart the same
# attachment serves the new agent: still one, still not the root.
. "$(dirname "$0")/lib.sh"

N=200
write_conf "instances = 2" "ready = notify"
start_agent || exit 1
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; cleanup' EXIT

link=$(bpftool -j link show pinned "$BPFDIR/track_link")
prog=$(jq -r .prog_id <<<"$link")
cgid=$(jq -r .cgroup_id <<<"$link")
runs() { bpftool -j prog show id "$prog" | jq -r '.run_cnt // 0'; }
agent_cg=$(sed -n 's/^0:://p' "/proc/$AGENT/cgroup")
check "the agent lives in its subtree's agent leaf ($agent_cg)" \
	test "$agent_cg" = "$(sed -n 's/^cgroup-dir = //p' "$T/web.conf")/agent"
root_id=$(stat -c %i "$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)")
check "the track link is not on the cgroup v2 root (cgroup id $cgid)" test "$cgid" != "$root_id"
check_eq "one track link, pinned" 1 "$(ls "$BPFDIR" | grep -c '^track_link')"

# Another server of the host, in this shell's cgroup, and N connections to it.
python3 -m http.server 8099 --bind 127.0.0.1 >/dev/null 2>&1 &
OTHER=$!
EXTRA_PIDS=$OTHER
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.1; done
before=$(runs)
for _ in $(seq $N); do curl -s -o /dev/null http://127.0.0.1:8099/; done
after=$(runs)
check_eq "$N connections to another server: the track program ran 0 times" 0 $((after - before))

before=$(runs)
for _ in $(seq $N); do curl -s -o /dev/null http://127.0.0.1:8080/; done
after=$(runs)
check "$N connections to baton's service: it ran $((after - before)) times (each counted)" \
	test $((after - before)) -ge $N
check_eq "and v1 counted them" "$N" \
	"$("$BATON" status web --json | jq '.[0].versions[0].accepted')"

# A restarted agent keeps the attachment (updated in place), not the root.
kill -9 "$AGENT"
while kill -0 "$AGENT" 2>/dev/null; do sleep 0.05; done
start_agent || exit 1
link=$(bpftool -j link show pinned "$BPFDIR/track_link")
check_eq "after a restart: the same cgroup" "$cgid" "$(jq -r .cgroup_id <<<"$link")"
check_eq "after a restart: still one track link" 1 "$(ls "$BPFDIR" | grep -c '^track_link')"
prog=$(jq -r .prog_id <<<"$link")
before=$(runs)
for _ in $(seq $N); do curl -s -o /dev/null http://127.0.0.1:8099/; done
check_eq "after a restart: another server's connections still do not run it" 0 $(($(runs) - before))
