#!/bin/bash
# SPDX-License-Identifier: MIT
# A state file that cannot be written (run-dir full) costs no file
# descriptor.  The agent tries again at every loop turn while its state is
# not on disk; before, a failed write() skipped the close() of the
# temporary file, so every turn leaked one fd until the agent hit its limit.
. "$(dirname "$0")/lib.sh"

# run-dir on a small tmpfs of its own, unmounted after the agent is gone.
mkdir -p "$T/run"
mount -t tmpfs -o size=256k tmpfs "$T/run" || { not_ok "mount a tmpfs for run-dir"; exit 1; }
trap '[ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null; wait_gone 5 "$AGENT"; umount -l "$T/run"; cleanup' EXIT
write_conf "instances = 1" "ready = notify" "ready-timeout = $(slow 5)s" "health = none"
start_agent || exit 1
check "the state file is written" test -s "$T/run/state.json"

# Fill the tmpfs: from now on a write of the state file fails (ENOSPC).
dd if=/dev/zero of="$T/run/fill" bs=4k 2>/dev/null
check "a change of state: a pin" "$BATON" pin web 10.0.0.0/8 v1
fds() { find "/proc/$AGENT/fd" -mindepth 1 2>/dev/null | wc -l; }
before=$(fds)
for _ in $(seq 100); do "$BATON" status >/dev/null; done
after=$(fds)
echo "agent fds: $before before 100 status requests, $after after"
check "the agent logged the failed write" grep -q "cannot write the state file" "$T/agent.log"
check "100 loop turns with a failing state write leak no fd ($before -> $after)" \
	test $((after - before)) -lt 10
# Room again: the next turn writes the state.
rm -f "$T/run/fill"
"$BATON" status >/dev/null
check "with room again the state file has the pin" grep -q "10.0.0.0/8" "$T/run/state.json"
check "the agent runs" kill -0 "$AGENT"
