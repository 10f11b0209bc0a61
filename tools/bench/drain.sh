#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 8, drain: the cost of drain-http (docs/drain-http.md), from
# tools/bench/drain-bench.c with 10,000 open keep-alive connections (fewer
# when the fd hard limit is lower: both ends live in one process):
#  - getting them into the sockhash: the iterator pass as the agent runs it
#    (64 connections a step), against doing it from user space with
#    pidfd_getfd (the way not taken);
#  - from drain start to the first rewritten response a client reads;
#  - the server's write() CPU per response, rewritten against plain.
# The servers' own reloads side by side with baton's drain-http are in
# tests/e2e/86-drain-http-servers.sh (lighttpd, nginx).
# usage: tools/bench/drain.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
N=${DRAIN_CONNS:-10000}
cmd "drain-bench $N (in a private network namespace)"
"$B/drain-bench" "$N" >"$T/out" 2>"$T/err" || { log "drain-bench failed: $(cat "$T/err")"; exit 1; }
cat "$T/out" >&2
j=$(tail -1 "$T/out")
data drain "$j"
g() { jq -r ".$1" <<<"$j"; }
n=$(g connections)
row "join $n connections (ms)" "$(g pass_ms) (iterator, longest step $(g longest_step_ms))" \
	"$(g pidfd_ms) (pidfd_getfd from user space)" \
	"$(awk -v a="$(g pass_ms)" -v b="$(g pidfd_ms)" 'BEGIN { printf "%.2f", a / b }')"
row "drain start to first rewritten response (ms, $n connections)" "$(g first_rewrite_ms)" "-" "-"
row "server write() CPU per response (us)" "$(g write_rewritten_us) rewritten" \
	"$(g write_plain_us) plain" \
	"$(awk -v a="$(g write_rewritten_us)" -v b="$(g write_plain_us)" 'BEGIN { printf "%.2f", a / b }')"
bench_finish
