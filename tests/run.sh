#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every test suite against the binaries in $1 and print one closing line,
# "N passed, N failed", counting individual tests; each suite's line ends
# with its time in seconds (CI's time budget is planned from them).  Needs
# root (network namespaces, BPF).  TESTS="unit bpf e2e" selects suites (steer, migrate,
# instconns, drain, features: one of bpf's suites alone); E2E="name ..." selects
# end-to-end scripts; LOG_DIR=DIR keeps the whole log of each failed suite there.
set -u
B=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."
export BATON_BUILD=$B
pass=0 fail=0 failed=()

if [ "$(id -u)" != 0 ]; then
	echo "tests: must run as root (network namespaces and BPF): sudo make test" >&2
	exit 1
fi
# bpffs: the tests pin their maps under it.
grep -q ' /sys/fs/bpf bpf ' /proc/self/mounts || mount -t bpf bpf /sys/fs/bpf ||
	{ echo "tests: bpffs not mounted and cannot mount it (mount -t bpf bpf /sys/fs/bpf)" >&2; exit 1; }

# Count a cmocka binary's or a script's own "N passed, N failed" summary.
count() {
	local name=$1 log=$2 rc=$3 secs=$4 p f
	# cmocka prints one summary per group: add them up.
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | awk '{s+=$1} END {if (NR) print s}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | awk '{s+=$1} END {if (NR) print s}')
	if [ -z "$p" ]; then
		p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$log" | tail -1)
		f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$log" | tail -1)
	fi
	p=${p:-0} f=${f:-0}
	# A suite that died without its summary counts as one failure.
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
	pass=$((pass + p)) fail=$((fail + f))
	[ "$f" = 0 ] || failed+=("$name")
	printf '%-28s %4d passed, %d failed (%d s)\n' "$name" "$p" "$f" "$secs"
}

run() {
	local name=$1; shift
	local log=/tmp/baton-test-$name.$$.log start=$SECONDS
	"$@" >"$log" 2>&1
	local rc=$? before=$fail
	count "$name" "$log" "$rc" $((SECONDS - start))
	if [ "$fail" != "$before" ]; then
		# LOG_DIR (the VM run sets it): keep a failed suite's whole log.
		[ -n "${LOG_DIR:-}" ] && cp "$log" "$LOG_DIR/$name.log"
		grep -E '^(FAIL|\[  (ERROR|FAILED) )' "$log" | sed 's/^/    /'
		echo "    -- last lines of the log:"
		sed 's/^/    /' "$log" | tail -40
	elif [ -n "${VERBOSE:-}" ]; then
		sed 's/^/    /' "$log"
	fi
	rm -f "$log"
}

suites=${TESTS:-unit bpf e2e}
for s in $suites; do
	case $s in
	unit)
		run config "$B/test_config"
		run health unshare -n sh -c "ip link set lo up && exec $B/test_health"
		run demo-server tests/unit/demo_server_smoke.sh "$B/demo-server"
		run proc "$B/test_proc"
		run fsm "$B/test_fsm"
		run fsm-hold "$B/test_fsm_hold"
		run fsm-http "$B/test_fsm_http"
		run fsm-ready "$B/test_fsm_ready"
		run fsm-rolling "$B/test_fsm_rolling"
		run fsm-rollhold "$B/test_fsm_rollhold"
		run history "$B/test_history"
		run lathist "$B/test_lathist"
		run conflat "$B/test_conflat"
		run latrank "$B/test_latrank"
		run httpgate "$B/test_httpgate"
		run listen unshare -n sh -c "ip link set lo up && exec $B/test_listen"
		run nlack "$B/test_nlack"
		run acceptq "$B/test_acceptq"
		run evlog "$B/test_evlog"
		run journal "$B/test_journal"
		run logq "$B/test_logq"
		run docs tests/unit/docs_check.sh "$B"
		;;
	bpf)
		run steer unshare -n sh -c "ip link set lo up && exec $B/test_steer"
		run migrate unshare -n sh -c "ip link set lo up && exec $B/test_migrate"
		run instconns unshare -n sh -c "ip link set lo up && exec $B/test_instconns"
		run drain unshare -n sh -c "ip link set lo up && exec $B/test_drain"
		run features tests/bpf/features.sh "$B"
		;;
	steer)
		run steer unshare -n sh -c "ip link set lo up && exec $B/test_steer"
		;;
	migrate)
		run migrate unshare -n sh -c "ip link set lo up && exec $B/test_migrate"
		;;
	instconns)
		run instconns unshare -n sh -c "ip link set lo up && exec $B/test_instconns"
		;;
	drain)
		run drain unshare -n sh -c "ip link set lo up && exec $B/test_drain"
		;;
	features)
		run features tests/bpf/features.sh "$B"
		;;
	e2e)
		for t in ${E2E:-$(cd tests/e2e && ls [0-9]*.sh | sed 's/\.sh$//')}; do
			run "e2e-$t" unshare -n bash "tests/e2e/$t.sh"
		done
		;;
	esac
done
echo
[ "$fail" = 0 ] || echo "failed suites: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
