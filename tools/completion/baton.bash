# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Bash completion for baton(8): subcommands, each one's options, service names,
# versions (v2) for weight and pin, and pinned CIDRs for unpin.  Service names
# and versions come from the running agent (`baton status --json`, read with
# jq); when it does not answer, or jq is missing, none are offered.
# Stands alone: nothing from the bash-completion package is needed.
# Installed as share/bash-completion/completions/baton; to try it: . baton.bash
# shellcheck disable=SC2016 # jq programs in single quotes, $s is a jq variable

_baton_commands="agent deploy adopt promote pause abort weight pin unpin status watch events history rollback reload shutdown features help version"

# Options of each command, as `baton help CMD` gives them (and -h/--help).
_baton_options() {
	case $1 in
	agent) echo "-f -d -n -v -vv -h" ;;
	deploy) echo "--strategy --steps --bake --approve --baseline --env --max-surge --max-unavailable --pause --adopt-pid -s --control -- -h --help" ;;
	adopt) echo "--pid -s --control -h --help" ;;
	promote) echo "--full -s --control -h --help" ;;
	status) echo "--json -s --control -h --help" ;;
	watch) echo "-n --interval --count -s --control -h --help" ;;
	events) echo "--json --follow --last -s --control -h --help" ;;
	history) echo "--json -s --control -h --help" ;;
	rollback) echo "--to -s --control -h --help" ;;
	shutdown) echo "--stop -s --control -h --help" ;;
	features) echo "--json -h --help" ;;
	reload) echo "-s --control -h --help" ;;
	pause | abort | weight | pin | unpin) echo "-s --control -h --help" ;;
	esac
}

# Options that take the next word as their argument, per command.
_baton_argopts() {
	case $1 in
	agent) echo "-f" ;;
	deploy) echo "--strategy --steps --bake --max-surge --max-unavailable --pause --adopt-pid -s --control" ;;
	adopt) echo "--pid -s --control" ;;
	watch) echo "-n --interval --count -s --control" ;;
	events) echo "--last -s --control" ;;
	rollback) echo "--to -s --control" ;;
	help | version | features) ;;
	*) echo "-s --control" ;;
	esac
}

# _baton_status BATON SOCKET JQ-FILTER [ARGS...]: run the agent's status
# through jq, quietly, bounded to 2 s so that a hung agent cannot hang the shell.
_baton_status() {
	local bin=$1 sock=$2 filter=$3 to=
	shift 3
	command -v jq >/dev/null 2>&1 || return 0
	command -v timeout >/dev/null 2>&1 && to="timeout 2"
	if [ -n "$sock" ]; then
		$to "$bin" status --json -s "$sock" 2>/dev/null
	else
		$to "$bin" status --json 2>/dev/null
	fi | jq -r "$@" "$filter" 2>/dev/null
}

_baton() {
	local bin=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
	local line=${COMP_LINE:0:COMP_POINT}
	local -a w pos=()
	local cmd word prev='' sock='' argopts i after=-1 mycur

	COMPREPLY=()
	# Split the line ourselves: bash breaks words at ':' and '=', which would
	# cut an IPv6 CIDR or v2=10 into pieces and throw the positions off.
	read -r -a w <<<"$line"
	if [[ $line == *[[:space:]] ]] || [ "${#w[@]}" = 0 ]; then
		w+=("")
	fi
	mycur=${w[${#w[@]} - 1]}

	if [ "${#w[@]}" -le 2 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$_baton_commands -h --help -V --version" -- "$cur")
		return 0
	fi
	cmd=${w[1]}
	argopts=" $(_baton_argopts "$cmd") "

	# Walk the words before the one being completed: positional arguments,
	# the control socket, and (deploy) the "--" before the command.
	for ((i = 2; i < ${#w[@]} - 1; i++)); do
		word=${w[i]}
		if [ "$after" -ge 0 ]; then
			after=$((after + 1))
			continue
		fi
		case $word in
		--)
			[ "$cmd" = deploy ] && after=0
			;;
		-s | --control)
			sock=${w[i + 1]:-}
			i=$((i + 1))
			;;
		--control=*)
			sock=${word#--control=}
			;;
		-*)
			[[ $argopts == *" $word "* ]] && i=$((i + 1))
			;;
		*)
			pos+=("$word")
			;;
		esac
	done
	[ "${#w[@]}" -ge 3 ] && prev=${w[${#w[@]} - 2]}
	# The value of an option that takes one.
	if [ "$after" -lt 0 ] && [[ $argopts == *" $prev "* ]]; then
		case $prev in
		-f | -s | --control)
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			;;
		--strategy)
			mapfile -t COMPREPLY < <(compgen -W "bluegreen canary rolling" -- "$cur")
			;;
		--steps)
			mapfile -t COMPREPLY < <(compgen -W "5,25,50,100" -- "$cur")
			;;
		--bake)
			mapfile -t COMPREPLY < <(compgen -W "0 30s 1m" -- "$cur")
			;;
		--max-surge | --max-unavailable)
			mapfile -t COMPREPLY < <(compgen -W "0 1 25%" -- "$cur")
			;;
		--pause)
			mapfile -t COMPREPLY < <(compgen -W "0 5s 30s" -- "$cur")
			;;
		--pid | --adopt-pid)
			mapfile -t COMPREPLY < <(compgen -W "$(ps -e -o pid= 2>/dev/null)" -- "$cur")
			;;
		esac
		return 0
	fi
	# deploy ... -- COMMAND [ARG...]: the program, then anything.
	if [ "$after" -ge 0 ]; then
		compopt -o default 2>/dev/null
		if [ "$after" = 0 ]; then
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi
		return 0
	fi
	if [[ $mycur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_baton_options "$cmd")" -- "$cur")
		return 0
	fi

	case $cmd in
	help)
		[ "${#pos[@]}" = 0 ] &&
			mapfile -t COMPREPLY < <(compgen -W "$_baton_commands" -- "$cur")
		;;
	agent | shutdown | reload | version | features)
		mapfile -t COMPREPLY < <(compgen -W "$(_baton_options "$cmd")" -- "$cur")
		;;
	*)
		if [ "${#pos[@]}" = 0 ]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_baton_status "$bin" "$sock" '.[].name')" \
				-- "$cur")
			return 0
		fi
		case $cmd in
		weight)
			# vN=PERCENT: offer "v2=" and let the percentage be typed.
			[ "${#pos[@]}" -le 2 ] && [[ $mycur != *=* ]] || return 0
			compopt -o nospace 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -W "$(_baton_status "$bin" "$sock" \
				'.[] | select(.name == $s) | .versions[].version | "v\(.)="' \
				--arg s "${pos[0]}")" -- "$cur")
			;;
		pin)
			[ "${#pos[@]}" = 2 ] || return 0
			mapfile -t COMPREPLY < <(compgen -W "$(_baton_status "$bin" "$sock" \
				'.[] | select(.name == $s) | .versions[].version | "v\(.)"' \
				--arg s "${pos[0]}")" -- "$cur")
			;;
		unpin)
			# Only CIDRs without ':' can be offered whole: bash splits words at it.
			[ "${#pos[@]}" = 1 ] || return 0
			mapfile -t COMPREPLY < <(compgen -W "$(_baton_status "$bin" "$sock" \
				'.[] | select(.name == $s) | .pins[]?.cidr | select(contains(":") | not)' \
				--arg s "${pos[0]}")" -- "$cur")
			;;
		deploy)
			mapfile -t COMPREPLY < <(compgen -W "$(_baton_options deploy)" -- "$cur")
			;;
		esac
		;;
	esac
	return 0
}

complete -F _baton baton
