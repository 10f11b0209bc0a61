#!/bin/bash
# SPDX-License-Identifier: MIT
# The pin directory (issue 17, items 5, 10 and 14):
#  - one that someone other than root could write is refused, with the fix;
#  - a second agent on the same pin directory (another control socket) is
#    refused, and the first goes on;
#  - shutdown --stop leaves the host as before the first start: no pins, no
#    track program attached, no state or sockets in run-dir.
. "$(dirname "$0")/lib.sh"

write_conf "ready = notify"

# 1. A world-writable pin directory, made in advance.
mkdir -m 0777 "$BPFDIR"
chmod 0777 "$BPFDIR"
expect_err "a world-writable pin directory is refused" "only root may own and write" \
	"$BATON" agent -d -f "$T/web.conf"
check_eq "nothing was pinned in it" "" "$(ls -A "$BPFDIR")"
rmdir "$BPFDIR"

# 2. One agent, then a second on the same pin directory (its own socket, run-dir
#    and port, so that only the pin directory is shared).
start_agent || exit 1
sed -e "s|^control = .*|control = $T/other.sock|" -e "s|^run-dir = .*|run-dir = $T/other-run|" -e "s|:8080|:8081|" \
	"$T/web.conf" >"$T/other.conf"
expect_err "a second agent on the same pin directory is refused" \
	"another baton agent uses the pin directory $BPFDIR" \
	"$BATON" agent -d -f "$T/other.conf"
check "the first agent still serves" only_version http://127.0.0.1:8080/ v1 5
check "its probes and state are untouched" "$BATON" status web

# 3. shutdown --stop: nothing left behind.
PROG=$(bpftool -j link show pinned "$BPFDIR/track_link" | jq -r '.prog_id')
check "the track program is attached (prog $PROG)" bpftool prog show id "$PROG"
check "shutdown --stop" "$BATON" shutdown --stop
check "the agent exited" wait_gone 10 "$AGENT"
AGENT=
check "no pin directory is left" test ! -e "$BPFDIR"
gone_prog() {
	local i
	for i in $(seq 50); do
		bpftool prog show id "$PROG" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	return 1
}
check "the track program is detached and gone" gone_prog
check_eq "no state or socket is left in run-dir" "" "$(ls -A "$T/run")"

# 4. A pin replaced by something else (what a user who could write the pin
#    directory once could leave behind): the error names that path and the
#    fix; after the fix, the agent takes its services over again.
start_agent || exit 1
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
rm "$BPFDIR/services" && mkdir "$BPFDIR/services"
expect_err "a directory in place of a map pin is named" \
	"$BPFDIR/services is not a pinned map (a directory)" "$BATON" agent -d -f "$T/web.conf"
rmdir "$BPFDIR/services"
rm "$BPFDIR/track_link" && mkdir "$BPFDIR/track_link"
expect_err "a directory in place of the link pin is named" \
	"$BPFDIR/track_link is not a pinned link" "$BATON" agent -d -f "$T/web.conf"
rm -r "$BPFDIR"
start_agent || exit 1
check "after rm -r of the pin directory, the agent took v1 over" \
	grep -q "took over 1 version(s)" "$T/agent.log"
check "and v1 serves" only_version http://127.0.0.1:8080/ v1 5
check "shutdown --stop" "$BATON" shutdown --stop
