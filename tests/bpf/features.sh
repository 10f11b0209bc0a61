#!/bin/bash
# SPDX-License-Identifier: MIT
# baton features on the running kernel: every capability gets one line, its
# probe agrees with the upstream release docs/kernels.md names for it (the
# kernels tested here are upstream-numbered: Debian's 6.1 and 6.18), the
# agent's needs are met, and bad use fails with one line.
# usage: tests/bpf/features.sh BUILD-DIR
set -u
B=${1:?usage: features.sh BUILD-DIR}
cd "$(dirname "$0")/../.."
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# rel_ge A B: kernel release A (6.1.0-57-amd64) is B (5.14) or later.
rel_ge() {
	local a=${1%%-*} b=$2
	[ "$(printf '%s\n%s\n' "$b" "$a" | sort -V | head -1)" = "$b" ]
}

rel=$(uname -r)
text=$("$B/baton" features); rc=$?
echo "$text"
if [ $rc = 0 ]; then ok "exit 0: the agent's needs are met on $rel"; else not_ok "exit $rc on $rel"; fi
json=$("$B/baton" features --json)
n=$(jq length <<<"$json")
if [ "${n:-0}" -ge 9 ]; then ok "$n capabilities probed"; else not_ok "want at least 9 capabilities, got '$n'"; fi
lines=$(grep -c '^  ' <<<"$text")
if [ "$lines" = "$n" ]; then ok "one line per capability"; else not_ok "$lines lines for $n capabilities"; fi

for i in $(seq 0 $((n - 1))); do
	name=$(jq -r ".[$i].name" <<<"$json")
	min=$(jq -r ".[$i].min_kernel" <<<"$json")
	sup=$(jq -r ".[$i].supported" <<<"$json")
	if rel_ge "$rel" "$min"; then want=true; else want=false; fi
	if [ "$sup" = "$want" ]; then
		ok "$name: supported=$sup on $rel (upstream since $min)"
	else
		not_ok "$name: supported=$sup on $rel, but it came in $min ($(jq -r ".[$i].why // empty" <<<"$json"))"
	fi
	if grep -qF "| $name | $min |" docs/kernels.md; then
		ok "$name: docs/kernels.md says $min too"
	else
		not_ok "$name: no row \"| $name | $min |\" in docs/kernels.md"
	fi
	if [ "$sup" = false ]; then
		why=$(jq -r ".[$i].why // empty" <<<"$json")
		if [ -n "$why" ] && grep -qF "NOT supported" <<<"$(grep -F "  $name " <<<"$text")"; then
			ok "$name: says why it is missing: $why"
		else
			not_ok "$name: missing without a reason (why='$why')"
		fi
	fi
done

# Bad use changes nothing and says so in one line.
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/baton" features 2>&1); rc=$?
if [ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q 'must run as root' <<<"$out"; then
	ok "not root: $out"
else
	not_ok "not root: rc=$rc: $out"
fi
out=$("$B/baton" features --bogus 2>&1); rc=$?
if [ $rc = 2 ] && grep -q '^usage: baton features' <<<"$out"; then ok "bad option: usage"; else not_ok "bad option: rc=$rc: $out"; fi
# The probe of cgroup.kill leaves no cgroup behind.
if [ -z "$(find /sys/fs/cgroup -maxdepth 2 -name 'baton-probe-*' 2>/dev/null)" ]; then
	ok "no probe cgroup left"
else
	not_ok "probe cgroups left: $(find /sys/fs/cgroup -maxdepth 2 -name 'baton-probe-*')"
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
