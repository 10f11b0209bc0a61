#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 12, http: the cost of measure-http (docs/drain-http.md#measure-http)
# on keep-alive requests, from tools/bench/http-bench.c in one process, as
# the ratio of one run (rounds of short windows, the order alternating):
#  - requests/s on connections of a version under analysis (in the
#    sockhash, every response's status line read by the sk_msg program)
#    against connections of a version not measured (the plain send path);
#  - every response of the measured connections counted as 2xx (checked).
# usage: tools/bench/http.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
ROUNDS=${HTTP_ROUNDS:-300}
SECONDS_PER=${HTTP_SECONDS:-0.05}
args=(--rounds "$ROUNDS" --seconds "$SECONDS_PER" --clients 4)
cmd "http-bench ${args[*]}   (in a private netns; each round one window per set)"
"$B/http-bench" "${args[@]}" >"$T/out" 2>"$T/err" ||
	{ log "http-bench failed: $(cat "$T/err")"; exit 1; }
cat "$T/out" >&2
j=$(tail -1 "$T/out")
data http "$j"
g() { jq -r ".$1" <<<"$j"; }
row "keep-alive requests/s, measure-http on the version under analysis against a version not measured" \
	"$(g measured)/s" "$(g plain)/s" \
	"$(awk -v m="$(g ratio.median)" -v lo="$(g ratio.ci95[0])" -v hi="$(g ratio.ci95[1])" \
		'BEGIN { printf "%.3f (95%% CI %.3f-%.3f); reported, no target", m, lo, hi }')"
bench_finish
