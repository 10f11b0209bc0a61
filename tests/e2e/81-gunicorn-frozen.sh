#!/bin/bash
# SPDX-License-Identifier: MIT
# A real pre-forking server from Debian (gunicorn, python3-gunicorn: its
# arbiter takes baton's sockets by LISTEN_FDS, says READY=1, forks workers
# that accept on them) in its version's cgroup: every process of v1 frozen
# with requests queued, v2 deployed; at drain-timeout + kill-after the whole
# cgroup is killed, every queued request is answered by v2, and v1 is shown
# stopped only once none of its processes runs.
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "no cgroup v2 mounted: nothing to test"; exit 1; }
command -v gunicorn >/dev/null || { not_ok "gunicorn not installed (tools/deps.sh)"; exit 1; }
cat >"$T/app.py" <<'EOP'
import os


def app(environ, start_response):
    body = ("version=%s instance=%s pid=%d\n" % (
        os.environ.get("BATON_VERSION"), os.environ.get("BATON_INSTANCE"),
        os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOP
GUNICORN="$(command -v gunicorn) --workers 2 --chdir $T app:app"
EXEC=$GUNICORN write_conf "instances = 1" "ready = notify" "ready-timeout = 20s" \
	"drain-timeout = 1s" "kill-after = 1s"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# The arbiter says READY=1 before its workers run: wait (bounded) for both.
for _ in $(seq 100); do
	[ "$("$BATON" status web --json | jq '.[0].versions[0].tree_count')" = 3 ] && break
	sleep 0.1
done
st=$("$BATON" status web --json)
main=$(jq -r '.[0].versions[0].processes[0].pid' <<<"$st")
tree=$(jq -r '.[0].versions[0].tree[].pid' <<<"$st" | sort -n | tr '\n' ' ')
check_eq "v1's cgroup holds gunicorn's arbiter and 2 workers" 3 "$(jq '.[0].versions[0].tree_count' <<<"$st")"
check_eq "they are all gunicorn" "gunicorn gunicorn gunicorn" \
	"$(jq -r '[.[0].versions[0].tree[].name | sub(":.*"; "")] | join(" ")' <<<"$st")"
check "v1 serves from a worker" sh -c "curl -s --max-time 5 $URL | grep -q '^version=v1 ' &&
	! curl -s --max-time 5 $URL | grep -q 'pid=$main\$'"

for p in $tree; do kill -STOP "$p"; done
N=20
for i in $(seq $N); do
	curl -s --max-time 30 -o "$T/q.$i" "$URL" &
	LOAD_PIDS="${LOAD_PIDS:-} $!"
done
for _ in $(seq 50); do
	q=$(ss -Hltn 'sport = :8080' | awk '$2 > 0 {s += $2} END {print s + 0}')
	[ "$q" -ge $N ] && break
	sleep 0.1
done
check_eq "all $N requests queued on frozen v1" "$N" "$q"

"$BATON" deploy web -- $GUNICORN >"$T/deploy.out" 2>&1 &
DEPLOY=$!
early=0 gone=
for _ in $(seq 400); do
	alive=0
	listed=$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')
	for p in $tree; do running "$p" && alive=$((alive + 1)); done
	[ "$alive" -gt 0 ] && [ "$listed" = 0 ] && early=$((early + 1))
	[ "$alive" = 0 ] && gone=1
	[ "$alive" = 0 ] && [ "$listed" = 0 ] && break
	sleep 0.05
done
wait "$DEPLOY"
check "deploy of v2 succeeded" grep -q "v2 active" "$T/deploy.out"
check_eq "v1 never shown stopped while one of its processes ran" 0 "$early"
check_eq "every process of v1 was killed" 1 "${gone:-0}"
grep -q "v1: .*sending SIGKILL to all its processes" "$T/agent.log" &&
	ok "at the kill-after bound" || not_ok "no SIGKILL line for v1"
for p in $LOAD_PIDS; do wait "$p"; done
LOAD_PIDS=
v2=0
for i in $(seq $N); do grep -q '^version=v2 ' "$T/q.$i" && v2=$((v2 + 1)); done
check_eq "every queued request was answered by v2" "$N" "$v2"
check "v1's cgroup was removed" test ! -d "$CGMNT$CGDIR/services/web/v1"

"$BATON" shutdown --stop >/dev/null
wait_gone 40 "$AGENT"
check "shutdown --stop removed the cgroups" test ! -d "$CGMNT$CGDIR"
