#!/bin/bash
# SPDX-License-Identifier: MIT
# memory-max, cpu-max and pids-max need their cgroup v2 controller in the
# cgroup baton would use; where it is missing (a hybrid hierarchy, where they
# sit on cgroup v1) the configuration is refused at load with one line naming
# the controller, by agent -n, at start and by reload, and nothing changes.
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "no cgroup v2 mounted: nothing to test"; exit 1; }
offered=$(cat "$CGMNT/cgroup.controllers")
echo "controllers the cgroup v2 root offers: '$offered'"

for kv in "memory-max = 64M:memory" "cpu-max = 50%:cpu" "pids-max = 100:pids"; do
	key=${kv%%:*} ctrl=${kv##*:}
	write_conf "$key"
	if grep -qw "$ctrl" <<<"$offered"; then
		check "$key: accepted (the $ctrl controller is there)" "$BATON" agent -n -f "$T/web.conf"
		continue
	fi
	expect_err "$key: agent -n refuses it" \
		"web.conf:[0-9]*: web: ${key%% *} needs the cgroup v2 $ctrl controller, which $CGMNT.*/cgroup.controllers does not offer" \
		"$BATON" agent -n -f "$T/web.conf"
	expect_err "$key: the agent does not start" "${key%% *} needs the cgroup v2 $ctrl controller" \
		"$BATON" agent -d -f "$T/web.conf"
done
check "nothing was started: no cgroup made" test ! -d "$CGMNT$CGDIR"

CGROUP_DIR=off write_conf "pids-max = 100"
expect_err "with cgroup-dir = off a limit is refused" \
	"pids-max needs a cgroup v2 with the pids controller: cgroups are off (cgroup-dir = off)" \
	"$BATON" agent -n -f "$T/web.conf"
for bad in "memory-max = 12x" "memory-max = 100" "cpu-max = 50" "cpu-max = 0%" "pids-max = 0"; do
	write_conf "$bad"
	expect_err "$bad is refused" "${bad%% *} must be" "$BATON" agent -n -f "$T/web.conf"
done

# A running agent refuses a reload that adds a limit, and keeps its configuration.
write_conf
start_agent || exit 1
pid=$(version_pids 1)
echo "pids-max = 100" >>"$T/web.conf"
if grep -qw pids <<<"$offered"; then
	check "reload with pids-max accepted (the pids controller is there)" "$BATON" reload
else
	expect_err "reload with pids-max is refused" "reload refused.*pids-max needs the cgroup v2 pids controller" \
		"$BATON" reload
fi
check_eq "v1 runs on, untouched" "$pid" "$(version_pids 1)"
"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"
