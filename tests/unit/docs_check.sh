#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The documentation agrees with the code:
#   - man/baton.8 has a section for every subcommand `baton help` lists, with
#     the usage line `baton help CMD` prints (modulo roff escapes), and no
#     section for a command that does not exist;
#   - man/baton.conf.5 documents every key of docs/config.md, in the same
#     section, and nothing else; and every key user/confkeys.c accepts;
#   - both pages render with groff without a single warning;
#   - baton.8 lists every metric the agent serves, and the Grafana dashboard
#     is valid JSON that queries only those (and its PromQL parses);
#   - the bash completion offers every subcommand and every option of each;
#   - make install puts every file in place under DESTDIR and PREFIX, never
#     overwrites /etc/baton/baton.conf, and make uninstall removes them.
#
# usage: tests/unit/docs_check.sh BUILD_DIR   (the baton binary is BUILD_DIR/baton;
#        this script builds nothing)
# Prints "N passed, N failed".  Without groff the rendering checks are
# skipped, and count as a failure only with DOCS_REQUIRE_GROFF=1
# (groff-base is the Debian package); without promtool or systemd-analyze
# their checks are skipped.
set -u
B=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "docs_check: no build directory ${1:-build}" >&2; exit 2; }
BATON=$B/baton
cd "$(dirname "$0")/../.." || exit 2
[ -x "$BATON" ] || { echo "docs_check: $BATON is not built (run make first)" >&2; exit 2; }

PASS=0 FAIL=0
T=$(mktemp -d /tmp/baton-docs.XXXXXX)
ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: want '$2', got '$3'"; fi; }
skip() { echo "SKIP: $*"; }
# quiet LOG COMMAND...: run COMMAND with its output in LOG (shown when it fails).
quiet() { local log=$1; shift; "$@" >"$log" 2>&1 || { sed 's/^/    /' "$log"; return 1; }; }
cleanup() {
	rm -rf "$T"
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" = 0 ] || exit 1
}
trap cleanup EXIT

# Roff source to plain text: font changes, zero-width and escape characters
# dropped or replaced, blanks squeezed, one source line per line.
unroff() {
	sed -e 's/\\f\[[^]]*\]//g' -e 's/\\f([A-Z][A-Z]//g' -e 's/\\f[BIRPC1-4]//g' \
		-e 's/\\&//g; s/\\%//g; s/\\-/-/g; s/\\ / /g; s/\\~/ /g' \
		-e "s/\\\\(aq/'/g; s/\\\\(dq/\"/g; s/\\\\(ti/~/g; s/\\\\(bu/*/g" \
		-e 's/\\e/\\/g' -e 's/[[:space:]][[:space:]]*/ /g; s/^ //; s/ $//' "$1"
}
# "a b" set difference: lines of file $1 missing from file $2.
missing() { sort -u "$1" >"$T/m1"; sort -u "$2" >"$T/m2"; comm -23 "$T/m1" "$T/m2" | tr '\n' ' '; }

HAVE_GROFF=
if command -v groff >/dev/null 2>&1; then
	HAVE_GROFF=1
elif [ "${DOCS_REQUIRE_GROFF:-0}" = 1 ]; then
	not_ok "groff is not installed (apt-get install groff-base) and DOCS_REQUIRE_GROFF=1"
else
	skip "groff is not installed (apt-get install groff-base): rendering not checked"
fi

# ---- baton.8 against `baton help` ------------------------------------------------

"$BATON" help | sed -n 's/^  baton \([a-z][a-z]*\).*/\1/p' >"$T/cmds"
check "baton help lists commands ($(wc -l <"$T/cmds"))" test "$(wc -l <"$T/cmds")" -ge 10
unroff man/baton.8 >"$T/baton.8.txt"
if [ -n "$HAVE_GROFF" ]; then
	# Rendered wide, without bold or underline, blanks squeezed: each usage line
	# must come out whole on one line.
	groff -man -Tascii -P-cbou -rLL=250n man/baton.8 2>/dev/null |
		sed 's/[[:space:]][[:space:]]*/ /g; s/^ //; s/ $//' >"$T/baton.8.rendered"
fi
while read -r cmd; do
	check "baton.8 has a section for $cmd" grep -Eqx "\.SS \"?$cmd\"?" man/baton.8
	usage=$("$BATON" help "$cmd" | sed -n '1s/^usage: //p')
	if [ -z "$usage" ]; then
		not_ok "baton help $cmd prints a usage line"
		continue
	fi
	check "baton.8 has the usage of $cmd: $usage" grep -Fqx -- "$usage" "$T/baton.8.txt"
	if [ -n "$HAVE_GROFF" ]; then
		check "baton.8 renders the usage of $cmd on one line" \
			grep -Fqx -- "$usage" "$T/baton.8.rendered"
	fi
done <"$T/cmds"
# Each command's section lies between its .SS and the next .SS or .SH.
sed -n '/^\.SH COMMANDS/,/^\.SH /s/^\.SS "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' man/baton.8 >"$T/man-cmds"
check_eq "baton.8 has no section for a command baton lacks" "" "$(missing "$T/man-cmds" "$T/cmds")"
check_eq "baton.8 documents the version baton reports" "$("$BATON" version | sed 's/^baton //')" \
	"$(sed -n 's/^\.TH BATON 8 [^ ]* "baton \([^"]*\)".*/\1/p' man/baton.8)"
check_eq "baton.conf.5 documents the version baton reports" "$("$BATON" version | sed 's/^baton //')" \
	"$(sed -n 's/^\.TH BATON.CONF 5 [^ ]* "baton \([^"]*\)".*/\1/p' man/baton.conf.5)"
for s in FILES SIGNALS "EXIT STATUS" ENVIRONMENT "SEE ALSO"; do
	check "baton.8 has a $s section" grep -Eqx "\.SH \"?$s\"?" man/baton.8
done
check "baton.8 says SIGTERM and SIGINT leave the services running" \
	grep -q 'End the agent but leave the services running' "$T/baton.8.txt"
check "baton.8 describes BATON_CONTROL" grep -q '^\.B BATON_CONTROL$' man/baton.8

# ---- baton.conf.5 against docs/config.md and user/confkeys.c -----------------------

# "SECTION KEY" per key: [agent] keys are the rows of its table, [service NAME]
# keys its "### key" headings.
awk '/^## /{ s = ($0 == "## [agent]") ? "agent" : ($0 == "## [service NAME]") ? "service" : "" }
     s == "agent" && /^\| `[a-z][a-z0-9-]*` \|/ { split($0, f, "`"); print s, f[2] }
     s == "service" && /^### [a-z][a-z0-9-]*$/ { print s, $2 }' docs/config.md >"$T/keys.docs"
# In the man page: the "\fBkey\fR = ..." lines under the [agent] and [service] sections.
awk '/^\.SH/{ s = index($0, "[agent]") ? "agent" : index($0, "[service") ? "service" : "other" }
     /^\\fB[a-z][a-z0-9\\-]*\\fR = / { k = $0; sub(/^\\fB/, "", k); sub(/\\fR.*/, "", k)
       gsub(/\\-/, "-", k); print s, k }' man/baton.conf.5 >"$T/keys.man"
sed -n 's/^[[:space:]]*{"\([a-z][a-z0-9-]*\)", SECT_\(AGENT\|SERVICE\),.*/\2 \1/p' user/confkeys.c |
	tr '[:upper:]' '[:lower:]' >"$T/keys.code"
check "docs/config.md lists keys ($(wc -l <"$T/keys.docs"))" test "$(wc -l <"$T/keys.docs")" -ge 30
check "user/confkeys.c's key table is found ($(wc -l <"$T/keys.code"))" test "$(wc -l <"$T/keys.code")" -ge 30
check_eq "baton.conf.5 defines keys only under [agent] and [service NAME]" "" \
	"$(grep -v '^agent \|^service ' "$T/keys.man" | tr '\n' ' ')"
check_eq "every key of docs/config.md is in baton.conf.5, same section" "" \
	"$(missing "$T/keys.docs" "$T/keys.man")"
check_eq "every key of baton.conf.5 is in docs/config.md, same section" "" \
	"$(missing "$T/keys.man" "$T/keys.docs")"
check_eq "every key user/confkeys.c accepts is in baton.conf.5" "" \
	"$(missing "$T/keys.code" "$T/keys.man")"
check_eq "baton.conf.5 has no key user/confkeys.c refuses" "" \
	"$(missing "$T/keys.man" "$T/keys.code")"

# ---- rendering -------------------------------------------------------------------

if [ -n "$HAVE_GROFF" ]; then
	for page in man/baton.8 man/baton.conf.5; do
		out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
		check_eq "groff renders $page without warnings" "" "$out"
	done
fi

# ---- metrics and the Grafana dashboard -------------------------------------------

DASH=tools/grafana/baton-dashboard.json
grep -oh '"baton_[a-z_]*"' user/*.c | tr -d '"' | sort -u >"$T/metrics.code"
sed -n '/^\.SH METRICS/,/^\.SH /p' man/baton.8 | grep -o 'baton_[a-z_]*' | sort -u >"$T/metrics.man"
check "the agent's metric names are found ($(wc -l <"$T/metrics.code"))" \
	test "$(wc -l <"$T/metrics.code")" -ge 10
check_eq "baton.8 lists every metric the agent serves" "" "$(missing "$T/metrics.code" "$T/metrics.man")"
check_eq "baton.8 lists no metric the agent lacks" "" "$(missing "$T/metrics.man" "$T/metrics.code")"
check "$DASH is valid JSON" quiet "$T/jq.log" jq -e . "$DASH"
check "$DASH has schemaVersion 36 or later" quiet "$T/jq.log" jq -e '.schemaVersion >= 36' "$DASH"
check "$DASH has unique panel ids" quiet "$T/jq.log" jq -e '[.panels[].id] | length == (unique | length)' "$DASH"
check "every query panel of $DASH has a data source and a target" quiet "$T/jq.log" jq -e \
	'[.panels[] | select(.type != "row") | (.datasource != null and (.targets | length) > 0)] | all' \
	"$DASH"
jq -r '.. | .expr? // empty' "$DASH" >"$T/exprs"
# A histogram's series are its name with _bucket, _sum or _count.
grep -o 'baton_[a-z_]*' "$T/exprs" | sed -E 's/_(bucket|sum|count)$//' | sort -u >"$T/metrics.dash"
check_eq "$DASH queries only metrics the agent serves" "" "$(missing "$T/metrics.dash" "$T/metrics.code")"
for m in baton_version_live_connections baton_version_accepted_connections_total \
	baton_version_weight_ratio baton_rollbacks_total baton_steer_migrated_total \
	baton_steer_fallback_total baton_steer_dropped_total baton_steer_evicted_total; do
	check "$DASH charts $m" grep -qx "$m" "$T/metrics.dash"
done
if command -v promtool >/dev/null 2>&1; then
	# Every query, with Grafana's variables filled in, as a recording rule.
	{
		echo "groups:"
		echo "  - name: dashboard"
		echo "    rules:"
		n=0
		while IFS= read -r e; do
			n=$((n + 1))
			e=${e//\$__rate_interval/1m}
			e=${e//\$__interval/1m}
			e=${e//\$__range/1h}
			e=${e//\$service/.*}
			printf "      - record: dashboard_query_%d\n        expr: '%s'\n" "$n" "${e//\'/\'\'}"
		done <"$T/exprs"
	} >"$T/rules.yml"
	check "promtool parses every query of $DASH" quiet "$T/promtool.log" promtool check rules "$T/rules.yml"
else
	skip "promtool is not installed: the dashboard's PromQL is not parsed"
fi

# ---- bash completion -------------------------------------------------------------

COMP=tools/completion/baton.bash
check "$COMP is valid bash" bash -n "$COMP"
# A stand-in for baton that answers status --json like an agent with two services.
cat >"$T/fake-baton" <<'EOF'
#!/bin/sh
[ "$1 $2" = "status --json" ] || exit 1
echo '[{"name": "web", "versions": [{"version": 1}, {"version": 2}],
  "pins": [{"cidr": "10.1.0.0/16", "version": 2}]}, {"name": "api", "versions": []}]'
EOF
printf '#!/bin/sh\necho "baton: cannot connect" >&2\nexit 1\n' >"$T/down-baton"
chmod +x "$T/fake-baton" "$T/down-baton"
# complete LINE: what the completion offers at the end of LINE, sorted, one line.
complete_line() {
	bash -c '. "$1"; shift
		COMP_LINE=$1 COMP_POINT=${#1}
		read -r -a COMP_WORDS <<<"$COMP_LINE"
		[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_baton
		printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$1" 2>"$T/comp.err" | sort | tr '\n' ' ' | sed 's/ $//'
}
check_eq "completion offers exactly the commands of baton help" "$(sort "$T/cmds" | tr '\n' ' ' | sed 's/ $//')" \
	"$(complete_line "$T/fake-baton " | tr ' ' '\n' | grep -v '^-' | tr '\n' ' ' | sed 's/ $//')"
while read -r cmd; do
	usage=$("$BATON" help "$cmd" | sed -n '1s/^usage: //p')
	want=$(grep -oE '(^|[ [{|])--?[a-z][a-z-]*' <<<"$usage" | sed 's/^[ [{|]//' | sort -u)
	got=" $(complete_line "$T/fake-baton $cmd -") "
	miss=
	for o in $want; do [[ $got == *" $o "* ]] || miss="$miss $o"; done
	check_eq "completion offers every option of $cmd" "" "$miss"
done <"$T/cmds"
check_eq "completion offers the agent's services" "api web" "$(complete_line "$T/fake-baton deploy ")"
check_eq "completion offers services after options" "api web" "$(complete_line "$T/fake-baton status --json -s /x ")"
check_eq "completion offers vN= for weight" "v1= v2=" "$(complete_line "$T/fake-baton weight web ")"
check_eq "completion offers vN for pin after the CIDR" "v1 v2" "$(complete_line "$T/fake-baton pin web 10.0.0.0/8 ")"
check_eq "completion offers vN for pin after an IPv6 CIDR" "v1 v2" \
	"$(complete_line "$T/fake-baton pin web 2001:db8::/32 ")"
check_eq "completion offers pinned CIDRs for unpin" "10.1.0.0/16" "$(complete_line "$T/fake-baton unpin web ")"
check_eq "completion offers the strategies" "bluegreen canary rolling" \
	"$(complete_line "$T/fake-baton deploy web --strategy ")"
check_eq "completion offers commands after help" "$(sort "$T/cmds" | tr '\n' ' ' | sed 's/ $//')" \
	"$(complete_line "$T/fake-baton help ")"
check_eq "completion offers no service when the agent does not answer" "" \
	"$(complete_line "$T/down-baton deploy ")"
check_eq "and prints nothing then" "" "$(cat "$T/comp.err")"

# ---- Kubernetes manifest ---------------------------------------------------------

K8S=dist/k8s-daemonset.yaml
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
	cat >"$T/k8s.py" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
assert kinds == ["ConfigMap", "DaemonSet", "Namespace"], kinds
ds = next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
assert ds["hostNetwork"] is True and ds["hostPID"] is True, "hostNetwork, hostPID"
c = ds["containers"][0]
assert c["securityContext"]["privileged"] is True, "privileged"
mounts = {m["mountPath"] for m in c["volumeMounts"]}
for m in ("/etc/baton", "/sys/fs/bpf", "/sys/fs/cgroup", "/run/baton"):
    assert m in mounts, m
cm = next(d for d in docs if d["kind"] == "ConfigMap")
assert "[service " in cm["data"]["baton.conf"], "a service in the ConfigMap"
EOF
	check "$K8S: a Namespace, a ConfigMap and a privileged hostNetwork, hostPID DaemonSet" \
		quiet "$T/k8s.log" python3 "$T/k8s.py" "$K8S"
	# Its configuration uses only keys the parser knows.
	sed -n '/^  baton.conf: |$/,/^---/s/^    \([a-z][a-z0-9-]*\) = .*/\1/p' "$K8S" >"$T/k8s.keys"
	cut -d' ' -f2 "$T/keys.code" >"$T/known.keys"
	check_eq "$K8S's configuration uses only known keys" "" "$(missing "$T/k8s.keys" "$T/known.keys")"
else
	skip "python3 with yaml missing: $K8S is not parsed"
fi

# ---- make install / uninstall ----------------------------------------------------

D=$T/root
INSTALL_FILES="usr/sbin/baton usr/share/man/man8/baton.8 usr/share/man/man5/baton.conf.5
usr/share/bash-completion/completions/baton lib/systemd/system/baton.service
etc/baton/baton.conf.example"
check "make install DESTDIR PREFIX=/usr" quiet "$T/install.log" make -s --no-print-directory \
	install DESTDIR="$D" PREFIX=/usr BUILD="$B"
for f in $INSTALL_FILES; do
	check "make install: /$f" test -f "$D/$f"
done
check "make install: the binary is executable and runs" quiet "$T/run.log" "$D/usr/sbin/baton" version
check "make install: man pages are the sources" cmp -s man/baton.8 "$D/usr/share/man/man8/baton.8"
check "make install: the example is examples/web.conf" cmp -s examples/web.conf \
	"$D/etc/baton/baton.conf.example"
check "make install: no baton.conf created" test ! -e "$D/etc/baton/baton.conf"
UNIT=$D/lib/systemd/system/baton.service
check_eq "the unit's ExecStart is the installed binary" \
	"/usr/sbin/baton agent -d -f /etc/baton/baton.conf" "$(sed -n 's/^ExecStart=//p' "$UNIT")"
check_eq "the unit has no placeholder left" "" "$(grep -o '@[A-Z_]*@' "$UNIT")"
for kv in Type=notify KillMode=process Restart=on-failure ProtectSystem=full PrivateTmp=no; do
	check "the unit sets $kv" grep -qx "$kv" "$UNIT"
done
if command -v systemd-analyze >/dev/null 2>&1 && command -v man >/dev/null 2>&1; then
	# The installed binary under its DESTDIR path; man: links against the installed pages.
	mkdir -p "$T/unit"
	sed "s|/usr/sbin/baton|$D/usr/sbin/baton|g" "$UNIT" >"$T/unit/baton.service"
	check "systemd-analyze verify accepts the unit (and its man: links)" quiet "$T/verify.log" \
		env MANPATH="$D/usr/share/man" systemd-analyze verify "$T/unit/baton.service"
else
	skip "systemd-analyze or man missing: the unit is not verified"
fi
check "make uninstall" quiet "$T/uninstall.log" make -s --no-print-directory uninstall \
	DESTDIR="$D" PREFIX=/usr
check_eq "make uninstall removes every file" "" "$(find "$D" -type f | sed "s|^$D||" | tr '\n' ' ')"

# An administrator's configuration survives install and uninstall.
D2=$T/root2
mkdir -p "$D2/etc/baton"
echo "# mine" >"$D2/etc/baton/baton.conf"
make -s --no-print-directory install DESTDIR="$D2" PREFIX=/usr/local BUILD="$B" >/dev/null 2>&1
check "PREFIX=/usr/local: the binary is in /usr/local/sbin" test -x "$D2/usr/local/sbin/baton"
check_eq "PREFIX=/usr/local: the unit starts /usr/local/sbin/baton" \
	"/usr/local/sbin/baton agent -d -f /etc/baton/baton.conf" \
	"$(sed -n 's/^ExecStart=//p' "$D2/lib/systemd/system/baton.service")"
check_eq "make install leaves an existing baton.conf alone" "# mine" "$(cat "$D2/etc/baton/baton.conf")"
make -s --no-print-directory uninstall DESTDIR="$D2" PREFIX=/usr/local >/dev/null 2>&1
check_eq "make uninstall leaves an existing baton.conf alone" "# mine" \
	"$(cat "$D2/etc/baton/baton.conf" 2>/dev/null)"
