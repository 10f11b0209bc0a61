#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy --env KEY=VALUE: a version's own environment.  Each instance's
# environment is dumped by a wrapper before it execs the demo server: v2
# deployed with --env sees its variables (over the config's environment line
# of the same name), v1 does not, each sees its own BATON_VERSION.  The
# environment belongs to the version: after kill -9 of the agent and a
# restart, status still has it, and a rolling rollback that starts v2's
# retired instance again starts it with the same variables.  Bad input, from
# the CLI and straight on the control socket: one line naming the problem
# and the fix, and nothing changes.
. "$(dirname "$0")/lib.sh"

cat >"$T/wrap.sh" <<W
#!/bin/sh
env | sort >"$T/env.\$BATON_VERSION.\$BATON_INSTANCE.\$\$"
exec "$DEMO" "\$@"
W
chmod 755 "$T/wrap.sh"
EXEC=$T/wrap.sh write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" \
	"environment = MODE=config" "drain-timeout = 3s" "kill-after = 1s"
start_agent || exit 1

# envof VERSION NAME: NAME's values in every dump of VERSION, sorted, unique.
envof() { cat "$T"/env."v$1".* 2>/dev/null | sed -n "s/^$2=//p" | sort -u | tr '\n' ' '; }
dumps() { ls "$T"/env."v$1".* 2>/dev/null | wc -l; }

out=$(timeout "$(slow 30)" "$BATON" deploy web --env MODE=blue --env "GREETING=hello world" \
	--env EQ=a=b -- "$T/wrap.sh" 2>&1); rc=$?
check "deploy with --env succeeds: $(tail -1 <<<"$out")" test $rc -eq 0
check_eq "v1 started 2 instances" 2 "$(dumps 1)"
check_eq "v2 started 2 instances" 2 "$(dumps 2)"
check_eq "v1 has the config's MODE only" "config " "$(envof 1 MODE)"
check_eq "v1 has no GREETING" "" "$(envof 1 GREETING)"
check_eq "v1 knows it is v1" "v1 " "$(envof 1 BATON_VERSION)"
check_eq "v2's --env MODE wins over the config's" "blue " "$(envof 2 MODE)"
check_eq "v2 has MODE once" 2 "$(cat "$T"/env.v2.* | grep -c '^MODE=')"
check_eq "v2 has GREETING" "hello world " "$(envof 2 GREETING)"
check_eq "v2 keeps '=' in a value" "a=b " "$(envof 2 EQ)"
check_eq "v2 knows it is v2" "v2 " "$(envof 2 BATON_VERSION)"
V2ENV='["E2E_TEST_ID='"$TEST_ID"'","MODE=blue","GREETING=hello world","EQ=a=b"]'
check_eq "status shows v2's environment (the config's, --env over it)" "$V2ENV" \
	"$("$BATON" status web --json | jq -c '.[0].versions[] | select(.version == 2) | .env')"
check "v2 serves" only_version http://127.0.0.1:8080/ v2 3

# Bad input: nothing is deployed, v2 stays as it is.
state() { "$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]'; }
before=$(state)
D=("$BATON" deploy web)
expect_err "no '='" 'expected KEY=VALUE (--env FOO=value)' "${D[@]}" --env FOO -- "$DEMO"
expect_err "empty name" 'missing variable name' "${D[@]}" --env =x -- "$DEMO"
expect_err "bad name" 'invalid variable name "1A"' "${D[@]}" --env 1A=x -- "$DEMO"
expect_err "bad name" 'invalid variable name "A-B"' "${D[@]}" --env A-B=x -- "$DEMO"
for k in LISTEN_FDS LISTEN_PID NOTIFY_SOCKET BATON_VERSION; do
	expect_err "$k is baton's" "$k is set by baton" "${D[@]}" --env "$k=1" -- "$DEMO"
done
expect_err "twice" '--env A is given twice' "${D[@]}" --env A=1 --env A=2 -- "$DEMO"
many=(); for i in $(seq 33); do many+=(--env "V$i=1"); done
expect_err "too many" 'more than 32 --env' "${D[@]}" "${many[@]}" -- "$DEMO"
expect_err "too long" 'longer than 1024 bytes' "${D[@]}" --env "BIG=$(head -c 1100 /dev/zero | tr '\0' x)" -- "$DEMO"
expect_err "with --adopt-pid" '--env is for versions baton starts' "${D[@]}" --adopt-pid 2 --env A=1
expect_err "not deploy's" '--env is an option of deploy' "$BATON" status web --env A=1
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
req() { printf '{"cmd":"deploy","service":"web","argv":["%s"],"env":%s}' "$DEMO" "$1"; }
ctl_err() {
	local r
	r=$(ctl "$(req "$2")")
	if grep -q '"ok": *false' <<<"$r" && grep -qF -- "$3" <<<"$r"; then ok "control: $1: $r"; else not_ok "control: $1: $r"; fi
}
ctl_err "reserved name" '["LISTEN_PID=1"]' 'LISTEN_PID is set by baton'
ctl_err "no '='" '["FOO"]' 'expected KEY=VALUE'
ctl_err "not a list" '"A=1"' 'env must be a list'
ctl_err "not a string" '[7]' 'env must be a list'
ctl_err "NUL inside" '["A=x\u0000y"]' 'is not allowed'
ctl_err "twice" '["A=1","A=2"]' 'given twice'
ctl_err "too long" "[\"BIG=$(head -c 1100 /dev/zero | tr '\0' x)\"]" 'longer than 1024'
ctl_err "too many" "[$(for i in $(seq 33); do printf '"V%d=1",' "$i"; done)\"W=1\"]" 'more than 32'
check_eq "bad input changed nothing" "$before" "$(state)"

# kill -9 of the agent, a new agent: v2's environment is still v2's.
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
start_agent || exit 1
check_eq "after the restart status still shows v2's environment" "$V2ENV" \
	"$("$BATON" status web --json | jq -c '.[0].versions[] | select(.version == 2) | .env')"
grep -q '"env"' "$T/run/state.json" 2>/dev/null || grep -rqs '"env"' "$T/run"
check "the state file holds it" test $? -eq 0

# A rolling v3 retires one v2 instance, then dies: the rollback starts that
# instance again, with v2's environment from the state file.
n2=$(dumps 2)
out=$(timeout "$(slow 60)" "$BATON" deploy web --strategy rolling --max-surge 1 \
	--max-unavailable 0 --pause 5s -- "$T/wrap.sh" --exit-after-ms 2500 2>&1); rc=$?
check "the rolling deploy of a dying v3 rolls back: $(tail -1 <<<"$out")" test $rc -ne 0
check_eq "v2 active again" 2 "$(active_version)"
for _ in $(seq "$(slow 50)"); do [ "$(dumps 2)" -gt "$n2" ] && break; sleep 0.1; done
check_eq "the rollback started one v2 instance again" $((n2 + 1)) "$(dumps 2)"
new=$(ls -t "$T"/env.v2.* | head -1)
check_eq "it has v2's --env MODE" "MODE=blue" "$(grep '^MODE=' "$new")"
check_eq "and GREETING" "GREETING=hello world" "$(grep '^GREETING=' "$new")"
check_eq "and knows it is v2" "BATON_VERSION=v2" "$(grep '^BATON_VERSION=' "$new")"
check_eq "v3 saw no v2 variable" "config " "$(envof 3 MODE)"
check "v2 serves" only_version http://127.0.0.1:8080/ v2 5
"$BATON" shutdown --stop >/dev/null
